// `prefopt export`: a run's trained policy and reward models as Hugging Face folders that
// transformers loads.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <nlohmann/json.hpp>

#include <fstream>

#include "commands.h"
#include "config/node.h"
#include "models/decoder.h"
#include "models/safetensors.h"
#include "pipeline/policy_source.h"
#include "prefopt/error.h"
#include "prefopt/serialize.h"
#include "run_files.h"

namespace prefopt::cli {
namespace {

namespace fs = std::filesystem;
namespace po = boost::program_options;
using nlohmann::json;

// The checkpoint's files an exported folder keeps beside config.json: how to tokenize (and, for
// the policy, generation_config.json: how to generate).
constexpr const char* kTokenizerFiles[] = {"tokenizer.json", "tokenizer.model", "tokenizer_config.json",
                                           "special_tokens_map.json", "vocab.json", "merges.txt", "added_tokens.json"};

void copy_tokenizer_files(const fs::path& checkpoint, const fs::path& folder) {
  for (const char* name : kTokenizerFiles)
    if (fs::exists(checkpoint / name)) fs::copy_file(checkpoint / name, folder / name);
}

// A reward model's exported folder, beside the policy's files: DIR/reward_model-K.
std::string reward_model_folder(std::int64_t member) { return "reward_model-" + std::to_string(member); }

// The token an exported reward model's batches are padded with, added when the checkpoint has
// none apart from EOS: transformers' *ForSequenceClassification reads each row's last token that
// is not the pad token, and prefopt's reward models read the response's last token, its EOS.
constexpr const char* kPadToken = "<|prefopt_pad|>";

// The checkpoint the run started from; ConfigError when the run cannot be exported.
fs::path source_checkpoint(const fs::path& run_dir) {
  if (!fs::exists(run_dir / run_files::kResolved))
    throw ConfigError(fmt::format("{}: not a run folder (it has no {})", run_dir.string(), run_files::kResolved));
  if (!run_files::finished(run_dir))
    throw ConfigError(fmt::format("{}: the run has not finished (no {}); continue it first (prefopt run ... --out {} "
                                  "--continue)",
                                  run_dir.string(), run_files::kSummary, run_dir.string()));
  const fs::path checkpoint = policy_checkpoint(config::load_toml_file((run_dir / run_files::kResolved).string()));
  if (checkpoint.empty())
    throw ConfigError(fmt::format("{}: the run trained the built-in transformer ([policy] checkpoint is empty), which "
                                  "has no Hugging Face architecture; runs from a checkpoint folder export (docs/models.md)",
                                  run_dir.string()));
  if (!fs::exists(checkpoint / "config.json"))
    throw ConfigError(fmt::format("{}: the checkpoint the run started from, {}, has no config.json any more; the "
                                  "export takes its configuration and tokenizer from there",
                                  run_dir.string(), checkpoint.string()));
  return checkpoint;
}

// The reward models the run kept, in member order: reward_model-0.safetensors, -1, ...
std::vector<fs::path> saved_reward_models(const fs::path& run_dir) {
  std::vector<fs::path> files;
  while (fs::exists(run_dir / run_files::reward_model_file(static_cast<std::int64_t>(files.size()))))
    files.push_back(run_dir / run_files::reward_model_file(static_cast<std::int64_t>(files.size())));
  return files;
}

// The saved weights must be `shape`'s tensors, name for name and shape for shape, and nothing else.
void check_weights_fit(const models::SafetensorsFile& weights, const std::map<std::string, std::vector<std::int64_t>>& shape,
                       const fs::path& checkpoint) {
  const std::string config_file = (checkpoint / "config.json").string();
  for (const auto& [name, sizes] : shape) {
    const auto entry = weights.entries().find(name);
    if (entry == weights.entries().end())
      throw ConfigError(fmt::format("{} has no tensor {}, which {} needs: the checkpoint folder changed since the run",
                                    weights.path().string(), name, config_file));
    if (entry->second.shape != sizes)
      throw ConfigError(fmt::format("{}: tensor {} has shape [{}], {} needs [{}]: the checkpoint folder changed since "
                                    "the run",
                                    weights.path().string(), name, fmt::join(entry->second.shape, ", "), config_file,
                                    fmt::join(sizes, ", ")));
  }
  if (weights.entries().size() != shape.size())
    throw ConfigError(fmt::format("{} holds {} tensors, {} needs {}: the checkpoint folder changed since the run",
                                  weights.path().string(), weights.entries().size(), config_file, shape.size()));
}

std::map<std::string, std::vector<std::int64_t>> parameter_shapes(const models::DecoderConfig& config) {
  const models::Decoder shape(config, torch::TensorOptions().device(torch::kMeta));
  std::map<std::string, std::vector<std::int64_t>> shapes;
  for (const auto& item : shape->named_parameters()) shapes.emplace(item.key(), item.value().sizes().vec());
  return shapes;
}

void write_json(const fs::path& file, const json& value) { write_file(file.string(), value.dump(2) + "\n"); }

json read_json(const fs::path& file) {
  std::ifstream in(file);
  return json::parse(in);
}

// config.json with the dtype the weights are stored in, so transformers loads them as they are.
json exported_config(const fs::path& checkpoint, const models::SafetensorsFile& weights) {
  json config = read_json(checkpoint / "config.json");
  const std::string stored = weights.entries().begin()->second.dtype;
  const std::string dtype = stored == "BF16" ? "bfloat16" : stored == "F16" ? "float16" : "float32";
  if (config.contains("dtype")) config["dtype"] = dtype;
  if (config.contains("torch_dtype") || !config.contains("dtype")) config["torch_dtype"] = dtype;
  return config;
}

// The id the tokenizers library gives a token added to `tokenizer`: it keeps no stored id of its
// own choosing, but takes the next one after its model's vocabulary and its added tokens. That
// may be below config.json's vocab_size (Pythia's 50304 rows hold 50277 tokens): an unused row.
std::int64_t next_token_id(const json& tokenizer) {
  std::int64_t next = 0;
  if (tokenizer.contains("model") && tokenizer["model"].contains("vocab"))
    next = static_cast<std::int64_t>(tokenizer["model"]["vocab"].size());
  for (const json& added : tokenizer.value("added_tokens", json::array()))
    next = std::max(next, added.value("id", std::int64_t{0}) + 1);
  return next;
}

// The tokenizer files in `folder` with kPadToken as their pad token; returns its id: the tokenizer's
// next one, or `without_tokenizer` where the folder has no tokenizer.json.
std::int64_t add_pad_token(const fs::path& folder, std::int64_t without_tokenizer) {
  const json token = {{"content", kPadToken}, {"single_word", false}, {"lstrip", false},
                      {"rstrip", false},      {"normalized", false},  {"special", true}};
  std::int64_t id = without_tokenizer;
  if (fs::exists(folder / "tokenizer.json")) {
    json tokenizer = read_json(folder / "tokenizer.json");
    id = next_token_id(tokenizer);
    json entry = token;
    entry["id"] = id;
    tokenizer["added_tokens"].push_back(entry);
    write_json(folder / "tokenizer.json", tokenizer);
  }
  if (fs::exists(folder / "tokenizer_config.json")) {
    json settings = read_json(folder / "tokenizer_config.json");
    settings["pad_token"] = kPadToken;
    if (settings.contains("added_tokens_decoder")) settings["added_tokens_decoder"][std::to_string(id)] = token;
    write_json(folder / "tokenizer_config.json", settings);
  }
  if (fs::exists(folder / "special_tokens_map.json")) {
    json map = read_json(folder / "special_tokens_map.json");
    map["pad_token"] = kPadToken;
    write_json(folder / "special_tokens_map.json", map);
  }
  return id;
}

std::string classifier_architecture(const models::DecoderConfig& config) {
  for (const std::string suffix : {"ForCausalLM", "LMHeadModel"})
    if (config.architecture.ends_with(suffix))
      return config.architecture.substr(0, config.architecture.size() - suffix.size()) + "ForSequenceClassification";
  throw ConfigError(fmt::format("{}: architecture {} has no *ForSequenceClassification counterpart prefopt knows",
                                config.model_type, config.architecture));
}

// The final norm's bias, which feeds only the score head: the place to fold the head's bias into.
std::optional<std::string> final_norm_bias(models::Family family) {
  switch (family) {
    case models::Family::gpt2: return "transformer.ln_f.bias";
    case models::Family::gpt_neox: return "gpt_neox.final_layer_norm.bias";
    case models::Family::llama: return std::nullopt;  // RMSNorm has no bias
  }
  return std::nullopt;
}

// Reward model `saved` as a *ForSequenceClassification folder whose score is prefopt's
// normalized score: score.weight · h + score.bias - normalization. transformers' head has no
// bias, so the constant is folded into the final norm's bias (along score.weight, which then
// adds exactly it); a family whose final norm has none (Llama's RMSNorm) leaves it to
// config.json's prefopt_score_offset, which a reader adds. Returns that offset.
double write_reward_model(const models::SafetensorsFile& saved, const fs::path& checkpoint, const fs::path& folder) {
  const models::DecoderConfig causal = models::read_decoder_config(checkpoint);
  auto shape = parameter_shapes(causal);
  shape.emplace("score.weight", std::vector<std::int64_t>{1, causal.width});
  shape.emplace("score.bias", std::vector<std::int64_t>{1});
  check_weights_fit(saved, shape, checkpoint);

  models::DecoderConfig classifier = causal;
  classifier.classifier = true;
  classifier.num_labels = 1;
  classifier.architecture = classifier_architecture(causal);
  json config = exported_config(checkpoint, saved);
  config["architectures"] = {classifier.architecture};
  config["id2label"] = {{"0", "LABEL_0"}};
  config["label2id"] = {{"LABEL_0", 0}};
  fs::create_directories(folder);
  copy_tokenizer_files(checkpoint, folder);
  const bool pad_is_eos = !causal.pad || std::ranges::find(causal.eos, *causal.pad) != causal.eos.end();
  if (pad_is_eos) {
    const std::int64_t pad = add_pad_token(folder, causal.vocab);
    classifier.vocab = std::max(causal.vocab, pad + 1);
    config["vocab_size"] = classifier.vocab;
    config["pad_token_id"] = pad;
  }

  const at::Tensor weight = saved.load("score.weight").to(at::kDouble);
  double offset = saved.load("score.bias").to(at::kDouble).item<double>() -
                  std::stod(saved.metadata().count("prefopt_normalization") ? saved.metadata().at("prefopt_normalization")
                                                                            : "0");
  std::map<std::string, at::Tensor> tensors;
  for (const auto& [name, sizes] : parameter_shapes(classifier)) {
    at::Tensor tensor = saved.load(name);
    if (tensor.size(0) == causal.vocab && sizes[0] == classifier.vocab && classifier.vocab != causal.vocab)
      tensor = at::cat({tensor, at::zeros({sizes[0] - tensor.size(0), tensor.size(1)}, tensor.options())});  // the pad's row
    tensors.emplace(name, tensor);
  }
  const double norm = weight.square().sum().item<double>();
  if (const auto bias = final_norm_bias(causal.family); bias && norm > 0.0) {
    at::Tensor& norm_bias = tensors.at(*bias);
    norm_bias = (norm_bias.to(at::kDouble) + weight.squeeze(0) * (offset / norm))
                    .to(norm_bias.scalar_type());
    offset = 0.0;
  }
  config["prefopt_score_offset"] = offset;
  write_json(folder / "config.json", config);
  models::write_safetensors(folder / "model.safetensors", tensors, {{"format", "pt"}});
  return offset;
}

}  // namespace

int export_command(const Args& args) {
  po::options_description options("Options");
  options.add_options()("to", po::value<std::string>()->required(), "the folder to write (new, or empty)")(
      "run", po::value<std::string>()->required(), "run folder");
  po::positional_options_description positional;
  positional.add("run", 1);
  po::variables_map vars;
  if (parse_args(args,
                 "usage: prefopt export RUN_DIR --to DIR\n\n"
                 "Writes what a run from a Hugging Face checkpoint ([policy] checkpoint) trained as Hugging\n"
                 "Face folders, with the tokenizer files of the checkpoint it started from:\n"
                 "  DIR                  the policy: model.safetensors, config.json, tokenizer and generation\n"
                 "                       files (AutoModelForCausalLM.from_pretrained(DIR); [policy] checkpoint)\n"
                 "  DIR/reward_model-K   reward model K of the ensemble, a *ForSequenceClassification whose\n"
                 "                       score is the run's normalized score (plus config.json's\n"
                 "                       prefopt_score_offset): AutoModelForSequenceClassification.\n"
                 "                       from_pretrained(DIR, subfolder=\"reward_model-0\"). Batches are padded\n"
                 "                       with a pad token other than EOS, added when the checkpoint has none.",
                 options, positional, vars))
    return 0;
  const fs::path run_dir = vars["run"].as<std::string>();
  const fs::path to = vars["to"].as<std::string>();
  const fs::path checkpoint = source_checkpoint(run_dir);
  const bool has_policy = fs::exists(run_dir / run_files::kPolicy);
  const std::vector<fs::path> reward_models = saved_reward_models(run_dir);
  if (!has_policy && reward_models.empty())
    throw ConfigError(fmt::format("{}: the run kept no trained weights (no {} and no {}: it ran with [train] "
                                  "save_policy = false and save_reward_models = false)",
                                  run_dir.string(), run_files::kPolicy, run_files::reward_model_file(0)));
  std::optional<models::SafetensorsFile> policy;
  if (has_policy) {
    policy.emplace(run_dir / run_files::kPolicy);
    check_weights_fit(*policy, parameter_shapes(models::read_decoder_config(checkpoint)), checkpoint);
  }
  if (fs::exists(to) && !(fs::is_directory(to) && fs::is_empty(to)))
    throw ConfigError(fmt::format("--to {}: exists and is not an empty folder; choose a new one", to.string()));

  // Written beside the target and renamed into place: an interrupted export leaves no half folder.
  const fs::path partial = to.string() + ".partial";
  fs::remove_all(partial);
  std::vector<std::string> lines;
  try {
    fs::create_directories(partial);
    if (policy) {
      write_json(partial / "config.json", exported_config(checkpoint, *policy));
      copy_tokenizer_files(checkpoint, partial);
      if (fs::exists(checkpoint / "generation_config.json"))
        fs::copy_file(checkpoint / "generation_config.json", partial / "generation_config.json");
      fs::copy_file(run_dir / run_files::kPolicy, partial / "model.safetensors");
      const json final_row = run_files::read_summary(run_dir)["final"];
      lines.push_back(fmt::format("policy ({}, trained from {}; final gold {:.3f}, KL {:.3f}) to {}",
                                  policy->metadata().contains("prefopt_model") ? policy->metadata().at("prefopt_model")
                                                                               : "decoder",
                                  checkpoint.string(), final_row.value("gold", 0.0), final_row.value("kl", 0.0),
                                  to.string()));
    }
    for (std::size_t m = 0; m < reward_models.size(); ++m) {
      const std::string name = reward_model_folder(static_cast<std::int64_t>(m));
      const double offset = write_reward_model(models::SafetensorsFile(reward_models[m]), checkpoint, partial / name);
      lines.push_back(fmt::format("reward model {} to {}{}", m, (to / name).string(),
                                  offset == 0.0 ? "" : fmt::format(" (its score is the run's less {:.6g}: "
                                                                   "config.json's prefopt_score_offset)", offset)));
    }
    if (fs::exists(to)) fs::remove(to);
    fs::rename(partial, to);
  } catch (const fs::filesystem_error& e) {  // a copy or a folder: a full disk, an unwritable --to
    std::error_code ignored;
    fs::remove_all(partial, ignored);
    throw StorageError(fmt::format("cannot write {}: {}", (e.path2().empty() ? e.path1() : e.path2()).string(),
                                   e.code().message()));
  } catch (...) {
    std::error_code ignored;
    fs::remove_all(partial, ignored);
    throw;
  }
  for (const std::string& line : lines) fmt::print("exported {}: {}\n", run_dir.string(), line);
  return 0;
}

}  // namespace prefopt::cli
