// Prompt files and supervised fine-tuning files (JSON Lines or CSV) in a text task's tokens:
//   [prompts] path   one prompt a row: the algorithm's prompts and the evaluation's (its
//                    held-out rows), and the prompts of simulated preference pairs
//   [sft] data       a prompt and its completion a row: the SFT corpus instead of the task's
// A cell holds text or a conversation (docs/data.md). A prompt keeps its last prompt_length
// tokens; a completion is followed by EOS where it fits, else cut to max_response_length tokens.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "prefopt/task.h"

namespace prefopt::data {

struct PromptFileOptions {
  std::filesystem::path file;
  std::string format = "auto";
  std::string prompt = "prompt";
  std::string split = "split";  // optional column
  std::string held_out_split = "test";
  double held_out = 0.1;  // without a split column: this fraction, a fixed random draw
  std::int64_t max_bad_rows = 0;
};

struct PromptFile {
  at::Tensor train, held_out;  // [prompts, prompt_length], left-padded with kPromptPadding
  nlohmann::json report;
};

// ConfigError naming the file and lines when more than max_bad_rows rows are malformed, or when
// either split is left without prompts.
PromptFile read_prompt_file(const PromptFileOptions& options, const TextTask& task);

struct CompletionFileOptions {
  std::filesystem::path file;
  std::string format = "auto";
  std::string prompt = "prompt";
  std::string completion = "completion";
  std::int64_t max_bad_rows = 0;
};

struct CompletionFile {
  Sequences corpus;
  nlohmann::json report;
};

CompletionFile read_completion_file(const CompletionFileOptions& options, const TextTask& task);

}  // namespace prefopt::data
