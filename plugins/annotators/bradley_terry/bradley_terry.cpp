// A Boltzmann-rational annotator: prefers a with probability sigmoid((gold_a - gold_b) / T), the
// Bradley-Terry model that reward models assume.
#include <ATen/ATen.h>
#include <prefopt/annotator.h>

namespace {

class BradleyTerryAnnotator final : public prefopt::Annotator {
 public:
  explicit BradleyTerryAnnotator(const prefopt::Params& params) : temperature_(params.get<double>("temperature")) {}

 protected:
  prefopt::Labels do_label(const prefopt::PairsToLabel& pairs, at::Generator& generator) const override {
    const at::Tensor p = ((pairs.gold_a() - pairs.gold_b()) / temperature_).sigmoid();
    return prefopt::single_votes(at::rand(p.sizes(), generator).lt(p), "bradley_terry");
  }

 private:
  double temperature_;
};

void register_plugins(prefopt::Registrar& registrar) {
  registrar.add<BradleyTerryAnnotator>(
      {.name = "bradley_terry",
       .version = "1.0.0",
       .description = "Boltzmann-rational: P(a) = sigmoid((gold_a - gold_b) / temperature)",
       .params = {prefopt::ParamSpec::real("temperature", 0.25, "larger is noisier; near 0 is the oracle")
                      .min(1e-6)}});
}

}  // namespace

PREFOPT_PLUGIN_LIBRARY("prefopt-annotator-bradley-terry", register_plugins)
