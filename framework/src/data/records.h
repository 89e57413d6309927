// The rows of a dataset file as JSON objects, each with the line it starts on: JSON Lines (one
// object a line; blank lines skipped) or CSV (RFC 4180 through libcsv: a header row names the
// columns; quoted fields may hold commas, quotes and newlines; every cell is a string, and a
// cell that should hold a list holds it as JSON).
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace prefopt::data {

enum class FileFormat { jsonl, csv };

// From `format` ("jsonl", "csv") or, for "auto", the file's extension (.jsonl, .json, .csv); a
// ConfigError naming `setting` otherwise.
FileFormat file_format(const std::filesystem::path& file, const std::string& format, const std::string& setting);

struct Record {
  std::int64_t line = 0;  // 1-based: the line the row starts on
  nlohmann::json row;     // an object
};

struct BadRow {
  std::int64_t line = 0;
  std::string problem;
};

struct Records {
  std::vector<Record> rows;
  std::vector<BadRow> bad;  // rows that are not objects (JSONL) or have the wrong number of fields (CSV)
  std::size_t total = 0;    // rows in the file, good and bad
};

// Every row of `file`. A ConfigError when the file cannot be read, when a JSON Lines file is one
// JSON array, or when a CSV file has no header or does not parse (a quote never closed: the rest
// of the file would be one field).
Records read_records(const std::filesystem::path& file, FileFormat format);

}  // namespace prefopt::data
