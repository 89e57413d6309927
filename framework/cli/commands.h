// The `prefopt` command-line interface: one function per subcommand.
//
// Each takes the words after the subcommand's name and returns the process exit status; errors
// that end the command are thrown as prefopt::Error (exit status inside) or
// boost::program_options::error (usage, exit 2).
#pragma once

#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <boost/program_options.hpp>

#include "config/compose.h"
#include "files.h"
#include "prefopt/params.h"
#include "registry.h"
#include "sweep/manifest.h"
#include "sweep/spec.h"

namespace prefopt::cli {

using Args = std::vector<std::string>;

int plugins_list(const Args& args);
int plugins_show(const Args& args);
int config(const Args& args);
int run(const Args& args);
int sweep_command(const Args& args);
int results_command(const Args& args);
int report_command(const Args& args);
int trial_command(const Args& args);
int status_command(const Args& args);
int model_inspect(const Args& args);
int model_logprobs(const Args& args);
int model_generate(const Args& args);
int model_tokenize(const Args& args);
int model_score(const Args& args);
int export_command(const Args& args);

// Options every subcommand that loads plugins accepts.
void add_plugin_path_option(boost::program_options::options_description& options);
// The registry on the documented search order: --plugin-path, PREFOPT_PLUGIN_PATH, an
// experiment's `[plugins] paths`, then the built-in plugins.
Registry load_registry(const boost::program_options::variables_map& vars,
                       const std::vector<std::string>& experiment_paths = {});

// Options of commands that compose an experiment: --config-dir, --plugin-path.
void add_compose_options(boost::program_options::options_description& options);

struct ResolvedTrial {
  config::Trial trial;
  config::Composition composition;  // interpolations resolved, plugin sections validated
  const Registry* registry;         // the plugins it was validated against (in `registries`)
};
using Registries = std::map<std::vector<std::string>, Registry>;  // by the experiment's [plugins] paths
struct ResolvedTrials {
  config::Composer composer;
  Registries registries;
  std::vector<ResolvedTrial> trials;
};
// The experiment's Composer (--config-dir from `vars`), with the plugins it can see (--plugin-path,
// PREFOPT_PLUGIN_PATH, its own [plugins] paths, the built-ins; loaded into `registries`) as the
// built-in options of the plugin groups.
config::Composer experiment_composer(const std::string& experiment, const boost::program_options::variables_map& vars,
                                     Registries& registries);
// Composes, resolves and validates every trial of `experiment` with `overrides`.
ResolvedTrials compose_trials(const std::string& experiment, const std::vector<std::string>& overrides,
                              bool multirun, const boost::program_options::variables_map& vars);

// The launcher's options of `prefopt run -m` (--jobs, --gpus, ...; `prefopt sweep` has them too).
void add_multirun_options(boost::program_options::options_description& options);
// Plans, checks against an earlier start in the same folder, launches (locally, or submits to
// Slurm), aggregates and reports a sweep into --out or `default_dir`. Returns the exit status:
// 0, 1 (a trial failed), 130.
int run_sweep(const sweep::SweepSpec& spec, const std::filesystem::path& default_dir,
              const boost::program_options::variables_map& vars);

// The pieces of run_sweep, shared with a search's rounds (search_command.cpp).
//
// Composes, resolves and validates every trial before anything runs; `each` sees each planned
// trial with its resolved config.
using PlannedHook = std::function<void(sweep::PlannedTrial&, const config::Node& resolved)>;
std::vector<sweep::PlannedTrial> plan_trials(const std::filesystem::path& experiment, std::vector<sweep::TrialSpec> trials,
                                             const boost::program_options::variables_map& vars, const PlannedHook& each = {});
// The arguments every trial's `prefopt run` gets from this command line (kept in sweep.json).
std::vector<std::string> run_arguments(const boost::program_options::variables_map& vars);
struct SweepSetup {
  std::string launcher;  // local or slurm
  Params slurm;          // [launcher.slurm]
  std::filesystem::path sweep_dir;
  std::optional<FileLock> lock;  // sweep.lock, held while this process runs the sweep
};
// Checks the launch options, makes the sweep folder and takes its lock (ConfigError when another
// process holds it).
SweepSetup prepare_sweep(const sweep::SweepSpec& spec, const std::filesystem::path& default_dir,
                         const boost::program_options::variables_map& vars);
struct TrialsRun {
  std::string unfinished;    // what did not finish and what to do, or empty
  bool interrupted = false;  // SIGINT/SIGTERM stopped the local launcher
  bool waited = true;        // false: submitted to Slurm without --wait
};
// Runs the trials of `planned` (sweep.json's, in order) that have not finished: locally, or as a
// Slurm job array, followed until it leaves the queue when `wait`.
TrialsRun run_trials(const SweepSetup& setup, const std::vector<sweep::PlannedTrial>& planned,
                     const boost::program_options::variables_map& vars, bool wait);
// Indexes, prints and reports what the sweep's trials produced; then says `unfinished`, if
// anything did not finish. Returns the exit status (0, 1).
int conclude(const std::filesystem::path& sweep_dir, const std::string& unfinished);
// conclude(), or 130 after an interrupt.
int finish_sweep(const std::filesystem::path& sweep_dir, const TrialsRun& run);
// run_sweep for a sweep file with [search]: rounds of proposals, see sweep/search.h.
int run_search(const sweep::SweepSpec& spec, const std::filesystem::path& default_dir,
               const boost::program_options::variables_map& vars);

// Parses `args` against `options` (+ positional names); prints help and returns true on --help.
bool parse_args(const Args& args, const std::string& usage,
                boost::program_options::options_description options,
                const boost::program_options::positional_options_description& positional,
                boost::program_options::variables_map& vars);

}  // namespace prefopt::cli
