// `prefopt sweep`, `results`, `report` end to end with a test algorithm that sleeps and can abort:
// crashes are recorded and the sweep finishes; kill -9 then a re-run completes only the missing
// trials with the same results; a changed spec is refused; two sweeps on one node share GPU slots.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <unistd.h>

#include <csignal>
#include <fstream>
#include <thread>

#include "support.h"

using namespace prefopt;
using Catch::Contains;
using nlohmann::json;
using test::run_cli;
namespace fs = std::filesystem;

namespace {

// A tiny pipeline whose algorithm is the test library's test_trainer.
struct SweepFixture {
  test::TempDir dir;
  fs::path experiment = dir.path() / "exp.toml";
  fs::path cache = dir.path() / "cache";

  SweepFixture() {
    std::ofstream(experiment) << test::kTrainerExperiment;
  }

  fs::path sweep_file(const std::string& name, const std::string& body) const {
    const fs::path file = dir.path() / name;
    std::ofstream(file) << "experiment = \"exp.toml\"\n" << body;
    return file;
  }

  std::vector<std::string> args(const fs::path& sweep, const fs::path& out, const std::vector<std::string>& extra = {}) const {
    return test::sweep_args(sweep, out, cache, extra);
  }
};

json status_of(const fs::path& trial_dir) { return json::parse(test::read_file(trial_dir / "status.json")); }


}  // namespace

TEST_CASE("a crashing trial is recorded and the sweep finishes the others", "[sweep][e2e]") {
  SweepFixture f;
  const fs::path sweep = f.sweep_file("s.toml", "[grid]\n\"algorithm.abort\" = \"false,true\"\n\"algorithm.sleep_ms\" = \"0,1\"\n");
  const auto result = run_cli(f.args(sweep, f.dir.path() / "out"));
  CHECK(result.status == 1);
  CHECK_THAT(result.err, Contains("2 trial(s) failed"));
  const auto dirs = test::sweep_trial_dirs(f.dir.path() / "out");
  REQUIRE(dirs.size() == 4);
  CHECK(status_of(dirs[0])["state"] == "finished");
  const json crashed = status_of(dirs[2]);
  CHECK(crashed["state"] == "failed");
  CHECK(crashed["exit_status"] == 128 + SIGABRT);
  CHECK(crashed["signal"].is_string());
  CHECK_THAT(crashed["log_tail"].get<std::string>(), Contains("algorithm: algorithm 'test_trainer'"));
  // results and report work on a partly failed sweep; the index is rebuilt when deleted.
  fs::remove(f.dir.path() / "out" / "results.sqlite");
  const auto table = run_cli({"results", (f.dir.path() / "out").string(), "--format", "json", "--group-by", "algorithm.abort"});
  REQUIRE(table.status == 0);
  const json groups = json::parse(table.out);
  REQUIRE(groups.size() == 2);
  CHECK(groups[0]["final_gold"]["n"] == 2);
  CHECK(groups[1]["not_finished"] == 2);
  CHECK(fs::exists(f.dir.path() / "out" / "results.sqlite"));
  const auto csv = run_cli({"results", (f.dir.path() / "out").string(), "--format", "csv"});
  CHECK_THAT(csv.out, Contains("algorithm.abort,algorithm.sleep_ms,n,final_gold_mean"));
  const auto bad = run_cli({"results", (f.dir.path() / "out").string(), "--group-by", "algorithm.abrt"});
  CHECK(bad.status == 2);
  CHECK_THAT(bad.err, Contains("did you mean 'algorithm.abort'?"));
  // --max-failures 1: the first crash stops the sweep from starting the last trial.
  const auto stopped = run_cli(f.args(sweep, f.dir.path() / "stopped", {"--max-failures", "1"}));
  CHECK(stopped.status == 1);
  CHECK_THAT(stopped.err, Contains("1 trial(s) failed and 1 did not start"));
  CHECK_FALSE(fs::exists(test::sweep_trial_dirs(f.dir.path() / "stopped")[3] / "status.json"));
  const std::string html = test::read_file(f.dir.path() / "out" / "report.html");
  CHECK_THAT(html, Contains("<svg") && Contains("Gold reward against √KL") && Contains("<table>"));
  CHECK(html.find("<script") == std::string::npos);
  CHECK(html.find("http://") == html.find("http://www.w3.org/2000/svg"));  // no network resources
}

TEST_CASE("kill -9 of a sweep, then a re-run: only the missing trials run, results as uninterrupted", "[sweep][e2e]") {
  SweepFixture f;
  const fs::path sweep = f.sweep_file("s.toml", "[grid]\n\"algorithm.sleep_ms\" = \"1000,1001,1002,1003\"\n");
  const fs::path out = f.dir.path() / "out";
  const int pid = test::spawn_cli(f.args(sweep, out), f.dir.path() / "first.log");
  // Wait for the first trial to finish, then kill the launcher mid-sweep.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (!(fs::exists(out / "sweep.json") && fs::exists(test::sweep_trial_dirs(out)[0] / "summary.json")) &&
         std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  // A second launcher on the same folder is refused while the first runs.
  const auto concurrent = run_cli(f.args(sweep, out));
  CHECK(concurrent.status == 2);
  CHECK_THAT(concurrent.err, Contains("another prefopt is running the sweep"));
  ::kill(pid, SIGKILL);
  CHECK(test::wait_cli(pid) == 128 + SIGKILL);
  std::int64_t done_before = 0;
  for (const fs::path& d : test::sweep_trial_dirs(out)) done_before += fs::exists(d / "summary.json");
  REQUIRE(done_before >= 1);
  REQUIRE(done_before < 4);

  const auto resumed = run_cli(f.args(sweep, out));
  INFO(resumed.err);
  REQUIRE(resumed.status == 0);
  CHECK_THAT(resumed.err, Contains(std::to_string(done_before) + " of 4 trials finished before; kept"));
  const auto clean = run_cli(f.args(sweep, f.dir.path() / "clean"));
  REQUIRE(clean.status == 0);
  const auto a = test::sweep_trial_dirs(out), b = test::sweep_trial_dirs(f.dir.path() / "clean");
  for (std::size_t i = 0; i < a.size(); ++i)
    CHECK(test::read_file(a[i] / "metrics.jsonl") == test::read_file(b[i] / "metrics.jsonl"));
  CHECK(run_cli({"results", out.string(), "--format", "json"}).out ==
        run_cli({"results", (f.dir.path() / "clean").string(), "--format", "json"}).out);
}

TEST_CASE("a bad value in one trial stops the sweep before anything runs, naming the trial", "[sweep]") {
  SweepFixture f;
  const fs::path sweep = f.sweep_file("s.toml", "[grid]\n\"algorithm.sleep_ms\" = \"0,-5\"\n");
  const auto result = run_cli(f.args(sweep, f.dir.path() / "out"));
  CHECK(result.status == 2);
  CHECK_THAT(result.err, Contains("trial algorithm.sleep_ms=-5:") && Contains("algorithm.sleep_ms"));
  CHECK_FALSE(fs::exists(f.dir.path() / "out"));
}

TEST_CASE("a changed sweep spec is refused, and added trials need --extend", "[sweep][e2e]") {
  SweepFixture f;
  const fs::path out = f.dir.path() / "out";
  REQUIRE(run_cli(f.args(f.sweep_file("s.toml", "seeds = [0]\n"), out)).status == 0);
  const auto changed = run_cli(f.args(f.sweep_file("s.toml", "seeds = [1]\n"), out));
  CHECK(changed.status == 2);
  CHECK_THAT(changed.err, Contains("was started with another spec") && Contains("no longer in the sweep") &&
                              Contains("seed=0"));
  const auto added = run_cli(f.args(f.sweep_file("s.toml", "seeds = [0, 1]\n"), out));
  CHECK(added.status == 2);
  CHECK_THAT(added.err, Contains("gains 1 trial(s)") && Contains("--extend"));
  const auto extended = run_cli(f.args(f.sweep_file("s.toml", "seeds = [0, 1]\n"), out, {"--extend"}));
  CHECK(extended.status == 0);
  CHECK_THAT(extended.err, Contains("1 of 2 trials finished before; kept"));
  // The experiment edited under a sweep: its trials' resolved configs changed.
  std::ofstream(f.experiment, std::ios::app) << "[train]\nsteps = 3\n";
  const auto edited = run_cli(f.args(f.sweep_file("s.toml", "seeds = [0, 1]\n"), out));
  CHECK(edited.status == 2);
  CHECK_THAT(edited.err, Contains("resolved config changed"));
}

TEST_CASE("two sweeps on one node never put more than per-gpu trials on a GPU", "[sweep][e2e]") {
  SweepFixture f;
  const fs::path slots = f.dir.path() / "slots";
  const fs::path sweep = f.sweep_file("s.toml", "[grid]\n\"algorithm.sleep_ms\" = \"1000,1001\"\n");
  // Warm the stage cache so that the trials overlap mostly in their sleep.
  REQUIRE(run_cli(f.args(sweep, f.dir.path() / "warm")).status == 0);
  const std::vector<std::string> gpu = {"--jobs", "2", "--gpus", "7", "--per-gpu", "1", "--slot-dir", slots.string()};
  const int a = test::spawn_cli(f.args(sweep, f.dir.path() / "a", gpu), f.dir.path() / "a.log");
  const int b = test::spawn_cli(f.args(sweep, f.dir.path() / "b", gpu), f.dir.path() / "b.log");
  CHECK(test::wait_cli(a) == 0);
  CHECK(test::wait_cli(b) == 0);
  std::vector<std::pair<double, double>> intervals;
  for (const char* name : {"a", "b"})
    for (const fs::path& d : test::sweep_trial_dirs(f.dir.path() / name)) {
      const json s = status_of(d);
      CHECK(s["gpu"] == "7");
      CHECK_THAT(test::read_file(d / "output.log"), Contains("run folder"));
      intervals.emplace_back(s["started_at"].get<double>(), s["ended_at"].get<double>());
    }
  REQUIRE(intervals.size() == 4);
  std::sort(intervals.begin(), intervals.end());
  for (std::size_t i = 1; i < intervals.size(); ++i) CHECK(intervals[i].first >= intervals[i - 1].second - 0.05);
}

TEST_CASE("GPU slot files are every user's, and a slot folder the user cannot write is refused before any trial starts",
          "[sweep][faults]") {
  SweepFixture f;
  const fs::path slots = f.dir.path() / "slots", out = f.dir.path() / "out";
  // One trial takes one of two slots; both files must be writable by other users' sweeps.
  const fs::path shared = f.dir.path() / "shared-slots";
  const fs::path one = f.sweep_file("one.toml", "seeds = [0]\n");
  REQUIRE(run_cli(f.args(one, f.dir.path() / "one", {"--gpus", "7", "--per-gpu", "2", "--slot-dir", shared.string()}))
              .status == 0);
  for (const char* name : {"gpu7-slot0.lock", "gpu7-slot1.lock"})
    CHECK((fs::status(shared / name).permissions() & fs::perms::others_write) != fs::perms::none);

  fs::create_directories(slots);
  // Root writes through permissions: for root a read-only mount stands in for another user's folder.
  const bool root = ::geteuid() == 0;
  const std::optional<test::Tmpfs> read_only = root ? test::Tmpfs::mount(slots, "ro") : std::nullopt;
  if (root && !read_only) {
    test::report_skipped("cannot mount a read-only tmpfs here");
    return;
  }
  if (!root) fs::permissions(slots, fs::perms::owner_read | fs::perms::owner_exec);
  const fs::path sweep = f.sweep_file("s.toml", "seeds = [0, 1]\n");
  const auto result = run_cli(f.args(sweep, out, {"--gpus", "7", "--slot-dir", slots.string()}));
  CHECK(result.status == 2);
  CHECK_THAT(result.err, Contains("--slot-dir " + slots.string() + ": cannot open the GPU slot file gpu7-slot0.lock: " +
                                  (root ? "Read-only file system" : "Permission denied")) &&
                             Contains("mode 1777"));
  std::error_code none;
  for (const auto& entry : fs::recursive_directory_iterator(out, none)) CHECK(entry.path().filename() != "status.json");
  if (!root) fs::permissions(slots, fs::perms::owner_all);
}

TEST_CASE("a trial over --timeout is stopped and recorded", "[sweep][e2e]") {
  SweepFixture f;
  const fs::path sweep = f.sweep_file("s.toml", "[grid]\n\"algorithm.sleep_ms\" = \"60000\"\n");
  const auto result = run_cli(f.args(sweep, f.dir.path() / "out", {"--timeout", "3"}));
  CHECK(result.status == 1);
  const json s = status_of(test::sweep_trial_dirs(f.dir.path() / "out")[0]);
  CHECK(s["timed_out"] == true);
  CHECK(s["state"] == "failed");
  CHECK(s["seconds"].get<double>() < 30);
}

TEST_CASE("bad launcher choices and trial or status arguments exit 2, saying what to fix", "[sweep]") {
  SweepFixture f;
  const fs::path sweep = f.sweep_file("s.toml", "seeds = [0]\n");
  const fs::path out = f.dir.path() / "out";
  const auto typo = run_cli(f.args(sweep, out, {"--launcher", "slurn"}));
  CHECK(typo.status == 2);
  CHECK_THAT(typo.err, Contains("--launcher must be local or slurm") && Contains("did you mean 'slurm'?"));
  const auto gpus = run_cli(f.args(sweep, out, {"--launcher", "slurm", "--gpus", "0"}));
  CHECK(gpus.status == 2);
  CHECK_THAT(gpus.err, Contains("[launcher.slurm]: gpus = 1"));
  const auto wait = run_cli(f.args(sweep, out, {"--wait"}));
  CHECK(wait.status == 2);
  CHECK_THAT(wait.err, Contains("--wait follows a Slurm sweep"));

  const auto no_sweep = run_cli({"status", f.dir.path().string()});
  CHECK(no_sweep.status == 2);
  CHECK_THAT(no_sweep.err, Contains("is not a sweep folder"));
  REQUIRE(run_cli(f.args(sweep, out)).status == 0);
  const auto bad_index = run_cli({"trial", out.string(), "5"});
  CHECK(bad_index.status == 2);
  CHECK_THAT(bad_index.err, Contains("has trials 0 to 0, not 5"));
  const auto finished = run_cli({"trial", out.string(), "0"});
  CHECK(finished.status == 0);  // a finished trial is left as it is
}

TEST_CASE("a diverging trial ends with where it diverged, is not retried, and the sweep finishes the others", "[sweep][e2e]") {
  SweepFixture f;
  std::ofstream(f.dir.path() / "dpo.toml") << test::tiny_experiment("dpo", 12, 3);
  const fs::path sweep = f.dir.path() / "s.toml";
  std::ofstream(sweep) << "experiment = \"dpo.toml\"\n[grid]\n\"algorithm.learning_rate\" = \"1e-3,1e4\"\n";
  const fs::path out = f.dir.path() / "out";
  const auto result = run_cli(f.args(sweep, out));
  CHECK(result.status == 1);
  CHECK_THAT(result.err, Contains("DIVERGED algorithm.learning_rate=10000.0: dpo diverged by step 3") &&
                             Contains("1 trial(s) diverged (not retried"));
  const auto dirs = test::sweep_trial_dirs(out);
  REQUIRE(dirs.size() == 2);
  CHECK(status_of(dirs[0])["state"] == "finished");
  CHECK(status_of(dirs[1])["state"] == "diverged");
  const json summary = json::parse(test::read_file(dirs[1] / "summary.json"));
  CHECK_THAT(summary["diverged"].get<std::string>(), Contains("kl") && Contains("algorithm.loss"));
  CHECK(summary["final"]["step"] == 3);  // it stopped at the evaluation that showed it
  CHECK_THAT(result.out, Contains("(1 diverged)"));
  CHECK_THAT(run_cli({"status", out.string()}).out, Contains("1 finished, 1 diverged"));
  // Running it again would diverge again: nothing runs, and the sweep still says so.
  const auto again = run_cli(f.args(sweep, out));
  CHECK(again.status == 1);
  CHECK_THAT(again.err, Contains("2 of 2 trials finished before; kept") && Contains("1 trial(s) diverged"));
}
