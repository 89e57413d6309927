// `prefopt run` end to end at tiny sizes: run folder contents, stage reuse, determinism, --rerun.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <torch/cuda.h>

#include <cstdlib>
#include <fstream>

#include "support.h"
#include "threads.h"

using namespace prefopt;
using Catch::Contains;
using nlohmann::json;
using test::run_cli;
namespace fs = std::filesystem;

namespace {

const std::string kExperiment = (fs::path(PREFOPT_SOURCE_DIR) / "experiments/best_of_n.toml").string();
const std::vector<std::string> kTiny = {"policy.width=16",        "sft.steps=20",          "sft.corpus_size=256",
                                        "preferences.pairs=64",   "preferences.held_out=32", "reward_models.members=2",
                                        "reward_models.bootstrap=true", "eval.prompts=16"};

test::CliResult run(const fs::path& out, const fs::path& cache, std::vector<std::string> extra) {
  std::vector<std::string> args = {"run", kExperiment, "--out", out.string(), "--cache", cache.string()};
  args.insert(args.end(), kTiny.begin(), kTiny.end());
  args.insert(args.end(), extra.begin(), extra.end());
  return run_cli(args);
}

std::vector<json> metrics(const fs::path& run_dir) { return test::read_metrics(run_dir); }

}  // namespace

TEST_CASE("prefopt run goes from nothing to evaluated metrics in a fresh run folder", "[run]") {
  test::TempDir dir;
  const fs::path first = dir.path() / "first", cache = dir.path() / "cache";
  // A literal "${...}" (escaped on the command line) must stay literal through --rerun.
  const auto result = run(first, cache, {"+meta.note=$\\{not.a.key\\}", "algorithm.n=[1,4]"});
  INFO(result.err);
  REQUIRE(result.status == 0);
  CHECK_THAT(result.out, Contains("n = 4") && Contains("KL bound"));
  for (const char* file : {"resolved.toml", "overrides.json", "run.json", "run.log", "metrics.jsonl", "summary.json"})
    CHECK(fs::is_regular_file(first / file));
  const json overrides = json::parse(test::read_file(first / "overrides.json"));
  CHECK(overrides.back() == "algorithm.n=[1,4]");  // exactly as given
  CHECK_THAT(test::read_file(first / "resolved.toml"), Contains("note = \"\\\\${not.a.key}\""));
  const auto rows = metrics(first);
  REQUIRE(rows.size() == 2);
  CHECK(rows[0]["kl"] == 0.0);
  // best-of-n's KL is estimated from samples, beside the bound log n - (n - 1)/n.
  CHECK(rows[1]["algorithm"]["kl_bound"].get<double>() == Approx(std::log(4.0) - 0.75));
  CHECK(rows[1]["kl"].get<double>() > 0.0);
  CHECK(rows[1]["kl"].get<double>() <= rows[1]["algorithm"]["kl_bound"].get<double>() + 4 * rows[1]["kl_se"].get<double>());
  CHECK(rows[1]["proxy_members"].size() == 2);
  for (const char* key : {"gold", "gold_valence", "gold_coherence", "gold_length", "proxy", "win_rate", "mean_length",
                          "disagreement", "sqrt_kl"})
    CHECK(rows[1].contains(key));
  const json summary = json::parse(test::read_file(first / "summary.json"));
  CHECK(summary["stages"]["sft"]["reused"] == false);
  CHECK(summary["stages"]["reward_models"]["held_out_accuracy"].size() == 2);
  // The thread policy, logged with its reason: with OpenBLAS (Debian's libtorch) OpenBLAS gets
  // the trial's share and the intra-op pool one thread; with a wheel's MKL the intra-op pool gets
  // the share. The share is what this environment gives (ctest's OPENBLAS_NUM_THREADS=1, or every core).
  const bool openblas = summary["threads"]["blas_library"].get<std::string>().starts_with("OpenBLAS");
  const char* env_share = std::getenv("OPENBLAS_NUM_THREADS");
  const std::int64_t share = env_share != nullptr ? std::atoll(env_share) : available_cores();
  CHECK(summary["threads"]["intra_op"] == (openblas ? 1 : share));
  CHECK(summary["threads"]["blas"] == (openblas ? share : 0));
  CHECK_THAT(test::read_file(first / "run.log"), Contains("threads: OpenBLAS") && Contains("BLAS: "));

  SECTION("a trial that differs only in the algorithm reuses every stage") {
    const auto second = run(dir.path() / "second", cache, {"+meta.note=$\\{not.a.key\\}", "algorithm.n=[1,4,16]"});
    REQUIRE(second.status == 0);
    CHECK_THAT(second.err, Contains("sft: reused"));
    CHECK_THAT(second.err, Contains("preferences: reused"));
    CHECK_THAT(second.err, Contains("reward_models: reused"));
    const auto again = metrics(dir.path() / "second");
    REQUIRE(again.size() == 3);
    CHECK(again[0] == rows[0]);
    CHECK(again[1] == rows[1]);
  }
  SECTION("the same config and seed give identical metrics, computed afresh") {
    const auto fresh = run(dir.path() / "fresh", dir.path() / "other-cache", {"+meta.note=$\\{not.a.key\\}", "algorithm.n=[1,4]"});
    REQUIRE(fresh.status == 0);
    CHECK_THAT(fresh.err, Contains("sft: computed"));
    CHECK(metrics(dir.path() / "fresh") == rows);
    const auto other_seed = run(dir.path() / "seed1", cache, {"+meta.note=$\\{not.a.key\\}", "algorithm.n=[1,4]", "seed=1"});
    REQUIRE(other_seed.status == 0);
    CHECK(metrics(dir.path() / "seed1") != rows);
  }
  SECTION("a damaged stage-cache entry is computed again, logged, and changes nothing") {
    const fs::path sft_entry = cache / "sft" / summary["stages"]["sft"]["key"].get<std::string>();
    std::string flipped;
    for (const auto& item : fs::directory_iterator(sft_entry)) {
      if (item.path().filename() == "checksums.txt" || !item.is_regular_file() || fs::file_size(item.path()) < 64) continue;
      std::fstream file(item.path(), std::ios::binary | std::ios::in | std::ios::out);
      file.seekg(40);
      const char byte = static_cast<char>(file.get());
      file.seekp(40);
      file.put(static_cast<char>(byte ^ 0x10));
      flipped = item.path().filename().string();
      break;
    }
    REQUIRE_FALSE(flipped.empty());
    const auto repaired = run(dir.path() / "repaired", cache, {"+meta.note=$\\{not.a.key\\}", "algorithm.n=[1,4]"});
    INFO(repaired.err);
    REQUIRE(repaired.status == 0);
    CHECK_THAT(repaired.err, Contains("sft: the cached entry failed its checksums (" + flipped +
                                      " changed since it was written (checksum)); computed it again"));
    CHECK_THAT(repaired.err, Contains("sft: computed"));
    const json repaired_summary = json::parse(test::read_file(dir.path() / "repaired" / "summary.json"));
    CHECK(repaired_summary["stages"]["sft"]["recomputed_corrupt_entry"] == flipped + " changed since it was written (checksum)");
    CHECK(metrics(dir.path() / "repaired") == rows);
  }
  SECTION("--rerun reproduces the run from its resolved config") {
    const auto rerun = run_cli({"run", "--rerun", first.string(), "--out", (dir.path() / "rerun").string(), "--cache",
                                cache.string()});
    INFO(rerun.err);
    REQUIRE(rerun.status == 0);
    CHECK(metrics(dir.path() / "rerun") == rows);
  }
}

TEST_CASE("prefopt run refuses bad input with clear messages", "[run]") {
  test::TempDir dir;
  // A folder holding a run is never overwritten; other files in it (a launcher's log) are fine.
  fs::create_directories(dir.path() / "full");
  std::ofstream(dir.path() / "full" / "output.log") << "x";
  REQUIRE(run(dir.path() / "full", dir.path() / "cache", {"algorithm.n=[1]"}).status == 0);
  const auto full = run(dir.path() / "full", dir.path() / "cache", {"algorithm.n=[1]"});
  CHECK(full.status == 2);
  CHECK_THAT(full.err, Contains("holds a run already"));
  const auto rerun = run_cli({"run", "--rerun", (dir.path() / "nowhere").string()});
  CHECK(rerun.status == 2);
  CHECK_THAT(rerun.err, Contains("is not a run folder"));
  const auto bad_section = run(dir.path() / "bad", dir.path() / "cache", {"sft.stepz=3"});
  CHECK(bad_section.status == 2);
  CHECK_THAT(bad_section.err, Contains("Could not override 'sft.stepz'"));
  const auto bad_value = run(dir.path() / "bad2", dir.path() / "cache", {"sft.steps=-3"});
  CHECK(bad_value.status == 2);
  CHECK_THAT(bad_value.err, Contains("sft.steps: -3 is out of range [0, inf)"));
  const auto bad_device = run(dir.path() / "bad3", dir.path() / "cache", {"runtime.device=gpu"});
  CHECK(bad_device.status == 2);
  CHECK_THAT(bad_device.err, Contains("override 'runtime.device=gpu'") && Contains("runtime.device = \"gpu\"") &&
                                 Contains("did you mean 'cpu'"));
  CHECK_FALSE(fs::exists(dir.path() / "bad3"));  // refused before the run folder is made
  const auto bad_dtype = run(dir.path() / "bad4", dir.path() / "cache", {"runtime.dtype=float16"});
  CHECK(bad_dtype.status == 2);
  CHECK_THAT(bad_dtype.err, Contains("runtime.dtype") && Contains("one of: float32, bfloat16"));
  if (torch::cuda::is_available()) return;  // the rest is about a machine without CUDA
  const auto no_cuda = run(dir.path() / "bad5", dir.path() / "cache", {"runtime.device=cuda"});
  CHECK(no_cuda.status == 2);
  CHECK_THAT(no_cuda.err, Contains("runtime.device = \"cuda\": this process sees no CUDA device") &&
                              Contains("CUDA_VISIBLE_DEVICES"));
  CHECK_FALSE(fs::exists(dir.path() / "bad5"));
  // A sweep is planned where it may not run (a Slurm login node): only the form is checked there.
  const auto planned = run_cli({"run", "-m", kExperiment, "runtime.device=cuda:1,cuda:x", "--dry-run"});
  CHECK(planned.status == 2);
  CHECK_THAT(planned.err, Contains("runtime.device = \"cuda:x\": the device index must be a number"));
  CHECK_THAT(planned.err, !Contains("cuda:1"));
}

// The synthetic task can be overoptimized (Gao et al.): best-of-n against one reward model
// trained on 100 labels with 25% flips raises the proxy reward with n, while the gold reward
// rises, peaks and falls. About 30 s: the one slow test, labelled "integration".
TEST_CASE("best-of-n overoptimizes a weak proxy: proxy keeps rising while gold peaks and falls", "[run][integration]") {
  test::TempDir dir;
  const auto result = run_cli({"run", (fs::path(PREFOPT_SOURCE_DIR) / "experiments/overoptimization.toml").string(),
                               "--out", (dir.path() / "run").string(), "--cache", (dir.path() / "cache").string(),
                               "algorithm.n=[1,4,256]", "algorithm.kl_pool=16"});  // the KL is not under test
  INFO(result.err);
  REQUIRE(result.status == 0);
  const auto rows = metrics(dir.path() / "run");
  REQUIRE(rows.size() == 3);
  const auto gold = [&](std::size_t i) { return rows[i]["gold"].get<double>(); };
  const auto proxy = [&](std::size_t i) { return rows[i]["proxy"].get<double>(); };
  INFO("gold " << gold(0) << " " << gold(1) << " " << gold(2) << ", proxy " << proxy(0) << " " << proxy(1) << " "
               << proxy(2));
  CHECK(proxy(0) < proxy(1));
  CHECK(proxy(1) < proxy(2));
  // Optimizing the proxy first helps a little (+0.26 with Debian's libtorch 1.13, +0.11 with the
  // 2.11 wheel's numerics: another reward model from the same seed)...
  CHECK(gold(1) > gold(0));
  CHECK(gold(1) > gold(2) + 0.2);  // ...then hurts: the gold reward falls while the proxy rises
}
