// What every dataset reader shares: a row's cells read through a section's column mapping, text
// into a task's tokens, rows placed in token tensors the way the pipeline expects them, and the
// policy on malformed rows.
#pragma once

#include <ATen/core/Tensor.h>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "data/records.h"
#include "prefopt/task.h"

namespace prefopt::data {

// One row's problem: the row is skipped and counted against its section's max_bad_rows.
struct RowProblem : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// A conversation's messages: role, content.
using Message = std::pair<std::string, std::string>;
// A list of {"role", "content"} objects (in CSV, that list as JSON text), or nullopt.
std::optional<std::vector<Message>> conversation(const nlohmann::json& value);
// The contents of messages[from...], joined by newlines.
std::string text_of(const std::vector<Message>& messages, std::size_t from = 0);

// A row's cells, each named by a column the section `section` ("[dataset]") maps with a
// setting; problems are RowProblems naming the column and the setting.
class Cells {
 public:
  Cells(const nlohmann::json& row, std::string section) : row_(row), section_(std::move(section)) {}

  bool has(const std::string& column) const { return !column.empty() && row_.contains(column); }
  // A required cell: a missing one is a problem with a did-you-mean among the row's keys.
  const nlohmann::json& cell(const std::string& column, const std::string& setting) const;
  // Text: a string, or a conversation's text.
  std::string text(const std::string& column, const std::string& setting) const;
  // An optional column as a string ("" when absent); integers as written.
  std::string label(const std::string& column, const std::string& setting) const;
  // An optional true/false column (false when absent; in CSV "true", "false", "1", "0", "").
  bool flag(const std::string& column, const std::string& setting) const;
  // A list column (in CSV, the list as JSON text).
  nlohmann::json list(const std::string& column, const std::string& setting) const;

 private:
  const nlohmann::json& row_;
  std::string section_;
};

// Text in the task's tokens, each distinct string encoded once. std::invalid_argument for text
// the task cannot spell.
class Encoder {
 public:
  explicit Encoder(const TextTask& task) : task_(task) {}
  const std::vector<std::int64_t>& operator()(const std::string& text);

 private:
  const TextTask& task_;
  std::unordered_map<std::string, std::vector<std::int64_t>> cache_;
};

// Row `row` of `prompts` [n, prompt_length], filled with kPromptPadding: `ids` right-aligned,
// their last prompt_length tokens when longer. True when they were cut.
bool put_prompt(at::Tensor& prompts, std::int64_t row, const std::vector<std::int64_t>& ids);
// Row `row` of `responses` [n, width], filled with EOS: `ids`, then EOS where it fits. True when
// there was no room for EOS (the response was cut).
bool put_response(at::Tensor& responses, std::int64_t row, const std::vector<std::int64_t>& ids);

// Whether any row has `column`.
bool has_column(const Records& records, const std::string& column);

// Which of `n` items are held out: a fixed random `fraction` of them, the same for the same n, so
// every trial and seed holds out the same ones.
std::vector<bool> fixed_held_out(std::size_t n, double fraction);
// With a split column, the items whose split is `held_out_split`; without, fixed_held_out.
std::vector<bool> held_out_flags(const std::vector<std::string>& splits, bool has_split,
                                 const std::string& held_out_split, double fraction);

// A ConfigError listing the first five as "file:line: problem" when there are more bad rows than
// `max_bad_rows` (`setting` names that limit); sorts them by line.
void refuse_bad_rows(const std::filesystem::path& file, std::vector<BadRow>& bad, std::int64_t max_bad_rows,
                     const std::string& setting);
// The first 20 of them as "file:line: problem", for a stage's report.
nlohmann::json bad_row_list(const std::filesystem::path& file, const std::vector<BadRow>& bad);

}  // namespace prefopt::data
