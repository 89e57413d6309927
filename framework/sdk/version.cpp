#include "prefopt/version.h"

#include "build_info.h"

namespace prefopt {

const char* host_toolchain_fingerprint() { return PREFOPT_TOOLCHAIN_FINGERPRINT; }
const char* version_string() { return PREFOPT_VERSION; }

}  // namespace prefopt
