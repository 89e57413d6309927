// The built-in language model: a small pre-norm GPT (learned positions, LayerNorm, GELU MLP),
// the policy of PolicyOptions. Internal to libprefopt; plugins see it as a LanguageModel.
#pragma once

#include "prefopt/language_model.h"
#include "prefopt/policy.h"

namespace prefopt {

class Transformer final : public LanguageModel {
 public:
  explicit Transformer(const PolicyOptions& options);

  std::int64_t vocab_size() const override { return options_.vocab; }
  std::int64_t hidden_size() const override { return options_.width; }
  std::int64_t max_length() const override { return options_.context; }
  c10::Device device() const override;
  std::string describe() const override;

  at::Tensor hidden_states(const at::Tensor& tokens, const at::Tensor& attention_mask, KeyValueCache* cache) override;
  at::Tensor logits(const at::Tensor& hidden_states) override;
  std::shared_ptr<LanguageModel> copy() const override;

 private:
  struct Block;
  PolicyOptions options_;
  torch::nn::Embedding token_embedding_{nullptr};
  torch::nn::Embedding position_embedding_{nullptr};
  std::vector<std::shared_ptr<Block>> blocks_;
  torch::nn::LayerNorm final_norm_{nullptr};
  torch::nn::Linear head_{nullptr};
};

}  // namespace prefopt
