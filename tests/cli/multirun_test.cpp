// `prefopt run -m`: each trial in its own process, side by side; a failing trial does not stop
// the others; running again into the same folder keeps what finished; the experiment's own sweep.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <fstream>

#include "support.h"

using namespace prefopt;
using Catch::Contains;
using nlohmann::json;
using test::run_cli;
namespace fs = std::filesystem;

namespace {

const std::string kExperiment = (fs::path(PREFOPT_SOURCE_DIR) / "experiments/comparison.toml").string();
const std::vector<std::string> kTiny = {"policy.width=16",      "sft.steps=20",          "sft.corpus_size=256",
                                        "preferences.pairs=64", "preferences.held_out=32", "reward_models.members=1",
                                        "eval.prompts=16",      "train.steps=2",           "train.eval_every=1"};

test::CliResult multirun(const fs::path& out, const fs::path& cache, std::vector<std::string> extra) {
  std::vector<std::string> args = {"run", "-m", kExperiment, "--out", out.string(), "--cache", cache.string()};
  args.insert(args.end(), kTiny.begin(), kTiny.end());
  args.insert(args.end(), extra.begin(), extra.end());
  return run_cli(args);
}

json results(const fs::path& sweep) { return json::parse(test::read_file(sweep / "results.json")); }

}  // namespace

TEST_CASE("run -m runs the experiment's own sweep, one folder per trial, side by side", "[multirun]") {
  test::TempDir dir;
  const auto result = multirun(dir.path() / "sweep", dir.path() / "cache", {});
  INFO(result.err);
  REQUIRE(result.status == 0);
  // comparison.toml's [prefopt.sweep] algorithm = "ppo,dpo,orpo".
  const json all = results(dir.path() / "sweep");
  REQUIRE(all.size() == 3);
  std::vector<std::string> names;
  for (const json& trial : all) {
    names.push_back(trial["trial"]["name"].get<std::string>());
    CHECK(trial["exit_status"] == 0);
    CHECK(fs::is_regular_file(dir.path() / "sweep" / names.back() / "metrics.jsonl"));
  }
  CHECK(names[0].starts_with("algorithm=ppo-"));
  CHECK(names[1].starts_with("algorithm=dpo-"));
  CHECK(names[2].starts_with("algorithm=orpo-"));
  for (const char* label : {"algorithm=ppo ", "algorithm=dpo ", "algorithm=orpo "}) CHECK_THAT(result.out, Contains(label));
  // The later trials reuse the first one's stages.
  const json summary = json::parse(test::read_file(dir.path() / "sweep" / names[2] / "summary.json"));
  CHECK(summary["stages"]["reward_models"]["reused"] == true);
  // The command line replaces the experiment's sweep of the same key.
  const auto single = multirun(dir.path() / "single", dir.path() / "cache", {"algorithm=simpo"});
  REQUIRE(single.status == 0);
  CHECK(results(dir.path() / "single").size() == 1);
}

TEST_CASE("a failing trial is recorded, the others finish, and a rerun keeps what finished", "[multirun]") {
  test::TempDir dir;
  const fs::path sweep = dir.path() / "sweep";
  // rdpo refuses label_smoothing = 0.5 when the plugin is created, inside the trial's process.
  const std::vector<std::string> sweep_overrides = {"algorithm=dpo", "algorithm.loss=sigmoid,rdpo",
                                                    "algorithm.label_smoothing=0.5"};
  const auto first = multirun(sweep, dir.path() / "cache", sweep_overrides);
  CHECK(first.status == 1);
  CHECK_THAT(first.err, Contains("1 of 2 trials failed"));
  CHECK_THAT(first.out, Contains("failed (exit status 2)"));
  CHECK_THAT(first.err, Contains("invalid parameters for algorithm 'dpo': dpo: loss = \"rdpo\" needs label_smoothing < 0.5"));
  json all = results(sweep);
  REQUIRE(all.size() == 2);
  CHECK(all[0]["exit_status"] == 0);
  CHECK(all[1]["exit_status"] == 2);
  const std::string finished = all[0]["trial"]["name"];
  const std::string metrics = test::read_file(sweep / finished / "metrics.jsonl");

  const auto second = multirun(sweep, dir.path() / "cache", sweep_overrides);
  CHECK(second.status == 1);
  CHECK_THAT(second.err, Contains("finished before, kept"));
  CHECK(test::read_file(sweep / finished / "metrics.jsonl") == metrics);
}

TEST_CASE("the experiment's sweep table is checked with file and line", "[multirun]") {
  test::TempDir dir;
  const fs::path experiment = dir.path() / "exp.toml";
  std::ofstream(experiment) << "seed = 0\n[prefopt.sweep]\nseed = [1, 2]\n";
  const auto result = run_cli({"run", "-m", experiment.string(), "--out", (dir.path() / "out").string()});
  CHECK(result.status == 2);
  CHECK_THAT(result.err, Contains("exp.toml:3"));
  CHECK_THAT(result.err, Contains("prefopt.sweep.seed must be a string in override syntax"));

  std::ofstream(experiment) << "seed = 0\n[prefopt.sweep]\nseed = \"1,,2\"\n";
  const auto bad_value = run_cli({"run", "-m", experiment.string(), "--out", (dir.path() / "out").string()});
  CHECK(bad_value.status == 2);
  CHECK_THAT(bad_value.err, Contains("exp.toml:3"));
  CHECK_FALSE(fs::exists(dir.path() / "out"));

  const auto rerun = run_cli({"run", "-m", "--rerun", dir.path().string()});
  CHECK(rerun.status == 2);
}
