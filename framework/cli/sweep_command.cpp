// `prefopt sweep`, `prefopt run -m`, `prefopt results`, `prefopt report`: sweeps of trials, each
// trial its own process, resumable, with results aggregated over seeds and an HTML report.
#include <fmt/format.h>
#include <unistd.h>

#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <set>

#include "commands.h"
#include "config/interpolate.h"
#include "files.h"
#include "run_files.h"
#include "pipeline/sections.h"
#include "pipeline/stage_cache.h"
#include "sweep/launcher.h"
#include "sweep/manifest.h"
#include "sweep/report.h"
#include "sweep/results.h"
#include "sweep/search.h"
#include "sweep/slurm.h"
#include "text.h"

namespace po = boost::program_options;
namespace fs = std::filesystem;
using nlohmann::json;

namespace prefopt::cli {

std::vector<sweep::PlannedTrial> plan_trials(const fs::path& experiment, std::vector<sweep::TrialSpec> trials,
                                             const po::variables_map& vars, const PlannedHook& each) {
  std::vector<sweep::PlannedTrial> out;
  for (sweep::TrialSpec& trial : trials) {
    try {
      ResolvedTrials resolved = compose_trials(experiment.string(), trial.overrides, /*multirun=*/false, vars);
      const config::Node& config = resolved.trials.front().composition.config;
      out.push_back({std::move(trial), stable_hash(config::to_toml_string(config)), {}});
      if (each) each(out.back(), config);
    } catch (const ConfigError& e) {
      throw ConfigError(fmt::format("trial {}: {}", join(trial.swept, " "), e.what()));
    }
  }
  return out;
}

std::vector<std::string> run_arguments(const po::variables_map& vars) {
  std::vector<std::string> out;
  if (vars["no-cache"].as<bool>())
    out.emplace_back("--no-cache");
  else
    out = {"--cache", fs::absolute(vars.count("cache") ? fs::path(vars["cache"].as<std::string>())
                                                       : fs::path("outputs") / ".stage-cache")
                          .string()};
  for (const char* option : {"config-dir", "plugin-path"})
    if (vars.count(option))
      for (const std::string& value : vars[option].as<std::vector<std::string>>())
        out.insert(out.end(), {std::string("--") + option, std::string(option) == "config-dir" ? fs::absolute(value).string() : value});
  return out;
}

SweepSetup prepare_sweep(const sweep::SweepSpec& spec, const fs::path& default_dir, const po::variables_map& vars) {
  if (vars["jobs"].as<std::int64_t>() < 1) throw ConfigError("--jobs must be at least 1");
  if (vars["per-gpu"].as<std::int64_t>() < 1) throw ConfigError("--per-gpu must be at least 1");
  if (vars["no-cache"].as<bool>() && vars.count("cache")) throw ConfigError("--cache and --no-cache exclude each other");
  SweepSetup setup;
  setup.launcher = vars.count("launcher") ? vars["launcher"].as<std::string>() : spec.launcher;
  if (setup.launcher != "local" && setup.launcher != "slurm")
    throw ConfigError(fmt::format("--launcher must be local or slurm, not '{}'{}", setup.launcher,
                                  did_you_mean(setup.launcher, {"local", "slurm"})));
  setup.slurm = sweep::slurm_options(spec.slurm ? &*spec.slurm : nullptr);
  if (setup.launcher == "slurm" && vars.count("gpus"))
    throw ConfigError("--gpus assigns GPUs under the local launcher; under Slurm ask for them in [launcher.slurm]: gpus = 1");
  if (setup.launcher == "local" && vars["wait"].as<bool>())
    throw ConfigError("--wait follows a Slurm sweep; the local launcher always waits");
  setup.sweep_dir = fs::absolute(vars.count("out") ? fs::path(vars["out"].as<std::string>()) : default_dir);
  fmt::print("report: {}\n", (setup.sweep_dir / "report.html").string());
  std::fflush(stdout);
  fs::create_directories(setup.sweep_dir);
  // One launcher per sweep folder: a second one (another terminal, a re-run started too early)
  // would run the same trials twice into the same folders. Released when this process ends.
  setup.lock = FileLock::acquire(setup.sweep_dir / "sweep.lock", {.wait = false});
  if (!setup.lock)
    throw ConfigError(fmt::format("another prefopt is running the sweep in '{}'; wait for it, or stop it", setup.sweep_dir.string()));
  return setup;
}

namespace {

// A search's best configurations, under the groups' table; nothing for other sweeps.
std::string search_table(const fs::path& sweep_dir, const std::vector<sweep::TrialResult>& results) {
  const auto search = sweep::search_results(sweep::read_manifest(sweep_dir), results);
  return search ? sweep::format_search(*search) : "";
}

void add_launch_options(po::options_description& options) {
  options.add_options()("out", po::value<std::string>(), "the sweep folder")(
      "cache", po::value<std::string>(), "the stage cache shared by the trials (default outputs/.stage-cache)")(
      "no-cache", po::bool_switch(), "compute every stage afresh in every trial");
  add_multirun_options(options);
  add_compose_options(options);
}

// Submits the trials neither finished nor in Slurm's queue as one job array; with `wait`,
// follows the sweep until none is queued.
TrialsRun run_on_slurm(const SweepSetup& setup, const std::vector<sweep::PlannedTrial>& planned, bool wait) {
  const fs::path& sweep_dir = setup.sweep_dir;
  std::map<std::size_t, sweep::QueuedTask> queued = sweep::queued_trials(sweep_dir);
  std::vector<std::size_t> missing;
  std::int64_t finished = 0;
  for (std::size_t i = 0; i < planned.size(); ++i) {
    if (run_files::finished(sweep_dir / planned[i].spec.name))
      ++finished;
    else if (!queued.contains(i))
      missing.push_back(i);
  }
  fmt::print(stderr, "sweep folder: {} ({} trials): {} finished, {} queued or running, {} to submit\n", sweep_dir.string(),
             planned.size(), finished, queued.size(), missing.size());
  if (!missing.empty()) {
    const std::string job = sweep::submit(sweep_dir, missing, fs::read_symlink("/proc/self/exe"), setup.slurm);
    fmt::print("submitted job array {} ({} trials); script {}\n", job, missing.size(),
               (sweep_dir / "slurm" / "sweep.sbatch").string());
  }
  if (!wait) {
    fmt::print("follow it: prefopt status {0}\ncancel it: scancel <job id> (submissions: {0}/slurm/submissions.json)\n",
               sweep_dir.string());
    TrialsRun submitted;
    submitted.waited = false;
    return submitted;
  }
  const bool terminal = ::isatty(STDERR_FILENO) != 0;
  const bool drained = sweep::follow_queue(sweep_dir, [&](const std::string& line) {
    fmt::print(stderr, "{}{}{}", terminal ? "\r\033[K" : "", line, terminal ? "" : "\n");
  });
  if (terminal) fmt::print(stderr, "\r\033[K");
  if (!drained)
    fmt::print(stderr, "only held tasks are left (see squeue); release them with scontrol release, or scancel them and "
                       "run the sweep again\n");
  std::int64_t not_finished = 0;
  for (const sweep::PlannedTrial& t : planned) not_finished += run_files::finished(sweep_dir / t.spec.name) ? 0 : 1;
  TrialsRun run;
  if (not_finished > 0)
    run.unfinished = fmt::format("{} trial(s) did not finish; run the same command again to submit them again", not_finished);
  return run;
}

TrialsRun run_locally(const SweepSetup& setup, const std::vector<sweep::PlannedTrial>& planned, const po::variables_map& vars) {
  sweep::LaunchOptions options;
  options.jobs = vars["jobs"].as<std::int64_t>();
  if (vars.count("gpus")) options.gpus = sweep::parse_gpus(vars["gpus"].as<std::string>());
  options.per_gpu = vars["per-gpu"].as<std::int64_t>();
  options.slot_dir = vars["slot-dir"].as<std::string>();
  options.timeout_seconds = vars["timeout"].as<double>();
  options.max_failures = vars["max-failures"].as<std::int64_t>();
  const bool terminal = ::isatty(STDERR_FILENO) != 0;
  std::ofstream log_file(setup.sweep_dir / "sweep.log", std::ios::app);
  options.log = [&](const std::string& line) {
    fmt::print(stderr, "{}{}\n", terminal ? "\r\033[K" : "", line);
    log_file << line << "\n" << std::flush;
  };
  std::string last_status;
  options.status = [&](const std::string& status) {
    if (terminal) fmt::print(stderr, "\r\033[K{}", status);
    last_status = status;
  };
  std::vector<sweep::TrialSpec> specs;
  for (const sweep::PlannedTrial& t : planned) specs.push_back(t.spec);
  fmt::print(stderr, "sweep folder: {} ({} trials)\n", setup.sweep_dir.string(), planned.size());
  const sweep::LaunchResult launched = sweep::launch(setup.sweep_dir, specs, options);
  if (terminal) fmt::print(stderr, "\r\033[K");
  options.log(last_status);
  return {.unfinished = launched.failed + launched.not_started == 0
                            ? ""
                            : fmt::format("{} trial(s) failed and {} did not start; run the same command again to retry them",
                                          launched.failed, launched.not_started),
          .interrupted = launched.interrupted};
}

}  // namespace

int conclude(const fs::path& sweep_dir, const std::string& unfinished) {
  sweep::build_index(sweep_dir);
  const std::vector<sweep::TrialResult> results = sweep::load_results(sweep_dir);
  fmt::print("\n");
  fmt::print("{}{}", sweep::format_results(sweep::aggregate(results, {}), "table"), search_table(sweep_dir, results));
  const fs::path report = sweep_dir / "report.html";
  sweep::write_report(sweep_dir, report);
  fmt::print("\nreport: {}\nresults: prefopt results {}\n", report.string(), sweep_dir.string());
  if (unfinished.empty()) return 0;
  fmt::print(stderr, "{}; their output.log and status.json say why (prefopt status {})\n", unfinished, sweep_dir.string());
  return 1;
}

TrialsRun run_trials(const SweepSetup& setup, const std::vector<sweep::PlannedTrial>& planned,
                     const po::variables_map& vars, bool wait) {
  return setup.launcher == "slurm" ? run_on_slurm(setup, planned, wait) : run_locally(setup, planned, vars);
}

int finish_sweep(const fs::path& sweep_dir, const TrialsRun& run) {
  const int status = conclude(sweep_dir, run.unfinished);
  if (!run.interrupted) return status;
  fmt::print(stderr, "interrupted; run the same command again to resume (stopped trials continue from their checkpoints)\n");
  return 130;
}

int run_sweep(const sweep::SweepSpec& spec, const fs::path& default_dir, const po::variables_map& vars) {
  if (spec.search) return run_search(spec, default_dir, vars);
  std::vector<sweep::PlannedTrial> planned;
  {
    Registries registries;
    const config::Composer composer = experiment_composer(spec.experiment.string(), vars, registries);
    planned = plan_trials(spec.experiment, sweep::expand(spec, composer), vars);
  }
  if (vars["dry-run"].as<bool>()) {
    for (const sweep::PlannedTrial& t : planned) fmt::print("{}\t{}\n", t.spec.name, join(t.spec.overrides, " "));
    fmt::print(stderr, "{} trials\n", planned.size());
    return 0;
  }
  const SweepSetup setup = prepare_sweep(spec, default_dir, vars);
  sweep::check_resume(setup.sweep_dir, spec.experiment, planned, vars["extend"].as<bool>());
  // Slurm runs array task i as trial i of sweep.json; added trials renumber it.
  if (vars["extend"].as<bool>() && !sweep::queued_trials(setup.sweep_dir).empty())
    throw ConfigError(fmt::format("the sweep in '{}' has trials queued or running in Slurm; --extend renumbers its "
                                  "trials: wait for them (prefopt status) or scancel them first",
                                  setup.sweep_dir.string()));
  sweep::write_manifest(setup.sweep_dir, spec, setup.launcher, run_arguments(vars), planned);
  TrialsRun run = run_trials(setup, planned, vars, vars["wait"].as<bool>());
  if (!run.waited) return 0;
  // A diverged trial failed, but running it again diverges again: said every time, not retried.
  const auto diverged = std::count_if(planned.begin(), planned.end(), [&](const sweep::PlannedTrial& t) {
    return run_files::ending(run_files::read_summary(setup.sweep_dir / t.spec.name)) == "diverged";
  });
  if (diverged > 0)
    run.unfinished += fmt::format("{}{} trial(s) diverged (not retried; their summary.json says where)",
                                  run.unfinished.empty() ? "" : "; ", diverged);
  return finish_sweep(setup.sweep_dir, run);
}

int sweep_command(const Args& args) {
  po::options_description options("Options");
  options.add_options()("sweep", po::value<std::string>(), "the sweep TOML file")(
      "overrides", po::value<std::vector<std::string>>(), "overrides for every trial (sweeps allowed)");
  add_launch_options(options);
  po::positional_options_description positional;
  positional.add("sweep", 1).add("overrides", -1);
  po::variables_map vars;
  if (parse_args(args,
                 "usage: prefopt sweep SWEEP.toml [OVERRIDES...] [--out DIR] [--jobs N] [--gpus IDS|auto --per-gpu K]\n"
                 "                     [--timeout S] [--max-failures N] [--extend] [--dry-run]\n"
                 "       prefopt sweep SWEEP.toml [OVERRIDES...] --launcher slurm [--wait]\n\n"
                 "Runs every trial of a sweep file, each in its own process, into one folder (default\n"
                 "outputs/sweeps/<sweep>/); running it again resumes. Writes results.sqlite and report.html.\n"
                 "With the Slurm launcher it submits the trials as a job array and returns (--wait follows it).",
                 options, positional, vars))
    return 0;
  if (!vars.count("sweep")) throw ConfigError("prefopt sweep needs a sweep file, e.g. sweeps/comparison.toml");
  const fs::path file = vars["sweep"].as<std::string>();
  sweep::SweepSpec spec = sweep::load_sweep_file(file);
  if (vars.count("overrides"))
    for (const std::string& o : vars["overrides"].as<std::vector<std::string>>()) spec.overrides.push_back(o);
  return run_sweep(spec, fs::path("outputs") / "sweeps" / file.stem(), vars);
}

int results_command(const Args& args) {
  po::options_description options("Options");
  options.add_options()("sweep-dir", po::value<std::string>(), "the sweep folder")(
      "format", po::value<std::string>()->default_value("table"), "table, csv or json")(
      "group-by", po::value<std::string>(), "comma-separated swept keys (default: all but seed)");
  po::positional_options_description positional;
  positional.add("sweep-dir", 1);
  po::variables_map vars;
  if (parse_args(args,
                 "usage: prefopt results SWEEP_DIR [--format table|csv|json] [--group-by KEYS]\n\n"
                 "Final and best gold reward, proxy reward, KL and win rate of a sweep's trials, grouped by\n"
                 "their swept values and aggregated over seeds: mean, 95% confidence interval, n.",
                 options, positional, vars))
    return 0;
  if (!vars.count("sweep-dir")) throw ConfigError("prefopt results needs a sweep folder");
  const std::string format = vars["format"].as<std::string>();
  if (format != "table" && format != "csv" && format != "json")
    throw ConfigError(fmt::format("--format must be table, csv or json, not '{}'", format));
  const std::vector<sweep::TrialResult> results = sweep::load_results(vars["sweep-dir"].as<std::string>());
  std::vector<std::string> group_by;
  if (vars.count("group-by")) {
    std::set<std::string> known;
    for (const sweep::TrialResult& r : results)
      for (const auto& [key, value] : r.params) known.insert(key);
    std::stringstream in(vars["group-by"].as<std::string>());
    for (std::string key; std::getline(in, key, ',');) {
      if (!known.contains(key))
        throw ConfigError(fmt::format("--group-by: '{}' is not a swept key{} (swept: {})", key,
                                      did_you_mean(key, {known.begin(), known.end()}),
                                      join({known.begin(), known.end()}, ", ")));
      group_by.push_back(key);
    }
  }
  fmt::print("{}{}", sweep::format_results(sweep::aggregate(results, group_by), format),
             format == "table" ? search_table(vars["sweep-dir"].as<std::string>(), results) : "");
  return 0;
}

int report_command(const Args& args) {
  po::options_description options("Options");
  options.add_options()("sweep-dir", po::value<std::string>(), "the sweep folder")(
      "out", po::value<std::string>(), "the HTML file (default SWEEP_DIR/report.html)");
  po::positional_options_description positional;
  positional.add("sweep-dir", 1);
  po::variables_map vars;
  if (parse_args(args,
                 "usage: prefopt report SWEEP_DIR [--out FILE]\n\n"
                 "Writes one self-contained HTML file (inline SVG) with the sweep's gold-vs-sqrt(KL) frontier,\n"
                 "gold and proxy reward over training, final gold by the swept keys with confidence intervals,\n"
                 "and the results table.",
                 options, positional, vars))
    return 0;
  if (!vars.count("sweep-dir")) throw ConfigError("prefopt report needs a sweep folder");
  const fs::path sweep_dir = vars["sweep-dir"].as<std::string>();
  const fs::path file = vars.count("out") ? fs::path(vars["out"].as<std::string>()) : sweep_dir / "report.html";
  sweep::write_report(sweep_dir, file);
  fmt::print("{}\n", file.string());
  return 0;
}

void add_multirun_options(po::options_description& options) {
  options.add_options()("jobs,j", po::value<std::int64_t>()->default_value(1), "trials at once")(
      "gpus", po::value<std::string>(), "GPU ids for the trials (0,1,...) or auto; sets CUDA_VISIBLE_DEVICES")(
      "per-gpu", po::value<std::int64_t>()->default_value(1), "trials per GPU at once, across every sweep on this node")(
      "slot-dir", po::value<std::string>()->default_value("/tmp/prefopt-gpu-slots"),
      "the node-wide folder of GPU slot locks")("timeout", po::value<double>()->default_value(0),
                                                "seconds a trial may run; 0: no limit")(
      "max-failures", po::value<std::int64_t>()->default_value(0), "start no more trials after this many failed; 0: never")(
      "extend", po::bool_switch(), "accept trials added to a sweep started before")(
      "launcher", po::value<std::string>(), "local (the default) or slurm; overrides the sweep file's launcher")(
      "wait", po::bool_switch(), "with the Slurm launcher: follow the sweep until its trials leave the queue")(
      "dry-run", po::bool_switch(), "list the trials and run nothing");
}

}  // namespace prefopt::cli
