// A plugin library built against a newer SDK minor version than the host's.
#include "test_ensemble.h"

PREFOPT_TEST_DESCRIPTOR(PREFOPT_API_MAJOR, PREFOPT_API_MINOR + 1, PREFOPT_TOOLCHAIN_FINGERPRINT)
