#include "tracking/tracking.h"

#include <fmt/format.h>

#include "files.h"
#include "run_files.h"
#include "pipeline/trial.h"
#include "prefopt/version.h"

namespace prefopt::tracking {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// The resolved config as MLflow params: dotted keys, strings as they are, the rest as TOML text.
void flatten_config(const config::Node& node, const std::string& prefix, KeyValues& out) {
  if (node.is_table()) {
    for (const auto& [key, child] : node.table()) flatten_config(child, prefix.empty() ? key : prefix + "." + key, out);
    return;
  }
  out.emplace_back(prefix, node.is_string() ? std::get<std::string>(node.value) : config::format_inline(node));
}

void add_scalars(const json& value, const std::string& key, Scalars& out) {
  if (value.is_number()) {
    out.emplace_back(key, value.get<double>());
  } else if (value.is_boolean()) {
    out.emplace_back(key, value.get<bool>() ? 1.0 : 0.0);
  } else if (value.is_array()) {
    for (std::size_t i = 0; i < value.size(); ++i) add_scalars(value[i], key + "/" + std::to_string(i), out);
  } else if (value.is_object()) {
    for (const auto& [name, child] : value.items()) add_scalars(child, key + "/" + name, out);
  }
}

}  // namespace

Scalars row_scalars(const json& row) {
  Scalars out;
  for (const auto& [key, value] : row.items())
    if (key != "step" && key != "label") add_scalars(value, key, out);
  return out;
}

template <class Backend, class F>
void TrialTracker::guarded(std::unique_ptr<Backend>& backend, const std::string& name, const char* what, F&& f) {
  if (!backend) return;
  try {
    f(*backend);
  } catch (const std::exception& e) {
    log_(fmt::format("tracking: {}: {} failed ({}); the trial goes on without it", name, what, e.what()));
    backend.reset();
  }
}

TrialTracker::TrialTracker(const config::Node& config, TrialIdentity identity, std::function<void(const std::string&)> log)
    : identity_(std::move(identity)), log_(std::move(log)) {
  const Params settings = pipeline_section(config, "tracking");
  if (settings.get<bool>("tensorboard")) {
    try {
      tensorboard_ = std::make_unique<EventFileWriter>(identity_.run_dir / "tensorboard");
      log_(fmt::format("tracking: TensorBoard events in {}", tensorboard_->file().string()));
    } catch (const std::exception& e) {
      log_(fmt::format("tracking: cannot write TensorBoard events ({}); the trial goes on without them", e.what()));
    }
  }
  mlflow_uri_ = settings.get<std::string>("mlflow_uri");
  if (mlflow_uri_.empty()) return;
  std::string experiment = settings.get<std::string>("experiment");
  if (experiment.empty()) experiment = identity_.sweep.empty() ? identity_.experiment : identity_.sweep;
  const fs::path state_file = identity_.run_dir / "tracking.json";
  const json state = read_json_or_null(state_file);
  const std::string continued = state.is_object() && state.value("mlflow_uri", "") == mlflow_uri_ ? state.value("mlflow_run_id", "") : "";
  const std::string trial = identity_.run_dir.filename().string();
  try {
    mlflow_ = std::make_unique<MlflowRun>(mlflow_uri_, experiment, trial,
                                          KeyValues{{"prefopt.sweep", identity_.sweep},
                                                    {"prefopt.trial", trial},
                                                    {"prefopt.experiment", identity_.experiment},
                                                    {"prefopt.run_dir", fs::absolute(identity_.run_dir).string()},
                                                    {"prefopt.version", version_string()}},
                                          continued);
    write_atomically(state_file, json{{"mlflow_uri", mlflow_uri_}, {"mlflow_run_id", mlflow_->run_id()}}.dump(2) + "\n");
    log_(fmt::format("tracking: MLflow run {} in experiment '{}' at {}{}", mlflow_->run_id(), experiment, mlflow_uri_,
                     continued.empty() ? "" : " (continued)"));
  } catch (const std::exception& e) {
    log_(fmt::format("tracking: cannot start an MLflow run at {} ({}); the trial goes on without it", mlflow_uri_, e.what()));
    return;
  }
  if (continued.empty()) {
    KeyValues params;
    flatten_config(config, "", params);
    guarded(mlflow_, "MLflow at " + mlflow_uri_, "logging params", [&](MlflowRun& run) { run.log_params(params); });
  }
}

TrialTracker::~TrialTracker() {
  if (!finished_) guarded(mlflow_, "MLflow at " + mlflow_uri_, "ending the run", [](MlflowRun& run) { run.end("FAILED"); });
}

void TrialTracker::log_evaluation(const json& row) {
  const Scalars scalars = row_scalars(row);
  const std::int64_t step = row.value("step", std::int64_t{0});
  const double now = unix_time();
  guarded(tensorboard_, "TensorBoard", "writing events",
          [&](EventFileWriter& writer) { writer.add_scalars(step, scalars, now); });
  guarded(mlflow_, "MLflow at " + mlflow_uri_, "logging metrics", [&](MlflowRun& run) { run.log_metrics(step, scalars, now); });
}

void TrialTracker::finish(const std::string& status) {
  finished_ = true;
  if (status == "FINISHED")
    for (const char* file : {run_files::kSummary, run_files::kResolved, run_files::kMetrics})
      guarded(mlflow_, "MLflow at " + mlflow_uri_, "uploading an artifact",
              [&](MlflowRun& run) { run.log_artifact(identity_.run_dir / file); });
  guarded(mlflow_, "MLflow at " + mlflow_uri_, "ending the run", [&](MlflowRun& run) { run.end(status); });
}

}  // namespace prefopt::tracking
