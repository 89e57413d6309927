// Out-of-line destructors: the error types' vtables and typeinfo live in libprefopt only.
#include "prefopt/error.h"

namespace prefopt {

Error::~Error() = default;
ConfigError::~ConfigError() = default;
PluginError::~PluginError() = default;
Stopped::~Stopped() = default;
StorageError::~StorageError() = default;

}  // namespace prefopt
