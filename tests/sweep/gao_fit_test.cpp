// Gao et al.'s overoptimization forms: the least-squares fit against its formulas, the coverage of
// its intervals, and the fits `prefopt results` and the report show.
#include <catch2/catch.hpp>

#include <cmath>
#include <nlohmann/json.hpp>
#include <random>

#include "sweep/gao_fit.h"
#include "sweep/report.h"
#include "sweep/results.h"

using namespace prefopt::sweep;
using Catch::Contains;

namespace {

std::vector<double> grid(double low, double high, int count) {
  std::vector<double> out;
  for (int i = 0; i < count; ++i) out.push_back(low + (high - low) * i / (count - 1));
  return out;
}

// gains[i] = α d − β penalty(d), the form's exact values.
std::vector<double> exact(GaoForm form, double alpha, double beta, const std::vector<double>& d) {
  std::vector<double> out;
  for (const double x : d) out.push_back(x * (alpha - beta * (form == GaoForm::best_of_n ? x : std::log(x))));
  return out;
}

}  // namespace

TEST_CASE("Gao's best-of-n and RL forms are recovered exactly from their own curves, with their peaks", "[results][gao]") {
  const std::vector<double> d = grid(0.1, 3.0, 12);
  const auto bon = fit_gao(GaoForm::best_of_n, d, exact(GaoForm::best_of_n, 1.5, 0.5, d));
  REQUIRE(bon);
  CHECK(bon->points == 12);
  CHECK(bon->alpha == Approx(1.5).margin(1e-9));
  CHECK(bon->beta == Approx(0.5).margin(1e-9));
  CHECK(bon->r_squared == Approx(1.0).margin(1e-9));
  CHECK(bon->peak_d == Approx(1.5));       // α / (2β)
  CHECK(bon->peak_gain == Approx(1.125));  // α² / (4β)
  CHECK((*bon)(2.0) == Approx(1.0));       // 2 (1.5 − 0.5 · 2)
  CHECK(describe(*bon) == "best-of-n form d(α − βd): α = 1.500 ± 0.000, β = 0.500 ± 0.000, R² 1.00; peak at √KL 1.50 (KL 2.25)");

  const auto rl = fit_gao(GaoForm::rl, d, exact(GaoForm::rl, 1.0, 0.4, d));
  REQUIRE(rl);
  CHECK(rl->alpha == Approx(1.0).margin(1e-9));
  CHECK(rl->beta == Approx(0.4).margin(1e-9));
  CHECK(rl->peak_d == Approx(std::exp(1.0 / 0.4 - 1)));      // e^(α/β − 1) = 4.48
  CHECK(rl->peak_gain == Approx(0.4 * std::exp(1.5)));        // R(d*) = β d*
  CHECK(rl->peak_d > rl->max_d);                              // beyond the fitted range
  CHECK_THAT(describe(*rl), Contains("RL form d(α − β log d)") && Contains("√KL 4.48 (KL 20.09), beyond the data (√KL ≤ 3.00)"));
}

TEST_CASE("Gao fits: a gold reward that never turns down has no peak, and too few points give no fit", "[results][gao]") {
  const std::vector<double> d = grid(0.2, 2.0, 8);
  std::vector<double> rising;
  for (const double x : d) rising.push_back(0.8 * x + 0.1 * x * x);  // β = −0.1
  const auto fit = fit_gao(GaoForm::best_of_n, d, rising);
  REQUIRE(fit);
  CHECK(fit->beta == Approx(-0.1));
  CHECK(std::isinf(fit->peak_d));
  CHECK(std::isnan(fit->peak_gain));
  CHECK(describe_peak(*fit) == "none (β ≤ 0)");

  // β > 0 but within noise of 0: the data do not show a turn.
  std::vector<double> noisy;
  for (std::size_t i = 0; i < d.size(); ++i) noisy.push_back(d[i] * (0.8 - 0.02 * d[i]) + (i % 2 == 0 ? 0.3 : -0.3));
  const auto unresolved = fit_gao(GaoForm::best_of_n, d, noisy);
  REQUIRE(unresolved);
  INFO("β = " << unresolved->beta << " ± " << unresolved->beta_ci95);
  CHECK(unresolved->beta > 0);
  CHECK(describe_peak(*unresolved) == "not resolved (β's 95% interval reaches 0)");
  // An exact RL curve with a small β peaks at e^(α/β − 1) = e^9 ≈ 8103: no number is printed.
  const auto far = fit_gao(GaoForm::rl, d, exact(GaoForm::rl, 1.0, 0.1, d));
  REQUIRE(far);
  CHECK(far->peak_d == Approx(std::exp(9.0)));
  CHECK(describe_peak(*far) == "far beyond the data (over 10× its largest √KL, 2.00)");

  CHECK_FALSE(fit_gao(GaoForm::rl, {0.0, 0.5, 1.0}, {0.0, 0.2, 0.3}));  // d = 0 carries nothing: 2 points left
  CHECK_FALSE(fit_gao(GaoForm::rl, {1.0, 1.0, 1.0}, {0.2, 0.3, 0.25}));  // one d: α and β not separable
}

TEST_CASE("Gao fits' 95% intervals cover the true α and β in about 95% of noisy replicates", "[results][gao]") {
  // 400 replicates of 10 points with Gaussian noise (sd 0.05): coverage is binomial(400, 0.95),
  // whose 99.9% range is about [0.93, 0.97]; [0.92, 0.98] leaves room.
  std::mt19937_64 engine(7);
  std::normal_distribution<double> noise(0.0, 0.05);
  const std::vector<double> d = grid(0.2, 2.5, 10);
  for (const GaoForm form : {GaoForm::best_of_n, GaoForm::rl}) {
    int alpha_covered = 0, beta_covered = 0;
    const int replicates = 400;
    for (int r = 0; r < replicates; ++r) {
      std::vector<double> gain = exact(form, 0.9, 0.3, d);
      for (double& g : gain) g += noise(engine);
      const auto fit = fit_gao(form, d, gain);
      REQUIRE(fit);
      alpha_covered += std::abs(fit->alpha - 0.9) <= fit->alpha_ci95;
      beta_covered += std::abs(fit->beta - 0.3) <= fit->beta_ci95;
    }
    INFO(to_string(form) << ": α covered " << alpha_covered << ", β covered " << beta_covered << " of " << replicates);
    CHECK(alpha_covered >= 0.92 * replicates);
    CHECK(alpha_covered <= 0.98 * replicates);
    CHECK(beta_covered >= 0.92 * replicates);
    CHECK(beta_covered <= 0.98 * replicates);
  }
}

TEST_CASE("results and the report fit each group's gold gained against √KL, pooled over its seeds", "[results][gao]") {
  // Two seeds of best-of-n whose gold follows d (1.2 − 0.4 d) above their reference policy's, and
  // one PPO trial; the fit pools both seeds' points (their references differ) and ignores d = 0.
  std::vector<TrialResult> results;
  const std::vector<double> d = grid(0.25, 2.5, 6);
  for (const double start : {-1.0, -0.5}) {
    TrialResult r{.name = "bon" + std::to_string(start), .state = "finished", .exit_status = 0, .algorithm = "best_of_n",
                  .params = {{"algorithm", "best_of_n"}}, .finals = {{"final_gold", start}, {"reference_gold", start}},
                  .curve = {}};
    r.curve[0] = {{"gold", start}, {"sqrt_kl", 0.0}};
    for (std::size_t i = 0; i < d.size(); ++i)
      r.curve[static_cast<std::int64_t>(i + 1)] = {{"gold", start + d[i] * (1.2 - 0.4 * d[i])}, {"sqrt_kl", d[i]}};
    results.push_back(r);
  }
  TrialResult ppo{.name = "ppo", .state = "finished", .exit_status = 0, .algorithm = "ppo", .params = {{"algorithm", "ppo"}},
                  .finals = {{"final_gold", 0.0}, {"reference_gold", 0.0}}, .curve = {}};
  ppo.curve[0] = {{"gold", 0.0}, {"sqrt_kl", 0.0}};
  ppo.curve[10] = {{"gold", 0.1}, {"sqrt_kl", 0.2}};
  ppo.curve[20] = {{"gold", 0.2}, {"sqrt_kl", 1.0}};
  results.push_back(ppo);

  const std::vector<Group> groups = aggregate(results, {});
  REQUIRE(groups.size() == 2);
  REQUIRE(groups[0].fit);
  CHECK(groups[0].fit->form == GaoForm::best_of_n);
  CHECK(groups[0].fit->points == 12);
  CHECK(groups[0].fit->alpha == Approx(1.2));
  CHECK(groups[0].fit->beta == Approx(0.4));
  CHECK(groups[0].fit->peak_d == Approx(1.5));
  CHECK_FALSE(groups[1].fit);  // two points cannot fix two parameters and an error

  const std::string table = format_results(groups, "table");
  CHECK_THAT(table, Contains("Gao et al.'s forms fitted") && Contains("best_of_n     best-of-n"));
  CHECK_THAT(table, Contains("best-of-n") && Contains("1.200 ± 0.000") && Contains("1.50 (KL 2.25)"));
  const nlohmann::json json = nlohmann::json::parse(format_results(groups, "json"));
  CHECK(json[0]["gao_fit"]["peak_sqrt_kl"].get<double>() == Approx(1.5));
  CHECK(json[0]["gao_fit"]["form"] == "best-of-n");
  CHECK(json[1]["gao_fit"].is_null());

  const std::string html = render_report("t", results);
  CHECK_THAT(html, Contains("Gold gained over the reference against √KL, Gao et al.'s form fitted per group"));
  CHECK_THAT(html, Contains("<td>best_of_n</td><td>best-of-n</td><td>12</td><td>1.200 ± 0.000</td>"));
}
