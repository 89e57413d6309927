#include "prefopt/losses.h"

#include <fmt/format.h>
#include <torch/torch.h>

#include <stdexcept>

namespace prefopt::losses {
namespace F = torch::nn::functional;

DpoLoss parse_dpo_loss(const std::string& name) {
  if (name == "sigmoid") return DpoLoss::sigmoid;
  if (name == "cdpo") return DpoLoss::cdpo;
  if (name == "rdpo") return DpoLoss::rdpo;
  if (name == "ipo") return DpoLoss::ipo;
  if (name == "hinge") return DpoLoss::hinge;
  throw std::invalid_argument(fmt::format("unknown DPO loss '{}' (sigmoid, cdpo, rdpo, ipo, hinge)", name));
}

at::Tensor dpo(const at::Tensor& chosen, const at::Tensor& rejected, const at::Tensor& ref_chosen,
               const at::Tensor& ref_rejected, double beta, DpoLoss loss, double label_smoothing) {
  const at::Tensor h = (chosen - ref_chosen) - (rejected - ref_rejected);
  const double eps = label_smoothing;
  switch (loss) {
    case DpoLoss::sigmoid:
      return -F::logsigmoid(beta * h);
    case DpoLoss::cdpo:
      return -(1.0 - eps) * F::logsigmoid(beta * h) - eps * F::logsigmoid(-beta * h);
    case DpoLoss::rdpo:
      if (eps >= 0.5) throw std::invalid_argument("rDPO needs label_smoothing < 0.5");
      return (-(1.0 - eps) * F::logsigmoid(beta * h) + eps * F::logsigmoid(-beta * h)) / (1.0 - 2.0 * eps);
    case DpoLoss::ipo:
      return (h - 1.0 / (2.0 * beta)).pow(2);
    case DpoLoss::hinge:
      return torch::relu(1.0 - beta * h);
  }
  throw std::logic_error("unhandled DPO loss");
}

at::Tensor log1m_exp(const at::Tensor& a) {
  // Below 0 by a margin float32 can represent next to 0 (its spacing there is ~1e-45; -1e-7
  // keeps log(-expm1(a)) at about -16, far from -inf).
  const at::Tensor x = a.clamp_max(-1e-7);
  constexpr double kLn2 = 0.6931471805599453;
  // Mächler (2012): log(-expm1(x)) for x > -ln 2, log1p(-exp(x)) otherwise. Both branches are
  // evaluated; each is finite where it is not selected too, so gradients stay finite.
  return torch::where(x.gt(-kLn2), torch::log(-torch::expm1(x)), torch::log1p(-torch::exp(x.clamp_max(-kLn2))));
}

at::Tensor orpo_odds_ratio(const at::Tensor& avg_chosen, const at::Tensor& avg_rejected) {
  const at::Tensor log_odds = (avg_chosen - avg_rejected) - (log1m_exp(avg_chosen) - log1m_exp(avg_rejected));
  return -F::logsigmoid(log_odds);
}

at::Tensor simpo(const at::Tensor& avg_chosen, const at::Tensor& avg_rejected, double beta, double gamma) {
  return -F::logsigmoid(beta * (avg_chosen - avg_rejected) - gamma);
}

at::Tensor kto(const at::Tensor& log_ratio, const at::Tensor& desirable, double z0, double beta,
               double desirable_weight, double undesirable_weight) {
  const at::Tensor good = desirable_weight * (1.0 - torch::sigmoid(beta * (log_ratio - z0)));
  const at::Tensor bad = undesirable_weight * (1.0 - torch::sigmoid(beta * (z0 - log_ratio)));
  return torch::where(desirable, good, bad);
}

double kto_reference_point(const at::Tensor& mismatched_log_ratio) {
  return std::max(0.0, mismatched_log_ratio.detach().mean().item<double>());
}

at::Tensor kl_k1(const at::Tensor& lp, const at::Tensor& lr) { return lp - lr; }

at::Tensor kl_k3(const at::Tensor& lp, const at::Tensor& lr) {
  const at::Tensor d = lr - lp;
  return torch::expm1(d) - d;
}

at::Tensor gae(const at::Tensor& rewards, const at::Tensor& values, const at::Tensor& mask, double gamma,
               double lambda) {
  const std::int64_t steps = rewards.size(1);
  const at::Tensor v = values * mask;
  at::Tensor advantages = torch::zeros_like(rewards);
  at::Tensor next_advantage = torch::zeros_like(rewards.select(1, 0));
  at::Tensor next_value = torch::zeros_like(next_advantage);
  for (std::int64_t t = steps - 1; t >= 0; --t) {
    const at::Tensor m = mask.select(1, t);
    const at::Tensor delta = rewards.select(1, t) + gamma * next_value - v.select(1, t);
    next_advantage = (delta + gamma * lambda * next_advantage) * m;
    advantages.select(1, t).copy_(next_advantage);
    next_value = v.select(1, t);
  }
  return advantages;
}

at::Tensor masked_mean(const at::Tensor& x, const at::Tensor& mask) {
  return (x * mask).sum() / mask.sum().clamp_min(1.0);
}

at::Tensor whiten(const at::Tensor& x, const at::Tensor& mask, bool shift_mean) {
  const at::Tensor mean = masked_mean(x, mask);
  const at::Tensor variance = masked_mean((x - mean).pow(2), mask);
  at::Tensor whitened = (x - mean) * torch::rsqrt(variance + 1e-8);
  if (!shift_mean) whitened = whitened + mean;
  return whitened * mask;
}

ClippedObjective clipped_policy_loss(const at::Tensor& log_probs, const at::Tensor& old_log_probs,
                                     const at::Tensor& advantages, const at::Tensor& mask, double clip) {
  const at::Tensor log_ratio = log_probs - old_log_probs;
  const at::Tensor ratio = torch::exp(log_ratio);
  const at::Tensor unclipped = ratio * advantages;
  const at::Tensor clipped = ratio.clamp(1.0 - clip, 1.0 + clip) * advantages;
  ClippedObjective objective;
  objective.loss = -masked_mean(torch::min(unclipped, clipped), mask);
  torch::NoGradGuard no_grad;
  objective.clip_fraction = masked_mean(clipped.lt(unclipped).to(torch::kFloat), mask).item<double>();
  objective.approx_kl = masked_mean(kl_k3(log_probs, old_log_probs), mask).item<double>();
  return objective;
}

at::Tensor clipped_value_loss(const at::Tensor& values, const at::Tensor& old_values, const at::Tensor& returns,
                              const at::Tensor& mask, double clip) {
  const at::Tensor clipped = old_values + (values - old_values).clamp(-clip, clip);
  return 0.5 * masked_mean(torch::max((values - returns).pow(2), (clipped - returns).pow(2)), mask);
}

at::Tensor rloo_advantages(const at::Tensor& rewards) {
  const std::int64_t k = rewards.size(1);
  if (k < 2) throw std::invalid_argument("RLOO needs at least 2 samples per prompt");
  const at::Tensor others = (rewards.sum(1, /*keepdim=*/true) - rewards) / static_cast<double>(k - 1);
  return rewards - others;
}

at::Tensor grpo_advantages(const at::Tensor& rewards, double epsilon) {
  const at::Tensor mean = rewards.mean(1, /*keepdim=*/true);
  const at::Tensor std = rewards.std(1, /*unbiased=*/false, /*keepdim=*/true);
  return (rewards - mean) / (std + epsilon);
}

void KlController::update(double kl, std::int64_t samples) {
  if (target_ <= 0.0) return;
  const double error = std::clamp(kl / target_ - 1.0, -0.2, 0.2);
  coefficient_ *= 1.0 + error * static_cast<double>(samples) / horizon_;
}

}  // namespace prefopt::losses
