// Checkpoint folders made in C++ for the model tests (tests/models/differential.py makes them with
// transformers instead).
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "models/decoder.h"

namespace prefopt::test {

void write_text(const std::filesystem::path& file, const std::string& text);

// A LlamaForCausalLM config.json: vocabulary 50, width 32, 2 layers of 4 query heads.
nlohmann::json llama_config(std::int64_t kv_heads = 2);

// A checkpoint folder of `config` with random weights (normal, std `scale`): the model it saved.
models::Decoder make_checkpoint(const std::filesystem::path& folder, const nlohmann::json& config,
                                std::uint64_t seed = 7, double scale = 0.3);

// A checkpoint folder of `config` initialized as transformers initializes a new model: matrices
// N(0, 0.02), norm weights 1, biases 0. A starting point supervised fine-tuning can train.
void make_initialized_checkpoint(const std::filesystem::path& folder, const nlohmann::json& config, std::uint64_t seed = 7);

}  // namespace prefopt::test
