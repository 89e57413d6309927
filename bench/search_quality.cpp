// How well prefopt's search samplers find the optimum of standard test functions at a fixed
// budget, and how long a proposal takes: JSON on stdout, one object per (function, sampler), for
// bench/search_vs_optuna.py to set beside Optuna's samplers on the same functions and budget.
//   build/bin/prefopt_search_quality [BUDGET] [SEEDS]
#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>

#include "sweep/samplers.h"

namespace {
using namespace prefopt::sweep;

Dimension dimension(const std::string& text) { return dimension_of(prefopt::config::parse_override(text), {}); }

struct TestFunction {
  std::string name;
  std::vector<Dimension> space;
  std::function<double(const Point&)> value;  // maximized
  double optimum;
};

double branin(const Point& p) {
  const double x = 15 * p[0] - 5, y = 15 * p[1];
  const double r = y - 5.1 / (4 * M_PI * M_PI) * x * x + 5 / M_PI * x - 6;
  return -(r * r + 10 * (1 - 1 / (8 * M_PI)) * std::cos(x) + 10);
}

// Hartmann's 6-dimensional function on the unit cube (maximum 3.32237).
double hartmann6(const Point& x) {
  static const double a[4][6] = {{10, 3, 17, 3.5, 1.7, 8}, {0.05, 10, 17, 0.1, 8, 14}, {3, 3.5, 1.7, 10, 17, 8}, {17, 8, 0.05, 10, 0.1, 14}};
  static const double p[4][6] = {{0.1312, 0.1696, 0.5569, 0.0124, 0.8283, 0.5886},
                                 {0.2329, 0.4135, 0.8307, 0.3736, 0.1004, 0.9991},
                                 {0.2348, 0.1451, 0.3522, 0.2883, 0.3047, 0.6650},
                                 {0.4047, 0.8828, 0.8732, 0.5743, 0.1091, 0.0381}};
  static const double alpha[4] = {1.0, 1.2, 3.0, 3.2};
  double sum = 0;
  for (int i = 0; i < 4; ++i) {
    double inner = 0;
    for (int j = 0; j < 6; ++j) inner += a[i][j] * (x[j] - p[i][j]) * (x[j] - p[i][j]);
    sum += alpha[i] * std::exp(-inner);
  }
  return sum;
}

std::vector<TestFunction> functions() {
  std::vector<Dimension> cube;
  for (int d = 0; d < 6; ++d) cube.push_back(dimension(fmt::format("x{}=interval(0, 1)", d)));
  return {{"branin", {dimension("x=interval(0, 1)"), dimension("y=interval(0, 1)")}, branin, -0.397887},
          {"branin_categorical",
           {dimension("x=interval(0, 1)"), dimension("y=interval(0, 1)"), dimension("loss=a,b,c")},
           [](const Point& p) { return branin(p) - (p[2] == 1 ? 0.0 : 2.0); },
           -0.397887},
          {"hartmann6", cube, hartmann6, 3.32237}};
}

}  // namespace

int main(int argc, char** argv) {
  const int budget = argc > 1 ? std::stoi(argv[1]) : 50;
  const int seeds = argc > 2 ? std::stoi(argv[2]) : 10;
  for (const TestFunction& f : functions())
    for (const std::string& sampler : kSamplers) {
      nlohmann::json regrets = nlohmann::json::array();  // per seed: the regret after each proposal
      double seconds = 0;
      for (int seed = 0; seed < seeds; ++seed) {
        std::vector<Observation> history;
        double best = -INFINITY;
        nlohmann::json curve = nlohmann::json::array();
        for (int i = 0; i < budget; ++i) {
          const auto start = std::chrono::steady_clock::now();
          const Point x = propose(f.space, history, {.kind = sampler, .startup = 8, .seed = static_cast<std::uint64_t>(seed)},
                                  static_cast<std::uint64_t>(i));
          seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
          const double value = f.value(x);
          history.push_back({x, value});
          best = std::max(best, value);
          curve.push_back(f.optimum - best);
        }
        regrets.push_back(curve);
      }
      fmt::print("{}\n", nlohmann::json{{"function", f.name},
                                        {"sampler", "prefopt " + sampler},
                                        {"seconds_per_proposal", seconds / (budget * seeds)},
                                        {"regret", regrets}}
                             .dump());
    }
}
