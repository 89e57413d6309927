// The ensemble mean (Coste et al. 2023): averages out the members' independent errors but
// follows a shared error, so it still overoptimizes under heavy label noise.
#include <prefopt/ensemble.h>

namespace {

class MeanEnsemble final : public prefopt::Ensemble {
 public:
  explicit MeanEnsemble(const prefopt::Params&) {}

 protected:
  at::Tensor do_combine(const at::Tensor& member_scores) const override {
    return member_scores.mean(0);
  }
};

void register_plugins(prefopt::Registrar& registrar) {
  registrar.add<MeanEnsemble>({.name = "mean",
                               .version = "1.0.0",
                               .description = "mean of the reward models' scores"});
}

}  // namespace

PREFOPT_PLUGIN_LIBRARY("prefopt-ensemble-mean", register_plugins)
