#include "prefopt/policy.h"

#include <fmt/format.h>
#include <torch/torch.h>

#include <cmath>
#include <stdexcept>

namespace prefopt {

namespace nn = torch::nn;

// A pre-norm transformer block: x + attention(norm(x)), then x + mlp(norm(x)).
struct PolicyImpl::Block : nn::Module {
  Block(std::int64_t width, std::int64_t heads)
      : heads(heads),
        norm1(register_module("norm1", nn::LayerNorm(nn::LayerNormOptions({width})))),
        qkv(register_module("qkv", nn::Linear(width, 3 * width))),
        projection(register_module("projection", nn::Linear(width, width))),
        norm2(register_module("norm2", nn::LayerNorm(nn::LayerNormOptions({width})))),
        expand(register_module("expand", nn::Linear(width, 4 * width))),
        contract(register_module("contract", nn::Linear(4 * width, width))) {}

  // x: [batch, time, width]. With a cache, keys and values of earlier positions are read from it
  // and this call's are appended, so x holds only the new positions.
  torch::Tensor forward(const torch::Tensor& x, torch::Tensor* cached_keys, torch::Tensor* cached_values) {
    const std::int64_t batch = x.size(0), time = x.size(1), width = x.size(2), head_width = width / heads;
    const torch::Tensor parts = qkv(norm1(x)).view({batch, time, 3, heads, head_width}).permute({2, 0, 3, 1, 4});
    const torch::Tensor query = parts[0];
    torch::Tensor key = parts[1], value = parts[2];  // [batch, heads, time, head_width]
    if (cached_keys != nullptr) {
      if (cached_keys->defined()) {
        key = torch::cat({*cached_keys, key}, 2);
        value = torch::cat({*cached_values, value}, 2);
      }
      *cached_keys = key;
      *cached_values = value;
    }
    const std::int64_t keys = key.size(2), past = keys - time;
    torch::Tensor scores = query.matmul(key.transpose(-2, -1)) / std::sqrt(static_cast<double>(head_width));
    if (time > 1) {  // query i (position past + i) sees keys 0 .. past + i
      const torch::Tensor future = torch::ones({time, keys}, x.options().dtype(torch::kBool)).triu(past + 1);
      scores = scores.masked_fill(future, -std::numeric_limits<float>::infinity());
    }
    const torch::Tensor attended = scores.softmax(-1).matmul(value).transpose(1, 2).reshape({batch, time, width});
    const torch::Tensor y = x + projection(attended);
    return y + contract(torch::gelu(expand(norm2(y))));
  }

  std::int64_t heads;
  nn::LayerNorm norm1;
  nn::Linear qkv, projection;
  nn::LayerNorm norm2;
  nn::Linear expand, contract;
};

PolicyImpl::PolicyImpl(const PolicyOptions& options) : options_(options) {
  if (options.vocab < 2 || options.context < 2 || options.width < 1 || options.depth < 1 || options.heads < 1 ||
      options.width % options.heads != 0)
    throw std::invalid_argument(fmt::format("invalid policy shape: vocab {}, context {}, width {} (a multiple of "
                                            "heads {}), depth {}",
                                            options.vocab, options.context, options.width, options.heads, options.depth));
  token_embedding_ = register_module("token_embedding", nn::Embedding(options.vocab, options.width));
  position_embedding_ = register_module("position_embedding", nn::Embedding(options.context, options.width));
  for (std::int64_t i = 0; i < options.depth; ++i)
    blocks_.push_back(register_module("block" + std::to_string(i), std::make_shared<Block>(options.width, options.heads)));
  final_norm_ = register_module("final_norm", nn::LayerNorm(nn::LayerNormOptions({options.width})));
  head_ = register_module("head", nn::Linear(options.width, options.vocab));
  // GPT-2's initialization: small normal weights, zero biases.
  torch::NoGradGuard no_grad;
  for (auto& parameter : named_parameters()) {
    if (parameter.key().ends_with("bias")) parameter.value().zero_();
    else if (parameter.value().dim() >= 2) parameter.value().normal_(0.0, 0.02);
  }
}

namespace {
struct LayerCache {
  torch::Tensor keys, values;
};
}  // namespace

c10::Device PolicyImpl::device() const { return token_embedding_->weight.device(); }

torch::Tensor PolicyImpl::hidden(const torch::Tensor& tokens_anywhere) {
  const torch::Tensor tokens = tokens_anywhere.to(device());
  const std::int64_t time = tokens.size(1);
  if (time > options_.context)
    throw std::invalid_argument(fmt::format("{} tokens exceed the policy's context of {}", time, options_.context));
  torch::Tensor x = token_embedding_(tokens) + position_embedding_(torch::arange(time, tokens.options()));
  for (const auto& block : blocks_) x = block->forward(x, nullptr, nullptr);
  return final_norm_(x);
}

torch::Tensor PolicyImpl::forward(const torch::Tensor& tokens) { return head_(hidden(tokens)); }

Policy copy_policy(Policy& source) {
  Policy copy(source->options());
  torch::NoGradGuard no_grad;
  const auto from = source->named_parameters();
  for (auto& parameter : copy->named_parameters()) parameter.value().copy_(from[parameter.key()]);
  copy->to(source->device());
  return copy;
}

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
  if (prompt + response_length > options_.context)
    throw std::invalid_argument(fmt::format("prompt ({}) + response ({}) tokens exceed the policy's context of {}",
                                            prompt, response_length, options_.context));
  torch::NoGradGuard no_grad;
  // [response_length, batch, 1]: the uniform number that picks each token.
  const torch::Tensor uniforms = torch::rand({response_length, batch, 1}, generator).to(device());
  auto pick = [&](torch::Tensor logits, std::int64_t t) {  // [batch, vocab] -> [batch]
    logits = logits.to(torch::kFloat) / sampling.temperature;
    if (sampling.top_k > 0 && sampling.top_k < options_.vocab) {
      const torch::Tensor kth = std::get<0>(logits.topk(sampling.top_k, -1)).select(1, sampling.top_k - 1).unsqueeze(1);
      logits = logits.masked_fill(logits.lt(kth), -std::numeric_limits<float>::infinity());
    }
    // The first token whose cumulative probability exceeds u * total: token i with probability
    // p_i, never one of probability 0 (the total, not 1, absorbs the cumsum's rounding).
    const torch::Tensor cdf = logits.softmax(-1).cumsum(-1);
    const torch::Tensor target = uniforms[t] * cdf.narrow(1, options_.vocab - 1, 1);
    return torch::searchsorted(cdf, target, /*out_int32=*/false, /*right=*/true).squeeze(1).clamp_max(options_.vocab - 1);
  };

  torch::Tensor responses = torch::full({batch, response_length}, eos, prompts.options());
  torch::Tensor ended = torch::zeros({batch}, prompts.options().dtype(torch::kBool));
  std::vector<LayerCache> cache(blocks_.size());
  torch::Tensor logits;
  auto run_cached = [&](const torch::Tensor& tokens, std::int64_t start) {
    torch::Tensor x = token_embedding_(tokens) +
                      position_embedding_(torch::arange(start, start + tokens.size(1), tokens.options()));
    for (std::size_t i = 0; i < blocks_.size(); ++i) x = blocks_[i]->forward(x, &cache[i].keys, &cache[i].values);
    return head_(final_norm_(x.narrow(1, x.size(1) - 1, 1))).squeeze(1);
  };
  if (sampling.use_cache) logits = run_cached(prompts, 0);
  for (std::int64_t t = 0; t < response_length; ++t) {
    if (!sampling.use_cache) {
      const torch::Tensor sequence = torch::cat({prompts, responses.narrow(1, 0, t)}, 1);
      logits = forward(sequence).select(1, prompt + t - 1);
    }
    const torch::Tensor token = pick(logits, t).masked_fill(ended, eos);
    responses.select(1, t).copy_(token);
    ended = ended.logical_or(token.eq(eos));
    if (sampling.use_cache && t + 1 < response_length) logits = run_cached(token.unsqueeze(1), prompt + t);
  }
  return {prompts, responses, response_lengths(responses, eos)};
}

}  // namespace prefopt
