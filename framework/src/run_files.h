// The files of a run folder (a `prefopt run --out DIR`, or one trial folder of a sweep): named,
// written and read here only.
//
//   resolved.toml   the composed configuration; written first, compared by --continue
//   run.json        how the run was started: experiment file and name, overrides, prefopt version
//   overrides.json  the overrides alone
//   metrics.jsonl   one JSON object per evaluation: {"step": N, "gold": ..., "algorithm": {...}}
//   summary.json    the final results; written last and atomically, by a run that completed
//   status.json     a launcher's record of the trial's latest attempt (state, attempt, exit
//                   status, host, pid, times, log tail); a plain `prefopt run` has none
//   checkpoint/     while the run can still be continued
//   policy.safetensors  the trained policy's weights under its model's own parameter names (a
//                   checkpoint's are Hugging Face's), written before summary.json; none with
//                   [train] save_policy = false
//   reward_model-K.safetensors  reward model K of the ensemble (from 0), in a run from a checkpoint:
//                   the backbone under the checkpoint's names, the head as score.weight and
//                   score.bias, the normalization in the metadata; none with [train]
//                   save_reward_models = false
//   samples.jsonl   answers of the trained and the reference policy to the first evaluation
//                   prompts, as token ids (and text, for a text task), with their rewards
//
// The one rule: a run is finished exactly when its summary.json exists. A status.json records how
// attempts ended, but never decides whether the run is done.
#pragma once

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace prefopt::run_files {

inline constexpr const char* kResolved = "resolved.toml";
inline constexpr const char* kMetrics = "metrics.jsonl";
inline constexpr const char* kSummary = "summary.json";
inline constexpr const char* kStatus = "status.json";
inline constexpr const char* kPolicy = "policy.safetensors";
inline constexpr const char* kSamples = "samples.jsonl";

inline std::string reward_model_file(std::int64_t member) {
  return "reward_model-" + std::to_string(member) + ".safetensors";
}

bool finished(const std::filesystem::path& run_dir);

// resolved.toml's text, or nullopt when there is none; written atomically.
std::optional<std::string> read_resolved(const std::filesystem::path& run_dir);
void write_resolved(const std::filesystem::path& run_dir, const std::string& text);

// run.json and overrides.json; the experiment's name from run.json, or `fallback` without one.
void write_invocation(const std::filesystem::path& run_dir, const std::string& experiment, const std::string& name,
                      const std::vector<std::string>& overrides);
std::string read_experiment_name(const std::filesystem::path& run_dir, const std::string& fallback);

// summary.json, or null when the run has not finished.
nlohmann::json read_summary(const std::filesystem::path& run_dir);

// How a run ended, from its summary.json: "finished", or "pruned" / "diverged" when it ended
// before its budget (the summary's entry of that name says why); empty when it has not ended.
std::string ending(const nlohmann::json& summary);
void write_summary(const std::filesystem::path& run_dir, const nlohmann::json& summary);

// status.json, or null when no launcher has started the trial (or it is being replaced: read
// again later).
nlohmann::json read_status(const std::filesystem::path& run_dir);
void write_status(const std::filesystem::path& run_dir, const nlohmann::json& status);

// Every row of metrics.jsonl, in order; a line that is not a JSON object (a run killed in the
// middle of writing it) is skipped.
std::vector<nlohmann::json> read_metrics(const std::filesystem::path& run_dir);

// metrics.jsonl as a run writes it: started empty, one row per line, each flushed as it comes,
// so a reader (the results index, a tracker) sees every finished evaluation.
class MetricsWriter {
 public:
  explicit MetricsWriter(const std::filesystem::path& run_dir);
  void append(const nlohmann::json& row);  // throws when the row cannot be written

 private:
  std::filesystem::path file_;
  std::ofstream out_;
};

}  // namespace prefopt::run_files
