// Reward-model plugins learn a proxy reward from noisy preference labels. A reward model starts
// from the SFT policy (its transformer backbone) and reads a scalar at each response's last token.
// Several members (different seeds or bootstrap resamples) make an ensemble; an Ensemble plugin
// combines their scores into the proxy reward the algorithms optimize.
//
// A reward model lives on the SFT policy's device (`sft->device()`; RewardNet follows it), and
// its training pairs and the sequences it scores arrive there. Load saved weights onto that
// device: `torch::load(net, file, sft->device())`.
#pragma once

#include <ATen/core/Generator.h>
#include <ATen/core/Tensor.h>

#include <functional>
#include <string>
#include <vector>

#include "prefopt/annotator.h"
#include "prefopt/policy.h"

namespace prefopt {

// Preference pairs: two responses to the same prompts and the annotators' labels.
struct PreferenceData {
  Sequences a;
  Sequences b;
  Labels labels;

  std::int64_t size() const { return a.responses.size(0); }
  // The pairs at `rows` (a bootstrap resample, a train/held-out split).
  PREFOPT_API PreferenceData select(const at::Tensor& rows) const;
  // The same pairs on `device`.
  PREFOPT_API PreferenceData to(c10::Device device) const;
};

// A policy backbone with a scalar head read at each response's last token: the network reward
// models train. The head starts as N(0, 1/sqrt(width + 1)) with a zero bias.
class PREFOPT_API RewardNetImpl : public torch::nn::Module {
 public:
  explicit RewardNetImpl(Policy& sft);  // copies the SFT policy's weights
  torch::Tensor forward(const Sequences& sequences);  // [batch]

  // The parts, for saving under their own names. Since 3.2.
  const Policy& backbone() const { return backbone_; }
  const torch::nn::Linear& head() const { return head_; }

 private:
  Policy backbone_{nullptr};
  torch::nn::Linear head_{nullptr};
};
TORCH_MODULE(RewardNet);

class PREFOPT_API RewardModel : public Plugin {
 public:
  static constexpr PluginKind kKind = PluginKind::reward_model;
  ~RewardModel() override;
  PluginKind kind() const final { return kKind; }

  // Trains from `sft` (copied, never changed) on the pairs whose label is kept.
  void fit(Policy& sft, const PreferenceData& data, at::Generator& generator);
  // Shifts scores so that `reference` samples score 0 on average (Huang et al. 2024): members
  // then share a scale origin before an ensemble combines them.
  void normalize(const Sequences& reference);
  // [batch] rewards, normalized. Runs without gradients.
  at::Tensor score(const Sequences& sequences) const;
  // What score() subtracts: the last normalize()'s mean, 0 before one. Since 3.2.
  double normalization() const { return offset_; }
  // What the model learned about each annotator, if anything: crowd_bt's reliabilities.
  std::vector<double> annotator_reliability() const { return guarded([&] { return do_annotator_reliability(); }); }
  // The trained model in `folder` (the stage cache), and back; load() needs the SFT policy the
  // model was fitted from, for its shape. Normalize again after loading.
  void save(const std::string& folder) const { guarded([&] { do_save(folder); }); }
  void load(Policy& sft, const std::string& folder);

 protected:
  virtual void do_fit(Policy& sft, const PreferenceData& data, at::Generator& generator) = 0;
  virtual at::Tensor do_score(const Sequences& sequences) const = 0;  // unnormalized, [batch]
  virtual std::vector<double> do_annotator_reliability() const { return {}; }
  virtual void do_save(const std::string& folder) const = 0;
  virtual void do_load(Policy& sft, const std::string& folder) = 0;

 private:
  double offset_ = 0.0;
  bool fitted_ = false;
};

// A reward model that scores with one RewardNet (before normalization): a run from a Hugging Face
// checkpoint keeps its weights, and `prefopt export` writes it as a *ForSequenceClassification
// folder. Since 3.2.
class PREFOPT_API NetworkRewardModel : public RewardModel {
 public:
  ~NetworkRewardModel() override;
  // The network do_score() reads; valid after fit() or load().
  virtual const RewardNetImpl& network() const = 0;
};

// `model`'s network interface, or null when its score is not one RewardNet's. The type
// information lives once, in libprefopt, so the cast holds across plugin libraries. Since 3.2.
PREFOPT_API const NetworkRewardModel* as_network_reward_model(const RewardModel& model);

// Calls `step` on shuffled minibatches of `data`, `epochs` passes over it.
PREFOPT_API void for_each_minibatch(const PreferenceData& data, std::int64_t epochs, std::int64_t batch_size,
                                    at::Generator& generator, const std::function<void(const PreferenceData&)>& step);

// The fraction of pairs where `model` prefers the response the labels prefer.
PREFOPT_API double preference_accuracy(const RewardModel& model, const PreferenceData& data, const at::Tensor& prefers_a);

}  // namespace prefopt
