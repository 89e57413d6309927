// Hugging Face checkpoints as the pipeline's policy ([policy] checkpoint): the decoder behind the
// SDK's Policy (copies, cached sampling, left padding), whole trials of DPO and PPO from a checkpoint folder, the
// stage cache keyed on the checkpoint's files, and checkpoints that cannot be a task's policy.
#include <catch2/catch.hpp>
#include <torch/cuda.h>
#include <torch/torch.h>

#include <ATen/CPUGeneratorImpl.h>

#include <nlohmann/json.hpp>
#include <sstream>

#include "models/decoder.h"
#include "models/safetensors.h"
#include "models/fixtures.h"
#include "prefopt/policy.h"
#include "support.h"

namespace prefopt::test {
namespace {

namespace fs = std::filesystem;
using Catch::Contains;
using nlohmann::json;

const std::string kExperiment = (fs::path(PREFOPT_SOURCE_DIR) / "experiments/comparison.toml").string();

// A Llama of width 32 over 40 tokens: more than the synthetic task's 32, so the policy's
// distribution is the narrowed one.
json tiny_llama() {
  json config = llama_config();
  config["vocab_size"] = 40;
  config["intermediate_size"] = 64;
  return config;
}

}  // namespace

TEST_CASE("a checkpoint's decoder as a policy: cached sampling, independent copies, left padding", "[models][policy]") {
  TempDir dir;
  for (const json& config :
       {tiny_llama(), json{{"model_type", "gpt2"}, {"vocab_size", 40}, {"n_embd", 32}, {"n_layer", 2}, {"n_head", 4},
                           {"n_positions", 32}, {"eos_token_id", 0}}}) {
    const std::string type = config["model_type"];
    SECTION(type) {
      make_checkpoint(dir.path() / type, config, /*seed=*/3, /*scale=*/0.1);
      Policy policy(std::shared_ptr<LanguageModel>(models::load_decoder(dir.path() / type).ptr()), 32);
      at::Generator prompts_from = at::make_generator<at::CPUGeneratorImpl>(1);
      const torch::Tensor prompts = torch::randint(1, 32, {64, 4}, prompts_from, torch::kLong);
      at::Generator a = at::make_generator<at::CPUGeneratorImpl>(2), b = at::make_generator<at::CPUGeneratorImpl>(2);
      const Sequences cached = policy->sample(prompts, 10, {.use_cache = true}, 0, a);
      const Sequences full = policy->sample(prompts, 10, {.use_cache = false}, 0, b);
      CHECK(cached.responses.equal(full.responses));
      CHECK(cached.responses.max().item<std::int64_t>() < 32);
      const torch::Tensor log_probs = policy->response_log_probs(cached, 1.0);
      CHECK(log_probs.lt(0.0).logical_or(response_mask(cached).eq(0)).all().item<bool>());

      Policy copy = copy_policy(policy);
      CHECK(copy->model().describe() == policy->model().describe());
      CHECK(copy->response_log_probs(cached, 1.0).equal(log_probs));
      {
        torch::NoGradGuard no_grad;
        for (auto& parameter : copy->parameters()) parameter.add_(0.05);
      }
      CHECK(policy->response_log_probs(cached, 1.0).equal(log_probs));
      if (type == "gpt2")
        CHECK_THROWS_WITH(policy->sample(prompts, 29, {}, 0, a), Contains("exceed the 32 tokens"));

      // Left padding (kPromptPadding) changes nothing: 2 more columns of it, the same samples and log-probs.
      const torch::Tensor shorter = prompts.masked_fill(torch::arange(4).unsqueeze(0).lt(prompts.remainder(4)), kPromptPadding);
      const torch::Tensor wider = torch::cat({torch::full({64, 2}, kPromptPadding, torch::kLong), shorter}, 1);
      at::Generator c = at::make_generator<at::CPUGeneratorImpl>(4), d = at::make_generator<at::CPUGeneratorImpl>(4);
      const Sequences narrow = policy->sample(shorter, 10, {}, 0, c);
      CHECK(policy->sample(wider, 10, {}, 0, d).responses.equal(narrow.responses));
      CHECK(policy->response_log_probs(narrow, 1.0)
                .allclose(policy->response_log_probs({wider, narrow.responses, narrow.lengths}, 1.0), 1e-5, 1e-5));
    }
  }
}

// `prefopt run` of the comparison experiment at algorithms_test.cpp's small size, from a tiny
// Llama checkpoint, with `extra` overrides; the runs share one stage cache.
class CheckpointRuns {
 public:
  explicit CheckpointRuns(std::vector<std::string> extra) : extra_(std::move(extra)) {
    make_initialized_checkpoint(folder(), tiny_llama());
  }
  fs::path folder() const { return dir_.path() / "tiny-llama"; }
  fs::path out(const std::string& name) const { return dir_.path() / name; }

  CliResult run(const std::string& name, const std::vector<std::string>& overrides) const {
    std::vector<std::string> args = {"run", kExperiment, "--out", out(name).string(), "--cache", (dir_.path() / "cache").string(),
                                     "sft.steps=150", "sft.corpus_size=2048", "preferences.pairs=800",
                                     "preferences.held_out=100", "reward_models.members=1", "eval.prompts=512",
                                     "train.eval_every=10", "annotator.rate=0.1", "policy.checkpoint=" + folder().string()};
    args.insert(args.end(), extra_.begin(), extra_.end());
    args.insert(args.end(), overrides.begin(), overrides.end());
    return run_cli(args);
  }

  // DPO, then PPO (reusing DPO's SFT stage): each must raise the mean gold reward clearly, by 0.15
  // and by 4 standard errors of the difference (pipeline_differential.py's rule).
  void check_dpo_and_ppo() const {
    const std::vector<std::vector<std::string>> cases = {{"algorithm=dpo", "train.steps=40"},
                                                         {"algorithm=ppo", "train.steps=20"}};
    for (std::size_t i = 0; i < cases.size(); ++i) {
      const auto result = run(std::to_string(i), cases[i]);
      INFO(result.err);
      REQUIRE(result.status == 0);
      CHECK_THAT(result.err, Contains(i == 0 ? "sft: training the base policy from llama (LlamaForCausalLM)" : "sft: reused"));
      const auto rows = read_metrics(out(std::to_string(i)));
      REQUIRE(rows.size() >= 2);
      const double before = rows.front()["gold"].get<double>(), after = rows.back()["gold"].get<double>();
      const double se = std::hypot(rows.front()["gold_se"].get<double>(), rows.back()["gold_se"].get<double>());
      INFO(cases[i].front() << ": gold " << before << " -> " << after << ", standard error " << se);
      CHECK(after - before >= std::max(0.15, 4 * se));
      CHECK(rows.back()["kl"].get<double>() > 0.0);
    }
  }

 private:
  TempDir dir_;
  std::vector<std::string> extra_;
};

TEST_CASE("a checkpoint folder as the policy: DPO and PPO from it raise the gold reward", "[models][e2e]") {
  const CheckpointRuns runs({});
  runs.check_dpo_and_ppo();

  // The DPO run exports as a Hugging Face folder of exactly its trained weights.
  const fs::path exported = runs.out("exported");
  const auto export_run = run_cli({"export", runs.out("0").string(), "--to", exported.string()});
  INFO(export_run.err);
  REQUIRE(export_run.status == 0);
  CHECK_THAT(export_run.out, Contains("exported") && Contains("llama (LlamaForCausalLM)"));
  const models::SafetensorsFile saved(runs.out("0") / "policy.safetensors");
  const models::Decoder trained = models::load_decoder(exported), original = models::load_decoder(runs.folder());
  const auto original_parameters = original->named_parameters();
  REQUIRE(trained->named_parameters().size() == saved.entries().size());
  bool changed = false;
  for (const auto& item : trained->named_parameters()) {
    CHECK(item.value().equal(saved.load(item.key())));
    changed = changed || !item.value().equal(original_parameters[item.key()]);
  }
  CHECK(changed);
  CHECK(json::parse(read_file(exported / "config.json"))["torch_dtype"] == "float32");

  // Its reward model exports beside it as a classifier that scores the run's samples as the run did
  // (Llama's RMSNorm has no bias to fold the head's into: config.json carries it). The checkpoint
  // has no pad token, so the export adds one, token 40: a pad of EOS would hide the EOS it reads.
  CHECK_THAT(export_run.out, Contains("reward model 0 to " + (exported / "reward_model-0").string()));
  models::Decoder reward_model = models::load_decoder(exported / "reward_model-0");
  const json classifier = json::parse(read_file(exported / "reward_model-0" / "config.json"));
  CHECK(classifier["architectures"][0] == "LlamaForSequenceClassification");
  CHECK(classifier["pad_token_id"] == 40);
  CHECK(reward_model->config().vocab == 41);
  std::vector<std::vector<std::int64_t>> sequences;
  std::vector<double> expected;
  std::istringstream samples(read_file(runs.out("0") / "samples.jsonl"));
  for (std::string line; std::getline(samples, line);) {
    const json sample = json::parse(line);
    for (const std::string who : {"policy", "reference"}) {
      auto ids = sample["prompt_ids"].get<std::vector<std::int64_t>>();
      for (const std::int64_t id : sample[who + "_ids"]) ids.push_back(id);
      sequences.push_back(std::move(ids));
      expected.push_back(sample[who + "_members"][0].get<double>());
    }
  }
  REQUIRE(sequences.size() == 32);
  const auto scores = models::sequence_scores(reward_model, sequences);
  for (std::size_t i = 0; i < sequences.size(); ++i)
    CHECK(scores[i][0] + classifier["prefopt_score_offset"].get<double>() == Approx(expected[i]).margin(1e-4));

  // The SFT stage is keyed on the checkpoint's files, not only its path: saved again, it trains again.
  make_initialized_checkpoint(runs.folder(), tiny_llama(), /*seed=*/8);
  const auto again = runs.run("resaved", {"algorithm=dpo", "train.steps=0"});
  INFO(again.err);
  REQUIRE(again.status == 0);
  CHECK_THAT(again.err, Contains("sft: computed"));
}

TEST_CASE("on CUDA, a checkpoint folder as the policy: DPO and PPO raise the gold reward", "[models][e2e][cuda]") {
  if (!torch::cuda::is_available()) {
    report_skipped("no CUDA device");
    return;
  }
  const CheckpointRuns runs({"runtime.device=cuda"});
  runs.check_dpo_and_ppo();
  CHECK(json::parse(read_file(runs.out("0") / "summary.json"))["runtime"]["device"] == "cuda:0");
}

TEST_CASE("export refuses, naming why, a run it cannot export", "[models][cli]") {
  TempDir dir;
  make_checkpoint(dir.path() / "llama", tiny_llama());
  std::string experiment_text = tiny_experiment("dpo", 2, 1);
  experiment_text.insert(experiment_text.find("[policy]\n") + 9, "checkpoint = \"llama\"\n");
  write_text(dir.path() / "checkpoint.toml", experiment_text);
  write_text(dir.path() / "builtin.toml", tiny_experiment("dpo", 2, 1));
  auto run = [&](const std::string& experiment, const std::string& name, std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"run", (dir.path() / experiment).string(), "--out", (dir.path() / name).string(),
                                     "--cache", (dir.path() / "cache").string()};
    args.insert(args.end(), extra.begin(), extra.end());
    const auto result = run_cli(args);
    INFO(result.err);
    REQUIRE(result.status == 0);
    return dir.path() / name;
  };
  auto refusal = [&](const fs::path& run_dir, const fs::path& to) {
    const auto result = run_cli({"export", run_dir.string(), "--to", to.string()});
    CHECK(result.status == 2);
    CHECK_FALSE(fs::exists(to.string() + ".partial"));
    return result.err;
  };
  const fs::path to = dir.path() / "exported";

  const fs::path builtin = run("builtin.toml", "builtin");
  CHECK(fs::exists(builtin / "policy.safetensors"));  // every run keeps its weights
  CHECK_THAT(refusal(builtin, to), Contains("built-in transformer") && Contains("no Hugging Face architecture"));
  CHECK_THAT(refusal(dir.path(), to), Contains("not a run folder"));
  CHECK_THAT(refusal(run("checkpoint.toml", "unsaved", {"+train.save_policy=false", "+train.save_reward_models=false"}),
                     to),
             Contains("kept no trained weights") && Contains("save_policy = false"));
  // Without the policy's weights, the reward model's still export.
  const fs::path models_only = dir.path() / "models-only";
  const auto partial_export = run_cli({"export", run("checkpoint.toml", "rm-only", {"+train.save_policy=false"}).string(),
                                       "--to", models_only.string()});
  CHECK(partial_export.status == 0);
  CHECK(fs::exists(models_only / "reward_model-0" / "model.safetensors"));
  CHECK_FALSE(fs::exists(models_only / "model.safetensors"));

  const fs::path exportable = run("checkpoint.toml", "exportable");
  fs::create_directories(to / "old");
  CHECK_THAT(refusal(exportable, to), Contains("exists and is not an empty folder"));
  fs::remove_all(to);
  // A --to that is a symbolic link to an empty folder is replaced by the export, never written through.
  const fs::path elsewhere = dir.path() / "elsewhere", link = dir.path() / "link";
  fs::create_directories(elsewhere);
  fs::create_directory_symlink(elsewhere, link);
  CHECK(run_cli({"export", exportable.string(), "--to", link.string()}).status == 0);
  CHECK_FALSE(fs::is_symlink(link));
  CHECK(fs::exists(link / "config.json"));
  CHECK(fs::is_empty(elsewhere));
  fs::rename(exportable / "summary.json", dir.path() / "summary.json");
  CHECK_THAT(refusal(exportable, to), Contains("has not finished") && Contains("--continue"));
  fs::rename(dir.path() / "summary.json", exportable / "summary.json");
  json wider = tiny_llama();
  wider["hidden_size"] = 48;
  make_checkpoint(dir.path() / "llama", wider);
  CHECK_THAT(refusal(exportable, to), Contains("has shape") && Contains("the checkpoint folder changed since the run"));
  CHECK_FALSE(fs::exists(to));
  const auto usage = run_cli({"export", exportable.string()});
  CHECK(usage.status == 2);
  CHECK_THAT(usage.err, Contains("--to"));
}

TEST_CASE("a checkpoint that cannot be the task's policy is refused naming the setting", "[models][cli]") {
  TempDir dir;
  const fs::path experiment = dir.path() / "experiment.toml";
  auto refusal = [&](const std::string& checkpoint_line) {
    std::string text = tiny_experiment("dpo", 2, 1);
    text.insert(text.find("[policy]\n") + 9, checkpoint_line + "\n");
    write_text(experiment, text);
    const fs::path out = dir.path() / "run";
    const auto result = run_cli({"run", experiment.string(), "--out", out.string(), "--cache", (dir.path() / "cache").string()});
    CHECK(result.status == 2);
    CHECK_FALSE(fs::exists(out));  // refused while composing, before the run folder
    return result.err;
  };
  // Relative to the experiment's folder.
  CHECK_THAT(refusal("checkpoint = \"missing\""),
             Contains("experiment.toml:") && Contains("[policy] checkpoint") && Contains((dir.path() / "missing").string()));

  json classifier = tiny_llama();
  classifier["architectures"] = {"LlamaForSequenceClassification"};
  classifier["num_labels"] = 1;
  make_checkpoint(dir.path() / "classifier", classifier);
  CHECK_THAT(refusal("checkpoint = \"classifier\""), Contains("LlamaForSequenceClassification") && Contains("*ForCausalLM"));

  json small = tiny_llama();
  small["vocab_size"] = 20;
  make_checkpoint(dir.path() / "small", small);
  CHECK_THAT(refusal("checkpoint = \"small\""), Contains("knows 20 tokens, fewer than the task's 32"));

  make_checkpoint(dir.path() / "short", {{"model_type", "gpt2"}, {"vocab_size", 40}, {"n_embd", 16}, {"n_layer", 1},
                                         {"n_head", 2}, {"n_positions", 8}});
  CHECK_THAT(refusal("checkpoint = \"short\""), Contains("8 positions") && Contains("prompt plus response"));
}

}  // namespace prefopt::test
