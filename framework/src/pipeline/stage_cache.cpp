#include "pipeline/stage_cache.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <fmt/format.h>

#include <random>
#include <stdexcept>

#include "text.h"

namespace prefopt {
namespace fs = std::filesystem;

std::string stable_hash(std::string_view text) { return fmt::format("{:016x}", fnv1a(text)); }

namespace {
// An exclusive flock held for the object's lifetime.
class FileLock {
 public:
  explicit FileLock(const fs::path& file) : fd_(::open(file.c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0644)) {
    if (fd_ < 0 || ::flock(fd_, LOCK_EX) != 0)
      throw std::runtime_error(fmt::format("cannot lock the stage cache entry {}", file.string()));
  }
  ~FileLock() {
    ::flock(fd_, LOCK_UN);
    ::close(fd_);
  }
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;

 private:
  int fd_;
};

fs::path fresh_folder(const fs::path& parent, const std::string& prefix) {
  std::random_device entropy;
  fs::path folder = parent / fmt::format("{}.tmp-{}-{:08x}", prefix, ::getpid(), entropy());
  fs::create_directories(folder);
  return folder;
}
}  // namespace

fs::path StageCache::get(const std::string& stage, const std::string& key,
                         const std::function<void(const fs::path&)>& compute, bool& reused) const {
  const fs::path stage_dir = root_ / stage;
  fs::create_directories(stage_dir);
  const fs::path final_dir = stage_dir / key;
  const FileLock lock(stage_dir / (key + ".lock"));
  if (fs::is_directory(final_dir)) {
    reused = true;
    return final_dir;
  }
  const fs::path temporary = fresh_folder(stage_dir, key);
  try {
    compute(temporary);
    fs::rename(temporary, final_dir);  // atomic: readers see all of it or nothing
  } catch (...) {
    std::error_code ignored;
    fs::remove_all(temporary, ignored);
    throw;
  }
  reused = false;
  return final_dir;
}

}  // namespace prefopt
