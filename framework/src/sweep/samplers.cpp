#include "sweep/samplers.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "prefopt/error.h"
#include "text.h"

namespace prefopt::sweep {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

bool has_tag(const config::Sweep& sweep, const std::string& tag) {
  return std::find(sweep.tags.begin(), sweep.tags.end(), tag) != sweep.tags.end();
}

// splitmix64: the same numbers with every standard library (std's distributions are not).
class Random {
 public:
  Random(std::uint64_t seed, std::uint64_t stream) : state_(seed * 0x9e3779b97f4a7c15ULL ^ (stream + 0x632be59bd9b4e019ULL)) {
    next();
  }
  std::uint64_t next() {
    std::uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }  // [0, 1)
  std::size_t index(std::size_t n) { return std::min(n - 1, static_cast<std::size_t>(uniform() * static_cast<double>(n))); }
  double normal() {  // Box–Muller
    const double u = 1.0 - uniform();
    return std::sqrt(-2.0 * std::log(u)) * std::cos(2.0 * M_PI * uniform());
  }

 private:
  std::uint64_t state_;
};

bool categorical(const Dimension& d) { return d.kind == Dimension::Kind::categorical; }

Point random_point(const std::vector<Dimension>& space, Random& random) {
  Point point;
  for (const Dimension& d : space)
    point.push_back(categorical(d) ? static_cast<double>(random.index(d.values.size())) : random.uniform());
  return point;
}

double normal_cdf(double z) { return 0.5 * std::erfc(-z / std::sqrt(2.0)); }
double log_normal_pdf(double z) { return -0.5 * z * z - 0.5 * std::log(2 * M_PI); }

double log_sum_exp(const std::vector<double>& terms) {
  const double top = *std::max_element(terms.begin(), terms.end());
  if (!std::isfinite(top)) return top;
  double sum = 0;
  for (const double t : terms) sum += std::exp(t - top);
  return top + std::log(sum);
}

// ---- TPE -------------------------------------------------------------------------------------

// Optuna's weights for the observations of one side, oldest first: flat for the newest 25, a ramp
// down to 1/n for older ones, so that old observations fade.
std::vector<double> observation_weights(std::size_t n) {
  std::vector<double> weights(n, 1.0);
  if (n <= 25) return weights;
  const std::size_t ramp = n - 25;
  for (std::size_t i = 0; i < ramp; ++i)
    weights[i] = 1.0 / static_cast<double>(n) + (1.0 - 1.0 / static_cast<double>(n)) * static_cast<double>(i) /
                                                     static_cast<double>(std::max<std::size_t>(ramp - 1, 1));
  return weights;
}

// A mixture of product kernels, one per observation plus a flat prior component.
class Parzen {
 public:
  Parzen(const std::vector<Dimension>& space, const std::vector<Point>& points) : space_(space), points_(points) {
    const double n = static_cast<double>(points.size());
    const double dims = static_cast<double>(space.size());
    // The multivariate TPE's bandwidth (Falkner et al. 2018, as Optuna sets it), floored so that
    // a kernel never collapses onto one value.
    sigma_ = std::clamp(0.2 * std::pow(std::max(n, 1.0), -1.0 / (dims + 4.0)), 1.0 / std::min(100.0, n + 1.0), 1.0);
    weights_ = observation_weights(points.size());
    weights_.push_back(1.0);  // the prior
    const double total = std::accumulate(weights_.begin(), weights_.end(), 0.0);
    for (double& w : weights_) w = std::log(w / total);
  }

  double log_density(const Point& x) const {
    std::vector<double> terms;
    for (std::size_t i = 0; i <= points_.size(); ++i) {
      double term = weights_[i];
      for (std::size_t d = 0; d < space_.size(); ++d) term += log_kernel(d, i, x[d]);
      terms.push_back(term);
    }
    return log_sum_exp(terms);
  }

  Point sample(Random& random) const {
    // A component by weight, then each coordinate from its kernel.
    double u = random.uniform(), cumulative = 0;
    std::size_t component = points_.size();
    for (std::size_t i = 0; i < weights_.size(); ++i) {
      cumulative += std::exp(weights_[i]);
      if (u < cumulative) {
        component = i;
        break;
      }
    }
    const bool prior = component == points_.size();
    Point x;
    for (std::size_t d = 0; d < space_.size(); ++d) {
      const Dimension& dim = space_[d];
      if (categorical(dim)) {
        const std::size_t k = dim.values.size();
        const bool keep = !prior && random.uniform() < category_keep(k);
        x.push_back(keep ? points_[component][d] : static_cast<double>(random.index(k)));
        continue;
      }
      const double mean = prior ? 0.5 : points_[component][d];
      const double sigma = prior ? 1.0 : sigma_;
      double value = std::clamp(mean, 0.0, 1.0);
      for (int attempt = 0; attempt < 100; ++attempt) {  // truncation: accepts at least 1/3 of draws
        const double draw = mean + sigma * random.normal();
        if (draw >= 0 && draw <= 1) {
          value = draw;
          break;
        }
      }
      x.push_back(value);
    }
    return x;
  }

 private:
  // A categorical kernel keeps its observation's value with this probability, else any value
  // (Optuna adds 1/n of prior mass per category to the observed one-hot).
  double category_keep(std::size_t categories) const {
    const double prior = 1.0 / static_cast<double>(std::max<std::size_t>(points_.size(), 1));
    return 1.0 / (1.0 + prior * static_cast<double>(categories));
  }

  double log_kernel(std::size_t d, std::size_t component, double x) const {
    const Dimension& dim = space_[d];
    const bool prior = component == points_.size();
    if (categorical(dim)) {
      const double k = static_cast<double>(dim.values.size());
      if (prior) return -std::log(k);
      const double keep = category_keep(dim.values.size());
      return std::log((x == points_[component][d] ? keep : 0.0) + (1.0 - keep) / k);
    }
    const double mean = prior ? 0.5 : points_[component][d];
    const double sigma = prior ? 1.0 : sigma_;
    const double mass = normal_cdf((1 - mean) / sigma) - normal_cdf(-mean / sigma);
    return log_normal_pdf((x - mean) / sigma) - std::log(sigma) - std::log(mass);
  }

  const std::vector<Dimension>& space_;
  std::vector<Point> points_;
  double sigma_ = 1;
  std::vector<double> weights_;  // log, normalized; the prior's last
};

Point propose_tpe(const std::vector<Dimension>& space, const std::vector<Observation>& history, Random& random) {
  const std::size_t n = history.size();
  const std::size_t good_count = std::min<std::size_t>((n + 9) / 10, 25);
  std::vector<std::size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  // Best first; ties by age, so the split is a function of the history alone.
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return history[a].value > history[b].value; });
  std::vector<bool> good(n, false);
  for (std::size_t i = 0; i < good_count; ++i) good[order[i]] = true;
  std::vector<Point> good_points, bad_points;  // oldest first, for the weights
  for (std::size_t i = 0; i < n; ++i) (good[i] ? good_points : bad_points).push_back(history[i].point);
  const Parzen l(space, good_points), g(space, bad_points);
  Point best;
  double best_score = -kInf;
  for (int candidate = 0; candidate < 24; ++candidate) {
    Point x = l.sample(random);
    const double score = l.log_density(x) - g.log_density(x);
    if (score > best_score) best_score = score, best = std::move(x);
  }
  return best;
}

// ---- GP --------------------------------------------------------------------------------------

struct Hyper {
  std::vector<double> length;  // per dimension
  double noise = 1e-2;         // of the standardized values
};

double matern52(const std::vector<Dimension>& space, const Hyper& h, const Point& a, const Point& b) {
  double r2 = 0;
  for (std::size_t d = 0; d < space.size(); ++d) {
    const double diff = categorical(space[d]) ? (a[d] == b[d] ? 0.0 : 1.0) : a[d] - b[d];
    r2 += diff * diff / (h.length[d] * h.length[d]);
  }
  const double r = std::sqrt(5.0 * r2);
  return (1 + r + r * r / 3) * std::exp(-r);
}

// The lower Cholesky factor of a symmetric positive definite matrix (row-major n×n); false when
// it is not positive definite.
bool cholesky(std::vector<double>& a, std::size_t n) {
  for (std::size_t j = 0; j < n; ++j) {
    double diagonal = a[j * n + j];
    for (std::size_t k = 0; k < j; ++k) diagonal -= a[j * n + k] * a[j * n + k];
    if (diagonal <= 0) return false;
    const double root = std::sqrt(diagonal);
    a[j * n + j] = root;
    for (std::size_t i = j + 1; i < n; ++i) {
      double sum = a[i * n + j];
      for (std::size_t k = 0; k < j; ++k) sum -= a[i * n + k] * a[j * n + k];
      a[i * n + j] = sum / root;
    }
    for (std::size_t k = j + 1; k < n; ++k) a[j * n + k] = 0;
  }
  return true;
}

// Solves L x = b in place (forward substitution).
void solve_lower(const std::vector<double>& l, std::size_t n, std::vector<double>& b) {
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t k = 0; k < i; ++k) b[i] -= l[i * n + k] * b[k];
    b[i] /= l[i * n + i];
  }
}

struct Posterior {
  const std::vector<Dimension>* space;
  const std::vector<Observation>* history;
  Hyper hyper;
  std::vector<double> factor;  // L of K + noise·I
  std::vector<double> alpha;   // L⁻¹ y
  double log_likelihood = -kInf;

  Posterior(const std::vector<Dimension>& s, const std::vector<Observation>& h, const std::vector<double>& y, Hyper hp)
      : space(&s), history(&h), hyper(std::move(hp)) {
    const std::size_t n = h.size();
    factor.assign(n * n, 0.0);
    for (std::size_t i = 0; i < n; ++i)
      for (std::size_t j = 0; j <= i; ++j)
        factor[i * n + j] = factor[j * n + i] =
            matern52(s, hyper, h[i].point, h[j].point) + (i == j ? hyper.noise + 1e-8 : 0.0);
    if (!cholesky(factor, n)) return;
    alpha = y;
    solve_lower(factor, n, alpha);
    log_likelihood = 0;
    for (std::size_t i = 0; i < n; ++i) log_likelihood -= 0.5 * alpha[i] * alpha[i] + std::log(factor[i * n + i]);
  }

  // Expected improvement over `best` (standardized) at x.
  double expected_improvement(const Point& x, double best) const {
    const std::size_t n = history->size();
    std::vector<double> k(n);
    for (std::size_t i = 0; i < n; ++i) k[i] = matern52(*space, hyper, x, (*history)[i].point);
    std::vector<double> v = k;
    solve_lower(factor, n, v);
    double mean = 0, explained = 0;
    for (std::size_t i = 0; i < n; ++i) mean += v[i] * alpha[i], explained += v[i] * v[i];
    const double sd = std::sqrt(std::max(1.0 - explained, 1e-12));
    const double z = (mean - best) / sd;
    return sd * (z * normal_cdf(z) + std::exp(log_normal_pdf(z)));
  }
};

Point perturb(const std::vector<Dimension>& space, const Point& x, double scale, Random& random) {
  Point y = x;
  for (std::size_t d = 0; d < space.size(); ++d) {
    if (categorical(space[d])) {
      if (random.uniform() < scale) y[d] = static_cast<double>(random.index(space[d].values.size()));
    } else {
      y[d] = std::clamp(x[d] + scale * random.normal(), 0.0, 1.0);
    }
  }
  return y;
}

Point propose_gp(const std::vector<Dimension>& space, const std::vector<Observation>& history, Random& random) {
  const std::size_t n = history.size();
  double mean = 0, variance = 0;
  for (const Observation& o : history) mean += o.value / static_cast<double>(n);
  for (const Observation& o : history) variance += (o.value - mean) * (o.value - mean) / static_cast<double>(n);
  const double scale = variance > 0 ? std::sqrt(variance) : 1.0;
  std::vector<double> y;
  for (const Observation& o : history) y.push_back((o.value - mean) / scale);

  // Type-II maximum likelihood over a grid, one hyperparameter at a time, twice around.
  static const std::vector<double> lengths = {0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 3.2};
  static const std::vector<double> noises = {1e-4, 1e-3, 1e-2, 0.05, 0.2, 0.5};
  Hyper hyper{std::vector<double>(space.size(), 0.4), 1e-2};
  Posterior fitted(space, history, y, hyper);
  for (int pass = 0; pass < 2; ++pass)
    for (std::size_t h = 0; h <= space.size(); ++h)
      for (const double value : h == space.size() ? noises : lengths) {
        Hyper trial = fitted.hyper;
        (h == space.size() ? trial.noise : trial.length[h]) = value;
        Posterior candidate(space, history, y, trial);
        if (candidate.log_likelihood > fitted.log_likelihood + 1e-9) fitted = std::move(candidate);
      }
  if (!std::isfinite(fitted.log_likelihood)) return random_point(space, random);

  const double best = *std::max_element(y.begin(), y.end());
  std::vector<std::pair<double, Point>> scored;
  const auto score = [&](Point x) { scored.emplace_back(fitted.expected_improvement(x, best), std::move(x)); };
  for (int i = 0; i < 1024; ++i) score(random_point(space, random));
  std::vector<std::size_t> by_value(n);
  std::iota(by_value.begin(), by_value.end(), 0);
  std::stable_sort(by_value.begin(), by_value.end(), [&](std::size_t a, std::size_t b) { return y[a] > y[b]; });
  for (std::size_t i = 0; i < std::min<std::size_t>(5, n); ++i)
    for (int k = 0; k < 64; ++k) score(perturb(space, history[by_value[i]].point, 0.05, random));
  // Local refinement around the best candidates, at shrinking scales.
  for (const double step : {0.05, 0.02, 0.005}) {
    std::partial_sort(scored.begin(), scored.begin() + 5, scored.end(),
                      [](const auto& a, const auto& b) { return a.first > b.first; });
    std::vector<Point> seeds;
    for (std::size_t i = 0; i < 5; ++i) seeds.push_back(scored[i].second);
    for (const Point& s : seeds)
      for (int k = 0; k < 32; ++k) score(perturb(space, s, step, random));
  }
  return std::max_element(scored.begin(), scored.end(), [](const auto& a, const auto& b) { return a.first < b.first; })->second;
}

}  // namespace

std::string Dimension::value_text(double u) const {
  if (kind == Kind::categorical) return values.at(static_cast<std::size_t>(u));
  u = std::clamp(u, 0.0, 1.0);
  switch (kind) {
    case Kind::real:
      return fmt::format("{:.4g}", log ? std::exp(std::log(low) + u * (std::log(high) - std::log(low))) : low + u * (high - low));
    case Kind::integer: {
      const double v = log ? std::exp(std::log(low) + u * (std::log(high + 1) - std::log(low))) : low + u * (high - low + 1);
      return fmt::format("{}", static_cast<std::int64_t>(std::min(std::floor(v), high)));
    }
    case Kind::ordinal:
      return values[std::min(values.size() - 1, static_cast<std::size_t>(u * static_cast<double>(values.size())))];
    case Kind::categorical:
      break;
  }
  return "";
}

double Dimension::coordinate(const std::string& text) const {
  if (kind == Kind::ordinal || kind == Kind::categorical) {
    const auto found = std::find(values.begin(), values.end(), text);
    if (found == values.end())
      throw ConfigError(fmt::format("'{}={}' is not one of the searched values ({})", key, text, join(values, ", ")));
    const auto i = static_cast<double>(found - values.begin());
    return kind == Kind::categorical ? i : (i + 0.5) / static_cast<double>(values.size());
  }
  double v = 0;
  try {
    v = std::stod(text);
  } catch (const std::exception&) {
    throw ConfigError(fmt::format("'{}={}' is not a number", key, text));
  }
  const double slack = (high - low) * 1e-3;
  if (!(v >= low - slack && v <= high + slack))
    throw ConfigError(fmt::format("'{}={}' lies outside the searched interval [{}, {}]", key, text, low, high));
  if (kind == Kind::integer)
    return std::clamp(log ? (std::log(v + 0.5) - std::log(low)) / (std::log(high + 1) - std::log(low))
                          : (v - low + 0.5) / (high - low + 1),
                      0.0, 1.0);
  return std::clamp(log ? (std::log(v) - std::log(low)) / (std::log(high) - std::log(low)) : (v - low) / (high - low), 0.0, 1.0);
}

Dimension dimension_of(const config::Override& o, const std::vector<std::string>& group_options) {
  if (!o.is_sweep())
    throw ConfigError(fmt::format("'{}': a searched parameter needs a range of values, e.g. interval(1e-4, 1e-2), "
                                  "range(1, 5) or a,b,c",
                                  o.text));
  const config::Sweep& sweep = std::get<config::Sweep>(*o.value);
  Dimension d;
  d.key = o.key;
  d.log = has_tag(sweep, "log");
  if (sweep.interval) {
    std::tie(d.low, d.high) = *sweep.interval;
    d.kind = has_tag(sweep, "int") ? Dimension::Kind::integer : Dimension::Kind::real;
    if (d.kind == Dimension::Kind::integer) d.low = std::ceil(d.low), d.high = std::floor(d.high);
    if (!(d.high > d.low)) throw ConfigError(fmt::format("'{}': the interval is empty", o.text));
    if (d.log && d.low <= 0) throw ConfigError(fmt::format("'{}': tag(log) needs an interval of positive numbers", o.text));
    return d;
  }
  if (sweep.glob && group_options.empty())
    throw ConfigError(fmt::format("'{}': glob() selects config group options; search a config group with it", o.text));
  const std::vector<config::Node> values = config::sweep_values(sweep, group_options, o.text);
  if (values.size() < 2) throw ConfigError(fmt::format("'{}': a searched parameter needs at least two values", o.text));
  bool numbers = true;
  for (const config::Node& v : values) {
    numbers = numbers && (std::holds_alternative<std::int64_t>(v.value) || std::holds_alternative<double>(v.value));
    d.values.push_back(config::override_value_text(v));
  }
  if (d.log) throw ConfigError(fmt::format("'{}': tag(log) applies to interval(); list the values instead", o.text));
  d.kind = numbers ? Dimension::Kind::ordinal : Dimension::Kind::categorical;
  return d;
}

Point propose(const std::vector<Dimension>& space, const std::vector<Observation>& history, const SamplerSettings& settings,
              std::uint64_t stream) {
  Random random(settings.seed, stream);
  if (settings.kind == "random" || static_cast<std::int64_t>(history.size()) < std::max<std::int64_t>(settings.startup, 2))
    return random_point(space, random);
  if (settings.kind == "tpe") return propose_tpe(space, history, random);
  if (settings.kind == "gp") return propose_gp(space, history, random);
  throw ConfigError(fmt::format("unknown sampler '{}' (known: random, tpe, gp)", settings.kind));
}

}  // namespace prefopt::sweep
