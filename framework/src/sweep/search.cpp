#include "sweep/search.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "prefopt/error.h"
#include "text.h"

namespace prefopt::sweep {
using nlohmann::json;

std::string Study::label() const { return swept.empty() ? "all" : join(swept, " "); }

std::vector<Study> plan_studies(const SweepSpec& spec, const config::Composer& composer) {
  const SearchSpec& search = spec.search.value();
  SweepSpec grid = spec;  // the combinations alone: no seeds, no search
  grid.seeds.clear();
  grid.search.reset();
  std::set<std::string> fixed;
  for (const TrialSpec& cell : expand(grid, composer))
    for (const std::string& text : cell.overrides) fixed.insert(config::parse_override(text).key);

  std::vector<Study> studies;
  for (const TrialSpec& cell : expand(grid, composer)) {
    Study study{cell.overrides, cell.swept, {}};
    std::vector<config::Override> parsed;
    for (const std::string& text : cell.overrides) parsed.push_back(config::parse_override(text));
    const auto choices = composer.compose(parsed).choices;
    KeyValues space = search.space;
    for (const auto& [group_option, values] : search.per_option) {
      const auto chosen = choices.find(group_option.first);
      if (chosen != choices.end() && chosen->second == group_option.second) space.insert(space.end(), values.begin(), values.end());
    }
    for (const auto& [key, values] : space) {
      const std::string text = key + "=" + values;
      config::Override o;
      try {
        o = config::parse_override(text);
      } catch (const ConfigError& e) {
        throw ConfigError(fmt::format("search space: {}", e.what()));
      }
      if (fixed.contains(o.key))
        throw ConfigError(fmt::format("search space: '{}' is also set by the sweep's overrides or grid; search it or fix "
                                      "it, not both",
                                      o.key));
      const bool group = o.package || composer.is_group(o.key);
      try {
        study.space.push_back(dimension_of(o, group ? composer.group_options(o.key) : std::vector<std::string>{}));
      } catch (const ConfigError& e) {
        throw ConfigError(fmt::format("search space: {}", e.what()));
      }
    }
    if (study.space.empty())
      throw ConfigError(fmt::format("study {} has nothing to search: [search.space] is empty and no "
                                    "[search.per_option] matches it",
                                    study.label()));
    studies.push_back(std::move(study));
  }
  return studies;
}

double trial_objective(const json& summary, const std::string& objective) {
  const json& row = objective == "best_gold" ? summary.at("best_gold") : summary.at("final");
  return row.at("gold").is_number() ? row["gold"].get<double>() : std::nan("");
}

std::optional<double> objective_at(const std::vector<json>& rows, std::int64_t step, const std::string& objective) {
  double best = -std::numeric_limits<double>::infinity();
  for (const json& row : rows) {
    const double gold = row.value("gold", std::nan(""));
    best = std::max(best, std::isnan(gold) ? best : gold);
    if (row.value("step", std::int64_t{-1}) >= step) return objective == "best_gold" ? best : gold;
  }
  return std::nullopt;
}

json PruneRule::to_json() const {
  json rungs_json = json::array();
  for (const Rung& r : rungs) rungs_json.push_back({{"step", r.step}, {"threshold", r.threshold}});
  return {{"objective", objective}, {"rungs", rungs_json}};
}

PruneRule PruneRule::from_json(const json& value) {
  try {
    PruneRule rule{value.at("objective").get<std::string>(), {}};
    for (const json& r : value.at("rungs")) rule.rungs.push_back({r.at("step").get<std::int64_t>(), r.at("threshold").get<double>()});
    return rule;
  } catch (const json::exception& e) {
    throw ConfigError(fmt::format("a malformed prune rule in sweep.json ({}): {}", e.what(), value.dump()));
  }
}

std::int64_t bracket_count(const PrunerSpec& pruner, std::int64_t steps) {
  if (pruner.kind != "hyperband") return 1;
  std::int64_t count = 0;
  for (double rung = static_cast<double>(pruner.min_step); rung < static_cast<double>(steps);
       rung *= static_cast<double>(pruner.reduction))
    ++count;
  return std::max<std::int64_t>(count, 1);
}

PruneRule prune_rule(const PrunerSpec& pruner, const std::string& objective, std::int64_t bracket, std::int64_t steps,
                     const std::vector<std::vector<json>>& earlier) {
  PruneRule rule{objective, {}};
  if (pruner.kind == "none") return rule;
  const auto eta = static_cast<std::size_t>(pruner.reduction);
  double step = static_cast<double>(pruner.min_step) * std::pow(static_cast<double>(pruner.reduction), static_cast<double>(bracket));
  for (; step < static_cast<double>(steps); step *= static_cast<double>(pruner.reduction)) {
    const auto rung = static_cast<std::int64_t>(step);
    std::vector<double> values;
    for (const std::vector<json>& rows : earlier)
      if (const std::optional<double> v = objective_at(rows, rung, objective); v && !std::isnan(*v)) values.push_back(*v);
    // With this trial's own value there are m = values + 1; it must rank among the best ⌊m/η⌋,
    // that is, reach the ⌊m/η⌋-th best of the others.
    const std::size_t keep = (values.size() + 1) / eta;
    if (keep == 0) continue;
    std::sort(values.begin(), values.end(), std::greater<>());
    rule.rungs.push_back({rung, values[keep - 1]});
  }
  return rule;
}

std::optional<std::string> prune_reason(const PruneRule& rule, const std::vector<json>& rows) {
  for (const Rung& rung : rule.rungs) {
    const std::optional<double> value = objective_at(rows, rung.step, rule.objective);
    if (value && (std::isnan(*value) || *value < rung.threshold))
      return fmt::format("pruned at step {}: {} {:.4f} is below the rung's bar {:.4f}", rung.step,
                         rule.objective == "best_gold" ? "best gold" : "gold", *value, rung.threshold);
  }
  return std::nullopt;
}

}  // namespace prefopt::sweep

namespace prefopt::sweep {

std::optional<SearchResults> search_results(const json& manifest, const std::vector<TrialResult>& results) {
  if (!manifest.contains("search")) return std::nullopt;
  const json& spec = manifest["search"];
  SearchResults out{spec.value("sampler", ""), spec.value("objective", "final_gold"), {}, {}, {}};
  const auto note_space = [&](const json& space) {
    for (const json& entry : space)
      if (entry.at(1).get<std::string>().find("log") != std::string::npos) out.log_keys.insert(entry.at(0).get<std::string>());
  };
  note_space(spec.value("space", json::array()));
  for (const json& option : spec.value("per_option", json::array())) note_space(option.value("space", json::array()));
  std::map<std::string, const TrialResult*> by_name;
  for (const TrialResult& r : results) by_name[r.name] = &r;

  for (const json& trial : manifest.at("trials")) {
    if (!trial.contains("search")) continue;
    const json& search = trial["search"];
    const auto s = search.at("study").get<std::size_t>();
    const auto c = search.at("config").get<std::size_t>();
    if (out.studies.size() <= s) out.studies.resize(s + 1);
    StudyResults& study = out.studies[s];
    if (study.configurations.size() <= c) study.configurations.resize(c + 1);
    SearchedConfiguration& config = study.configurations[c];
    config.index = static_cast<std::int64_t>(c);
    config.round = search.at("round").get<std::int64_t>();
    config.params = search.at("params").get<std::vector<std::pair<std::string, std::string>>>();
    const std::string name = trial.at("name");
    config.trials.push_back(name);
    if (study.label.empty()) {
      std::vector<std::string> grid;  // the trial's swept values that are neither searched nor its seed
      for (const json& text : trial.at("swept")) {
        const std::string key = config::parse_override(text.get<std::string>()).key;
        const bool searched = std::any_of(config.params.begin(), config.params.end(), [&](const auto& p) { return p.first == key; });
        if (!searched && key != "seed") grid.push_back(text);
      }
      study.label = grid.empty() ? "all" : join(grid, " ");
    }
    for (const auto& [key, value] : config.params)
      if (std::find(out.keys.begin(), out.keys.end(), key) == out.keys.end()) out.keys.push_back(key);
    const auto found = by_name.find(name);
    const TrialResult* r = found == by_name.end() ? nullptr : found->second;
    if (r == nullptr || (r->state != "finished" && r->state != "pruned") || !r->finals.contains(out.objective)) {
      ++config.unfinished;
      continue;
    }
    config.values.push_back(r->finals.at(out.objective));
    const auto final = [&](const char* key) { return r->finals.contains(key) ? r->finals.at(key) : std::nan(""); };
    config.final_gold += final("final_gold");  // summed here, averaged below
    config.final_kl += final("final_kl");
    if (r->state == "pruned") ++config.pruned;
  }
  for (StudyResults& study : out.studies)
    for (SearchedConfiguration& config : study.configurations) {
      config.objective = summarize(config.values);
      const auto ended = static_cast<double>(config.values.size());
      config.final_gold = ended > 0 ? config.final_gold / ended : std::nan("");
      config.final_kl = ended > 0 ? config.final_kl / ended : std::nan("");
      if (!config.complete() || std::isnan(config.objective.mean)) continue;
      if (!study.best || config.objective.mean > study.configurations[*study.best].objective.mean)
        study.best = static_cast<std::size_t>(config.index);
    }
  return out;
}

std::string format_search(const SearchResults& search) {
  std::string out = fmt::format("\nSearch ({} sampler): the best configuration of each study by mean {} over its seeds ± 95% CI "
                                "(configurations with a pruned or unfinished trial are not candidates):\n",
                                search.sampler, search.objective);
  std::size_t width = 5;
  for (const StudyResults& study : search.studies) width = std::max(width, study.label.size());
  out += fmt::format("{:<{}}  {:>7}  {:>6}  {:>17}  {}\n", "study", width, "configs", "pruned", search.objective, "best configuration");
  for (const StudyResults& study : search.studies) {
    std::string best = "none complete yet", value = "-";
    if (study.best) {
      const SearchedConfiguration& c = study.configurations[*study.best];
      std::vector<std::string> params;
      for (const auto& [key, v] : c.params) params.push_back(key + "=" + v);
      best = fmt::format("#{} {}", c.index, join(params, " "));
      value = std::isnan(c.objective.ci95) ? fmt::format("{:.3f}", c.objective.mean)
                                           : fmt::format("{:.3f} ± {:.3f}", c.objective.mean, c.objective.ci95);
    }
    out += fmt::format("{:<{}}  {:>7}  {:>6}  {:>17}  {}\n", study.label, width, study.configurations.size(), study.pruned_trials(), value, best);
  }
  return out;
}

}  // namespace prefopt::sweep
