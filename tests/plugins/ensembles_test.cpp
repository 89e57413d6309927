// The built-in ensemble plugins, created through the registry, against hand-computed values.
#include <catch2/catch.hpp>
#include <torch/torch.h>

#include "prefopt/ensemble.h"
#include "support.h"

using namespace prefopt;

namespace {
// Three members scoring two responses: response 0 is uncontroversial, members disagree on 1.
at::Tensor member_scores() { return torch::tensor({{1.0, 2.0}, {1.0, -1.0}, {1.0, 5.0}}); }

std::vector<double> combined(const Ensemble& ensemble) {
  const at::Tensor out = ensemble.combine(member_scores()).to(torch::kDouble);
  return {out[0].item<double>(), out[1].item<double>()};
}
}  // namespace

TEST_CASE("mean, worst case and uncertainty-weighted ensembles match hand-computed values", "[ensemble]") {
  const Registry registry = test::load_registry();
  using Catch::Matchers::Approx;

  CHECK_THAT(combined(*registry.create<Ensemble>("mean")), Approx(std::vector<double>{1.0, 2.0}));
  CHECK_THAT(combined(*registry.create<Ensemble>("worst_case")), Approx(std::vector<double>{1.0, -1.0}));
  // Response 1: mean 2, population variance ((0)^2 + (-3)^2 + 3^2) / 3 = 6; 2 - 0.5 * 6 = -1.
  CHECK_THAT(combined(*registry.create<Ensemble>("uncertainty_weighted")),
             Approx(std::vector<double>{1.0, -1.0}));
  // lambda = 0.1 (Coste et al.'s PPO setting): 2 - 0.6 = 1.4.
  CHECK_THAT(combined(*registry.create<Ensemble>("uncertainty_weighted", {{"lambda", 0.1}})),
             Approx(std::vector<double>{1.0, 1.4}));
  // A single member: every combiner returns its scores unchanged.
  const at::Tensor one = torch::tensor({{0.5, -2.0}});
  for (const char* name : {"mean", "worst_case", "uncertainty_weighted"})
    CHECK(registry.create<Ensemble>(name)->combine(one).equal(one[0]));
}

TEST_CASE("ensemble parameters are validated against the schema", "[ensemble]") {
  const Registry registry = test::load_registry();
  try {
    registry.create<Ensemble>("uncertainty_weighted", {{"lamda", 0.1}, {"foo", true}});
    FAIL("expected a ConfigError");
  } catch (const ConfigError& e) {
    const std::string message = e.what();
    CHECK(message.find("invalid parameters for ensemble 'uncertainty_weighted'") != std::string::npos);
    CHECK(message.find("lamda: unknown parameter of ensemble 'uncertainty_weighted' (did you mean 'lambda'?)") !=
          std::string::npos);
    CHECK(message.find("foo: unknown parameter") != std::string::npos);
  }
  CHECK_THROWS_WITH(registry.create<Ensemble>("uncertainty_weighted", {{"lambda", -1.0}}),
                    Catch::Contains("lambda: -1.0 is out of range [0, inf)"));
}

TEST_CASE("an ensemble rejects malformed member scores before calling the plugin", "[ensemble]") {
  const Registry registry = test::load_registry();
  const auto mean = registry.create<Ensemble>("mean");
  CHECK_THROWS_AS(mean->combine(torch::ones({3})), std::invalid_argument);
  CHECK_THROWS_AS(mean->combine(torch::ones({0, 4})), std::invalid_argument);
}
