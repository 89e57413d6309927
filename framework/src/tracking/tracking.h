// Experiment tracking export of one trial, as its `[tracking]` section asks:
//
//   [tracking]
//   tensorboard = true                       # event files in RUN_DIR/tensorboard/
//   mlflow_uri = "http://127.0.0.1:5000"     # a run on this MLflow tracking server
//   experiment = ""                          # MLflow experiment; "": the sweep's name, else the
//                                            # experiment file's stem
//
// Each evaluation row (as in metrics.jsonl) becomes scalars at its step: gold, proxy, KL, win rate,
// the per-member proxies (proxy_members/0 ...), the algorithm's diagnostics (algorithm/...).
// MLflow also gets the resolved config flattened as params, the sweep and trial as tags, and
// summary.json, resolved.toml and metrics.jsonl as artifacts. A backend that fails is logged and
// dropped: tracking never fails a trial. A trial continued after a stop continues its MLflow run
// (RUN_DIR/tracking.json keeps the run's id).
#pragma once

#include <filesystem>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "config/node.h"
#include "tracking/mlflow.h"
#include "tracking/tensorboard.h"

namespace prefopt::tracking {

struct TrialIdentity {
  std::filesystem::path run_dir;
  std::string experiment;  // the experiment file's stem
  std::string sweep;       // the sweep folder's name; "" for a run outside a sweep
};

// The scalars of one evaluation row: numbers by key, lists as key/i, tables as key/name; the
// step, the label and nulls are left out.
Scalars row_scalars(const nlohmann::json& row);

class TrialTracker {
 public:
  // Starts what `config`'s [tracking] section names (nothing when it names nothing).
  TrialTracker(const config::Node& config, TrialIdentity identity, std::function<void(const std::string&)> log);
  TrialTracker(const TrialTracker&) = delete;
  TrialTracker& operator=(const TrialTracker&) = delete;
  // A run neither finished nor stopped (the trial threw) ends FAILED.
  ~TrialTracker();

  void log_evaluation(const nlohmann::json& row);
  // FINISHED (with the artifacts) or KILLED (stopped; the run continues with the trial).
  void finish(const std::string& status);

 private:
  // Runs f on the backend, if it is still there; one that throws is logged and dropped.
  template <class Backend, class F>
  void guarded(std::unique_ptr<Backend>& backend, const std::string& name, const char* what, F&& f);

  TrialIdentity identity_;
  std::function<void(const std::string&)> log_;
  std::unique_ptr<EventFileWriter> tensorboard_;
  std::unique_ptr<MlflowRun> mlflow_;
  std::string mlflow_uri_;
  bool finished_ = false;
};

}  // namespace prefopt::tracking
