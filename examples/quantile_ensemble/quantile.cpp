// An out-of-tree ensemble plugin, built against the installed prefopt SDK: the q-quantile of the
// reward models' scores. q = 0 is the worst case, q = 0.5 the median; a low quantile is a
// conservative reward that is less easily hacked than the mean, yet less pessimistic than the
// minimum when one member is an outlier.
#include <prefopt/ensemble.h>

namespace {

class QuantileEnsemble final : public prefopt::Ensemble {
 public:
  explicit QuantileEnsemble(const prefopt::Params& params)
      : q_(params.get<double>("q")), interpolation_(params.get<std::string>("interpolation")) {}

 protected:
  at::Tensor do_combine(const at::Tensor& member_scores) const override {
    return member_scores.quantile(q_, /*dim=*/0, /*keepdim=*/false, interpolation_);
  }

 private:
  double q_;
  std::string interpolation_;
};

void register_plugins(prefopt::Registrar& registrar) {
  using prefopt::ParamSpec;
  registrar.add<QuantileEnsemble>(
      {.name = "quantile",
       .version = "1.0.0",
       .description = "q-quantile of the reward models' scores (0 = worst case, 0.5 = median)",
       .params = {
           ParamSpec::real("q", 0.25, "which quantile of the members' scores").min(0.0).max(1.0),
           ParamSpec::string("interpolation", "linear",
                             "how to interpolate between two members' scores")
               .one_of({"linear", "lower", "higher", "midpoint", "nearest"}),
       }});
}

}  // namespace

PREFOPT_PLUGIN_LIBRARY("quantile-ensemble-example", register_plugins)
