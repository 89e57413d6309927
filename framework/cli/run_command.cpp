// `prefopt run`: one trial of the pipeline into a fresh run folder; `--rerun` repeats a run from
// the resolved config it saved.
#include <fmt/chrono.h>
#include <fmt/format.h>

#include <chrono>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "commands.h"
#include "config/compose.h"
#include "pipeline/stage_cache.h"
#include "pipeline/trial.h"
#include "text.h"

namespace po = boost::program_options;
namespace fs = std::filesystem;
using nlohmann::json;

namespace prefopt::cli {
namespace {

// Resolved strings are final: escape "${" so that composing resolved.toml again (--rerun) reads
// them literally; the folders of plugins.paths and prefopt.searchpath become absolute, since
// resolved.toml lives elsewhere than the experiment.
void make_rerunnable(config::Node& node, const fs::path& experiment_folder, const std::string& key = "") {
  const bool folders = key == "plugins.paths" || key == "prefopt.searchpath";
  if (auto* text = std::get_if<std::string>(&node.value)) {
    for (std::size_t at = text->find("${"); at != std::string::npos; at = text->find("${", at + 3)) text->insert(text->begin() + static_cast<std::ptrdiff_t>(at), '\\');
  } else if (node.is_array()) {
    for (config::Node& element : node.array()) {
      if (auto* folder = std::get_if<std::string>(&element.value); folders && folder && fs::path(*folder).is_relative())
        *folder = (experiment_folder / *folder).lexically_normal().string();
      make_rerunnable(element, experiment_folder, key + ".*");
    }
  } else if (node.is_table()) {
    for (auto& [name, child] : node.table()) make_rerunnable(child, experiment_folder, key.empty() ? name : key + "." + name);
  }
}

std::string stem_of(const fs::path& experiment) { return experiment.stem().string(); }

fs::path timestamped(const fs::path& parent, const std::string& material) {
  const auto now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  return parent / fmt::format("{:%Y%m%d-%H%M%S}-{}", fmt::localtime(now), stable_hash(material + std::to_string(::getpid())).substr(0, 8));
}

// A trial's folder: its swept overrides, readable, and a hash of them, so names never collide.
std::string trial_folder_name(const std::vector<std::string>& sweep_texts) {
  std::string readable;
  for (const std::string& text : sweep_texts) {
    if (!readable.empty()) readable += ',';
    for (const char c : text) readable += std::isalnum(static_cast<unsigned char>(c)) || std::strchr("=._-+", c) ? c : '_';
  }
  if (readable.size() > 60) readable.resize(60);
  return (readable.empty() ? std::string("trial") : readable) + "-" + stable_hash(join(sweep_texts, "\x1f")).substr(0, 8);
}

// Runs `prefopt ARGS` in a child process (stdin closed; stdout and stderr shared) and returns its
// exit status, or 128 + the signal that ended it.
int run_child(const std::vector<std::string>& args) {
  std::vector<char*> argv;
  std::string self = "/proc/self/exe";
  argv.push_back(self.data());
  std::vector<std::string> copies = args;
  for (std::string& arg : copies) argv.push_back(arg.data());
  argv.push_back(nullptr);
  std::fflush(stdout);
  const pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error(fmt::format("cannot start a trial: fork failed ({})", std::strerror(errno)));
  if (pid == 0) {
    ::execv(argv[0], argv.data());
    std::_Exit(127);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// `prefopt run -m`: every trial of the sweep in its own process, one after another, into
// SWEEP_DIR/<trial>/; a trial that fails does not stop the others. Running into the same --out
// again keeps the trials that finished (summary.json) and runs the others afresh.
int run_multirun(const std::string& experiment, const std::vector<std::string>& overrides,
                 const po::variables_map& vars) {
  const ResolvedTrials resolved = compose_trials(experiment, overrides, /*multirun=*/true, vars);
  const fs::path sweep_dir = vars.count("out") ? fs::path(vars["out"].as<std::string>())
                                               : timestamped(fs::path("outputs") / stem_of(experiment),
                                                             experiment + join(overrides, "\x1f"));
  fs::create_directories(sweep_dir);
  const fs::path cache = vars.count("cache") ? fs::absolute(vars["cache"].as<std::string>())
                                             : fs::absolute(fs::path("outputs") / ".stage-cache");
  json trials = json::array();
  for (const ResolvedTrial& t : resolved.trials) {
    std::vector<std::string> texts;
    for (const config::Override& o : t.trial.overrides) texts.push_back(o.text);
    trials.push_back({{"name", trial_folder_name(t.trial.sweep_texts)}, {"swept", t.trial.sweep_texts}, {"overrides", texts}});
  }
  std::ofstream(sweep_dir / "multirun.json") << json{{"experiment", experiment}, {"overrides", overrides}, {"trials", trials}}.dump(2) << "\n";
  fmt::print(stderr, "multirun folder: {} ({} trials)\n", sweep_dir.string(), trials.size());

  std::vector<int> statuses;
  for (std::size_t i = 0; i < trials.size(); ++i) {
    const fs::path trial_dir = sweep_dir / trials[i]["name"].get<std::string>();
    const std::string label = join(trials[i]["swept"].get<std::vector<std::string>>(), " ");
    if (fs::is_regular_file(trial_dir / "summary.json")) {
      fmt::print(stderr, "[{}/{}] {}: finished before, kept\n", i + 1, trials.size(), label);
      statuses.push_back(0);
      continue;
    }
    fs::remove_all(trial_dir);  // an interrupted attempt
    fmt::print(stderr, "[{}/{}] {}\n", i + 1, trials.size(), label);
    std::vector<std::string> args = {"run", experiment};
    for (const json& text : trials[i]["overrides"]) args.push_back(text.get<std::string>());
    args.insert(args.end(), {"--out", trial_dir.string()});
    if (vars["no-cache"].as<bool>())
      args.push_back("--no-cache");
    else
      args.insert(args.end(), {"--cache", cache.string()});
    for (const char* option : {"config-dir", "plugin-path"})
      if (vars.count(option))
        for (const std::string& value : vars[option].as<std::vector<std::string>>())
          args.insert(args.end(), {std::string("--") + option, value});
    statuses.push_back(run_child(args));
  }

  // The trials side by side: the last evaluation, and the best gold reward reached.
  fmt::print("\n{:<32} {:>8} {:>8} {:>8} {:>9} {:>10}\n", "trial", "gold", "proxy", "KL", "win rate", "best gold");
  json results = json::array();
  int failed = 0;
  for (std::size_t i = 0; i < trials.size(); ++i) {
    const std::string label = join(trials[i]["swept"].get<std::vector<std::string>>(), " ");
    const fs::path summary_file = sweep_dir / trials[i]["name"].get<std::string>() / "summary.json";
    std::ifstream in(summary_file);
    if (statuses[i] != 0 || !in) {
      ++failed;
      fmt::print("{:<32} failed (exit status {})\n", label, statuses[i]);
      results.push_back({{"trial", trials[i]}, {"exit_status", statuses[i]}});
      continue;
    }
    const json summary = json::parse(in);
    const json& last = summary["final"];
    fmt::print("{:<32} {:>8.3f} {:>8.3f} {:>8.3f} {:>9.3f} {:>10.3f}\n", label, last["gold"].get<double>(),
               last["proxy"].get<double>(), last["kl"].get<double>(), last["win_rate"].get<double>(),
               summary["best_gold"]["gold"].get<double>());
    results.push_back({{"trial", trials[i]},
                       {"exit_status", 0},
                       {"final", last},
                       {"best_gold", summary["best_gold"]},
                       {"reference_gold", summary["reference_gold"]}});
  }
  std::ofstream(sweep_dir / "results.json") << results.dump(2) << "\n";
  fmt::print("results in {}\n", (sweep_dir / "results.json").string());
  if (failed == 0) return 0;
  fmt::print(stderr, "{} of {} trials failed; their run.log files say why\n", failed, trials.size());
  return 1;
}

}  // namespace

int run(const Args& args) {
  po::options_description options("Options");
  options.add_options()("experiment", po::value<std::string>(), "the experiment TOML file")(
      "overrides", po::value<std::vector<std::string>>(), "Hydra-style overrides")(
      "out", po::value<std::string>(), "the run folder (default outputs/<experiment>/<time>-<hash>/)")(
      "cache", po::value<std::string>(), "the stage cache folder, shared by runs (default outputs/.stage-cache)")(
      "no-cache", po::bool_switch(), "compute every stage afresh, inside the run folder")(
      "rerun", po::value<std::string>(), "repeat the run saved in this run folder, from its resolved.toml")(
      "multirun,m", po::bool_switch(),
      "run every trial of the sweeps (a,b / range() / ... and the experiment's [prefopt.sweep]), each in its own process");
  add_compose_options(options);
  po::positional_options_description positional;
  positional.add("experiment", 1).add("overrides", -1);
  po::variables_map vars;
  if (parse_args(args,
                 "usage: prefopt run EXPERIMENT.toml [OVERRIDES...] [--out DIR] [--cache DIR | --no-cache]\n"
                 "       prefopt run -m EXPERIMENT.toml [SWEEPS...] [--out DIR]\n"
                 "       prefopt run --rerun RUN_DIR [--out DIR]\n\n"
                 "Runs one trial end to end: base policy (SFT), preference collection, reward models,\n"
                 "the algorithm, and the evaluation against the gold reward. The run folder receives\n"
                 "resolved.toml, overrides.json, run.log, metrics.jsonl and summary.json.",
                 options, positional, vars))
    return 0;

  std::string experiment;
  std::vector<std::string> overrides;
  std::string stem;
  if (vars.count("rerun")) {
    if (vars.count("experiment")) throw ConfigError("--rerun takes a run folder instead of an experiment and overrides");
    if (vars["multirun"].as<bool>()) throw ConfigError("--rerun repeats one run; it takes no -m");
    const fs::path previous = vars["rerun"].as<std::string>();
    if (!fs::is_regular_file(previous / "resolved.toml"))
      throw ConfigError(fmt::format("--rerun: '{}' is not a run folder (no resolved.toml)", previous.string()));
    experiment = (previous / "resolved.toml").string();
    std::ifstream run_file(previous / "run.json");
    stem = run_file ? json::parse(run_file).value("experiment_name", "rerun") : "rerun";
  } else {
    if (!vars.count("experiment")) throw ConfigError("prefopt run needs an experiment file (or --rerun RUN_DIR)");
    experiment = vars["experiment"].as<std::string>();
    if (vars.count("overrides")) overrides = vars["overrides"].as<std::vector<std::string>>();
    stem = stem_of(experiment);
    if (vars["multirun"].as<bool>()) return run_multirun(experiment, overrides, vars);
  }

  ResolvedTrials resolved = compose_trials(experiment, overrides, /*multirun=*/false, vars);
  config::Node& config = resolved.trials.front().composition.config;
  make_rerunnable(config, fs::absolute(experiment).parent_path());
  const std::string resolved_text = config::to_toml_string(config);

  const fs::path run_dir =
      vars.count("out") ? fs::path(vars["out"].as<std::string>()) : timestamped(fs::path("outputs") / stem, resolved_text);
  std::error_code error;
  if (fs::exists(run_dir, error) && !fs::is_empty(run_dir, error))
    throw ConfigError(fmt::format("the run folder '{}' is not empty; choose another --out", run_dir.string()));
  fs::create_directories(run_dir);
  std::ofstream(run_dir / "resolved.toml") << resolved_text;
  std::ofstream(run_dir / "overrides.json") << json(overrides).dump(2) << "\n";
  std::ofstream(run_dir / "run.json") << json{{"experiment", experiment},
                                              {"experiment_name", stem},
                                              {"overrides", overrides},
                                              {"prefopt", version_string()}}
                                             .dump(2)
                                      << "\n";
  fmt::print(stderr, "run folder: {}\n", run_dir.string());

  const Registry& registry = *resolved.trials.front().registry;
  std::ofstream log_file(run_dir / "run.log");
  const bool terminal = ::isatty(STDERR_FILENO) != 0;
  TrialOptions trial_options{run_dir,
                             vars["no-cache"].as<bool>() ? run_dir / "stages"
                             : vars.count("cache")        ? fs::path(vars["cache"].as<std::string>())
                                                          : fs::path("outputs") / ".stage-cache",
                             [&](const std::string& line) {
                               fmt::print(stderr, "{}{}\n", terminal ? "\r\033[K" : "", line);
                               log_file << line << "\n" << std::flush;
                             },
                             // On a terminal one status line updates in place; in a log file only
                             // every tenth update is written, so logs stay readable.
                             [&, updates = std::int64_t{0}](const std::string& status) mutable {
                               if (terminal)
                                 fmt::print(stderr, "\r\033[K{}", status);
                               else if (updates % 10 == 0)
                                 fmt::print(stderr, "{}\n", status);
                               ++updates;
                             }};
  TrialResult result;
  try {
    result = run_trial(config, registry, trial_options);
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    log_file << "run failed: " << e.what() << "\n";
    throw;
  }

  fmt::print("{:<12} {:>8} {:>8} {:>8} {:>9}\n", "evaluation", "gold", "proxy", "KL", "win rate");
  for (const json& row : result.rows)
    fmt::print("{:<12} {:>8.3f} {:>8.3f} {:>8.3f} {:>9.3f}\n", row["label"].get<std::string>(), row["gold"].get<double>(),
               row["proxy"].get<double>(), row["kl"].get<double>(), row["win_rate"].get<double>());
  fmt::print("reference policy gold {:.3f}; results in {}\n", result.summary["reference_gold"].get<double>(),
             run_dir.string());
  return 0;
}

}  // namespace prefopt::cli
