// A full disk (a small tmpfs, mounted as root) under each file prefopt writes: the stage cache,
// the run folder (resolved config, metrics, checkpoints, weights) and a sweep's results index and
// report, an export. Each ends the command with exit status 74 naming the file and "No space left on device",
// leaves nothing half-written that a later command would trust, and once there is room the same
// command (or --continue) finishes with the metrics of a run that never hit the wall.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <set>

#include "models/fixtures.h"
#include "support.h"

using namespace prefopt;
using Catch::Contains;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

constexpr int kStorageExit = 74;

// The tiny DPO pipeline with a checkpoint at every evaluation (steps 2 and 4).
struct DiskFullFixture {
  test::TempDir dir;
  fs::path experiment = dir.path() / "exp.toml";
  fs::path cache = dir.path() / "cache";

  DiskFullFixture() { std::ofstream(experiment) << test::tiny_experiment("dpo", 6, 2); }

  test::CliResult run(const fs::path& out, const fs::path& cache_dir, bool resume = false) const {
    std::vector<std::string> args = {"run", experiment.string(), "--out", out.string(), "--cache", cache_dir.string()};
    if (resume) args.emplace_back("--continue");
    return test::run_cli(args);
  }
};

// Files a failed write left behind: temporaries and partial checkpoints.
std::vector<std::string> leftovers(const fs::path& folder) {
  std::vector<std::string> found;
  for (const auto& entry : fs::recursive_directory_iterator(folder)) {
    const std::string name = entry.path().filename().string();
    if (name.ends_with(".tmp") || name.ends_with(".partial") || name.find(".tmp-") != std::string::npos)
      found.push_back(entry.path().string());
  }
  return found;
}

// Remounting a tmpfs with a larger size gives the room back without touching its files.
void grow(const fs::path& mount_point) {
  REQUIRE(std::system(("mount -o remount,size=4m " + mount_point.string()).c_str()) == 0);
}

}  // namespace

TEST_CASE("a full disk under the run folder ends the run with exit 74, and --continue ends as if it never had",
          "[faults][e2e]") {
  DiskFullFixture f;
  const auto reference = f.run(f.dir.path() / "reference", f.cache);
  REQUIRE(reference.status == 0);
  const std::string expected = test::read_file(f.dir.path() / "reference" / "metrics.jsonl");

  // Sizes that fill the disk at different writes: the run's first files, metrics.jsonl, the first
  // checkpoint, the second one (whose predecessor must survive to be continued from).
  const std::vector<std::string> writes = {"run.json", "resolved.toml", "metrics.jsonl", "checkpoint/state-2-",
                                           "checkpoint/state-4-"};
  std::set<std::string> failed_writes;
  for (const std::string size : {"8k", "16k", "64k", "240k"}) {
    const fs::path mount_point = f.dir.path() / ("disk-" + size);
    const auto disk = test::Tmpfs::mount(mount_point, "size=" + size);
    if (!disk) {
      test::report_skipped("cannot mount a tmpfs here (only root can)");
      return;
    }
    const fs::path out = mount_point / "run";
    const auto full = f.run(out, f.cache);
    INFO("a " << size << " disk: " << full.err);
    CHECK(full.status == kStorageExit);
    CHECK_THAT(full.err, Contains("No space left on device"));
    const auto failed = std::find_if(writes.begin(), writes.end(), [&](const std::string& write) {
      return full.err.find("cannot write " + (out / write).string()) != std::string::npos;
    });
    REQUIRE(failed != writes.end());
    failed_writes.insert(*failed);
    CHECK_FALSE(fs::exists(out / "summary.json"));
    CHECK(leftovers(mount_point).empty());

    grow(mount_point);
    const auto resumed = f.run(out, f.cache, /*resume=*/true);
    INFO(resumed.err);
    REQUIRE(resumed.status == 0);
    if (*failed == "checkpoint/state-4-") CHECK_THAT(resumed.err, Contains("resumed from the checkpoint at step 2"));
    CHECK(test::read_file(out / "metrics.jsonl") == expected);
  }
  CHECK(failed_writes.size() >= 3);
}

TEST_CASE("a full disk under the stage cache ends the run with exit 74 and keeps no partial entry", "[faults][e2e]") {
  DiskFullFixture f;
  const auto reference = f.run(f.dir.path() / "reference", f.cache);
  REQUIRE(reference.status == 0);
  const fs::path cache = f.dir.path() / "small-cache";
  const auto disk = test::Tmpfs::mount(cache, "size=32k");  // smaller than the SFT stage's policy
  if (!disk) {
    test::report_skipped("cannot mount a tmpfs here (only root can)");
    return;
  }
  const auto full = f.run(f.dir.path() / "run", cache);
  INFO(full.err);
  CHECK(full.status == kStorageExit);
  CHECK_THAT(full.err, Contains("cannot write " + (cache / "sft").string()) && Contains("No space left on device"));
  CHECK(leftovers(cache).empty());
  for (const auto& entry : fs::directory_iterator(cache / "sft")) CHECK(entry.path().extension() == ".lock");

  grow(cache);
  const auto again = f.run(f.dir.path() / "run", cache, /*resume=*/true);
  INFO(again.err);
  REQUIRE(again.status == 0);
  CHECK_THAT(again.err, Contains("sft: training"));
  CHECK(test::read_file(f.dir.path() / "run" / "metrics.jsonl") ==
        test::read_file(f.dir.path() / "reference" / "metrics.jsonl"));
}

TEST_CASE("a full disk under a sweep's results index or report exits 74, and the next sweep writes them whole",
          "[faults][e2e]") {
  DiskFullFixture f;
  const fs::path disk_dir = f.dir.path() / "disk";
  const auto disk = test::Tmpfs::mount(disk_dir, "size=4m");
  if (!disk) {
    test::report_skipped("cannot mount a tmpfs here (only root can)");
    return;
  }
  const fs::path sweep_file = f.dir.path() / "s.toml", out = disk_dir / "sweep";
  std::ofstream(sweep_file) << "experiment = \"exp.toml\"\nseeds = [0, 1]\n";
  const auto sweep = [&] { return test::run_cli(test::sweep_args(sweep_file, out, f.cache)); };
  const auto results = [&] { return test::run_cli({"results", out.string(), "--format", "json"}); };
  REQUIRE(sweep().status == 0);
  const std::string table = results().out;

  // Fill the disk: a report cannot be written, nor the index once it is lost.
  {
    std::ofstream filler(disk_dir / "filler", std::ios::binary);
    const std::string block(4096, '\0');
    while (filler.write(block.data(), static_cast<std::streamsize>(block.size())) && filler.flush()) {
    }
  }
  const auto report = test::run_cli({"report", out.string(), "--out", (disk_dir / "report.html").string()});
  INFO(report.err);
  CHECK(report.status == kStorageExit);
  CHECK_THAT(report.err, Contains("cannot write " + (disk_dir / "report.html").string()) &&
                             Contains("No space left on device"));
  fs::remove(out / "results.sqlite");
  fs::remove(out / "report.html");
  const auto full = sweep();
  INFO(full.err);
  CHECK(full.status == kStorageExit);
  CHECK_THAT(full.err, Contains("cannot write " + (out / "results.sqlite").string()) && Contains("disk is full"));
  CHECK(leftovers(disk_dir).empty());
  CHECK_FALSE(fs::exists(disk_dir / "report.html"));

  fs::remove(disk_dir / "filler");
  const auto again = sweep();
  INFO(again.err);
  CHECK(again.status == 0);
  CHECK(fs::exists(out / "report.html"));
  CHECK(results().out == table);
}

TEST_CASE("a full disk under an export exits 74 and leaves no half folder", "[faults][models]") {
  test::TempDir dir;
  json llama = test::llama_config();
  llama["vocab_size"] = 40;
  test::make_checkpoint(dir.path() / "llama", llama);
  std::string experiment = test::tiny_experiment("dpo", 2, 1);
  experiment.insert(experiment.find("[policy]\n") + 9, "checkpoint = \"llama\"\n");
  std::ofstream(dir.path() / "exp.toml") << experiment;
  const fs::path run_dir = dir.path() / "run";
  REQUIRE(test::run_cli({"run", (dir.path() / "exp.toml").string(), "--out", run_dir.string(), "--cache",
                         (dir.path() / "cache").string()})
              .status == 0);
  const fs::path disk_dir = dir.path() / "disk";
  const auto disk = test::Tmpfs::mount(disk_dir, "size=64k");  // less than the policy's weights
  if (!disk) {
    test::report_skipped("cannot mount a tmpfs here (only root can)");
    return;
  }
  const fs::path to = disk_dir / "exported";
  const auto full = test::run_cli({"export", run_dir.string(), "--to", to.string()});
  INFO(full.err);
  CHECK(full.status == kStorageExit);
  // The reason is the copy's: sendfile(2) on a full tmpfs says "Input/output error".
  CHECK_THAT(full.err, Contains("cannot write " + (to.string() + ".partial/")));
  CHECK(fs::is_empty(disk_dir));

  grow(disk_dir);
  const auto again = test::run_cli({"export", run_dir.string(), "--to", to.string()});
  INFO(again.err);
  CHECK(again.status == 0);
  CHECK(fs::exists(to / "model.safetensors"));
  CHECK(fs::exists(to / "reward_model-0" / "model.safetensors"));
}
