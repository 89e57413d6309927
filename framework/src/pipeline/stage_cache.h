// The stage cache: each pipeline stage (sft, preferences, reward models) is a pure function of its
// config subtree, its inputs and its seed, so its output is stored under a hash of those and
// reused by any trial that needs the same stage. Folders are shared safely by concurrent
// processes: a file lock per key makes a second process wait instead of computing the stage
// twice, and outputs are written to a temporary folder renamed into place, so a crash never
// leaves a half-written entry behind.
//
// Each entry carries checksums.txt, written last: every file's FNV-1a hash, size and path. A
// reused entry is checked against it first, and one that fails (a file truncated, changed by a
// single bit, or missing; no checksums at all) is removed and computed again, saying why: a disk
// error or a stray edit costs a recomputation, never a trial built on damaged weights.
#pragma once

#include <filesystem>
#include <functional>
#include <string>

namespace prefopt {

// A stable 64-bit FNV-1a hash as 16 hex digits: the same on every machine and run.
std::string stable_hash(std::string_view text);

struct StageEntry {
  std::filesystem::path dir;
  bool reused = false;
  std::string corruption;  // non-empty: an entry was found but failed its checksums, and how
};

class StageCache {
 public:
  static constexpr const char* kChecksums = "checksums.txt";

  explicit StageCache(std::filesystem::path root) : root_(std::move(root)) {}

  // The folder holding `stage` for `key`, computing it with `compute(folder)` if missing or
  // corrupt.
  StageEntry get(const std::string& stage, const std::string& key,
                 const std::function<void(const std::filesystem::path&)>& compute) const;

 private:
  std::filesystem::path root_;
};

}  // namespace prefopt
