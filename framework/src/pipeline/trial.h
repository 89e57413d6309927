// One trial of the RLHF pipeline, end to end:
//
//   task ─► sft (base policy) ─► preferences (samples, gold scores, annotator labels)
//        ─► reward models (members) ─► ensemble ─► algorithm ─► shared evaluation
//
// Stages come from the stage cache when another trial already computed them. The run folder
// receives metrics.jsonl (one row per evaluation) and summary.json, and while the algorithm
// trains, checkpoint/ (see pipeline/checkpoint.h): a trial run again into the same folder
// continues from it, with the results of an uninterrupted run. It is removed once the trial ends.
// A trial may end before its budget, at the end of the step of an evaluation, with summary.json
// saying why: "pruned" (TrialOptions::prune, a search's early stopping) or "diverged" (a gold,
// proxy, KL or training diagnostic not finite).
#pragma once

#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>

#include "config/node.h"
#include "pipeline/sections.h"
#include "registry.h"
#include "runtime.h"

namespace prefopt {

struct TrialOptions {
  std::filesystem::path run_dir;
  std::filesystem::path cache_dir;  // the stage cache
  std::function<void(const std::string&)> log;       // one line per event, for the run log too
  std::function<void(const std::string&)> progress;  // a transient status inside a long stage
  bool checkpoints = true;                           // keep run_dir/checkpoint/ while training
  std::function<bool()> stop_requested;              // polled between steps: save and throw Stopped
  std::function<void(const nlohmann::json&)> evaluated;  // each metrics.jsonl row as it is written
  // Called with the rows so far after each evaluation: a reason stops the trial at the end of the
  // step, finished early, with summary.json's "pruned" saying why (a search's early stopping).
  std::function<std::optional<std::string>(const std::vector<nlohmann::json>& rows)> prune;
};

struct TrialResult {
  std::vector<nlohmann::json> rows;  // as in metrics.jsonl
  nlohmann::json summary;            // as in summary.json
};

// The trial's [runtime] device and dtype, resolved against the CUDA devices this process sees:
// ConfigError (with the setting's origin) when it names a device that is not there.
Runtime trial_runtime(const config::Node& config);
// Only that `runtime.device` is well-formed: where trials are planned rather than run (a Slurm
// login node has no GPU).
void check_device_setting(const config::Node& config);
// That [policy] checkpoint, when set, is a checkpoint folder (its config.json and safetensors
// headers; not its weights) that can be the experiment's task's policy: ConfigError naming the
// setting otherwise. Where trials are planned, before any runs.
void check_policy_setting(const config::Node& config, const Registry& registry);
// That the data files in use ([sft] data, [prompts] path, [dataset] path with source = "dataset")
// are files and the task a text task, and that no [preferences] setting of the simulated source
// is given beside source = "dataset". ConfigError naming the setting otherwise. The files' rows
// are checked when the trial reads them.
void check_data_settings(const config::Node& config, const Registry& registry);

TrialResult run_trial(const config::Node& config, const Registry& registry, const TrialOptions& options);

}  // namespace prefopt
