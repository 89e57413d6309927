// The stage cache: each pipeline stage (sft, preferences, reward models) is a pure function of its
// config subtree, its inputs and its seed, so its output is stored under a hash of those and
// reused by any trial that needs the same stage. Folders are shared safely by concurrent
// processes: a file lock per key makes a second process wait instead of computing the stage
// twice, and outputs are written to a temporary folder renamed into place, so a crash never
// leaves a half-written entry behind.
#pragma once

#include <filesystem>
#include <functional>
#include <string>

namespace prefopt {

// A stable 64-bit FNV-1a hash as 16 hex digits: the same on every machine and run.
std::string stable_hash(std::string_view text);

class StageCache {
 public:
  explicit StageCache(std::filesystem::path root) : root_(std::move(root)) {}

  // The folder holding `stage` for `key`, computing it with `compute(folder)` if missing.
  // `reused` says which happened.
  std::filesystem::path get(const std::string& stage, const std::string& key,
                            const std::function<void(const std::filesystem::path&)>& compute, bool& reused) const;

 private:
  std::filesystem::path root_;
};

}  // namespace prefopt
