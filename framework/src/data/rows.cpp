#include "data/rows.h"

#include <ATen/ATen.h>
#include <fmt/format.h>

#include <algorithm>
#include <numeric>
#include <random>

#include "prefopt/error.h"
#include "text.h"

namespace prefopt::data {
using nlohmann::json;

std::optional<std::vector<Message>> conversation(const json& value) {
  json list = value;
  if (value.is_string()) {
    const std::string& text = value.get_ref<const std::string&>();
    if (!text.starts_with('[')) return std::nullopt;
    list = json::parse(text, nullptr, /*allow_exceptions=*/false);
  }
  if (!list.is_array() || list.empty()) return std::nullopt;
  std::vector<Message> out;
  for (const json& message : list) {
    if (!message.is_object() || !message.contains("role") || !message.contains("content") ||
        !message["role"].is_string() || !message["content"].is_string())
      return std::nullopt;
    out.emplace_back(message["role"].get<std::string>(), message["content"].get<std::string>());
  }
  return out;
}

std::string text_of(const std::vector<Message>& messages, std::size_t from) {
  std::string out;
  for (std::size_t i = from; i < messages.size(); ++i) out += (i > from ? "\n" : "") + messages[i].second;
  return out;
}

const json& Cells::cell(const std::string& column, const std::string& setting) const {
  if (has(column)) return row_.at(column);
  std::vector<std::string> keys;
  for (const auto& item : row_.items()) keys.push_back(item.key());
  throw RowProblem(fmt::format("no column '{}' ({} {}){}; the row has {}", column, section_, setting,
                               did_you_mean(column, keys), join(keys, ", ")));
}

std::string Cells::text(const std::string& column, const std::string& setting) const {
  const json& value = cell(column, setting);
  if (auto messages = conversation(value)) return text_of(*messages);
  if (value.is_string()) return value.get<std::string>();
  throw RowProblem(fmt::format("column '{}' ({} {}) holds a JSON {}, not text or a list of {{\"role\", "
                               "\"content\"}} messages",
                               column, section_, setting, value.type_name()));
}

std::string Cells::label(const std::string& column, const std::string& setting) const {
  if (!has(column)) return "";
  const json& value = row_.at(column);
  if (value.is_null()) return "";
  if (value.is_string()) return value.get<std::string>();
  if (value.is_number_integer()) return std::to_string(value.get<std::int64_t>());
  throw RowProblem(fmt::format("column '{}' ({} {}) holds a JSON {}, not a string", column, section_, setting,
                               value.type_name()));
}

bool Cells::flag(const std::string& column, const std::string& setting) const {
  if (!has(column)) return false;
  const json& value = row_.at(column);
  if (value.is_boolean()) return value.get<bool>();
  if (value.is_null()) return false;
  if (value.is_string()) {
    const std::string text = value.get<std::string>();
    if (text == "true" || text == "True" || text == "1") return true;
    if (text == "false" || text == "False" || text == "0" || text.empty()) return false;
  }
  throw RowProblem(fmt::format("column '{}' ({} {}) holds {}, not true or false", column, section_, setting, value.dump()));
}

json Cells::list(const std::string& column, const std::string& setting) const {
  json value = cell(column, setting);
  if (value.is_string()) value = json::parse(value.get<std::string>(), nullptr, /*allow_exceptions=*/false);
  if (!value.is_array())
    throw RowProblem(fmt::format("column '{}' ({} {}) must hold a list", column, section_, setting));
  return value;
}

const std::vector<std::int64_t>& Encoder::operator()(const std::string& text) {
  auto found = cache_.find(text);
  if (found == cache_.end()) found = cache_.emplace(text, task_.encode(text)).first;
  return found->second;
}

bool put_prompt(at::Tensor& prompts, std::int64_t row, const std::vector<std::int64_t>& ids) {
  const std::int64_t width = prompts.size(1);
  const auto kept = std::min<std::int64_t>(static_cast<std::int64_t>(ids.size()), width);
  std::copy(ids.end() - kept, ids.end(), prompts[row].data_ptr<std::int64_t>() + (width - kept));
  return kept < static_cast<std::int64_t>(ids.size());
}

bool put_response(at::Tensor& responses, std::int64_t row, const std::vector<std::int64_t>& ids) {
  const std::int64_t width = responses.size(1);
  const auto kept = std::min<std::int64_t>(static_cast<std::int64_t>(ids.size()), width);
  std::copy(ids.begin(), ids.begin() + kept, responses[row].data_ptr<std::int64_t>());
  return static_cast<std::int64_t>(ids.size()) >= width;
}

bool has_column(const Records& records, const std::string& column) {
  return std::any_of(records.rows.begin(), records.rows.end(), [&](const Record& r) { return r.row.contains(column); });
}

std::vector<bool> fixed_held_out(std::size_t n, double fraction) {
  std::vector<std::size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::mt19937_64 shuffle(0);
  std::shuffle(order.begin(), order.end(), shuffle);
  std::vector<bool> held_out(n, false);
  const auto count = static_cast<std::size_t>(fraction * static_cast<double>(n) + 0.5);
  for (std::size_t i = 0; i < count; ++i) held_out[order[i]] = true;
  return held_out;
}

std::vector<bool> held_out_flags(const std::vector<std::string>& splits, bool has_split,
                                 const std::string& held_out_split, double fraction) {
  if (!has_split) return fixed_held_out(splits.size(), fraction);
  std::vector<bool> out;
  for (const std::string& split : splits) out.push_back(split == held_out_split);
  return out;
}

namespace {
std::string where(const std::filesystem::path& file, const BadRow& row) {
  return fmt::format("{}:{}: {}", file.string(), row.line, row.problem);
}
}  // namespace

void refuse_bad_rows(const std::filesystem::path& file, std::vector<BadRow>& bad, std::int64_t max_bad_rows,
                     const std::string& setting) {
  std::sort(bad.begin(), bad.end(), [](const BadRow& x, const BadRow& y) { return x.line < y.line; });
  if (static_cast<std::int64_t>(bad.size()) <= max_bad_rows) return;
  std::string listed;
  for (std::size_t i = 0; i < std::min<std::size_t>(bad.size(), 5); ++i) listed += "\n  " + where(file, bad[i]);
  if (bad.size() > 5) listed += fmt::format("\n  ... and {} more", bad.size() - 5);
  throw ConfigError(fmt::format("{}: {} malformed row{} ({} = {} allows {}):{}", file.string(), bad.size(),
                                bad.size() == 1 ? "" : "s", setting, max_bad_rows, max_bad_rows, listed));
}

nlohmann::json bad_row_list(const std::filesystem::path& file, const std::vector<BadRow>& bad) {
  nlohmann::json out = nlohmann::json::array();
  for (std::size_t i = 0; i < std::min<std::size_t>(bad.size(), 20); ++i) out.push_back(where(file, bad[i]));
  return out;
}

}  // namespace prefopt::data
