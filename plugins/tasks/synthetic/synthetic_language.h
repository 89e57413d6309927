// The synthetic task's world: a seeded random bigram language with an EOS token, and a gold
// reward of three conflicting attributes.
//
//   valence    mean per-token valence of the response (valence ~ N(0, 1) per token)
//   coherence  mean log-probability of the response under the true language: punishes
//              degenerate, repetitive or ungrammatical text
//   length     -|content length - target| / target: neither rambling nor terse
//
// Token 0 is EOS; tokens 1..vocab-1 are words. The base policy imitates the true language, so its
// samples are coherent; a proxy reward model that learns valence faster than coherence (as one
// trained on few noisy labels does) can be overoptimized: its favourite responses pile up
// high-valence tokens in orders the language would never produce, and the gold reward falls.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>

#include "prefopt/task.h"

namespace prefopt::synthetic {

struct LanguageOptions {
  std::int64_t vocab = 32;
  std::int64_t prompt_length = 4;
  std::int64_t min_prompt_length = 0;  // > 0: prompts of min..prompt_length tokens, left-padded; 0: all prompt_length
  std::int64_t max_response_length = 12;
  double mean_length = 6.0;    // expected response length (> 1): P(EOS | any word) = 1 / mean_length
  double target_length = 6.0;  // the length the gold reward likes best
  double logit_scale = 2.0;    // std of the bigram logits: larger is a more predictable language
  std::int64_t seed = 0;       // the language's identity: transitions and valences
  double valence_weight = 1.0;
  double coherence_weight = 0.5;
  double length_weight = 0.5;
};

class Language {
 public:
  static constexpr std::int64_t kEos = 0;
  explicit Language(const LanguageOptions& options);

  const LanguageOptions& options() const { return options_; }
  // [vocab, vocab]: log P(next = j | previous = i). Row 0 (after EOS) is never used.
  const at::Tensor& transition_log_probs() const { return log_probs_; }
  // [vocab]: each token's valence; EOS has 0.
  const at::Tensor& valence() const { return valence_; }
  at::Tensor weights() const;  // [3]: valence, coherence, length

  // [n, prompt_length] word tokens: the first uniform, the rest from the language without EOS.
  // With min_prompt_length, each prompt keeps the last of them, a uniform count in
  // [min_prompt_length, prompt_length], left-padded with kPromptPadding.
  at::Tensor sample_prompts(std::int64_t n, at::Generator& generator) const;
  // Responses continuing `prompts` in the true language, padded with EOS after the first EOS.
  Sequences sample_responses(const at::Tensor& prompts, at::Generator& generator) const;
  // [batch, 3]: valence, coherence, length.
  at::Tensor attributes(const Sequences& sequences) const;

 private:
  LanguageOptions options_;
  at::Tensor log_probs_;
  at::Tensor valence_;
};

}  // namespace prefopt::synthetic
