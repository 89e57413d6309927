// The evaluation every algorithm shares: one metrics row per EvaluationPoint, against the gold
// reward, the proxy (the ensemble of reward models) and the reference policy's answers to the
// same prompts.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <vector>

#include "prefopt/algorithm.h"
#include "prefopt/ensemble.h"
#include "prefopt/reward_model.h"
#include "prefopt/task.h"

namespace prefopt {

class Evaluator {
 public:
  // The members are normalized on `reference_answers` (the reference policy's samples for the
  // evaluation prompts), which are also the baseline of the win rate.
  Evaluator(const Task& task, std::vector<std::unique_ptr<RewardModel>> members, const Ensemble& ensemble,
            Policy policy, Policy reference, Sequences reference_answers, double temperature);

  // [members, batch] scores of each reward model.
  at::Tensor member_scores(const Sequences& sequences) const;
  // [batch]: the ensemble's combined score.
  at::Tensor proxy_reward(const Sequences& sequences) const;

  // The metrics.jsonl row of `point`: step, label, gold (with standard error and per attribute),
  // proxy (combined and per member), disagreement, KL(pi || pi_ref) and entropy, sqrt(KL), win
  // rate against the reference answers, mean length, the algorithm's diagnostics.
  nlohmann::json row(const EvaluationPoint& point);  // not const: the policies compute log-probs

  double reference_gold() const { return reference_gold_mean_; }
  const std::vector<std::unique_ptr<RewardModel>>& members() const { return members_; }

 private:
  const Task& task_;
  std::vector<std::unique_ptr<RewardModel>> members_;
  const Ensemble& ensemble_;
  Policy policy_;
  Policy reference_;
  double temperature_;
  at::Tensor reference_gold_;  // [prompts]
  double reference_gold_mean_;
  std::vector<std::string> attribute_names_;
};

}  // namespace prefopt
