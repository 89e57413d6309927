#include "pipeline/policy_source.h"

#include <fmt/format.h>
#include <torch/torch.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "models/decoder.h"
#include "models/safetensors.h"
#include "pipeline/sections.h"
#include "pipeline/stage_cache.h"
#include "prefopt/error.h"

namespace prefopt {
namespace fs = std::filesystem;

namespace {

const config::Node* checkpoint_node(const config::Node& config) {
  const config::Node* policy = config.child("policy");
  return policy != nullptr && policy->is_table() ? policy->child("checkpoint") : nullptr;
}

std::string origin_of_checkpoint(const config::Node& config) {
  const config::Node* node = checkpoint_node(config);
  return node != nullptr ? node->origin : "[policy] checkpoint";
}

// The checkpoint's config, with errors prefixed by the setting that names the folder.
models::DecoderConfig checked_config(const config::Node& config, const fs::path& folder) {
  try {
    models::check_checkpoint(folder);
    return models::read_decoder_config(folder);
  } catch (const ConfigError& e) {
    throw ConfigError(fmt::format("{}: [policy] checkpoint: {}", origin_of_checkpoint(config), e.what()));
  }
}

}  // namespace

std::string policy_checkpoint(const config::Node& config) { return pipeline_section(config, "policy").get<std::string>("checkpoint"); }

std::string policy_checkpoint_fingerprint(const config::Node& config) {
  const fs::path folder = policy_checkpoint(config);
  if (folder.empty()) return "";
  std::ifstream in(folder / "config.json", std::ios::binary);
  std::ostringstream content;
  content << in.rdbuf();
  std::vector<std::string> files;
  for (const auto& entry : fs::directory_iterator(folder)) {
    const std::string name = entry.path().filename().string();
    if (!name.ends_with(".safetensors") && name != "model.safetensors.index.json") continue;
    files.push_back(fmt::format("{} {} bytes, modified {}", name, entry.file_size(),
                                entry.last_write_time().time_since_epoch().count()));
  }
  std::sort(files.begin(), files.end());
  std::string out = fmt::format("checkpoint config.json {}\n", stable_hash(content.str()));
  for (const std::string& file : files) out += "checkpoint " + file + "\n";
  return out;
}

PolicySource::PolicySource(const config::Node& config, const Task& task) : vocab_(task.vocab_size()) {
  const Params params = pipeline_section(config, "policy");
  const std::int64_t length = task.prompt_length() + task.max_response_length();
  shape_ = {.vocab = vocab_,
            .context = length,
            .width = params.get<std::int64_t>("width"),
            .depth = params.get<std::int64_t>("depth"),
            .heads = params.get<std::int64_t>("heads")};
  checkpoint_ = params.get<std::string>("checkpoint");
  if (checkpoint_.empty()) {
    if (shape_.width % shape_.heads != 0)
      throw ConfigError(fmt::format("[policy] heads ({}) must divide width ({})", shape_.heads, shape_.width));
    return;
  }
  const models::DecoderConfig c = checked_config(config, checkpoint_);
  const std::string where = fmt::format("{}: [policy] checkpoint {}", origin_of_checkpoint(config), checkpoint_.string());
  if (c.classifier)
    throw ConfigError(fmt::format("{} is a {} (a reward model's checkpoint); a policy needs a *ForCausalLM one",
                                  where, c.architecture));
  if (c.vocab < vocab_)
    throw ConfigError(fmt::format("{} knows {} tokens, fewer than the task's {}; the policy speaks the task's tokens, "
                                  "the model's first {} ids",
                                  where, c.vocab, vocab_, vocab_));
  if (c.family == models::Family::gpt2 && c.max_positions < length)
    throw ConfigError(fmt::format("{} has {} positions (n_positions), fewer than the task's prompt plus response ({})",
                                  where, c.max_positions, length));
}

Policy PolicySource::create(bool weights) const {
  if (checkpoint_.empty()) return Policy(shape_);
  models::Decoder decoder = weights ? models::load_decoder(checkpoint_)
                                    : models::Decoder(models::read_decoder_config(checkpoint_));
  decoder->train();
  return Policy(decoder.ptr(), vocab_);
}

void save_policy(PolicyImpl& policy, const fs::path& file) {
  std::map<std::string, at::Tensor> tensors;
  for (const auto& item : policy.model().named_parameters()) tensors.emplace(item.key(), item.value().detach());
  models::write_safetensors(file, tensors, {{"format", "pt"}, {"prefopt_model", policy.model().describe()}});
}

void save_reward_model(const NetworkRewardModel& model, const fs::path& file) {
  const RewardNetImpl& net = model.network();
  const LanguageModel& backbone = net.backbone()->model();
  std::map<std::string, at::Tensor> tensors;
  for (const auto& item : backbone.named_parameters()) tensors.emplace(item.key(), item.value().detach());
  tensors.emplace("score.weight", net.head()->weight.detach());
  tensors.emplace("score.bias", net.head()->bias.detach());
  models::write_safetensors(file, tensors,
                            {{"format", "pt"},
                             {"prefopt_model", backbone.describe()},
                             {"prefopt_normalization", fmt::format("{:.17g}", model.normalization())}});
}

}  // namespace prefopt
