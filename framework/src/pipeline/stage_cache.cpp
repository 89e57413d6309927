#include "pipeline/stage_cache.h"

#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>
#include <vector>

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

// "HASH SIZE PATH" for every file under `dir`, paths relative and sorted.
void write_checksums(const fs::path& dir) {
  std::vector<fs::path> files;
  for (const auto& item : fs::recursive_directory_iterator(dir))
    if (item.is_regular_file()) files.push_back(fs::relative(item.path(), dir));
  std::sort(files.begin(), files.end());
  std::string text;
  for (const fs::path& file : files)
    text += fmt::format("{} {} {}\n", file_checksum(dir / file), fs::file_size(dir / file), file.generic_string());
  write_atomically(dir / StageCache::kChecksums, text);
}

// What is wrong with the entry in `dir`, or "" when every file matches its checksum.
std::string corruption(const fs::path& dir) {
  std::ifstream in(dir / StageCache::kChecksums);
  if (!in) return fmt::format("it has no {}", StageCache::kChecksums);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string hash, path;
    std::uintmax_t size = 0;
    if (!(fields >> hash >> size) || !std::getline(fields >> std::ws, path))
      return fmt::format("{} has a malformed line: {}", StageCache::kChecksums, line);
    const fs::path file = dir / path;
    std::error_code error;
    const std::uintmax_t actual = fs::file_size(file, error);
    if (error) return fmt::format("{} is missing", path);
    if (actual != size) return fmt::format("{} has {} bytes, {} when written", path, actual, size);
    if (file_checksum(file) != hash) return fmt::format("{} changed since it was written (checksum)", path);
  }
  return "";
}

}  // namespace

StageEntry StageCache::get(const std::string& stage, const std::string& key,
                           const std::function<void(const fs::path&)>& compute) const {
  const fs::path stage_dir = root_ / stage;
  fs::create_directories(stage_dir);
  StageEntry entry;
  entry.dir = stage_dir / key;
  const FileLock lock = FileLock::acquire(stage_dir / (key + ".lock"));
  // Temporary folders are made under this lock, so any of this key's that exist now belong to a
  // process that died mid-computation (kill -9, a lost node): garbage, never an entry.
  for (const auto& item : fs::directory_iterator(stage_dir)) {
    const std::string name = item.path().filename().string();
    std::error_code ignored;  // one that cannot go is only garbage, never a reason to fail
    if (name.starts_with(key + ".tmp-") || name.starts_with(key + ".corrupt.tmp-")) fs::remove_all(item.path(), ignored);
  }
  if (fs::is_directory(entry.dir)) {
    entry.corruption = corruption(entry.dir);
    if (entry.corruption.empty()) {
      entry.reused = true;
      return entry;
    }
    // Moved aside first: a removal cut short must not leave a half-deleted entry under the key.
    const fs::path condemned = fresh_folder(stage_dir, key + ".corrupt");
    fs::remove(condemned);
    fs::rename(entry.dir, condemned);
    fs::remove_all(condemned);
  }
  const fs::path temporary = fresh_folder(stage_dir, key);
  try {
    compute(temporary);
    write_checksums(temporary);
    fs::rename(temporary, entry.dir);  // atomic: readers see all of it or nothing
  } catch (...) {
    std::error_code ignored;
    fs::remove_all(temporary, ignored);
    throw;
  }
  return entry;
}

}  // namespace prefopt
