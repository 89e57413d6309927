#include "transformer.h"

#include <fmt/format.h>
#include <torch/torch.h>

#include <cmath>
#include <limits>
#include <stdexcept>

namespace prefopt {

namespace nn = torch::nn;

// A pre-norm transformer block: x + attention(norm(x)), then x + mlp(norm(x)).
struct Transformer::Block : nn::Module {
  Block(std::int64_t width, std::int64_t heads)
      : heads(heads),
        norm1(register_module("norm1", nn::LayerNorm(nn::LayerNormOptions({width})))),
        qkv(register_module("qkv", nn::Linear(width, 3 * width))),
        projection(register_module("projection", nn::Linear(width, width))),
        norm2(register_module("norm2", nn::LayerNorm(nn::LayerNormOptions({width})))),
        expand(register_module("expand", nn::Linear(width, 4 * width))),
        contract(register_module("contract", nn::Linear(4 * width, width))) {}

  // x: [batch, time, width]; allowed: [batch or 1, 1, time, cached + time], whether query i may
  // attend to key j. With a cache, keys and values of earlier positions are read from it and this
  // call's are appended, so x holds only the new positions.
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& allowed, torch::Tensor* cached_keys,
                        torch::Tensor* cached_values) {
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
    torch::Tensor scores = query.matmul(key.transpose(-2, -1)) / std::sqrt(static_cast<double>(head_width));
    if (allowed.defined()) scores = scores.masked_fill(allowed.logical_not(), -std::numeric_limits<float>::infinity());
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

Transformer::Transformer(const PolicyOptions& options) : options_(options) {
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

c10::Device Transformer::device() const { return token_embedding_->weight.device(); }

std::string Transformer::describe() const {
  return fmt::format("built-in transformer, {} blocks, width {}, {} heads", options_.depth, options_.width, options_.heads);
}

torch::Tensor Transformer::hidden_states(const torch::Tensor& tokens_anywhere, const torch::Tensor& mask_anywhere,
                                         KeyValueCache* cache) {
  const torch::Tensor tokens = tokens_anywhere.to(device());
  const std::int64_t batch = tokens.size(0), time = tokens.size(1);
  if (cache != nullptr && cache->keys.empty()) cache->keys.resize(blocks_.size()), cache->values.resize(blocks_.size());
  const std::int64_t past = cache != nullptr && cache->keys[0].defined() ? cache->keys[0].size(2) : 0;
  if (past + time > options_.context)
    throw std::invalid_argument(fmt::format("{} tokens exceed the policy's context of {}", past + time, options_.context));

  // Query i (position past + i) sees keys 0 .. past + i, and of those only real tokens.
  torch::Tensor allowed, positions;
  if (mask_anywhere.defined()) {
    const torch::Tensor mask = mask_anywhere.to(device()).to(torch::kBool);
    if (mask.dim() != 2 || mask.size(0) != batch || mask.size(1) != past + time)
      throw std::invalid_argument(fmt::format("the attention mask has {} dimensions and {} columns; {} sequences of {} "
                                              "tokens after {} cached need [{}, {}]",
                                              mask.dim(), mask.size(-1), batch, time, past, batch, past + time));
    const torch::Tensor causal = torch::ones({time, past + time}, mask.options()).tril(past);
    // Each query also sees itself, so a padding query attends to something (not a NaN that 0 * NaN
    // would carry into real tokens); a real query sees itself anyway.
    const torch::Tensor itself = causal.triu(past);
    allowed = causal.unsqueeze(0).logical_and(mask.unsqueeze(1)).logical_or(itself).unsqueeze(1);
    positions = (mask.to(torch::kLong).cumsum(1) - 1).clamp_min(0).narrow(1, past, time);
  } else {
    if (time > 1) allowed = torch::ones({time, past + time}, tokens.options().dtype(torch::kBool)).tril(past).view({1, 1, time, past + time});
    positions = torch::arange(past, past + time, tokens.options()).unsqueeze(0).expand({batch, time});
  }
  torch::Tensor x = token_embedding_(tokens) + position_embedding_(positions);
  for (std::size_t i = 0; i < blocks_.size(); ++i)
    x = blocks_[i]->forward(x, allowed, cache ? &cache->keys[i] : nullptr, cache ? &cache->values[i] : nullptr);
  return final_norm_(x);
}

torch::Tensor Transformer::logits(const torch::Tensor& hidden_states) { return head_(hidden_states); }

std::shared_ptr<LanguageModel> Transformer::copy() const {
  auto copy = std::make_shared<Transformer>(options_);
  torch::NoGradGuard no_grad;
  const auto from = named_parameters();
  for (auto& parameter : copy->named_parameters()) parameter.value().copy_(from[parameter.key()]);
  copy->to(device());
  return copy;
}

}  // namespace prefopt
