// The noiseless annotator: prefers the response with the higher gold reward (a fair coin on ties).
#include <ATen/ATen.h>
#include <prefopt/annotator.h>

namespace {

class OracleAnnotator final : public prefopt::Annotator {
 public:
  explicit OracleAnnotator(const prefopt::Params&) {}

 protected:
  prefopt::Labels do_label(const prefopt::PairsToLabel& pairs, at::Generator& generator) const override {
    const at::Tensor a = pairs.gold_a(), b = pairs.gold_b();
    const at::Tensor coin = at::rand({a.size(0)}, generator).lt(0.5);
    return prefopt::single_votes(at::where(a.eq(b), coin, a.gt(b)), "oracle");
  }
};

void register_plugins(prefopt::Registrar& registrar) {
  registrar.add<OracleAnnotator>({.name = "oracle",
                                  .version = "1.0.0",
                                  .description = "noiseless: prefers the higher gold reward"});
}

}  // namespace

PREFOPT_PLUGIN_LIBRARY("prefopt-annotator-oracle", register_plugins)
