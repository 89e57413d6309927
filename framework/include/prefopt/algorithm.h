// Algorithm plugins optimize the policy — against the ensemble's proxy reward (RLHF: PPO, RLOO,
// GRPO), directly on the preference pairs (DPO and its kin), or by inference-time selection
// (best-of-n). Each hands what it produced to the shared evaluation through the context, so every
// algorithm is measured the same way: gold reward beside proxy reward, KL to the reference.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>

#include "prefopt/reward_model.h"

namespace prefopt {

// Responses the algorithm's current policy gives to the evaluation prompts.
struct EvaluationPoint {
  std::int64_t step = 0;     // training steps (or, for best-of-n, the index of n) so far
  std::string label;         // "step 100", "n = 16"
  Sequences responses;       // to AlgorithmContext::evaluation_prompts
  std::optional<double> kl;  // KL(pi || pi_ref) when known exactly; otherwise estimated from samples
  std::map<std::string, double> diagnostics;  // the algorithm's own numbers (loss, clip fraction, ...)
};

struct AlgorithmContext {
  Policy policy;                 // starts as a copy of the SFT policy; trainable
  Policy reference;              // the frozen SFT policy
  const Task& task;
  const PreferenceData& preferences;
  std::function<at::Tensor(const Sequences&)> proxy_reward;  // [batch]: the ensemble's combined score
  at::Tensor evaluation_prompts;                             // [prompts, prompt_length]
  std::int64_t response_length;
  double temperature;  // sampling temperature, also for recomputed log-probs
  at::Generator& generator;
  std::function<void(const EvaluationPoint&)> evaluate;  // the shared evaluation: call as you go
};

class PREFOPT_API Algorithm : public Plugin {
 public:
  static constexpr PluginKind kKind = PluginKind::algorithm;
  ~Algorithm() override;
  PluginKind kind() const final { return kKind; }

  void run(AlgorithmContext& context) const { guarded([&] { do_run(context); }); }

 protected:
  virtual void do_run(AlgorithmContext& context) const = 0;
};

}  // namespace prefopt
