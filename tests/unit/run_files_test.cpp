// A run folder's files: one rule for "finished", and readers that survive a run killed mid-write.
#include <catch2/catch.hpp>

#include <fstream>

#include "run_files.h"
#include "support.h"

using namespace prefopt;
using nlohmann::json;

TEST_CASE("a run is finished exactly when its summary exists, whatever its status says", "[run_files]") {
  const test::TempDir dir;
  CHECK_FALSE(run_files::finished(dir.path()));
  CHECK(run_files::read_status(dir.path()).is_null());
  CHECK(run_files::read_summary(dir.path()).is_null());

  run_files::write_status(dir.path(), {{"state", "finished"}, {"attempt", 2}});
  CHECK_FALSE(run_files::finished(dir.path()));  // a status records attempts; it never decides
  CHECK(run_files::read_status(dir.path())["attempt"] == 2);

  run_files::write_summary(dir.path(), {{"final", {{"gold", 0.5}}}});
  CHECK(run_files::finished(dir.path()));
  CHECK(run_files::read_summary(dir.path())["final"]["gold"] == 0.5);
}

TEST_CASE("metrics rows read back in order, without the torn line of a killed run", "[run_files]") {
  const test::TempDir dir;
  CHECK(run_files::read_metrics(dir.path()).empty());
  std::ofstream(dir.path() / run_files::kMetrics) << "{\"step\": 0, \"gold\": 1.0}\n{\"step\": 10, \"gold\": 1.5}\n{\"step\": 2";
  const std::vector<json> rows = run_files::read_metrics(dir.path());
  REQUIRE(rows.size() == 2);
  CHECK(rows[0]["step"] == 0);
  CHECK(rows[1]["gold"] == 1.5);
}

TEST_CASE("a run's writer and readers agree: metrics as they come, resolved config, invocation", "[run_files]") {
  const test::TempDir dir;
  {
    run_files::MetricsWriter metrics(dir.path());
    metrics.append({{"step", 0}, {"gold", 1.0}});
    CHECK(run_files::read_metrics(dir.path()).size() == 1);  // flushed before the writer closes
    metrics.append({{"step", 5}, {"gold", 1.25}});
  }
  const std::vector<json> rows = run_files::read_metrics(dir.path());
  REQUIRE(rows.size() == 2);
  CHECK(rows[1]["gold"] == 1.25);
  CHECK_THROWS_WITH(run_files::MetricsWriter(dir.path() / "missing"), Catch::Contains("cannot write"));

  CHECK_FALSE(run_files::read_resolved(dir.path()));
  run_files::write_resolved(dir.path(), "seed = 3\n");
  CHECK(run_files::read_resolved(dir.path()) == "seed = 3\n");

  CHECK(run_files::read_experiment_name(dir.path(), "rerun") == "rerun");
  run_files::write_invocation(dir.path(), "experiments/dpo.toml", "dpo", {"train.steps=5"});
  CHECK(run_files::read_experiment_name(dir.path(), "rerun") == "dpo");
}
