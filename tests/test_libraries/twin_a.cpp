// One of two libraries that both claim ensemble 'twin'.
#include "test_ensemble.h"

namespace {
void register_twin(prefopt::Registrar& registrar) {
  registrar.add<prefopt::test::ConstantEnsemble>(
      {.name = "twin", .version = "1.0.0", .description = "twin a"});
}
}  // namespace

PREFOPT_PLUGIN_LIBRARY("twin-a", register_twin)
