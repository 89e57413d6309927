// A healthy library whose plugin fails at run time, to test that failures come back as
// PluginErrors naming the plugin: its constructor throws when `fail_on_create` is set, and
// combine() always throws.
#include <stdexcept>

#include "test_ensemble.h"

namespace {

class FaultyEnsemble final : public prefopt::Ensemble {
 public:
  explicit FaultyEnsemble(const prefopt::Params& params) {
    if (params.get<bool>("fail_on_create")) throw std::runtime_error("cannot open weights file");
  }

 protected:
  at::Tensor do_combine(const at::Tensor&) const override {
    throw std::runtime_error("member scores contain NaN");
  }
};

class WrongShapeEnsemble final : public prefopt::Ensemble {
 public:
  explicit WrongShapeEnsemble(const prefopt::Params&) {}

 protected:
  at::Tensor do_combine(const at::Tensor& scores) const override { return scores; }
};

void register_plugins(prefopt::Registrar& registrar) {
  registrar.add<FaultyEnsemble>(
      {.name = "faulty",
       .version = "1.0.0",
       .description = "fails on purpose",
       .params = {prefopt::ParamSpec::boolean("fail_on_create", false, "throw from the constructor")}});
  registrar.add<WrongShapeEnsemble>(
      {.name = "wrong_shape", .version = "1.0.0", .description = "returns [members, batch]"});
}

}  // namespace

PREFOPT_PLUGIN_LIBRARY("faulty", register_plugins)
