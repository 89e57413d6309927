// Gao et al. (2023)'s functional forms of reward-model overoptimization: the gold reward gained
// over the reference policy (its gold on the same evaluation prompts) as a function of
// d = √KL(π ‖ π_ref),
//   best-of-n   R(d) = d (α − β d)
//   RL          R(d) = d (α − β log d)
// Both are linear in α and β, so the fit is ordinary least squares through the origin (R(0) = 0)
// with the usual t-intervals. β > 0 means the gold reward peaks and then falls: at
// d* = α / (2β) for best-of-n (0 when α ≤ 0: it only falls) and d* = e^(α/β − 1) for RL.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace prefopt::sweep {

enum class GaoForm { best_of_n, rl };
const char* to_string(GaoForm form);  // "best-of-n", "RL"

struct GaoFit {
  GaoForm form = GaoForm::rl;
  std::int64_t points = 0;
  double alpha = 0, alpha_ci95 = 0;  // estimate and half-width of its 95% t-interval
  double beta = 0, beta_ci95 = 0;
  double r_squared = 0;  // 1 − SS_residual / SS_total, SS_total about the gains' mean
  double max_d = 0;      // the largest d fitted
  // The peak of R: d* and R(d*); infinite d* (and NaN gain) when β ≤ 0, where R never turns down.
  double peak_d = 0;
  double peak_gain = 0;

  double operator()(double d) const;  // R(d)
};

// Fits `form` to the points (d[i], gain[i]) with d > 0 (points at d = 0 carry no information
// through the origin). nullopt with fewer than three such points or when d does not vary enough
// to tell α from β. The intervals treat the points as independent; points along one trial's
// curve are not quite (they share its reward models), so read them as lower bounds.
std::optional<GaoFit> fit_gao(GaoForm form, const std::vector<double>& d, const std::vector<double>& gain);

// The form for an algorithm's results: best-of-n's for "best_of_n", RL's for every trainer.
GaoForm gao_form_of(const std::string& algorithm);

// Where gold peaks: "√KL 1.24 (KL 1.54)", "√KL 3.10 (KL 9.61), beyond the data (√KL ≤ 2.00)",
// "far beyond the data (...)" past 10× the largest √KL fitted, "not resolved (...)" when β's
// interval reaches 0, or "none (β ≤ 0)".
std::string describe_peak(const GaoFit& fit);
// One line: "best-of-n form d(α − βd): α = 0.52 ± 0.10, β = 0.21 ± 0.05, R² 0.93; peak at " and
// describe_peak's text.
std::string describe(const GaoFit& fit);

}  // namespace prefopt::sweep
