// An MLflow run over MLflow's REST API (the tracking server's /api/2.0/mlflow/...), with libcurl.
// Experiments are found or created by name; params, metrics and tags go in batches within the
// server's limits; artifacts go to the run's artifact store when the server proxies it
// (`mlflow-artifacts:` URIs, `mlflow server`'s default) or is a local folder (`file:` URIs).
// Every call throws std::runtime_error with the server's own message when the server says no.
#pragma once

#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

namespace prefopt::tracking {

using KeyValues = std::vector<std::pair<std::string, std::string>>;

class MlflowRun {
 public:
  // Starts a run in experiment `experiment` (created when missing), or with `run_id` given,
  // continues that run (a trial continued after a stop): it is set RUNNING again.
  MlflowRun(std::string tracking_uri, const std::string& experiment, const std::string& run_name,
            const KeyValues& tags, const std::string& run_id = "");

  const std::string& run_id() const { return run_id_; }
  const std::string& experiment_id() const { return experiment_id_; }

  void log_params(const KeyValues& params);
  void log_metrics(std::int64_t step, const std::vector<std::pair<std::string, double>>& metrics, double wall_time);
  void log_artifact(const std::filesystem::path& file);
  // FINISHED, FAILED or KILLED.
  void end(const std::string& status);

 private:
  nlohmann::json call(const std::string& method, const std::string& endpoint, const nlohmann::json& body) const;

  std::string uri_;
  std::string experiment_id_;
  std::string run_id_;
  std::string artifact_uri_;
};

}  // namespace prefopt::tracking
