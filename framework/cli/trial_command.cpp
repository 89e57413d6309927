// `prefopt trial SWEEP_DIR INDEX`: runs one trial of a planned sweep, the same way under every
// launcher (a local child process, a Slurm array task), and `prefopt status SWEEP_DIR`.
#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "files.h"
#include "run_files.h"
#include "sweep/launcher.h"
#include "sweep/manifest.h"
#include "sweep/slurm.h"
#include "text.h"

namespace po = boost::program_options;
namespace fs = std::filesystem;
using nlohmann::json;

namespace prefopt::cli {
namespace {

std::string hostname() {
  char name[256] = {};
  ::gethostname(name, sizeof name - 1);
  return name;
}

std::string environment(const char* name) {
  const char* value = std::getenv(name);
  return value != nullptr ? value : "";
}

std::string join_present(const std::vector<std::string>& parts) {
  std::vector<std::string> present;
  for (const std::string& part : parts)
    if (!part.empty()) present.push_back(part);
  return join(present, ", ");
}

// What `prefopt status` says of one trial.
struct TrialState {
  std::string state;   // finished, running, pending, stopped, failed, not started
  std::string detail;  // checkpoint step, exit status, Slurm task
};

TrialState trial_state(const fs::path& dir, const std::optional<sweep::QueuedTask>& queued, std::size_t index) {
  const json summary = run_files::read_summary(dir);
  if (const std::string ending = run_files::ending(summary); !ending.empty())
    return {ending, ending == "finished" ? "" : summary[ending].get<std::string>()};
  const json status = run_files::read_status(dir);
  const json checkpoint = read_json_or_null(dir / "checkpoint" / "checkpoint.json");
  const std::string at_step = checkpoint.is_null() ? "" : fmt::format("checkpoint at step {}", checkpoint["step"].get<std::int64_t>());
  if (queued) {
    const std::string state = queued->state == "RUNNING" || queued->state == "COMPLETING" ? "running" : "pending";
    return {state, join_present({fmt::format("Slurm {}_{}", queued->job, index), at_step})};
  }
  if (status.is_null()) return {"not started", ""};
  const std::string state = status.value("state", "");
  if (state == "running") {
    // A Slurm task out of the queue, or a local process gone, ended without saying how.
    const bool here = status.value("host", "") == hostname();
    const bool alive = !status.contains("slurm") && (here ? ::kill(status.value("pid", 0), 0) == 0 : true);
    if (alive) return {"running", join_present({fmt::format("pid {} on {}", status.value("pid", 0), status.value("host", "?")), at_step})};
    return {"failed", fmt::format("its process ended without a word (killed?); see {}", (dir / "output.log").string())};
  }
  if (state == "stopped") return {"stopped", at_step.empty() ? "no checkpoint: starts over" : at_step};
  return {"failed", fmt::format("exit status {}; see {}", status.value("exit_status", -1), (dir / "output.log").string())};
}

}  // namespace

int trial_command(const Args& args) {
  po::options_description options("Options");
  options.add_options()("sweep-dir", po::value<std::string>(), "the sweep folder")(
      "index", po::value<std::int64_t>(), "the trial's index in sweep.json");
  po::positional_options_description positional;
  positional.add("sweep-dir", 1).add("index", 1);
  po::variables_map vars;
  if (parse_args(args,
                 "usage: prefopt trial SWEEP_DIR INDEX\n\n"
                 "Runs trial INDEX of the sweep planned in SWEEP_DIR (sweep.json) into SWEEP_DIR/<trial>/,\n"
                 "continuing from its checkpoint when it has one; appends its output to output.log there and\n"
                 "writes status.json. Launchers run it: a local child process, a Slurm array task.",
                 options, positional, vars))
    return 0;
  if (!vars.count("sweep-dir") || !vars.count("index")) throw ConfigError("prefopt trial needs SWEEP_DIR and INDEX");
  const fs::path sweep_dir = fs::absolute(vars["sweep-dir"].as<std::string>());
  const json sweep = sweep::read_manifest(sweep_dir);
  const std::int64_t index = vars["index"].as<std::int64_t>();
  const json& trials = sweep["trials"];
  if (index < 0 || index >= static_cast<std::int64_t>(trials.size()))
    throw ConfigError(fmt::format("the sweep in '{}' has trials 0 to {}, not {}", sweep_dir.string(), trials.size() - 1, index));
  const json& trial = trials[static_cast<std::size_t>(index)];
  const fs::path dir = sweep_dir / trial["name"].get<std::string>();
  fs::create_directories(dir);

  // Every attempt's output goes to the trial's output.log, after the earlier attempts'.
  const int log = ::open((dir / "output.log").c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log < 0) throw std::runtime_error(fmt::format("cannot write {}", (dir / "output.log").string()));
  std::fflush(nullptr);
  ::dup2(log, STDOUT_FILENO);
  ::dup2(log, STDERR_FILENO);
  ::close(log);

  // One process per trial folder: a second launcher, or a Slurm task started twice, is refused.
  const std::optional<FileLock> lock = FileLock::acquire(dir / "trial.lock", {.wait = false});
  if (!lock) throw ConfigError(fmt::format("trial {} is running already in another process", dir.string()));
  if (run_files::finished(dir)) {
    fmt::print(stderr, "trial {} finished already\n", dir.filename().string());
    return 0;
  }

  const json previous = run_files::read_status(dir);
  json status = {{"name", trial["name"]},
                 {"index", index},
                 {"overrides", trial["overrides"]},
                 {"state", "running"},
                 {"attempt", previous.is_object() ? previous.value("attempt", 0) + 1 : 1},
                 {"started_at", unix_time()},
                 {"host", hostname()},
                 {"pid", ::getpid()},
                 {"gpu", environment("CUDA_VISIBLE_DEVICES")},
                 {"threads", environment("OPENBLAS_NUM_THREADS")}};
  if (const std::string job = environment("SLURM_ARRAY_JOB_ID"); !job.empty())
    status["slurm"] = {{"job", job + "_" + environment("SLURM_ARRAY_TASK_ID")},
                       {"restart_count", environment("SLURM_RESTART_COUNT")}};
  run_files::write_status(dir, status);
  fmt::print(stderr, "==== prefopt trial {} (attempt {}) on {} ====\n", dir.filename().string(),
             status["attempt"].get<std::int64_t>(), hostname());

  Args run_args = {sweep["experiment"].get<std::string>()};
  for (const json& o : trial["overrides"]) run_args.push_back(o.get<std::string>());
  run_args.insert(run_args.end(), {"--out", dir.string(), "--continue"});
  for (const json& a : sweep.value("run_arguments", json::array())) run_args.push_back(a.get<std::string>());
  if (trial.contains("search") && trial["search"].contains("prune"))
    run_args.insert(run_args.end(), {"--prune", trial["search"]["prune"].dump()});
  int exit_status = 0;
  try {
    exit_status = run(run_args);
  } catch (const Error& e) {
    fmt::print(stderr, "prefopt: error: {}\n", e.what());
    exit_status = static_cast<int>(e.code());
  } catch (const std::exception& e) {
    fmt::print(stderr, "prefopt: error: {}\n", e.what());
    exit_status = static_cast<int>(ExitCode::run_failed);
  }
  std::fflush(nullptr);
  const std::string ending = run_files::ending(run_files::read_summary(dir));
  const bool finished = exit_status == 0 && !ending.empty();
  status["state"] = ending == "pruned" || ending == "diverged" ? ending  // a diverged run exits 1
                    : finished                                 ? "finished"
                    : exit_status == static_cast<int>(ExitCode::stopped) ? "stopped" : "failed";
  status["exit_status"] = exit_status;
  status["ended_at"] = unix_time();
  status["seconds"] = status["ended_at"].get<double>() - status["started_at"].get<double>();
  if (!finished) status["log_tail"] = last_lines(dir / "output.log", 20);
  run_files::write_status(dir, status);
  return exit_status;
}

int status_command(const Args& args) {
  po::options_description options("Options");
  options.add_options()("sweep-dir", po::value<std::string>(), "the sweep folder")(
      "all", po::bool_switch(), "list finished trials too");
  po::positional_options_description positional;
  positional.add("sweep-dir", 1);
  po::variables_map vars;
  if (parse_args(args,
                 "usage: prefopt status SWEEP_DIR [--all]\n\n"
                 "How far a sweep got: its trials finished, running, pending (queued in Slurm), stopped with a\n"
                 "checkpoint, failed or not started, from the trial folders and squeue.",
                 options, positional, vars))
    return 0;
  if (!vars.count("sweep-dir")) throw ConfigError("prefopt status needs a sweep folder");
  const fs::path sweep_dir = fs::absolute(vars["sweep-dir"].as<std::string>());
  const json sweep = sweep::read_manifest(sweep_dir);
  std::map<std::size_t, sweep::QueuedTask> queued;
  try {
    queued = sweep::queued_trials(sweep_dir);
  } catch (const std::exception& e) {  // the trial folders still tell most of the story
    fmt::print(stderr, "cannot ask Slurm which trials are queued ({}); showing the trial folders only\n", e.what());
  }
  std::map<std::string, std::int64_t> counts;
  std::vector<std::array<std::string, 3>> rows;
  const json& trials = sweep["trials"];
  for (std::size_t i = 0; i < trials.size(); ++i) {
    const auto found = queued.find(i);
    const std::string name = trials[i]["name"];
    const TrialState state =
        trial_state(sweep_dir / name, found != queued.end() ? std::optional(found->second) : std::nullopt, i);
    ++counts[state.state];
    if ((state.state != "finished" && state.state != "pruned") || vars["all"].as<bool>())
      rows.push_back({join(trials[i]["swept"].get<std::vector<std::string>>(), " "), state.state, state.detail});
  }
  std::vector<std::string> summary;
  for (const char* state : {"finished", "pruned", "diverged", "running", "pending", "stopped", "failed", "not started"})
    if (counts[state] > 0) summary.push_back(fmt::format("{} {}", counts[state], state));
  fmt::print("{}: {} trials: {}\n", sweep_dir.string(), trials.size(), join(summary, ", "));
  std::size_t width = 5;
  for (const auto& row : rows) width = std::max(width, row[0].size());
  for (const auto& row : rows) fmt::print("  {:<{}}  {:<11}  {}\n", row[0], width, row[1], row[2]);
  return 0;
}

}  // namespace prefopt::cli
