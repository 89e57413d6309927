// Trial checkpoints: a run stopped by a signal continues from its checkpoint (`--continue`) and
// ends with exactly the metrics of an uninterrupted run, for each kind of trainer (PPO with its
// critic and KL controller, DPO with its pass over the pairs, GRPO); a stopped local sweep
// continues its trials the same way; one killed with SIGKILL at random moments continues too.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <fmt/format.h>

#include <chrono>
#include <csignal>
#include <fstream>
#include <functional>
#include <map>
#include <random>
#include <thread>

#include "support.h"

using namespace prefopt;
using Catch::Contains;
using nlohmann::json;
using test::run_cli;
namespace fs = std::filesystem;

namespace {

const std::string kExperiment = (fs::path(PREFOPT_SOURCE_DIR) / "experiments/comparison.toml").string();
const std::vector<std::string> kSmall = {
    "policy.width=32",         "sft.steps=100",          "sft.corpus_size=1024", "preferences.pairs=400",
    "preferences.held_out=50", "reward_models.members=1", "eval.prompts=64",      "train.steps=60",
    "train.eval_every=10",     "train.checkpoint_every=2"};
// Each trainer's own size key: pairs per batch, or prompts per rollout.
const std::map<std::string, std::string> kAlgorithmSize = {
    {"dpo", "algorithm.batch_size=16"}, {"ppo", "algorithm.prompts=16"}, {"grpo", "algorithm.prompts=8"}};

const fs::path& shared_cache() {
  static const test::TempDir dir;
  return dir.path();
}

std::vector<std::string> run_args(const fs::path& out, const std::string& algorithm, std::vector<std::string> extra = {}) {
  std::vector<std::string> args = {"run", kExperiment, "algorithm=" + algorithm, "--out", out.string(), "--cache",
                                   shared_cache().string()};
  args.insert(args.end(), kSmall.begin(), kSmall.end());
  args.push_back(kAlgorithmSize.at(algorithm));
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

}  // namespace

TEST_CASE("a run stopped by SIGTERM continues from its checkpoint to the metrics of an uninterrupted run",
          "[checkpoint][e2e]") {
  const test::TempDir dir;
  for (const std::string algorithm : {"dpo", "ppo", "grpo"}) {
    INFO(algorithm);
    const fs::path whole = dir.path() / (algorithm + "-whole"), stopped = dir.path() / (algorithm + "-stopped");
    const auto uninterrupted = run_cli(run_args(whole, algorithm));
    INFO(uninterrupted.err);
    REQUIRE(uninterrupted.status == 0);
    CHECK_FALSE(fs::exists(whole / "checkpoint"));  // removed once the trial ends

    const int pid = test::spawn_cli(run_args(stopped, algorithm), dir.path() / (algorithm + ".log"));
    REQUIRE(test::wait_for_file(stopped / "checkpoint" / "checkpoint.json", 400, pid));
    ::kill(pid, SIGTERM);
    REQUIRE(test::wait_cli(pid) == 75);
    const std::string log = test::read_file(dir.path() / (algorithm + ".log"));
    CHECK_THAT(log, Contains("checkpoint saved") && Contains("--continue"));
    const json checkpoint = json::parse(test::read_file(stopped / "checkpoint" / "checkpoint.json"));
    CHECK(checkpoint["step"].get<int>() >= 2);
    CHECK(checkpoint["step"].get<int>() < 60);
    CHECK_FALSE(fs::exists(stopped / "summary.json"));

    const auto continued = run_cli(run_args(stopped, algorithm, {"--continue"}));
    INFO(continued.err);
    REQUIRE(continued.status == 0);
    const std::string run_log = test::read_file(stopped / "run.log");
    CHECK_THAT(run_log, Contains(fmt::format("resumed from the checkpoint at step {}", checkpoint["step"].get<int>())));
    CHECK_THAT(run_log, Contains("sft: reused"));  // the stage cache is not redone
    CHECK(test::read_file(stopped / "metrics.jsonl") == test::read_file(whole / "metrics.jsonl"));
    CHECK(json::parse(test::read_file(stopped / "summary.json"))["final"] ==
          json::parse(test::read_file(whole / "summary.json"))["final"]);
    CHECK_FALSE(fs::exists(stopped / "checkpoint"));
  }
}

TEST_CASE("a checkpoint damaged on disk is detected, and the trial starts over and ends as an uninterrupted run",
          "[checkpoint][faults][e2e]") {
  const test::TempDir dir;
  const fs::path whole = dir.path() / "whole";
  REQUIRE(run_cli(run_args(whole, "dpo")).status == 0);
  const std::vector<std::pair<std::string, std::function<void(const fs::path&)>>> damages = {
      {"its bytes changed since it was saved (checksum)",
       [](const fs::path& file) {  // one bit, in the middle of the tensors: libtorch alone would load it
         std::fstream stream(file, std::ios::binary | std::ios::in | std::ios::out);
         const auto middle = static_cast<std::streamoff>(fs::file_size(file) / 2);
         stream.seekg(middle);
         const char byte = static_cast<char>(stream.get());
         stream.seekp(middle);
         stream.put(static_cast<char>(byte ^ 0x04));
       }},
      {" when saved)", [](const fs::path& file) { fs::resize_file(file, fs::file_size(file) / 3); }},
      {"it is missing", [](const fs::path& file) { fs::remove(file); }},
  };
  for (std::size_t i = 0; i < damages.size(); ++i) {
    const auto& [message, damage] = damages[i];
    INFO(message);
    const fs::path stopped = dir.path() / ("stopped-" + std::to_string(i));
    const int pid = test::spawn_cli(run_args(stopped, "dpo"), dir.path() / "stopped.log");
    REQUIRE(test::wait_for_file(stopped / "checkpoint" / "checkpoint.json", 400, pid));
    ::kill(pid, SIGTERM);
    REQUIRE(test::wait_cli(pid) == 75);
    const json manifest = json::parse(test::read_file(stopped / "checkpoint" / "checkpoint.json"));
    const fs::path state = stopped / "checkpoint" / manifest["file"].get<std::string>();
    REQUIRE(fs::exists(state));
    CHECK(manifest["size"] == fs::file_size(state));
    damage(state);

    const auto continued = run_cli(run_args(stopped, "dpo", {"--continue"}));
    INFO(continued.err);
    REQUIRE(continued.status == 0);
    const std::string run_log = test::read_file(stopped / "run.log");
    CHECK_THAT(run_log, Contains("is damaged (") && Contains(message) && Contains("the trial starts over from step 0"));
    CHECK_THAT(run_log, !Contains("resumed from the checkpoint"));
    CHECK(test::read_file(stopped / "metrics.jsonl") == test::read_file(whole / "metrics.jsonl"));
    CHECK_FALSE(fs::exists(stopped / "checkpoint"));
  }
}

TEST_CASE("run --continue needs the same configuration, and leaves a finished run as it is", "[checkpoint]") {
  const test::TempDir dir;
  const fs::path out = dir.path() / "run";
  REQUIRE(run_cli(run_args(out, "dpo", {"train.steps=2"})).status == 0);
  const std::string metrics = test::read_file(out / "metrics.jsonl");
  const auto again = run_cli(run_args(out, "dpo", {"train.steps=2", "--continue"}));
  CHECK(again.status == 0);
  CHECK_THAT(again.err, Contains("finished already"));
  CHECK(test::read_file(out / "metrics.jsonl") == metrics);

  fs::remove(out / "summary.json");
  const auto other = run_cli(run_args(out, "dpo", {"train.steps=3", "--continue"}));
  CHECK(other.status == 2);
  CHECK_THAT(other.err, Contains("holds a run of another configuration"));
  const auto no_out = run_cli({"run", kExperiment, "--continue"});
  CHECK(no_out.status == 2);
  CHECK_THAT(no_out.err, Contains("--continue needs the run folder"));
  const auto plain = run_cli(run_args(out, "dpo", {"train.steps=2"}));
  CHECK(plain.status == 2);
  CHECK_THAT(plain.err, Contains("holds a run already"));
}

TEST_CASE("an interrupted local sweep continues its stopped trials from their checkpoints", "[checkpoint][sweep][e2e]") {
  const test::TempDir dir;
  const fs::path sweep = dir.path() / "s.toml", out = dir.path() / "out";
  // Two trials share the cores here, and only resuming is under test: a shorter SFT stage.
  std::string overrides;
  for (const std::string& o : kSmall) overrides += "\"" + (o == "sft.steps=100" ? "sft.steps=30" : o) + "\", ";
  std::ofstream(sweep) << "experiment = \"" << kExperiment << "\"\noverrides = [" << overrides
                       << "\"algorithm=dpo\", \"" << kAlgorithmSize.at("dpo") << "\"]\nseeds = [0, 1]\n";
  const std::vector<std::string> args = {"sweep", sweep.string(), "--out", out.string(), "--cache", shared_cache().string()};
  const int pid = test::spawn_cli(args, dir.path() / "first.log");
  REQUIRE(test::wait_for_file(out / "sweep.json", 400, pid));
  const json plan = json::parse(test::read_file(out / "sweep.json"));
  const fs::path first = out / plan["trials"][0]["name"].get<std::string>();
  REQUIRE(test::wait_for_file(first / "checkpoint" / "checkpoint.json", 400, pid));
  ::kill(pid, SIGTERM);
  CHECK(test::wait_cli(pid) == 130);
  const json status = json::parse(test::read_file(first / "status.json"));
  CHECK(status["state"] == "stopped");
  CHECK(status["exit_status"] == 75);
  const auto listed = run_cli({"status", out.string()});
  CHECK(listed.status == 0);
  CHECK_THAT(listed.out, Contains("1 stopped") && Contains("checkpoint at step"));

  const auto resumed = run_cli(args);
  INFO(resumed.err);
  REQUIRE(resumed.status == 0);
  CHECK_THAT(test::read_file(first / "output.log"), Contains("(attempt 2)") && Contains("resumed from the checkpoint"));
  CHECK(json::parse(test::read_file(first / "status.json"))["attempt"] == 2);
  CHECK_THAT(run_cli({"status", out.string()}).out, Contains("2 trials: 2 finished"));
}

TEST_CASE("a run killed with SIGKILL at 20 random moments continues each time to the uninterrupted run's metrics",
          "[checkpoint][faults][e2e]") {
  const test::TempDir dir;
  const fs::path experiment = dir.path() / "exp.toml";
  std::ofstream(experiment) << test::tiny_experiment("dpo", 12, 2);  // a checkpoint at every evaluation
  const auto args = [&](const fs::path& out, const fs::path& cache) {
    return std::vector<std::string>{"run", experiment.string(), "--out", out.string(), "--cache", cache.string(),
                                    "--continue"};
  };
  const auto started = std::chrono::steady_clock::now();
  const auto uninterrupted = run_cli(args(dir.path() / "whole", dir.path() / "whole-cache"));
  REQUIRE(uninterrupted.status == 0);
  // From a cold cache: the stages, the training with its checkpoints, the final files.
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  const std::string expected = test::read_file(dir.path() / "whole" / "metrics.jsonl");

  // Each attempt continues the folder and is killed at a moment drawn over the whole run's time; a
  // folder that finishes must hold the uninterrupted metrics, and the next attempt starts a new one.
  std::mt19937 random(20261208);
  std::uniform_real_distribution<double> moment(0.0, seconds);
  const fs::path cache = dir.path() / "cache";
  int folders = 0, killed = 0;
  fs::path out = dir.path() / "run-0";
  for (int attempt = 0; attempt < 20; ++attempt) {
    const int pid = test::spawn_cli(args(out, cache), dir.path() / "attempt.log");
    std::this_thread::sleep_for(std::chrono::duration<double>(moment(random)));
    ::kill(pid, SIGKILL);
    const int status = test::wait_cli(pid);
    INFO("attempt " << attempt << ": " << test::read_file(dir.path() / "attempt.log"));
    CHECK((status == 128 + SIGKILL || status == 0));
    killed += status == 128 + SIGKILL;
    if (fs::exists(out / "summary.json")) {
      CHECK(test::read_file(out / "metrics.jsonl") == expected);
      out = dir.path() / fmt::format("run-{}", ++folders);
    }
  }
  const auto last = run_cli(args(out, cache));
  INFO(last.err);
  REQUIRE(last.status == 0);
  CHECK(test::read_file(out / "metrics.jsonl") == expected);
  CHECK(killed >= 10);
  // Computations killed midway left nothing in the cache that outlived the next one of their key.
  for (const auto& entry : fs::recursive_directory_iterator(cache))
    CHECK(entry.path().filename().string().find(".tmp-") == std::string::npos);
}
