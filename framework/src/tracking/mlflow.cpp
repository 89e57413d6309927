#include "tracking/mlflow.h"

#if PREFOPT_HAVE_CURL
#include <curl/curl.h>
#endif
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <memory>
#include <sstream>
#include <stdexcept>

#include "files.h"

namespace prefopt::tracking {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// The REST API's documented limits per log-batch request, and on a param's value.
constexpr std::size_t kMaxParamsPerBatch = 100, kMaxMetricsPerBatch = 1000, kMaxParamValue = 6000;
constexpr long kConnectTimeoutSeconds = 5, kTimeoutSeconds = 30;

struct Response {
  long status = 0;
  std::string body;
};

// One HTTP request; `body` is sent as JSON (POST) or as the raw bytes of an upload (PUT).
#if PREFOPT_HAVE_CURL
std::size_t append_body(char* data, std::size_t size, std::size_t count, void* out) {
  static_cast<std::string*>(out)->append(data, size * count);
  return size * count;
}

Response request(const std::string& method, const std::string& url, const std::string& body, const char* content_type) {
  static const bool initialized = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
  if (!initialized) throw std::runtime_error("libcurl failed to initialize");
  const std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> curl(curl_easy_init(), curl_easy_cleanup);
  if (!curl) throw std::runtime_error("libcurl failed to start a request");
  Response response;
  curl_slist* headers = curl_slist_append(nullptr, fmt::format("Content-Type: {}", content_type).c_str());
  const std::unique_ptr<curl_slist, decltype(&curl_slist_free_all)> header_list(headers, curl_slist_free_all);
  curl_easy_setopt(curl.get(), CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl.get(), CURLOPT_CUSTOMREQUEST, method.c_str());
  curl_easy_setopt(curl.get(), CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl.get(), CURLOPT_CONNECTTIMEOUT, kConnectTimeoutSeconds);
  curl_easy_setopt(curl.get(), CURLOPT_TIMEOUT, kTimeoutSeconds);
  curl_easy_setopt(curl.get(), CURLOPT_NOSIGNAL, 1L);  // timeouts without SIGALRM: trials handle signals
  curl_easy_setopt(curl.get(), CURLOPT_WRITEFUNCTION, append_body);
  curl_easy_setopt(curl.get(), CURLOPT_WRITEDATA, &response.body);
  if (method != "GET") {
    curl_easy_setopt(curl.get(), CURLOPT_POSTFIELDS, body.data());
    curl_easy_setopt(curl.get(), CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
  }
  if (const CURLcode code = curl_easy_perform(curl.get()); code != CURLE_OK)
    throw std::runtime_error(fmt::format("{} {}: {}", method, url, curl_easy_strerror(code)));
  curl_easy_getinfo(curl.get(), CURLINFO_RESPONSE_CODE, &response.status);
  return response;
}
#else
Response request(const std::string&, const std::string&, const std::string&, const char*) {
  throw std::runtime_error("this prefopt was built without libcurl, so it cannot reach MLflow; install Debian's "
                           "libcurl4-openssl-dev and build it again");
}
#endif

std::string url_encode(const std::string& text) {
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~')
      out += static_cast<char>(c);
    else
      out += fmt::format("%{:02X}", c);
  }
  return out;
}

std::int64_t milliseconds(double seconds) { return static_cast<std::int64_t>(std::llround(seconds * 1000.0)); }

json key_values(const KeyValues& items) {
  json out = json::array();
  for (const auto& [key, value] : items) out.push_back({{"key", key}, {"value", value}});
  return out;
}

}  // namespace

MlflowRun::MlflowRun(std::string tracking_uri, const std::string& experiment, const std::string& run_name,
                     const KeyValues& tags, const std::string& run_id)
    : uri_(std::move(tracking_uri)) {
  while (!uri_.empty() && uri_.back() == '/') uri_.pop_back();
  if (!run_id.empty()) {
    const json run = call("GET", "runs/get?run_id=" + url_encode(run_id), nullptr)["run"]["info"];
    run_id_ = run_id;
    experiment_id_ = run["experiment_id"];
    artifact_uri_ = run["artifact_uri"];
    call("POST", "runs/update", {{"run_id", run_id_}, {"status", "RUNNING"}});
    return;
  }
  // Trials of a sweep start together: whichever creates the experiment first, the others find it.
  for (int attempt = 0; experiment_id_.empty(); ++attempt) {
    const Response found = request("GET", uri_ + "/api/2.0/mlflow/experiments/get-by-name?experiment_name=" + url_encode(experiment),
                                   "", "application/json");
    if (found.status == 200) {
      experiment_id_ = json::parse(found.body)["experiment"]["experiment_id"];
      break;
    }
    const Response created = request("POST", uri_ + "/api/2.0/mlflow/experiments/create", json{{"name", experiment}}.dump(),
                                     "application/json");
    if (created.status == 200) {
      experiment_id_ = json::parse(created.body)["experiment_id"];
    } else if (attempt > 0 || created.body.find("RESOURCE_ALREADY_EXISTS") == std::string::npos) {
      throw std::runtime_error(fmt::format("cannot create MLflow experiment '{}' at {}: HTTP {} {}", experiment, uri_,
                                           created.status, created.body));
    }
  }
  const json run = call("POST", "runs/create",
                        {{"experiment_id", experiment_id_},
                         {"run_name", run_name},
                         {"start_time", milliseconds(unix_time())},
                         {"tags", key_values(tags)}})["run"]["info"];
  run_id_ = run["run_id"];
  artifact_uri_ = run["artifact_uri"];
}

json MlflowRun::call(const std::string& method, const std::string& endpoint, const json& body) const {
  const Response response =
      request(method, uri_ + "/api/2.0/mlflow/" + endpoint, body.is_null() ? "" : body.dump(), "application/json");
  if (response.status != 200)
    throw std::runtime_error(fmt::format("MLflow {} {}: HTTP {} {}", method, endpoint, response.status, response.body));
  return response.body.empty() ? json::object() : json::parse(response.body);
}

void MlflowRun::log_params(const KeyValues& params) {
  for (std::size_t from = 0; from < params.size(); from += kMaxParamsPerBatch) {
    json batch = json::array();
    for (std::size_t i = from; i < std::min(params.size(), from + kMaxParamsPerBatch); ++i)
      batch.push_back({{"key", params[i].first}, {"value", params[i].second.substr(0, kMaxParamValue)}});
    call("POST", "runs/log-batch", {{"run_id", run_id_}, {"params", batch}});
  }
}

void MlflowRun::log_metrics(std::int64_t step, const std::vector<std::pair<std::string, double>>& metrics, double wall_time) {
  for (std::size_t from = 0; from < metrics.size(); from += kMaxMetricsPerBatch) {
    json batch = json::array();
    for (std::size_t i = from; i < std::min(metrics.size(), from + kMaxMetricsPerBatch); ++i) {
      if (!std::isfinite(metrics[i].second)) continue;  // JSON has no NaN or infinity
      batch.push_back({{"key", metrics[i].first}, {"value", metrics[i].second}, {"timestamp", milliseconds(wall_time)},
                       {"step", step}});
    }
    call("POST", "runs/log-batch", {{"run_id", run_id_}, {"metrics", batch}});
  }
}

void MlflowRun::log_artifact(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw std::runtime_error(fmt::format("cannot read {}", file.string()));
  const std::string name = file.filename().string();
  if (artifact_uri_.starts_with("mlflow-artifacts:")) {  // the server stores it: PUT through its proxy
    std::string path = artifact_uri_.substr(std::string_view("mlflow-artifacts:").size());
    if (path.starts_with("//")) path = path.substr(path.find('/', 2));  // an authority, if any, is this server
    std::ostringstream bytes;
    bytes << in.rdbuf();
    const Response response = request("PUT", fmt::format("{}/api/2.0/mlflow-artifacts/artifacts{}/{}", uri_, path, url_encode(name)),
                                      bytes.str(), "application/octet-stream");
    if (response.status != 200)
      throw std::runtime_error(fmt::format("MLflow artifact upload of {}: HTTP {} {}", name, response.status, response.body));
    return;
  }
  std::string folder = artifact_uri_;
  if (folder.starts_with("file://")) folder = folder.substr(7);
  if (!folder.starts_with("/"))
    throw std::runtime_error(fmt::format("artifact store '{}' is neither proxied by the server (mlflow-artifacts:) nor a "
                                         "local folder; start the server with artifact serving (mlflow server's default)",
                                         artifact_uri_));
  fs::create_directories(folder);
  fs::copy_file(file, fs::path(folder) / name, fs::copy_options::overwrite_existing);
}

void MlflowRun::end(const std::string& status) {
  call("POST", "runs/update", {{"run_id", run_id_}, {"status", status}, {"end_time", milliseconds(unix_time())}});
}

}  // namespace prefopt::tracking
