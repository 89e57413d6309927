#include "pipeline/stage_cache.h"

#include <unistd.h>

#include <fmt/format.h>

#include <random>
#include <stdexcept>

#include "files.h"
#include "text.h"

namespace prefopt {
namespace fs = std::filesystem;

std::string stable_hash(std::string_view text) { return fmt::format("{:016x}", fnv1a(text)); }

namespace {
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
  const FileLock lock = FileLock::acquire(stage_dir / (key + ".lock"));
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
