// Worst-case optimization, WCO (Coste et al. 2023): the policy only gains where every member
// agrees the response is better, which removes most reward hacking under label noise.
#include <prefopt/ensemble.h>

namespace {

class WorstCaseEnsemble final : public prefopt::Ensemble {
 public:
  explicit WorstCaseEnsemble(const prefopt::Params&) {}

 protected:
  at::Tensor do_combine(const at::Tensor& member_scores) const override {
    return member_scores.amin(0);
  }
};

void register_plugins(prefopt::Registrar& registrar) {
  registrar.add<WorstCaseEnsemble>({.name = "worst_case",
                                    .version = "1.0.0",
                                    .description = "minimum of the reward models' scores (WCO)"});
}

}  // namespace

PREFOPT_PLUGIN_LIBRARY("prefopt-ensemble-worst-case", register_plugins)
