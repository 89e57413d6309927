// The losses and estimators of preference optimization, as plain tensor functions: the built-in
// algorithm plugins are written with them, tests check them against hand-computed values, and a
// third-party algorithm can reuse them. Formulas: shared/reference/ALGORITHMS.md.
//
// Conventions: a "sequence log-prob" is the sum of a response's token log-probs (`lp`, `lr` for
// the reference); an "average log-prob" divides it by the response length (`a`). Pair losses
// return one value per pair ([batch]); the caller takes the mean.
#pragma once

#include <ATen/core/Tensor.h>

#include <string>

#include "prefopt/export.h"

namespace prefopt::losses {

// ---- Preference losses ----------------------------------------------------------------------

enum class DpoLoss { sigmoid, cdpo, rdpo, ipo, hinge };
PREFOPT_API DpoLoss parse_dpo_loss(const std::string& name);  // "sigmoid", "cdpo", ... (throws otherwise)

// The DPO family on h = (chosen − ref_chosen) − (rejected − ref_rejected):
//   sigmoid −log σ(βh); cdpo −(1−ε) log σ(βh) − ε log σ(−βh);
//   rdpo [−(1−ε) log σ(βh) + ε log σ(−βh)] / (1 − 2ε), ε < 0.5; ipo (h − 1/(2β))²; hinge relu(1 − βh).
// IPO expects per-token average log-probs, the others sequence log-probs (the caller chooses).
PREFOPT_API at::Tensor dpo(const at::Tensor& chosen, const at::Tensor& rejected, const at::Tensor& ref_chosen,
                           const at::Tensor& ref_rejected, double beta, DpoLoss loss, double label_smoothing = 0.0);

// log(1 − e^a) for a < 0 without cancellation: log(−expm1(a)) near 0, log1p(−e^a) far from it.
// a is clamped just below 0, so a policy that gives a response probability 1 yields a large
// finite value, not −inf and NaN gradients (TRL issue #1473).
PREFOPT_API at::Tensor log1m_exp(const at::Tensor& a);

// ORPO's odds-ratio term −log σ(log odds(y_w) − log odds(y_l)), odds(y) = P/(1 − P), on average
// log-probs; the ORPO loss is NLL(y_w) + λ · this.
PREFOPT_API at::Tensor orpo_odds_ratio(const at::Tensor& avg_chosen, const at::Tensor& avg_rejected);

// SimPO: −log σ(β (a_w − a_l) − γ), on average log-probs; no reference.
PREFOPT_API at::Tensor simpo(const at::Tensor& avg_chosen, const at::Tensor& avg_rejected, double beta, double gamma);

// KTO on r = lp − lr per example: desirable λ_D (1 − σ(β (r − z₀))), undesirable λ_U (1 − σ(β (z₀ − r))).
// z₀ is the (detached, non-negative) KL reference point; see kto_reference_point.
PREFOPT_API at::Tensor kto(const at::Tensor& log_ratio, const at::Tensor& desirable, double z0, double beta,
                           double desirable_weight, double undesirable_weight);
// z₀ = max(0, mean of lp − lr over mismatched (prompt, response) pairs), detached.
PREFOPT_API double kto_reference_point(const at::Tensor& mismatched_log_ratio);

// ---- KL estimators (per token, on log-probs of samples from the policy) --------------------

// k1 = lp − lr (unbiased, can be negative per token).
PREFOPT_API at::Tensor kl_k1(const at::Tensor& lp, const at::Tensor& lr);
// k3 = (e^{lr − lp} − 1) − (lr − lp) (unbiased, never negative; Schulman's estimator, GRPO's).
PREFOPT_API at::Tensor kl_k3(const at::Tensor& lp, const at::Tensor& lr);

// ---- Policy-gradient pieces ---------------------------------------------------------------

// Generalized advantage estimation over [batch, time] with `mask` 1 on the response's tokens:
// δ_t = r_t + γ V_{t+1} − V_t, A_t = δ_t + γ λ A_{t+1}, V and A zero past each response.
// Returns the advantages; the value targets (returns) are advantages + values.
PREFOPT_API at::Tensor gae(const at::Tensor& rewards, const at::Tensor& values, const at::Tensor& mask, double gamma,
                           double lambda);

// (x − mean) / std over the masked entries; `shift_mean = false` keeps the mean (reward whitening).
PREFOPT_API at::Tensor whiten(const at::Tensor& x, const at::Tensor& mask, bool shift_mean = true);
// The mean of x over the masked entries.
PREFOPT_API at::Tensor masked_mean(const at::Tensor& x, const at::Tensor& mask);

struct ClippedObjective {
  at::Tensor loss;           // scalar: −E[min(ρA, clip(ρ, 1 − ε, 1 + ε) A)] over masked tokens
  double clip_fraction = 0;  // fraction of masked tokens where clipping bound the objective
  double approx_kl = 0;      // E[k3(new, old)] over masked tokens: how far this update moved
};
// PPO's clipped surrogate; ρ = exp(log_probs − old_log_probs).
PREFOPT_API ClippedObjective clipped_policy_loss(const at::Tensor& log_probs, const at::Tensor& old_log_probs,
                                                 const at::Tensor& advantages, const at::Tensor& mask, double clip);

// PPO's clipped value loss ½ E[max((V − R)², (clip(V, V_old ± ε) − R)²)] over masked tokens.
PREFOPT_API at::Tensor clipped_value_loss(const at::Tensor& values, const at::Tensor& old_values,
                                          const at::Tensor& returns, const at::Tensor& mask, double clip);

// RLOO over [prompts, k] rewards: A_k = R_k − (1/(k−1)) Σ_{i≠k} R_i (k ≥ 2).
PREFOPT_API at::Tensor rloo_advantages(const at::Tensor& rewards);
// GRPO over [prompts, g] rewards: A_i = (r_i − mean) / (std + ε), per group (population std).
PREFOPT_API at::Tensor grpo_advantages(const at::Tensor& rewards, double epsilon = 1e-4);

// The adaptive KL coefficient of Ziegler et al.: e = clip(KL/target − 1, −0.2, 0.2),
// β ← β (1 + e · n / horizon) after a batch of n samples. With target 0 the coefficient is fixed.
class PREFOPT_API KlController {
 public:
  KlController(double coefficient, double target, double horizon)
      : coefficient_(coefficient), target_(target), horizon_(horizon) {}
  double coefficient() const { return coefficient_; }
  void set_coefficient(double coefficient) { coefficient_ = coefficient; }  // a checkpoint's
  void update(double kl, std::int64_t samples);

 private:
  double coefficient_;
  double target_;
  double horizon_;
};

}  // namespace prefopt::losses
