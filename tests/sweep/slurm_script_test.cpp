// The Slurm launcher's pieces that need no cluster: the [launcher] table of a sweep file, the
// [launcher.slurm] options and their errors, the batch script, the array's index ranges.
#include <catch2/catch.hpp>

#include <fstream>

#include "support.h"
#include "sweep/slurm.h"
#include "sweep/spec.h"

using namespace prefopt;
using Catch::Contains;
namespace fs = std::filesystem;

namespace {

sweep::SweepSpec load(const test::TempDir& dir, const std::string& body) {
  const fs::path file = dir.path() / "s.toml";
  std::ofstream(file) << "experiment = \"exp.toml\"\n" << body;
  return sweep::load_sweep_file(file);
}

}  // namespace

TEST_CASE("a sweep file names its launcher as a string or a [launcher] table", "[sweep][slurm-options]") {
  const test::TempDir dir;
  CHECK(load(dir, "").launcher == "local");
  CHECK(load(dir, "launcher = \"slurm\"\n").launcher == "slurm");
  const sweep::SweepSpec spec = load(dir, "[launcher]\nname = \"slurm\"\n[launcher.slurm]\npartition = \"gpu\"\n");
  CHECK(spec.launcher == "slurm");
  REQUIRE(spec.slurm.has_value());
  CHECK(sweep::slurm_options(&*spec.slurm).get<std::string>("partition") == "gpu");
  CHECK_THROWS_WITH(load(dir, "launcher = \"slurn\"\n"), Contains("s.toml:2:") && Contains("unknown launcher 'slurn'") &&
                                                            Contains("did you mean 'slurm'?"));
  CHECK_THROWS_WITH(load(dir, "[launcher]\nnmae = \"slurm\"\n"), Contains("unknown key launcher.nmae") &&
                                                                     Contains("did you mean 'name'?"));
}

TEST_CASE("[launcher.slurm] mistakes name the key, file and line, with a did-you-mean", "[sweep][slurm-options]") {
  const test::TempDir dir;
  const sweep::SweepSpec spec = load(dir, "[launcher.slurm]\npartiton = \"gpu\"\ngpus = \"one\"\ngpu_request = \"all\"\n");
  REQUIRE(spec.slurm.has_value());
  try {
    sweep::slurm_options(&*spec.slurm);
    FAIL("no error");
  } catch (const ConfigError& e) {
    const std::string message = e.what();
    CHECK_THAT(message, Contains("s.toml:3:") && Contains("launcher.slurm.partiton") && Contains("did you mean 'partition'?"));
    CHECK_THAT(message, Contains("s.toml:4:") && Contains("launcher.slurm.gpus"));
    CHECK_THAT(message, Contains("s.toml:5:") && Contains("gres, gpus-per-task"));
  }
}

TEST_CASE("the batch script asks for what the options say and passes signals to the trial", "[sweep][slurm-options]") {
  const test::TempDir dir;
  const sweep::SweepSpec spec = load(dir, R"([launcher.slurm]
partition = "gpu"
time = "1:00:00"
cpus_per_task = 4
gpus = 2
gpu_request = "gpus-per-task"
signal_seconds = 300
sbatch = ["--exclusive"]
setup = ["module load cuda"]
)");
  const std::string script = sweep::sbatch_script("/shared/sweep dir", "/opt/prefopt/bin/prefopt", sweep::slurm_options(&*spec.slurm));
  CHECK_THAT(script, Contains("#SBATCH --partition=gpu\n") && Contains("#SBATCH --time=1:00:00\n") &&
                         Contains("#SBATCH --cpus-per-task=4\n") && Contains("#SBATCH --gpus-per-task=2\n") &&
                         Contains("#SBATCH --signal=B:USR1@300\n") && Contains("#SBATCH --requeue\n") &&
                         Contains("#SBATCH --exclusive\n") && Contains("#SBATCH --job-name=prefopt-sweep dir\n") &&
                         Contains("#SBATCH --output=/shared/sweep dir/slurm/%A_%a.out\n"));
  CHECK_THAT(script, Contains("module load cuda\n"));
  CHECK_THAT(script, Contains("'/opt/prefopt/bin/prefopt' trial '/shared/sweep dir' \"$SLURM_ARRAY_TASK_ID\" &"));
  CHECK_THAT(script, Contains("trap 'warned=1; kill -USR1 \"$trial\"") && Contains("scontrol requeue"));
  CHECK(script.find("--account") == std::string::npos);  // unset options are left to the cluster

  const std::string defaults = sweep::sbatch_script("/s", "/p", sweep::slurm_options(nullptr));
  CHECK_THAT(defaults, Contains("#SBATCH --signal=B:USR1@120\n") && Contains("#SBATCH --requeue\n"));
  CHECK(defaults.find("--gres") == std::string::npos);
  CHECK(defaults.find("--partition") == std::string::npos);

  const sweep::SweepSpec no_requeue = load(dir, "[launcher.slurm]\nrequeue = false\n");
  const std::string stays = sweep::sbatch_script("/s", "/p", sweep::slurm_options(&*no_requeue.slurm));
  CHECK_THAT(stays, Contains("#SBATCH --no-requeue\n"));
  CHECK(stays.find("scontrol requeue") == std::string::npos);  // a stopped trial waits for the next run
}

TEST_CASE("array indices are written as ranges", "[sweep][slurm-options]") {
  CHECK(sweep::array_ranges({0, 1, 2, 3}) == "0-3");
  CHECK(sweep::array_ranges({0, 2, 3, 4, 7, 9, 10}) == "0,2-4,7,9-10");
  CHECK(sweep::array_ranges({5}) == "5");
}
