// The search samplers: the space they read from sweep syntax, proposals inside it and reproducible
// for a seed, and the model-based ones finding a test function's optimum faster than random
// search at an equal budget.
#include <catch2/catch.hpp>

#include <cmath>
#include <functional>

#include "prefopt/error.h"
#include "sweep/samplers.h"

using namespace prefopt;
using namespace prefopt::sweep;

namespace {

Dimension dimension(const std::string& text) { return dimension_of(config::parse_override(text), {}); }

// The best value found by `budget` sequential proposals maximizing `f` over `space`.
double best_found(const std::vector<Dimension>& space, const std::function<double(const Point&)>& f, const std::string& sampler,
                  std::uint64_t seed, int budget) {
  std::vector<Observation> history;
  double best = -INFINITY;
  for (int i = 0; i < budget; ++i) {
    const Point x = propose(space, history, {.kind = sampler, .startup = 8, .seed = seed}, static_cast<std::uint64_t>(i));
    const double value = f(x);
    history.push_back({x, value});
    best = std::max(best, value);
  }
  return best;
}

}  // namespace

TEST_CASE("search dimensions come from sweep syntax: intervals, log scales, integers, lists", "[sweep][search]") {
  const Dimension lr = dimension("lr=tag(log, interval(1e-4, 1e-2))");
  CHECK(lr.kind == Dimension::Kind::real);
  CHECK(lr.log);
  CHECK(lr.value_text(0.5) == "0.001");  // the geometric middle
  CHECK(lr.coordinate("0.001") == Approx(0.5));
  const Dimension epochs = dimension("epochs=tag(int, interval(1, 4))");
  CHECK(epochs.kind == Dimension::Kind::integer);
  // Four integers share the unit interval equally.
  CHECK(epochs.value_text(0.0) == "1");
  CHECK(epochs.value_text(0.26) == "2");
  CHECK(epochs.value_text(0.99) == "4");
  CHECK(epochs.value_text(1.0) == "4");
  CHECK(epochs.coordinate("3") == Approx(0.625));
  const Dimension beta = dimension("beta=0.05,0.1,0.5");
  CHECK(beta.kind == Dimension::Kind::ordinal);
  CHECK(beta.value_text(0.4) == "0.1");
  CHECK(beta.coordinate("0.5") == Approx(5.0 / 6));
  const Dimension loss = dimension("loss=choice(sigmoid, hinge, ipo)");
  CHECK(loss.kind == Dimension::Kind::categorical);
  CHECK(loss.value_text(2) == "ipo");
  CHECK(loss.coordinate("hinge") == 1);

  CHECK_THROWS_WITH(dimension("lr=0.1"), Catch::Contains("needs a range of values"));
  CHECK_THROWS_WITH(dimension("lr=tag(log, interval(0, 1))"), Catch::Contains("positive"));
  CHECK_THROWS_WITH(dimension("lr=interval(1, 1)"), Catch::Contains("empty"));
  CHECK_THROWS_WITH(dimension("lr=tag(log, choice(1, 2))"), Catch::Contains("applies to interval()"));
  CHECK_THROWS_WITH(lr.coordinate("0.5"), Catch::Contains("outside the searched interval"));
  CHECK_THROWS_WITH(loss.coordinate("dpo"), Catch::Contains("not one of the searched values"));
}

TEST_CASE("every sampler proposes inside the space, the same points for the same seed", "[sweep][search]") {
  const std::vector<Dimension> space = {dimension("a=tag(log, interval(1e-5, 1e-1))"), dimension("b=tag(int, interval(1, 8))"),
                                        dimension("c=x,y,z")};
  const auto f = [](const Point& x) { return -std::pow(x[0] - 0.3, 2) - std::pow(x[1] - 0.7, 2) + (x[2] == 1 ? 0.2 : 0.0); };
  for (const std::string& sampler : kSamplers) {
    INFO(sampler);
    std::vector<Observation> history;
    for (std::uint64_t i = 0; i < 20; ++i) {
      const Point x = propose(space, history, {.kind = sampler, .startup = 5, .seed = 7}, i);
      REQUIRE(x.size() == 3);
      CHECK(x[0] >= 0);
      CHECK(x[0] <= 1);
      CHECK(x[1] >= 0);
      CHECK(x[1] <= 1);
      CHECK((x[2] == 0 || x[2] == 1 || x[2] == 2));
      CHECK(x == propose(space, history, {.kind = sampler, .startup = 5, .seed = 7}, i));
      history.push_back({x, f(x)});
    }
    CHECK(propose(space, history, {.kind = sampler, .startup = 5, .seed = 7}, 99) !=
          propose(space, history, {.kind = sampler, .startup = 5, .seed = 8}, 99));
  }
}

TEST_CASE("TPE and the GP sampler beat random search on a test function at an equal budget", "[sweep][search]") {
  // Branin on the unit square, negated (maximized; optimum −0.397887); then with a categorical
  // switch worth 2 that only 'b' avoids: the shape of a learning rate, a coefficient and a loss
  // variant.
  const auto branin = [](const Point& p) {
    const double x = 15 * p[0] - 5, y = 15 * p[1];
    const double r = y - 5.1 / (4 * M_PI * M_PI) * x * x + 5 / M_PI * x - 6;
    return -(r * r + 10 * (1 - 1 / (8 * M_PI)) * std::cos(x) + 10);
  };
  const auto switched = [&](const Point& p) { return branin(p) - (p[2] == 1 ? 0.0 : 2.0); };
  const std::vector<Dimension> square = {dimension("x=interval(0, 1)"), dimension("y=interval(0, 1)")};
  std::vector<Dimension> mixed = square;
  mixed.push_back(dimension("loss=a,b,c"));
  constexpr double kOptimum = -0.397887;
  constexpr int kSeeds = 12, kBudget = 40;
  std::map<std::string, double> regret, mixed_regret;
  for (const std::string& sampler : kSamplers)
    for (std::uint64_t seed = 0; seed < kSeeds; ++seed) {
      regret[sampler] += (kOptimum - best_found(square, branin, sampler, seed, kBudget)) / kSeeds;
      mixed_regret[sampler] += (kOptimum - best_found(mixed, switched, sampler, seed, kBudget)) / kSeeds;
    }
  INFO("mean regret after " << kBudget << " proposals over " << kSeeds << " seeds: random " << regret["random"] << ", tpe "
                            << regret["tpe"] << ", gp " << regret["gp"] << "; with the switch: random " << mixed_regret["random"]
                            << ", tpe " << mixed_regret["tpe"] << ", gp " << mixed_regret["gp"]);
  // Measured: random 1.70, tpe 0.57, gp 0.007; with the switch random 2.50, tpe 2.45 (TPE's
  // product kernels gain little from 40 points split three ways), gp 0.26. The margins leave room
  // for another libm.
  CHECK(regret["tpe"] < 0.5 * regret["random"]);
  CHECK(regret["gp"] < 0.05 * regret["random"]);
  CHECK(mixed_regret["gp"] < 0.25 * mixed_regret["random"]);
}
