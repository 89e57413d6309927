// Decoder-only language models from Hugging Face checkpoint folders: GPT-2, GPT-NeoX (Pythia) and
// the Llama family (Llama, Mistral, Qwen2, SmolLM), computed as transformers computes them.
//
//   Decoder model = load_decoder("ckpt/pythia-14m", {.dtype = torch::kBFloat16});
//   torch::Tensor logits = model->forward(tokens, attention_mask);   // [batch, time, vocab]
//
// Parameters carry the checkpoint's own names ("gpt_neox.layers.0.attention.dense.weight"), so
// named_parameters() is what save_pretrained would write. Sequences may be left-padded: an
// attention mask marks real tokens, positions count real tokens only, so a padded sequence gives
// the logits it gives alone.
#pragma once

#include <torch/nn.h>

#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "prefopt/language_model.h"

namespace prefopt::models {

enum class Family { gpt2, gpt_neox, llama };

struct Rope {
  std::string type = "default";  // default, linear, dynamic, llama3
  double theta = 10000.0;
  double partial = 1.0;  // the share of each head's dimensions that rotates
  double factor = 1.0, low_freq_factor = 1.0, high_freq_factor = 4.0;
  std::int64_t original_max_positions = 0;
};

struct DecoderConfig {
  std::string model_type;    // config.json's, e.g. "qwen2"
  std::string architecture;  // config.json's architectures[0], e.g. "Qwen2ForCausalLM"
  Family family = Family::llama;
  std::int64_t vocab = 0, width = 0, depth = 0, heads = 0, kv_heads = 0, head_width = 0, intermediate = 0;
  std::int64_t max_positions = 0;
  double norm_eps = 1e-5;
  std::string activation;
  bool tied_embeddings = false;
  bool qkv_bias = false, output_bias = false, mlp_bias = false;
  bool parallel_residual = false;         // GPT-NeoX: x + attention(ln1 x) + mlp(ln2 x)
  bool scale_by_inverse_layer = false;    // GPT-2's scale_attn_by_inverse_layer_idx
  std::optional<std::int64_t> sliding_window;  // Mistral: a query sees this many positions, itself included
  Rope rope;                              // unused by GPT-2 (learned positions)
  std::optional<std::int64_t> bos, pad;
  std::vector<std::int64_t> eos;          // a model may have several
  std::string stored_dtype;               // config.json's dtype (torch_dtype), "" when absent
  // A *ForSequenceClassification checkpoint: a `score` head of num_labels outputs instead of the
  // language-model head, read at each sequence's last token.
  bool classifier = false;
  std::int64_t num_labels = 0;
};

// Reads `folder`/config.json. Throws ConfigError naming the file and key for a missing or wrong
// key, an unsupported model_type (with a did-you-mean) or a feature not supported (sliding
// windows, yarn scaling).
DecoderConfig read_decoder_config(const std::filesystem::path& folder);

const char* family_name(Family family);

// A policy's LanguageModel too: the pipeline trains one as the policy ([policy] checkpoint).
class DecoderImpl final : public LanguageModel {
 public:
  // Parameters are zeros of `where`'s device and dtype; on the meta device they take no memory
  // (shapes only).
  explicit DecoderImpl(DecoderConfig config, torch::TensorOptions where = {});
  ~DecoderImpl() override;
  const DecoderConfig& config() const { return config_; }
  c10::ScalarType dtype() const;

  // LanguageModel. A classifier's "vocabulary" is its labels.
  std::int64_t vocab_size() const override { return config_.classifier ? config_.num_labels : config_.vocab; }
  std::int64_t hidden_size() const override { return config_.width; }
  std::int64_t max_length() const override;  // GPT-2's n_positions; unbounded with RoPE
  c10::Device device() const override;
  std::string describe() const override;  // "gpt_neox (GPTNeoXForCausalLM), 2 layers, width 64"
  // Positions from the mask, counted over the cached tokens too.
  torch::Tensor hidden_states(const torch::Tensor& tokens, const torch::Tensor& attention_mask,
                              KeyValueCache* cache) override;
  std::shared_ptr<LanguageModel> copy() const override;

  // tokens [batch, time] at `positions` [batch, time]; attention_mask [batch, cached + time], 1 for
  // real tokens, 0 for padding (undefined: all real). With a cache, attends to its keys and values
  // and appends this call's. Returns the final hidden states [batch, time, width].
  torch::Tensor hidden(const torch::Tensor& tokens, const torch::Tensor& positions, const torch::Tensor& attention_mask,
                       KeyValueCache* cache);
  // Hidden states -> next-token logits [.., vocab] in the model's dtype (a classifier's scores
  // [.., num_labels]).
  torch::Tensor logits(const torch::Tensor& hidden) override;
  // Logits of whole sequences, positions taken from the mask.
  torch::Tensor forward(const torch::Tensor& tokens, const torch::Tensor& attention_mask = {});

 private:
  struct Layer;
  torch::Tensor& add(const std::string& name, std::vector<std::int64_t> shape);
  torch::Tensor output_head(const torch::Tensor& embedding, const std::string& name);
  torch::Tensor attention(const Layer& layer, std::size_t index, const torch::Tensor& x, const torch::Tensor& cos,
                          const torch::Tensor& sin, const torch::Tensor& allowed, KeyValueCache* cache);
  torch::Tensor mlp(const Layer& layer, const torch::Tensor& x);
  torch::Tensor norm(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias);
  std::pair<torch::Tensor, torch::Tensor> rotary(const torch::Tensor& positions);

  DecoderConfig config_;
  torch::TensorOptions where_;
  std::function<torch::Tensor(const torch::Tensor&)> activation_;  // config_.activation's
  std::vector<Layer> layers_;
  torch::Tensor token_embedding_, position_embedding_, final_norm_weight_, final_norm_bias_, head_;
};
TORCH_MODULE(Decoder);

// Positions of left-padded sequences: the count of real tokens before each one (0 for padding).
torch::Tensor positions_from_mask(const torch::Tensor& attention_mask);

struct LoadOptions {
  c10::ScalarType dtype = c10::kFloat;  // the parameters' dtype (and the computation's)
  c10::Device device = c10::kCPU;
};

// The model of a checkpoint folder: config.json and its safetensors weights. Throws ConfigError
// naming the file and tensor for a missing weight or one of the wrong shape.
Decoder load_decoder(const std::filesystem::path& folder, const LoadOptions& options = {});

// Checks a checkpoint folder without loading its weights: config.json, the safetensors headers, and
// every weight the model needs present with the right shape and none it lacks. Returns the model's
// parameter count (a tied head once; buffers some checkpoints carry not at all). Throws ConfigError.
std::int64_t check_checkpoint(const std::filesystem::path& folder);

// Greedy continuation of each prompt (token lists of any lengths, batched with left padding and
// the key/value cache): up to `max_new_tokens` tokens each, ending after the first EOS.
std::vector<std::vector<std::int64_t>> greedy_generate(Decoder& model, const std::vector<std::vector<std::int64_t>>& prompts,
                                                       std::int64_t max_new_tokens);

// A classifier's scores of each token list ([num_labels] each), read at its last token as
// transformers reads them at the last token that is not padding (batched, left-padded).
std::vector<std::vector<double>> sequence_scores(Decoder& model, const std::vector<std::vector<std::int64_t>>& sequences);

// Per-token log-probabilities of each token list given its prefix (batched, left-padded): entry
// i of a list is log p(token i | tokens before it), for i >= 1.
std::vector<std::vector<double>> token_log_probs(Decoder& model, const std::vector<std::vector<std::int64_t>>& sequences);

}  // namespace prefopt::models
