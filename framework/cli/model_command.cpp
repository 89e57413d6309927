// `prefopt model inspect | logprobs | generate | score | tokenize`: what a Hugging Face checkpoint
// folder holds, and what prefopt computes with it, to compare with transformers.
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <torch/torch.h>

#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "models/decoder.h"
#include "models/tokenizer.h"
#include "models/weights.h"
#include "runtime.h"
#include "text.h"
#include "threads.h"

namespace po = boost::program_options;
namespace fs = std::filesystem;

namespace prefopt::cli {
namespace {

using models::DecoderConfig;
using nlohmann::json;

json describe(const fs::path& folder) {
  std::string tokenizer_description;
  const DecoderConfig c = models::read_decoder_config(folder);
  const std::int64_t parameters = models::check_checkpoint(folder);
  const models::Weights weights(folder);
  std::map<std::string, std::int64_t> stored;  // dtype -> tensors
  for (const std::string& name : weights.names()) ++stored[weights.entry(name).dtype];
  try {  // a tokenizer prefopt cannot read leaves the model usable with token ids
    if (const auto tokenizer = models::find_tokenizer(folder)) tokenizer_description = tokenizer->describe();
  } catch (const ConfigError& e) {
    tokenizer_description = fmt::format("not readable: {}", e.what());
  }
  json files = json::array();
  for (const auto& file : weights.files()) files.push_back(file->path().filename().string());
  json tokenizer = json::array();
  for (const char* name : {"tokenizer.json", "tokenizer.model", "vocab.json", "merges.txt", "tokenizer_config.json",
                           "special_tokens_map.json"})
    if (fs::exists(folder / name)) tokenizer.push_back(name);
  json out = {{"folder", folder.string()},
              {"architecture", c.architecture},
              {"model_type", c.model_type},
              {"family", models::family_name(c.family)},
              {"layers", c.depth},
              {"width", c.width},
              {"heads", c.heads},
              {"kv_heads", c.kv_heads},
              {"head_width", c.head_width},
              {"intermediate", c.intermediate},
              {"activation", c.activation},
              {"vocab", c.vocab},
              {"max_positions", c.max_positions},
              {"norm", c.family == models::Family::llama ? "rmsnorm" : "layernorm"},
              {"norm_eps", c.norm_eps},
              {"tied_embeddings", c.tied_embeddings},
              {"head", c.classifier ? fmt::format("score, {} labels", c.num_labels) : "language model"},
              {"biases", {{"qkv", c.qkv_bias}, {"output", c.output_bias}, {"mlp", c.mlp_bias}}},
              {"parameters", parameters},
              {"files", files},
              {"stored_dtypes", stored},
              {"config_dtype", c.stored_dtype},
              {"special_tokens", {{"bos", c.bos ? json(*c.bos) : json()}, {"eos", c.eos}, {"pad", c.pad ? json(*c.pad) : json()}}},
              {"tokenizer_files", tokenizer},
              {"tokenizer", tokenizer_description}};
  if (c.family == models::Family::gpt2) {
    out["positions"] = {{"kind", "learned"}};
  } else {
    out["positions"] = {{"kind", "rope"},
                        {"theta", c.rope.theta},
                        {"partial", c.rope.partial},
                        {"scaling", c.rope.type},
                        {"factor", c.rope.factor}};
  }
  if (c.sliding_window) out["sliding_window"] = *c.sliding_window;
  if (c.parallel_residual) out["parallel_residual"] = true;
  return out;
}

void print_description(const json& d) {
  auto line = [](const char* label, const std::string& text) { fmt::print("{:<13}{}\n", label, text); };
  line("checkpoint", d["folder"].get<std::string>());
  line("architecture", fmt::format("{} (model_type {}, computed as {})", d["architecture"].get<std::string>(),
                                   d["model_type"].get<std::string>(), d["family"].get<std::string>()));
  line("shape", fmt::format("{} layers, width {}, {} heads ({} key/value) of width {}, MLP {} ({}){}",
                            d["layers"].get<std::int64_t>(), d["width"].get<std::int64_t>(), d["heads"].get<std::int64_t>(),
                            d["kv_heads"].get<std::int64_t>(), d["head_width"].get<std::int64_t>(),
                            d["intermediate"].get<std::int64_t>(), d["activation"].get<std::string>(),
                            d.contains("parallel_residual") ? ", parallel residual" : ""));
  line("vocabulary", fmt::format("{} tokens, {} positions", d["vocab"].get<std::int64_t>(),
                                 d["max_positions"].get<std::int64_t>()));
  const json& positions = d["positions"];
  line("positions", positions["kind"] == "learned"
                        ? std::string("learned")
                        : fmt::format("RoPE, theta {}, {}% of each head, scaling {}{}", positions["theta"].get<double>(),
                                      100 * positions["partial"].get<double>(), positions["scaling"].get<std::string>(),
                                      positions["scaling"] == "default" ? "" : fmt::format(" × {}", positions["factor"].get<double>())));
  if (d.contains("sliding_window")) line("attention", fmt::format("sliding window of {}", d["sliding_window"].get<std::int64_t>()));
  line("norm", fmt::format("{}, eps {}", d["norm"].get<std::string>(), d["norm_eps"].get<double>()));
  std::vector<std::string> biases;
  for (const auto& [where, present] : d["biases"].items())
    if (present.get<bool>()) biases.push_back(where);
  line("biases", biases.empty() ? "none" : join(biases, ", "));
  line("head", d["head"].get<std::string>());
  line("embeddings", d["tied_embeddings"].get<bool>() ? "tied to the output head" : "separate output head");
  std::vector<std::string> stored;
  for (const auto& [dtype, count] : d["stored_dtypes"].items()) stored.push_back(fmt::format("{} × {}", count.get<std::int64_t>(), dtype));
  line("parameters", fmt::format("{:.3f}M in {} ({} tensors: {})", d["parameters"].get<std::int64_t>() / 1e6,
                                 join(d["files"].get<std::vector<std::string>>(), ", "),
                                 d["files"].size() == 1 ? "one file" : "shards", join(stored, ", ")));
  const json& special = d["special_tokens"];
  line("special", fmt::format("bos {}, eos {}, pad {}", special["bos"].is_null() ? "none" : special["bos"].dump(),
                              special["eos"].dump(), special["pad"].is_null() ? "none" : special["pad"].dump()));
  const auto tokenizer = d["tokenizer_files"].get<std::vector<std::string>>();
  const std::string read = d["tokenizer"].get<std::string>();
  line("tokenizer", tokenizer.empty() ? "no tokenizer files"
                                      : join(tokenizer, ", ") + (read.empty() ? "" : fmt::format(" (read: {})", read)));
  line("weights", "every weight present with the shape config.json implies");
}

// Calls `each` with every non-blank line of a JSONL file, which must be a JSON object, and a way
// to make an error naming the file and line.
using LineError = std::function<ConfigError(const std::string&)>;
void for_each_object(const fs::path& file, const std::function<void(const json&, const LineError&)>& each) {
  std::ifstream in(file);
  if (!in) throw ConfigError(fmt::format("{}: cannot read it", file.string()));
  std::string text;
  for (std::size_t number = 1; std::getline(in, text); ++number) {
    if (trim(text).empty()) continue;
    const LineError bad = [&](const std::string& what) {
      return ConfigError(fmt::format("{}:{}: {}", file.string(), number, what));
    };
    const json line = json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (line.is_discarded() || !line.is_object()) throw bad("not a JSON object");
    each(line, bad);
  }
}

// Encodes a line's "text", the error naming the line.
std::vector<std::int64_t> encode(const models::Tokenizer& tokenizer, const json& line, bool special,
                                 const LineError& bad) {
  try {
    return tokenizer.encode(line["text"].get<std::string>(), special);
  } catch (const ConfigError& e) {
    throw bad(e.what());
  }
}

// Token-id lists from a JSONL file: one object per line with "ids": [int, ...], or "text" when
// the folder has a tokenizer (encoded with its special tokens, as transformers' tokenizer(text)).
std::vector<std::vector<std::int64_t>> read_token_lists(const fs::path& file, std::int64_t vocab,
                                                        const std::optional<models::Tokenizer>& tokenizer) {
  std::vector<std::vector<std::int64_t>> lists;
  for_each_object(file, [&](const json& line, const LineError& bad) {
    std::vector<std::int64_t> ids;
    if (line.contains("ids")) {
      if (!line["ids"].is_array()) throw bad("\"ids\" is not a list of token ids");
      for (const json& id : line["ids"]) {
        if (!id.is_number_integer()) throw bad(fmt::format("token id {} is not an integer", id.dump()));
        ids.push_back(id.get<std::int64_t>());
      }
    } else if (line.contains("text") && line["text"].is_string()) {
      if (!tokenizer)
        throw bad("\"text\" needs a tokenizer.json in the checkpoint folder; give \"ids\" instead");
      ids = encode(*tokenizer, line, /*special=*/true, bad);
    } else {
      throw bad("needs \"ids\" (a list of token ids) or \"text\" (a string)");
    }
    if (ids.empty()) throw bad("no tokens");
    for (const std::int64_t id : ids)
      if (id < 0 || id >= vocab) throw bad(fmt::format("token id {} is not in the vocabulary [0, {})", id, vocab));
    lists.push_back(std::move(ids));
  });
  return lists;
}

struct ModelRun {
  models::Decoder model{nullptr};
  std::optional<models::Tokenizer> tokenizer;
  std::vector<std::vector<std::int64_t>> inputs;
  std::int64_t batch_size = 8;
};

// Options shared by logprobs, generate and score; nullopt when --help was asked for.
std::optional<ModelRun> prepare(const Args& args, const std::string& usage, po::options_description options,
                                po::variables_map& vars, bool classifier) {
  options.add_options()("input", po::value<std::string>()->required(),
                        "JSONL file: one {\"ids\": [...]} or {\"text\": \"...\"} per line")
      ("device", po::value<std::string>()->default_value("cpu"), "cpu, cuda, cuda:N or auto")
      ("dtype", po::value<std::string>()->default_value("float32"), "float32 or bfloat16")
      ("batch-size", po::value<std::int64_t>()->default_value(8), "sequences per forward pass (left-padded)");
  po::positional_options_description positional;
  positional.add("folder", 1);
  options.add_options()("folder", po::value<std::string>()->required(), "checkpoint folder");
  if (parse_args(args, usage, options, positional, vars)) return std::nullopt;
  const Runtime runtime = resolve_runtime(vars["device"].as<std::string>(), vars["dtype"].as<std::string>(),
                                          /*tf32=*/false, "--device/--dtype");
  if (vars["batch-size"].as<std::int64_t>() < 1) throw ConfigError("--batch-size must be at least 1");
  apply_threads(plan_threads(0));
  const fs::path folder = vars["folder"].as<std::string>();
  if (models::read_decoder_config(folder).classifier != classifier)
    throw ConfigError(fmt::format("{} is a {}: use `prefopt model {}`", folder.string(),
                                  classifier ? "causal language model" : "sequence classifier",
                                  classifier ? "logprobs` or `prefopt model generate" : "score"));
  ModelRun run;
  run.model = models::load_decoder(folder, {.dtype = runtime.dtype, .device = runtime.device});
  run.tokenizer = models::find_tokenizer(folder);
  run.inputs = read_token_lists(vars["input"].as<std::string>(), run.model->config().vocab, run.tokenizer);
  run.batch_size = vars["batch-size"].as<std::int64_t>();
  return run;
}

// Runs `compute` over the inputs in batches and prints one JSON line per input.
template <typename Compute>
void each_batch(ModelRun& run, Compute compute) {
  for (std::size_t start = 0; start < run.inputs.size(); start += run.batch_size) {
    const std::size_t end = std::min(run.inputs.size(), start + static_cast<std::size_t>(run.batch_size));
    const std::vector<std::vector<std::int64_t>> batch(run.inputs.begin() + start, run.inputs.begin() + end);
    const auto results = compute(batch);
    for (std::size_t i = 0; i < batch.size(); ++i) std::cout << results[i].dump() << "\n";
  }
  std::cout.flush();
}

}  // namespace

int model_inspect(const Args& args) {
  po::options_description options("Options");
  options.add_options()("format", po::value<std::string>()->default_value("text"), "text or json")
      ("folder", po::value<std::string>()->required(), "checkpoint folder");
  po::positional_options_description positional;
  positional.add("folder", 1);
  po::variables_map vars;
  if (parse_args(args,
                 "usage: prefopt model inspect FOLDER [--format text|json]\n\n"
                 "Describes a Hugging Face checkpoint folder (config.json, model.safetensors or its\n"
                 "shards): architecture, shape, positions, parameters, stored dtypes, special tokens and\n"
                 "tokenizer files. Checks every weight's presence and shape without loading the weights.",
                 options, positional, vars))
    return 0;
  const std::string format = vars["format"].as<std::string>();
  if (format != "text" && format != "json")
    throw ConfigError(fmt::format("--format: unknown format '{}'; formats are text, json", format));
  const json description = describe(vars["folder"].as<std::string>());
  if (format == "json") fmt::print("{}\n", description.dump(2));
  else print_description(description);
  return 0;
}

int model_logprobs(const Args& args) {
  po::variables_map vars;
  auto run = prepare(args,
                     "usage: prefopt model logprobs FOLDER --input FILE.jsonl [--device D] [--dtype T]\n\n"
                     "Prints, for each line {\"ids\": [...]} (or {\"text\": \"...\"}, with the folder's\n"
                     "tokenizer.json) of the input, the log-probability of each token\n"
                     "after the first given the tokens before it, as one JSON line:\n"
                     "  {\"ids\": [...], \"logprobs\": [...], \"total\": sum}",
                     po::options_description("Options"), vars, /*classifier=*/false);
  if (!run) return 0;
  each_batch(*run, [&](const auto& batch) {
    const auto log_probs = models::token_log_probs(run->model, batch);
    std::vector<json> lines;
    for (std::size_t i = 0; i < batch.size(); ++i) {
      double total = 0;
      for (const double value : log_probs[i]) total += value;
      lines.push_back({{"ids", batch[i]}, {"logprobs", log_probs[i]}, {"total", total}});
    }
    return lines;
  });
  return 0;
}

int model_generate(const Args& args) {
  po::options_description options("Options");
  options.add_options()("max-new-tokens", po::value<std::int64_t>()->default_value(16), "tokens to add at most");
  po::variables_map vars;
  auto run = prepare(args,
                     "usage: prefopt model generate FOLDER --input FILE.jsonl [--max-new-tokens N] [--device D]\n"
                     "                              [--dtype T]\n\n"
                     "Continues each line's {\"ids\": [...]} (or {\"text\": \"...\"}) greedily (the most likely token each step, with the\n"
                     "key/value cache), stopping after an EOS token, and prints one JSON line per input:\n"
                     "  {\"ids\": [...], \"generated\": [...], \"text\": \"...\"}   (text: with a tokenizer.json)",
                     options, vars, /*classifier=*/false);
  if (!run) return 0;
  const std::int64_t max_new = vars["max-new-tokens"].as<std::int64_t>();
  if (max_new < 1) throw ConfigError("--max-new-tokens must be at least 1");
  each_batch(*run, [&](const auto& batch) {
    const auto generated = models::greedy_generate(run->model, batch, max_new);
    std::vector<json> lines;
    for (std::size_t i = 0; i < batch.size(); ++i) {
      lines.push_back({{"ids", batch[i]}, {"generated", generated[i]}});
      if (run->tokenizer) lines.back()["text"] = run->tokenizer->decode(generated[i], /*skip_special_tokens=*/false);
    }
    return lines;
  });
  return 0;
}

int model_score(const Args& args) {
  po::variables_map vars;
  auto run = prepare(args,
                     "usage: prefopt model score FOLDER --input FILE.jsonl [--device D] [--dtype T]\n\n"
                     "Scores each line's {\"ids\": [...]} (or {\"text\": \"...\"}) with a *ForSequenceClassification\n"
                     "checkpoint (a reward model), read at the sequence's last token, and prints one JSON line\n"
                     "per input: {\"ids\": [...], \"scores\": [one per label]}",
                     po::options_description("Options"), vars, /*classifier=*/true);
  if (!run) return 0;
  each_batch(*run, [&](const auto& batch) {
    const auto scores = models::sequence_scores(run->model, batch);
    std::vector<json> lines;
    for (std::size_t i = 0; i < batch.size(); ++i) lines.push_back({{"ids", batch[i]}, {"scores", scores[i]}});
    return lines;
  });
  return 0;
}

int model_tokenize(const Args& args) {
  po::options_description options("Options");
  options.add_options()("input", po::value<std::string>()->required(), "JSONL file: one {\"text\": \"...\"} per line")
      ("no-special-tokens", po::bool_switch(), "without the post-processor's special tokens (BOS, ...)")
      ("folder", po::value<std::string>()->required(), "checkpoint folder with a tokenizer.json");
  po::positional_options_description positional;
  positional.add("folder", 1);
  po::variables_map vars;
  if (parse_args(args,
                 "usage: prefopt model tokenize FOLDER --input FILE.jsonl [--no-special-tokens]\n\n"
                 "Encodes each line's {\"text\": \"...\"} with the folder's tokenizer.json and decodes the ids\n"
                 "back, printing one JSON line per input: {\"text\": ..., \"ids\": [...], \"decoded\": ...}",
                 options, positional, vars))
    return 0;
  const fs::path folder = vars["folder"].as<std::string>(), input = vars["input"].as<std::string>();
  const auto tokenizer = models::find_tokenizer(folder);
  if (!tokenizer) throw ConfigError(fmt::format("{}: no tokenizer.json", folder.string()));
  const bool special = !vars["no-special-tokens"].as<bool>();
  for_each_object(input, [&](const json& line, const LineError& bad) {
    if (!line.contains("text") || !line["text"].is_string()) throw bad("needs \"text\" (a string)");
    const std::vector<std::int64_t> ids = encode(*tokenizer, line, special, bad);
    std::cout << json{{"text", line["text"]}, {"ids", ids}, {"decoded", tokenizer->decode(ids, false)}}.dump() << "\n";
  });
  std::cout.flush();
  return 0;
}

}  // namespace prefopt::cli
