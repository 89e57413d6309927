// The GPU check's benchmarks, at a GPU-sized configuration: a policy of GPT-2 small's shape
// (vocabulary 50257, width 768, 12 blocks of 12 heads, an untied head: 163M parameters) on
// cuda:0, measured against the same device's matrix-product peaks in the same run:
//
//   - matrix-product peak: 8192^3 products in bfloat16, TF32 and full fp32;
//   - a training step (forward, backward, AdamW) on 16 x 256 tokens in bfloat16 autocast and in
//     fp32 with TF32, its model FLOP utilization against the matching peak;
//   - sampling tokens/s, 64 prompts of 64 tokens, 64 new tokens, with and without the KV cache.
//
// It prints a summary table after the benchmarks. Without a CUDA device it says so and exits 0.
//   build/bin/prefopt_bench_gpu [--benchmark_min_time=1]
#include <benchmark/benchmark.h>
#include <fmt/format.h>
#include <torch/cuda.h>
#include <torch/torch.h>

#include <ATen/CPUGeneratorImpl.h>

#include "prefopt/policy.h"
#include "runtime.h"
#include "summary.h"

namespace {
using namespace prefopt;

constexpr std::int64_t kVocab = 50257, kWidth = 768, kDepth = 12, kHeads = 12;
constexpr std::int64_t kBatch = 16, kTime = 256;                       // training
constexpr std::int64_t kPrompts = 64, kPromptLength = 64, kNew = 64;  // sampling
enum Precision : std::int64_t { kBfloat16 = 0, kTf32 = 1, kFp32 = 2 };
const char* const kPrecisionNames[] = {"bfloat16", "TF32", "fp32"};

const torch::Device kCuda(torch::kCUDA, 0);

Runtime runtime_for(std::int64_t precision) {
  Runtime runtime;
  runtime.device = kCuda;
  runtime.dtype = precision == kBfloat16 ? at::kBFloat16 : at::kFloat;
  runtime.tf32 = precision == kTf32;
  return runtime;
}

Policy gpt2_small(std::int64_t context) {
  torch::manual_seed(0);
  Policy policy(PolicyOptions{.vocab = kVocab, .context = context, .width = kWidth, .depth = kDepth, .heads = kHeads});
  policy->to(kCuda);
  return policy;
}

// Each iteration ends with the device idle, so wall-clock time is the GPU's.
void BM_MatmulPeak(benchmark::State& state) {
  const std::int64_t n = 8192;
  const PrecisionScope precision(runtime_for(state.range(0)));
  const auto dtype = state.range(0) == kBfloat16 ? torch::kBFloat16 : torch::kFloat;
  const at::Tensor a = torch::randn({n, n}, torch::TensorOptions(kCuda).dtype(dtype));
  const at::Tensor b = torch::randn({n, n}, torch::TensorOptions(kCuda).dtype(dtype));
  benchmark::DoNotOptimize(a.mm(b));
  torch::cuda::synchronize();
  for (auto _ : state) {
    benchmark::DoNotOptimize(a.mm(b));
    torch::cuda::synchronize();
  }
  state.SetLabel(kPrecisionNames[state.range(0)]);
  state.counters["FLOPs"] = benchmark::Counter(2.0 * n * n * n, benchmark::Counter::kIsIterationInvariantRate);
}

void BM_TrainingStep(benchmark::State& state) {
  const PrecisionScope precision(runtime_for(state.range(0)));
  Policy policy = gpt2_small(kTime + 1);
  torch::optim::AdamW optimizer(policy->parameters(), torch::optim::AdamWOptions(1e-4));
  const at::Tensor tokens = torch::randint(kVocab, {kBatch, kTime + 1}, torch::TensorOptions(kCuda).dtype(torch::kLong));
  const auto step = [&] {
    const at::Tensor logits = policy->forward(tokens.narrow(1, 0, kTime)).to(torch::kFloat);
    const at::Tensor loss =
        torch::cross_entropy_loss(logits.reshape({-1, kVocab}), tokens.narrow(1, 1, kTime).reshape({-1}));
    optimizer.zero_grad();
    loss.backward();
    optimizer.step();
  };
  step();  // allocations, cuBLAS heuristics
  torch::cuda::synchronize();
  for (auto _ : state) {
    step();
    torch::cuda::synchronize();
  }
  state.SetLabel(kPrecisionNames[state.range(0)]);
  state.counters["FLOPs"] = benchmark::Counter(bench::training_step_flops(kBatch, kTime, kWidth, kDepth, kVocab),
                                               benchmark::Counter::kIsIterationInvariantRate);
  state.counters["tokens"] = benchmark::Counter(static_cast<double>(kBatch * kTime), benchmark::Counter::kIsIterationInvariantRate);
}

struct SamplingCase {
  bool cache;
  std::int64_t precision;
};
const SamplingCase kSamplingCases[] = {{true, kBfloat16}, {false, kBfloat16}, {true, kTf32}, {false, kTf32}};

std::string sampling_label(const SamplingCase& c) {
  return fmt::format("{}, {}", c.cache ? "KV cache" : "no cache", kPrecisionNames[c.precision]);
}

// range(0): an index into kSamplingCases.
void BM_Sampling(benchmark::State& state) {
  const SamplingCase& c = kSamplingCases[state.range(0)];
  const PrecisionScope precision(runtime_for(c.precision));
  Policy policy = gpt2_small(kPromptLength + kNew);
  at::Generator generator = at::make_generator<at::CPUGeneratorImpl>(1);
  const at::Tensor prompts = torch::randint(1, kVocab, {kPrompts, kPromptLength}, generator, torch::kLong).to(kCuda);
  const SamplingOptions options{.use_cache = c.cache};
  benchmark::DoNotOptimize(policy->sample(prompts, kNew, options, 0, generator));
  torch::cuda::synchronize();
  for (auto _ : state) {
    benchmark::DoNotOptimize(policy->sample(prompts, kNew, options, 0, generator));
    torch::cuda::synchronize();
  }
  state.SetLabel(sampling_label(c));
  state.counters["tokens"] = benchmark::Counter(static_cast<double>(kPrompts * kNew), benchmark::Counter::kIsIterationInvariantRate);
}

}  // namespace

BENCHMARK(BM_MatmulPeak)->Arg(kBfloat16)->Arg(kTf32)->Arg(kFp32)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_TrainingStep)->Arg(kBfloat16)->Arg(kTf32)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Sampling)->DenseRange(0, 3)->UseRealTime()->Unit(benchmark::kMillisecond);

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  if (!torch::cuda::is_available()) {
    fmt::print("prefopt_bench_gpu: no CUDA device visible; nothing to measure\n");
    return 0;
  }
  prefopt::bench::SummaryReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);

  const auto& flops = reporter.flop_rate;
  const auto& counters = reporter.counters;
  fmt::print("\n{:<64} {:>12}\n", "summary (GPT-2-small-sized policy on cuda:0)", "value");
  for (std::int64_t p : {kBfloat16, kTf32, kFp32})
    if (flops.contains({"BM_MatmulPeak", p}))
      fmt::print("{:<64} {:>12.1f}\n", fmt::format("matmul peak {}, TFLOP/s", kPrecisionNames[p]),
                 flops.at({"BM_MatmulPeak", p}) / 1e12);
  for (std::int64_t p : {kBfloat16, kTf32}) {
    if (!flops.contains({"BM_TrainingStep", p}) || !flops.contains({"BM_MatmulPeak", p})) continue;
    const double rate = flops.at({"BM_TrainingStep", p});
    fmt::print("{:<64} {:>11.1f}%\n",
               fmt::format("MFU, training step {} ({:.1f} TFLOP/s, {:.0f}k tokens/s)", kPrecisionNames[p], rate / 1e12,
                           counters.at({"BM_TrainingStep", p}).at("tokens") / 1e3),
               100.0 * rate / flops.at({"BM_MatmulPeak", p}));
  }
  for (std::int64_t i = 0; i < 4; ++i)
    if (counters.contains({"BM_Sampling", i}))
      fmt::print("{:<64} {:>12.0f}\n", fmt::format("sampling tokens/s, {}", sampling_label(kSamplingCases[i])),
                 counters.at({"BM_Sampling", i}).at("tokens"));
  return 0;
}
