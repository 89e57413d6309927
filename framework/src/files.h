// Small file helpers shared by the pipeline, the sweep launchers and the trial runner.
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "prefopt/export.h"

namespace prefopt {

// Writes `text` to `file` through a temporary file beside it and a rename: a reader (or a process
// killed mid-write) sees the old content or the new one, never a part.
PREFOPT_API void write_atomically(const std::filesystem::path& file, const std::string& text);

// The last `lines` lines of a text file ("" when it cannot be read): a failed trial's log tail.
PREFOPT_API std::string last_lines(const std::filesystem::path& file, std::size_t lines);

// The JSON in `file`, or null when it is missing or unreadable (cut short by a crash, or being
// replaced right now: read it again later).
PREFOPT_API nlohmann::json read_json_or_null(const std::filesystem::path& file);

// Seconds since the Unix epoch, for timestamps in status and checkpoint files.
PREFOPT_API double unix_time();

}  // namespace prefopt
