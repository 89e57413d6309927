// The algorithm SDK (training loop and budget, chosen/rejected pairs) and every built-in algorithm
// end to end on the synthetic task at small sizes, through `prefopt run` with a shared stage cache.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <torch/cuda.h>
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
    return {.policy = policy,
            .reference = reference,
            .task = *task,
            .preferences = preferences,
            .proxy_reward = [](const Sequences& s) { return torch::zeros({s.responses.size(0)}); },
            .evaluation_prompts = task->sample_prompts(8, generator),
            .response_length = task->max_response_length(),
            .temperature = 1.0,
            .budget = budget,
            .generator = generator,
            .evaluation_generator = evaluation_generator,
            .evaluate = [this](const EvaluationPoint& point) { points.push_back(point); },
            .progress = {}};
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
  return test::read_metrics(out);
}

// The mean gold reward rose from step 0 to the last evaluation by at least `gain`, and by at
// least 4 standard errors of the difference.
void check_gold_gain(const std::vector<json>& rows, double gain) {
  REQUIRE(rows.size() >= 2);
  const double before = rows.front()["gold"].get<double>(), after = rows.back()["gold"].get<double>();
  const double se = std::hypot(rows.front()["gold_se"].get<double>(), rows.back()["gold_se"].get<double>());
  INFO("gold " << before << " -> " << after << ", standard error " << se);
  CHECK(after - before >= std::max(gain, 4 * se));
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

TEST_CASE("group_extremes picks each group's best and worst row, ties to the earlier one", "[algorithm]") {
  // Three groups of three adjacent rows; the last group is all ties.
  const torch::Tensor scores = torch::tensor({0.5, -1.0, 2.0, 3.0, 3.0, -4.0, 1.0, 1.0, 1.0});
  const GroupExtremes extremes = group_extremes(scores, 3);
  CHECK(extremes.best.equal(torch::tensor({2, 3, 6}, torch::kLong)));
  CHECK(extremes.worst.equal(torch::tensor({1, 5, 6}, torch::kLong)));
  CHECK(group_extremes(scores, 1).best.equal(torch::arange(9, torch::kLong)));  // each row its own group
  CHECK_THROWS_WITH(group_extremes(scores, 2), Contains("9 scores do not split into groups of 2"));
  CHECK_THROWS_WITH(group_extremes(scores.view({3, 3}), 3), Contains("one score per row"));
}

namespace {

// The exact KL(best-of-n || reference) over `prompts`, by enumerating every two-token response:
// each response y has probability (F + p)^n - F^n under best-of-n, with p = pi_ref(y) and F the
// reference's mass on responses the proxy scores lower.
double exact_best_of_n_kl(Policy& reference, const torch::Tensor& prompts, std::int64_t vocab, std::int64_t eos,
                          double temperature, const std::function<torch::Tensor(const Sequences&)>& proxy,
                          std::int64_t n) {
  std::vector<std::int64_t> tokens;
  for (std::int64_t first = 0; first < vocab; ++first)
    for (std::int64_t second = 0; second < vocab; ++second)
      if (first != eos || second == eos) tokens.insert(tokens.end(), {first, second});  // EOS, then only EOS
  const torch::Tensor responses = torch::tensor(tokens, torch::kLong).view({-1, 2});
  const torch::Tensor lengths = torch::where(responses.select(1, 0) == eos, 1, 2).to(torch::kLong);
  double total = 0.0;
  for (std::int64_t i = 0; i < prompts.size(0); ++i) {
    const Sequences all{prompts[i].unsqueeze(0).expand({responses.size(0), -1}).contiguous(), responses, lengths};
    const torch::Tensor log_p = reference->response_log_probs(all, temperature).sum(1).to(torch::kDouble);
    const torch::Tensor p = log_p.exp();
    REQUIRE(p.sum().item<double>() == Approx(1.0).epsilon(1e-6));  // the enumeration is complete
    const torch::Tensor order = proxy(all).argsort();
    const torch::Tensor sorted_p = p.index_select(0, order), sorted_log_p = log_p.index_select(0, order);
    const torch::Tensor below = sorted_p.cumsum(0) - sorted_p;
    const torch::Tensor best = (below + sorted_p).pow(static_cast<double>(n)) - below.pow(static_cast<double>(n));
    const torch::Tensor mass = best.gt(0);
    total += (best * (best.clamp_min(1e-300).log() - sorted_log_p)).masked_select(mass).sum().item<double>();
  }
  return total / static_cast<double>(prompts.size(0));
}

}  // namespace

TEST_CASE("best-of-n estimates its KL from samples, where the bound log n - (n-1)/n is loose", "[algorithm]") {
  // Responses of two tokens from a peaked reference (its output layer scaled up, sampled at
  // temperature 0.5): they repeat, so the bound overstates the KL, and they can be enumerated for
  // the exact value. The proxy gives each response its own score.
  torch::manual_seed(0);  // the fixture's policy initialization
  Fixture fixture;
  {
    torch::NoGradGuard no_grad;
    for (auto& item : fixture.reference->named_parameters())
      if (item.key().starts_with("model.head.")) item.value().mul_(40.0);
  }
  const std::int64_t vocab = fixture.task->vocab_size(), eos = fixture.task->eos_token();
  const torch::Tensor weights = torch::randn({2, vocab}, seeded(3), torch::kDouble);
  const auto proxy = [&](const Sequences& s) {
    return weights[0].index_select(0, s.responses.select(1, 0)) + weights[1].index_select(0, s.responses.select(1, 1));
  };
  AlgorithmContext context = fixture.context({});
  context.evaluation_prompts = fixture.task->sample_prompts(256, fixture.generator);
  context.response_length = 2;
  context.temperature = 0.5;
  context.proxy_reward = proxy;
  const std::vector<std::int64_t> ns = {1, 4, 32};
  const auto best_of_n = fixture.registry.create<Algorithm>("best_of_n", {{"n", ns}, {"kl_pool", std::int64_t{32}}});
  best_of_n->run(context);
  REQUIRE(fixture.points.size() == ns.size());
  for (std::size_t i = 0; i < ns.size(); ++i) {
    const EvaluationPoint& point = fixture.points[i];
    const double exact =
        exact_best_of_n_kl(fixture.reference, context.evaluation_prompts, vocab, eos, context.temperature, proxy, ns[i]);
    const double bound = std::log(static_cast<double>(ns[i])) - static_cast<double>(ns[i] - 1) / static_cast<double>(ns[i]);
    REQUIRE(point.kl.has_value());
    REQUIRE(point.kl_se.has_value());
    INFO("n = " << ns[i] << ": estimate " << *point.kl << " +- " << *point.kl_se << ", exact " << exact << ", bound "
                << bound);
    CHECK(point.diagnostics.at("kl_bound") == Approx(bound));
    CHECK(exact <= bound + 1e-9);
    // Within 4 standard errors, plus 0.02 for the pool's bias, with a pool no larger than n: at
    // 2048 prompts, 0.558 +- 0.017 for 0.555 (n = 4) and 2.073 +- 0.026 for 2.086 (n = 32).
    CHECK(std::abs(*point.kl - exact) <= 4 * *point.kl_se + 0.02);
  }
  // At n = 32 the bound overstates the KL by 0.4 nats, and the estimate lies 4 standard errors
  // below it (0.49 below, standard error 0.077).
  const double bound = std::log(32.0) - 31.0 / 32.0;
  CHECK(bound - *fixture.points.back().kl > 4 * *fixture.points.back().kl_se);
}

TEST_CASE("every algorithm raises the gold reward above the reference policy's", "[algorithm][e2e]") {
  test::TempDir dir;
  // Per algorithm: the overrides, and the smallest gain in mean gold reward from step 0 to the
  // last evaluation required; the gain must also be at least 4 standard errors of the difference.
  const std::vector<std::pair<std::vector<std::string>, double>> cases = {
      {{"algorithm=ppo", "train.steps=20"}, 0.3},
      {{"algorithm=rloo", "train.steps=40", "algorithm.learning_rate=1e-3"}, 0.15},
      // 20 steps: by 40, at KL ≈ 20 nats against this one small reward model, GRPO overoptimizes it
      // under some libtorch builds' numerics (2.11: gold -1.50 → -1.12 at step 20, -2.57 at 40,
      // while the proxy keeps rising), which is the science, not a failure to optimize.
      {{"algorithm=grpo", "train.steps=20", "algorithm.learning_rate=1e-3"}, 0.15},
      {{"algorithm=dpo", "train.steps=40"}, 0.2},
      {{"algorithm=dpo", "train.steps=40", "algorithm.loss=ipo", "algorithm.beta=0.5"}, 0.2},
      {{"algorithm=dpo", "train.steps=40", "algorithm.loss=rdpo", "algorithm.label_smoothing=0.1"}, 0.2},
      {{"algorithm=orpo", "train.steps=40"}, 0.15},
      {{"algorithm=simpo", "train.steps=40"}, 0.2},
      {{"algorithm=kto", "train.steps=40"}, 0.2},
      // Prompts of 1 to 4 tokens, left-padded in every batch.
      {{"algorithm=dpo", "train.steps=40", "task.min_prompt_length=1"}, 0.2},
      {{"algorithm=ppo", "train.steps=20", "task.min_prompt_length=1"}, 0.3},
  };
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const auto& [overrides, gain] = cases[i];
    SECTION(std::to_string(i) + " " + overrides.back()) {
      const auto rows = run_algorithm(dir.path() / std::to_string(i), overrides);
      check_gold_gain(rows, gain);
      CHECK(rows.back()["kl"].get<double>() > 0.0);
      CHECK(rows.back()["algorithm"].contains("samples"));
    }
  }
}

// A dropped or wrong-signed KL term still raises the gold reward; it shows as a KL that does not
// fall when its coefficient rises. Each pair of runs differs only in the coefficient.
TEST_CASE("a larger KL coefficient (or DPO's beta) keeps the policy closer to the reference", "[algorithm][e2e]") {
  test::TempDir dir;
  struct Case {
    std::string name;
    std::vector<std::string> common;
    std::string weak, strong;
  };
  const std::vector<Case> cases = {
      {"ppo", {"algorithm=ppo", "train.steps=12"}, "algorithm.kl_coef=0.0", "algorithm.kl_coef=1.0"},
      {"rloo", {"algorithm=rloo", "train.steps=20", "algorithm.learning_rate=1e-3"}, "algorithm.kl_coef=0.0",
       "algorithm.kl_coef=1.0"},
      {"grpo", {"algorithm=grpo", "train.steps=12", "algorithm.learning_rate=1e-3"}, "algorithm.kl_coef=0.0",
       "algorithm.kl_coef=1.0"},
      {"dpo", {"algorithm=dpo", "train.steps=30"}, "algorithm.beta=0.02", "algorithm.beta=1.0"},
  };
  for (const Case& c : cases) {
    SECTION(c.name) {
      auto with = [&](const std::string& coefficient) {
        std::vector<std::string> overrides = c.common;
        overrides.push_back(coefficient);
        return run_algorithm(dir.path() / (c.name + "-" + coefficient), overrides).back();
      };
      const json weak = with(c.weak), strong = with(c.strong);
      const double se = std::hypot(weak["kl_se"].get<double>(), strong["kl_se"].get<double>());
      INFO(c.weak << ": KL " << weak["kl"] << "; " << c.strong << ": KL " << strong["kl"] << "; standard error " << se);
      CHECK(weak["kl"].get<double>() - strong["kl"].get<double>() > std::max(0.05, 4 * se));
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

TEST_CASE("bfloat16 autocast trains as well on the CPU, and says so", "[algorithm][e2e][runtime]") {
  test::TempDir dir;
  const auto rows = run_algorithm(dir.path() / "bf16", {"algorithm=dpo", "train.steps=40", "runtime.device=cpu", "runtime.dtype=bfloat16"});
  check_gold_gain(rows, 0.2);  // as in float32 (above)
  const json summary = json::parse(test::read_file(dir.path() / "bf16" / "summary.json"));
  CHECK(summary["runtime"] == json{{"device", "cpu"}, {"dtype", "bfloat16"}});
  CHECK_THAT(test::read_file(dir.path() / "bf16" / "run.log"), Contains("bfloat16 autocast"));
}

// ---- CUDA: ctest reports these as skipped where no GPU is visible ---------------------------

namespace {
bool cuda_or_skip() {
  if (torch::cuda::is_available()) return true;
  test::report_skipped("no CUDA device (these run in scripts/gpu-check.sh)");
  return false;
}
}  // namespace

TEST_CASE("on CUDA, every kind of trainer raises the gold reward", "[algorithm][e2e][cuda]") {
  if (!cuda_or_skip()) return;
  test::TempDir dir;
  const std::vector<std::pair<std::vector<std::string>, double>> cases = {
      {{"algorithm=ppo", "train.steps=20"}, 0.3},
      // 20 steps: by 40, at KL ≈ 20 nats against this one small reward model, GRPO overoptimizes it
      // under some libtorch builds' numerics (2.11: gold -1.50 → -1.12 at step 20, -2.57 at 40,
      // while the proxy keeps rising), which is the science, not a failure to optimize.
      {{"algorithm=grpo", "train.steps=20", "algorithm.learning_rate=1e-3"}, 0.15},
      {{"algorithm=dpo", "train.steps=40"}, 0.2},
      {{"algorithm=kto", "train.steps=40"}, 0.2},
      {{"algorithm=dpo", "train.steps=40", "runtime.dtype=bfloat16"}, 0.2},
      {{"algorithm=best_of_n", "algorithm.n=[1,16]"}, 0.3},
      {{"algorithm=ppo", "train.steps=20", "reward_model=crowd_bt", "reward_models.members=2", "ensemble=worst_case"},
       0.1},
  };
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const auto& [overrides, gain] = cases[i];
    SECTION(std::to_string(i) + " " + overrides.back()) {
      std::vector<std::string> on_cuda = overrides;
      on_cuda.push_back("runtime.device=cuda");
      const fs::path out = dir.path() / std::to_string(i);
      check_gold_gain(run_algorithm(out, on_cuda), gain);
      CHECK(json::parse(test::read_file(out / "summary.json"))["runtime"]["device"] == "cuda:0");
    }
  }
}

TEST_CASE("the policy computes the same on CUDA as on the CPU, sampling included", "[policy][cuda]") {
  if (!cuda_or_skip()) return;
  const torch::Device cuda(torch::kCUDA, 0);
  torch::manual_seed(0);
  Policy cpu(PolicyOptions{.vocab = 32, .context = 16, .width = 32, .depth = 2, .heads = 4});
  Policy gpu = copy_policy(cpu);
  gpu->to(cuda);
  CHECK(gpu->device() == cuda);
  at::Generator g = seeded(1);
  const torch::Tensor prompts = torch::randint(1, 32, {256, 4}, g, torch::kLong);
  at::Generator a = seeded(2), b = seeded(2);
  const Sequences on_cpu = cpu->sample(prompts, 12, {}, 0, a);
  const Sequences on_gpu = gpu->sample(prompts, 12, {}, 0, b);  // prompts move to the GPU
  CHECK(on_gpu.responses.device() == cuda);
  // Rounding may tip a token where a uniform falls on a CDF boundary; then the rest of that row differs.
  const double same_rows = on_cpu.responses.eq(on_gpu.responses.cpu()).all(1).to(torch::kDouble).mean().item<double>();
  CHECK(same_rows > 0.98);
  const torch::Tensor lp_cpu = cpu->response_log_probs(on_cpu, 1.0);
  const torch::Tensor lp_gpu = gpu->response_log_probs(on_cpu, 1.0);  // CPU sequences, GPU policy
  CHECK(lp_gpu.cpu().allclose(lp_cpu, 1e-3, 1e-4));
  // The same gradient step.
  lp_cpu.sum().backward();
  lp_gpu.sum().backward();
  CHECK(gpu->parameters().front().grad().cpu().allclose(cpu->parameters().front().grad(), 1e-2, 1e-4));
}
