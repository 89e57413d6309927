// Where a trial's policy starts before supervised fine-tuning: the built-in transformer of
// [policy] width, depth and heads, or the decoder of the Hugging Face checkpoint folder that
// [policy] checkpoint names (GPT-2, GPT-NeoX, Llama family; see docs/models.md).
#pragma once

#include <filesystem>
#include <string>

#include "config/node.h"
#include "prefopt/policy.h"
#include "prefopt/reward_model.h"
#include "prefopt/task.h"

namespace prefopt {

class PolicySource {
 public:
  // From the experiment's [policy] section, for `task`: ConfigError naming the setting when the
  // checkpoint cannot be the task's policy (a classifier, a vocabulary smaller than the task's, too
  // few positions for a prompt and a response).
  PolicySource(const config::Node& config, const Task& task);

  // A new policy on the CPU: the built-in freshly initialized (from torch's global generator), or
  // the checkpoint's weights; with `weights` false, zeros of the checkpoint's shape (to load a
  // saved policy into).
  Policy create(bool weights = true) const;

 private:
  PolicyOptions shape_;
  std::filesystem::path checkpoint_;  // empty: the built-in
  std::int64_t vocab_ = 0;
};

// The policy's model weights as a safetensors file, under the model's own parameter names (a
// checkpoint's decoder uses Hugging Face's, so the file is what save_pretrained would write), in
// the dtype they were trained in.
void save_policy(PolicyImpl& policy, const std::filesystem::path& file);

// A reward model's network the same way: its backbone under the model's names, the head as
// score.weight and score.bias, and the normalization it subtracts as the metadata's
// prefopt_normalization, so that score = score.weight · h + score.bias - normalization.
void save_reward_model(const NetworkRewardModel& model, const std::filesystem::path& file);

// [policy] checkpoint as given, or "" for the built-in.
std::string policy_checkpoint(const config::Node& config);

// What the SFT stage's cache key needs besides the path: config.json's hash and each weight
// file's name, size and modification time, so a checkpoint re-saved in place is not mistaken for
// the old one. "" for the built-in.
std::string policy_checkpoint_fingerprint(const config::Node& config);

}  // namespace prefopt
