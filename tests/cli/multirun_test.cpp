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

// The trials of a sweep folder with their status.
json trials(const fs::path& sweep) {
  json out = json::parse(test::read_file(sweep / "sweep.json"))["trials"];
  for (json& t : out) t["status"] = json::parse(test::read_file(sweep / t["name"].get<std::string>() / "status.json"));
  return out;
}

}  // namespace

TEST_CASE("run -m runs the experiment's own sweep, one folder per trial, side by side", "[multirun]") {
  test::TempDir dir;
  const auto result = multirun(dir.path() / "sweep", dir.path() / "cache", {});
  INFO(result.err);
  REQUIRE(result.status == 0);
  // comparison.toml's [prefopt.sweep] algorithm = "ppo,dpo,orpo".
  const json all = trials(dir.path() / "sweep");
  REQUIRE(all.size() == 3);
  std::vector<std::string> names;
  for (const json& trial : all) {
    names.push_back(trial["name"].get<std::string>());
    CHECK(trial["status"]["exit_status"] == 0);
    CHECK(fs::is_regular_file(dir.path() / "sweep" / names.back() / "metrics.jsonl"));
  }
  CHECK(names[0].starts_with("algorithm=ppo-"));
  CHECK(names[1].starts_with("algorithm=dpo-"));
  CHECK(names[2].starts_with("algorithm=orpo-"));
  // Side by side: one row per algorithm.
  for (const char* row : {"\nppo ", "\ndpo ", "\norpo "}) CHECK_THAT(result.out, Contains(row));
  CHECK_THAT(result.out, Contains("report: "));
  // The later trials reuse the first one's stages.
  const json summary = json::parse(test::read_file(dir.path() / "sweep" / names[2] / "summary.json"));
  CHECK(summary["stages"]["reward_models"]["reused"] == true);
  // The command line replaces the experiment's sweep of the same key.
  const auto single = multirun(dir.path() / "single", dir.path() / "cache", {"algorithm=simpo"});
  REQUIRE(single.status == 0);
  CHECK(trials(dir.path() / "single").size() == 1);
}

TEST_CASE("a failing trial is recorded, the others finish, and a rerun keeps what finished", "[multirun]") {
  test::TempDir dir;
  const fs::path sweep = dir.path() / "sweep";
  // rdpo refuses label_smoothing = 0.5 when the plugin is created, inside the trial's process.
  const std::vector<std::string> sweep_overrides = {"algorithm=dpo", "algorithm.loss=sigmoid,rdpo",
                                                    "algorithm.label_smoothing=0.5"};
  const auto first = multirun(sweep, dir.path() / "cache", sweep_overrides);
  CHECK(first.status == 1);
  CHECK_THAT(first.err, Contains("1 trial(s) failed"));
  CHECK_THAT(first.err, Contains("(exit status 2)"));
  json all = trials(sweep);
  REQUIRE(all.size() == 2);
  CHECK(all[0]["status"]["exit_status"] == 0);
  CHECK(all[1]["status"]["exit_status"] == 2);
  CHECK_THAT(all[1]["status"]["log_tail"].get<std::string>(),
             Contains("invalid parameters for algorithm 'dpo': dpo: loss = \"rdpo\" needs label_smoothing < 0.5"));
  const std::string finished = all[0]["name"];
  const std::string metrics = test::read_file(sweep / finished / "metrics.jsonl");

  const auto second = multirun(sweep, dir.path() / "cache", sweep_overrides);
  CHECK(second.status == 1);
  CHECK_THAT(second.err, Contains("1 of 2 trials finished before; kept"));
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
