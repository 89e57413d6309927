// Ensemble plugins combine the scores of several reward models into the one proxy reward the
// policy-optimization algorithms see (Coste et al. 2023: mean, worst case, uncertainty-weighted).
#pragma once

#include <ATen/core/Tensor.h>

#include "prefopt/plugin.h"

namespace prefopt {

class PREFOPT_API Ensemble : public Plugin {
 public:
  static constexpr PluginKind kKind = PluginKind::ensemble;
  ~Ensemble() override;
  PluginKind kind() const final { return kKind; }

  // `member_scores` is [members, batch] (members >= 1); returns the combined score, [batch].
  at::Tensor combine(const at::Tensor& member_scores) const;

 protected:
  virtual at::Tensor do_combine(const at::Tensor& member_scores) const = 0;
};

}  // namespace prefopt
