#include "sweep/gao_fit.h"

#include <fmt/format.h>

#include <algorithm>
#include <boost/math/distributions/students_t.hpp>
#include <cmath>
#include <limits>

namespace prefopt::sweep {
namespace {

// The regressor that multiplies −β: d² (best-of-n) or d log d (RL).
double penalty(GaoForm form, double d) { return form == GaoForm::best_of_n ? d * d : d * std::log(d); }

}  // namespace

const char* to_string(GaoForm form) { return form == GaoForm::best_of_n ? "best-of-n" : "RL"; }

GaoForm gao_form_of(const std::string& algorithm) { return algorithm == "best_of_n" ? GaoForm::best_of_n : GaoForm::rl; }

std::string describe_peak(const GaoFit& fit) {
  if (!std::isfinite(fit.peak_d)) return "none (β ≤ 0)";
  // A peak the data cannot tell from "no turn", or one extrapolated out of all proportion (the RL
  // form's e^(α/β − 1) explodes as β nears 0), is no finding: say so rather than print its number.
  if (fit.beta - fit.beta_ci95 <= 0) return "not resolved (β's 95% interval reaches 0)";
  if (fit.peak_d > 10 * fit.max_d) return fmt::format("far beyond the data (over 10× its largest √KL, {:.2f})", fit.max_d);
  std::string text = fmt::format("√KL {:.2f} (KL {:.2f})", fit.peak_d, fit.peak_d * fit.peak_d);
  if (fit.peak_d > fit.max_d) text += fmt::format(", beyond the data (√KL ≤ {:.2f})", fit.max_d);
  return text;
}

std::string describe(const GaoFit& fit) {
  return fmt::format("{} form {}: α = {:.3f} ± {:.3f}, β = {:.3f} ± {:.3f}, R² {:.2f}; peak at {}", to_string(fit.form),
                     fit.form == GaoForm::best_of_n ? "d(α − βd)" : "d(α − β log d)", fit.alpha, fit.alpha_ci95, fit.beta,
                     fit.beta_ci95, fit.r_squared, describe_peak(fit));
}

double GaoFit::operator()(double d) const { return d > 0 ? alpha * d - beta * penalty(form, d) : 0.0; }

std::optional<GaoFit> fit_gao(GaoForm form, const std::vector<double>& d, const std::vector<double>& gain) {
  const std::size_t size = std::min(d.size(), gain.size());
  const auto usable = [&](std::size_t i) { return d[i] > 0 && std::isfinite(d[i]) && std::isfinite(gain[i]); };
  // Normal equations of gain = α x + β z, x = d, z = −penalty(d).
  double xx = 0, xz = 0, zz = 0, xy = 0, zy = 0, sum_y = 0, max_d = 0;
  std::int64_t n = 0;
  for (std::size_t i = 0; i < size; ++i) {
    if (!usable(i)) continue;
    const double x = d[i], z = -penalty(form, d[i]), y = gain[i];
    xx += x * x, xz += x * z, zz += z * z, xy += x * y, zy += z * y, sum_y += y;
    max_d = std::max(max_d, x);
    ++n;
  }
  const double determinant = xx * zz - xz * xz;
  if (n < 3 || !(determinant > 1e-12 * xx * zz)) return std::nullopt;

  GaoFit fit{.form = form, .points = n, .max_d = max_d};
  fit.alpha = (zz * xy - xz * zy) / determinant;
  fit.beta = (xx * zy - xz * xy) / determinant;
  double residual = 0, total = 0;
  const double mean_y = sum_y / static_cast<double>(n);
  for (std::size_t i = 0; i < size; ++i) {
    if (!usable(i)) continue;
    residual += std::pow(gain[i] - fit(d[i]), 2);
    total += std::pow(gain[i] - mean_y, 2);
  }
  fit.r_squared = total > 0 ? 1 - residual / total : std::numeric_limits<double>::quiet_NaN();
  const double variance = residual / static_cast<double>(n - 2);
  const double t = boost::math::quantile(boost::math::students_t(static_cast<double>(n - 2)), 0.975);
  fit.alpha_ci95 = t * std::sqrt(variance * zz / determinant);
  fit.beta_ci95 = t * std::sqrt(variance * xx / determinant);

  if (fit.beta > 0) {
    fit.peak_d = form == GaoForm::best_of_n ? std::max(0.0, fit.alpha / (2 * fit.beta)) : std::exp(fit.alpha / fit.beta - 1);
    fit.peak_gain = fit(fit.peak_d);
  } else {
    fit.peak_d = std::numeric_limits<double>::infinity();
    fit.peak_gain = std::numeric_limits<double>::quiet_NaN();
  }
  return fit;
}

}  // namespace prefopt::sweep
