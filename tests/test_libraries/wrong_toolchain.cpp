// A plugin library whose fingerprint says another compiler built it.
#include "test_ensemble.h"

PREFOPT_TEST_DESCRIPTOR(PREFOPT_API_MAJOR, PREFOPT_API_MINOR,
                        "compiler=othercc-99;cxx11abi=1;libtorch=1.13.0;build=Release")
