#include "run_files.h"

#include <fstream>
#include <string>

#include "files.h"

namespace prefopt::run_files {
namespace fs = std::filesystem;
using nlohmann::json;

bool finished(const fs::path& run_dir) {
  std::error_code error;
  return fs::is_regular_file(run_dir / kSummary, error);
}

json read_summary(const fs::path& run_dir) { return read_json_or_null(run_dir / kSummary); }

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

}  // namespace prefopt::run_files
