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
