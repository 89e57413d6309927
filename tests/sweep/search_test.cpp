// Search sweeps without running trials: the [search] table's checks, the studies a grid makes,
// the pruning rungs and thresholds against hand computations, and the best configurations the
// results report.
#include <catch2/catch.hpp>

#include <fstream>

#include "support.h"
#include "sweep/search.h"

using namespace prefopt;
using namespace prefopt::sweep;
using Catch::Contains;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

const fs::path kExperiment = fs::path(PREFOPT_SOURCE_DIR) / "experiments/comparison.toml";

// Evaluation rows with gold `values` at steps 0, 10, 20, ...
std::vector<json> rows(const std::vector<double>& values) {
  std::vector<json> out;
  for (std::size_t i = 0; i < values.size(); ++i) out.push_back({{"step", 10 * i}, {"gold", values[i]}});
  return out;
}

}  // namespace

TEST_CASE("[search] tables are checked with file and line", "[sweep][search]") {
  test::TempDir dir;
  const auto error_of = [&](const std::string& text) {
    std::ofstream(dir.path() / "s.toml") << "experiment = \"" << kExperiment.string() << "\"\n" << text;
    try {
      load_sweep_file(dir.path() / "s.toml");
    } catch (const ConfigError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  const std::string space = "[search.space]\n\"algorithm.learning_rate\" = \"tag(log, interval(1e-5, 1e-3))\"\n";
  CHECK_THAT(error_of("[search]\nsampler = \"tpr\"\nbudget = 4\n" + space),
             Contains("s.toml:3") && Contains("did you mean 'tpe'?"));
  CHECK_THAT(error_of("[search]\nbudgets = 4\n" + space), Contains("s.toml:3") && Contains("did you mean 'budget'?"));
  CHECK_THAT(error_of("[search]\nsampler = \"tpe\"\n" + space), Contains("search needs budget"));
  CHECK_THAT(error_of("[search]\nbudget = 4\n"), Contains("search needs [search.space]"));
  CHECK_THAT(error_of("[search]\nbudget = 4\nobjective = \"gold\"\n" + space), Contains("final_gold, best_gold"));
  CHECK_THAT(error_of("[search]\nbudget = 4\n" + space + "[search.pruner]\nkind = \"asha\"\n"), Contains("needs min_step"));
  CHECK_THAT(error_of("[search]\nbudget = 4\n" + space + "[search.pruner]\nkind = \"asha\"\nmin_step = 5\nreduction = 1\n"),
             Contains("reduction must be at least 2"));
  CHECK_THAT(error_of("[search]\nbudget = 4\n" + space + "[random]\ncount = 2\n[random.params]\nseed = \"1,2\"\n"),
             Contains("[search] or [random], not both"));
  const SweepSpec spec = load_sweep_file(fs::path(PREFOPT_SOURCE_DIR) / "sweeps/tuned_comparison.toml");
  REQUIRE(spec.search);
  CHECK(spec.search->budget > 0);
}

TEST_CASE("a search has one study per grid combination, each with its own space", "[sweep][search]") {
  SweepSpec spec;
  spec.experiment = kExperiment;
  spec.grid = {{"algorithm", "ppo,dpo"}};
  spec.seeds = {0, 1};
  spec.search = SearchSpec{.budget = 4,
                           .space = {{"algorithm.learning_rate", "tag(log, interval(1e-5, 1e-3))"}},
                           .per_option = {{{"algorithm", "dpo"}, {{"algorithm.beta", "0.05,0.1,0.5"}}}},
                           .pruner = {}};
  const std::vector<Study> studies = plan_studies(spec, test::experiment_composer(kExperiment));
  REQUIRE(studies.size() == 2);
  CHECK(studies[0].label() == "algorithm=ppo");
  REQUIRE(studies[0].space.size() == 1);
  CHECK(studies[1].label() == "algorithm=dpo");
  REQUIRE(studies[1].space.size() == 2);
  CHECK(studies[1].space[1].kind == Dimension::Kind::ordinal);
  CHECK(studies[1].overrides == std::vector<std::string>{"algorithm=dpo"});

  spec.search->space.emplace_back("algorithm", "dpo,orpo");
  CHECK_THROWS_WITH(plan_studies(spec, test::experiment_composer(kExperiment)), Contains("'algorithm' is also set"));
  spec.search->space = {{"algorithm.learning_rate", "0.001"}};
  CHECK_THROWS_WITH(plan_studies(spec, test::experiment_composer(kExperiment)), Contains("needs a range of values"));
}

TEST_CASE("pruning keeps the best 1/η at each rung, against the earlier rounds' trials", "[sweep][search]") {
  const PrunerSpec asha{.kind = "asha", .min_step = 10, .reduction = 2};
  // Rungs at steps 10, 20 and 40 of 50 (80 is past the end). Earlier trials' gold at those steps:
  const std::vector<std::vector<json>> earlier = {rows({0, 1.0, 2.0, 2.0, 3.0}), rows({0, 3.0, 1.0, 1.0, 1.0}),
                                                  rows({0, 2.0, 0.5})};  // the last one pruned at 20
  const PruneRule rule = prune_rule(asha, "final_gold", 0, 50, earlier);
  // Rung 10: others {3, 2, 1} + this trial = 4 values, keep ⌊4/2⌋ = 2: reach the 2nd best of the
  // others, 2. Rung 20: {2, 1, 0.5}, keep 2: 1. Rung 40: {3, 1} + this = 3, keep 1: 3.
  REQUIRE(rule.rungs.size() == 3);
  CHECK(rule.rungs[0].step == 10);
  CHECK(rule.rungs[0].threshold == 2.0);
  CHECK(rule.rungs[1].step == 20);
  CHECK(rule.rungs[1].threshold == 1.0);
  CHECK(rule.rungs[2].step == 40);
  CHECK(rule.rungs[2].threshold == 3.0);

  CHECK_FALSE(prune_reason(rule, rows({0, 2.0})));  // ties are kept
  CHECK_FALSE(prune_reason(rule, rows({0, 2.5, 1.5, 9, 3.0})));
  CHECK_THAT(prune_reason(rule, rows({0, 1.9})).value(), Contains("pruned at step 10") && Contains("1.9000"));
  CHECK_THAT(prune_reason(rule, rows({0, 2.5, 0.9})).value(), Contains("step 20"));
  CHECK_FALSE(prune_reason(rule, rows({0, 2.5})));  // not at rung 20 yet
  // The first evaluation at or after a rung counts: with evaluations every 15 steps, step 15's
  // gold stands for rung 10.
  CHECK_THAT(prune_reason(rule, {{{"step", 0}, {"gold", 9}}, {{"step", 15}, {"gold", 1.0}}}).value(), Contains("step 10"));

  // best_gold: the best so far at the rung.
  const PruneRule best = prune_rule(asha, "best_gold", 0, 50, {rows({5, 0, 0}), rows({0, 1, 1})});
  REQUIRE(best.rungs.size() == 2);
  CHECK(best.rungs[0].threshold == 5.0);  // {5, 1} + this: keep 1
  CHECK(best.rungs[1].threshold == 5.0);

  // Too few earlier values for a rung: no bar there.
  CHECK(prune_rule({.kind = "asha", .min_step = 10, .reduction = 3}, "final_gold", 0, 50, {rows({0, 1, 1})}).rungs.empty());
  CHECK(prune_rule({.kind = "none"}, "final_gold", 0, 50, earlier).rungs.empty());

  // hyperband: brackets start at min_step · η^b.
  const PrunerSpec hyperband{.kind = "hyperband", .min_step = 10, .reduction = 2};
  CHECK(bracket_count(hyperband, 50) == 3);  // rungs 10, 20, 40 below 50
  CHECK(bracket_count(asha, 50) == 1);
  const PruneRule second = prune_rule(hyperband, "final_gold", 1, 50, earlier);
  REQUIRE(second.rungs.size() == 2);
  CHECK(second.rungs[0].step == 20);
  CHECK(second.rungs[1].step == 40);

  CHECK(PruneRule::from_json(rule.to_json()).rungs.size() == 3);
  CHECK_THROWS_WITH(PruneRule::from_json(json{{"rungs", 1}}), Contains("malformed prune rule"));
}

TEST_CASE("a search's best configuration per study is its best complete one", "[sweep][search]") {
  const auto trial = [](const std::string& name, std::size_t study, std::size_t config, const std::string& lr) {
    return json{{"name", name},
                {"swept", {study == 0 ? "algorithm=dpo" : "algorithm=orpo", "algorithm.learning_rate=" + lr, "seed=0"}},
                {"search", {{"study", study}, {"config", config}, {"round", config}, {"params", json::array({json::array({"algorithm.learning_rate", lr})})}}}};
  };
  const json manifest = {{"search", {{"sampler", "tpe"}, {"objective", "final_gold"}, {"space", json::array({json::array({"algorithm.learning_rate", "tag(log, interval(1e-5, 1e-3))"})})}}},
                         {"trials", {trial("a0", 0, 0, "1e-4"), trial("a1", 0, 0, "1e-4"), trial("b0", 0, 1, "2e-4"),
                                     trial("c0", 1, 0, "3e-4"), trial("d0", 1, 1, "4e-4")}}};
  const auto result = [](const std::string& name, const std::string& state, double gold) {
    return TrialResult{name, state, 0, "dpo", {}, {{"final_gold", gold}, {"best_gold", gold}}, {}};
  };
  const std::vector<TrialResult> results = {result("a0", "finished", 1.0), result("a1", "finished", 2.0),
                                            result("b0", "pruned", 5.0), result("c0", "finished", 0.5),
                                            result("d0", "failed", 0)};
  const std::optional<SearchResults> search = search_results(manifest, results);
  REQUIRE(search);
  REQUIRE(search->studies.size() == 2);
  const StudyResults& dpo = search->studies[0];
  CHECK(dpo.label == "algorithm=dpo");
  REQUIRE(dpo.configurations.size() == 2);
  CHECK(dpo.configurations[0].objective.mean == Approx(1.5));
  CHECK(dpo.configurations[0].objective.n == 2);
  CHECK(dpo.configurations[1].pruned == 1);
  CHECK(dpo.best == 0u);  // the pruned configuration's early 5.0 does not count
  CHECK(search->studies[1].best == 0u);
  CHECK(search->studies[1].configurations[1].unfinished == 1);
  CHECK(search->log_keys.contains("algorithm.learning_rate"));
  CHECK_THAT(format_search(*search), Contains("algorithm=dpo") && Contains("1.500 ± ") &&
                                         Contains("#0 algorithm.learning_rate=1e-4"));
  CHECK_FALSE(search_results(json{{"trials", json::array()}}, results));
}
