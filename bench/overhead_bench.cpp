// What prefopt costs beside the work itself, and how much of the machine the work uses:
//
//   - framework overhead: DPO steps and PPO iterations through the plugins (the shared training
//     loop, train_on_pairs / roll_out, evaluations, diagnostics) against the same steps written
//     as bare libtorch loops here, with the same data, shapes, diagnostics and evaluations (goal:
//     at most 3% slower);
//   - model FLOP utilization: a policy training step (forward, backward, AdamW) at several widths,
//     its FLOPs counted analytically, against this machine's fp32 matrix-product peak measured in
//     the same run.
//
// After the benchmarks it prints both as a table.
//   build/bin/prefopt_bench_overhead [--benchmark_min_time=1]
#include <benchmark/benchmark.h>
#include <fmt/format.h>
#include <torch/torch.h>

#include <ATen/CPUGeneratorImpl.h>
#include <map>

#include "prefopt/algorithm.h"
#include "prefopt/losses.h"
#include "registry.h"
#include "summary.h"
#include "threads.h"

namespace {
using namespace prefopt;

constexpr std::int64_t kPairs = 256, kBatch = 64, kSteps = 20, kResponse = 12;
constexpr double kBeta = 0.1;

at::Generator seeded(std::uint64_t seed) { return at::make_generator<at::CPUGeneratorImpl>(seed); }

Registry builtin_registry() {
  PluginSearchPath path;
  path.add_default();
  return Registry::load(path);
}

// Identical inputs for both DPO loops: a policy of the default shape, its frozen copy, 256 pairs.
struct PairSetup {
  Registry registry = builtin_registry();
  std::unique_ptr<Task> task = registry.create<Task>("synthetic", {});
  Policy reference{(torch::manual_seed(0), PolicyOptions{.vocab = 32, .context = 16, .width = 64, .depth = 2, .heads = 4})};
  PreferenceData pairs;
  at::Tensor evaluation_prompt;

  PairSetup() {
    at::Generator generator = seeded(1);
    const at::Tensor prompts = task->sample_prompts(kPairs, generator);
    const Sequences a = reference->sample(prompts, kResponse, {}, task->eos_token(), generator);
    const Sequences b = reference->sample(prompts, kResponse, {}, task->eos_token(), generator);
    pairs = {a, b,
             Labels{torch::ones({kPairs, 1}, torch::kBool), torch::zeros({kPairs, 1}, torch::kLong),
                    torch::rand({kPairs}, generator).gt(0.5), torch::ones({kPairs}, torch::kBool), {"bench"}}};
    evaluation_prompt = task->sample_prompts(1, generator);
  }
};

void BM_DpoThroughPrefopt(benchmark::State& state) {
  PairSetup setup;
  const auto dpo = setup.registry.create<Algorithm>("dpo", {{"beta", kBeta}, {"batch_size", kBatch}});
  for (auto _ : state) {
    Policy policy = copy_policy(setup.reference);
    at::Generator generator = seeded(2), evaluation_generator = seeded(3);
    AlgorithmContext context{.policy = policy,
                             .reference = setup.reference,
                             .task = *setup.task,
                             .preferences = setup.pairs,
                             .proxy_reward = [](const Sequences& s) { return torch::zeros({s.responses.size(0)}); },
                             .evaluation_prompts = setup.evaluation_prompt,
                             .response_length = kResponse,
                             .temperature = 1.0,
                             .budget = {.steps = kSteps, .samples = 0, .eval_every = kSteps},
                             .generator = generator,
                             .evaluation_generator = evaluation_generator,
                             .evaluate = [](const EvaluationPoint&) {},
                             .progress = [](const std::string&) {}};
    dpo->run(context);
  }
  state.SetItemsProcessed(state.iterations() * kSteps);
}
BENCHMARK(BM_DpoThroughPrefopt)->UseRealTime()->Unit(benchmark::kMillisecond);

// The same steps by hand: reference log-probs once, shuffled batches, one forward of chosen and
// rejected, the sigmoid DPO loss, the four implicit-reward diagnostics, clipping, AdamW; one
// sampled evaluation before and after.
void BM_DpoBareLibtorch(benchmark::State& state) {
  PairSetup setup;
  const Sequences& a = setup.pairs.a;
  const Sequences& b = setup.pairs.b;
  const at::Tensor a_wins = setup.pairs.labels.prefers_a.unsqueeze(1);
  const Sequences chosen{a.prompts, torch::where(a_wins, a.responses, b.responses),
                         torch::where(setup.pairs.labels.prefers_a, a.lengths, b.lengths)};
  const Sequences rejected{a.prompts, torch::where(a_wins, b.responses, a.responses),
                           torch::where(setup.pairs.labels.prefers_a, b.lengths, a.lengths)};
  const auto log_probs = [](Policy& policy, const Sequences& s) {
    const std::int64_t prompt = s.prompts.size(1), width = s.responses.size(1);
    const at::Tensor tokens = torch::cat({s.prompts, s.responses}, 1).narrow(1, 0, prompt + width - 1);
    const at::Tensor logits = policy->forward(tokens).narrow(1, prompt - 1, width);
    const at::Tensor mask = torch::arange(width).unsqueeze(0).lt(s.lengths.unsqueeze(1)).to(torch::kFloat);
    return (logits.log_softmax(-1).gather(2, s.responses.unsqueeze(2)).squeeze(2) * mask).sum(1);
  };
  for (auto _ : state) {
    Policy policy = copy_policy(setup.reference);
    at::Generator generator = seeded(2), evaluation_generator = seeded(3);
    benchmark::DoNotOptimize(policy->sample(setup.evaluation_prompt, kResponse, {}, setup.task->eos_token(), evaluation_generator));
    at::Tensor reference_chosen, reference_rejected;
    {
      torch::NoGradGuard no_grad;
      reference_chosen = log_probs(setup.reference, chosen);
      reference_rejected = log_probs(setup.reference, rejected);
    }
    torch::optim::AdamW optimizer(policy->parameters(), torch::optim::AdamWOptions(1e-3));
    at::Tensor order;
    std::int64_t next = kPairs;
    double loss_sum = 0, margin_sum = 0;
    for (std::int64_t step = 0; step < kSteps; ++step) {
      if (next + kBatch > kPairs) {
        order = torch::randperm(kPairs, generator, torch::kLong);
        next = 0;
      }
      const at::Tensor rows = order.narrow(0, next, kBatch);
      next += kBatch;
      const Sequences both{torch::cat({chosen.prompts.index_select(0, rows), rejected.prompts.index_select(0, rows)}),
                           torch::cat({chosen.responses.index_select(0, rows), rejected.responses.index_select(0, rows)}),
                           torch::cat({chosen.lengths.index_select(0, rows), rejected.lengths.index_select(0, rows)})};
      const at::Tensor policy_lp = log_probs(policy, both);
      const at::Tensor chosen_ratio = policy_lp.narrow(0, 0, kBatch) - reference_chosen.index_select(0, rows);
      const at::Tensor rejected_ratio = policy_lp.narrow(0, kBatch, kBatch) - reference_rejected.index_select(0, rows);
      {
        torch::NoGradGuard no_grad;
        const at::Tensor chosen_reward = kBeta * chosen_ratio, rejected_reward = kBeta * rejected_ratio;
        benchmark::DoNotOptimize(chosen_reward.mean().item<double>());
        benchmark::DoNotOptimize(rejected_reward.mean().item<double>());
        margin_sum += (chosen_reward - rejected_reward).mean().item<double>();
        benchmark::DoNotOptimize(chosen_reward.gt(rejected_reward).to(torch::kDouble).mean().item<double>());
      }
      const at::Tensor loss = -torch::log_sigmoid(kBeta * (chosen_ratio - rejected_ratio)).mean();
      loss_sum += loss.item<double>();
      optimizer.zero_grad();
      loss.backward();
      benchmark::DoNotOptimize(torch::nn::utils::clip_grad_norm_(policy->parameters(), 1.0));
      optimizer.step();
    }
    benchmark::DoNotOptimize(policy->sample(setup.evaluation_prompt, kResponse, {}, setup.task->eos_token(), evaluation_generator));
    benchmark::DoNotOptimize(loss_sum + margin_sum);
  }
  state.SetItemsProcessed(state.iterations() * kSteps);
}
BENCHMARK(BM_DpoBareLibtorch)->UseRealTime()->Unit(benchmark::kMillisecond);

// A PPO iteration's critic as the plugin builds it: a copy of the policy's backbone and a
// zero-initialized value head.
struct CriticImpl : torch::nn::Module {
  explicit CriticImpl(Policy& source)
      : backbone(register_module("backbone", copy_policy(source))),
        head(register_module("head", torch::nn::Linear(source->hidden_size(), 1))) {
    torch::NoGradGuard no_grad;
    head->weight.zero_();
    head->bias.zero_();
  }
  at::Tensor forward(const Sequences& s) {
    const std::int64_t prompt = s.prompts.size(1), width = s.responses.size(1);
    const at::Tensor tokens = torch::cat({s.prompts, s.responses}, 1).narrow(1, 0, prompt + width - 1);
    return head(backbone->hidden(tokens).narrow(1, prompt - 1, width)).squeeze(2);
  }
  Policy backbone;
  torch::nn::Linear head;
};
TORCH_MODULE(Critic);

constexpr std::int64_t kRollout = 64, kEpochs = 4, kMinibatches = 4, kIterations = 5;

// The proxy: one reward network, the same in both loops.
struct PpoSetup : PairSetup {
  RewardNet reward{reference};
  at::Tensor score(const Sequences& s) {
    torch::NoGradGuard no_grad;
    return reward->forward(s);
  }
};

void BM_PpoThroughPrefopt(benchmark::State& state) {
  PpoSetup setup;
  const auto ppo = setup.registry.create<Algorithm>("ppo", {});
  for (auto _ : state) {
    Policy policy = copy_policy(setup.reference);
    at::Generator generator = seeded(2), evaluation_generator = seeded(3);
    AlgorithmContext context{.policy = policy,
                             .reference = setup.reference,
                             .task = *setup.task,
                             .preferences = setup.pairs,
                             .proxy_reward = [&](const Sequences& s) { return setup.score(s); },
                             .evaluation_prompts = setup.evaluation_prompt,
                             .response_length = kResponse,
                             .temperature = 1.0,
                             .budget = {.steps = kIterations, .samples = 0, .eval_every = kIterations},
                             .generator = generator,
                             .evaluation_generator = evaluation_generator,
                             .evaluate = [](const EvaluationPoint&) {},
                             .progress = [](const std::string&) {}};
    ppo->run(context);
  }
  state.SetItemsProcessed(state.iterations() * kIterations);
}
BENCHMARK(BM_PpoThroughPrefopt)->UseRealTime()->Unit(benchmark::kMillisecond);

// The same iterations by hand, with ppo's defaults: a rollout of 64 responses with the policy's
// and reference's log-probs and the EOS trick, k1 KL penalty 0.05 per token plus the score at
// the last token, GAE (1.0, 0.95), whitened advantages, 4 epochs of 4 minibatches of clipped
// policy and value updates, the plugin's diagnostics; one sampled evaluation before and after.
void BM_PpoBareLibtorch(benchmark::State& state) {
  PpoSetup setup;
  const std::int64_t eos = setup.task->eos_token();
  for (auto _ : state) {
    Policy policy = copy_policy(setup.reference);
    Critic critic(setup.reference);
    at::Generator generator = seeded(2), evaluation_generator = seeded(3);
    benchmark::DoNotOptimize(policy->sample(setup.evaluation_prompt, kResponse, {}, eos, evaluation_generator));
    torch::optim::AdamW policy_optimizer(policy->parameters(), torch::optim::AdamWOptions(3e-4));
    torch::optim::AdamW critic_optimizer(critic->parameters(), torch::optim::AdamWOptions(1e-3));
    double diagnostics = 0;
    for (std::int64_t iteration = 0; iteration < kIterations; ++iteration) {
      Sequences samples;
      at::Tensor mask, old_log_probs, advantages, returns, old_values;
      {
        torch::NoGradGuard no_grad;
        samples = policy->sample(setup.task->sample_prompts(kRollout, generator), kResponse, {}, eos, generator);
        mask = response_mask(samples);
        old_log_probs = policy->response_log_probs(samples, 1.0);
        const at::Tensor reference_log_probs = setup.reference->response_log_probs(samples, 1.0);
        const at::Tensor has_eos = samples.responses.eq(eos).any(1);
        const at::Tensor scores = torch::where(has_eos, setup.score(samples), torch::full({kRollout}, -2.0));
        old_values = critic->forward(samples) * mask;
        const at::Tensor kl = losses::kl_k1(old_log_probs, reference_log_probs) * mask;
        at::Tensor rewards = -0.05 * kl;
        rewards.scatter_add_(1, (samples.lengths - 1).unsqueeze(1), scores.unsqueeze(1));
        advantages = losses::gae(rewards, old_values, mask, 1.0, 0.95);
        returns = advantages + old_values;
        advantages = losses::whiten(advantages, mask);
        diagnostics += scores.mean().item<double>() + kl.sum(1).mean().item<double>() +
                       has_eos.to(torch::kDouble).mean().item<double>();
      }
      const std::int64_t size = kRollout / kMinibatches;
      for (std::int64_t epoch = 0; epoch < kEpochs; ++epoch) {
        const at::Tensor order = torch::randperm(kRollout, generator, torch::kLong);
        for (std::int64_t b = 0; b < kMinibatches; ++b) {
          const at::Tensor rows = order.narrow(0, b * size, size);
          const Sequences batch = select_rows(samples, rows);
          const at::Tensor batch_mask = mask.index_select(0, rows);
          const losses::ClippedObjective objective =
              losses::clipped_policy_loss(policy->response_log_probs(batch, 1.0), old_log_probs.index_select(0, rows),
                                          advantages.index_select(0, rows), batch_mask, 0.2);
          policy_optimizer.zero_grad();
          objective.loss.backward();
          torch::nn::utils::clip_grad_norm_(policy->parameters(), 1.0);
          policy_optimizer.step();
          const at::Tensor value_loss = losses::clipped_value_loss(critic->forward(batch), old_values.index_select(0, rows),
                                                                   returns.index_select(0, rows), batch_mask, 0.2);
          critic_optimizer.zero_grad();
          value_loss.backward();
          torch::nn::utils::clip_grad_norm_(critic->parameters(), 1.0);
          critic_optimizer.step();
          diagnostics += objective.clip_fraction + objective.approx_kl + objective.loss.item<double>() + value_loss.item<double>();
        }
      }
    }
    benchmark::DoNotOptimize(policy->sample(setup.evaluation_prompt, kResponse, {}, eos, evaluation_generator));
    benchmark::DoNotOptimize(diagnostics);
  }
  state.SetItemsProcessed(state.iterations() * kIterations);
}
BENCHMARK(BM_PpoBareLibtorch)->UseRealTime()->Unit(benchmark::kMillisecond);

// fp32 matrix products of n x n by n x n: this machine's practical peak.
void BM_MatmulPeak(benchmark::State& state) {
  const std::int64_t n = state.range(0);
  const at::Tensor a = torch::randn({n, n}), b = torch::randn({n, n});
  for (auto _ : state) benchmark::DoNotOptimize(a.mm(b));
  state.counters["FLOPs"] = benchmark::Counter(2.0 * n * n * n, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_MatmulPeak)->Arg(512)->Arg(1024)->UseRealTime()->Unit(benchmark::kMillisecond);

// One training step of the policy on [64, 16] tokens at width w (depth 2, w / 16 heads).
void BM_TrainingStep(benchmark::State& state) {
  using prefopt::bench::training_step_flops;
  const std::int64_t width = state.range(0), depth = 2, batch = 64, time = 16, vocab = 32;
  torch::manual_seed(0);
  Policy policy(PolicyOptions{.vocab = vocab, .context = time, .width = width, .depth = depth, .heads = width / 16});
  torch::optim::AdamW optimizer(policy->parameters(), torch::optim::AdamWOptions(1e-3));
  const at::Tensor tokens = torch::randint(vocab, {batch, time}, torch::kLong);
  for (auto _ : state) {
    const at::Tensor logits = policy->forward(tokens.narrow(1, 0, time - 1));
    const at::Tensor loss = torch::cross_entropy_loss(logits.reshape({-1, vocab}), tokens.narrow(1, 1, time - 1).reshape({-1}));
    optimizer.zero_grad();
    loss.backward();
    optimizer.step();
  }
  state.counters["FLOPs"] = benchmark::Counter(training_step_flops(batch, time - 1, width, depth, vocab),
                                               benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_TrainingStep)->Arg(64)->Arg(256)->Arg(512)->UseRealTime()->Unit(benchmark::kMillisecond);

}  // namespace

int main(int argc, char** argv) {
  prefopt::use_best_openblas_kernels(argv);          // as the prefopt binary does
  prefopt::apply_threads(prefopt::plan_threads(0));  // the policy every trial runs under
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  prefopt::bench::SummaryReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);

  const auto& s = reporter.seconds;
  const auto& f = reporter.flop_rate;
  fmt::print("\n{:<58} {:>10}\n", "summary", "value");
  const std::pair<std::string, std::int64_t> through_key{"BM_DpoThroughPrefopt", 0}, bare_key{"BM_DpoBareLibtorch", 0};
  if (s.contains(through_key) && s.contains(bare_key)) {
    const double through = s.at(through_key), bare = s.at(bare_key);
    fmt::print("{:<58} {:>9.1f}%\n", fmt::format("framework overhead, DPO ({} steps: {:.1f} vs {:.1f} ms)", kSteps,
                                                  through * 1e3, bare * 1e3),
               100.0 * (through / bare - 1.0));
  }
  const std::pair<std::string, std::int64_t> ppo_key{"BM_PpoThroughPrefopt", 0}, ppo_bare_key{"BM_PpoBareLibtorch", 0};
  if (s.contains(ppo_key) && s.contains(ppo_bare_key)) {
    const double through = s.at(ppo_key), bare = s.at(ppo_bare_key);
    fmt::print("{:<58} {:>9.1f}%\n", fmt::format("framework overhead, PPO ({} iterations: {:.0f} vs {:.0f} ms)", kIterations,
                                                  through * 1e3, bare * 1e3),
               100.0 * (through / bare - 1.0));
  }
  double peak = 0;
  for (const auto& [key, rate] : f)
    if (key.first == "BM_MatmulPeak") peak = std::max(peak, rate);
  fmt::print("{:<58} {}\n", "BLAS", prefopt::blas_description());
  if (peak > 0) fmt::print("{:<58} {:>10.1f}\n", "fp32 matmul peak, GFLOP/s", peak / 1e9);
  for (const auto& [key, rate] : f)
    if (key.first == "BM_TrainingStep" && peak > 0)
      fmt::print("{:<58} {:>9.1f}%\n", fmt::format("MFU, training step width {} ({:.1f} GFLOP/s)", key.second, rate / 1e9),
                 100.0 * rate / peak);
  return 0;
}
