// `prefopt sweep` of a sweep file with [search]: the search's rounds (sweep/search.h). Each round's
// proposals are planned, validated and recorded in sweep.json before any of them runs, so a
// re-run finds them there and continues the round; a new round is proposed only from finished ones.
#include <fmt/format.h>

#include <cmath>
#include <map>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "pipeline/sections.h"
#include "run_files.h"
#include "sweep/manifest.h"
#include "sweep/search.h"
#include "text.h"

namespace po = boost::program_options;
namespace fs = std::filesystem;
using nlohmann::json;

namespace prefopt::cli {
namespace {

using Params = std::vector<std::pair<std::string, std::string>>;  // searched key -> value text

// One configuration of a study: its trials (one per seed), by index into sweep.json's.
struct Configuration {
  std::int64_t round = 0;
  Params params;
  std::vector<std::size_t> trials;
};

std::vector<std::vector<Configuration>> configurations(const std::vector<sweep::PlannedTrial>& planned, std::size_t studies) {
  std::vector<std::vector<Configuration>> out(studies);
  for (std::size_t i = 0; i < planned.size(); ++i) {
    const json& search = planned[i].search;
    const auto study = search.at("study").get<std::size_t>();
    const auto index = search.at("config").get<std::size_t>();
    if (study >= studies) throw ConfigError("sweep.json names a study the sweep file does not have; give another --out");
    if (out[study].size() <= index) out[study].resize(index + 1);
    Configuration& c = out[study][index];
    c.round = search.at("round").get<std::int64_t>();
    c.params = search.at("params").get<Params>();
    c.trials.push_back(i);
  }
  return out;
}

sweep::Point point_of(const sweep::Study& study, const Params& params) {
  sweep::Point point;
  for (std::size_t d = 0; d < study.space.size(); ++d) point.push_back(study.space[d].coordinate(params.at(d).second));
  return point;
}

// A new search into a folder with an earlier one continues it only when everything that decided
// its trials is the same; the budget alone may change (a larger one searches on).
void check_same_search(const json& manifest, const sweep::SweepSpec& spec, const fs::path& sweep_dir) {
  if (!manifest.contains("search"))
    throw ConfigError(fmt::format("'{}' holds a sweep without [search]; give the search another --out", sweep_dir.string()));
  json before = manifest["search"], now = sweep::search_json(*spec.search);
  before.erase("budget");
  now.erase("budget");
  std::vector<std::string> changed;
  for (const auto& [key, value] : now.items())
    if (before.value(key, json()) != value) changed.push_back("search." + key);
  const auto compare = [&](const char* key, const json& value) {
    if (manifest.value(key, json()) != value) changed.emplace_back(key);
  };
  compare("experiment", spec.experiment.string());
  compare("overrides", spec.overrides);
  compare("seeds", spec.seeds);
  compare("grid", spec.grid);
  if (!changed.empty())
    throw ConfigError(fmt::format("the search in '{}' was started with another {}; its recorded trials were proposed "
                                  "under the old one. Restore it to continue the search (only search.budget may "
                                  "change), or give another --out.",
                                  sweep_dir.string(), join(changed, ", ")));
}

// A configuration's trials, one per seed of the sweep.
std::vector<sweep::TrialSpec> trials_of(const sweep::SweepSpec& spec, const sweep::Study& study, const Params& params) {
  std::vector<std::string> overrides = study.overrides, swept = study.swept;
  for (const auto& [key, value] : params) {
    overrides.push_back(key + "=" + value);
    swept.push_back(key + "=" + value);
  }
  return sweep::with_seeds(overrides, swept, spec.seeds);
}

// Plans one trial of each study, at the middle of its space, so that a misspelt or invalid
// parameter stops the search before its folder is made, as a grid's bad value does.
void check_spaces(const sweep::SweepSpec& spec, const std::vector<sweep::Study>& studies, const po::variables_map& vars) {
  for (const sweep::Study& study : studies) {
    Params middle;
    for (const sweep::Dimension& d : study.space)
      middle.emplace_back(d.key, d.value_text(d.kind == sweep::Dimension::Kind::categorical ? 0.0 : 0.5));
    plan_trials(spec.experiment, {trials_of(spec, study, middle).front()}, vars);
  }
}

class Search {
 public:
  Search(const sweep::SweepSpec& spec, std::vector<sweep::Study> studies, const fs::path& sweep_dir,
         const po::variables_map& vars)
      : spec_(spec), search_(*spec.search), studies_(std::move(studies)), sweep_dir_(sweep_dir), vars_(vars) {}

  std::vector<sweep::PlannedTrial> planned;  // sweep.json's trials, in order

  // The next round's trials, planned; none when every study has spent its budget.
  std::vector<sweep::PlannedTrial> propose_round(std::int64_t round) {
    const auto configs = configurations(planned, studies_.size());
    std::vector<sweep::TrialSpec> trials;
    std::vector<json> search_info;
    for (std::size_t s = 0; s < studies_.size(); ++s) {
      const sweep::Study& study = studies_[s];
      std::vector<sweep::Observation> history = observations(study, configs[s]);
      std::vector<Params> taken;
      for (const Configuration& c : configs[s]) taken.push_back(c.params);
      const auto left = std::max<std::int64_t>(0, search_.budget - static_cast<std::int64_t>(configs[s].size()));
      // The later proposals of a batch see the earlier ones as stand-ins valued at the worst
      // result so far (a "constant liar"), so that they look elsewhere.
      double worst = 0;
      if (!history.empty())
        worst = std::min_element(history.begin(), history.end(), [](const auto& a, const auto& b) { return a.value < b.value; })->value;
      for (std::int64_t j = 0; j < std::min(search_.batch, left); ++j) {
        const std::size_t index = configs[s].size() + static_cast<std::size_t>(j);
        std::optional<Params> params = propose(s, index, history, taken);
        if (!params) {
          fmt::print(stderr, "search: study {} finds no configuration it has not tried; it ends at {}\n", study.label(), index);
          break;
        }
        taken.push_back(*params);
        history.push_back({point_of(study, *params), worst});
        for (sweep::TrialSpec& trial : trials_of(spec_, study, *params)) {
          trials.push_back(std::move(trial));
          search_info.push_back({{"study", s}, {"config", index}, {"round", round}, {"params", *params}});
        }
      }
    }
    std::size_t next = 0;
    return plan_trials(spec_.experiment, std::move(trials), vars_, [&](sweep::PlannedTrial& trial, const config::Node& config) {
      trial.search = search_info[next++];
      add_prune_rule(trial, pipeline_section(config, "train").get<std::int64_t>("steps"));
    });
  }

 private:
  // What the sampler learns from: each configuration's mean objective over its trials. A
  // configuration with a pruned trial ranks below every complete one (its early value would
  // flatter it when gold falls with training), in the order of its own values, as Optuna's TPE
  // ranks pruned trials; one with a diverged trial ranks below all of them.
  std::vector<sweep::Observation> observations(const sweep::Study& study, const std::vector<Configuration>& configs) const {
    enum class End { complete, pruned, diverged };
    std::vector<sweep::Observation> out;  // in proposal order: TPE weighs recent ones more
    std::vector<End> ends;
    for (const Configuration& c : configs) {
      double sum = 0;
      End end = End::complete;
      for (const std::size_t i : c.trials) {
        const json summary = run_files::read_summary(sweep_dir_ / planned[i].spec.name);
        const std::string ending = run_files::ending(summary);
        sum += ending.empty() ? std::nan("") : sweep::trial_objective(summary, search_.objective);
        if (ending == "diverged")
          end = End::diverged;
        else if (ending == "pruned" && end == End::complete)
          end = End::pruned;
      }
      const double value = sum / static_cast<double>(c.trials.size());
      if (std::isnan(value) && end != End::diverged) continue;
      out.push_back({point_of(study, c.params), value});
      ends.push_back(end);
    }
    double floor = INFINITY, top = -INFINITY;
    for (std::size_t i = 0; i < out.size(); ++i) {
      if (ends[i] == End::pruned)
        top = std::max(top, out[i].value);
      else if (ends[i] == End::complete)
        floor = std::min(floor, out[i].value);
    }
    if (std::isfinite(floor) && std::isfinite(top))
      for (std::size_t i = 0; i < out.size(); ++i)
        if (ends[i] == End::pruned) out[i].value = floor - (top - out[i].value) - 1e-6 * (1 + std::abs(floor));
    double lowest = INFINITY;
    for (std::size_t i = 0; i < out.size(); ++i)
      if (ends[i] != End::diverged) lowest = std::min(lowest, out[i].value);
    for (std::size_t i = 0; i < out.size(); ++i)
      if (ends[i] == End::diverged) out[i].value = std::isfinite(lowest) ? lowest - 1 - std::abs(lowest) : -1.0;
    return out;
  }

  // A configuration not tried yet: the sampler's proposal on eight streams, then random draws,
  // before a small discrete space counts as exhausted.
  std::optional<Params> propose(std::size_t s, std::size_t index, const std::vector<sweep::Observation>& history,
                                const std::vector<Params>& taken) const {
    const sweep::Study& study = studies_[s];
    const sweep::SamplerSettings settings{search_.sampler, search_.startup, search_.seed};
    for (std::uint64_t attempt = 0; attempt < 32; ++attempt) {
      const std::uint64_t stream = (static_cast<std::uint64_t>(s) << 40) ^ (static_cast<std::uint64_t>(index) << 8) ^ attempt;
      const sweep::Point point = sweep::propose(study.space, history, attempt < 8 ? settings : sweep::SamplerSettings{"random", 0, search_.seed}, stream);
      Params params;
      for (std::size_t d = 0; d < study.space.size(); ++d) params.emplace_back(study.space[d].key, study.space[d].value_text(point[d]));
      if (std::find(taken.begin(), taken.end(), params) == taken.end()) return params;
    }
    return std::nullopt;
  }

  // The thresholds of the trial's bracket, from the earlier rounds' trials of its study there.
  void add_prune_rule(sweep::PlannedTrial& trial, std::int64_t steps) {
    const sweep::PrunerSpec& pruner = search_.pruner;
    if (pruner.kind == "none") return;
    const auto study = trial.search["study"].get<std::size_t>();
    const auto bracket = static_cast<std::int64_t>(trial.search["config"].get<std::size_t>()) % sweep::bracket_count(pruner, steps);
    const auto round = trial.search["round"].get<std::int64_t>();
    std::vector<std::vector<json>> earlier;
    for (const sweep::PlannedTrial& p : planned) {
      const json& s = p.search;
      if (s["study"] == study && s["round"].get<std::int64_t>() < round &&
          static_cast<std::int64_t>(s["config"].get<std::size_t>()) % sweep::bracket_count(pruner, steps) == bracket)
        earlier.push_back(rows_of(p.spec.name));
    }
    trial.search["bracket"] = bracket;
    trial.search["prune"] = sweep::prune_rule(pruner, search_.objective, bracket, steps, earlier).to_json();
  }

  const std::vector<json>& rows_of(const std::string& name) {
    auto [it, inserted] = rows_.try_emplace(name);
    if (inserted) it->second = run_files::read_metrics(sweep_dir_ / name);
    return it->second;
  }

  const sweep::SweepSpec& spec_;
  const sweep::SearchSpec& search_;
  std::vector<sweep::Study> studies_;
  fs::path sweep_dir_;
  const po::variables_map& vars_;
  std::map<std::string, std::vector<json>> rows_;  // finished trials' metrics, read once
};

}  // namespace

int run_search(const sweep::SweepSpec& spec, const fs::path& default_dir, const po::variables_map& vars) {
  std::vector<sweep::Study> studies;
  {
    Registries registries;
    studies = sweep::plan_studies(spec, experiment_composer(spec.experiment.string(), vars, registries));
  }
  if (vars["extend"].as<bool>())
    throw ConfigError("--extend adds trials to a grid; a search grows by its budget: raise budget in [search] and run it again");
  check_spaces(spec, studies, vars);
  const sweep::SearchSpec& search = *spec.search;
  const std::size_t seeds = std::max<std::size_t>(spec.seeds.size(), 1);
  if (vars["dry-run"].as<bool>()) {
    for (const sweep::Study& study : studies) {
      std::vector<std::string> keys;
      for (const sweep::Dimension& d : study.space) keys.push_back(d.key);
      fmt::print("{}\tsearches {}\n", study.label(), join(keys, ", "));
    }
    fmt::print(stderr, "{} stud{}, {} sampler, {} configurations each, {} trial{} per configuration: up to {} trials\n",
               studies.size(), studies.size() == 1 ? "y" : "ies", search.sampler, search.budget, seeds, seeds == 1 ? "" : "s",
               studies.size() * static_cast<std::size_t>(search.budget) * seeds);
    return 0;
  }
  const SweepSetup setup = prepare_sweep(spec, default_dir, vars);
  Search state(spec, std::move(studies), setup.sweep_dir, vars);
  if (sweep::is_sweep_dir(setup.sweep_dir)) {
    const json manifest = sweep::read_manifest(setup.sweep_dir);
    check_same_search(manifest, spec, setup.sweep_dir);
    state.planned = sweep::recorded_trials(manifest);
    std::vector<sweep::TrialSpec> recorded;
    for (const sweep::PlannedTrial& t : state.planned) recorded.push_back(t.spec);
    // Composed again: an experiment edited since changes their resolved configs, refused here.
    sweep::check_resume(setup.sweep_dir, spec.experiment, plan_trials(spec.experiment, recorded, vars), false);
  }
  for (std::int64_t round = 0;; ++round) {
    const bool recorded = std::any_of(state.planned.begin(), state.planned.end(), [&](const sweep::PlannedTrial& t) {
      return t.search.at("round").get<std::int64_t>() == round;
    });
    if (!recorded) {
      std::vector<sweep::PlannedTrial> fresh = state.propose_round(round);
      if (fresh.empty()) break;
      fmt::print(stderr, "search: round {}: {} new trial{}\n", round, fresh.size(), fresh.size() == 1 ? "" : "s");
      state.planned.insert(state.planned.end(), std::make_move_iterator(fresh.begin()), std::make_move_iterator(fresh.end()));
    }
    sweep::write_manifest(setup.sweep_dir, spec, setup.launcher, run_arguments(vars), state.planned);
    const bool done = std::all_of(state.planned.begin(), state.planned.end(), [&](const sweep::PlannedTrial& t) {
      return run_files::finished(setup.sweep_dir / t.spec.name);
    });
    if (done) continue;  // a round recorded and finished before
    TrialsRun run = run_trials(setup, state.planned, vars, /*wait=*/true);
    if (run.interrupted || !run.unfinished.empty()) {
      if (!run.interrupted)
        run.unfinished += fmt::format("; the search proposes its next round once round {} has finished", round);
      return finish_sweep(setup.sweep_dir, run);
    }
  }
  fmt::print(stderr, "search: every study has tried its {} configurations\n", search.budget);
  return finish_sweep(setup.sweep_dir, {});  // diverged trials are results of a search: ranked last, no failure
}

}  // namespace prefopt::cli
