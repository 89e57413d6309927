// The network a Policy computes with: token ids in, hidden states and next-token logits out.
// prefopt has two: the built-in transformer (PolicyOptions: width, depth, heads) and the decoders
// of Hugging Face checkpoint folders ([policy] checkpoint: GPT-2, GPT-NeoX, the Llama family).
// Plugins reach it through Policy; a reward model's backbone is a copy of the SFT policy's.
//
// Since 3.0.
#pragma once

#include <torch/nn/module.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "prefopt/export.h"

namespace prefopt {

// Keys and values of every layer for the positions seen so far, so that generation attends each
// new token to them instead of recomputing the prefix. Starts empty; the model fills it.
struct KeyValueCache {
  std::vector<at::Tensor> keys, values;  // per layer: [batch, kv_heads, positions, head_width]
};

class PREFOPT_API LanguageModel : public torch::nn::Module {
 public:
  ~LanguageModel() override;

  virtual std::int64_t vocab_size() const = 0;   // rows of the logits
  virtual std::int64_t hidden_size() const = 0;  // width of the hidden states
  // Tokens a sequence may have (learned position embeddings); INT64_MAX when unbounded (RoPE).
  virtual std::int64_t max_length() const = 0;
  virtual c10::Device device() const = 0;  // where the parameters are
  virtual std::string describe() const = 0;  // "gpt_neox, 2 layers, width 64 (ckpt/pythia-tiny)"

  // tokens [batch, time] -> final hidden states [batch, time, hidden_size], causal.
  // attention_mask [batch, cached + time]: 1 for real tokens, 0 for left padding (undefined: all
  // real); positions count real tokens only. With a cache, attends to its keys and values too and
  // appends this call's. Tokens may be on any device; the result is on device().
  virtual at::Tensor hidden_states(const at::Tensor& tokens, const at::Tensor& attention_mask,
                                   KeyValueCache* cache) = 0;
  // Hidden states -> next-token logits [..., vocab_size].
  virtual at::Tensor logits(const at::Tensor& hidden_states) = 0;

  // A new model of the same architecture with a copy of the weights, on the same device.
  virtual std::shared_ptr<LanguageModel> copy() const = 0;
};

}  // namespace prefopt
