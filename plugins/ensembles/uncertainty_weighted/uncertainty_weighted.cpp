// Uncertainty-weighted optimization, UWO (Coste et al. 2023): the mean minus lambda times the
// members' variance (population variance, not the standard deviation), penalizing responses the
// members disagree on.
#include <ATen/ATen.h>
#include <prefopt/ensemble.h>

namespace {

class UncertaintyWeightedEnsemble final : public prefopt::Ensemble {
 public:
  explicit UncertaintyWeightedEnsemble(const prefopt::Params& params)
      : lambda_(params.get<double>("lambda")) {}

 protected:
  at::Tensor do_combine(const at::Tensor& member_scores) const override {
    const at::Tensor mean = member_scores.mean(0);
    const at::Tensor variance = (member_scores - mean).pow(2).mean(0);
    return mean - lambda_ * variance;
  }

 private:
  double lambda_;
};

void register_plugins(prefopt::Registrar& registrar) {
  registrar.add<UncertaintyWeightedEnsemble>(
      {.name = "uncertainty_weighted",
       .version = "1.0.0",
       .description = "mean minus lambda times the variance of the scores (UWO)",
       .params = {prefopt::ParamSpec::real(
                      "lambda", 0.5,
                      "weight of the variance penalty; Coste et al. use 0.5 for best-of-n and 0.1 "
                      "for PPO")
                      .min(0.0)}});
}

}  // namespace

PREFOPT_PLUGIN_LIBRARY("prefopt-ensemble-uncertainty-weighted", register_plugins)
