// The policy transformer: causality, KV-cache sampling against full recomputation, log-probs
// against the sampling distribution, padding masks, a vocabulary narrower than the model's, and
// supervised fine-tuning on the synthetic task.
#include <catch2/catch.hpp>
#include <torch/torch.h>

#include <ATen/CPUGeneratorImpl.h>

#include "pipeline/sft.h"
#include "prefopt/policy.h"
#include "prefopt/reward_model.h"
#include "support.h"

using namespace prefopt;

namespace {
at::Generator seeded(std::uint64_t seed) { return at::make_generator<at::CPUGeneratorImpl>(seed); }
Policy small_policy(std::uint64_t seed = 0) {
  torch::manual_seed(seed);
  return Policy(PolicyOptions{.vocab = 32, .context = 16, .width = 32, .depth = 2, .heads = 4});
}
}  // namespace

TEST_CASE("the policy is causal: later tokens never change earlier logits", "[policy]") {
  Policy policy = small_policy();
  at::Generator generator = seeded(1);
  torch::Tensor tokens = torch::randint(32, {3, 10}, generator, torch::kLong);
  const torch::Tensor before = policy->forward(tokens);
  tokens.select(1, 7).fill_(5);
  const torch::Tensor after = policy->forward(tokens);
  CHECK(before.narrow(1, 0, 7).allclose(after.narrow(1, 0, 7)));
  CHECK_FALSE(before.narrow(1, 7, 3).allclose(after.narrow(1, 7, 3)));
  CHECK_THROWS_AS(policy->forward(torch::zeros({1, 17}, torch::kLong)), std::invalid_argument);
}

TEST_CASE("sampling with the KV cache equals sampling by full recomputation", "[policy]") {
  Policy policy = small_policy();
  at::Generator prompt_generator = seeded(2);
  const torch::Tensor prompts = torch::randint(1, 32, {64, 4}, prompt_generator, torch::kLong);
  for (std::int64_t top_k : {0, 5}) {
    at::Generator a = seeded(3), b = seeded(3);
    const Sequences cached = policy->sample(prompts, 12, {.temperature = 1.0, .top_k = top_k, .use_cache = true}, 0, a);
    const Sequences full = policy->sample(prompts, 12, {.temperature = 1.0, .top_k = top_k, .use_cache = false}, 0, b);
    CHECK(cached.responses.equal(full.responses));
    CHECK(cached.lengths.equal(full.lengths));
  }
}

TEST_CASE("log-probs are those of the sampling distribution, temperature included", "[policy]") {
  Policy policy = small_policy();
  at::Generator generator = seeded(4);
  // One-token responses to one fixed prompt: the empirical frequencies match exp(log-prob).
  const torch::Tensor same = torch::randint(1, 32, {1, 2}, generator, torch::kLong).expand({4000, 2}).contiguous();
  for (double temperature : {1.0, 0.5}) {
    const Sequences samples = policy->sample(same, 1, {.temperature = temperature}, 0, generator);
    const torch::Tensor log_probs = policy->response_log_probs(samples, temperature);
    torch::Tensor all_tokens = torch::arange(32, torch::kLong).unsqueeze(1);
    const Sequences every{same.narrow(0, 0, 32), all_tokens, torch::ones({32}, torch::kLong)};
    const torch::Tensor probs = policy->response_log_probs(every, temperature).squeeze(1).exp();
    CHECK(probs.sum().item<double>() == Approx(1.0).margin(1e-4));
    const torch::Tensor counts = torch::bincount(samples.responses.squeeze(1), {}, 32).to(torch::kDouble) / 4000.0;
    const double max_gap = (counts - probs.to(torch::kDouble)).abs().max().item<double>();
    CHECK(max_gap < 4 * std::sqrt(0.25 / 4000.0));
    CHECK(log_probs.exp().allclose(probs.index_select(0, samples.responses.squeeze(1)).unsqueeze(1)));
  }
}

TEST_CASE("the built-in model: left padding under a mask and the key/value cache change no real token's state", "[policy]") {
  Policy policy = small_policy();
  LanguageModel& model = policy->model();
  at::Generator generator = seeded(5);
  const torch::Tensor tokens = torch::randint(32, {2, 6}, generator, torch::kLong);
  const torch::Tensor alone = model.hidden_states(tokens, {}, nullptr);
  // Three padding tokens (arbitrary ids) on the left, hidden by the mask: positions count real tokens.
  const torch::Tensor padded = torch::cat({torch::full({2, 3}, 7, torch::kLong), tokens}, 1);
  const torch::Tensor mask = torch::cat({torch::zeros({2, 3}, torch::kLong), torch::ones({2, 6}, torch::kLong)}, 1);
  const torch::Tensor masked = model.hidden_states(padded, mask, nullptr);
  CHECK(masked.narrow(1, 3, 6).allclose(alone, 1e-5, 1e-5));
  CHECK_FALSE(model.hidden_states(padded, {}, nullptr).narrow(1, 3, 6).allclose(alone, 1e-3, 1e-3));
  // The same sequences fed 4 + 1 + 1 + ... tokens at a time through the cache.
  KeyValueCache cache;
  std::vector<torch::Tensor> pieces = {model.hidden_states(padded.narrow(1, 0, 4), mask.narrow(1, 0, 4), &cache)};
  for (std::int64_t t = 4; t < 9; ++t)
    pieces.push_back(model.hidden_states(padded.narrow(1, t, 1), mask.narrow(1, 0, t + 1), &cache));
  CHECK(torch::cat(pieces, 1).narrow(1, 3, 6).allclose(alone, 1e-5, 1e-5));
  CHECK_THROWS_WITH(model.hidden_states(tokens, mask, nullptr), Catch::Contains("attention mask"));
}

TEST_CASE("a left-padded prompt gets the same samples, log-probs and rewards however much padding", "[policy]") {
  Policy policy = small_policy();
  at::Generator generator = seeded(7);
  // Prompts of 1..4 tokens, right-aligned in 4 columns, and the same in 7.
  const torch::Tensor tokens = torch::randint(1, 32, {64, 4}, generator, torch::kLong);
  const torch::Tensor lengths = torch::arange(64, torch::kLong).remainder(4).add(1).unsqueeze(1);
  const torch::Tensor narrow = tokens.masked_fill(torch::arange(4).unsqueeze(0).lt(4 - lengths), kPromptPadding);
  const torch::Tensor wide = torch::cat({torch::full({64, 3}, kPromptPadding, torch::kLong), narrow}, 1);
  for (bool use_cache : {true, false}) {
    at::Generator a = seeded(8), b = seeded(8);
    const Sequences in_narrow = policy->sample(narrow, 8, {.use_cache = use_cache}, 0, a);
    const Sequences in_wide = policy->sample(wide, 8, {.use_cache = use_cache}, 0, b);
    CHECK(in_narrow.responses.equal(in_wide.responses));
  }
  at::Generator c = seeded(9);
  const Sequences samples = policy->sample(narrow, 8, {}, 0, c);
  const Sequences padded_more{wide, samples.responses, samples.lengths};
  CHECK(policy->response_log_probs(samples, 1.0).allclose(policy->response_log_probs(padded_more, 1.0), 1e-5, 1e-5));
  RewardNet reward(policy);
  CHECK(reward->forward(samples).allclose(reward->forward(padded_more), 1e-5, 1e-5));
  // Not the same as treating padding as tokens.
  const Sequences as_tokens{narrow.clamp_min(0), samples.responses, samples.lengths};
  CHECK_FALSE(policy->response_log_probs(samples, 1.0).allclose(policy->response_log_probs(as_tokens, 1.0), 1e-3, 1e-3));
}

TEST_CASE("a policy over fewer tokens than its model knows samples and scores only those", "[policy]") {
  torch::manual_seed(0);
  Policy wide(PolicyOptions{.vocab = 40, .context = 16, .width = 32, .depth = 2, .heads = 4});
  Policy narrow(wide->model().copy(), 24);
  at::Generator generator = seeded(6);
  const torch::Tensor prompts = torch::randint(1, 24, {256, 3}, generator, torch::kLong);
  CHECK(narrow->forward(prompts).equal(wide->forward(prompts).narrow(2, 0, 24)));
  const Sequences samples = narrow->sample(prompts, 8, {}, 0, generator);
  CHECK(samples.responses.max().item<std::int64_t>() < 24);
  // Log-probs normalize over the 24 tokens: every one-token response's probabilities sum to 1.
  const Sequences every{prompts.narrow(0, 0, 1).expand({24, 3}), torch::arange(24, torch::kLong).unsqueeze(1),
                        torch::ones({24}, torch::kLong)};
  CHECK(narrow->response_log_probs(every, 1.0).exp().sum().item<double>() == Approx(1.0).margin(1e-5));
  CHECK_THROWS_WITH(Policy(wide->model().copy(), 41), Catch::Contains("knows 40"));
  // A copy is independent: training one leaves the other.
  Policy copy = copy_policy(narrow);
  CHECK(copy->forward(prompts).equal(narrow->forward(prompts)));
  {
    torch::NoGradGuard no_grad;
    for (auto& parameter : copy->parameters()) parameter.add_(0.1);
  }
  CHECK_FALSE(copy->forward(prompts).allclose(narrow->forward(prompts)));
}

TEST_CASE("supervised fine-tuning learns the synthetic language", "[policy][sft]") {
  const Registry registry = test::load_registry();
  const auto task = registry.create<Task>("synthetic");
  Policy policy = small_policy(5);
  at::Generator generator = seeded(6);
  const torch::Tensor prompts = task->sample_prompts(512, generator);
  auto coherence = [&](Policy& p) {
    at::Generator g = seeded(7);
    return task->score_attributes(p->sample(prompts, 12, {}, task->eos_token(), g)).select(1, 1).mean().item<double>();
  };
  const double untrained = coherence(policy);
  const SftReport report = train_sft(policy, *task, {.corpus_size = 2048, .steps = 150, .batch_size = 64}, generator);
  CHECK(report.initial_loss == Approx(std::log(32.0)).margin(0.1));  // an untrained model is near uniform
  CHECK(report.final_loss < report.initial_loss - 1.0);
  // Samples become far more coherent under the true language, approaching its own samples'.
  const double trained = coherence(policy);
  at::Generator g = seeded(8);
  const double truth = task->score_attributes(task->sample_corpus(512, g)).select(1, 1).mean().item<double>();
  CHECK(trained > untrained + 1.0);
  CHECK(trained > truth - 0.5);
}
