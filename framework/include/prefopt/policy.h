// The policy: a causal language model over a task's tokens. Algorithms train it; the frozen
// reference policy and the reward models' backbones are copies of the SFT policy.
//
//   Policy policy(PolicyOptions{.vocab = 32, .context = 16});   // the built-in transformer
//   Sequences samples = policy->sample(prompts, /*response_length=*/12, {.temperature = 1.0}, eos, generator);
//   at::Tensor log_probs = policy->response_log_probs(samples, /*temperature=*/1.0);   // [batch, 12]
//
// The network is a LanguageModel: the built-in transformer, or a Hugging Face checkpoint's
// decoder whose vocabulary may be larger than the task's; the policy's distribution is over the
// task's tokens, the model's first vocab() ids, whatever else the model knows.
//
// Sampling uses a key/value cache: the prompt is encoded once, then each step attends its one new
// token to the cached keys and values, O(T) per token instead of O(T^2) without the cache.
//
// The policy computes on the device of its parameters and moves the tokens it is given there;
// what it returns lives there too.
#pragma once

#include <torch/nn.h>

#include "prefopt/language_model.h"
#include "prefopt/task.h"

namespace prefopt {

struct PolicyOptions {
  std::int64_t vocab = 32;
  std::int64_t context = 16;  // prompt + response tokens at most
  std::int64_t width = 64;
  std::int64_t depth = 2;
  std::int64_t heads = 4;
};

struct SamplingOptions {
  double temperature = 1.0;  // logits are divided by it, also when log-probs are recomputed
  std::int64_t top_k = 0;    // 0: the whole vocabulary
  bool use_cache = true;     // false only to measure what the cache saves
};

class PREFOPT_API PolicyImpl : public torch::nn::Module {
 public:
  explicit PolicyImpl(const PolicyOptions& options);  // the built-in transformer, freshly initialized
  // A policy over `model`'s first `vocab` tokens (at most model->vocab_size()). Since 3.0.
  PolicyImpl(std::shared_ptr<LanguageModel> model, std::int64_t vocab);

  LanguageModel& model() const { return *model_; }
  std::int64_t vocab() const { return vocab_; }
  std::int64_t hidden_size() const { return model_->hidden_size(); }
  c10::Device device() const { return model_->device(); }

  // [batch, time] tokens -> [batch, time, hidden_size()] final hidden states (causal). Tokens may
  // be left-padded with kPromptPadding: padding is masked out, positions count real tokens.
  torch::Tensor hidden(const torch::Tensor& tokens);
  // [batch, time] tokens -> [batch, time, vocab()] next-token logits (causal).
  torch::Tensor forward(const torch::Tensor& tokens);
  // Hidden states -> [..., vocab()] next-token logits.
  torch::Tensor logits(const torch::Tensor& hidden);

  // Per-token log-probabilities of each response given its prompt, with logits divided by
  // `temperature`: [batch, response width], 0 past each response's length.
  torch::Tensor response_log_probs(const Sequences& sequences, double temperature);

  // Samples `response_length` tokens after each prompt; tokens after the first EOS become EOS.
  // Runs without gradients. The randomness is one uniform number per token drawn up front from
  // `generator` (a CPU generator), each turned into a token by inverting the next-token
  // distribution's CDF on the policy's device: no host round trip per token, and the same seed
  // samples the same tokens on every device (up to rounding).
  Sequences sample(const torch::Tensor& prompts, std::int64_t response_length, const SamplingOptions& sampling,
                   std::int64_t eos, at::Generator& generator);

 private:
  std::shared_ptr<LanguageModel> model_;
  std::int64_t vocab_;
};
TORCH_MODULE(Policy);

// A new policy with the same model and a copy of `source`'s weights (the reference policy, and
// reward-model backbones, start as copies of the SFT policy).
PREFOPT_API Policy copy_policy(Policy& source);

// [batch] position in cat(prompt, response) of each response's last token (its EOS, if any).
PREFOPT_API torch::Tensor last_token_positions(const Sequences& sequences);

// A mask of the response tokens: [batch, width] float, 1 up to each response's length.
PREFOPT_API torch::Tensor response_mask(const Sequences& sequences);

}  // namespace prefopt
