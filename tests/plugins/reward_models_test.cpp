// Reward models trained on simulated preferences over the synthetic task: accuracy against gold,
// its fall under label noise, normalization, and crowd_bt's recovery of unreliable annotators.
#include <catch2/catch.hpp>
#include <torch/torch.h>

#include <ATen/CPUGeneratorImpl.h>

#include "pipeline/sft.h"
#include "prefopt/reward_model.h"
#include "support.h"

using namespace prefopt;

namespace {

at::Generator seeded(std::uint64_t seed) { return at::make_generator<at::CPUGeneratorImpl>(seed); }

// An SFT policy on the synthetic task and pairs of its samples, shared by the tests below.
struct World {
  Registry registry = test::load_registry();
  std::unique_ptr<Task> task = registry.create<Task>("synthetic");
  Policy policy{nullptr};

  World() {
    torch::manual_seed(0);
    policy = Policy(PolicyOptions{.vocab = 32, .context = 16, .width = 32, .depth = 2, .heads = 4});
    at::Generator generator = seeded(1);
    train_sft(policy, *task, {.corpus_size = 2048, .steps = 150, .batch_size = 64}, generator);
  }

  // `n` pairs: two policy samples per prompt, labelled by `annotator`.
  PreferenceData pairs(std::int64_t n, const std::string& annotator, const ParamMap& params, std::uint64_t seed) {
    at::Generator generator = seeded(seed);
    const torch::Tensor prompts = task->sample_prompts(n, generator);
    const Sequences a = policy->sample(prompts, 12, {}, task->eos_token(), generator);
    const Sequences b = policy->sample(prompts, 12, {}, task->eos_token(), generator);
    const PairsToLabel to_label{task->score_attributes(a), task->score_attributes(b), a.lengths, b.lengths,
                                torch::arange(n, torch::kLong), task->gold_weights()};
    return {a, b, registry.create<Annotator>(annotator, params)->label(to_label, generator)};
  }

  torch::Tensor gold_prefers_a(const PreferenceData& data) {
    return task->gold_reward(data.a).gt(task->gold_reward(data.b));
  }

  double held_out_accuracy(const std::string& model, const PreferenceData& train, const PreferenceData& test,
                           const ParamMap& params = {}) {
    auto rm = registry.create<RewardModel>(model, params);
    at::Generator generator = seeded(2);
    rm->fit(policy, train, generator);
    return preference_accuracy(*rm, test, gold_prefers_a(test));
  }
};

World& world() {
  static World instance;
  return instance;
}

}  // namespace

TEST_CASE("bradley_terry learns gold preferences, and label noise costs accuracy", "[reward_model]") {
  World& w = world();
  const PreferenceData test = w.pairs(800, "oracle", {}, 10);
  const double clean = w.held_out_accuracy("bradley_terry", w.pairs(2000, "oracle", {}, 11), test);
  const double noisy = w.held_out_accuracy("bradley_terry", w.pairs(2000, "flip", {{"rate", 0.4}}, 11), test);
  INFO("held-out accuracy against gold: oracle labels " << clean << ", 40% flipped " << noisy);
  CHECK(clean >= 0.7);
  CHECK(clean > noisy + 0.05);
}

TEST_CASE("a reward model is normalized to score the reference samples 0 on average", "[reward_model]") {
  World& w = world();
  auto rm = w.registry.create<RewardModel>("bradley_terry", {{"epochs", std::int64_t{1}}});
  CHECK_THROWS_AS(rm->score(w.pairs(4, "oracle", {}, 20).a), std::logic_error);  // not fitted yet
  at::Generator generator = seeded(3);
  rm->fit(w.policy, w.pairs(500, "oracle", {}, 21), generator);
  const PreferenceData reference = w.pairs(500, "oracle", {}, 22);
  rm->normalize(reference.a);
  CHECK(std::abs(rm->score(reference.a).mean().item<double>()) < 1e-4);
  CHECK(rm->annotator_reliability().empty());
}

TEST_CASE("crowd_bt recovers which annotators are unreliable", "[reward_model]") {
  World& w = world();
  // Two careful annotators and two who answer at random; two votes per pair.
  const ParamMap pool = {{"count", std::int64_t{4}},
                         {"votes_per_pair", std::int64_t{2}},
                         {"weight_spread", 0.0},
                         {"temperature", 0.01},
                         {"reliabilities", std::vector<double>{1.0, 1.0, 0.0, 0.0}},
                         {"assignment", std::string("random")}};
  auto rm = w.registry.create<RewardModel>("crowd_bt", {{"epochs", std::int64_t{3}}});
  at::Generator generator = seeded(4);
  rm->fit(w.policy, w.pairs(2000, "pool", pool, 30), generator);
  const std::vector<double> eta = rm->annotator_reliability();
  REQUIRE(eta.size() == 4);
  INFO("learned reliabilities " << eta[0] << " " << eta[1] << " " << eta[2] << " " << eta[3]);
  CHECK(std::min(eta[0], eta[1]) > std::max(eta[2], eta[3]) + 0.2);
  CHECK(std::max(eta[2], eta[3]) < 0.65);
}
