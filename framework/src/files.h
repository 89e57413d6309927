// Small file helpers shared by the pipeline, the sweep launchers and the trial runner.
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>

namespace prefopt {

// Writes `text` to `file` through a temporary file beside it and a rename: a reader (or a process
// killed mid-write) sees the old content or the new one, never a part.
void write_atomically(const std::filesystem::path& file, const std::string& text);

// The FNV-1a hash of a file's bytes as 16 hex digits (text.h's fnv1a, read in 1 MiB pieces; 1.3 s
// per GB): what stage-cache entries and checkpoints record to catch a truncated or flipped file.
std::string file_checksum(const std::filesystem::path& file);

// The last `lines` lines of a text file ("" when it cannot be read): a failed trial's log tail.
std::string last_lines(const std::filesystem::path& file, std::size_t lines);

// The JSON in `file`, or null when it is missing or unreadable (cut short by a crash, or being
// replaced right now: read it again later).
nlohmann::json read_json_or_null(const std::filesystem::path& file);

// `value`, or null where it is NaN or infinite (JSON has neither).
nlohmann::json finite_or_null(double value);

// Seconds since the Unix epoch, for timestamps in status and checkpoint files.
double unix_time();

// An exclusive flock on a file (created when missing), held until the object is destroyed or
// moved from. The one lock of prefopt: stage cache entries, sweep and trial folders, GPU slots.
class FileLock {
 public:
  struct Options {
    bool wait = true;          // false: give up at once when another process holds it
    bool inherited = false;    // true: children started with fork+exec keep holding it
    unsigned mode = 0644;      // of a file it creates (fchmod'ed, whatever the umask)
  };
  // The lock, or nullopt when `wait` is false and another process holds it. Throws
  // runtime_error naming the file when it cannot be opened or locked (a filesystem without flock).
  static std::optional<FileLock> acquire(const std::filesystem::path& file, const Options& options);
  static FileLock acquire(const std::filesystem::path& file) { return *acquire(file, Options{}); }

  FileLock(FileLock&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  FileLock& operator=(FileLock&& other) noexcept;
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;
  ~FileLock();

 private:
  explicit FileLock(int fd) : fd_(fd) {}
  int fd_;
};

}  // namespace prefopt
