// Small file helpers shared by the pipeline and the sweep launcher.
#pragma once

#include <filesystem>
#include <string>

#include "prefopt/version.h"

namespace prefopt {

// Writes `text` to `file` through a temporary file beside it and a rename: a reader (or a process
// killed mid-write) sees the old content or the new one, never a part.
PREFOPT_API void write_atomically(const std::filesystem::path& file, const std::string& text);

}  // namespace prefopt
