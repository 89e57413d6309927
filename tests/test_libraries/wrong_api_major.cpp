// A plugin library built for a future, incompatible SDK: API major + 1.
#include "test_ensemble.h"

PREFOPT_TEST_DESCRIPTOR(PREFOPT_API_MAJOR + 1, PREFOPT_API_MINOR, PREFOPT_TOOLCHAIN_FINGERPRINT)
