// The `prefopt` binary as a user runs it: output, messages and exit statuses.
#include <catch2/catch.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "broken_cases.h"
#include "registry.h"
#include "support.h"

using namespace prefopt;
using Catch::Contains;
using test::run_cli;

TEST_CASE("prefopt --version names the SDK API, toolchain and libtorch", "[cli]") {
  const auto result = run_cli({"--version"});
  CHECK(result.status == 0);
  CHECK_THAT(result.out, Catch::StartsWith(std::string("prefopt ") + version_string() + "\n"));
  CHECK_THAT(result.out, Contains(fmt::format("SDK API {}.{}\n", PREFOPT_API_MAJOR, PREFOPT_API_MINOR)));
  CHECK_THAT(result.out, Contains(std::string("toolchain ") + host_toolchain_fingerprint()));
  CHECK_THAT(result.out, Contains("libtorch " TORCH_VERSION ", CUDA "));
}

TEST_CASE("usage errors exit 2 with a message, --help exits 0", "[cli]") {
  CHECK(run_cli({}).status == 2);
  CHECK(run_cli({"--help"}).status == 0);
  CHECK_THAT(run_cli({"--help"}).out, Contains("3  plugin error"));
  auto typo = run_cli({"plugins", "lst"});
  CHECK(typo.status == 2);
  CHECK_THAT(typo.err, Contains("unknown command 'plugins lst' (did you mean 'plugins list'?)"));
  CHECK(run_cli({"plugins"}).status == 2);
  CHECK(run_cli({"plugins", "--help"}).status == 0);
  for (const char* command : {"list", "show"}) {
    const auto help = run_cli({"plugins", command, "--help"});
    CHECK(help.status == 0);
    CHECK_THAT(help.out, Contains("--plugin-path"));
  }
  auto bad_option = run_cli({"plugins", "list", "--knd", "ensemble"});
  CHECK(bad_option.status == 2);
  CHECK_THAT(bad_option.err, Contains("unrecognised option '--knd'"));
  auto bad_kind = run_cli({"plugins", "list", "--kind", "ensembles"});
  CHECK(bad_kind.status == 2);
  CHECK_THAT(bad_kind.err, Contains("--kind: unknown plugin kind 'ensembles' (did you mean 'ensemble'?)"));
  auto bad_format = run_cli({"plugins", "list", "--format", "yaml"});
  CHECK(bad_format.status == 2);
  CHECK_THAT(bad_format.err, Contains("--format: unknown format 'yaml'; formats are table, json"));
  CHECK(run_cli({"plugins", "show"}).status == 2);
}

TEST_CASE("plugins list shows every plugin as a table or JSON", "[cli]") {
  const auto table = run_cli({"plugins", "list"});
  CHECK(table.status == 0);
  CHECK(table.err.empty());
  CHECK_THAT(table.out, Catch::Matches("KIND +NAME +VERSION +DESCRIPTION +LIBRARY\n(.|\n)*"));
  CHECK(test::lists_plugin(table.out, "ensemble", "worst_case"));
  CHECK_THAT(table.out, Contains("1.0.0    minimum of the reward models' scores (WCO)"));
  for (const char* kind : {"algorithm", "annotator", "ensemble", "reward_model", "task"}) {
    const auto of_kind = run_cli({"plugins", "list", "--kind", kind});
    CHECK(of_kind.status == 0);
    CHECK(std::count(of_kind.out.begin(), of_kind.out.end(), '\n') >= 2);
  }

  const auto json = run_cli({"plugins", "list", "--format", "json", "--kind", "ensemble"});
  REQUIRE(json.status == 0);
  const auto parsed = nlohmann::json::parse(json.out);
  REQUIRE(parsed.size() == 3);
  CHECK(parsed[0]["name"] == "mean");
  CHECK(parsed[0]["kind"] == "ensemble");
  CHECK(parsed[0]["library"] == (default_plugin_dir() / "ensemble_mean.so").string());

  const auto algorithms = run_cli({"plugins", "list", "--kind", "algorithm"});
  CHECK(algorithms.status == 0);
  CHECK(test::lists_plugin(algorithms.out, "algorithm", "best_of_n"));
  CHECK_FALSE(test::lists_plugin(algorithms.out, "ensemble", "mean"));
}

TEST_CASE("plugins show prints the parameter schema", "[cli]") {
  const auto text = run_cli({"plugins", "show", "uncertainty_weighted"});
  CHECK(text.status == 0);
  CHECK_THAT(text.out, Contains("ensemble 'uncertainty_weighted'\n"));
  CHECK_THAT(text.out, Contains("  Version      1.0.0\n"));
  CHECK_THAT(text.out, Contains("  lambda  float  default 0.5  [0, inf)\n      weight of the variance penalty"));

  const auto json = run_cli({"plugins", "show", "uncertainty_weighted", "--format", "json"});
  REQUIRE(json.status == 0);
  const auto param = nlohmann::json::parse(json.out)[0]["params"][0];
  CHECK(param["name"] == "lambda");
  CHECK(param["type"] == "float");
  CHECK(param["default"] == 0.5);
  CHECK(param["min"] == 0.0);
  CHECK_FALSE(param.contains("max"));
}

TEST_CASE("an unknown plugin name exits 3 with a did-you-mean and the paths searched", "[cli]") {
  const auto any = run_cli({"plugins", "show", "meen"});
  CHECK(any.status == 3);
  CHECK_THAT(any.err, Contains("unknown plugin 'meen' (did you mean 'mean'?)"));
  CHECK_THAT(any.err, Contains(default_plugin_dir().string() + " (built-in plugins)"));

  const auto of_kind = run_cli({"plugins", "show", "worst", "--kind", "ensemble", "--plugin-path", "/opt/missing"});
  CHECK(of_kind.status == 3);
  CHECK_THAT(of_kind.err, Contains("unknown ensemble 'worst' (did you mean 'worst_case'?)"));
  CHECK_THAT(of_kind.err, Contains("known ensemble plugins: mean, uncertainty_weighted, worst_case"));
  CHECK_THAT(of_kind.err, Contains("/opt/missing (--plugin-path, does not exist)"));
}

TEST_CASE("each broken library: exit 3, one message naming the file, healthy plugins listed", "[cli][broken]") {
  test::TempDir scratch;
  for (const test::BrokenCase& broken : test::broken_cases(scratch.path())) {
    DYNAMIC_SECTION(broken.name) {
      const auto result = run_cli({"plugins", "list", "--plugin-path", broken.dir.string()});
      CHECK(result.status == 3);
      // One "prefopt: error:" line per problem, naming a file in the case's folder.
      std::size_t messages = 0;
      for (std::size_t at = result.err.find("prefopt: error: plugin library " + broken.dir.string());
           at != std::string::npos; at = result.err.find("prefopt: error: ", at + 1))
        ++messages;
      CHECK(messages == broken.problems);
      for (const std::string& fragment : broken.expected) CHECK_THAT(result.err, Contains(fragment));
      for (const char* builtin : {"mean", "uncertainty_weighted", "worst_case"})
        CHECK(test::lists_plugin(result.out, "ensemble", builtin));
    }
  }
}

TEST_CASE("PREFOPT_PLUGIN_PATH is searched after --plugin-path", "[cli]") {
  const std::string faulty = test::test_library_dir("faulty").string();
  const auto via_env = run_cli({"plugins", "list"}, faulty);
  CHECK(via_env.status == 0);
  CHECK(test::lists_plugin(via_env.out, "ensemble", "faulty"));
  // The same library through both: found once, no duplicate.
  const auto both = run_cli({"plugins", "list", "--plugin-path", faulty}, faulty);
  CHECK(both.status == 0);
  CHECK(both.err.empty());
}
