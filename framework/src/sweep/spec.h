// Sweeps: which trials to run. A sweep file (sweeps/*.toml) or `prefopt run -m` names an
// experiment and the overrides to vary:
//
//   experiment = "../experiments/comparison.toml"   # relative to the sweep file
//   overrides = ["train.steps=150"]                  # every trial (sweeps allowed: a grid axis)
//   seeds = [0, 1, 2]                                # a first-class axis, varied fastest
//   [grid]                                           # the cartesian product, first key slowest
//   algorithm = "ppo,dpo,orpo"
//   "annotator.rate" = "0.0,0.1,0.25"
//   [random]                                         # `count` draws, from `seed`
//   count = 8
//   seed = 0
//   [random.params]
//   "algorithm.learning_rate" = "tag(log, interval(1e-4, 1e-2))"
//   [per_option.algorithm.dpo]                       # only trials that compose algorithm=dpo
//   "algorithm.beta" = "0.05,0.1,0.5"
//   [search]                                         # instead of [random]: see sweep/search.h
//   sampler = "tpe"
//   budget = 16
//   [search.space]
//   "algorithm.learning_rate" = "tag(log, interval(1e-5, 1e-3))"
//   [launcher]                                       # or launcher = "slurm"
//   name = "slurm"                                   # "local" (the default) or "slurm"
//   [launcher.slurm]                                 # see sweep/slurm.h
//   partition = "gpu"
//
// Values use the command line's sweep syntax (a,b / choice() / range() / interval() / glob()).
// Each trial is a list of concrete overrides; its name is the swept ones, readable, plus a
// stable hash of all of them, so names never collide and stay the same across runs.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "config/compose.h"

namespace prefopt::sweep {

using KeyValues = std::vector<std::pair<std::string, std::string>>;  // key, values in sweep syntax
using PerOption = std::vector<std::pair<std::pair<std::string, std::string>, KeyValues>>;  // (group, option) -> values

// Early stopping of a search's trials on their intermediate evaluations (sweep/search.h).
struct PrunerSpec {
  std::string kind = "none";    // none, asha, hyperband
  std::int64_t min_step = 0;    // the first rung: the training step of an evaluation
  std::int64_t reduction = 3;   // η: a rung keeps the best 1/η
};

// [search]: each combination of the grid (a study: an algorithm, say) searches its space with
// the same budget of configurations, each run with every seed.
struct SearchSpec {
  std::string sampler = "tpe";           // random, tpe, gp
  std::int64_t budget = 0;               // configurations per study
  std::uint64_t seed = 0;
  std::string objective = "final_gold";  // final_gold or best_gold, maximized, averaged over seeds
  std::int64_t startup = 8;              // random configurations before the model's (tpe, gp)
  std::int64_t batch = 1;                // configurations per study proposed at once (a round)
  KeyValues space;                       // every study's
  PerOption per_option;                  // only studies composing that group option
  PrunerSpec pruner;
};

inline const std::vector<std::string> kObjectives = {"final_gold", "best_gold"};

struct SweepSpec {
  std::filesystem::path experiment;
  std::vector<std::string> overrides;  // applied to every trial; may hold sweeps
  std::vector<std::int64_t> seeds;     // empty: the experiment's own seed
  KeyValues grid;
  std::int64_t random_count = 0;
  std::uint64_t random_seed = 0;
  KeyValues random;
  PerOption per_option;  // grids
  std::optional<SearchSpec> search;
  std::string launcher = "local";     // "local" or "slurm"
  std::optional<config::Node> slurm;  // the [launcher.slurm] table, checked by sweep::slurm_options
};

// Reads a sweep file. Throws ConfigError naming file:line for unknown keys (with a did-you-mean)
// and values of the wrong type.
SweepSpec load_sweep_file(const std::filesystem::path& file);

// The sweep of `prefopt run -m EXPERIMENT OVERRIDES`: the overrides, with the experiment's
// `[prefopt.sweep]` keys that the command line does not set as grid axes.
SweepSpec command_line_sweep(const std::filesystem::path& experiment, const std::vector<std::string>& overrides);

struct TrialSpec {
  std::string name;                    // "<swept overrides>-<hash>", safe as a folder name
  std::vector<std::string> overrides;  // all of the trial's overrides, as `prefopt run` takes them
  std::vector<std::string> swept;      // the ones that vary across the sweep
};

// Expands the sweep into its trials (per-option grids applied by the composed group option).
// Throws ConfigError for a bad value, an empty axis, or two identical trials.
std::vector<TrialSpec> expand(const SweepSpec& spec, const config::Composer& composer);

// One trial per seed (one with the experiment's own seed when `seeds` is empty): `overrides`
// (less any seed override) and `swept`, each with `seed=N` appended, named by trial_name.
std::vector<TrialSpec> with_seeds(const std::vector<std::string>& overrides, const std::vector<std::string>& swept,
                                  const std::vector<std::int64_t>& seeds);

// "<swept, with unsafe characters replaced>-<first 8 hex of the overrides' hash>".
std::string trial_name(const std::vector<std::string>& swept, const std::vector<std::string>& overrides);

}  // namespace prefopt::sweep
