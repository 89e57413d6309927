// `prefopt sweep` with [search], end to end on a tiny DPO and ORPO pipeline: rounds of proposals
// recorded in sweep.json, trials pruned exactly when their rule says, kill -9 then a re-run ending
// with the uninterrupted search's trials and metrics, a changed search refused and a larger budget
// searching on.
#include <catch2/catch.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <csignal>
#include <fstream>
#include <thread>

#include "support.h"
#include "sweep/search.h"

using namespace prefopt;
using Catch::Contains;
using nlohmann::json;
using test::run_cli;
namespace fs = std::filesystem;

namespace {

std::string sweep_text(int budget, const std::string& learning_rates) {
  return fmt::format(R"toml(experiment = "exp.toml"
seeds = [0]
[grid]
algorithm = "dpo,orpo"
[search]
sampler = "tpe"
budget = {}
startup = 2
[search.space]
"algorithm.learning_rate" = "tag(log, interval({}))"
[search.pruner]
kind = "asha"
min_step = 3
reduction = 2
)toml",
                     budget, learning_rates);
}

struct SearchFixture {
  test::TempDir dir;
  fs::path cache = dir.path() / "cache";
  fs::path sweep = dir.path() / "search.toml";

  SearchFixture() {
    std::ofstream(dir.path() / "exp.toml") << test::tiny_experiment("dpo", 12, 3);  // DPO or ORPO steps, evaluated every 3
    write_sweep(4, "1e-5, 1e-1");
  }
  void write_sweep(int budget, const std::string& learning_rates) const {
    std::ofstream(sweep) << sweep_text(budget, learning_rates);
  }
  std::vector<std::string> args(const fs::path& out) const { return test::sweep_args(sweep, out, cache, {"--jobs", "2"}); }
};

json manifest(const fs::path& out) { return json::parse(test::read_file(out / "sweep.json")); }

}  // namespace

TEST_CASE("a search runs in rounds, prunes trailing trials by their rule, and resumes after kill -9", "[sweep][search][e2e]") {
  SearchFixture f;
  const fs::path clean = f.dir.path() / "clean";
  const auto first = run_cli(f.args(clean));
  INFO(first.err);
  REQUIRE(first.status == 0);
  CHECK_THAT(first.out, Contains("Search (tpe sampler)") && Contains("algorithm=dpo") && Contains("algorithm=orpo"));
  const json planned = manifest(clean);
  REQUIRE(planned["trials"].size() == 8);  // 2 studies × 4 configurations × 1 seed
  std::int64_t pruned = 0;
  for (const json& trial : planned["trials"]) {
    const json& search = trial["search"];
    CHECK(search["round"] == search["config"]);  // batch 1: one configuration per study per round
    const fs::path dir = clean / trial["name"].get<std::string>();
    const json summary = json::parse(test::read_file(dir / "summary.json"));
    std::vector<json> rows;
    std::istringstream lines(test::read_file(dir / "metrics.jsonl"));
    for (std::string line; std::getline(lines, line);) rows.push_back(json::parse(line));
    // The trial stopped exactly when its rule, applied to what it evaluated, says so.
    const sweep::PruneRule rule = sweep::PruneRule::from_json(search["prune"]);
    if (search["round"] == 0) CHECK(rule.rungs.empty());  // nothing to compare with yet
    const auto reason = sweep::prune_reason(rule, rows);
    CHECK(summary.contains("pruned") == reason.has_value());
    if (reason) {
      ++pruned;
      CHECK(rows.size() < 5);  // steps 0, 3, 6, 9 and 12 uninterrupted
      CHECK(summary["pruned"] == *reason);
      CHECK(json::parse(test::read_file(dir / "status.json"))["state"] == "pruned");
    } else {
      CHECK(rows.size() == 5);
    }
  }
  CHECK(pruned > 0);
  CHECK_THAT(test::read_file(clean / "report.html"), Contains("<h2>Search</h2>") && Contains("Tuned frontiers"));
  CHECK_THAT(run_cli({"status", clean.string()}).out, Contains("pruned"));

  // kill -9 once round 1 is recorded, then the same command: the uninterrupted search's trials.
  const fs::path out = f.dir.path() / "out";
  const int pid = test::spawn_cli(f.args(out), f.dir.path() / "killed.log");
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  const auto round_one = [&] {
    if (!fs::exists(out / "sweep.json")) return false;
    const json m = json::parse(test::read_file(out / "sweep.json"), nullptr, false);
    return !m.is_discarded() && m["trials"].size() > 2;
  };
  while (!round_one() && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  ::kill(pid, SIGKILL);
  CHECK(test::wait_cli(pid) == 128 + SIGKILL);
  const auto resumed = run_cli(f.args(out));
  INFO(resumed.err);
  REQUIRE(resumed.status == 0);
  const json again = manifest(out);
  REQUIRE(again["trials"].size() == planned["trials"].size());
  for (std::size_t i = 0; i < again["trials"].size(); ++i) {
    const std::string name = planned["trials"][i]["name"];
    CHECK(again["trials"][i]["name"] == name);
    CHECK(again["trials"][i]["search"] == planned["trials"][i]["search"]);
    CHECK(test::read_file(out / name / "metrics.jsonl") == test::read_file(clean / name / "metrics.jsonl"));
  }

  // Another space is refused; a larger budget searches on from the recorded history.
  f.write_sweep(4, "1e-4, 1e-1");
  const auto changed = run_cli(f.args(out));
  CHECK(changed.status == 2);
  CHECK_THAT(changed.err, Contains("started with another search.space") && Contains("only search.budget may change"));
  f.write_sweep(5, "1e-5, 1e-1");
  std::vector<std::string> with_extend = f.args(out);
  with_extend.emplace_back("--extend");
  CHECK_THAT(run_cli(with_extend).err, Contains("a search grows by its budget"));
  const auto extended = run_cli(f.args(out));
  INFO(extended.err);
  REQUIRE(extended.status == 0);
  CHECK_THAT(extended.err, Contains("search: round 4: 2 new trials"));
  CHECK(manifest(out)["trials"].size() == 10);

  // A misspelt parameter stops the search before its folder is made.
  std::string misspelt_text = sweep_text(4, "1e-5, 1e-1");
  misspelt_text.replace(misspelt_text.find("learning_rate"), 13, "learnin_rate");
  std::ofstream(f.sweep) << misspelt_text;
  const auto misspelt = run_cli(f.args(f.dir.path() / "misspelt"));
  CHECK(misspelt.status == 2);
  CHECK_THAT(misspelt.err, Contains("Did you mean 'algorithm.learning_rate'?"));
  CHECK_FALSE(fs::exists(f.dir.path() / "misspelt"));

  // The rule `prefopt trial` hands its run, malformed: refused before the run folder is made.
  for (const char* rule : {"{not json", R"({"rungs": 1})"}) {
    const auto refused = run_cli({"run", (f.dir.path() / "exp.toml").string(), "--out", (f.dir.path() / "bad-rule").string(),
                                  "--prune", rule});
    CHECK(refused.status == 2);
    CHECK_THAT(refused.err, Contains("prune rule"));
    CHECK_FALSE(fs::exists(f.dir.path() / "bad-rule"));
  }
}

TEST_CASE("a search goes on past diverged trials: results it ranks last, not failures to retry", "[sweep][search][e2e]") {
  SearchFixture f;
  std::ofstream(f.sweep) << "experiment = \"exp.toml\"\n[search]\nbudget = 3\nstartup = 1\n[search.space]\n"
                            "\"algorithm.learning_rate\" = \"tag(log, interval(1e3, 1e4))\"\n";
  const fs::path out = f.dir.path() / "out";
  const auto searched = run_cli(f.args(out));
  INFO(searched.err);
  CHECK(searched.status == 0);
  CHECK_THAT(searched.err, Contains("search: round 2: 1 new trial") && Contains("every study has tried its 3 configurations"));
  CHECK_THAT(run_cli({"status", out.string()}).out, Contains("3 trials: 3 diverged"));
  CHECK_THAT(searched.out, Contains("none complete yet"));
}
