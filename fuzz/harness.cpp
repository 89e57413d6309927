#include "harness.h"

#include <unistd.h>

#include <cstdio>
#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "config/compose.h"
#include "config/interpolate.h"
#include "data/records.h"
#include "models/safetensors_header.h"
#include "prefopt/error.h"

namespace prefopt::fuzz {
namespace {

void check(bool invariant, const char* what) {
  if (!invariant) {
    std::fprintf(stderr, "fuzz invariant failed: %s\n", what);
    std::abort();
  }
}

}  // namespace

void override_harness(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    const config::Override parsed = config::parse_override(text);
    if (parsed.is_sweep()) {
      const auto values = config::sweep_values(std::get<config::Sweep>(*parsed.value), {"a", "b", "c"}, text);
      for (const config::Node& value : values) (void)config::format_inline(value);
    } else if (parsed.value && std::holds_alternative<config::Node>(*parsed.value)) {
      (void)config::format_inline(std::get<config::Node>(*parsed.value));
    }
  } catch (const ConfigError&) {
  }
}

void compose_harness(const std::uint8_t* data, std::size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);
  const std::size_t separator = input.find("\n---\n");
  const std::string toml = input.substr(0, separator);
  std::vector<config::Override> overrides;
  if (separator != std::string::npos) {
    std::size_t start = separator + 5;
    while (start < input.size() && overrides.size() < 8) {
      std::size_t end = input.find('\n', start);
      if (end == std::string::npos) end = input.size();
      try {
        overrides.push_back(config::parse_override(input.substr(start, end - start)));
      } catch (const ConfigError&) {
      }
      start = end + 1;
    }
  }
  // One experiment file per process, rewritten for each input.
  static const std::filesystem::path file =
      std::filesystem::temp_directory_path() / ("prefopt-fuzz-" + std::to_string(::getpid()) + ".toml");
  std::ofstream(file, std::ios::binary | std::ios::trunc) << toml;
  config::Node composed;
  try {
    const config::Composer composer(file, {});
    const auto trials = composer.trials(overrides, /*multirun=*/true);
    composed = composer.compose(trials.front().overrides).config;  // one trial is enough per input
    config::resolve_interpolations(composed);
  } catch (const ConfigError&) {
    return;
  }
  // What prefopt prints must read back as the same configuration; failing to read it is a bug.
  const std::string printed = config::to_toml_string(composed);
  config::Node reread;
  try {
    reread = config::parse_toml(printed, "printed");
  } catch (const ConfigError& e) {
    std::fprintf(stderr, "%s\n--- printed:\n%s\n", e.what(), printed.c_str());
    check(false, "printed TOML does not parse");
  }
  check(reread == composed, "printed TOML does not read back to the same config");
}

void safetensors_harness(const std::uint8_t* data, std::size_t size) {
  models::SafetensorsHeader header;
  try {
    header = models::parse_safetensors_header(data, size, "fuzz.safetensors");
  } catch (const ConfigError&) {
    return;
  }
  check(header.data_start >= 8 && header.data_start <= size, "the data section starts inside the file");
  std::vector<std::pair<std::uint64_t, std::uint64_t>> ranges;
  for (const auto& [name, entry] : header.entries) {
    std::uint64_t bytes = models::dtype_bytes(entry.dtype);
    check(bytes > 0, "a known dtype");
    for (const std::int64_t extent : entry.shape) {
      check(extent >= 0, "a non-negative extent");
      check(!__builtin_mul_overflow(bytes, static_cast<std::uint64_t>(extent), &bytes), "a shape whose bytes count");
    }
    check(entry.begin <= entry.end && entry.end <= size - header.data_start, "offsets inside the data");
    check(entry.end - entry.begin == bytes, "offsets spanning exactly the shape's bytes");
    if (entry.end > entry.begin) ranges.emplace_back(entry.begin, entry.end);
  }
  std::sort(ranges.begin(), ranges.end());
  for (std::size_t i = 1; i < ranges.size(); ++i) check(ranges[i - 1].second <= ranges[i].first, "no overlap");
}

void records_harness(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return;
  const bool csv = data[0] % 2 == 1;
  const std::string text(reinterpret_cast<const char*>(data) + 1, size - 1);
  static const std::filesystem::path file =
      std::filesystem::temp_directory_path() / ("prefopt-fuzz-" + std::to_string(::getpid()) + ".rows");
  std::ofstream(file, std::ios::binary | std::ios::trunc) << text;
  data::Records records;
  try {
    records = data::read_records(file, csv ? data::FileFormat::csv : data::FileFormat::jsonl);
  } catch (const ConfigError&) {  // a CSV file without a header or cut inside a quote; a JSON array
    return;
  }
  const auto lines = static_cast<std::int64_t>(std::count(text.begin(), text.end(), '\n')) + 1;
  std::int64_t previous = 0;
  for (const data::Record& record : records.rows) {
    // Non-decreasing: a bare CR ends a CSV row (as in Python's csv), so two rows may share a line.
    check(record.line >= std::max<std::int64_t>(previous, 1) && record.line <= lines,
          "rows in order, each at a line of the file");
    check(record.row.is_object(), "a row is an object");
    if (csv) check(record.row.size() == records.rows.front().row.size(), "every CSV row has the header's columns");
    previous = record.line;
  }
  for (const data::BadRow& bad : records.bad) check(bad.line >= 1 && bad.line <= lines, "a bad row at a line of the file");
  check(records.total == records.rows.size() + records.bad.size(), "every row counted");
}

}  // namespace prefopt::fuzz
