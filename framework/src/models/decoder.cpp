#include "models/decoder.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <cmath>
#include <fstream>
#include <functional>
#include <limits>
#include <numbers>
#include <set>

#include "models/weights.h"
#include "prefopt/error.h"
#include "text.h"

namespace prefopt::models {

namespace fs = std::filesystem;
using nlohmann::json;

// ---------------------------------------------------------------------------------------------
// config.json

namespace {

// Typed access to config.json's keys; every error names the file and the key.
class ConfigReader {
 public:
  ConfigReader(fs::path file, json root) : file_(std::move(file)), root_(std::move(root)) {}

  bool has(const std::string& key) const { return root_.contains(key) && !root_[key].is_null(); }
  const json& raw(const std::string& key) const { return root_[key]; }

  std::int64_t integer(const std::string& key, std::optional<std::int64_t> fallback = std::nullopt) const {
    if (!has(key)) return require(key, fallback);
    if (!root_[key].is_number_integer() || root_[key].get<std::int64_t>() <= 0) throw wrong(key, "a positive integer");
    return root_[key].get<std::int64_t>();
  }
  double number(const std::string& key, std::optional<double> fallback = std::nullopt) const {
    if (!has(key)) return require(key, fallback);
    if (!root_[key].is_number()) throw wrong(key, "a number");
    return root_[key].get<double>();
  }
  bool boolean(const std::string& key, bool fallback) const {
    if (!has(key)) return fallback;
    if (!root_[key].is_boolean()) throw wrong(key, "true or false");
    return root_[key].get<bool>();
  }
  std::string text(const std::string& key, std::optional<std::string> fallback = std::nullopt) const {
    if (!has(key)) return require(key, fallback);
    if (!root_[key].is_string()) throw wrong(key, "a string");
    return root_[key].get<std::string>();
  }
  std::vector<std::int64_t> token_ids(const std::string& key) const {
    if (!has(key)) return {};
    const json& value = root_[key];
    if (value.is_number_integer()) return {value.get<std::int64_t>()};
    std::vector<std::int64_t> ids;
    if (value.is_array())
      for (const json& id : value)
        if (id.is_number_integer()) ids.push_back(id.get<std::int64_t>());
        else throw wrong(key, "a token id or a list of them");
    else throw wrong(key, "a token id or a list of them");
    return ids;
  }
  ConfigError error(const std::string& key, const std::string& what) const {
    return ConfigError(fmt::format("{}: {}: {}", file_.string(), key, what));
  }

 private:
  template <typename T>
  T require(const std::string& key, const std::optional<T>& fallback) const {
    if (!fallback) throw ConfigError(fmt::format("{}: missing key '{}'", file_.string(), key));
    return *fallback;
  }
  ConfigError wrong(const std::string& key, const std::string& expected) const {
    return error(key, fmt::format("{} is not {}", root_[key].dump(), expected));
  }
  fs::path file_;
  json root_;
};

const std::map<std::string, Family> kModelTypes = {
    {"gpt2", Family::gpt2},       {"gpt_neox", Family::gpt_neox}, {"llama", Family::llama},
    {"mistral", Family::llama},   {"qwen2", Family::llama}};

// transformers' activation names (its ACT2FN) that prefopt computes, each in fp32 and rounded once:
// what libtorch 2.x's reduced-precision kernels (and so transformers) do, and what libtorch 1.13's
// CPU kernels do not (measured: its bfloat16 log-probs were 1.5x further from fp32 than
// transformers'). LayerNorm likewise (DecoderImpl::norm).
using Activation = std::function<torch::Tensor(const torch::Tensor&)>;

torch::Tensor in_fp32(const torch::Tensor& x, const Activation& f) {
  return x.scalar_type() == torch::kFloat ? f(x) : f(x.to(torch::kFloat)).to(x.scalar_type());
}

const std::map<std::string, Activation>& activations() {
  static const std::map<std::string, Activation> table = [] {
    const Activation gelu = [](const torch::Tensor& x) { return torch::gelu(x); };
    const Activation gelu_tanh = [](const torch::Tensor& x) { return torch::gelu(x, "tanh"); };
    const Activation silu = [](const torch::Tensor& x) { return torch::silu(x); };
    return std::map<std::string, Activation>{
        {"gelu", gelu},
        {"gelu_python", gelu},
        {"gelu_new", gelu_tanh},
        {"gelu_fast", gelu_tanh},
        {"gelu_pytorch_tanh", gelu_tanh},
        {"gelu_python_tanh", gelu_tanh},
        {"quick_gelu", [](const torch::Tensor& x) { return x * torch::sigmoid(1.702 * x); }},
        {"relu", [](const torch::Tensor& x) { return torch::relu(x); }},
        {"silu", silu},
        {"swish", silu},
        {"tanh", [](const torch::Tensor& x) { return torch::tanh(x); }},
        {"sigmoid", [](const torch::Tensor& x) { return torch::sigmoid(x); }},
        {"linear", [](const torch::Tensor& x) { return x; }}};
  }();
  return table;
}

Rope read_rope(const ConfigReader& config, Family family, std::int64_t max_positions) {
  // transformers 5 writes rope_parameters; older checkpoints rope_scaling (and rope_theta, or
  // GPT-NeoX's rotary_emb_base and rotary_pct, beside it).
  const std::string key = config.has("rope_parameters") ? "rope_parameters" : "rope_scaling";
  json parameters = config.has(key) ? config.raw(key) : json::object();
  if (!parameters.is_object()) throw config.error(key, "is not an object");
  if (parameters.contains("full_attention") || parameters.contains("sliding_attention"))
    throw config.error(key, "per-layer RoPE parameters are not supported");
  auto number = [&](const char* name, std::optional<double> fallback) -> std::optional<double> {
    if (parameters.contains(name) && !parameters[name].is_null()) {
      if (!parameters[name].is_number()) throw config.error(fmt::format("{}.{}", key, name), "is not a number");
      return parameters[name].get<double>();
    }
    return fallback;
  };
  Rope rope;
  for (const char* name : {"type", "rope_type"})  // rope_type wins where both are given
    if (parameters.contains(name)) {
      if (!parameters[name].is_string()) throw config.error(fmt::format("{}.{}", key, name), "is not a string");
      rope.type = parameters[name].get<std::string>();
    }
  const bool neox = family == Family::gpt_neox;
  const double theta = config.number("rope_theta", neox ? config.number("rotary_emb_base", 10000.0) : 10000.0);
  rope.theta = *number("rope_theta", theta);
  const double partial = config.number("partial_rotary_factor", neox ? config.number("rotary_pct", 0.25) : 1.0);
  rope.partial = *number("partial_rotary_factor", partial);
  if (rope.partial <= 0 || rope.partial > 1) throw config.error(key, "partial_rotary_factor must be in (0, 1]");
  static const std::vector<std::string> kTypes = {"default", "linear", "dynamic", "llama3"};
  if (std::find(kTypes.begin(), kTypes.end(), rope.type) == kTypes.end())
    throw config.error(key + ".rope_type", fmt::format("'{}' is not supported (supported: {}){}", rope.type,
                                                       join(kTypes, ", "), did_you_mean(rope.type, kTypes)));
  if (rope.type != "default") {
    const auto factor = number("factor", std::nullopt);
    if (!factor || *factor <= 0) throw config.error(key + ".factor", "needs a positive scaling factor");
    rope.factor = *factor;
  }
  rope.low_freq_factor = *number("low_freq_factor", 1.0);
  rope.high_freq_factor = *number("high_freq_factor", 4.0);
  if (rope.type == "llama3" && rope.high_freq_factor <= rope.low_freq_factor)
    throw config.error(key, "llama3 scaling needs high_freq_factor > low_freq_factor");
  rope.original_max_positions = static_cast<std::int64_t>(*number(
      "original_max_position_embeddings",
      static_cast<double>(config.integer("original_max_position_embeddings", max_positions))));
  return rope;
}

}  // namespace

const char* family_name(Family family) {
  switch (family) {
    case Family::gpt2: return "gpt2";
    case Family::gpt_neox: return "gpt_neox";
    case Family::llama: return "llama";
  }
  return "?";
}

DecoderConfig read_decoder_config(const fs::path& folder) {
  const fs::path file = folder / "config.json";
  if (!fs::is_regular_file(file))
    throw ConfigError(fmt::format("{}: no config.json (not a Hugging Face checkpoint folder?)", folder.string()));
  std::ifstream in(file);
  json root = json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (!root.is_object()) throw ConfigError(fmt::format("{}: not a JSON object", file.string()));
  const ConfigReader config(file, std::move(root));

  DecoderConfig c;
  c.model_type = config.text("model_type");
  std::vector<std::string> supported;
  for (const auto& [name, family] : kModelTypes) supported.push_back(name);
  const auto family = kModelTypes.find(c.model_type);
  if (family == kModelTypes.end())
    throw config.error("model_type", fmt::format("'{}' is not supported (supported: {}){}", c.model_type,
                                                 join(supported, ", "), did_you_mean(c.model_type, supported)));
  c.family = family->second;
  if (config.has("architectures") && config.raw("architectures").is_array() && !config.raw("architectures").empty() &&
      config.raw("architectures")[0].is_string())
    c.architecture = config.raw("architectures")[0].get<std::string>();
  c.vocab = config.integer("vocab_size");
  c.stored_dtype = config.text("dtype", config.text("torch_dtype", std::string()));
  const auto bos = config.token_ids("bos_token_id"), pad = config.token_ids("pad_token_id");
  if (!bos.empty()) c.bos = bos[0];
  if (!pad.empty()) c.pad = pad[0];
  c.eos = config.token_ids("eos_token_id");
  c.classifier = c.architecture.ends_with("ForSequenceClassification");
  if (c.classifier) {
    const std::int64_t labels = config.has("id2label") && config.raw("id2label").is_object()
                                    ? static_cast<std::int64_t>(config.raw("id2label").size())
                                    : 2;  // transformers' default
    c.num_labels = config.integer("num_labels", labels);
  }

  switch (c.family) {
    case Family::gpt2:
      c.width = config.integer("n_embd");
      c.depth = config.integer("n_layer");
      c.heads = config.integer("n_head");
      c.kv_heads = c.heads;
      c.intermediate = config.integer("n_inner", 4 * c.width);
      c.max_positions = config.integer("n_positions");
      c.norm_eps = config.number("layer_norm_epsilon", 1e-5);
      c.activation = config.text("activation_function", std::string("gelu_new"));
      c.tied_embeddings = config.boolean("tie_word_embeddings", true);
      c.qkv_bias = c.output_bias = c.mlp_bias = true;
      if (!config.boolean("scale_attn_weights", true))
        throw config.error("scale_attn_weights", "false is not supported");
      c.scale_by_inverse_layer = config.boolean("scale_attn_by_inverse_layer_idx", false);
      if (config.boolean("add_cross_attention", false)) throw config.error("add_cross_attention", "is not supported");
      break;
    case Family::gpt_neox:
      c.width = config.integer("hidden_size");
      c.depth = config.integer("num_hidden_layers");
      c.heads = config.integer("num_attention_heads");
      c.kv_heads = c.heads;
      c.intermediate = config.integer("intermediate_size");
      c.max_positions = config.integer("max_position_embeddings");
      c.norm_eps = config.number("layer_norm_eps", 1e-5);
      c.activation = config.text("hidden_act", std::string("gelu"));
      c.tied_embeddings = config.boolean("tie_word_embeddings", false);
      c.qkv_bias = c.output_bias = config.boolean("attention_bias", true);
      c.mlp_bias = true;
      c.parallel_residual = config.boolean("use_parallel_residual", true);
      break;
    case Family::llama:
      c.width = config.integer("hidden_size");
      c.depth = config.integer("num_hidden_layers");
      c.heads = config.integer("num_attention_heads");
      c.kv_heads = config.integer("num_key_value_heads", c.heads);
      c.intermediate = config.integer("intermediate_size");
      c.max_positions = config.integer("max_position_embeddings");
      c.norm_eps = config.number("rms_norm_eps", 1e-6);
      c.activation = config.text("hidden_act", std::string("silu"));
      c.tied_embeddings = config.boolean("tie_word_embeddings", false);
      if (c.model_type == "qwen2") {  // Qwen2: biases on q, k and v only
        c.qkv_bias = true;
        if (config.boolean("use_sliding_window", false))
          throw config.error("use_sliding_window", "sliding-window attention is not supported");
      } else if (c.model_type == "llama") {
        c.qkv_bias = c.output_bias = config.boolean("attention_bias", false);
        c.mlp_bias = config.boolean("mlp_bias", false);
      } else if (config.has("sliding_window")) {  // Mistral: every layer attends to the last `window` positions
        c.sliding_window = config.integer("sliding_window");
      }
      if (c.heads % c.kv_heads != 0)
        throw config.error("num_key_value_heads", fmt::format("{} does not divide num_attention_heads ({})", c.kv_heads,
                                                              c.heads));
      break;
  }
  c.head_width = c.family == Family::llama ? config.integer("head_dim", c.width / c.heads) : c.width / c.heads;
  if (c.family != Family::llama && c.width % c.heads != 0)
    throw ConfigError(fmt::format("{}: the width {} is not a multiple of the {} heads", file.string(), c.width, c.heads));
  if (c.family != Family::gpt2) {
    c.rope = read_rope(config, c.family, c.max_positions);
    if (static_cast<std::int64_t>(c.head_width * c.rope.partial) < 2)
      throw ConfigError(fmt::format("{}: RoPE rotates fewer than 2 of a head's {} dimensions", file.string(), c.head_width));
  }
  if (!activations().contains(c.activation)) {
    std::vector<std::string> known;
    for (const auto& [name, f] : activations()) known.push_back(name);
    throw ConfigError(fmt::format("{}: activation '{}' is not supported (supported: {}){}", file.string(), c.activation,
                                  join(known, ", "), did_you_mean(c.activation, known)));
  }
  return c;
}

// ---------------------------------------------------------------------------------------------
// The network

namespace {

torch::Tensor rotate_half(const torch::Tensor& x) {
  const std::int64_t half = x.size(-1) / 2;
  return torch::cat({-x.narrow(-1, half, half), x.narrow(-1, 0, half)}, -1);
}

// RoPE on the first cos.size(-1) dimensions of each head; x: [batch, heads, time, head_width],
// cos and sin: [batch, 1, time, rotated].
torch::Tensor apply_rope(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin) {
  const std::int64_t rotated = cos.size(-1);
  const torch::Tensor part = x.narrow(-1, 0, rotated);
  const torch::Tensor turned = part * cos + rotate_half(part) * sin;
  return rotated == x.size(-1) ? turned : torch::cat({turned, x.narrow(-1, rotated, x.size(-1) - rotated)}, -1);
}

}  // namespace

// One block's parameters, by role (undefined where the family has none). GPT-2 stores its
// projections as [in, out] (its Conv1D); the others as [out, in] (Linear).
struct DecoderImpl::Layer {
  torch::Tensor norm1_weight, norm1_bias, norm2_weight, norm2_bias;
  torch::Tensor qkv_weight, qkv_bias;  // GPT-2, GPT-NeoX: fused
  torch::Tensor q_weight, q_bias, k_weight, k_bias, v_weight, v_bias;
  torch::Tensor out_weight, out_bias;
  torch::Tensor gate_weight, gate_bias, up_weight, up_bias, down_weight, down_bias;
};

torch::Tensor& DecoderImpl::add(const std::string& name, std::vector<std::int64_t> shape) {
  // Dotted names become nested modules, so named_parameters() gives the checkpoint's names.
  torch::nn::Module* module = this;
  std::size_t start = 0;
  for (std::size_t dot = name.find('.'); dot != std::string::npos; start = dot + 1, dot = name.find('.', start)) {
    const std::string part = name.substr(start, dot - start);
    const auto children = module->named_children();
    const auto* child = children.find(part);
    module = child != nullptr ? child->get()
                              : module->register_module(part, std::make_shared<torch::nn::Module>()).get();
  }
  return module->register_parameter(name.substr(start), torch::zeros(shape, where_));
}

DecoderImpl::DecoderImpl(DecoderConfig config, torch::TensorOptions where)
    : config_(std::move(config)), where_(where), activation_(activations().at(config_.activation)) {
  const DecoderConfig& c = config_;
  const std::int64_t W = c.width, I = c.intermediate, q_width = c.heads * c.head_width,
                     kv_width = c.kv_heads * c.head_width;
  layers_.resize(c.depth);
  switch (c.family) {
    case Family::gpt2:
      token_embedding_ = add("transformer.wte.weight", {c.vocab, W});
      position_embedding_ = add("transformer.wpe.weight", {c.max_positions, W});
      for (std::int64_t i = 0; i < c.depth; ++i) {
        Layer& l = layers_[i];
        const std::string p = fmt::format("transformer.h.{}.", i);
        l.norm1_weight = add(p + "ln_1.weight", {W});
        l.norm1_bias = add(p + "ln_1.bias", {W});
        l.qkv_weight = add(p + "attn.c_attn.weight", {W, 3 * W});
        l.qkv_bias = add(p + "attn.c_attn.bias", {3 * W});
        l.out_weight = add(p + "attn.c_proj.weight", {W, W});
        l.out_bias = add(p + "attn.c_proj.bias", {W});
        l.norm2_weight = add(p + "ln_2.weight", {W});
        l.norm2_bias = add(p + "ln_2.bias", {W});
        l.up_weight = add(p + "mlp.c_fc.weight", {W, I});
        l.up_bias = add(p + "mlp.c_fc.bias", {I});
        l.down_weight = add(p + "mlp.c_proj.weight", {I, W});
        l.down_bias = add(p + "mlp.c_proj.bias", {W});
      }
      final_norm_weight_ = add("transformer.ln_f.weight", {W});
      final_norm_bias_ = add("transformer.ln_f.bias", {W});
      head_ = output_head(token_embedding_, "lm_head.weight");
      break;
    case Family::gpt_neox:
      token_embedding_ = add("gpt_neox.embed_in.weight", {c.vocab, W});
      for (std::int64_t i = 0; i < c.depth; ++i) {
        Layer& l = layers_[i];
        const std::string p = fmt::format("gpt_neox.layers.{}.", i);
        l.norm1_weight = add(p + "input_layernorm.weight", {W});
        l.norm1_bias = add(p + "input_layernorm.bias", {W});
        l.norm2_weight = add(p + "post_attention_layernorm.weight", {W});
        l.norm2_bias = add(p + "post_attention_layernorm.bias", {W});
        l.qkv_weight = add(p + "attention.query_key_value.weight", {3 * W, W});
        if (c.qkv_bias) l.qkv_bias = add(p + "attention.query_key_value.bias", {3 * W});
        l.out_weight = add(p + "attention.dense.weight", {W, W});
        if (c.output_bias) l.out_bias = add(p + "attention.dense.bias", {W});
        l.up_weight = add(p + "mlp.dense_h_to_4h.weight", {I, W});
        l.up_bias = add(p + "mlp.dense_h_to_4h.bias", {I});
        l.down_weight = add(p + "mlp.dense_4h_to_h.weight", {W, I});
        l.down_bias = add(p + "mlp.dense_4h_to_h.bias", {W});
      }
      final_norm_weight_ = add("gpt_neox.final_layer_norm.weight", {W});
      final_norm_bias_ = add("gpt_neox.final_layer_norm.bias", {W});
      head_ = output_head(token_embedding_, "embed_out.weight");
      break;
    case Family::llama:
      token_embedding_ = add("model.embed_tokens.weight", {c.vocab, W});
      for (std::int64_t i = 0; i < c.depth; ++i) {
        Layer& l = layers_[i];
        const std::string p = fmt::format("model.layers.{}.", i);
        l.norm1_weight = add(p + "input_layernorm.weight", {W});
        l.norm2_weight = add(p + "post_attention_layernorm.weight", {W});
        l.q_weight = add(p + "self_attn.q_proj.weight", {q_width, W});
        l.k_weight = add(p + "self_attn.k_proj.weight", {kv_width, W});
        l.v_weight = add(p + "self_attn.v_proj.weight", {kv_width, W});
        if (c.qkv_bias) {
          l.q_bias = add(p + "self_attn.q_proj.bias", {q_width});
          l.k_bias = add(p + "self_attn.k_proj.bias", {kv_width});
          l.v_bias = add(p + "self_attn.v_proj.bias", {kv_width});
        }
        l.out_weight = add(p + "self_attn.o_proj.weight", {W, q_width});
        if (c.output_bias) l.out_bias = add(p + "self_attn.o_proj.bias", {W});
        l.gate_weight = add(p + "mlp.gate_proj.weight", {I, W});
        l.up_weight = add(p + "mlp.up_proj.weight", {I, W});
        l.down_weight = add(p + "mlp.down_proj.weight", {W, I});
        if (c.mlp_bias) {
          l.gate_bias = add(p + "mlp.gate_proj.bias", {I});
          l.up_bias = add(p + "mlp.up_proj.bias", {I});
          l.down_bias = add(p + "mlp.down_proj.bias", {W});
        }
      }
      final_norm_weight_ = add("model.norm.weight", {W});
      head_ = output_head(token_embedding_, "lm_head.weight");
      break;
  }
}

torch::Tensor DecoderImpl::output_head(const torch::Tensor& embedding, const std::string& name) {
  if (config_.classifier) return add("score.weight", {config_.num_labels, config_.width});
  return config_.tied_embeddings ? embedding : add(name, {config_.vocab, config_.width});
}

DecoderImpl::~DecoderImpl() = default;

c10::Device DecoderImpl::device() const { return token_embedding_.device(); }
c10::ScalarType DecoderImpl::dtype() const { return token_embedding_.scalar_type(); }

std::int64_t DecoderImpl::max_length() const {
  return config_.family == Family::gpt2 ? config_.max_positions : std::numeric_limits<std::int64_t>::max();
}

std::string DecoderImpl::describe() const {
  return fmt::format("{} ({}), {} layers, width {}", config_.model_type, config_.architecture, config_.depth,
                     config_.width);
}

std::shared_ptr<LanguageModel> DecoderImpl::copy() const {
  auto copy = std::make_shared<DecoderImpl>(config_, torch::TensorOptions().dtype(dtype()).device(device()));
  torch::NoGradGuard no_grad;
  const auto from = named_parameters();
  for (auto& parameter : copy->named_parameters()) parameter.value().copy_(from[parameter.key()]);
  return copy;
}

torch::Tensor DecoderImpl::norm(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias) {
  if (config_.family != Family::llama)
    return in_fp32(x, [&](const torch::Tensor& y) {
      return torch::layer_norm(y, {config_.width}, weight.to(torch::kFloat), bias.to(torch::kFloat), config_.norm_eps);
    });
  // RMSNorm in fp32, scaled in the model's dtype, as transformers does.
  const torch::Tensor x32 = x.to(torch::kFloat);
  return weight * (x32 * torch::rsqrt(x32.pow(2).mean(-1, /*keepdim=*/true) + config_.norm_eps)).to(x.scalar_type());
}

std::pair<torch::Tensor, torch::Tensor> DecoderImpl::rotary(const torch::Tensor& positions) {
  const Rope& rope = config_.rope;
  const std::int64_t dims = static_cast<std::int64_t>(config_.head_width * rope.partial);
  const auto float_options = torch::TensorOptions().dtype(torch::kFloat).device(positions.device());
  double base = rope.theta;
  if (rope.type == "dynamic") {  // NTK-aware: the base grows once sequences pass the trained length
    const double length = std::max<double>(positions.max().item<std::int64_t>() + 1, config_.max_positions);
    base *= std::pow(rope.factor * length / config_.max_positions - (rope.factor - 1),
                     static_cast<double>(dims) / (dims - 2));
  }
  torch::Tensor inverse = 1.0 / torch::pow(base, torch::arange(0, dims, 2, float_options) / dims);
  if (rope.type == "linear") inverse = inverse / rope.factor;
  if (rope.type == "llama3") {  // long wavelengths slowed by `factor`, short kept, a smooth blend between
    const double low_wavelength = rope.original_max_positions / rope.low_freq_factor;
    const double high_wavelength = rope.original_max_positions / rope.high_freq_factor;
    const torch::Tensor wavelength = 2 * std::numbers::pi / inverse;
    torch::Tensor scaled = torch::where(wavelength > low_wavelength, inverse / rope.factor, inverse);
    const torch::Tensor smooth =
        (rope.original_max_positions / wavelength - rope.low_freq_factor) / (rope.high_freq_factor - rope.low_freq_factor);
    const torch::Tensor blended = (1 - smooth) * scaled / rope.factor + smooth * scaled;
    const torch::Tensor medium = wavelength.ge(high_wavelength).logical_and(wavelength.le(low_wavelength));
    inverse = torch::where(medium, blended, scaled);
  }
  const torch::Tensor angles = positions.to(torch::kFloat).unsqueeze(-1) * inverse;  // [batch, time, dims / 2]
  const torch::Tensor both = torch::cat({angles, angles}, -1).unsqueeze(1);          // [batch, 1, time, dims]
  return {both.cos().to(dtype()), both.sin().to(dtype())};
}

torch::Tensor DecoderImpl::attention(const Layer& l, std::size_t index, const torch::Tensor& x, const torch::Tensor& cos,
                                     const torch::Tensor& sin, const torch::Tensor& allowed, KeyValueCache* cache) {
  const DecoderConfig& c = config_;
  const std::int64_t batch = x.size(0), time = x.size(1), d = c.head_width;
  auto heads_first = [&](const torch::Tensor& t, std::int64_t heads) {
    return t.reshape({batch, time, heads, d}).transpose(1, 2);
  };
  torch::Tensor q, k, v;
  if (c.family == Family::gpt2) {
    const auto parts = torch::addmm(l.qkv_bias, x.reshape({-1, c.width}), l.qkv_weight).split(c.width, -1);
    q = heads_first(parts[0], c.heads), k = heads_first(parts[1], c.heads), v = heads_first(parts[2], c.heads);
  } else if (c.family == Family::gpt_neox) {  // per head: [q | k | v]
    const auto parts = torch::linear(x, l.qkv_weight, l.qkv_bias).reshape({batch, time, c.heads, 3 * d}).chunk(3, -1);
    q = parts[0].transpose(1, 2), k = parts[1].transpose(1, 2), v = parts[2].transpose(1, 2);
  } else {
    q = heads_first(torch::linear(x, l.q_weight, l.q_bias), c.heads);
    k = heads_first(torch::linear(x, l.k_weight, l.k_bias), c.kv_heads);
    v = heads_first(torch::linear(x, l.v_weight, l.v_bias), c.kv_heads);
  }
  if (cos.defined()) q = apply_rope(q, cos, sin), k = apply_rope(k, cos, sin);
  if (cache != nullptr) {
    if (cache->keys[index].defined()) {
      k = torch::cat({cache->keys[index], k}, 2);
      v = torch::cat({cache->values[index], v}, 2);
    }
    cache->keys[index] = k;
    cache->values[index] = v;
  }
  if (c.kv_heads < c.heads) {  // grouped-query attention: query head h reads key/value head h / group
    k = k.repeat_interleave(c.heads / c.kv_heads, 1);
    v = v.repeat_interleave(c.heads / c.kv_heads, 1);
  }
  double scale = 1.0 / std::sqrt(static_cast<double>(d));
  if (c.scale_by_inverse_layer) scale /= static_cast<double>(index + 1);
  // Scores and softmax in fp32; a finite fill keeps rows with no visible key (padding) finite.
  const torch::Tensor scores = (q.matmul(k.transpose(-2, -1)).to(torch::kFloat) * scale)
                                   .masked_fill(allowed.logical_not(), std::numeric_limits<float>::lowest());
  const torch::Tensor attended =
      scores.softmax(-1).to(v.scalar_type()).matmul(v).transpose(1, 2).reshape({batch, time, c.heads * d});
  if (c.family == Family::gpt2)
    return torch::addmm(l.out_bias, attended.reshape({-1, c.heads * d}), l.out_weight).reshape({batch, time, c.width});
  return torch::linear(attended, l.out_weight, l.out_bias);
}

torch::Tensor DecoderImpl::mlp(const Layer& l, const torch::Tensor& x) {
  const DecoderConfig& c = config_;
  if (c.family == Family::gpt2) {
    const torch::Tensor inner = in_fp32(torch::addmm(l.up_bias, x.reshape({-1, c.width}), l.up_weight), activation_);
    return torch::addmm(l.down_bias, inner, l.down_weight).reshape(x.sizes());
  }
  if (c.family == Family::gpt_neox)
    return torch::linear(in_fp32(torch::linear(x, l.up_weight, l.up_bias), activation_), l.down_weight, l.down_bias);
  const torch::Tensor gated =
      in_fp32(torch::linear(x, l.gate_weight, l.gate_bias), activation_) * torch::linear(x, l.up_weight, l.up_bias);
  return torch::linear(gated, l.down_weight, l.down_bias);
}

torch::Tensor DecoderImpl::hidden(const torch::Tensor& tokens_anywhere, const torch::Tensor& positions_anywhere,
                                  const torch::Tensor& mask_anywhere, KeyValueCache* cache) {
  const DecoderConfig& c = config_;
  const torch::Tensor tokens = tokens_anywhere.to(device()), positions = positions_anywhere.to(device());
  const std::int64_t batch = tokens.size(0), time = tokens.size(1);
  if (cache != nullptr && cache->keys.empty()) cache->keys.resize(c.depth), cache->values.resize(c.depth);
  const std::int64_t past = cache != nullptr && cache->keys[0].defined() ? cache->keys[0].size(2) : 0;

  // allowed[b, 0, i, j]: query i (position past + i) may attend to key j.
  const auto bool_options = torch::TensorOptions().dtype(torch::kBool).device(device());
  torch::Tensor allowed = torch::ones({time, past + time}, bool_options).tril(past);
  if (c.sliding_window) allowed = allowed.triu(past - *c.sliding_window + 1);
  allowed = allowed.view({1, 1, time, past + time});
  if (mask_anywhere.defined()) {
    const torch::Tensor mask = mask_anywhere.to(device());
    if (mask.size(0) != batch || mask.size(1) != past + time)
      throw std::invalid_argument(fmt::format("the attention mask is {} for {} tokens after {} cached", mask.sizes(),
                                              tokens.sizes(), past));
    allowed = allowed.logical_and(mask.to(torch::kBool).view({batch, 1, 1, past + time}));
  }

  torch::Tensor x = torch::embedding(token_embedding_, tokens);
  if (c.family == Family::gpt2) x = x + torch::embedding(position_embedding_, positions);
  torch::Tensor cos, sin;
  if (c.family != Family::gpt2) std::tie(cos, sin) = rotary(positions);
  for (std::size_t i = 0; i < layers_.size(); ++i) {
    const Layer& l = layers_[i];
    const torch::Tensor attended = attention(l, i, norm(x, l.norm1_weight, l.norm1_bias), cos, sin, allowed, cache);
    if (c.parallel_residual) {
      x = x + attended + mlp(l, norm(x, l.norm2_weight, l.norm2_bias));
    } else {
      x = x + attended;
      x = x + mlp(l, norm(x, l.norm2_weight, l.norm2_bias));
    }
  }
  return norm(x, final_norm_weight_, final_norm_bias_);
}

torch::Tensor DecoderImpl::logits(const torch::Tensor& hidden) { return torch::matmul(hidden, head_.t()); }

torch::Tensor DecoderImpl::forward(const torch::Tensor& tokens, const torch::Tensor& attention_mask) {
  const torch::Tensor mask = attention_mask.defined() ? attention_mask : torch::ones_like(tokens);
  return logits(hidden(tokens, positions_from_mask(mask), mask, nullptr));
}

torch::Tensor DecoderImpl::hidden_states(const torch::Tensor& tokens, const torch::Tensor& attention_mask,
                                         KeyValueCache* cache) {
  const std::int64_t past = cache != nullptr && !cache->keys.empty() && cache->keys[0].defined() ? cache->keys[0].size(2) : 0;
  const std::int64_t time = tokens.size(1);
  const torch::Tensor positions =
      attention_mask.defined()
          ? positions_from_mask(attention_mask).narrow(1, past, time)
          : torch::arange(past, past + time, tokens.options().device(device())).unsqueeze(0).expand({tokens.size(0), time});
  return hidden(tokens, positions, attention_mask, cache);
}

torch::Tensor positions_from_mask(const torch::Tensor& attention_mask) {
  return (attention_mask.to(torch::kLong).cumsum(-1) - 1).clamp_min(0);
}

// ---------------------------------------------------------------------------------------------
// Loading and use

namespace {

// The checkpoint's name of each of the model's parameters.
std::map<std::string, std::string> match_weights(DecoderImpl& model, const Weights& weights,
                                                const fs::path& folder) {
  const DecoderConfig& c = model.config();
  std::map<std::string, std::string> names;
  for (const auto& parameter : model.named_parameters()) {
    std::string name = parameter.key();
    // GPT-2's original checkpoints name weights without the "transformer." prefix.
    if (!weights.contains(name) && name.starts_with("transformer.") && weights.contains(name.substr(12)))
      name = name.substr(12);
    if (!weights.contains(name))
      throw ConfigError(fmt::format("{}: weight '{}' is missing ({} {} needs it)", folder.string(), parameter.key(),
                                    c.model_type, c.architecture));
    const TensorEntry& entry = weights.entry(name);
    if (entry.shape != parameter.value().sizes().vec())
      throw ConfigError(fmt::format("{}: weight '{}' has shape {} but config.json implies {}",
                                    weights.file_of(name).path().string(), name, entry.shape,
                                    parameter.value().sizes().vec()));
    scalar_type(entry.dtype);  // one libtorch can hold
    names[parameter.key()] = name;
  }
  // Tensors the model does not read, other than buffers older transformers saved and a tied head
  // saved anyway, mean the folder holds another architecture (a classification head, say).
  std::set<std::string> used;
  for (const auto& [parameter, name] : names) used.insert(name);
  std::vector<std::string> unused;
  for (const std::string& name : weights.names())
    if (!used.contains(name) && !name.ends_with(".attn.bias") && !name.ends_with(".attn.masked_bias") &&
        !name.ends_with("rotary_emb.inv_freq") &&
        !(c.tied_embeddings && !c.classifier && (name == "lm_head.weight" || name == "embed_out.weight")))
      unused.push_back(name);
  if (!unused.empty()) {
    if (unused.size() > 5) unused.resize(5), unused.push_back("...");
    throw ConfigError(fmt::format("{}: weights that a {} {} does not have: {}", folder.string(), c.model_type,
                                  c.classifier ? "sequence classifier" : "causal language model", join(unused, ", ")));
  }
  return names;
}

}  // namespace

std::int64_t check_checkpoint(const fs::path& folder) {
  DecoderImpl shape_only(read_decoder_config(folder), torch::TensorOptions().device(c10::kMeta));
  match_weights(shape_only, Weights(folder), folder);
  std::int64_t parameters = 0;
  for (const torch::Tensor& parameter : shape_only.parameters()) parameters += parameter.numel();
  return parameters;
}

Decoder load_decoder(const fs::path& folder, const LoadOptions& options) {
  // Made where it will compute, in its dtype: the peak memory is the model's, once.
  Decoder model(read_decoder_config(folder), torch::TensorOptions().device(options.device).dtype(options.dtype));
  const Weights weights(folder);
  const auto names = match_weights(*model, weights, folder);
  torch::NoGradGuard no_grad;
  for (auto& parameter : model->named_parameters()) parameter.value().copy_(weights.load(names.at(parameter.key())));
  model->eval();
  return model;
}

namespace {

// Token lists as one left-padded batch: tokens and mask [batch, longest]. Padding is token 0, a
// valid id whatever the model's pad token; the mask hides it. The ids are checked here, on the
// host, rather than in every forward pass: `extra` positions will follow (generation), and a
// model with learned positions (GPT-2) has only so many.
std::pair<torch::Tensor, torch::Tensor> left_padded(const DecoderConfig& c, const std::vector<std::vector<std::int64_t>>& lists,
                                                    std::int64_t extra = 0) {
  std::size_t longest = 0;
  for (const auto& list : lists) {
    longest = std::max(longest, list.size());
    for (const std::int64_t id : list)
      if (id < 0 || id >= c.vocab) throw ConfigError(fmt::format("token id {} is outside the vocabulary [0, {})", id, c.vocab));
  }
  if (c.family == Family::gpt2 && static_cast<std::int64_t>(longest) + extra > c.max_positions)
    throw ConfigError(fmt::format("{} tokens{} exceed the model's n_positions of {}", longest,
                                  extra > 0 ? fmt::format(" and {} more to generate", extra) : "", c.max_positions));
  const auto batch = static_cast<std::int64_t>(lists.size()), width = static_cast<std::int64_t>(longest);
  torch::Tensor tokens = torch::zeros({batch, width}, torch::kLong), mask = torch::zeros({batch, width}, torch::kLong);
  for (std::int64_t b = 0; b < batch; ++b) {
    const auto& list = lists[b];
    const auto n = static_cast<std::int64_t>(list.size()), start = width - n;
    if (n == 0) throw ConfigError(fmt::format("sequence {} has no tokens", b + 1));
    tokens[b].narrow(0, start, n).copy_(torch::tensor(list, torch::kLong));
    mask[b].narrow(0, start, n).fill_(1);
  }
  return {tokens, mask};
}

}  // namespace

std::vector<std::vector<std::int64_t>> greedy_generate(Decoder& model, const std::vector<std::vector<std::int64_t>>& prompts,
                                                       std::int64_t max_new_tokens) {
  torch::NoGradGuard no_grad;
  const DecoderConfig& c = model->config();
  // The last generated token is not fed back: max_new_tokens - 1 positions follow the prompt.
  auto [tokens, mask] = left_padded(c, prompts, max_new_tokens - 1);
  const auto batch = static_cast<std::int64_t>(prompts.size());
  std::vector<std::vector<std::int64_t>> generated(batch);
  std::vector<bool> ended(batch, false);
  KeyValueCache cache;
  torch::Tensor positions = positions_from_mask(mask);
  torch::Tensor hidden = model->hidden(tokens, positions, mask, &cache);
  for (std::int64_t step = 0; step < max_new_tokens; ++step) {
    const torch::Tensor next = model->logits(hidden.select(1, hidden.size(1) - 1)).to(torch::kFloat).argmax(-1).cpu();
    bool all_ended = true;
    for (std::int64_t b = 0; b < batch; ++b) {
      if (ended[b]) continue;
      const std::int64_t token = next[b].item<std::int64_t>();
      generated[b].push_back(token);
      ended[b] = std::find(c.eos.begin(), c.eos.end(), token) != c.eos.end();
      all_ended = all_ended && ended[b];
    }
    if (all_ended || step + 1 == max_new_tokens) break;
    mask = torch::cat({mask, torch::ones({batch, 1}, mask.options())}, 1);
    positions = positions.select(1, positions.size(1) - 1).unsqueeze(1) + 1;
    hidden = model->hidden(next.unsqueeze(1), positions, mask, &cache);
  }
  return generated;
}

std::vector<std::vector<double>> sequence_scores(Decoder& model, const std::vector<std::vector<std::int64_t>>& sequences) {
  torch::NoGradGuard no_grad;
  const auto [tokens, mask] = left_padded(model->config(), sequences);
  const torch::Tensor hidden = model->hidden(tokens, positions_from_mask(mask), mask, nullptr);
  const torch::Tensor scores = model->logits(hidden.select(1, hidden.size(1) - 1)).to(torch::kDouble).cpu();
  std::vector<std::vector<double>> out;
  for (std::int64_t b = 0; b < scores.size(0); ++b)
    out.emplace_back(scores[b].data_ptr<double>(), scores[b].data_ptr<double>() + scores.size(1));
  return out;
}

std::vector<std::vector<double>> token_log_probs(Decoder& model, const std::vector<std::vector<std::int64_t>>& sequences) {
  torch::NoGradGuard no_grad;
  const auto [tokens, mask] = left_padded(model->config(), sequences);
  const torch::Tensor log_probs = model->forward(tokens, mask).to(torch::kFloat).log_softmax(-1);
  // log p(token t | before it) sits at position t - 1.
  const torch::Tensor picked =
      log_probs.narrow(1, 0, tokens.size(1) - 1).gather(2, tokens.narrow(1, 1, tokens.size(1) - 1).to(log_probs.device()).unsqueeze(2))
          .squeeze(2).to(torch::kDouble).cpu();
  const auto rows = picked.accessor<double, 2>();
  std::vector<std::vector<double>> out(sequences.size());
  const std::int64_t width = tokens.size(1);
  for (std::size_t b = 0; b < sequences.size(); ++b) {
    const auto n = static_cast<std::int64_t>(sequences[b].size());
    for (std::int64_t t = width - n + 1; t < width; ++t) out[b].push_back(rows[static_cast<std::int64_t>(b)][t - 1]);
  }
  return out;
}

}  // namespace prefopt::models
