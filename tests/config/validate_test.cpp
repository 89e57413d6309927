#include <catch2/catch.hpp>

#include "config/validate.h"
#include "prefopt/error.h"
#include "support.h"

using namespace prefopt;
using namespace prefopt::config;
using Catch::Contains;

TEST_CASE("plugin sections are checked against the plugins' schemas, all problems at once", "[config][validate]") {
  const Registry registry = test::load_registry();
  const Node ok = parse_toml("[ensemble]\nplugin = \"uncertainty_weighted\"\nlambda = 1\n", "ok.toml");
  CHECK(validate_plugins(ok, registry).empty());  // an int widens to the float parameter
  CHECK(std::get<std::int64_t>(section_params(*ok.child("ensemble")).at("lambda")) == 1);

  const Node bad = parse_toml(
      "[ensemble]\nplugin = \"uncertainty_weighted\"\nlamda = 0.1\nlambda = \"high\"\n"
      "[annotator]\nplugin = \"flipp\"\n[task]\nx = 1\n",
      "bad.toml");
  const auto problems = validate_plugins(bad, registry);
  REQUIRE(problems.size() == 4);
  CHECK(problems[0].key == "annotator.plugin");
  CHECK(problems[0].unknown_plugin);
  CHECK_THAT(problems[0].message, Contains("unknown annotator 'flipp' (did you mean 'flip'?)"));
  CHECK(problems[1].key == "ensemble.lamda");
  CHECK(problems[1].origin == "bad.toml:3:9");
  CHECK_THAT(problems[1].message, Contains("(did you mean 'lambda'?)"));
  CHECK(problems[2].key == "ensemble.lambda");
  CHECK(problems[2].message == "expected float, got string \"high\"");
  CHECK(problems[3].key == "task.plugin");

  CHECK_THROWS_AS(check_plugins(bad, registry), PluginError);  // an unknown plugin: exit status 3
  const Node range = parse_toml("[ensemble]\nplugin = \"uncertainty_weighted\"\nlambda = -1\n", "range.toml");
  CHECK_THROWS_MATCHES(check_plugins(range, registry), ConfigError,
                       Catch::Matchers::Message("1 problem in the configuration:\n  range.toml:3:10: ensemble.lambda: "
                                                "-1 is out of range [0, inf)"));
  // Sections of other names are not plugin sections.
  CHECK(validate_plugins(parse_toml("[train]\nsteps = 1\n", "t.toml"), registry).empty());
}
