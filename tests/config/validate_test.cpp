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

  CHECK_THROWS_AS(check_experiment(bad, registry), PluginError);  // an unknown plugin: exit status 3
  const Node range = parse_toml("[ensemble]\nplugin = \"uncertainty_weighted\"\nlambda = -1\n", "range.toml");
  CHECK_THROWS_MATCHES(check_experiment(range, registry), ConfigError,
                       Catch::Matchers::Message("1 problem in the configuration:\n  range.toml:3:10: ensemble.lambda: "
                                                "-1 is out of range [0, inf)"));
  // Sections of other names are not plugin sections.
  CHECK(validate_plugins(parse_toml("[train]\nsteps = 1\n", "t.toml"), registry).empty());
}

TEST_CASE("every top-level key is checked: unknown tables, the seed, [plugins] and [prefopt]", "[config][validate]") {
  const Registry registry = test::load_registry();
  const SectionSchemas sections = {{"train", {ParamSpec::integer("steps", 1, "steps")}}};
  CHECK(validate_top_level(parse_toml("seed = 3\n[task]\n[train]\nsteps = 2\n[plugins]\npaths = []\n", "ok.toml"), sections).empty());

  const Node bad = parse_toml(
      "seed = 1.5\n[trian]\nsteps = 2\n[plugins]\npath = []\n[prefopt]\nsweeps = {}\n[task]\n", "bad.toml");
  const auto problems = validate_top_level(bad, sections);
  REQUIRE(problems.size() == 4);
  CHECK(problems[0].key == "seed");
  CHECK(problems[0].origin == "bad.toml:1:8");
  CHECK(problems[0].message == "must be an integer >= 0 (the trial's random seed)");
  CHECK(problems[1].key == "trian");
  CHECK(problems[1].origin == "bad.toml:2:1");
  CHECK_THAT(problems[1].message, Contains("unknown top-level table (did you mean 'train'?)"));
  CHECK(problems[2].key == "plugins.path");
  CHECK_THAT(problems[2].message, Contains("(did you mean 'paths'?)"));
  CHECK(problems[3].key == "prefopt.sweeps");
  CHECK_THAT(problems[3].message, Contains("(did you mean 'sweep'?)"));
  CHECK(validate_top_level(parse_toml("seed = -1\n[task]\n", "neg.toml"), sections).size() == 1);
  // [meta] holds any keys; it must be a table.
  CHECK(validate_top_level(parse_toml("[task]\n[meta]\nnote = 'x'\nby = {who = 'me'}\n", "meta.toml"), sections).empty());
  CHECK(validate_top_level(parse_toml("meta = 3\n[task]\n", "meta.toml"), sections).size() == 1);
  CHECK(validate_top_level(parse_toml("seed = \"0\"\n[algorithm]\n", "str.toml"), sections).size() == 1);
  // Naming no task and no algorithm, it is a plain composed TOML, not an experiment.
  CHECK(validate_top_level(parse_toml("seed = \"0\"\n[method]\nbeta = 1\n", "plain.toml"), sections).empty());

  // check_experiment reports them with the plugin and section problems, one error.
  CHECK_THROWS_WITH(check_experiment(bad, registry, sections),
                    Contains("bad.toml:2:1: trian: unknown top-level table (did you mean 'train'?)"));
}

TEST_CASE("pipeline sections name their own schema in messages, not a plugin's", "[config][validate]") {
  const Registry registry = test::load_registry();
  const SectionSchemas sections = {{"train", {ParamSpec::integer("steps", 1, "steps")}}};
  const auto problems = validate_sections(parse_toml("[train]\nstepz = 2\n", "t.toml"), sections);
  REQUIRE(problems.size() == 1);
  CHECK(problems[0].key == "train.stepz");
  CHECK(problems[0].message == "unknown parameter of [train] (did you mean 'steps'?); it has parameters steps");
}
