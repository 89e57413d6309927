// The samplers of search sweeps: where to look next in a hyperparameter space, given what the
// configurations tried so far scored.
//
// Every sampler works in the unit cube: a real or integer parameter's coordinate u ∈ [0, 1] maps
// to [low, high] (log-scaled with tag(log)), an ordered list's to its index (u · n, floored), and
// an unordered list (categorical) keeps its index. A proposal is a pure function of the space, the
// history, the sampler's settings and a stream number, so a search re-derives every proposal from
// its recorded trials (resume, Slurm) and a seed reproduces a search.
//
//   random  uniform in the cube.
//   tpe     the tree-structured Parzen estimator (Bergstra et al. 2011), multivariate (Falkner et
//           al. 2018): the best γ(n) = min(⌈n/10⌉, 25) observations and the rest each become a
//           mixture of truncated Gaussians (categorical kernels for lists) plus a flat prior; of 24
//           candidates drawn from the good mixture, the one maximizing l(x)/g(x) is proposed.
//   gp      a Gaussian process (Matérn 5/2, one length scale per dimension, Hamming distance for
//           categoricals) on the standardized values, its length scales and noise chosen by
//           maximizing the marginal likelihood over a grid, coordinate by coordinate; proposes the
//           maximizer of expected improvement over 1,024 random candidates refined around the best.
//
// tpe and gp draw their first `startup` configurations at random.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "config/override.h"

namespace prefopt::sweep {

struct Dimension {
  enum class Kind { real, integer, ordinal, categorical };
  std::string key;
  Kind kind = Kind::real;
  double low = 0;  // real, integer
  double high = 1;
  bool log = false;
  std::vector<std::string> values;  // ordinal, categorical: each value as override text

  // The override value text of coordinate `u` (an index for categorical).
  std::string value_text(double u) const;
  // The coordinate of a value text this dimension wrote; ConfigError for a value outside it.
  double coordinate(const std::string& text) const;
};

// The dimension of `key=SWEEP`: interval() is real (tag(log): log-scaled; tag(int): integer),
// a list of numbers (a,b / choice() / range()) ordinal, any other list categorical. ConfigError
// for a fixed value, a glob, or a log scale over non-positive numbers.
Dimension dimension_of(const config::Override& override_, const std::vector<std::string>& group_options);

using Point = std::vector<double>;  // one coordinate per dimension

struct Observation {
  Point point;
  double value;  // maximized
};

struct SamplerSettings {
  std::string kind = "tpe";   // random, tpe, gp
  std::int64_t startup = 8;   // random proposals first (tpe, gp)
  std::uint64_t seed = 0;
};

inline const std::vector<std::string> kSamplers = {"random", "tpe", "gp"};

// The next point to try. `stream` tells apart the proposals made from one history (each
// configuration of a study, each study of a sweep). Deterministic in all of its arguments.
Point propose(const std::vector<Dimension>& space, const std::vector<Observation>& history,
              const SamplerSettings& settings, std::uint64_t stream);

}  // namespace prefopt::sweep
