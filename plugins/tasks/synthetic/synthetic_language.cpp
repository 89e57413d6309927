#include "synthetic_language.h"

#include <ATen/CPUGeneratorImpl.h>

#include <cmath>

namespace prefopt::synthetic {

Language::Language(const LanguageOptions& options) : options_(options) {
  at::Generator generator = at::make_generator<at::CPUGeneratorImpl>(static_cast<std::uint64_t>(options.seed));
  const std::int64_t vocab = options.vocab;
  at::Tensor words = at::normal(0.0, options.logit_scale, {vocab, vocab - 1}, generator);
  // P(EOS | word) = 1 / mean_length exactly: its logit sits at logit(p) above the words' logsumexp.
  const double p_eos = 1.0 / options.mean_length;
  const at::Tensor eos = std::log(p_eos / (1.0 - p_eos)) + words.logsumexp(1, /*keepdim=*/true);
  log_probs_ = at::cat({eos, words}, 1).log_softmax(1);
  valence_ = at::cat({at::zeros({1}), at::normal(0.0, 1.0, {vocab - 1}, generator)});
}

at::Tensor Language::weights() const {
  return at::tensor({options_.valence_weight, options_.coherence_weight, options_.length_weight}, at::kFloat);
}

at::Tensor Language::sample_prompts(std::int64_t n, at::Generator& generator) const {
  const std::int64_t length = options_.prompt_length;
  at::Tensor prompts = at::empty({n, length}, at::kLong);
  if (n == 0) return prompts;
  prompts.select(1, 0).copy_(at::randint(1, options_.vocab, {n}, generator));
  // Prompts are words only: the language's transitions with EOS removed.
  const at::Tensor word_probs = log_probs_.narrow(1, 1, options_.vocab - 1).softmax(1);
  for (std::int64_t t = 1; t < length; ++t) {
    const at::Tensor rows = word_probs.index_select(0, prompts.select(1, t - 1));
    prompts.select(1, t).copy_(at::multinomial(rows, 1, /*replacement=*/true, generator).squeeze(1) + 1);
  }
  if (options_.min_prompt_length == 0 || options_.min_prompt_length == length) return prompts;
  const at::Tensor lengths = at::randint(options_.min_prompt_length, length + 1, {n, 1}, generator);
  const at::Tensor padding = at::arange(length).unsqueeze(0).lt(length - lengths);
  return prompts.masked_fill(padding, kPromptPadding);
}

Sequences Language::sample_responses(const at::Tensor& prompts, at::Generator& generator) const {
  const std::int64_t n = prompts.size(0);
  const std::int64_t width = options_.max_response_length;
  at::Tensor responses = at::full({n, width}, kEos, at::kLong);
  if (n > 0) {
    const at::Tensor probs = log_probs_.exp();
    at::Tensor previous = prompts.select(1, prompts.size(1) - 1);
    at::Tensor ended = at::zeros({n}, at::kBool);
    for (std::int64_t t = 0; t < width; ++t) {
      const at::Tensor next = at::multinomial(probs.index_select(0, previous), 1, true, generator).squeeze(1);
      const at::Tensor token = at::where(ended, at::full_like(next, kEos), next);
      responses.select(1, t).copy_(token);
      ended = ended.logical_or(token.eq(kEos));
      previous = token;
    }
  }
  return {prompts, responses, response_lengths(responses, kEos)};
}

at::Tensor Language::attributes(const Sequences& s) const {
  const at::Tensor& responses = s.responses;
  const std::int64_t width = responses.size(1);
  const at::Tensor positions = at::arange(width, at::kLong).unsqueeze(0);
  const at::Tensor in_response = positions.lt(s.lengths.unsqueeze(1));  // tokens up to and incl. EOS
  const at::Tensor has_eos = responses.gather(1, (s.lengths - 1).clamp_min(0).unsqueeze(1)).squeeze(1).eq(kEos);
  const at::Tensor content_length = s.lengths - has_eos.to(at::kLong);
  const at::Tensor is_word = positions.lt(content_length.unsqueeze(1));

  const at::Tensor valence_sum = (valence_.index({responses}) * is_word).sum(1);
  const at::Tensor valence = valence_sum / content_length.clamp_min(1).to(at::kFloat);

  const at::Tensor previous = at::cat({s.prompts.narrow(1, s.prompts.size(1) - 1, 1), responses.narrow(1, 0, width - 1)}, 1);
  const at::Tensor token_log_probs = log_probs_.index({previous, responses});
  const at::Tensor coherence =
      (token_log_probs * in_response).sum(1) / s.lengths.clamp_min(1).to(at::kFloat);

  const double target = options_.target_length;
  const at::Tensor length = -(content_length.to(at::kFloat) - target).abs() / std::max(target, 1.0);
  return at::stack({valence, coherence, length}, 1).to(at::kFloat);
}

}  // namespace prefopt::synthetic
