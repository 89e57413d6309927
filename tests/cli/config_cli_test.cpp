// `prefopt config` as a researcher runs it.
#include <catch2/catch.hpp>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "config/node.h"
#include "support.h"

using namespace prefopt;
using Catch::Contains;
using test::run_cli;
namespace fs = std::filesystem;

namespace {
const std::string kExperiment = (fs::path(PREFOPT_TEST_SOURCE_DIR) / "config/fixtures/basic/experiment.toml").string();
}

TEST_CASE("prefopt config prints the composed and resolved config as TOML", "[cli][config]") {
  const auto result = run_cli({"config", kExperiment, "method.beta=0.3", "+tag=${method.loss}_${seed}"});
  REQUIRE(result.status == 0);
  CHECK(result.err.empty());
  const config::Node parsed = config::parse_toml(result.out, "stdout");  // clean TOML
  CHECK(config::find(parsed, "method.beta")->value == config::Node::Value(0.3));
  CHECK(config::find(parsed, "tag")->value == config::Node::Value(std::string("sigmoid_7")));
  CHECK(config::find(parsed, "ensemble.plugin")->value == config::Node::Value(std::string("mean")));
}

TEST_CASE("prefopt config -m prints one trial table per trial in sweep order", "[cli][config]") {
  const auto result = run_cli({"config", kExperiment, "-m", "seed=1,2", "method=dpo,orpo"});
  REQUIRE(result.status == 0);
  const config::Node parsed = config::parse_toml(result.out, "stdout");
  const config::Node* trials = parsed.child("trial");
  REQUIRE(trials != nullptr);
  REQUIRE(trials->array().size() == 4);
  const config::Node& third = trials->array()[2];
  CHECK(config::find(third, "overrides")->value ==
        config::Node::Value(config::Array{{std::string("seed=2"), ""}, {std::string("method=dpo"), ""}}));
  CHECK(config::find(third, "config.seed")->value == config::Node::Value(std::int64_t{2}));
  CHECK(config::find(trials->array()[1], "config.method.lambda") != nullptr);
}

TEST_CASE("prefopt config with --info shows the search path and the defaults tree", "[cli][config]") {
  const auto result = run_cli({"config", kExperiment, "--info", "method/optimizer=sgd"});
  REQUIRE(result.status == 0);
  CHECK_THAT(result.out, Contains("Config search path:\n  "));
  CHECK_THAT(result.out, Contains("(experiment folder)"));
  CHECK_THAT(result.out, Contains("method: dpo ("));
  CHECK_THAT(result.out, Contains("method/optimizer: sgd ("));
  CHECK_THAT(result.out, Contains("sgd.toml) @ method.optimizer"));
}

TEST_CASE("prefopt config reports mistakes on stderr with exit 2 or 3 for an unknown plugin", "[cli][config]") {
  auto bad = run_cli({"config", kExperiment, "method.betta=1", "x=[1,"});
  CHECK(bad.status == 2);
  CHECK(bad.out.empty());
  CHECK_THAT(bad.err, Contains("invalid override 'x=[1,'"));
  CHECK(run_cli({"config", kExperiment, "seed=1,2"}).status == 2);  // a sweep without -m
  CHECK(run_cli({"config", "/no/such.toml"}).status == 2);
  CHECK(run_cli({"config"}).status == 2);
  auto typo = run_cli({"config", kExperiment, "method.betta=1"});
  CHECK(typo.status == 2);
  CHECK_THAT(typo.err, Contains("Could not override 'method.betta'. To append to your config use +method.betta=1. Did you mean 'method.beta'?"));
  auto plugin = run_cli({"config", kExperiment, "ensemble.plugin=meen", "++ensemble.lambda=1"});
  CHECK(plugin.status == 3);
  CHECK_THAT(plugin.err, Contains("override 'ensemble.plugin=meen': ensemble.plugin: unknown ensemble 'meen' (did you mean 'mean'?)"));
  auto param = run_cli({"config", kExperiment, "ensemble=worst", "+ensemble.lambda=1"});
  CHECK(param.status == 2);
  CHECK_THAT(param.err, Contains("override '+ensemble.lambda=1': ensemble.lambda: unknown parameter of ensemble 'worst_case'"));
}

TEST_CASE("prefopt config composes a bare TOML file with no defaults and no plugins", "[cli][config]") {
  test::TempDir dir;
  const fs::path file = dir.path() / "bare.toml";
  std::ofstream(file) << "a = 1\n[b]\nc = \"${a}\"\n";
  const auto result = run_cli({"config", file.string(), "++d=[1, 2]"});
  REQUIRE(result.status == 0);
  CHECK(result.out == "a = 1\nd = [1, 2]\n\n[b]\nc = 1\n");
}

TEST_CASE("prefopt config --batch answers each request as its own process would", "[cli][config]") {
  using nlohmann::json;
  const std::vector<json> requests = {json{kExperiment, "method.beta=0.3"}, json{kExperiment, "method.bta=0.3"},
                                      json{kExperiment, "seed=1,2", "-m"}, json{"/no/such.toml"}, json("not a list")};
  std::string input;
  for (const json& r : requests) input += r.dump() + "\n";
  const auto batch = run_cli({"config", "--batch"}, "", input);
  REQUIRE(batch.status == 0);
  std::istringstream lines(batch.out);
  std::vector<json> answers;
  for (std::string line; std::getline(lines, line);) answers.push_back(json::parse(line));
  REQUIRE(answers.size() == requests.size());
  for (std::size_t i = 0; i + 1 < requests.size(); ++i) {  // the same status, stdout and message
    std::vector<std::string> args = {"config"};
    for (const json& a : requests[i]) args.push_back(a.get<std::string>());
    const auto single = run_cli(args);
    INFO(requests[i].dump());
    CHECK(answers[i]["status"] == single.status);
    CHECK(answers[i]["out"] == single.out);
    CHECK(answers[i]["err"] == single.err);
  }
  CHECK(answers[0]["status"] == 0);
  CHECK(answers[1]["status"] == 2);
  CHECK_THAT(answers[1]["err"].get<std::string>(), Contains("Did you mean 'method.beta'?"));
  CHECK(answers[4]["status"] == 2);
  CHECK_THAT(answers[4]["err"].get<std::string>(), Contains("a JSON array of strings"));
}
