// A sweep's results: the trial folders, indexed in SQLite (SWEEP_DIR/results.sqlite, rebuilt from
// the folders when missing or older than them), and aggregated over seeds.
//
// Tables: trials(name, position, state, exit_status, algorithm, overrides, swept),
// params(trial, key, value) — the trial's swept overrides —, finals(trial, key, value) — final and
// best gold, the drop between them and √KL at the best, proxy, KL, win rate —, metrics(trial, step, key, value) — every number of every
// evaluation row. `sqlite3 results.sqlite` answers questions the commands do not.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "sweep/gao_fit.h"

namespace prefopt::sweep {

struct TrialResult {
  std::string name;
  std::string state;  // finished, pruned (a search stopped it early), diverged, failed, interrupted, or not run
  int exit_status = 0;
  std::string algorithm;
  std::vector<std::pair<std::string, std::string>> params;  // swept key -> value text
  std::map<std::string, double> finals;                     // final_gold, best_gold, gold_drop, ...
  std::map<std::int64_t, std::map<std::string, double>> curve;  // step -> metric -> value
};

// A finished trial's evaluations as (√KL, gold gained over the reference policy): the points
// Gao's forms are fitted to; none without a reference gold.
std::vector<std::pair<double, double>> gold_gains(const TrialResult& result);

// The final numbers of a trial, in the order they are reported.
const std::vector<std::string>& final_metrics();

// Reads the index, building it first when missing or stale. Throws ConfigError when `sweep_dir`
// is not a sweep folder (no sweep.json).
std::vector<TrialResult> load_results(const std::filesystem::path& sweep_dir);
// Builds SWEEP_DIR/results.sqlite from the trial folders (atomically replacing an old one).
void build_index(const std::filesystem::path& sweep_dir);

struct Statistic {
  std::int64_t n = 0;
  double mean = 0;
  double sd = 0;    // sample standard deviation (n − 1); NaN for n = 1
  double ci95 = 0;  // half-width of the 95% confidence interval, t(0.975, n − 1) · sd / √n
};
Statistic summarize(const std::vector<double>& values);

struct Group {
  std::vector<std::pair<std::string, std::string>> key;  // group-by key -> value
  std::string algorithm;                                 // when all its trials share one
  std::map<std::string, Statistic> stats;                // per final metric, over finished trials
  std::int64_t failed = 0;                               // trials not finished otherwise
  std::int64_t pruned = 0;                               // trials a search stopped early: not averaged
  std::int64_t diverged = 0;                             // trials whose run diverged: not averaged
  // Gao's form (best-of-n's for best_of_n, RL's for trainers) fitted to the gold gained over the
  // reference policy against √KL at every evaluation, pooled over the group's finished trials;
  // none for a group of mixed algorithms or too few points.
  std::optional<GaoFit> fit;
};

// Groups the trials by the values of `group_by` (default: every swept key but `seed`), in order
// of first appearance, summarizes each final metric over a group's finished trials, and fits
// Gao's form to each group's gold against √KL.
std::vector<Group> aggregate(const std::vector<TrialResult>& results, std::vector<std::string> group_by);

// The groups as `prefopt results` prints them: "table" (mean ± 95% CI, then the fits), "csv"
// (mean, sd, ci95 per metric; empty cells for undefined values) or "json" (null for them; the fit
// as "gao_fit").
std::string format_results(const std::vector<Group>& groups, const std::string& format);

}  // namespace prefopt::sweep
