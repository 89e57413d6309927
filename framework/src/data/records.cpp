#include "data/records.h"

#include <csv.h>
#include <fmt/format.h>

#include <fstream>

#include "prefopt/error.h"

namespace prefopt::data {
namespace fs = std::filesystem;
using nlohmann::json;

FileFormat file_format(const fs::path& file, const std::string& format, const std::string& setting) {
  if (format == "jsonl") return FileFormat::jsonl;
  if (format == "csv") return FileFormat::csv;
  const std::string extension = file.extension().string();
  if (extension == ".jsonl" || extension == ".json") return FileFormat::jsonl;
  if (extension == ".csv") return FileFormat::csv;
  throw ConfigError(fmt::format("{}: cannot tell the format of {} from its extension; set it to \"jsonl\" or \"csv\"",
                                setting, file.string()));
}

namespace {

std::ifstream open(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw ConfigError(fmt::format("cannot read {}", file.string()));
  return in;
}

Records read_jsonl(const fs::path& file) {
  std::ifstream in = open(file);
  Records out;
  std::string text;
  for (std::int64_t line = 1; std::getline(in, text); ++line) {
    const std::size_t start = text.find_first_not_of(" \t\r");
    if (start == std::string::npos) continue;
    if (out.rows.empty() && out.bad.empty() && text[start] == '[')
      throw ConfigError(fmt::format("{}:{}: a JSON array; prefopt reads JSON Lines, one object a line (jq -c '.[]' "
                                    "converts an array)",
                                    file.string(), line));
    json row = json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (row.is_discarded())
      out.bad.push_back({line, "not valid JSON"});
    else if (!row.is_object())
      out.bad.push_back({line, fmt::format("a JSON {}, not an object", row.type_name())});
    else
      out.rows.push_back({line, std::move(row)});
  }
  return out;
}

// libcsv calls back per field and per row end; this gathers them, and the lines rows start on.
struct CsvState {
  std::vector<std::string> fields;
  std::vector<std::vector<std::string>> rows;
  std::vector<std::int64_t> starts;
  std::int64_t line = 1;       // the line being fed
  std::int64_t row_start = 1;  // the line the row being read began on

  static void on_field(void* data, std::size_t size, void* state) {
    static_cast<CsvState*>(state)->fields.emplace_back(static_cast<const char*>(data), size);
  }
  static void on_row(int, void* state) {
    auto& s = *static_cast<CsvState*>(state);
    s.starts.push_back(s.row_start);
    s.rows.push_back(std::move(s.fields));
    s.fields.clear();
  }
};

Records read_csv(const fs::path& file) {
  std::ifstream in = open(file);
  csv_parser parser{};
  csv_init(&parser, CSV_STRICT | CSV_STRICT_FINI | CSV_APPEND_NULL);
  // Spaces around a field belong to it, as in Python's csv module.
  csv_set_space_func(&parser, [](unsigned char) { return 0; });
  CsvState state;
  std::string text;
  const auto fail = [&](std::int64_t line, const std::string& what) {
    csv_free(&parser);
    throw ConfigError(fmt::format("{}:{}: {}; a CSV file that does not parse is refused whole", file.string(), line, what));
  };
  // Line by line, so a row knows its first line: the one fed while no row had begun (libcsv's
  // state 0), the line a quoted field with newlines starts on.
  constexpr int kRowNotBegun = 0;
  while (std::getline(in, text)) {
    if (!in.eof()) text += '\n';
    if (parser.pstate == kRowNotBegun) state.row_start = state.line;
    if (csv_parse(&parser, text.data(), text.size(), CsvState::on_field, CsvState::on_row, &state) != text.size())
      fail(state.line, fmt::format("not CSV: {}", csv_strerror(csv_error(&parser))));
    ++state.line;
  }
  if (csv_fini(&parser, CsvState::on_field, CsvState::on_row, &state) != 0)
    fail(state.row_start, "the file ends inside this row's quoted field (a quote is not closed)");
  csv_free(&parser);

  Records out;
  if (state.rows.empty())
    throw ConfigError(fmt::format("{}: empty: a CSV file starts with a header row", file.string()));
  const std::vector<std::string>& header = state.rows.front();
  for (std::size_t r = 1; r < state.rows.size(); ++r) {
    const auto& fields = state.rows[r];
    if (fields.size() != header.size()) {
      out.bad.push_back({state.starts[r], fmt::format("{} fields where the header has {}", fields.size(), header.size())});
      continue;
    }
    json row = json::object();
    for (std::size_t c = 0; c < header.size(); ++c) row[header[c]] = fields[c];
    out.rows.push_back({state.starts[r], std::move(row)});
  }
  return out;
}

}  // namespace

Records read_records(const fs::path& file, FileFormat format) {
  Records records = format == FileFormat::jsonl ? read_jsonl(file) : read_csv(file);
  records.total = records.rows.size() + records.bad.size();
  return records;
}

}  // namespace prefopt::data
