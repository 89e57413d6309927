#include "prefopt/ensemble.h"

#include <fmt/format.h>

namespace prefopt {

Ensemble::~Ensemble() = default;

at::Tensor Ensemble::combine(const at::Tensor& member_scores) const {
  if (member_scores.dim() != 2 || member_scores.size(0) < 1)
    throw std::invalid_argument(fmt::format(
        "{}: member scores must be [members >= 1, batch], got {} dimensions", display_name(),
        member_scores.dim()));
  at::Tensor combined = guarded([&] { return do_combine(member_scores); });
  if (combined.dim() != 1 || combined.size(0) != member_scores.size(1))
    throw PluginError(fmt::format("{} returned a tensor of {} dimensions; expected [batch = {}]",
                                  display_name(), combined.dim(), member_scores.size(1)));
  return combined;
}

}  // namespace prefopt
