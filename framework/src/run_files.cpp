#include "run_files.h"

#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <string>

#include "files.h"
#include "prefopt/error.h"
#include "prefopt/version.h"

namespace prefopt::run_files {
namespace fs = std::filesystem;
using nlohmann::json;

bool finished(const fs::path& run_dir) {
  std::error_code error;
  return fs::is_regular_file(run_dir / kSummary, error);
}

std::optional<std::string> read_resolved(const fs::path& run_dir) {
  std::ifstream in(run_dir / kResolved);
  if (!in) return std::nullopt;
  return std::string{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_resolved(const fs::path& run_dir, const std::string& text) { write_atomically(run_dir / kResolved, text); }

void write_invocation(const fs::path& run_dir, const std::string& experiment, const std::string& name,
                      const std::vector<std::string>& overrides) {
  write_atomically(run_dir / "overrides.json", json(overrides).dump(2) + "\n");
  const json invocation = {
      {"experiment", experiment}, {"experiment_name", name}, {"overrides", overrides}, {"prefopt", version_string()}};
  write_atomically(run_dir / "run.json", invocation.dump(2) + "\n");
}

std::string read_experiment_name(const fs::path& run_dir, const std::string& fallback) {
  const json invocation = read_json_or_null(run_dir / "run.json");
  return invocation.is_object() ? invocation.value("experiment_name", fallback) : fallback;
}

json read_summary(const fs::path& run_dir) { return read_json_or_null(run_dir / kSummary); }

std::string ending(const json& summary) {
  if (summary.is_null()) return "";
  for (const char* early : {"pruned", "diverged"})
    if (summary.contains(early)) return early;
  return "finished";
}

void write_summary(const fs::path& run_dir, const json& summary) {
  write_atomically(run_dir / kSummary, summary.dump(2) + "\n");
}

json read_status(const fs::path& run_dir) { return read_json_or_null(run_dir / kStatus); }

void write_status(const fs::path& run_dir, const json& status) {
  write_atomically(run_dir / kStatus, status.dump(2) + "\n");
}

std::vector<json> read_metrics(const fs::path& run_dir) {
  std::vector<json> rows;
  std::ifstream in(run_dir / kMetrics);
  for (std::string line; std::getline(in, line);) {
    json row = json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (row.is_object()) rows.push_back(std::move(row));
  }
  return rows;
}

MetricsWriter::MetricsWriter(const fs::path& run_dir) : file_(run_dir / kMetrics), out_(file_) {
  const int cause = errno;
  if (!out_) throw StorageError(fmt::format("cannot write {}: {}", file_.string(), std::strerror(cause)));
}

// A row that did not reach the file (a full disk) ends the run: its metrics must not go missing
// silently. A line cut short is skipped by read_metrics, and --continue writes the rows again.
void MetricsWriter::append(const json& row) {
  out_ << row.dump() << "\n" << std::flush;
  const int cause = errno;
  if (!out_) throw StorageError(fmt::format("cannot write {}: {}", file_.string(), std::strerror(cause)));
}

}  // namespace prefopt::run_files
