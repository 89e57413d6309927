// A GPT-2-small-shaped Hugging Face decoder (124M parameters, random weights): greedy sampling
// tokens/s with the key/value cache, and a DPO step (policy forward and backward on chosen and
// rejected, reference forward, AdamW). bench/model_vs_transformers.sh runs the same work in
// PyTorch-Python with transformers and prints both.
//
//   build/bin/prefopt_bench_model [--device=cpu|cuda] [--dtype=float32|bfloat16] [--benchmark_format=json]
#include <benchmark/benchmark.h>
#include <torch/cuda.h>
#include <torch/torch.h>

#include "models/decoder.h"
#include "prefopt/losses.h"

namespace {

using prefopt::models::Decoder;

constexpr std::int64_t kPrompt = 32, kResponse = 64, kSampleBatch = 8, kPairs = 4;

// Where the models compute (--device, --dtype): the weights' dtype, as prefopt model loads them.
torch::Device device = torch::kCPU;
torch::Dtype dtype = torch::kFloat;

void synchronize() {
  if (device.is_cuda()) torch::cuda::synchronize();
}

Decoder gpt2_small() {
  prefopt::models::DecoderConfig c;
  c.model_type = "gpt2";
  c.family = prefopt::models::Family::gpt2;
  c.vocab = 50257, c.width = 768, c.depth = 12, c.heads = 12, c.kv_heads = 12, c.head_width = 64;
  c.intermediate = 3072, c.max_positions = 1024, c.activation = "gelu_new", c.tied_embeddings = true;
  c.qkv_bias = c.output_bias = c.mlp_bias = true;  // no EOS: every continuation runs its full length
  torch::manual_seed(0);
  Decoder model(c);
  torch::NoGradGuard no_grad;
  for (auto& parameter : model->parameters()) parameter.normal_(0.0, 0.02);
  model->to(device, dtype);
  return model;
}

void BM_GreedySample(benchmark::State& state) {
  Decoder model = gpt2_small();
  model->eval();
  torch::manual_seed(1);
  std::vector<std::vector<std::int64_t>> prompts;
  for (std::int64_t i = 0; i < kSampleBatch; ++i) {
    const torch::Tensor ids = torch::randint(0, 50257, {kPrompt}, torch::kLong);
    prompts.emplace_back(ids.data_ptr<std::int64_t>(), ids.data_ptr<std::int64_t>() + kPrompt);
  }
  for (auto _ : state) {
    benchmark::DoNotOptimize(prefopt::models::greedy_generate(model, prompts, kResponse));
    synchronize();
  }
  state.SetItemsProcessed(state.iterations() * kSampleBatch * kResponse);  // generated tokens
}
BENCHMARK(BM_GreedySample)->Unit(benchmark::kSecond)->MinTime(5.0);

// Sequence log-probs of the responses ([pairs], sum over response tokens).
torch::Tensor response_log_probs(Decoder& model, const torch::Tensor& tokens) {
  const torch::Tensor log_probs = model->forward(tokens).narrow(1, kPrompt - 1, kResponse).to(torch::kFloat).log_softmax(-1);
  return log_probs.gather(2, tokens.narrow(1, kPrompt, kResponse).unsqueeze(2)).squeeze(2).sum(1);
}

void BM_DpoStep(benchmark::State& state) {
  Decoder policy = gpt2_small(), reference = gpt2_small();
  policy->train();
  reference->eval();
  torch::optim::AdamW optimizer(policy->parameters(), torch::optim::AdamWOptions(1e-5));
  torch::manual_seed(2);
  const torch::Tensor chosen = torch::randint(0, 50257, {kPairs, kPrompt + kResponse}, torch::kLong).to(device);
  const torch::Tensor rejected = torch::randint(0, 50257, {kPairs, kPrompt + kResponse}, torch::kLong).to(device);
  for (auto _ : state) {
    torch::Tensor ref_chosen, ref_rejected;
    {
      torch::NoGradGuard no_grad;
      const torch::Tensor both = response_log_probs(reference, torch::cat({chosen, rejected}));
      ref_chosen = both.narrow(0, 0, kPairs), ref_rejected = both.narrow(0, kPairs, kPairs);
    }
    const torch::Tensor both = response_log_probs(policy, torch::cat({chosen, rejected}));
    const torch::Tensor loss = prefopt::losses::dpo(both.narrow(0, 0, kPairs), both.narrow(0, kPairs, kPairs), ref_chosen,
                                            ref_rejected, /*beta=*/0.1, prefopt::losses::DpoLoss::sigmoid)
                                   .mean();
    optimizer.zero_grad();
    loss.backward();
    optimizer.step();
    synchronize();
  }
  state.SetItemsProcessed(state.iterations() * 2 * kPairs * (kPrompt + kResponse));  // tokens trained on
}
BENCHMARK(BM_DpoStep)->Unit(benchmark::kSecond)->MinTime(10.0);

}  // namespace

int main(int argc, char** argv) {
  std::vector<char*> rest;
  for (int i = 0; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg.starts_with("--device=")) device = torch::Device(arg.substr(9));
    else if (arg == "--dtype=bfloat16") dtype = torch::kBFloat16;
    else if (arg != "--dtype=float32") rest.push_back(argv[i]);
  }
  int count = static_cast<int>(rest.size());
  benchmark::Initialize(&count, rest.data());
  benchmark::AddCustomContext("device", device.str());
  benchmark::AddCustomContext("dtype", dtype == torch::kBFloat16 ? "bfloat16" : "float32");
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
