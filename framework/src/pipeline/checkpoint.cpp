#include "pipeline/checkpoint.h"

#include <fmt/format.h>
#include <torch/serialize.h>

#include "files.h"

namespace prefopt {
namespace fs = std::filesystem;
using nlohmann::json;

FileCheckpoints::FileCheckpoints(fs::path dir, c10::Device device, std::int64_t every,
                                 std::function<bool()> stop_requested, std::vector<json>& rows,
                                 std::function<void()> restored, std::function<void(const std::string&)> log)
    : dir_(std::move(dir)),
      device_(device),
      every_(every),
      stop_requested_(std::move(stop_requested)),
      rows_(rows),
      restored_(std::move(restored)),
      log_(std::move(log)) {}

bool FileCheckpoints::load(TrainingState& state) {
  const fs::path file = dir_ / "state.pt";
  if (!fs::exists(file)) return false;
  torch::serialize::InputArchive archive;
  archive.load_from(file.string(), device_);
  state.load(archive);
  c10::IValue rows, step;
  archive.read("pipeline.rows", rows);
  archive.read("pipeline.step", step);
  rows_ = json::parse(rows.toStringRef()).get<std::vector<json>>();
  if (restored_) restored_();
  if (log_) log_(fmt::format("resumed from the checkpoint at step {} ({})", step.toInt(), file.string()));
  return true;
}

void FileCheckpoints::save(const TrainingState& state, std::int64_t step) {
  fs::create_directories(dir_);
  torch::serialize::OutputArchive archive;
  state.save(archive);
  archive.write("pipeline.rows", c10::IValue(json(rows_).dump()));
  archive.write("pipeline.step", c10::IValue(step));
  const fs::path file = dir_ / "state.pt";
  const fs::path partial = dir_ / "state.pt.partial";
  archive.save_to(partial.string());
  fs::rename(partial, file);  // atomic: a reader sees the previous checkpoint or this one
  write_atomically(dir_ / "checkpoint.json", json{{"step", step}, {"saved_at", unix_time()}}.dump(2) + "\n");
  if (log_) log_(fmt::format("checkpoint at step {}", step));
}

}  // namespace prefopt
