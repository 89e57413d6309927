#include "data/text_files.h"

#include <ATen/ATen.h>
#include <fmt/format.h>

#include <algorithm>
#include <set>

#include "data/records.h"
#include "data/rows.h"
#include "prefopt/error.h"

namespace prefopt::data {
using nlohmann::json;

namespace {

at::Tensor prompt_table(const std::vector<std::vector<std::int64_t>>& prompts, std::int64_t width, std::int64_t& cut) {
  at::Tensor out = at::full({static_cast<std::int64_t>(prompts.size()), width}, kPromptPadding, at::kLong);
  for (std::size_t row = 0; row < prompts.size(); ++row) cut += put_prompt(out, static_cast<std::int64_t>(row), prompts[row]);
  return out;
}

}  // namespace

PromptFile read_prompt_file(const PromptFileOptions& options, const TextTask& task) {
  const auto& file = options.file;
  Records records = read_records(file, file_format(file, options.format, "[prompts] format"));
  std::vector<BadRow> bad = std::move(records.bad);
  Encoder encode(task);
  // Distinct prompts (in tokens), in file order, with their split.
  std::vector<std::vector<std::int64_t>> prompts;
  std::vector<std::string> splits;
  std::set<std::vector<std::int64_t>> seen;
  std::int64_t duplicates = 0;
  for (const Record& record : records.rows) {
    try {
      const Cells cells(record.row, "[prompts]");
      const std::vector<std::int64_t>& ids = encode(cells.text(options.prompt, "prompt"));
      if (ids.empty()) throw RowProblem("the prompt is empty");
      if (!seen.insert(ids).second) {
        ++duplicates;
        continue;
      }
      prompts.push_back(ids);
      splits.push_back(cells.label(options.split, "split"));
    } catch (const RowProblem& e) {
      bad.push_back({record.line, e.what()});
    } catch (const std::invalid_argument& e) {  // text the task cannot spell
      bad.push_back({record.line, e.what()});
    }
  }
  refuse_bad_rows(file, bad, options.max_bad_rows, "[prompts] max_bad_rows");
  const std::vector<bool> held_out =
      held_out_flags(splits, has_column(records, options.split), options.held_out_split, options.held_out);
  std::vector<std::vector<std::int64_t>> train, test;
  for (std::size_t i = 0; i < prompts.size(); ++i) (held_out[i] ? test : train).push_back(std::move(prompts[i]));
  if (train.empty() || test.empty())
    throw ConfigError(fmt::format("{}: {} training and {} held-out prompts; both need some ([prompts] held_out or "
                                  "split chooses the held-out ones)",
                                  file.string(), train.size(), test.size()));
  std::int64_t cut = 0;
  PromptFile out;
  out.train = prompt_table(train, task.prompt_length(), cut);
  out.held_out = prompt_table(test, task.prompt_length(), cut);
  out.report = {{"file", file.string()},
                {"rows", records.total},
                {"bad_rows", bad.size()},
                {"bad_row_problems", bad_row_list(file, bad)},
                {"duplicate_prompts", duplicates},
                {"train_prompts", train.size()},
                {"held_out_prompts", test.size()},
                {"prompts_cut", cut}};
  return out;
}

CompletionFile read_completion_file(const CompletionFileOptions& options, const TextTask& task) {
  const auto& file = options.file;
  Records records = read_records(file, file_format(file, options.format, "[sft] format"));
  std::vector<BadRow> bad = std::move(records.bad);
  Encoder encode(task);
  std::vector<std::pair<std::vector<std::int64_t>, std::vector<std::int64_t>>> rows;
  for (const Record& record : records.rows) {
    try {
      const Cells cells(record.row, "[sft]");
      const std::vector<std::int64_t> prompt = encode(cells.text(options.prompt, "prompt"));
      if (prompt.empty()) throw RowProblem("the prompt is empty");
      rows.emplace_back(prompt, encode(cells.text(options.completion, "completion")));
    } catch (const RowProblem& e) {
      bad.push_back({record.line, e.what()});
    } catch (const std::invalid_argument& e) {  // text the task cannot spell
      bad.push_back({record.line, e.what()});
    }
  }
  refuse_bad_rows(file, bad, options.max_bad_rows, "[sft] max_bad_rows");
  if (rows.empty()) throw ConfigError(fmt::format("{}: no prompt and completion in the file", file.string()));
  const auto n = static_cast<std::int64_t>(rows.size());
  const std::int64_t eos = task.eos_token();
  at::Tensor prompts = at::full({n, task.prompt_length()}, kPromptPadding, at::kLong);
  at::Tensor responses = at::full({n, task.max_response_length()}, eos, at::kLong);
  std::int64_t prompts_cut = 0, completions_cut = 0;
  for (std::int64_t row = 0; row < n; ++row) {
    prompts_cut += put_prompt(prompts, row, rows[static_cast<std::size_t>(row)].first);
    completions_cut += put_response(responses, row, rows[static_cast<std::size_t>(row)].second);
  }
  return {{prompts, responses, response_lengths(responses, eos)},
          {{"file", file.string()},
           {"rows", records.total},
           {"bad_rows", bad.size()},
           {"bad_row_problems", bad_row_list(file, bad)},
           {"examples", n},
           {"prompts_cut", prompts_cut},
           {"completions_cut", completions_cut}}};
}

}  // namespace prefopt::data
