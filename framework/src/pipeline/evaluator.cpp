#include "pipeline/evaluator.h"

#include <torch/torch.h>

#include <cmath>

namespace prefopt {
using nlohmann::json;

Evaluator::Evaluator(const Task& task, std::vector<std::unique_ptr<RewardModel>> members, const Ensemble& ensemble,
                     Policy policy, Policy reference, Sequences reference_answers, double temperature)
    : task_(task),
      members_(std::move(members)),
      ensemble_(ensemble),
      policy_(std::move(policy)),
      reference_(std::move(reference)),
      temperature_(temperature),
      attribute_names_(task.attribute_names()) {
  for (const auto& member : members_) member->normalize(reference_answers);
  reference_gold_ = task_.gold_reward(reference_answers);
  reference_gold_mean_ = reference_gold_.mean().item<double>();
}

at::Tensor Evaluator::member_scores(const Sequences& sequences) const {
  std::vector<torch::Tensor> scores;
  for (const auto& member : members_) scores.push_back(member->score(sequences));
  return torch::stack(scores);
}

at::Tensor Evaluator::proxy_reward(const Sequences& sequences) const { return ensemble_.combine(member_scores(sequences)); }

json Evaluator::row(const EvaluationPoint& point) {
  torch::NoGradGuard no_grad;
  const torch::Tensor attributes = task_.score_attributes(point.responses);
  const torch::Tensor gold = task_.gold_reward(point.responses);
  const torch::Tensor scores = member_scores(point.responses);
  json row = {{"step", point.step}, {"label", point.label}};
  row["gold"] = gold.mean().item<double>();
  row["gold_se"] = gold.std().item<double>() / std::sqrt(static_cast<double>(gold.size(0)));  // standard error
  for (std::size_t i = 0; i < attribute_names_.size(); ++i)
    row["gold_" + attribute_names_[i]] = attributes.select(1, static_cast<std::int64_t>(i)).mean().item<double>();
  row["proxy"] = ensemble_.combine(scores).mean().item<double>();
  row["proxy_members"] = std::vector<double>();
  for (std::int64_t m = 0; m < scores.size(0); ++m) row["proxy_members"].push_back(scores[m].mean().item<double>());
  row["disagreement"] = scores.size(0) > 1 ? scores.std(0, /*unbiased=*/false).mean().item<double>() : 0.0;
  if (point.kl) {
    row["kl"] = *point.kl;
    row["kl_se"] = point.kl_se ? json(*point.kl_se) : json(nullptr);
    row["entropy"] = nullptr;  // best-of-n and other non-sampling policies have no log-probs
  } else {
    const torch::Tensor policy_lp = policy_->response_log_probs(point.responses, temperature_).sum(1);
    const torch::Tensor reference_lp = reference_->response_log_probs(point.responses, temperature_).sum(1);
    const torch::Tensor log_ratio = policy_lp - reference_lp;
    row["kl"] = log_ratio.mean().item<double>();
    row["kl_se"] = log_ratio.std().item<double>() / std::sqrt(static_cast<double>(log_ratio.size(0)));
    row["entropy"] = -policy_lp.mean().item<double>();
  }
  const double kl = row["kl"].get<double>();
  row["sqrt_kl"] = std::isnan(kl) ? kl : std::sqrt(std::max(0.0, kl));  // never a 0 standing for NaN
  const torch::Tensor wins =
      gold.gt(reference_gold_).to(torch::kDouble) + 0.5 * gold.eq(reference_gold_).to(torch::kDouble);
  row["win_rate"] = wins.mean().item<double>();
  row["mean_length"] = point.responses.lengths.to(torch::kDouble).mean().item<double>();
  for (const auto& [name, value] : point.diagnostics) row["algorithm"][name] = value;
  return row;
}

}  // namespace prefopt
