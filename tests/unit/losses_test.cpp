// The losses of prefopt/losses.h against the formulas of shared/reference/ALGORITHMS.md, written
// out on scalars here, and against finite differences; IPO and DPO on Azar et al.'s bandit.
#include <catch2/catch.hpp>
#include <torch/torch.h>

#include <ATen/CPUGeneratorImpl.h>

#include <cmath>

#include "prefopt/losses.h"

using namespace prefopt;
using Catch::Matchers::WithinAbs;
using Catch::Matchers::WithinRel;

namespace {
double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }
double log_sigmoid(double x) { return std::log(sigmoid(x)); }
torch::Tensor values(std::vector<double> v) { return torch::tensor(v, torch::kDouble); }
double item(const torch::Tensor& t, std::int64_t i = 0) { return t.reshape({-1})[i].item<double>(); }

// Central finite differences of a scalar function of x against autograd.
void check_gradient(const std::function<torch::Tensor(const torch::Tensor&)>& f, torch::Tensor x) {
  x = x.clone().to(torch::kDouble).set_requires_grad(true);
  f(x).backward();
  const torch::Tensor analytic = x.grad().clone();
  constexpr double h = 1e-6;
  for (std::int64_t i = 0; i < x.numel(); ++i) {
    torch::NoGradGuard no_grad;
    torch::Tensor plus = x.detach().clone(), minus = x.detach().clone();
    plus.view({-1})[i] += h;
    minus.view({-1})[i] -= h;
    const double numeric = (f(plus).item<double>() - f(minus).item<double>()) / (2 * h);
    CHECK_THAT(analytic.view({-1})[i].item<double>(), WithinAbs(numeric, 1e-6));
  }
}
}  // namespace

TEST_CASE("DPO variants equal their formulas on h = (lp_w - lr_w) - (lp_l - lr_l)", "[losses]") {
  // Pair 0: h = (-3 + 4) - (-5 + 4.5) = 1.5. Pair 1: h = (-6 + 5) - (-2 + 2.5) = -1.5.
  const torch::Tensor chosen = values({-3, -6}), rejected = values({-5, -2});
  const torch::Tensor ref_chosen = values({-4, -5}), ref_rejected = values({-4.5, -2.5});
  const double hs[] = {1.5, -1.5};
  const double beta = 0.5, eps = 0.2;
  using losses::DpoLoss;
  const auto loss = [&](DpoLoss kind) { return losses::dpo(chosen, rejected, ref_chosen, ref_rejected, beta, kind, eps); };
  const torch::Tensor sigmoid_loss = loss(DpoLoss::sigmoid), cdpo = loss(DpoLoss::cdpo), rdpo = loss(DpoLoss::rdpo);
  const torch::Tensor ipo = loss(DpoLoss::ipo), hinge = loss(DpoLoss::hinge);
  for (int i = 0; i < 2; ++i) {
    const double h = hs[i];
    CHECK_THAT(item(sigmoid_loss, i), WithinAbs(-log_sigmoid(beta * h), 1e-12));
    CHECK_THAT(item(cdpo, i), WithinAbs(-(1 - eps) * log_sigmoid(beta * h) - eps * log_sigmoid(-beta * h), 1e-12));
    CHECK_THAT(item(rdpo, i),
               WithinAbs((-(1 - eps) * log_sigmoid(beta * h) + eps * log_sigmoid(-beta * h)) / (1 - 2 * eps), 1e-12));
    CHECK_THAT(item(ipo, i), WithinAbs(std::pow(h - 1 / (2 * beta), 2), 1e-12));
    CHECK_THAT(item(hinge, i), WithinAbs(std::max(0.0, 1 - beta * h), 1e-12));
  }
  CHECK_THAT(item(sigmoid_loss, 0), WithinAbs(0.3868710, 1e-6));  // log(1 + e^-0.75), by hand
  CHECK_THAT(item(ipo, 0), WithinAbs(0.25, 1e-12));                // (1.5 - 1)^2
  CHECK_THROWS_AS(losses::dpo(chosen, rejected, ref_chosen, ref_rejected, beta, DpoLoss::rdpo, 0.5), std::invalid_argument);
  CHECK(losses::parse_dpo_loss("ipo") == DpoLoss::ipo);
  CHECK_THROWS_WITH(losses::parse_dpo_loss("robust"), Catch::Contains("sigmoid, cdpo, rdpo, ipo, hinge"));
}

TEST_CASE("DPO and ORPO gradients match finite differences", "[losses]") {
  const torch::Tensor refs = values({-4, -4.5, -5, -2.5});
  for (auto kind : {losses::DpoLoss::sigmoid, losses::DpoLoss::cdpo, losses::DpoLoss::rdpo, losses::DpoLoss::ipo}) {
    check_gradient(
        [&](const torch::Tensor& x) {
          return losses::dpo(x.narrow(0, 0, 2), x.narrow(0, 2, 2), refs.narrow(0, 0, 2), refs.narrow(0, 2, 2), 0.3, kind, 0.1)
              .sum();
        },
        values({-3, -6, -5, -2}));
  }
  // Average log-probs, one of them close to 0 (a probability near 1).
  check_gradient([](const torch::Tensor& x) { return losses::orpo_odds_ratio(x.narrow(0, 0, 2), x.narrow(0, 2, 2)).sum(); },
                 values({-0.3, -1e-3, -1.2, -2.0}));
}

TEST_CASE("log(1 - e^a) is accurate near 0 and far from it, and finite at 0", "[losses]") {
  for (double a : {-1e-6, -1e-3, -0.5, -0.69, -0.7, -5.0, -30.0}) {
    // In long double: log(-expm1(a)) is exact enough near 0, log1p(-exp(a)) far from it.
    const long double x = a;
    const long double expected = a > -0.5 ? std::log(-std::expm1(x)) : std::log1p(-std::exp(x));
    const double got = item(losses::log1m_exp(values({a})));
    INFO("a = " << a << ": " << got << " vs " << static_cast<double>(expected));
    CHECK_THAT(got, WithinRel(static_cast<double>(expected), 1e-9));
  }
  // float32, as in training: the naive log1p(-exp(a)) is -inf here; ours stays finite.
  const torch::Tensor near_one = torch::tensor({-1e-9f, 0.0f}).set_requires_grad(true);
  CHECK(std::isinf(torch::log1p(-torch::exp(near_one.detach()))[1].item<float>()));
  const torch::Tensor stable = losses::log1m_exp(near_one);
  CHECK(torch::isfinite(stable).all().item<bool>());
  stable.sum().backward();
  CHECK(torch::isfinite(near_one.grad()).all().item<bool>());
}

TEST_CASE("ORPO's odds-ratio term equals its formula and stays finite as a probability nears 1", "[losses]") {
  const double aw = -0.4, al = -1.3;
  const double log_odds = (aw - al) - (std::log(1 - std::exp(aw)) - std::log(1 - std::exp(al)));
  CHECK_THAT(item(losses::orpo_odds_ratio(values({aw}), values({al}))), WithinAbs(-log_sigmoid(log_odds), 1e-12));
  // TRL issue #1473: a chosen response of average log-prob ~0 made the loss NaN.
  const torch::Tensor chosen = torch::tensor({-1e-8f, 0.0f}).set_requires_grad(true);
  const torch::Tensor loss = losses::orpo_odds_ratio(chosen, torch::tensor({-2.0f, -2.0f})).sum();
  loss.backward();
  CHECK(std::isfinite(loss.item<float>()));
  CHECK(torch::isfinite(chosen.grad()).all().item<bool>());
}

TEST_CASE("SimPO and KTO equal their formulas", "[losses]") {
  CHECK_THAT(item(losses::simpo(values({-1.0}), values({-1.8}), 2.5, 1.0)), WithinAbs(-log_sigmoid(2.5 * 0.8 - 1.0), 1e-12));

  const torch::Tensor log_ratio = values({0.7, -0.2, 0.4, -1.1});
  const torch::Tensor desirable = torch::tensor({true, true, false, false});
  const double z0 = 0.3, beta = 0.5, wd = 1.0, wu = 1.5;
  const torch::Tensor loss = losses::kto(log_ratio, desirable, z0, beta, wd, wu);
  const double r[] = {0.7, -0.2, 0.4, -1.1};
  for (int i = 0; i < 2; ++i) CHECK_THAT(item(loss, i), WithinAbs(wd * (1 - sigmoid(beta * (r[i] - z0))), 1e-12));
  for (int i = 2; i < 4; ++i) CHECK_THAT(item(loss, i), WithinAbs(wu * (1 - sigmoid(beta * (z0 - r[i]))), 1e-12));
  CHECK(losses::kto_reference_point(values({0.5, 1.5})) == 1.0);
  CHECK(losses::kto_reference_point(values({-0.5, 0.1})) == 0.0);  // clamped at 0
}

TEST_CASE("k1 and k3 per token, and both estimate KL(p || q) from samples of p", "[losses]") {
  CHECK_THAT(item(losses::kl_k1(values({-1.0}), values({-1.5}))), WithinAbs(0.5, 1e-12));
  // k3 = (e^{-0.5} - 1) + 0.5 = 0.1065306597
  CHECK_THAT(item(losses::kl_k3(values({-1.0}), values({-1.5}))), WithinAbs(std::exp(-0.5) - 1 + 0.5, 1e-12));
  CHECK(item(losses::kl_k3(values({-2.0}), values({-0.5}))) >= 0.0);

  // p = (0.6, 0.3, 0.1), q = (0.2, 0.5, 0.3): KL = Σ p log(p/q) = 0.4184; 400k samples, standard
  // errors ~0.0013 (k1) and ~0.0009 (k3); tolerance 0.01.
  const torch::Tensor p = values({0.6, 0.3, 0.1}), q = values({0.2, 0.5, 0.3});
  const double kl = (p * (p / q).log()).sum().item<double>();
  at::Generator generator = at::make_generator<at::CPUGeneratorImpl>(7);
  const torch::Tensor draws = torch::multinomial(p, 400000, true, generator);
  const torch::Tensor lp = p.log().index_select(0, draws), lq = q.log().index_select(0, draws);
  CHECK_THAT(losses::kl_k1(lp, lq).mean().item<double>(), WithinAbs(kl, 0.01));
  CHECK_THAT(losses::kl_k3(lp, lq).mean().item<double>(), WithinAbs(kl, 0.01));
}

TEST_CASE("GAE unrolls the recursion and stops at each response's end", "[losses]") {
  // Row 0: three tokens. Row 1: two tokens (the third is padding).
  const torch::Tensor rewards = values({0.1, -0.2, 1.0, 0.0, 0.5, 9.0}).view({2, 3});
  const torch::Tensor value = values({0.3, 0.4, 0.2, 0.1, -0.3, 9.0}).view({2, 3});
  const torch::Tensor mask = values({1, 1, 1, 1, 1, 0}).view({2, 3});
  const double g = 0.9, l = 0.8;
  const torch::Tensor a = losses::gae(rewards, value, mask, g, l);
  // Row 0 by hand: δ2 = 1.0 - 0.2; δ1 = -0.2 + g 0.2 - 0.4; δ0 = 0.1 + g 0.4 - 0.3.
  const double d2 = 0.8, d1 = -0.2 + g * 0.2 - 0.4, d0 = 0.1 + g * 0.4 - 0.3;
  CHECK_THAT(a[0][2].item<double>(), WithinAbs(d2, 1e-12));
  CHECK_THAT(a[0][1].item<double>(), WithinAbs(d1 + g * l * d2, 1e-12));
  CHECK_THAT(a[0][0].item<double>(), WithinAbs(d0 + g * l * (d1 + g * l * d2), 1e-12));
  // Row 1: V past the end counts as 0; the padded position gets no advantage.
  const double e1 = 0.5 - (-0.3), e0 = 0.0 + g * -0.3 - 0.1;
  CHECK_THAT(a[1][1].item<double>(), WithinAbs(e1, 1e-12));
  CHECK_THAT(a[1][0].item<double>(), WithinAbs(e0 + g * l * e1, 1e-12));
  CHECK(a[1][2].item<double>() == 0.0);
}

TEST_CASE("whitening uses only the masked entries", "[losses]") {
  const torch::Tensor x = values({1, 2, 3, 100}).view({1, 4});
  const torch::Tensor mask = values({1, 1, 1, 0}).view({1, 4});
  const torch::Tensor w = losses::whiten(x, mask);
  CHECK_THAT(losses::masked_mean(w, mask).item<double>(), WithinAbs(0.0, 1e-9));
  CHECK_THAT(losses::masked_mean(w * w, mask).item<double>(), WithinAbs(1.0, 1e-6));
  CHECK(w[0][3].item<double>() == 0.0);
  CHECK_THAT(losses::masked_mean(losses::whiten(x, mask, false), mask).item<double>(), WithinAbs(2.0, 1e-9));
}

TEST_CASE("PPO's clipped objective and clipped value loss by hand", "[losses]") {
  // Ratios 1.5, 0.5, 0.5, 1.5 with advantages +1, +1, -1, -1 and clip 0.2:
  // min(1.5, 1.2) = 1.2, min(0.5, 0.8) = 0.5, min(-0.5, -0.8) = -0.8, min(-1.5, -1.2) = -1.5.
  const torch::Tensor old_lp = values({0, 0, 0, 0}).view({1, 4});
  const torch::Tensor lp = values({std::log(1.5), std::log(0.5), std::log(0.5), std::log(1.5)}).view({1, 4});
  const torch::Tensor adv = values({1, 1, -1, -1}).view({1, 4});
  const torch::Tensor mask = torch::ones({1, 4}, torch::kDouble);
  const losses::ClippedObjective objective = losses::clipped_policy_loss(lp, old_lp, adv, mask, 0.2);
  CHECK_THAT(objective.loss.item<double>(), WithinAbs(-(1.2 + 0.5 - 0.8 - 1.5) / 4, 1e-12));
  CHECK(objective.clip_fraction == 0.5);
  const double k3 = 2 * ((1 / 1.5 - 1) + std::log(1.5)) + 2 * ((1 / 0.5 - 1) + std::log(0.5));
  CHECK_THAT(objective.approx_kl, WithinAbs(k3 / 4, 1e-12));

  // Values 1.0 and 0.0 from old 0.5 and 0.5, returns 2.0 and 0.0, clip 0.2:
  // row 0 max((1 - 2)^2, (0.7 - 2)^2) = 1.69; row 1 max(0, (0.3 - 0)^2) = 0.09.
  const torch::Tensor v = values({1.0, 0.0}).view({2, 1}), old_v = values({0.5, 0.5}).view({2, 1});
  const torch::Tensor returns = values({2.0, 0.0}).view({2, 1});
  CHECK_THAT(losses::clipped_value_loss(v, old_v, returns, torch::ones({2, 1}, torch::kDouble), 0.2).item<double>(),
             WithinAbs(0.5 * (1.69 + 0.09) / 2, 1e-12));
}

TEST_CASE("RLOO and GRPO advantages by hand", "[losses]") {
  const torch::Tensor rewards = values({1, 2, 3, 6, 0, 0, 0, 4}).view({2, 4});
  const torch::Tensor rloo = losses::rloo_advantages(rewards);
  CHECK_THAT(rloo[0][0].item<double>(), WithinAbs(1 - (2 + 3 + 6) / 3.0, 1e-12));
  CHECK_THAT(rloo[0][3].item<double>(), WithinAbs(6 - (1 + 2 + 3) / 3.0, 1e-12));
  CHECK_THAT(rloo[1][3].item<double>(), WithinAbs(4.0, 1e-12));
  CHECK_THROWS_AS(losses::rloo_advantages(values({1, 2}).view({2, 1})), std::invalid_argument);

  const torch::Tensor grpo = losses::grpo_advantages(rewards, 0.0);
  // Group 0: mean 3, population std sqrt((4 + 1 + 0 + 9) / 4) = sqrt(3.5).
  CHECK_THAT(grpo[0][0].item<double>(), WithinAbs((1 - 3) / std::sqrt(3.5), 1e-12));
  CHECK_THAT(grpo[1][3].item<double>(), WithinAbs((4 - 1) / std::sqrt(3.0), 1e-12));
  CHECK(losses::grpo_advantages(values({2, 2}).view({1, 2})).abs().max().item<double>() == 0.0);
}

TEST_CASE("the adaptive KL coefficient moves by the clipped error times samples over horizon", "[losses]") {
  losses::KlController adaptive(0.1, 6.0, 10000.0);
  adaptive.update(12.0, 256);  // error 1.0 clipped to 0.2
  CHECK_THAT(adaptive.coefficient(), WithinRel(0.1 * (1 + 0.2 * 256 / 10000.0), 1e-12));
  adaptive.update(5.4, 1000);  // error -0.1
  CHECK_THAT(adaptive.coefficient(), WithinRel(0.1 * (1 + 0.2 * 256 / 10000.0) * (1 - 0.1 * 1000 / 10000.0), 1e-12));
  losses::KlController fixed(0.1, 0.0, 10000.0);
  fixed.update(50.0, 1000);
  CHECK(fixed.coefficient() == 0.1);
}

// Azar et al. §5.3: two actions, the preference y1 > y2 always observed, a uniform reference.
// IPO's optimum is π(y1) = σ(1 / (2β)) for every β; DPO's drives π(y1) to 1.
TEST_CASE("IPO on a two-action bandit converges to sigma(0.5 / beta) while DPO goes to 1", "[losses]") {
  // Plain gradient descent; at rate 0.1 IPO's quadratic converges without oscillating.
  const auto train = [](losses::DpoLoss kind, double beta, int steps) {
    torch::Tensor logits = torch::zeros({2}, torch::kDouble).set_requires_grad(true);
    torch::optim::SGD optimizer({logits}, torch::optim::SGDOptions(0.1));
    const torch::Tensor reference = torch::full({1}, std::log(0.5), torch::kDouble);
    for (int step = 0; step < steps; ++step) {
      const torch::Tensor log_probs = logits.log_softmax(0);
      const torch::Tensor loss =
          losses::dpo(log_probs.narrow(0, 0, 1), log_probs.narrow(0, 1, 1), reference, reference, beta, kind).sum();
      optimizer.zero_grad();
      loss.backward();
      optimizer.step();
    }
    return logits.softmax(0)[0].item<double>();
  };
  for (double beta : {0.5, 1.0, 2.0}) {
    CHECK_THAT(train(losses::DpoLoss::ipo, beta, 2000), WithinAbs(sigmoid(0.5 / beta), 1e-6));
    // DPO's margin grows like log(steps) / beta without bound: pi(y1) passes IPO's optimum and
    // keeps rising.
    const double early = train(losses::DpoLoss::sigmoid, beta, 2000), late = train(losses::DpoLoss::sigmoid, beta, 20000);
    CHECK(early > sigmoid(0.5 / beta) + 0.2);
    CHECK(late > early);
    CHECK(late > 0.98);
  }
}
