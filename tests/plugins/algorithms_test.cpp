// The algorithm SDK (training loop and budget, chosen/rejected pairs) and every built-in algorithm
// end to end on the synthetic task at small sizes, through `prefopt run` with a shared stage cache.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <ATen/CPUGeneratorImpl.h>

#include <cmath>
#include <fstream>

#include "prefopt/algorithm.h"
#include "support.h"

using namespace prefopt;
using Catch::Contains;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

at::Generator seeded(std::uint64_t seed) { return at::make_generator<at::CPUGeneratorImpl>(seed); }

struct Fixture {
  Registry registry = test::load_registry();
  std::unique_ptr<Task> task = registry.create<Task>("synthetic", {});
  Policy policy{PolicyOptions{.vocab = 32, .context = 16, .width = 16, .depth = 1, .heads = 2}};
  Policy reference = copy_policy(policy);
  PreferenceData preferences;
  at::Generator generator = seeded(1), evaluation_generator = seeded(2);
  std::vector<EvaluationPoint> points;

  AlgorithmContext context(TrainingBudget budget) {
    return {policy,
            reference,
            *task,
            preferences,
            [](const Sequences& s) { return torch::zeros({s.responses.size(0)}); },
            task->sample_prompts(8, generator),
            task->max_response_length(),
            1.0,
            budget,
            generator,
            evaluation_generator,
            [this](const EvaluationPoint& point) { points.push_back(point); },
            {}};
  }
};

const std::string kExperiment = (fs::path(PREFOPT_SOURCE_DIR) / "experiments/comparison.toml").string();
// Small enough for seconds per algorithm, large enough that each one's gain in gold reward is
// several standard errors: with 512 evaluation prompts a mean's is about 0.02 (gold_se).
const std::vector<std::string> kSmall = {
    "policy.width=32",         "sft.steps=150",          "sft.corpus_size=2048", "preferences.pairs=800",
    "preferences.held_out=100", "reward_models.members=1", "eval.prompts=512",     "train.eval_every=10",
    "annotator.rate=0.1"};

// One stage cache for every run here: SFT, preferences and the reward model are computed once.
const fs::path& shared_cache() {
  static const test::TempDir dir;
  return dir.path();
}

std::vector<json> run_algorithm(const fs::path& out, const std::vector<std::string>& extra) {
  std::vector<std::string> args = {"run", kExperiment, "--out", out.string(), "--cache", shared_cache().string()};
  args.insert(args.end(), kSmall.begin(), kSmall.end());
  args.insert(args.end(), extra.begin(), extra.end());
  const auto result = test::run_cli(args);
  INFO(result.err);
  REQUIRE(result.status == 0);
  std::vector<json> rows;
  std::ifstream in(out / "metrics.jsonl");
  for (std::string line; std::getline(in, line);) rows.push_back(json::parse(line));
  return rows;
}

}  // namespace

TEST_CASE("train evaluates at step 0, every eval_every steps and after the last one", "[algorithm]") {
  Fixture fixture;
  AlgorithmContext context = fixture.context({.steps = 7, .samples = 0, .eval_every = 3});
  std::vector<std::int64_t> steps_seen;
  train(context, "test", [&](std::int64_t step) {
    steps_seen.push_back(step);
    return StepReport{.samples = 4, .diagnostics = {{"value", static_cast<double>(step)}}};
  });
  CHECK(steps_seen == std::vector<std::int64_t>{1, 2, 3, 4, 5, 6, 7});
  REQUIRE(fixture.points.size() == 4);
  CHECK(fixture.points[0].step == 0);
  CHECK_FALSE(fixture.points[0].diagnostics.contains("value"));
  CHECK(fixture.points[1].step == 3);
  CHECK(fixture.points[1].diagnostics.at("value") == 2.0);  // mean of 1, 2, 3
  CHECK(fixture.points[2].diagnostics.at("value") == 5.0);
  CHECK(fixture.points[3].step == 7);
  CHECK(fixture.points[3].diagnostics.at("value") == 7.0);
  CHECK(fixture.points[3].diagnostics.at("samples") == 28.0);
  CHECK_FALSE(fixture.points[3].kl.has_value());  // estimated by the shared evaluation
  CHECK(fixture.points[3].responses.responses.size(0) == 8);
}

TEST_CASE("train stops when the sample budget is spent", "[algorithm]") {
  Fixture fixture;
  AlgorithmContext context = fixture.context({.steps = 100, .samples = 10, .eval_every = 50});
  std::int64_t steps = 0;
  train(context, "test", [&](std::int64_t) {
    ++steps;
    return StepReport{.samples = 4, .diagnostics = {}};
  });
  CHECK(steps == 3);  // 4, 8, then 12 >= 10
  REQUIRE(fixture.points.size() == 2);
  CHECK(fixture.points[1].step == 3);
}

TEST_CASE("chosen_and_rejected follows the labels and drops pairs not kept", "[algorithm]") {
  const torch::Tensor prompts = torch::arange(3, torch::kLong).view({3, 1});
  const Sequences a{prompts, torch::tensor({1, 2, 3}, torch::kLong).view({3, 1}), torch::ones({3}, torch::kLong)};
  const Sequences b{prompts, torch::tensor({4, 5, 6}, torch::kLong).view({3, 1}), torch::ones({3}, torch::kLong)};
  Labels labels;
  labels.votes = torch::zeros({3, 1}, torch::kBool);
  labels.annotators = torch::zeros({3, 1}, torch::kLong);
  labels.prefers_a = torch::tensor({true, false, true});
  labels.keep = torch::tensor({true, true, false});
  const ChosenRejected pairs = chosen_and_rejected({a, b, labels});
  REQUIRE(pairs.size() == 2);
  CHECK(pairs.chosen.responses.view({-1}).equal(torch::tensor({1, 5}, torch::kLong)));
  CHECK(pairs.rejected.responses.view({-1}).equal(torch::tensor({4, 2}, torch::kLong)));
}

TEST_CASE("every algorithm raises the gold reward above the reference policy's", "[algorithm][e2e]") {
  test::TempDir dir;
  // Per algorithm: the overrides, and the smallest gain in mean gold reward from step 0 to the
  // last evaluation required: at least 4 standard errors of the difference (checked below).
  const std::vector<std::pair<std::vector<std::string>, double>> cases = {
      {{"algorithm=ppo", "train.steps=20"}, 0.3},
      {{"algorithm=rloo", "train.steps=40", "algorithm.learning_rate=1e-3"}, 0.15},
      {{"algorithm=grpo", "train.steps=40", "algorithm.learning_rate=1e-3"}, 0.15},
      {{"algorithm=dpo", "train.steps=40"}, 0.2},
      {{"algorithm=dpo", "train.steps=40", "algorithm.loss=ipo", "algorithm.beta=0.5"}, 0.2},
      {{"algorithm=dpo", "train.steps=40", "algorithm.loss=rdpo", "algorithm.label_smoothing=0.1"}, 0.2},
      {{"algorithm=orpo", "train.steps=40"}, 0.15},
      {{"algorithm=simpo", "train.steps=40"}, 0.2},
      {{"algorithm=kto", "train.steps=40"}, 0.2},
  };
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const auto& [overrides, gain] = cases[i];
    SECTION(std::to_string(i) + " " + overrides.back()) {
      const auto rows = run_algorithm(dir.path() / std::to_string(i), overrides);
      REQUIRE(rows.size() >= 2);
      const double before = rows.front()["gold"].get<double>(), after = rows.back()["gold"].get<double>();
      INFO(overrides.front() << ": gold " << before << " -> " << after);
      CHECK(after - before >= gain);
      const double se = std::hypot(rows.front()["gold_se"].get<double>(), rows.back()["gold_se"].get<double>());
      CHECK(gain >= 4 * se);
      CHECK(rows.back()["kl"].get<double>() > 0.0);
      CHECK(rows.back()["algorithm"].contains("samples"));
    }
  }
}

TEST_CASE("ORPO lowers the rejected responses' likelihood relative to the chosen ones", "[algorithm][e2e]") {
  test::TempDir dir;
  const auto rows = run_algorithm(dir.path() / "orpo", {"algorithm=orpo", "train.steps=60", "train.eval_every=5"});
  // The margin a_w - a_l (average log-probs) on the training batches: at the start, and at the end.
  const double first = rows[1]["algorithm"]["margin"].get<double>(), last = rows.back()["algorithm"]["margin"].get<double>();
  INFO("margin " << first << " -> " << last);
  CHECK(last - first > 0.05);
  CHECK(rows.back()["algorithm"]["odds_ratio_loss"].get<double>() < rows[1]["algorithm"]["odds_ratio_loss"].get<double>());
}

TEST_CASE("PPO logs its diagnostics, and the same seed gives identical metrics", "[algorithm][e2e]") {
  test::TempDir dir;
  const std::vector<std::string> overrides = {"algorithm=ppo", "train.steps=4", "train.eval_every=2",
                                              "algorithm.kl_target=1.0"};
  const auto first = run_algorithm(dir.path() / "a", overrides);
  const auto second = run_algorithm(dir.path() / "b", overrides);
  REQUIRE(first.size() == 3);
  CHECK(first == second);
  for (const char* key : {"clip_fraction", "value_loss", "kl_coef", "approx_kl", "policy_loss", "rollout_kl", "score"})
    CHECK(first.back()["algorithm"].contains(key));
  // The adaptive controller moved the coefficient from its initial 0.05.
  CHECK(first.back()["algorithm"]["kl_coef"].get<double>() != 0.05);
}

TEST_CASE("a bad algorithm parameter is refused before anything runs", "[algorithm]") {
  test::TempDir dir;
  const auto result = test::run_cli({"run", kExperiment, "algorithm=dpo", "algorithm.loss=robust", "--out",
                                     (dir.path() / "run").string()});
  CHECK(result.status == 2);
  CHECK_THAT(result.err, Contains("algorithm.loss"));
  CHECK_THAT(result.err, Contains("rdpo"));
  CHECK_FALSE(fs::exists(dir.path() / "run"));
}
