#include "models/fixtures.h"

#include <torch/torch.h>

#include <fstream>
#include <functional>

#include "models/safetensors.h"

namespace prefopt::test {

namespace fs = std::filesystem;
using nlohmann::json;

void write_text(const fs::path& file, const std::string& text) { std::ofstream(file) << text; }

json llama_config(std::int64_t kv_heads) {
  return {{"model_type", "llama"},        {"architectures", {"LlamaForCausalLM"}},
          {"vocab_size", 50},             {"hidden_size", 32},
          {"intermediate_size", 48},      {"num_hidden_layers", 2},
          {"num_attention_heads", 4},     {"num_key_value_heads", kv_heads},
          {"max_position_embeddings", 64}, {"rms_norm_eps", 1e-6},
          {"eos_token_id", 3},            {"rope_parameters", {{"rope_type", "default"}, {"rope_theta", 10000.0}}}};
}

namespace {

// A checkpoint folder of `config` whose weights `fill` sets (by name), drawn after seeding torch.
models::Decoder save_checkpoint(const fs::path& folder, const json& config, std::uint64_t seed,
                                const std::function<void(const std::string&, at::Tensor&)>& fill) {
  fs::create_directories(folder);
  write_text(folder / "config.json", config.dump());
  models::Decoder model(models::read_decoder_config(folder));
  torch::manual_seed(seed);
  std::map<std::string, at::Tensor> tensors;
  torch::NoGradGuard no_grad;
  for (auto& parameter : model->named_parameters()) {
    fill(parameter.key(), parameter.value());
    tensors[parameter.key()] = parameter.value();
  }
  models::write_safetensors(folder / "model.safetensors", tensors);
  model->eval();
  return model;
}

}  // namespace

models::Decoder make_checkpoint(const fs::path& folder, const json& config, std::uint64_t seed, double scale) {
  return save_checkpoint(folder, config, seed, [&](const std::string&, at::Tensor& value) { value.normal_(0.0, scale); });
}

void make_initialized_checkpoint(const fs::path& folder, const json& config, std::uint64_t seed) {
  save_checkpoint(folder, config, seed, [](const std::string& name, at::Tensor& value) {
    if (value.dim() >= 2) value.normal_(0.0, 0.02);
    else if (name.ends_with("bias")) value.zero_();
    else value.fill_(1.0);  // a norm's weight
  });
}

}  // namespace prefopt::test
