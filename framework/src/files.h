// Small file helpers shared by the pipeline, the sweep launchers and the trial runner.
#pragma once

#include <filesystem>
#include <string>

#include "prefopt/version.h"

namespace prefopt {

// Writes `text` to `file` through a temporary file beside it and a rename: a reader (or a process
// killed mid-write) sees the old content or the new one, never a part.
PREFOPT_API void write_atomically(const std::filesystem::path& file, const std::string& text);

// The last `lines` lines of a text file ("" when it cannot be read): a failed trial's log tail.
PREFOPT_API std::string last_lines(const std::filesystem::path& file, std::size_t lines);

// Seconds since the Unix epoch, for timestamps in status and checkpoint files.
PREFOPT_API double unix_time();

}  // namespace prefopt
