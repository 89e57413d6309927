// AlpacaFarm-style label noise (Dubois et al. 2023): the oracle's label, replaced with probability
// 2p by a fair coin, so a fraction p of the labels end up flipped.
#include <ATen/ATen.h>
#include <prefopt/annotator.h>

namespace {

class FlipAnnotator final : public prefopt::Annotator {
 public:
  explicit FlipAnnotator(const prefopt::Params& params) : rate_(params.get<double>("rate")) {}

 protected:
  prefopt::Labels do_label(const prefopt::PairsToLabel& pairs, at::Generator& generator) const override {
    const at::Tensor a = pairs.gold_a(), b = pairs.gold_b();
    const std::int64_t n = a.size(0);
    const at::Tensor coin = at::rand({n}, generator).lt(0.5);
    const at::Tensor oracle = at::where(a.eq(b), coin, a.gt(b));
    const at::Tensor replaced = at::rand({n}, generator).lt(2.0 * rate_);
    const at::Tensor second_coin = at::rand({n}, generator).lt(0.5);
    return prefopt::single_votes(at::where(replaced, second_coin, oracle), "flip");
  }

 private:
  double rate_;
};

void register_plugins(prefopt::Registrar& registrar) {
  registrar.add<FlipAnnotator>(
      {.name = "flip",
       .version = "1.0.0",
       .description = "oracle labels, a fraction `rate` flipped (AlpacaFarm: 2*rate replaced by a coin)",
       .params = {prefopt::ParamSpec::real("rate", 0.25, "expected fraction of flipped labels").min(0.0).max(0.5)}});
}

}  // namespace

PREFOPT_PLUGIN_LIBRARY("prefopt-annotator-flip", register_plugins)
