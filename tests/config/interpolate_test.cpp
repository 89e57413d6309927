#include <catch2/catch.hpp>

#include <cstdlib>

#include "config/interpolate.h"
#include "prefopt/error.h"

using namespace prefopt;
using namespace prefopt::config;
using Catch::Contains;

namespace {
Node resolved(const std::string& toml) {
  Node config = parse_toml(toml, "test.toml");
  resolve_interpolations(config);
  return config;
}
std::string error(const std::string& toml) {
  try {
    resolved(toml);
  } catch (const ConfigError& e) {
    return e.what();
  }
  FAIL("no error");
  return "";
}
}  // namespace

TEST_CASE("absolute, relative and string interpolation", "[config][interpolate]") {
  const Node config = resolved(R"(
    lr = 0.001
    name = "run_${lr}_${model.width}"
    copy = "${model}"
    [model]
    width = 128
    double_width = "${.width}"
    [model.head]
    width = "${..width}"
    top = "${...lr}"
  )");
  CHECK(find(config, "name")->value == Node::Value(std::string("run_0.001_128")));
  CHECK(find(config, "model.double_width")->value == Node::Value(std::int64_t{128}));  // keeps its type
  CHECK(find(config, "model.head.width")->value == Node::Value(std::int64_t{128}));
  CHECK(find(config, "model.head.top")->value == Node::Value(0.001));
  const Node* copy = find(config, "copy");
  REQUIRE(copy->is_table());
  CHECK(find(*copy, "width")->value == Node::Value(std::int64_t{128}));
  CHECK(find(*copy, "head.width")->value == Node::Value(std::int64_t{128}));  // resolved before copying
}

TEST_CASE("env, now and escaped interpolations", "[config][interpolate]") {
  ::setenv("PREFOPT_TEST_VAR", "from-env", 1);
  ::unsetenv("PREFOPT_TEST_UNSET");
  const Node config = resolved(R"(
    a = "${env:PREFOPT_TEST_VAR}"
    b = "${env:PREFOPT_TEST_UNSET,fallback}"
    c = "${oc.env:PREFOPT_TEST_VAR}"
    d = "${now:%Y}"
    e = "\\${not.a.key}"
  )");
  CHECK(find(config, "a")->value == Node::Value(std::string("from-env")));
  CHECK(find(config, "b")->value == Node::Value(std::string("fallback")));
  CHECK(find(config, "c")->value == Node::Value(std::string("from-env")));
  CHECK(std::get<std::string>(find(config, "d")->value).size() == 4);
  CHECK(find(config, "e")->value == Node::Value(std::string("${not.a.key}")));
  CHECK_THAT(error("a = \"${env:PREFOPT_TEST_UNSET}\""), Contains("environment variable 'PREFOPT_TEST_UNSET' is not set"));
}

TEST_CASE("interpolation errors name the key and where it came from", "[config][interpolate]") {
  CHECK_THAT(error("a = \"${b}\"\nb = \"${a}\"\n"), Contains("interpolation cycle: a -> b -> a"));
  CHECK_THAT(error("a = \"${a}\"\n"), Contains("interpolation cycle: a -> a"));
  CHECK_THAT(error("[m]\nwidth = 1\nx = \"${m.widht}\"\n"),
             Contains("key 'm.widht' does not exist (did you mean 'm.width'?)"));
  CHECK_THAT(error("[m]\nwidth = 1\nx = \"${m.widht}\"\n"), Contains("test.toml:3:5: in 'm.x'"));
  CHECK_THAT(error("t = {a = 1}\ns = \"x${t}\"\n"), Contains("is a table and cannot be part of a string"));
  CHECK_THAT(error("a = \"${foo:bar}\""), Contains("unknown resolver 'foo'"));
  CHECK_THAT(error("a = \"${b\""), Contains("unterminated interpolation"));
  std::string deep = "x";
  for (int i = 0; i < 40; ++i) deep = "${" + deep + "}";
  CHECK_THAT(error("x = 1\na = \"" + deep + "\"\n"), Contains("interpolations nest deeper than 32 levels"));
}

TEST_CASE("every mandatory value left unset is reported at once", "[config][interpolate]") {
  const std::string message = error("a = \"???\"\n[t]\nb = \"???\"\nc = 1\n");
  CHECK_THAT(message, Contains("missing mandatory values (\?\?\?)"));
  CHECK_THAT(message, Contains("a (test.toml:1:5): set it, e.g. a=VALUE"));
  CHECK_THAT(message, Contains("t.b (test.toml:3:5)"));
}

// Found by the Hydra differential test: OmegaConf gives i = "${a}", a literal, here too.
TEST_CASE("a literal reached through an interpolation stays literal", "[config][interpolate][hydra]") {
  const Node config = resolved(R"(
a = '\${a}'
i = '${a}'
s = 'x${i}y'
)");
  CHECK(std::get<std::string>(config.child("a")->value) == "${a}");
  CHECK(std::get<std::string>(config.child("i")->value) == "${a}");
  CHECK(std::get<std::string>(config.child("s")->value) == "x${a}y");
}
