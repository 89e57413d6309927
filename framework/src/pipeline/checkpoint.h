// A trial's checkpoints: RUN_DIR/checkpoint/checkpoint.json names the state file (the trainer's
// state, see TrainingState, and the evaluation rows so far) with its step, size and checksum, and
// is replaced atomically after the file is complete, so a trial killed at any moment continues
// from its last checkpoint. A state file that fails its checksum (truncated, a bit flipped) is
// discarded and the trial starts over, which is deterministic: it ends with the same metrics.
#pragma once

#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <vector>

#include "prefopt/algorithm.h"

namespace prefopt {

class FileCheckpoints final : public Checkpoints {
 public:
  // `rows` are the trial's evaluation rows: saved with each checkpoint, replaced on load, after
  // which `restored` is called (to rewrite metrics.jsonl). Tensors load onto `device`, the
  // trial's, wherever they were saved from.
  FileCheckpoints(std::filesystem::path dir, c10::Device device, std::int64_t every, std::function<bool()> stop_requested,
                  std::vector<nlohmann::json>& rows, std::function<void()> restored,
                  std::function<void(const std::string&)> log);

  std::int64_t every() const override { return every_; }
  bool stop_requested() const override { return stop_requested_ && stop_requested_(); }
  bool load(TrainingState& state) override;
  void save(const TrainingState& state, std::int64_t step) override;

 private:
  std::filesystem::path dir_;
  c10::Device device_;
  std::int64_t every_;
  std::function<bool()> stop_requested_;
  std::vector<nlohmann::json>& rows_;
  std::function<void()> restored_;
  std::function<void(const std::string&)> log_;
};

}  // namespace prefopt
