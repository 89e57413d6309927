// Sweep expansion (grid, random, seeds, per-option grids), trial names, sweep-file errors, and the
// aggregation of results against hand-computed means and intervals.
#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <cmath>
#include <fstream>
#include <set>

#include "support.h"
#include "sweep/report.h"
#include "sweep/results.h"
#include "sweep/spec.h"

using namespace prefopt;
using Catch::Contains;
namespace fs = std::filesystem;

namespace {

const fs::path kExperiment = fs::path(PREFOPT_SOURCE_DIR) / "experiments/comparison.toml";

std::vector<std::vector<std::string>> swept(const std::vector<sweep::TrialSpec>& trials) {
  std::vector<std::vector<std::string>> out;
  for (const auto& t : trials) out.push_back(t.swept);
  return out;
}

fs::path write(const fs::path& file, const std::string& text) {
  std::ofstream(file) << text;
  return file;
}

}  // namespace

TEST_CASE("a grid with seeds expands first key slowest, seeds fastest", "[sweep]") {
  sweep::SweepSpec spec;
  spec.experiment = kExperiment;
  spec.grid = {{"algorithm", "ppo,dpo"}, {"annotator.rate", "0.0,0.25"}};
  spec.seeds = {0, 1};
  const auto trials = sweep::expand(spec, test::experiment_composer(kExperiment));
  REQUIRE(trials.size() == 8);
  CHECK(trials[0].swept == std::vector<std::string>{"algorithm=ppo", "annotator.rate=0.0", "seed=0"});
  CHECK(trials[1].swept == std::vector<std::string>{"algorithm=ppo", "annotator.rate=0.0", "seed=1"});
  CHECK(trials[2].swept == std::vector<std::string>{"algorithm=ppo", "annotator.rate=0.25", "seed=0"});
  CHECK(trials[7].swept == std::vector<std::string>{"algorithm=dpo", "annotator.rate=0.25", "seed=1"});
  CHECK(trials[7].overrides == std::vector<std::string>{"algorithm=dpo", "annotator.rate=0.25", "seed=1"});
}

TEST_CASE("per-option grids apply only to trials that compose that option", "[sweep]") {
  sweep::SweepSpec spec;
  spec.experiment = kExperiment;
  spec.grid = {{"algorithm", "ppo,dpo,orpo"}};
  spec.per_option = {{{"algorithm", "dpo"}, {{"algorithm.beta", "0.05,0.1,0.5"}}},
                     {{"algorithm", "ppo"}, {{"algorithm.kl_coef", "0.02,0.05"}}}};
  const auto trials = sweep::expand(spec, test::experiment_composer(kExperiment));
  CHECK(swept(trials) == std::vector<std::vector<std::string>>{{"algorithm=ppo", "algorithm.kl_coef=0.02"},
                                                               {"algorithm=ppo", "algorithm.kl_coef=0.05"},
                                                               {"algorithm=dpo", "algorithm.beta=0.05"},
                                                               {"algorithm=dpo", "algorithm.beta=0.1"},
                                                               {"algorithm=dpo", "algorithm.beta=0.5"},
                                                               {"algorithm=orpo"}});
  // Without a grid on the group, the experiment's default option (ppo) decides.
  spec.grid.clear();
  CHECK(sweep::expand(spec, test::experiment_composer(kExperiment)).size() == 2);
}

TEST_CASE("random draws are reproducible from their seed and stay in range", "[sweep]") {
  sweep::SweepSpec spec;
  spec.experiment = kExperiment;
  spec.random_count = 20;
  spec.random_seed = 7;
  spec.random = {{"algorithm.learning_rate", "tag(log, interval(1e-4, 1e-2))"}, {"algorithm.epochs", "range(1,5)"}};
  const config::Composer composer(kExperiment, {});
  const auto first = sweep::expand(spec, composer), again = sweep::expand(spec, composer);
  REQUIRE(first.size() == 20);
  CHECK(swept(first) == swept(again));
  std::set<std::string> epochs;
  for (const auto& t : first) {
    const double rate = std::stod(t.swept[0].substr(t.swept[0].find('=') + 1));
    CHECK(rate >= 1e-4);
    CHECK(rate < 1e-2);
    epochs.insert(t.swept[1]);
  }
  CHECK(epochs.size() >= 3);  // 20 draws over 4 values
  spec.random_seed = 8;
  CHECK(swept(sweep::expand(spec, composer)) != swept(first));
}

TEST_CASE("trial names are readable, stable and distinct", "[sweep]") {
  const std::string name = sweep::trial_name({"algorithm=dpo", "algorithm.beta=0.1"}, {"algorithm=dpo", "algorithm.beta=0.1"});
  CHECK(name.starts_with("algorithm=dpo,algorithm.beta=0.1-"));
  CHECK(name == sweep::trial_name({"algorithm=dpo", "algorithm.beta=0.1"}, {"algorithm=dpo", "algorithm.beta=0.1"}));
  CHECK(name.size() == std::string("algorithm=dpo,algorithm.beta=0.1-").size() + 8);
  // Unsafe characters never reach the file system; the hash keeps such names apart.
  const std::string odd = sweep::trial_name({"note='a/b c'"}, {"note='a/b c'"});
  CHECK(odd.find('/') == std::string::npos);
  CHECK(odd != sweep::trial_name({"note='a_b c'"}, {"note='a_b c'"}));
  // No value leads a trial's folder out of the sweep's: every name is one plain path component.
  for (const std::string hostile : {"note=..", "note=../../etc", "note=/etc/passwd", "note='..\\x'", "note=.", "=..",
                                    "note=~root", "note=$(rm -rf x)", "note=a\nb"}) {
    const std::string unsafe = sweep::trial_name({hostile}, {hostile});
    INFO(hostile << " -> " << unsafe);
    CHECK(fs::path(unsafe).filename() == fs::path(unsafe));
    CHECK(unsafe.find('/') == std::string::npos);
    CHECK(unsafe.find('\\') == std::string::npos);
    CHECK(unsafe.find('\n') == std::string::npos);
    CHECK(unsafe != "..");
    CHECK(unsafe != ".");
    CHECK(unsafe.front() != '~');
  }
  // Seeds differing in one character get unrelated hashes.
  const std::string a = sweep::trial_name({"seed=1"}, {"seed=1"}), b = sweep::trial_name({"seed=2"}, {"seed=2"});
  CHECK(a.substr(a.size() - 8, 4) != b.substr(b.size() - 8, 4));
}

TEST_CASE("sweep files: keys and values are checked with file and line", "[sweep]") {
  test::TempDir dir;
  const std::string experiment = "experiment = \"" + kExperiment.string() + "\"\n";
  const auto error_of = [&](const std::string& text) {
    try {
      sweep::load_sweep_file(write(dir.path() / "s.toml", text));
    } catch (const ConfigError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  CHECK_THAT(error_of(experiment + "seed = [1]\n"), Contains("s.toml:2") && Contains("did you mean 'seeds'?"));
  CHECK_THAT(error_of(experiment + "[grid]\nalgorithm = [\"ppo\"]\n"),
             Contains("s.toml:3") && Contains("grid.algorithm must be a string in command-line sweep syntax"));
  CHECK_THAT(error_of("seeds = [1]\n"), Contains("a sweep file names its experiment"));
  CHECK_THAT(error_of(experiment + "[random]\ncount = 3\n"), Contains("random needs [random.params]"));
  const sweep::SweepSpec spec = sweep::load_sweep_file(fs::path(PREFOPT_SOURCE_DIR) / "sweeps/comparison.toml");
  CHECK(spec.experiment == kExperiment.lexically_normal());
  CHECK(sweep::expand(spec, config::Composer(spec.experiment, {})).size() == 27);
  // A bad sweep value names its place.
  sweep::SweepSpec bad;
  bad.experiment = kExperiment;
  bad.grid = {{"algorithm", "ppo,,dpo"}};
  CHECK_THROWS_WITH(sweep::expand(bad, test::experiment_composer(kExperiment)), Contains("grid.algorithm"));
  bad.grid = {{"algorithm", "ppo,ppo"}};
  CHECK_THROWS_WITH(sweep::expand(bad, test::experiment_composer(kExperiment)), Contains("twice"));
}

TEST_CASE("summaries: mean, sample sd and the t interval by hand", "[sweep]") {
  const sweep::Statistic s = sweep::summarize({1, 2, 3, 4});
  CHECK(s.n == 4);
  CHECK(s.mean == Approx(2.5));
  CHECK(s.sd == Approx(std::sqrt(5.0 / 3.0)));  // Σ(x − 2.5)² = 5, over n − 1 = 3
  CHECK(s.ci95 == Approx(3.182446305 * std::sqrt(5.0 / 3.0) / 2).epsilon(1e-8));  // t(0.975, 3)
  const sweep::Statistic two = sweep::summarize({-1.0, 1.0});
  CHECK(two.ci95 == Approx(12.70620474 * std::sqrt(2.0) / std::sqrt(2.0)).epsilon(1e-8));  // t(0.975, 1)
  CHECK(std::isnan(sweep::summarize({3.0}).ci95));
  CHECK(sweep::summarize({}).n == 0);
}

TEST_CASE("aggregation groups by the swept keys but seed, and counts trials not finished", "[sweep]") {
  const auto trial = [](std::string algorithm, std::string seed, std::string state, double gold) {
    sweep::TrialResult r;
    r.name = algorithm + seed;
    r.state = state;
    r.algorithm = algorithm;
    r.params = {{"algorithm", algorithm}, {"seed", seed}};
    for (const std::string& metric : sweep::final_metrics()) r.finals[metric] = gold;
    return r;
  };
  const std::vector<sweep::TrialResult> results = {trial("dpo", "0", "finished", 1.0), trial("dpo", "1", "finished", 3.0),
                                                   trial("ppo", "0", "finished", 2.0), trial("ppo", "1", "failed", 0.0)};
  const auto groups = sweep::aggregate(results, {});
  REQUIRE(groups.size() == 2);
  CHECK(groups[0].key == std::vector<std::pair<std::string, std::string>>{{"algorithm", "dpo"}});
  CHECK(groups[0].stats.at("final_gold").mean == 2.0);
  CHECK(groups[0].stats.at("final_gold").n == 2);
  CHECK(groups[1].stats.at("final_gold").n == 1);
  CHECK(groups[1].failed == 1);
  CHECK(sweep::aggregate(results, {"seed"}).size() == 2);
}

TEST_CASE("the report's final-gold plot has one level per combination of the swept keys", "[sweep][report]") {
  std::vector<sweep::TrialResult> results;
  for (const char* rate : {"0.0", "0.25"})
    for (const char* width : {"32", "64"})
      for (const char* seed : {"0", "1"})
        results.push_back({.name = fmt::format("r{}w{}s{}", rate, width, seed),
                           .state = "finished",
                           .algorithm = "dpo",
                           .params = {{"annotator.rate", rate}, {"policy.width", width}, {"seed", seed}},
                           .finals = {{"final_gold", 1.0}},
                           .curve = {}});
  const std::string html = sweep::render_report("t", results);
  CHECK_THAT(html, Contains("Final gold reward by annotator.rate, policy.width"));
  for (const char* level : {"annotator.rate=0.0, policy.width=32", "annotator.rate=0.25, policy.width=64"})
    CHECK_THAT(html, Contains(level));
  CHECK(html.find("seed=") == std::string::npos);  // seeds are what the intervals are over
  // One swept key: its values are the levels.
  for (auto& r : results) r.params.erase(r.params.begin() + 1);
  CHECK_THAT(sweep::render_report("t", results), Contains("Final gold reward by annotator.rate (") && Contains(">0.25<"));
}

TEST_CASE("the report escapes every string a user wrote: hostile values render as text", "[sweep][report]") {
  const std::string hostile = "<script>alert(1)</script>";
  std::vector<sweep::TrialResult> results;
  for (const char* seed : {"0", "1"})
    results.push_back({.name = std::string("t") + seed,
                       .state = "finished",
                       .algorithm = "<img src=x onerror=alert(2)>",
                       .params = {{"task.prompt", hostile}, {"search\"key", "\"><b>x</b>"}, {"seed", seed}},
                       .finals = {{"final_gold", 1.0}, {"final_kl", 0.5}},
                       .curve = {{0, {{"gold", 0.5}, {"sqrt_kl", 0.0}, {"proxy", 0.1}}}, {10, {{"gold", 1.0}, {"sqrt_kl", 0.7}, {"proxy", 0.3}}}}});
  sweep::SearchResults search{.sampler = "<tpe>", .objective = "final_gold", .keys = {hostile}, .log_keys = {}, .studies = {}};
  sweep::SearchedConfiguration configuration{.index = 0, .round = 0, .params = {{hostile, "1"}}, .trials = {"t0", "t1"},
                                             .values = {1.0, 1.0}, .pruned = 0, .unfinished = 0,
                                             .objective = sweep::summarize({1.0, 1.0}), .final_gold = 1.0, .final_kl = 0.5};
  search.studies.push_back({.label = hostile, .configurations = {configuration}, .best = 0});
  const std::string html = sweep::render_report(hostile, results, &search);
  CHECK(html.find("<script") == std::string::npos);
  CHECK(html.find("<img") == std::string::npos);
  CHECK(html.find("<b>") == std::string::npos);
  CHECK(html.find("<tpe>") == std::string::npos);
  CHECK_THAT(html, Contains("&lt;script&gt;alert(1)&lt;/script&gt;") && Contains("&lt;img src=x onerror=alert(2)&gt;"));
}
