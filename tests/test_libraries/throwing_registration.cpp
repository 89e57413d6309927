// A library whose registration callback registers one plugin and then throws: nothing of it may
// be registered.
#include "test_ensemble.h"

namespace {
void register_then_throw(prefopt::Registrar& registrar) {
  registrar.add<prefopt::test::ConstantEnsemble>(
      {.name = "half_registered", .version = "1.0.0", .description = "must not be registered"});
  throw std::runtime_error("calibration table missing");
}
}  // namespace

PREFOPT_PLUGIN_LIBRARY("throwing-registration", register_then_throw)
