// Preference datasets from the command line: experiments/rater-pairs.toml trains DPO and a reward
// model + PPO on human votes from JSON Lines and both raise the gold reward; the simulated
// annotator can relabel the same pairs; a malformed file, a task without text and settings of
// the simulated source are refused with exit 2 and the place to fix.
#include <catch2/catch.hpp>

#include <fstream>
#include <sstream>

#include "support.h"

using namespace prefopt;
namespace fs = std::filesystem;

namespace {

const std::string kExperiment = PREFOPT_SOURCE_DIR "/experiments/rater-pairs.toml";

// A lexicon of our own, so the refusals need no PyPI package.
fs::path small_lexicon(const test::TempDir& dir) {
  const fs::path file = dir.path() / "lexicon.txt";
  std::ofstream(file) << "good\t2.0\t0.5\t[]\nbad\t-2.5\t0.5\t[]\n";
  return file;
}

}  // namespace

// The people judged one word's valence, so DPO, which learns from their pairs directly, must raise
// the gold's sentiment; on pairs that differ in one word it also lowers fluency (likelihood
// displacement: both responses lose probability), so its gold is not asserted. PPO climbs an
// ensemble of three reward models of the same votes and must raise the gold itself. Measured at
// these settings (the experiment's base policy, 512 held-out prompts), with 1 and 2 BLAS threads:
// DPO (beta 0.5, 120 updates) sentiment 0.058 -> 0.218, fluency -4.46 -> -4.72; PPO (60 updates)
// gold -0.474 -> 0.022 and -0.054, standard error 0.016. With one reward model (held-out accuracy
// about 0.6) PPO's gain moved with the thread count, +0.07 and +0.59: the ensemble is what makes
// the claim hold.
TEST_CASE("human votes from JSON Lines train DPO and a reward model + PPO on what the people judged",
          "[data][e2e]") {
  test::TempDir dir;
  const std::vector<std::string> common = {"eval.prompts=512", "train.eval_every=60", "reward_models.members=3",
                                           "--cache", (dir.path() / "cache").string()};
  for (const auto& [name, settings] : {std::pair{"dpo", "train.steps=120 algorithm.beta=0.5"},
                                       std::pair{"ppo", "train.steps=60"}}) {
    std::vector<std::string> args = {"run", kExperiment, "--out", (dir.path() / name).string(),
                                     std::string("algorithm=") + name};
    std::istringstream words(settings);
    for (std::string word; words >> word;) args.push_back(word);
    args.insert(args.end(), common.begin(), common.end());
    const auto result = test::run_cli(args);
    if (test::skipped_without_lexicon(result)) return;
    INFO(name << ": " << result.err);
    REQUIRE(result.status == 0);
    const auto rows = test::read_metrics(dir.path() / name);
    REQUIRE(rows.size() >= 2);
    const auto& first = rows.front();
    const auto& last = rows.back();
    INFO("gold " << first["gold"] << " -> " << last["gold"] << ", sentiment " << first["gold_sentiment"] << " -> "
                 << last["gold_sentiment"] << ", fluency " << first["gold_fluency"] << " -> " << last["gold_fluency"]);
    if (std::string(name) == "dpo") {
      CHECK(last["gold_sentiment"].get<double>() - first["gold_sentiment"].get<double>() >= 0.08);
    } else {
      const double se = std::hypot(first["gold_se"].get<double>(), last["gold_se"].get<double>());
      CHECK(last["gold"].get<double>() - first["gold"].get<double>() >= std::max(0.1, 4 * se));
    }
  }
  // The stage's report: what was read, and how the people agree with the gold judge.
  const auto summary = nlohmann::json::parse(test::read_file(dir.path() / "dpo/summary.json"));
  const auto& report = summary["stages"]["preferences"]["report"];
  CHECK(report["rows"] == 10000);
  CHECK(report["pairs"] == 1000);
  CHECK(report["held_out_pairs"].get<double>() == Approx(200).margin(10));  // a fifth of the 986 prompts' pairs
  CHECK(report["annotators"] == 10);
  CHECK(report["bad_rows"] == 0);
  CHECK(report["votes"].get<std::int64_t>() + report["tie_votes"].get<std::int64_t>() == 10000);
  CHECK(report["human"]["vote_agreement_with_gold"].get<double>() > 0.8);
  CHECK(report["annotator"]["label_agreement_with_gold"].get<double>() > 0.9);  // near-oracle: temperature 0.05
  CHECK(summary["stages"]["preferences"]["reused"] == false);
  CHECK(nlohmann::json::parse(test::read_file(dir.path() / "ppo/summary.json"))["stages"]["preferences"]["reused"] ==
        true);

  // The annotator plugin relabels the same pairs: one label per pair, the agreement the same.
  std::vector<std::string> args = {"run", kExperiment, "--out", (dir.path() / "relabelled").string(),
                                   "dataset.labels=annotator", "train.steps=0"};
  args.insert(args.end(), common.begin(), common.end());
  const auto relabelled = test::run_cli(args);
  INFO(relabelled.err);
  REQUIRE(relabelled.status == 0);
  const auto again = nlohmann::json::parse(test::read_file(dir.path() / "relabelled/summary.json"));
  const auto& labels = again["stages"]["preferences"]["report"];
  CHECK(labels["labels"] == "annotator");
  CHECK(labels["train_examples"] == 1000 - report["held_out_pairs"].get<std::int64_t>());  // a label per pair
  CHECK(labels["human"] == report["human"]);
}

TEST_CASE("a dataset is refused with exit 2 and the place to fix", "[data]") {
  test::TempDir dir;
  const std::string lexicon = "task.lexicon=" + small_lexicon(dir).string();
  int runs = 0;
  const auto refused = [&](std::vector<std::string> args, const std::string& message) {
    const std::string out = (dir.path() / ("run" + std::to_string(++runs))).string();
    args.insert(args.begin(), {"run", kExperiment, "--out", out, "--cache",
                               (dir.path() / "cache").string(), "sft.steps=1", "train.steps=0"});
    const auto result = test::run_cli(args);
    INFO(result.err);
    CHECK(result.status == 2);
    CHECK_THAT(result.err, Catch::Contains(message));
  };
  refused({"task=synthetic"}, "rater-pairs.toml:30:8 ([dataset] path): a data file of text needs a task whose tokens "
                              "are text (such as sentiment); task 'synthetic' speaks tokens of its own");
  refused({lexicon, "+preferences.pairs=100"}, "[preferences] pairs counts simulated pairs, but ");
  refused({lexicon, "dataset.path=nowhere.jsonl"}, "[dataset] path: no file ");
  refused({lexicon, "dataset.votes=some"}, "dataset.votes: \"some\" is not one of: each, majority");

  const fs::path bad = dir.path() / "bad.jsonl";
  std::ofstream(bad) << R"({"prompt": "It is", "chosen": " good", "rejected": " bad"})" "\n"
                     << R"({"prompt": "It is", "chosen": " gr\u00e9at", "rejected": " bad"})" "\n"
                     << R"({"prompt": "It is", "chosen": " fine"})" "\n";
  refused({lexicon, "dataset.path=" + bad.string()},
          bad.string() + ":2: the tokenizer never saw the character byte 0xc3 in training");
  refused({lexicon, "dataset.path=" + bad.string()},
          bad.string() + ":3: no column 'rejected' ([dataset] rejected); the row has chosen, prompt");
  refused({lexicon, "dataset.path=" + bad.string(), "+dataset.max_bad_rows=2"},
          "1 training and 0 held-out examples; both need some");
}

// The SFT corpus and the prompts from files: the base policy learns the file's one answer (SFT
// loss 6.2 -> 0.05), and the evaluation asks the file's held-out prompts (samples.jsonl shows
// both as text).
TEST_CASE("SFT data and prompts from files, answers readable in samples.jsonl", "[data]") {
  test::TempDir dir;
  const fs::path sft = dir.path() / "sft.jsonl";
  std::ofstream(sft) << R"({"prompt": "It is", "completion": " good."})" "\n"
                     << R"({"prompt": "The day is", "completion": " good."})" "\n";
  const fs::path prompts = dir.path() / "prompts.csv";
  std::ofstream(prompts) << "prompt,split\nThe sun,train\nA cat,train\nMy friend,test\nThe war,test\n";
  const auto result = test::run_cli({"run", kExperiment, "--out", (dir.path() / "run").string(), "--cache",
                                     (dir.path() / "cache").string(), "task.lexicon=" + small_lexicon(dir).string(),
                                     "+sft.data=" + sft.string(), "+prompts.path=" + prompts.string(), "+policy.width=32",
                                     "sft.steps=80", "sft.corpus_size=64", "train.steps=2", "eval.prompts=64",
                                     "+dataset.max_bad_rows=10000"});
  INFO(result.err);
  REQUIRE(result.status == 0);
  const auto summary = nlohmann::json::parse(test::read_file(dir.path() / "run/summary.json"));
  CHECK(summary["data"]["sft"]["examples"] == 2);
  CHECK(summary["data"]["prompts"]["train_prompts"] == 2);
  CHECK(summary["data"]["prompts"]["held_out_prompts"] == 2);
  std::istringstream samples(test::read_file(dir.path() / "run/samples.jsonl"));
  int rows = 0, learnt = 0;
  for (std::string line; std::getline(samples, line); ++rows) {
    const auto sample = nlohmann::json::parse(line);
    CHECK((sample["prompt"] == "My friend" || sample["prompt"] == "The war"));
    learnt += sample["reference"] == " good.";
  }
  CHECK(rows == 16);
  CHECK(learnt >= 8);  // 9 measured, on prompts SFT never saw; the task's own corpus gives none
}
