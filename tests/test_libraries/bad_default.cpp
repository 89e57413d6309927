// A library that declares a parameter whose default violates its own range.
#include "test_ensemble.h"

namespace {
void register_bad_default(prefopt::Registrar& registrar) {
  registrar.add<prefopt::test::ConstantEnsemble>(
      {.name = "bad_default",
       .version = "1.0.0",
       .description = "declares p = 0.9 with p <= 0.5",
       .params = {prefopt::ParamSpec::real("p", 0.9, "a probability below one half").max(0.5)}});
}
}  // namespace

PREFOPT_PLUGIN_LIBRARY("bad-default", register_bad_default)
