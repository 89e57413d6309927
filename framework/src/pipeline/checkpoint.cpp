#include "pipeline/checkpoint.h"

#include <fmt/format.h>
#include <torch/serialize.h>

#include <random>

#include "files.h"
#include "prefopt/serialize.h"

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

namespace {

// What is wrong with the state file checkpoint.json describes, or "" when it is whole.
std::string damage(const fs::path& file, const json& manifest) {
  std::error_code error;
  const std::uintmax_t size = fs::file_size(file, error);
  if (error) return "it is missing";
  if (size != manifest.value("size", std::uintmax_t{0}))
    return fmt::format("it has {} bytes, {} when saved", size, manifest.value("size", std::uintmax_t{0}));
  if (file_checksum(file) != manifest.value("checksum", "")) return "its bytes changed since it was saved (checksum)";
  return "";
}

}  // namespace

bool FileCheckpoints::load(TrainingState& state) {
  const fs::path manifest_file = dir_ / "checkpoint.json";
  if (!fs::exists(manifest_file)) return false;
  const json manifest = read_json_or_null(manifest_file);
  const fs::path file = dir_ / (manifest.is_object() ? manifest.value("file", "") : "");
  const std::string why = manifest.is_object() && manifest.contains("file") ? damage(file, manifest)
                                                                           : "checkpoint.json cannot be read";
  if (!why.empty()) {
    // Checked before anything loads (libtorch's reader checks no CRC: a flipped bit would load),
    // so the trainer's objects are untouched and the trial can begin again, deterministically.
    if (log_) log_(fmt::format("the checkpoint in {} is damaged ({}); the trial starts over from step 0", dir_.string(), why));
    fs::remove_all(dir_);
    return false;
  }
  try {
    torch::serialize::InputArchive archive;
    archive.load_from(file.string(), device_);
    state.load(archive);
    c10::IValue rows, step;
    archive.read("pipeline.rows", rows);
    archive.read("pipeline.step", step);
    rows_ = json::parse(rows.toStringRef()).get<std::vector<json>>();
    if (log_) log_(fmt::format("resumed from the checkpoint at step {} ({})", step.toInt(), file.string()));
  } catch (const std::exception& e) {
    const auto* torch_error = dynamic_cast<const c10::Error*>(&e);  // its what() carries a backtrace
    throw std::runtime_error(fmt::format("the checkpoint {} is intact but does not fit this trial's trainer ({}); "
                                         "remove {} to start the trial over",
                                         file.string(), torch_error ? torch_error->what_without_backtrace() : e.what(),
                                         dir_.string()));
  }
  if (restored_) restored_();
  return true;
}

// The state goes to a file of a new name, then checkpoint.json (written atomically) names it with
// its size and checksum, then older state files go: at every moment checkpoint.json describes a
// complete file, so a trial killed anywhere continues from its last checkpoint.
void FileCheckpoints::save(const TrainingState& state, std::int64_t step) {
  fs::create_directories(dir_);
  torch::serialize::OutputArchive archive;
  state.save(archive);
  archive.write("pipeline.rows", c10::IValue(json(rows_).dump()));
  archive.write("pipeline.step", c10::IValue(step));
  const std::string name = fmt::format("state-{}-{:08x}.pt", step, std::random_device{}());
  const fs::path partial = dir_ / (name + ".partial");
  save_archive(archive, partial.string());  // a full disk: the last checkpoint stays the one to continue from
  fs::rename(partial, dir_ / name);
  write_atomically(dir_ / "checkpoint.json",
                   json{{"step", step}, {"saved_at", unix_time()}, {"file", name},
                        {"size", fs::file_size(dir_ / name)}, {"checksum", file_checksum(dir_ / name)}}
                           .dump(2) + "\n");
  for (const auto& item : fs::directory_iterator(dir_)) {
    const std::string other = item.path().filename().string();
    if (other != name && other.starts_with("state-")) fs::remove(item.path());
  }
  if (log_) log_(fmt::format("checkpoint at step {}", step));
}

}  // namespace prefopt
