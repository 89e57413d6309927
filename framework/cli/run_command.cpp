// `prefopt run`: one trial of the pipeline into a fresh run folder; `--rerun` repeats a run from
// the resolved config it saved.
#include <fmt/chrono.h>
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include "commands.h"
#include "config/compose.h"
#include "files.h"
#include "run_files.h"
#include "pipeline/stage_cache.h"
#include "pipeline/trial.h"
#include "sweep/gao_fit.h"
#include "sweep/manifest.h"
#include "sweep/search.h"
#include "sweep/spec.h"
#include "text.h"
#include "tracking/tracking.h"

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

volatile std::sig_atomic_t g_stop_signal = 0;
void on_stop_signal(int signal) { g_stop_signal = signal; }

// SIGTERM (a launcher stopping, Slurm's requeue or preemption), SIGUSR1 (Slurm's warning before a
// time limit) and SIGINT ask the trial to save a checkpoint at the end of its current step and stop.
// A second signal takes its default action: a second Ctrl-C ends the run at once.
void stop_on_signals() {
  struct sigaction action {};
  action.sa_handler = on_stop_signal;
  action.sa_flags = SA_RESETHAND;
  sigemptyset(&action.sa_mask);
  for (const int signal : {SIGTERM, SIGUSR1, SIGINT}) sigaction(signal, &action, nullptr);
}

// Whether `run_dir` holds a run of `resolved_text` to continue; throws when it holds another
// run. A folder with a finished run (summary.json) is the caller's to handle first.
bool continuable(const fs::path& run_dir, const std::string& resolved_text) {
  const std::optional<std::string> before = run_files::read_resolved(run_dir);
  if (!before) return false;
  if (*before != resolved_text)
    throw ConfigError(fmt::format("the run folder '{}' holds a run of another configuration; it cannot continue "
                                  "with this one (compare its resolved.toml); choose another --out",
                                  run_dir.string()));
  return fs::exists(run_dir / "checkpoint" / "checkpoint.json");
}

fs::path timestamped(const fs::path& parent, const std::string& material) {
  const auto now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm local{};
  localtime_r(&now, &local);  // fmt::localtime is gone in fmt 11+ (a PyTorch wheel's)
  return parent / fmt::format("{:%Y%m%d-%H%M%S}-{}", local, stable_hash(material + std::to_string(::getpid())).substr(0, 8));
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
      "continue", po::bool_switch(),
      "continue the stopped run in --out from its checkpoint (start it if there is none; nothing if it finished)")(
      "prune", po::value<std::string>(), "a search's early-stopping rule, as JSON (prefopt trial sets it)")(
      "multirun,m", po::bool_switch(),
      "run every trial of the sweeps (a,b / range() / ... and the experiment's [prefopt.sweep]), each in its own process");
  add_multirun_options(options);
  add_compose_options(options);
  po::positional_options_description positional;
  positional.add("experiment", 1).add("overrides", -1);
  po::variables_map vars;
  if (parse_args(args,
                 "usage: prefopt run EXPERIMENT.toml [OVERRIDES...] [--out DIR] [--cache DIR | --no-cache]\n"
                 "       prefopt run -m EXPERIMENT.toml [SWEEPS...] [--out DIR] [--jobs N] [--gpus IDS|auto] ...\n"
                 "       prefopt run --rerun RUN_DIR [--out DIR]\n"
                 "       prefopt run EXPERIMENT.toml [OVERRIDES...] --out DIR --continue\n\n"
                 "Runs one trial end to end: base policy (SFT), preference collection, reward models,\n"
                 "the algorithm, and the evaluation against the gold reward. The run folder receives\n"
                 "resolved.toml, overrides.json, run.log, metrics.jsonl and summary.json.\n"
                 "SIGTERM, SIGUSR1 or Ctrl-C stop it after the current step with a checkpoint (exit 75);\n"
                 "the same command with --out and --continue goes on from there.",
                 options, positional, vars))
    return 0;

  std::string experiment;
  std::vector<std::string> overrides;
  std::string stem;
  if (vars.count("rerun")) {
    if (vars.count("experiment")) throw ConfigError("--rerun takes a run folder instead of an experiment and overrides");
    if (vars["multirun"].as<bool>()) throw ConfigError("--rerun repeats one run; it takes no -m");
    const fs::path previous = vars["rerun"].as<std::string>();
    if (!fs::is_regular_file(previous / run_files::kResolved))
      throw ConfigError(fmt::format("--rerun: '{}' is not a run folder (no resolved.toml)", previous.string()));
    experiment = (previous / run_files::kResolved).string();
    stem = run_files::read_experiment_name(previous, "rerun");
  } else {
    if (!vars.count("experiment")) throw ConfigError("prefopt run needs an experiment file (or --rerun RUN_DIR)");
    experiment = vars["experiment"].as<std::string>();
    if (vars.count("overrides")) overrides = vars["overrides"].as<std::vector<std::string>>();
    stem = stem_of(experiment);
    if (vars["multirun"].as<bool>()) {
      const fs::path absolute = fs::absolute(experiment);
      const std::string id = stable_hash(absolute.string() + "\x1f" + join(overrides, "\x1f")).substr(0, 8);
      return run_sweep(sweep::command_line_sweep(absolute, overrides), fs::path("outputs") / stem / ("multirun-" + id), vars);
    }
  }

  ResolvedTrials resolved = compose_trials(experiment, overrides, /*multirun=*/false, vars);
  config::Node& config = resolved.trials.front().composition.config;
  make_rerunnable(config, fs::absolute(experiment).parent_path());
  const std::string resolved_text = config::to_toml_string(config);

  trial_runtime(config);  // a device that is not here ends the run before its folder is made
  std::optional<sweep::PruneRule> prune_rule;  // so does a malformed --prune
  if (vars.count("prune")) {
    const json text = json::parse(vars["prune"].as<std::string>(), nullptr, /*allow_exceptions=*/false);
    if (text.is_discarded()) throw ConfigError("--prune takes the JSON of a prune rule, as sweep.json holds it");
    prune_rule = sweep::PruneRule::from_json(text);
  }
  const bool continuing = vars["continue"].as<bool>();
  if (continuing && !vars.count("out")) throw ConfigError("--continue needs the run folder: --out DIR");
  const fs::path run_dir =
      vars.count("out") ? fs::path(vars["out"].as<std::string>()) : timestamped(fs::path("outputs") / stem, resolved_text);
  std::error_code error;
  if (continuing && run_files::finished(run_dir)) {
    fmt::print(stderr, "the run in {} finished already\n", run_dir.string());
    return 0;
  }
  const bool resuming = continuing && continuable(run_dir, resolved_text);
  if (!continuing && fs::exists(run_dir / run_files::kResolved, error))
    throw ConfigError(fmt::format("the run folder '{}' holds a run already; choose another --out{}", run_dir.string(),
                                  fs::exists(run_dir / "checkpoint", error) ? ", or continue it with --continue" : ""));
  fs::create_directories(run_dir);
  // A run continued keeps its resolved.toml: it is what --continue compares with.
  if (!resuming) run_files::write_resolved(run_dir, resolved_text);
  run_files::write_invocation(run_dir, experiment, stem, overrides);
  fmt::print(stderr, "run folder: {}{}\n", run_dir.string(), resuming ? " (continuing from its checkpoint)" : "");

  const Registry& registry = *resolved.trials.front().registry;
  std::ofstream log_file(run_dir / "run.log", resuming ? std::ios::app : std::ios::trunc);
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
                             },
                             /*checkpoints=*/true,
                             [] { return g_stop_signal != 0; },
                             /*evaluated=*/{},
                             /*prune=*/{}};
  // A trial of a sweep lives in the sweep's folder, beside its sweep.json.
  const fs::path sweep_dir = fs::absolute(run_dir).lexically_normal().parent_path();
  tracking::TrialTracker tracker(config, {run_dir, stem, sweep::is_sweep_dir(sweep_dir) ? sweep_dir.filename().string() : ""},
                                 trial_options.log);
  trial_options.evaluated = [&](const json& row) { tracker.log_evaluation(row); };
  if (prune_rule) trial_options.prune = [rule = *prune_rule](const std::vector<json>& rows) { return sweep::prune_reason(rule, rows); };
  stop_on_signals();
  TrialResult result;
  try {
    result = run_trial(config, registry, trial_options);
    tracker.finish("FINISHED");
  } catch (const Stopped& e) {
    tracker.finish("KILLED");
    log_file << e.what() << "\n";
    fmt::print(stderr, "{}\n{}\ncontinue with the same command and --out {} --continue\n", terminal ? "\r\033[K" : "",
               e.what(), run_dir.string());
    return static_cast<int>(ExitCode::stopped);
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    log_file << "run failed: " << e.what() << "\n";
    throw;
  }

  // KL with its standard error when it is an estimate; an algorithm's bound (best-of-n's
  // log n - (n-1)/n) beside it, so nobody reads the bound as the KL.
  const auto bound = [](const json& row) { return row.contains("algorithm") && row["algorithm"].contains("kl_bound"); };
  const bool bounds = std::any_of(result.rows.begin(), result.rows.end(), bound);
  fmt::print("{:<12} {:>8} {:>8} {:>15} {:>9}{}\n", "evaluation", "gold", "proxy", "KL", "win rate",
             bounds ? "  KL bound" : "");
  for (const json& row : result.rows) {
    const std::string kl = row["kl_se"].is_number()
                               ? fmt::format("{:.3f} ± {:.3f}", row["kl"].get<double>(), row["kl_se"].get<double>())
                               : fmt::format("{:.3f}", row["kl"].get<double>());
    fmt::print("{:<12} {:>8.3f} {:>8.3f} {:>15} {:>9.3f}{}\n", row["label"].get<std::string>(), row["gold"].get<double>(),
               row["proxy"].get<double>(), kl, row["win_rate"].get<double>(),
               bound(row) ? fmt::format("  {:>8.3f}", row["algorithm"]["kl_bound"].get<double>()) : "");
  }
  std::vector<double> d, gain;
  const double reference_gold = result.summary["reference_gold"].get<double>();
  for (const json& row : result.rows)
    d.push_back(row["sqrt_kl"].get<double>()), gain.push_back(row["gold"].get<double>() - reference_gold);
  if (const auto fit = sweep::fit_gao(sweep::gao_form_of(result.summary["algorithm"].get<std::string>()), d, gain))
    fmt::print("gold gained over the reference against √KL, {}\n", sweep::describe(*fit));
  if (result.summary.contains("pruned")) fmt::print("{}\n", result.summary["pruned"].get<std::string>());
  fmt::print("reference policy gold {:.3f}; results in {}\n", result.summary["reference_gold"].get<double>(),
             run_dir.string());
  // A diverged run ends (its summary.json says where; running it again diverges again) but failed.
  if (!result.summary.contains("diverged")) return 0;
  fmt::print(stderr, "prefopt: error: {}\n", result.summary["diverged"].get<std::string>());
  return static_cast<int>(ExitCode::run_failed);
}

}  // namespace prefopt::cli
