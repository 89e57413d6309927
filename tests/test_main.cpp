#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <cstdlib>

#include "threads.h"

int main(int argc, char* argv[]) {
  prefopt::use_best_openblas_kernels(argv);  // as the prefopt binary does
  // The tests name the plugin folders they load; a user's own never leaks in.
  ::unsetenv("PREFOPT_PLUGIN_PATH");
  // The test process computes on its share of the cores, as a trial would: under ctest one core
  // (tests/CMakeLists.txt), run by hand every core.
  prefopt::apply_threads(prefopt::plan_threads(0));
  return Catch::Session().run(argc, argv);
}
