// The safetensors reader and the Hugging Face decoders, without transformers: round trips,
// malformed files refused by name, and properties the computation must have (padding and the
// key/value cache change nothing, RoPE sees only relative positions, grouped-query attention
// shares each key/value head with its group). tests/models/differential.py compares the numbers
// with transformers itself.
#include <catch2/catch.hpp>
#include <fmt/format.h>
#include <torch/cuda.h>
#include <torch/torch.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "models/decoder.h"
#include "models/fixtures.h"
#include "models/safetensors.h"
#include "models/tokenizer.h"
#include "models/weights.h"
#include "prefopt/error.h"
#include "support.h"

namespace prefopt::test {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using models::Decoder;

// A safetensors file with `header` (JSON text) and `data_bytes` zero bytes of data.
void write_raw(const fs::path& file, const std::string& header, std::size_t data_bytes) {
  std::ofstream out(file, std::ios::binary);
  const std::uint64_t length = header.size();
  out.write(reinterpret_cast<const char*>(&length), 8);
  out << header << std::string(data_bytes, '\0');
}

std::string open_error(const fs::path& file) {
  try {
    models::SafetensorsFile opened(file);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

// A byte-level BPE tokenizer.json over 9 tokens and an added <eos> (id 9) that ends every
// encoded sequence.
json tiny_tokenizer() {
  // Byte-level: "Ġ" is the space byte. Merges: "l o" (rank 0) before "h e" (1), then "he lo" (2).
  const json vocab = {{"h", 0}, {"e", 1}, {"l", 2}, {"o", 3}, {"Ġ", 4}, {"lo", 5}, {"he", 6}, {"helo", 7}, {"Ġl", 8}};
  return {{"version", "1.0"},
               {"added_tokens", {{{"id", 9}, {"content", "<eos>"}, {"special", true}, {"normalized", false}}}},
               {"normalizer", nullptr},
               {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}}},
               {"post_processor", {{"type", "TemplateProcessing"},
                                   {"single", {{{"Sequence", {{"id", "A"}, {"type_id", 0}}}},
                                               {{"SpecialToken", {{"id", "<eos>"}, {"type_id", 0}}}}}},
                                   {"special_tokens", {{"<eos>", {{"id", "<eos>"}, {"ids", {9}}, {"tokens", {"<eos>"}}}}}}}},
               {"decoder", {{"type", "ByteLevel"}}},
               {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", {"l o", "h e", {"he", "lo"}, "Ġ l"}}}}};
}

}  // namespace

TEST_CASE("safetensors files round-trip tensors of every dtype, with metadata", "[models]") {
  TempDir dir;
  const std::map<std::string, at::Tensor> tensors = {
      {"a.float", torch::randn({3, 5})},
      {"b.bf16", torch::randn({7}).to(torch::kBFloat16)},
      {"c.long", torch::arange(11, torch::kLong).reshape({11, 1})},
      {"d.empty", torch::zeros({0, 4})},
      {"e.bool", torch::tensor({true, false, true})}};
  models::write_safetensors(dir.path() / "x.safetensors", tensors, {{"format", "pt"}});
  const models::SafetensorsFile file(dir.path() / "x.safetensors");
  CHECK(file.metadata().at("format") == "pt");
  REQUIRE(file.entries().size() == tensors.size());
  CHECK(file.entries().at("b.bf16").dtype == "BF16");
  for (const auto& [name, tensor] : tensors) {
    const at::Tensor loaded = file.load(name);
    CHECK(loaded.scalar_type() == tensor.scalar_type());
    CHECK(loaded.sizes() == tensor.sizes());
    CHECK(torch::equal(loaded, tensor));
  }
  // The reference writer pads the header so the data starts 8-byte aligned.
  std::ifstream in(dir.path() / "x.safetensors", std::ios::binary);
  std::uint64_t header = 0;
  in.read(reinterpret_cast<char*>(&header), 8);
  CHECK(header % 8 == 0);
  CHECK_THROWS_WITH(file.load("nope"), Catch::Contains("no tensor 'nope'"));
}

TEST_CASE("malformed safetensors files are refused with the file's and the tensor's names", "[models]") {
  TempDir dir;
  const fs::path file = dir.path() / "bad.safetensors";
  auto expect = [&](const std::string& header, std::size_t data, const std::string& message) {
    write_raw(file, header, data);
    const std::string error = open_error(file);
    INFO(header);
    CHECK_THAT(error, Catch::Contains(file.string()) && Catch::Contains(message));
  };
  expect("not json", 0, "not a JSON object");
  expect(R"({"w": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]}})", 12, "tensor 'w'");
  expect(R"({"w": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]}})", 12, "run past the data's 12 bytes");
  expect(R"({"w": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 16]}})", 16, "needs 24 bytes but data_offsets span 16");
  expect(R"({"w": {"dtype": "F31", "shape": [2], "data_offsets": [0, 8]}})", 8, "unknown dtype 'F31'");
  expect(R"({"w": {"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]}})", 8, "not a non-negative integer");
  expect(R"({"w": {"dtype": "F32", "shape": [2]}})", 8, "needs dtype, shape and data_offsets");
  expect(R"({"w": {"dtype": "F32", "shape": [2], "data_offsets": [8, 0]}})", 8, "begin <= end");
  expect(R"({"w": {"dtype": "F32", "shape": [4294967296, 4294967296], "data_offsets": [0, 8]}})", 8,
         "more bytes than 64 bits count");
  // Zero elements, but 4 × 2^32 × (2^32 - 48) bytes before the 0: refused (found by the fuzzer).
  expect(R"({"w": {"dtype": "F32", "shape": [4294967296, 4294967248, 0], "data_offsets": [0, 0]}})", 0,
         "more bytes than 64 bits count");
  expect(R"({"v": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
             "w": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}})", 12, "'v' and 'w' overlap");
  expect(R"({"__metadata__": {"n": 1}})", 0, "__metadata__.n is not a string");

  std::ofstream(file, std::ios::binary | std::ios::trunc) << "abc";
  CHECK_THAT(open_error(file), Catch::Contains("3 bytes: too short"));
  {
    std::ofstream out(file, std::ios::binary | std::ios::trunc);
    const std::uint64_t huge = 1ull << 40;
    out.write(reinterpret_cast<const char*>(&huge), 8);
    out << "{}";
  }
  CHECK_THAT(open_error(file), Catch::Contains("header claims 1099511627776 bytes but the file has 2"));

  // A dtype libtorch cannot hold opens (inspect describes it) but does not load.
  write_raw(file, R"({"w": {"dtype": "F8_E4M3", "shape": [2], "data_offsets": [0, 2]}})", 2);
  const models::SafetensorsFile eight(file);
  CHECK_THROWS_WITH(eight.load("w"), Catch::Contains("tensor 'w'") && Catch::Contains("F8_E4M3"));
}

TEST_CASE("a Llama checkpoint loads by name, and padding changes no sequence's logits", "[models]") {
  TempDir dir;
  Decoder saved = make_checkpoint(dir.path() / "llama", llama_config());
  Decoder model = models::load_decoder(dir.path() / "llama");
  torch::NoGradGuard no_grad;
  const auto theirs = saved->named_parameters();
  for (const auto& parameter : model->named_parameters()) CHECK(torch::equal(parameter.value(), theirs[parameter.key()]));
  CHECK(theirs.contains("model.layers.1.self_attn.k_proj.weight"));
  CHECK(theirs["model.layers.1.self_attn.k_proj.weight"].sizes() == torch::IntArrayRef({16, 32}));  // 2 kv heads of 8

  // Alone, and left-padded in a batch beside a longer sequence: the same logits.
  const torch::Tensor alone = model->forward(torch::tensor({{5, 9, 11}}));
  const torch::Tensor tokens = torch::tensor({{0, 0, 0, 5, 9, 11}, {4, 8, 15, 16, 23, 42}});
  const torch::Tensor mask = torch::tensor({{0, 0, 0, 1, 1, 1}, {1, 1, 1, 1, 1, 1}});
  const torch::Tensor batched = model->forward(tokens, mask);
  CHECK(torch::allclose(batched[0].narrow(0, 3, 3), alone[0], 1e-5, 1e-5));
  CHECK(torch::allclose(batched[1], model->forward(tokens[1].unsqueeze(0))[0], 1e-5, 1e-5));

  // Per-token log-probs are the log-softmax of those logits at the tokens that follow.
  const auto log_probs = models::token_log_probs(model, {{5, 9, 11}, {7}});
  REQUIRE(log_probs[0].size() == 2);
  CHECK(log_probs[1].empty());
  const torch::Tensor expected = alone[0].log_softmax(-1);
  CHECK(log_probs[0][0] == Approx(expected[0][9].item<double>()).margin(1e-5));
  CHECK(log_probs[0][1] == Approx(expected[1][11].item<double>()).margin(1e-5));
}

TEST_CASE("greedy generation with the key/value cache picks what full recomputation picks", "[models]") {
  TempDir dir;
  for (const char* type : {"llama", "gpt2", "gpt_neox"}) {
    json config = llama_config();
    if (std::string(type) == "gpt2")
      config = {{"model_type", "gpt2"}, {"vocab_size", 50}, {"n_embd", 32}, {"n_layer", 2}, {"n_head", 4},
                {"n_positions", 64},    {"eos_token_id", 3}};
    if (std::string(type) == "gpt_neox")
      config = {{"model_type", "gpt_neox"}, {"vocab_size", 50}, {"hidden_size", 32}, {"num_hidden_layers", 2},
                {"num_attention_heads", 4},  {"intermediate_size", 64}, {"max_position_embeddings", 64},
                {"rotary_pct", 0.5},        {"eos_token_id", 3}};
    make_checkpoint(dir.path() / type, config);
    Decoder model = models::load_decoder(dir.path() / type);
    const std::vector<std::vector<std::int64_t>> prompts = {{7, 8, 9, 10, 11}, {12}, {20, 21}};
    const auto generated = models::greedy_generate(model, prompts, 10);
    torch::NoGradGuard no_grad;
    for (std::size_t i = 0; i < prompts.size(); ++i) {
      std::vector<std::int64_t> sequence = prompts[i], expected;
      for (int step = 0; step < 10; ++step) {  // the whole sequence again each step, no cache, no padding
        const std::int64_t next = model->forward(torch::tensor(sequence).unsqueeze(0))[0][-1].argmax().item<std::int64_t>();
        expected.push_back(next);
        sequence.push_back(next);
        if (next == 3) break;
      }
      INFO(type << " prompt " << i);
      CHECK(generated[i] == expected);
    }
  }
}

TEST_CASE("GPT-2's original checkpoints load: names without 'transformer.', attention-mask buffers", "[models]") {
  TempDir dir;
  const json config = {{"model_type", "gpt2"}, {"vocab_size", 50}, {"n_embd", 32}, {"n_layer", 2}, {"n_head", 4},
                       {"n_positions", 64}};
  Decoder saved = make_checkpoint(dir.path() / "new", config);
  std::map<std::string, at::Tensor> hub_style;
  std::int64_t parameters = 0;
  for (const auto& parameter : saved->named_parameters()) {
    hub_style[parameter.key().substr(std::string("transformer.").size())] = parameter.value();
    parameters += parameter.value().numel();
  }
  for (int layer = 0; layer < 2; ++layer)  // the causal-mask buffers of transformers before 4.x
    hub_style[fmt::format("h.{}.attn.bias", layer)] = torch::ones({1, 1, 64, 64});
  fs::create_directories(dir.path() / "hub");
  write_text(dir.path() / "hub" / "config.json", config.dump());
  models::write_safetensors(dir.path() / "hub" / "model.safetensors", hub_style);
  Decoder loaded = models::load_decoder(dir.path() / "hub");
  torch::NoGradGuard no_grad;
  const torch::Tensor tokens = torch::tensor({{5, 9, 11, 2}});
  CHECK(torch::equal(loaded->forward(tokens), saved->forward(tokens)));
  CHECK(models::check_checkpoint(dir.path() / "hub") == parameters);  // the buffers are not parameters
}

TEST_CASE("GPT-2's learned positions bound prompt plus generation, and ids outside the vocabulary are refused", "[models][cli]") {
  TempDir dir;
  const fs::path folder = dir.path() / "gpt2";
  make_checkpoint(folder, {{"model_type", "gpt2"}, {"vocab_size", 50}, {"n_embd", 32}, {"n_layer", 1}, {"n_head", 4},
                           {"n_positions", 16}});
  Decoder model = models::load_decoder(folder);
  const std::vector<std::int64_t> prompt(12, 7);
  CHECK(models::greedy_generate(model, {prompt}, 5)[0].size() == 5);  // 12 + 4 fed back = 16 positions
  CHECK_THROWS_WITH(models::greedy_generate(model, {prompt}, 6),
                    Catch::Contains("12 tokens and 5 more to generate exceed the model's n_positions of 16"));
  CHECK_THROWS_WITH(models::token_log_probs(model, {{7, 50}}), Catch::Contains("token id 50 is outside the vocabulary"));
  write_text(dir.path() / "in.jsonl", json({{"ids", prompt}}).dump() + "\n");
  const CliResult too_long = run_cli({"model", "generate", folder.string(), "--input", (dir.path() / "in.jsonl").string(),
                                      "--max-new-tokens", "6"});
  CHECK(too_long.status == 2);
  CHECK_THAT(too_long.err, Catch::Contains("exceed the model's n_positions of 16"));
}

TEST_CASE("RoPE attention depends on relative positions only", "[models]") {
  TempDir dir;
  make_checkpoint(dir.path() / "llama", llama_config());
  Decoder model = models::load_decoder(dir.path() / "llama");
  torch::NoGradGuard no_grad;
  const torch::Tensor tokens = torch::tensor({{5, 9, 11, 2, 30}});
  const torch::Tensor at_zero = model->logits(model->hidden(tokens, torch::arange(5).unsqueeze(0), {}, nullptr));
  const torch::Tensor shifted = model->logits(model->hidden(tokens, torch::arange(17, 22).unsqueeze(0), {}, nullptr));
  CHECK(torch::allclose(at_zero, shifted, 1e-4, 1e-4));
  // Learned positions (GPT-2) do not have the property: the check can tell.
  make_checkpoint(dir.path() / "gpt2", {{"model_type", "gpt2"}, {"vocab_size", 50}, {"n_embd", 32}, {"n_layer", 1},
                                        {"n_head", 4}, {"n_positions", 64}});
  Decoder gpt2 = models::load_decoder(dir.path() / "gpt2");
  CHECK_FALSE(torch::allclose(gpt2->logits(gpt2->hidden(tokens, torch::arange(5).unsqueeze(0), {}, nullptr)),
                              gpt2->logits(gpt2->hidden(tokens, torch::arange(17, 22).unsqueeze(0), {}, nullptr)), 1e-4,
                              1e-4));
}

TEST_CASE("grouped-query attention gives each key/value head to a group of consecutive query heads", "[models]") {
  // A 4-head model with 2 key/value heads equals the 4-head model whose key/value heads are
  // copies: query heads 0 and 1 read key/value head 0, heads 2 and 3 head 1.
  TempDir dir;
  make_checkpoint(dir.path() / "grouped", llama_config(2));
  Decoder grouped = models::load_decoder(dir.path() / "grouped");
  fs::create_directories(dir.path() / "full");
  write_text(dir.path() / "full" / "config.json", llama_config(4).dump());
  std::map<std::string, at::Tensor> tensors;
  for (const auto& parameter : grouped->named_parameters()) {
    at::Tensor value = parameter.value().detach();
    if (parameter.key().ends_with("k_proj.weight") || parameter.key().ends_with("v_proj.weight"))
      value = value.reshape({2, 8, 32}).repeat_interleave(2, 0).reshape({32, 32});
    tensors[parameter.key()] = value;
  }
  models::write_safetensors(dir.path() / "full" / "model.safetensors", tensors);
  Decoder full = models::load_decoder(dir.path() / "full");
  torch::NoGradGuard no_grad;
  const torch::Tensor tokens = torch::tensor({{5, 9, 11, 2, 30, 7}});
  CHECK(torch::allclose(grouped->forward(tokens), full->forward(tokens), 1e-5, 1e-5));
}

TEST_CASE("a sliding window hides keys more than `window` positions back", "[models]") {
  TempDir dir;
  json config = llama_config();
  config["model_type"] = "mistral";
  config["sliding_window"] = 3;
  make_checkpoint(dir.path() / "mistral", config);
  Decoder model = models::load_decoder(dir.path() / "mistral");
  torch::NoGradGuard no_grad;
  // With one layer's window of 3 and 2 layers, the last token sees 5 positions back at most:
  // changing the first of 8 tokens leaves the last logits alone, changing the sixth does not.
  const torch::Tensor tokens = torch::tensor({{5, 9, 11, 2, 30, 7, 8, 13}});
  const torch::Tensor last = model->forward(tokens)[0][-1];
  torch::Tensor first_changed = tokens.clone(), near_changed = tokens.clone();
  first_changed[0][0] = 40;
  near_changed[0][5] = 40;
  CHECK(torch::allclose(model->forward(first_changed)[0][-1], last, 1e-6, 1e-6));
  CHECK_FALSE(torch::allclose(model->forward(near_changed)[0][-1], last, 1e-4, 1e-4));
}

TEST_CASE("a checkpoint folder that does not match its config is refused naming file and tensor", "[models]") {
  TempDir dir;
  const fs::path folder = dir.path() / "llama";
  Decoder saved = make_checkpoint(folder, llama_config());
  std::map<std::string, at::Tensor> tensors;
  for (const auto& parameter : saved->named_parameters()) tensors[parameter.key()] = parameter.value();
  auto load_error = [&] {
    try {
      models::load_decoder(folder);
    } catch (const ConfigError& e) {
      return std::string(e.what());
    }
    return std::string();
  };

  auto without = tensors;
  without.erase("model.layers.1.mlp.up_proj.weight");
  models::write_safetensors(folder / "model.safetensors", without);
  CHECK_THAT(load_error(), Catch::Contains("weight 'model.layers.1.mlp.up_proj.weight' is missing"));

  auto reshaped = tensors;
  reshaped["model.norm.weight"] = torch::ones({31});
  models::write_safetensors(folder / "model.safetensors", reshaped);
  CHECK_THAT(load_error(), Catch::Contains((folder / "model.safetensors").string()) &&
                               Catch::Contains("'model.norm.weight' has shape [31] but config.json implies [32]"));

  auto extra = tensors;
  extra["score.weight"] = torch::ones({2, 32});
  models::write_safetensors(folder / "model.safetensors", extra);
  CHECK_THAT(load_error(), Catch::Contains("does not have: score.weight"));

  models::write_safetensors(folder / "model.safetensors", tensors);
  json config = llama_config();
  config["model_type"] = "lama";
  write_text(folder / "config.json", config.dump());
  CHECK_THAT(load_error(), Catch::Contains("config.json: model_type: 'lama' is not supported") &&
                               Catch::Contains("did you mean 'llama'"));
  config = llama_config();
  config.erase("hidden_size");
  write_text(folder / "config.json", config.dump());
  CHECK_THAT(load_error(), Catch::Contains("config.json: missing key 'hidden_size'"));
  config = llama_config();
  config["rope_parameters"] = {{"rope_type", "yarn"}, {"factor", 4.0}};
  write_text(folder / "config.json", config.dump());
  CHECK_THAT(load_error(), Catch::Contains("rope_parameters.rope_type: 'yarn' is not supported"));
  config = llama_config(3);
  write_text(folder / "config.json", config.dump());
  CHECK_THAT(load_error(), Catch::Contains("num_key_value_heads: 3 does not divide num_attention_heads (4)"));
  write_text(folder / "config.json", llama_config().dump());

  // Shards: every one named by the index must be there, inside the folder, holding its weights.
  fs::remove(folder / "model.safetensors");
  json index = {{"weight_map", json::object()}};
  for (const auto& [name, tensor] : tensors) index["weight_map"][name] = "model-1.safetensors";
  write_text(folder / "model.safetensors.index.json", index.dump());
  CHECK_THAT(load_error(), Catch::Contains("which is not in"));
  models::write_safetensors(folder / "model-1.safetensors", tensors);
  CHECK(load_error().empty());
  index["weight_map"]["model.norm.weight"] = "../elsewhere.safetensors";
  write_text(folder / "model.safetensors.index.json", index.dump());
  CHECK_THAT(load_error(), Catch::Contains("not a file in the folder"));
  fs::remove(folder / "model.safetensors.index.json");
  CHECK_THAT(load_error(), Catch::Contains("no model.safetensors or model.safetensors.index.json"));
}

TEST_CASE("prefopt model inspect, logprobs and generate: output, bad input and exit codes", "[models][cli]") {
  TempDir dir;
  const fs::path folder = dir.path() / "llama";
  make_checkpoint(folder, llama_config());
  const CliResult inspected = run_cli({"model", "inspect", folder.string(), "--format", "json"});
  REQUIRE(inspected.status == 0);
  const json description = json::parse(inspected.out);
  CHECK(description["family"] == "llama");
  CHECK(description["kv_heads"] == 2);
  // 50×32 embedding and head, per layer 2 norms + q (32×32), k and v (16×32), o (32×32) and three
  // 48×32 MLP matrices, and the final norm.
  CHECK(description["parameters"] == 2 * 50 * 32 + 2 * (2 * 32 + 32 * 32 * 2 + 2 * 16 * 32 + 3 * 48 * 32) + 32);
  const CliResult text = run_cli({"model", "inspect", folder.string()});
  CHECK_THAT(text.out, Catch::Contains("2 layers, width 32, 4 heads (2 key/value) of width 8"));

  write_text(dir.path() / "in.jsonl", "{\"ids\": [5, 9, 11]}\n\n{\"ids\": [7, 1]}\n");
  const CliResult log_probs = run_cli({"model", "logprobs", folder.string(), "--input", (dir.path() / "in.jsonl").string()});
  REQUIRE(log_probs.status == 0);
  const json first = json::parse(log_probs.out.substr(0, log_probs.out.find('\n')));
  CHECK(first["logprobs"].size() == 2);
  CHECK(first["total"].get<double>() == Approx(first["logprobs"][0].get<double>() + first["logprobs"][1].get<double>()));
  const CliResult generated = run_cli({"model", "generate", folder.string(), "--input", (dir.path() / "in.jsonl").string(),
                                       "--max-new-tokens", "4"});
  REQUIRE(generated.status == 0);
  CHECK(json::parse(generated.out.substr(0, generated.out.find('\n')))["generated"].size() <= 4);

  // With a tokenizer.json, lines may be text: encoded with the special tokens, continued as text.
  write_text(folder / "tokenizer.json", tiny_tokenizer().dump());
  write_text(dir.path() / "text.jsonl", "{\"text\": \"helo lo\"}\n");
  const CliResult from_text = run_cli({"model", "generate", folder.string(), "--input", (dir.path() / "text.jsonl").string(),
                                       "--max-new-tokens", "2"});
  INFO(from_text.err);
  REQUIRE(from_text.status == 0);
  const json continued = json::parse(from_text.out);
  CHECK(continued["ids"] == json({7, 4, 5, 9}));
  CHECK(continued["text"].is_string());
  fs::remove(folder / "tokenizer.json");
  const CliResult wrong_kind = run_cli({"model", "score", folder.string(), "--input", (dir.path() / "in.jsonl").string()});
  CHECK(wrong_kind.status == 2);
  CHECK_THAT(wrong_kind.err, Catch::Contains("is a causal language model: use `prefopt model logprobs`"));

  // A reward model: the Llama body with a `score` head of 1 output, read at the last token.
  json reward_config = llama_config();
  reward_config["architectures"] = {"LlamaForSequenceClassification"};
  reward_config["num_labels"] = 1;
  Decoder reward = make_checkpoint(dir.path() / "reward", reward_config);
  const CliResult scored = run_cli({"model", "score", (dir.path() / "reward").string(), "--input",
                                    (dir.path() / "in.jsonl").string()});
  REQUIRE(scored.status == 0);
  {
    torch::NoGradGuard no_grad;
    const double expected = reward->forward(torch::tensor({{5, 9, 11}}))[0][-1][0].item<double>();
    CHECK(json::parse(scored.out.substr(0, scored.out.find('\n')))["scores"][0].get<double>() ==
          Approx(expected).margin(1e-5));
  }

  write_text(dir.path() / "bad.jsonl", "{\"ids\": [5]}\n{\"ids\": [5, 50]}\n");
  const CliResult out_of_vocab = run_cli({"model", "logprobs", folder.string(), "--input", (dir.path() / "bad.jsonl").string()});
  CHECK(out_of_vocab.status == 2);
  CHECK_THAT(out_of_vocab.err, Catch::Contains("bad.jsonl:2: token id 50 is not in the vocabulary [0, 50)"));
  write_text(dir.path() / "bad.jsonl", "{\"text\": \"hello\"}\n");
  CHECK_THAT(run_cli({"model", "logprobs", folder.string(), "--input", (dir.path() / "bad.jsonl").string()}).err,
             Catch::Contains("bad.jsonl:1: \"text\" needs a tokenizer.json"));
  const CliResult no_folder = run_cli({"model", "inspect", (dir.path() / "missing").string()});
  CHECK(no_folder.status == 2);
  CHECK_THAT(no_folder.err, Catch::Contains("no config.json"));
  fs::remove(folder / "model.safetensors");
  std::ofstream(folder / "model.safetensors", std::ios::binary) << "truncated";
  const CliResult truncated = run_cli({"model", "inspect", folder.string()});
  CHECK(truncated.status == 2);
  CHECK_THAT(truncated.err, Catch::Contains("model.safetensors: the header claims"));
}

TEST_CASE("a BPE tokenizer.json merges by rank, splits out added tokens and decodes back", "[models]") {
  TempDir dir;
  const json file = tiny_tokenizer();
  write_text(dir.path() / "tokenizer.json", file.dump());
  const models::Tokenizer tokenizer(dir.path() / "tokenizer.json");
  // "helo": h e l o -> (l o) -> (h e) -> (he lo). " lo": Ġ l o -> (l o) first, so Ġ + lo, not Ġl + o.
  CHECK(tokenizer.encode("helo", false) == std::vector<std::int64_t>{7});
  CHECK(tokenizer.encode(" lo", false) == std::vector<std::int64_t>{4, 5});
  CHECK(tokenizer.encode("helo<eos> lo", true) == std::vector<std::int64_t>{7, 9, 4, 5, 9});
  CHECK(tokenizer.decode({7, 9, 4, 5}, false) == "helo<eos> lo");
  CHECK(tokenizer.decode({7, 9, 4, 5}, true) == "helo lo");
  CHECK(tokenizer.vocab_size() == 10);
  CHECK(tokenizer.decode({7, 42}, false) == "helo");  // unknown ids (a padded model vocabulary) decode to nothing
  CHECK_THROWS_WITH(tokenizer.encode("\xff", false), Catch::Contains("not UTF-8"));

  auto error = [&](const json& bad) {
    write_text(dir.path() / "tokenizer.json", bad.dump());
    try {
      models::Tokenizer{dir.path() / "tokenizer.json"};
    } catch (const ConfigError& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  json bad = file;
  bad["model"]["type"] = "WordPiece";
  CHECK_THAT(error(bad), Catch::Contains("tokenizer.json: model: type 'WordPiece' is not supported (supported: BPE)"));
  bad = file;
  bad["model"]["merges"].push_back("h x");
  CHECK_THAT(error(bad), Catch::Contains("model.merges[4]: merges \"h\" and \"x\""));
  bad = file;
  bad["pre_tokenizer"] = {{"type", "Metaspace"}};
  CHECK_THAT(error(bad), Catch::Contains("pre_tokenizer: type 'Metaspace' is not supported"));
  bad = file;
  bad["pre_tokenizer"] = {{"type", "Split"}, {"pattern", {{"Regex", "(unclosed"}}}, {"behavior", "Isolated"}};
  CHECK_THAT(error(bad), Catch::Contains("does not compile"));
  bad = file;
  bad["normalizer"] = {{"type", "NFKX"}};
  CHECK_THAT(error(bad), Catch::Contains("did you mean 'NFKC'"));
}

TEST_CASE("a checkpoint computes on CUDA what it computes on the CPU, in float32 and bfloat16", "[models][cuda]") {
  if (!torch::cuda::is_available()) {
    report_skipped("no CUDA device (these run in scripts/gpu-check.sh)");
    return;
  }
  TempDir dir;
  make_checkpoint(dir.path() / "llama", llama_config());
  Decoder cpu = models::load_decoder(dir.path() / "llama");
  Decoder gpu = models::load_decoder(dir.path() / "llama", {.device = torch::Device(torch::kCUDA, 0)});
  Decoder gpu_bf16 =
      models::load_decoder(dir.path() / "llama", {.dtype = torch::kBFloat16, .device = torch::Device(torch::kCUDA, 0)});
  const std::vector<std::vector<std::int64_t>> sequences = {{5, 9, 11, 2, 30, 7, 8}, {12, 13}, {20, 21, 22, 23}};
  const auto on_cpu = models::token_log_probs(cpu, sequences), on_gpu = models::token_log_probs(gpu, sequences),
             in_bf16 = models::token_log_probs(gpu_bf16, sequences);
  double bf16_error = 0;
  std::size_t tokens = 0;
  for (std::size_t i = 0; i < sequences.size(); ++i)
    for (std::size_t t = 0; t < on_cpu[i].size(); ++t) {
      CHECK(on_gpu[i][t] == Approx(on_cpu[i][t]).margin(1e-4));
      bf16_error += std::abs(in_bf16[i][t] - on_cpu[i][t]);
      ++tokens;
    }
  CHECK(bf16_error / tokens < 0.05);  // bfloat16's rounding, as in tests/models/differential.py
  CHECK(models::greedy_generate(gpu, sequences, 8) == models::greedy_generate(cpu, sequences, 8));
}

}  // namespace prefopt::test
