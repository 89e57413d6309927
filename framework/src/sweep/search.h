// Search sweeps: a sweep file's [search] table tunes hyperparameters with a sampler instead of a
// fixed grid, and may stop unpromising trials early.
//
//   [grid]
//   algorithm = "ppo,dpo,orpo"        # three studies, each with the same budget
//   [search]
//   sampler = "tpe"                   # random, tpe, gp (sweep/samplers.h)
//   budget = 16                       # configurations per study, each run with every seed
//   objective = "final_gold"          # or best_gold; the mean over the seeds is maximized
//   [search.space]
//   "algorithm.learning_rate" = "tag(log, interval(1e-5, 1e-3))"
//   [search.per_option.algorithm.dpo]
//   "algorithm.beta" = "tag(log, interval(0.02, 2))"
//   [search.pruner]
//   kind = "asha"                     # none, asha, hyperband
//   min_step = 20
//   reduction = 3
//
// The search goes in rounds: each study proposes `batch` configurations from the results of the
// rounds before (the later ones of a batch against pessimistic stand-ins for the earlier ones),
// all their trials run, then the next round. Proposals and pruning thresholds depend on nothing
// but finished rounds, so a search is reproducible for its seed, a re-run after kill -9 continues
// with exactly the history it had, and the Slurm launcher gives the same search as the local one.
//
// Pruning (successive halving, Li et al. 2020): the rungs are the training steps
// min_step · η^k. A trial whose objective so far (gold at the first evaluation at or after a rung,
// or the best gold up to it) is not among the best ⌊m/η⌋ of the m values that the trial and the
// earlier rounds' trials of its study reached at that rung (m ≥ η) stops there, recorded as
// pruned with its last metrics. Each trial carries its thresholds in sweep.json and applies them
// itself, under any launcher. hyperband runs several such ladders side by side, rung k of bracket
// b at min_step · η^(b+k), configurations assigned to brackets in turn (Li et al. 2018).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "sweep/results.h"
#include "sweep/samplers.h"
#include "sweep/spec.h"

namespace prefopt::sweep {

// One combination of the grid, searched on its own.
struct Study {
  std::vector<std::string> overrides;  // the combination's, without the seed
  std::vector<std::string> swept;      // its grid values, for names and the report
  std::vector<Dimension> space;        // [search.space] and the matching [search.per_option]
  std::string label() const;           // "algorithm=dpo", or "all" for a sweep without a grid
};

// The studies of a search sweep, in grid order. ConfigError for a parameter that is also a grid
// axis or a fixed override, or a value that is not a range.
std::vector<Study> plan_studies(const SweepSpec& spec, const config::Composer& composer);

// A trial's objective from its summary.json (its last evaluation's gold, or its best gold).
double trial_objective(const nlohmann::json& summary, const std::string& objective);
// The objective so far at the first evaluation at or after `step`; nullopt before it.
std::optional<double> objective_at(const std::vector<nlohmann::json>& rows, std::int64_t step, const std::string& objective);

struct Rung {
  std::int64_t step;
  double threshold;  // stop when the objective there is below it
};

struct PruneRule {
  std::string objective;
  std::vector<Rung> rungs;  // only rungs with enough earlier values

  nlohmann::json to_json() const;
  static PruneRule from_json(const nlohmann::json& value);  // ConfigError when malformed
};

// How many hyperband brackets fit in `steps` (1 for asha).
std::int64_t bracket_count(const PrunerSpec& pruner, std::int64_t steps);

// The rule of a trial in `bracket` training `steps` steps, from the metrics rows of the earlier
// rounds' trials of its study and bracket.
PruneRule prune_rule(const PrunerSpec& pruner, const std::string& objective, std::int64_t bracket, std::int64_t steps,
                     const std::vector<std::vector<nlohmann::json>>& earlier);

// Why a trial with these evaluation rows stops ("pruned at step 40: gold 0.12 < 0.31, ..."), or
// nullopt when it goes on.
std::optional<std::string> prune_reason(const PruneRule& rule, const std::vector<nlohmann::json>& rows);

// A search's configurations with their results, per study: what `prefopt results` and the report
// show of it.
struct SearchedConfiguration {
  std::int64_t index = 0;  // in its study, in proposal order
  std::int64_t round = 0;
  std::vector<std::pair<std::string, std::string>> params;  // searched key -> value text
  std::vector<std::string> trials;  // one per seed
  std::vector<double> values;       // the objective of each trial that ended (finished or pruned)
  std::int64_t pruned = 0;
  std::int64_t unfinished = 0;
  Statistic objective;  // over `values`
  double final_gold = 0, final_kl = 0;  // means over the trials that ended, for the gold–KL front
  bool complete() const { return pruned == 0 && unfinished == 0 && !values.empty(); }
};

struct StudyResults {
  std::string label;
  std::vector<SearchedConfiguration> configurations;
  std::optional<std::size_t> best;  // the complete configuration with the highest mean objective

  std::int64_t pruned_trials() const {
    std::int64_t pruned = 0;
    for (const SearchedConfiguration& c : configurations) pruned += c.pruned;
    return pruned;
  }
};

struct SearchResults {
  std::string sampler;
  std::string objective;
  std::vector<std::string> keys;      // every searched key, in order of appearance
  std::set<std::string> log_keys;     // searched on a log scale
  std::vector<StudyResults> studies;
};

// Null for a sweep without [search].
std::optional<SearchResults> search_results(const nlohmann::json& manifest, const std::vector<TrialResult>& results);

// The best configuration of each study, as `prefopt results` prints it under the groups.
std::string format_search(const SearchResults& search);

}  // namespace prefopt::sweep
