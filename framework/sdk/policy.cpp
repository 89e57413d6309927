#include "prefopt/policy.h"

#include "transformer.h"

#include <fmt/format.h>
#include <torch/torch.h>

#include <cmath>
#include <stdexcept>

namespace prefopt {

LanguageModel::~LanguageModel() = default;

PolicyImpl::PolicyImpl(const PolicyOptions& options)
    : PolicyImpl(std::make_shared<Transformer>(options), options.vocab) {}

PolicyImpl::PolicyImpl(std::shared_ptr<LanguageModel> model, std::int64_t vocab)
    : model_(std::move(model)), vocab_(vocab) {
  if (!model_) throw std::invalid_argument("a policy needs a language model");
  if (vocab_ < 2 || vocab_ > model_->vocab_size())
    throw std::invalid_argument(fmt::format("a policy over {} tokens needs a model that knows at least as many; {} knows {}",
                                            vocab_, model_->describe(), model_->vocab_size()));
  register_module("model", model_);
}

// The model sees padding as token 0, hidden by the attention mask.
torch::Tensor PolicyImpl::hidden(const torch::Tensor& tokens_anywhere) {
  const torch::Tensor tokens = tokens_anywhere.to(device());
  return model_->hidden_states(tokens.clamp_min(0), tokens.ne(kPromptPadding), nullptr);
}

torch::Tensor PolicyImpl::logits(const torch::Tensor& hidden) {
  const torch::Tensor all = model_->logits(hidden);
  return vocab_ == model_->vocab_size() ? all : all.narrow(-1, 0, vocab_);
}

torch::Tensor PolicyImpl::forward(const torch::Tensor& tokens) { return logits(hidden(tokens)); }

Policy copy_policy(Policy& source) { return Policy(source->model().copy(), source->vocab()); }

torch::Tensor last_token_positions(const Sequences& s) { return s.prompts.size(1) + s.lengths - 1; }

torch::Tensor response_mask(const Sequences& s) {
  const torch::Tensor positions = torch::arange(s.responses.size(1), s.lengths.options()).unsqueeze(0);
  return positions.lt(s.lengths.unsqueeze(1)).to(torch::kFloat);
}

torch::Tensor PolicyImpl::response_log_probs(const Sequences& s, double temperature) {
  const std::int64_t prompt = s.prompts.size(1), width = s.responses.size(1);
  const torch::Tensor tokens = torch::cat({s.prompts, s.responses}, 1).narrow(1, 0, prompt + width - 1);
  // In fp32 also under bfloat16 autocast: a log-softmax over the vocabulary needs the precision.
  const torch::Tensor logits = forward(tokens).narrow(1, prompt - 1, width).to(torch::kFloat) / temperature;
  const torch::Tensor log_probs = logits.log_softmax(-1).gather(2, s.responses.to(device()).unsqueeze(2)).squeeze(2);
  return log_probs * response_mask(s).to(log_probs.device());
}

Sequences PolicyImpl::sample(const torch::Tensor& prompts_anywhere, std::int64_t response_length,
                             const SamplingOptions& sampling, std::int64_t eos, at::Generator& generator) {
  const torch::Tensor prompts = prompts_anywhere.to(device());
  const std::int64_t batch = prompts.size(0), prompt = prompts.size(1);
  if (prompt + response_length > model_->max_length())
    throw std::invalid_argument(fmt::format("prompt ({}) + response ({}) tokens exceed the {} tokens of {}", prompt,
                                            response_length, model_->max_length(), model_->describe()));
  torch::NoGradGuard no_grad;
  // [response_length, batch, 1]: the uniform number that picks each token.
  const torch::Tensor uniforms = torch::rand({response_length, batch, 1}, generator).to(device());
  auto pick = [&](torch::Tensor logits, std::int64_t t) {  // [batch, vocab] -> [batch]
    logits = logits.to(torch::kFloat) / sampling.temperature;
    if (sampling.top_k > 0 && sampling.top_k < vocab_) {
      const torch::Tensor kth = std::get<0>(logits.topk(sampling.top_k, -1)).select(1, sampling.top_k - 1).unsqueeze(1);
      logits = logits.masked_fill(logits.lt(kth), -std::numeric_limits<float>::infinity());
    }
    // The first token whose cumulative probability exceeds u * total: token i with probability
    // p_i, never one of probability 0 (the total, not 1, absorbs the cumsum's rounding).
    const torch::Tensor cdf = logits.softmax(-1).cumsum(-1);
    const torch::Tensor target = uniforms[t] * cdf.narrow(1, vocab_ - 1, 1);
    return torch::searchsorted(cdf, target, /*out_int32=*/false, /*right=*/true).squeeze(1).clamp_max(vocab_ - 1);
  };

  torch::Tensor responses = torch::full({batch, response_length}, eos, prompts.options());
  torch::Tensor ended = torch::zeros({batch}, prompts.options().dtype(torch::kBool));
  KeyValueCache cache;
  // Of the cached tokens and the new ones; none without padding, which spares each token the
  // mask's work (one host sync per call to find out).
  torch::Tensor mask = prompts.lt(0).any().item<bool>() ? prompts.ne(kPromptPadding) : torch::Tensor();
  torch::Tensor next_logits;
  auto run_cached = [&](const torch::Tensor& tokens) {
    const torch::Tensor x = model_->hidden_states(tokens.clamp_min(0), mask, &cache);
    return logits(x.narrow(1, x.size(1) - 1, 1)).squeeze(1);
  };
  if (sampling.use_cache) next_logits = run_cached(prompts);
  for (std::int64_t t = 0; t < response_length; ++t) {
    if (!sampling.use_cache) {
      const torch::Tensor sequence = torch::cat({prompts, responses.narrow(1, 0, t)}, 1);
      next_logits = forward(sequence).select(1, prompt + t - 1);
    }
    const torch::Tensor token = pick(next_logits, t).masked_fill(ended, eos);
    responses.select(1, t).copy_(token);
    ended = ended.logical_or(token.eq(eos));
    if (sampling.use_cache && t + 1 < response_length) {
      if (mask.defined()) mask = torch::cat({mask, torch::ones({batch, 1}, mask.options())}, 1);
      next_logits = run_cached(token.unsqueeze(1));
    }
  }
  return {prompts, responses, response_lengths(responses, eos)};
}

}  // namespace prefopt
