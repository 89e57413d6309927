// The policy's speed: sampling tokens/s with and without the KV cache, SFT and reward-model
// training steps/s.
//
//   build/bin/prefopt_bench_policy
#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include <ATen/CPUGeneratorImpl.h>

#include "pipeline/sft.h"
#include "prefopt/policy.h"
#include "prefopt/reward_model.h"

namespace {

constexpr std::int64_t kBatch = 64;
constexpr std::int64_t kPrompt = 4;

// Args: response length, use the cache (1) or recompute everything (0). Width 128, depth 2.
void BM_Sample(benchmark::State& state) {
  const std::int64_t length = state.range(0);
  const bool cache = state.range(1) != 0;
  torch::manual_seed(0);
  prefopt::Policy policy(prefopt::PolicyOptions{.vocab = 32, .context = kPrompt + length, .width = 128, .depth = 2, .heads = 4});
  policy->eval();
  at::Generator generator = at::make_generator<at::CPUGeneratorImpl>(1);
  const torch::Tensor prompts = torch::randint(1, 32, {kBatch, kPrompt}, generator, torch::kLong);
  for (auto _ : state)
    benchmark::DoNotOptimize(policy->sample(prompts, length, {.use_cache = cache}, /*eos=*/-1, generator));
  state.SetItemsProcessed(state.iterations() * kBatch * length);  // tokens
}
BENCHMARK(BM_Sample)->Args({12, 0})->Args({12, 1})->Args({64, 0})->Args({64, 1})->Unit(benchmark::kMillisecond);

// One SFT step (forward, backward, AdamW) on a [64, 4 + 12] batch at the default width 128.
void BM_SftStep(benchmark::State& state) {
  torch::manual_seed(0);
  prefopt::Policy policy(prefopt::PolicyOptions{.vocab = 32, .context = 16, .width = 128, .depth = 2, .heads = 4});
  torch::optim::AdamW optimizer(policy->parameters(), torch::optim::AdamWOptions(3e-3));
  const prefopt::Sequences batch{torch::randint(1, 32, {kBatch, kPrompt}, torch::kLong),
                                 torch::randint(1, 32, {kBatch, 12}, torch::kLong),
                                 torch::full({kBatch}, 12, torch::kLong)};
  for (auto _ : state) {
    const torch::Tensor loss = prefopt::response_nll(policy, batch);
    optimizer.zero_grad();
    loss.backward();
    optimizer.step();
  }
  state.SetItemsProcessed(state.iterations() * kBatch * (kPrompt + 12));  // tokens
}
BENCHMARK(BM_SftStep)->Unit(benchmark::kMillisecond);

// One Bradley-Terry reward-model step on 32 pairs (two forwards, backward, AdamW) at the
// default width 64: what the reward_models stage repeats.
void BM_RewardModelStep(benchmark::State& state) {
  torch::manual_seed(0);
  prefopt::Policy sft(prefopt::PolicyOptions{.vocab = 32, .context = 16, .width = 64, .depth = 2, .heads = 4});
  prefopt::RewardNet net(sft);
  torch::optim::AdamW optimizer(net->parameters(), torch::optim::AdamWOptions(1e-3));
  auto batch = [] {
    return prefopt::Sequences{torch::randint(1, 32, {32, kPrompt}, torch::kLong), torch::randint(1, 32, {32, 12}, torch::kLong),
                              torch::full({32}, 12, torch::kLong)};
  };
  const prefopt::Sequences a = batch(), b = batch();
  for (auto _ : state) {
    const torch::Tensor loss = -torch::log_sigmoid(net->forward(a) - net->forward(b)).mean();
    optimizer.zero_grad();
    loss.backward();
    optimizer.step();
  }
  state.SetItemsProcessed(state.iterations() * 32);  // pairs
}
BENCHMARK(BM_RewardModelStep)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
