// Training algorithms through the plugin interface, on the synthetic task: a PPO iteration split
// into generation (sampling + the policy's and reference's log-probs), scoring (a 3-member reward
// ensemble) and the rest (training); DPO and ORPO steps. The first argument is the policy width
// (64: the default experiment; 128: a larger size), depth 2.
//
//   build/bin/prefopt_bench_algorithm
#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include <ATen/CPUGeneratorImpl.h>

#include "prefopt/algorithm.h"
#include "registry.h"

namespace {
using namespace prefopt;

constexpr std::int64_t kRolloutPrompts = 64;  // ppo's default rollout
constexpr std::int64_t kPairs = 256;
constexpr std::int64_t kSteps = 5;  // plugin steps per benchmark iteration

at::Generator seeded(std::uint64_t seed) { return at::make_generator<at::CPUGeneratorImpl>(seed); }

Registry builtin_registry() {
  PluginSearchPath path;
  path.add_default();
  return Registry::load(path);
}

// A trial's objects without the stages: an untrained policy of the given width, three reward
// networks as the proxy, random preference pairs, one evaluation prompt (evaluation costs ~0).
struct Setup {
  Registry registry = builtin_registry();
  std::unique_ptr<Task> task = registry.create<Task>("synthetic", {});
  Policy reference;
  Policy policy;
  std::vector<RewardNet> members;
  PreferenceData pairs;
  at::Generator generator = seeded(1), evaluation_generator = seeded(2);

  explicit Setup(std::int64_t width)
      : reference((torch::manual_seed(0), PolicyOptions{.vocab = 32, .context = 16, .width = width,
                                                        .depth = 2, .heads = 4})),
        policy(copy_policy(reference)) {
    for (int m = 0; m < 3; ++m) members.emplace_back(reference);
    const torch::Tensor prompts = task->sample_prompts(kPairs, generator);
    const Sequences a = reference->sample(prompts, 12, {}, task->eos_token(), generator);
    const Sequences b = reference->sample(prompts, 12, {}, task->eos_token(), generator);
    Labels labels{torch::ones({kPairs, 1}, torch::kBool), torch::zeros({kPairs, 1}, torch::kLong),
                  torch::rand({kPairs}, generator).gt(0.5), torch::ones({kPairs}, torch::kBool), {"bench"}};
    pairs = {a, b, labels};
  }

  at::Tensor proxy(const Sequences& s) {
    torch::NoGradGuard no_grad;
    at::Tensor sum = torch::zeros({s.responses.size(0)});
    for (RewardNet& member : members) sum += member->forward(s);
    return sum / static_cast<double>(members.size());
  }

  AlgorithmContext context(std::int64_t steps, std::function<at::Tensor(const Sequences&)> proxy_reward) {
    return {.policy = policy,
            .reference = reference,
            .task = *task,
            .preferences = pairs,
            .proxy_reward = std::move(proxy_reward),
            .evaluation_prompts = task->sample_prompts(1, generator),
            .response_length = 12,
            .temperature = 1.0,
            .budget = {.steps = steps, .samples = 0, .eval_every = steps},
            .generator = generator,
            .evaluation_generator = evaluation_generator,
            .evaluate = [](const EvaluationPoint&) {},
            .progress = {},
            .checkpoints = nullptr};
  }
};

// Generation: a 64-response rollout with the policy's and the reference's log-probs, no scoring.
void BM_PpoGeneration(benchmark::State& state) {
  Setup setup(state.range(0));
  AlgorithmContext context = setup.context(1, [](const Sequences& s) { return torch::zeros({s.responses.size(0)}); });
  for (auto _ : state) benchmark::DoNotOptimize(roll_out(context, {.prompts = kRolloutPrompts}));
  state.SetItemsProcessed(state.iterations() * kRolloutPrompts * 12);  // tokens
}
BENCHMARK(BM_PpoGeneration)->Arg(64)->Arg(128)->Unit(benchmark::kMillisecond);

// Scoring: the 3-member ensemble on one rollout.
void BM_PpoScoring(benchmark::State& state) {
  Setup setup(state.range(0));
  const Sequences samples = setup.pairs.a.responses.size(0) >= kRolloutPrompts
                                ? Sequences{setup.pairs.a.prompts.narrow(0, 0, kRolloutPrompts),
                                            setup.pairs.a.responses.narrow(0, 0, kRolloutPrompts),
                                            setup.pairs.a.lengths.narrow(0, 0, kRolloutPrompts)}
                                : setup.pairs.a;
  for (auto _ : state) benchmark::DoNotOptimize(setup.proxy(samples));
  state.SetItemsProcessed(state.iterations() * kRolloutPrompts);  // responses
}
BENCHMARK(BM_PpoScoring)->Arg(64)->Arg(128)->Unit(benchmark::kMillisecond);

// Whole PPO iterations (rollout, scoring, GAE, 4 epochs x 4 minibatches for policy and critic)
// through the plugin: items are iterations.
void BM_PpoIteration(benchmark::State& state) {
  Setup setup(state.range(0));
  const auto ppo = setup.registry.create<Algorithm>("ppo", {});
  for (auto _ : state) {
    AlgorithmContext context = setup.context(kSteps, [&](const Sequences& s) { return setup.proxy(s); });
    ppo->run(context);
  }
  state.SetItemsProcessed(state.iterations() * kSteps);
}
BENCHMARK(BM_PpoIteration)->Arg(64)->Arg(128)->Unit(benchmark::kMillisecond);

// DPO and ORPO steps on 64 pairs through the plugin: items are steps.
void BM_PairStep(benchmark::State& state, const char* algorithm) {
  Setup setup(state.range(0));
  const auto plugin = setup.registry.create<Algorithm>(algorithm, {});
  for (auto _ : state) {
    AlgorithmContext context = setup.context(kSteps, [](const Sequences& s) { return torch::zeros({s.responses.size(0)}); });
    plugin->run(context);
  }
  state.SetItemsProcessed(state.iterations() * kSteps);
}
BENCHMARK_CAPTURE(BM_PairStep, dpo, "dpo")->Arg(64)->Arg(128)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_PairStep, orpo, "orpo")->Arg(64)->Arg(128)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
