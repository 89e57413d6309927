// The Slurm launcher against a real single-node Slurm, which ctest starts before these tests and
// stops after them (tests/slurm/local_slurm.sh; the fixture "slurm"): a sweep runs as a job
// array with the local launcher's results, a trial preempted with SIGUSR1 requeues itself and
// resumes from its checkpoint with identical metrics, and a re-run submits only what is missing.
// Without Slurm (or root) they skip, saying why.
#include <catch2/catch.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <cstdlib>
#include <fstream>
#include <optional>
#include <thread>

#include "support.h"

using namespace prefopt;
using Catch::Contains;
using nlohmann::json;
using test::run_cli;
namespace fs = std::filesystem;

namespace {

// Why the local Slurm is not there, or nothing (and SLURM_CONF is set for the commands run here).
std::optional<std::string> slurm_unavailable() {
  const fs::path dir = PREFOPT_SLURM_DIR;
  if (fs::exists(dir / "unavailable")) return test::read_file(dir / "unavailable");
  if (!fs::exists(dir / "etc" / "slurm.conf"))
    return "the local Slurm is not running; run these tests through ctest, which starts it (fixture 'slurm')";
  ::setenv("SLURM_CONF", (dir / "etc" / "slurm.conf").c_str(), 1);
  return std::nullopt;
}

#define SKIP_WITHOUT_SLURM()                          \
  if (const auto why = slurm_unavailable(); why) {    \
    test::report_skipped("no Slurm: " + *why);        \
    return;                                           \
  }

struct SlurmFixture {
  test::TempDir dir;
  fs::path cache = dir.path() / "cache";

  SlurmFixture() {
    std::ofstream(dir.path() / "exp.toml") << R"(defaults = [{task = "synthetic"}, {annotator = "flip"}, {reward_model = "bradley_terry"},
            {ensemble = "mean"}, {algorithm = "dpo"}, "_self_"]
seed = 0
[policy]
width = 16
[sft]
steps = 10
corpus_size = 128
[preferences]
pairs = 64
held_out = 16
[reward_models]
members = 1
[train]
steps = 20
eval_every = 5
checkpoint_every = 5
[eval]
prompts = 16
)";
    std::ofstream(dir.path() / "sleeper.toml") << test::kTrainerExperiment;
  }

  fs::path sweep_file(const std::string& body, const std::string& experiment = "exp.toml") const {
    const fs::path file = dir.path() / "s.toml";
    std::ofstream(file) << "experiment = \"" << experiment << "\"\n" << body;
    return file;
  }

  std::vector<std::string> args(const fs::path& sweep, const fs::path& out, const std::vector<std::string>& extra = {}) const {
    return test::sweep_args(sweep, out, cache, extra);
  }
};

json read_json(const fs::path& file) { return json::parse(test::read_file(file)); }

const std::string kSlurmLauncher = "[launcher]\nname = \"slurm\"\n[launcher.slurm]\ncpus_per_task = 1\ngpus = 1\n";

}  // namespace

TEST_CASE("a sweep submitted to Slurm completes with the local launcher's results", "[slurm][e2e]") {
  SKIP_WITHOUT_SLURM();
  SlurmFixture f;
  const fs::path sweep = f.sweep_file("seeds = [0, 1]\n[grid]\nalgorithm = \"dpo,orpo\"\n" + kSlurmLauncher);
  const fs::path out = f.dir.path() / "slurm";
  const auto submitted = run_cli(f.args(sweep, out, {"--wait"}));
  INFO(submitted.out << submitted.err);
  REQUIRE(submitted.status == 0);
  CHECK_THAT(submitted.out, Contains("submitted job array") && Contains("(4 trials)"));
  CHECK_THAT(test::read_file(out / "slurm" / "sweep.sbatch"),
             Contains("#SBATCH --gres=gpu:1") && Contains("#SBATCH --signal=B:USR1@120") && Contains("--requeue"));

  // Byte-identical results need the same thread count: with a wheel's libtorch (MKL, OpenMP) the
  // intra-op pool's reductions round by thread count. The Slurm tasks have one CPU each.
  const auto local = run_cli(f.args(sweep, f.dir.path() / "local", {"--launcher", "local", "++runtime.threads=1"}));
  REQUIRE(local.status == 0);
  const auto a = test::sweep_trial_dirs(out), b = test::sweep_trial_dirs(f.dir.path() / "local");
  REQUIRE(a.size() == 4);
  for (std::size_t i = 0; i < a.size(); ++i) {
    const json status = read_json(a[i] / "status.json");
    CHECK(status["state"] == "finished");
    CHECK_THAT(status["slurm"]["job"].get<std::string>(), Contains(fmt::format("_{}", i)));
    CHECK(status["gpu"] != "");  // Slurm gave the task one (fake) GPU
    CHECK(test::read_file(a[i] / "metrics.jsonl") == test::read_file(b[i] / "metrics.jsonl"));
  }
  CHECK(run_cli({"results", out.string(), "--format", "json"}).out ==
        run_cli({"results", (f.dir.path() / "local").string(), "--format", "json"}).out);
  CHECK_THAT(run_cli({"status", out.string()}).out, Contains("4 trials: 4 finished"));

  // Nothing is missing: a re-run submits nothing.
  const auto again = run_cli(f.args(sweep, out));
  CHECK(again.status == 0);
  CHECK_THAT(again.err, Contains("4 finished, 0 queued or running, 0 to submit"));
  CHECK(read_json(out / "slurm" / "submissions.json").size() == 1);
}

TEST_CASE("a Slurm trial warned with SIGUSR1 requeues itself and resumes with identical metrics", "[slurm][e2e]") {
  SKIP_WITHOUT_SLURM();
  SlurmFixture f;
  const fs::path sweep = f.sweep_file("overrides = [\"train.steps=300\", \"train.eval_every=100\"]\n" + kSlurmLauncher);
  const fs::path out = f.dir.path() / "slurm";
  REQUIRE(run_cli(f.args(sweep, out)).status == 0);
  const fs::path trial = test::sweep_trial_dirs(out)[0];
  REQUIRE(test::wait_for_file(trial / "checkpoint" / "checkpoint.json", 300));
  const std::string job = read_json(out / "slurm" / "submissions.json")[0]["job_id"];
  // What Slurm sends --signal=B:USR1@N seconds before the time limit, now.
  REQUIRE(std::system(fmt::format("scancel --batch --signal=USR1 {}_0", job).c_str()) == 0);

  const auto waited = run_cli(f.args(sweep, out, {"--wait"}));
  INFO(waited.out << waited.err << test::read_file(trial / "output.log"));
  REQUIRE(waited.status == 0);
  CHECK_THAT(waited.err, Contains("1 queued or running, 0 to submit"));  // the requeued task is not submitted twice
  const std::string log = test::read_file(trial / "output.log");
  CHECK_THAT(log, Contains("checkpoint saved") && Contains("(attempt 2)") && Contains("resumed from the checkpoint at step"));
  const json status = read_json(trial / "status.json");
  CHECK(status["attempt"] == 2);
  CHECK(status["slurm"]["restart_count"] == "1");

  REQUIRE(run_cli(f.args(sweep, f.dir.path() / "local", {"--launcher", "local", "++runtime.threads=1"})).status == 0);
  CHECK(test::read_file(trial / "metrics.jsonl") == test::read_file(test::sweep_trial_dirs(f.dir.path() / "local")[0] / "metrics.jsonl"));
}

TEST_CASE("a Slurm re-run submits only the trials that failed, never one still queued", "[slurm][e2e]") {
  SKIP_WITHOUT_SLURM();
  SlurmFixture f;
  // The trials must still be queued or running when the second and third commands look: 8 s of
  // sleep covers a loaded CI machine (at 2 s, a busy one let the failing trial end first, and the
  // third command resubmitted it).
  const fs::path sweep = f.sweep_file("overrides = [\"algorithm.sleep_ms=8000\"]\n[grid]\n\"algorithm.abort\" = \"false,true\"\n" + kSlurmLauncher, "sleeper.toml");
  const fs::path out = f.dir.path() / "slurm";
  REQUIRE(run_cli(f.args(sweep, out)).status == 0);
  const auto queued = run_cli(f.args(sweep, out));
  CHECK(queued.status == 0);
  CHECK_THAT(queued.err, Contains("0 finished, 2 queued or running, 0 to submit"));

  const auto first = run_cli(f.args(sweep, out, {"--wait"}));
  CHECK(first.status == 1);
  CHECK_THAT(first.err, Contains("1 trial(s) did not finish"));
  const auto listed = run_cli({"status", out.string()});
  CHECK_THAT(listed.out, Contains("1 finished, 1 failed") && Contains("algorithm.abort=true"));

  const auto retried = run_cli(f.args(sweep, out, {"--wait"}));
  CHECK(retried.status == 1);
  CHECK_THAT(retried.err, Contains("1 finished, 0 queued or running, 1 to submit"));
  const json submissions = read_json(out / "slurm" / "submissions.json");
  REQUIRE(submissions.size() == 2);
  CHECK(submissions[0]["indices"] == json::array({0, 1}));
  CHECK(submissions[1]["indices"] == json::array({1}));
  CHECK(read_json(test::sweep_trial_dirs(out)[1] / "status.json")["attempt"] == 2);
}

TEST_CASE("a search on Slurm runs each round as a job array and proposes what the local launcher does", "[slurm][e2e]") {
  SKIP_WITHOUT_SLURM();
  SlurmFixture f;
  const fs::path sweep = f.sweep_file(
      "seeds = [0]\n[grid]\nalgorithm = \"dpo,orpo\"\n[search]\nbudget = 3\nstartup = 1\n[search.space]\n"
      "\"algorithm.learning_rate\" = \"tag(log, interval(1e-4, 1e-1))\"\n[search.pruner]\nkind = \"asha\"\nmin_step = 5\n"
      "reduction = 2\n" +
      kSlurmLauncher);
  const fs::path out = f.dir.path() / "slurm";
  const auto searched = run_cli(f.args(sweep, out));
  INFO(searched.out << searched.err);
  REQUIRE(searched.status == 0);
  CHECK(read_json(out / "slurm" / "submissions.json").size() == 3);  // one array per round
  const auto local = run_cli(f.args(sweep, f.dir.path() / "local", {"--launcher", "local", "++runtime.threads=1"}));
  REQUIRE(local.status == 0);
  const json a = read_json(out / "sweep.json")["trials"], b = read_json(f.dir.path() / "local" / "sweep.json")["trials"];
  REQUIRE(a.size() == 6);
  REQUIRE(b.size() == 6);
  for (std::size_t i = 0; i < a.size(); ++i) {
    CHECK(a[i]["search"] == b[i]["search"]);
    CHECK(test::read_file(out / a[i]["name"].get<std::string>() / "metrics.jsonl") ==
          test::read_file(f.dir.path() / "local" / b[i]["name"].get<std::string>() / "metrics.jsonl"));
  }
}
