// The dataset reader's rows as a command for tests/data/csv_differential.py:
//   records_probe jsonl|csv FILE...   one JSON line per file: the list of its rows in line order,
//                                     {"line": N, "row": {...}} or {"line": N, "bad": "..."}
// One process for many files: libtorch makes each start cost a fraction of a second.
#include <algorithm>
#include <exception>
#include <iostream>
#include <string>

#include "data/records.h"

int main(int argc, char** argv) try {
  using namespace prefopt::data;
  if (argc < 2) {
    std::cerr << "usage: records_probe jsonl|csv FILE...\n";
    return 2;
  }
  const FileFormat format = std::string(argv[1]) == "csv" ? FileFormat::csv : FileFormat::jsonl;
  for (int i = 2; i < argc; ++i) {
    const Records records = read_records(argv[i], format);
    std::vector<nlohmann::json> lines;
    for (const Record& record : records.rows) lines.push_back({{"line", record.line}, {"row", record.row}});
    for (const BadRow& bad : records.bad) lines.push_back({{"line", bad.line}, {"bad", bad.problem}});
    std::sort(lines.begin(), lines.end(), [](const auto& x, const auto& y) { return x["line"] < y["line"]; });
    std::cout << nlohmann::json(lines).dump() << '\n';
  }
  return 0;
} catch (const std::exception& e) {
  std::cerr << "records_probe: " << e.what() << '\n';
  return 1;
}
