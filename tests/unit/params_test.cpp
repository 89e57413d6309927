#include <catch2/catch.hpp>

#include <cmath>
#include <limits>

#include "prefopt/params.h"
#include "registry.h"

using namespace prefopt;

namespace {
std::string rejection(const ParamSpec& spec, const ParamValue& value) {
  const auto accepted = spec.accept(value);
  REQUIRE(std::holds_alternative<std::string>(accepted));
  return std::get<std::string>(accepted);
}
ParamValue accepted(const ParamSpec& spec, const ParamValue& value) {
  const auto result = spec.accept(value);
  if (const auto* problem = std::get_if<std::string>(&result)) FAIL(*problem);
  return std::get<ParamValue>(result);
}
}  // namespace

TEST_CASE("ints widen to floats, and nothing else is coerced", "[params]") {
  const ParamSpec beta = ParamSpec::real("beta", 0.1, "");
  CHECK(std::get<double>(accepted(beta, std::int64_t{2})) == 2.0);
  CHECK(rejection(beta, std::string("0.1")) == "expected float, got string \"0.1\"");
  CHECK(rejection(beta, true) == "expected float, got bool true");
  const ParamSpec steps = ParamSpec::integer("steps", 10, "");
  CHECK(rejection(steps, 2.5) == "expected int, got float 2.5");
  const ParamSpec ns = ParamSpec::real_list("n", {1.0}, "");
  CHECK(std::get<std::vector<double>>(accepted(ns, std::vector<std::int64_t>{1, 4})) ==
        std::vector<double>{1.0, 4.0});
  CHECK(std::get<std::vector<std::string>>(accepted(ParamSpec::string_list("s", {}, ""),
                                                    std::vector<std::int64_t>{}))
            .empty());
}

TEST_CASE("ranges are inclusive and apply to list elements", "[params]") {
  const ParamSpec p = ParamSpec::real("p", 0.1, "").min(0.0).max(0.5);
  CHECK(std::get<double>(accepted(p, 0.5)) == 0.5);
  CHECK(std::get<double>(accepted(p, std::int64_t{0})) == 0.0);
  CHECK(rejection(p, 0.7) == "0.7 is out of range [0, 0.5]");
  CHECK(rejection(p, std::numeric_limits<double>::quiet_NaN()) == "nan is not in [0, 0.5]");
  const ParamSpec sizes = ParamSpec::integer_list("sizes", {1}, "").min(1);
  CHECK(rejection(sizes, std::vector<std::int64_t>{4, 0}) == "[4, 0] is out of range [1, inf)");
  CHECK(ParamSpec::real("x", 0, "").min(0).constraint() == "[0, inf)");
  CHECK(ParamSpec::real("x", 0, "").max(1).constraint() == "(-inf, 1]");
  CHECK(ParamSpec::real("x", 0, "").constraint().empty());
}

TEST_CASE("choices apply to strings and string lists", "[params]") {
  const ParamSpec loss = ParamSpec::string("loss", "sigmoid", "").one_of({"sigmoid", "ipo"});
  CHECK(std::get<std::string>(accepted(loss, std::string("ipo"))) == "ipo");
  CHECK(rejection(loss, std::string("hinge")) == "\"hinge\" is not one of: sigmoid, ipo");
}

TEST_CASE("values format as TOML", "[params]") {
  CHECK(format_value(true) == "true");
  CHECK(format_value(std::int64_t{-3}) == "-3");
  CHECK(format_value(0.5) == "0.5");
  CHECK(format_value(2.0) == "2.0");
  CHECK(format_value(std::numeric_limits<double>::infinity()) == "inf");
  CHECK(format_value(std::string("a \"b\"\n")) == R"("a \"b\"\n")");
  CHECK(format_value(std::vector<double>{1.0, 0.25}) == "[1.0, 0.25]");
  CHECK(format_value(std::vector<std::string>{"x", "y"}) == R"(["x", "y"])");
}

TEST_CASE("check_params reports every problem at once and fills defaults", "[params]") {
  PluginInfo info{.name = "dpo", .version = "1", .description = ""};
  info.params = {ParamSpec::real("beta", 0.1, "").min(0.0),
                 ParamSpec::string("loss", "sigmoid", "").one_of({"sigmoid", "ipo"}),
                 ParamSpec::integer("steps", 100, "")};

  const auto ok = check_params(info, {{"beta", std::int64_t{1}}});
  REQUIRE(std::holds_alternative<Params>(ok));
  const Params& params = std::get<Params>(ok);
  CHECK(params.get<double>("beta") == 1.0);
  CHECK(params.get<std::string>("loss") == "sigmoid");
  CHECK(params.get<std::int64_t>("steps") == 100);
  CHECK_THROWS_AS(params.get<double>("steps"), std::logic_error);
  CHECK_THROWS_AS(params.get<double>("gamma"), std::logic_error);

  const auto bad = check_params(info, {{"betta", 0.2}, {"loss", std::string("hinge")}, {"steps", -1.5}});
  REQUIRE(std::holds_alternative<std::vector<ParamProblem>>(bad));
  const auto& problems = std::get<std::vector<ParamProblem>>(bad);
  REQUIRE(problems.size() == 3);
  CHECK(problems[0].key == "betta");
  CHECK(problems[0].message ==
        "unknown parameter of algorithm 'dpo' (did you mean 'beta'?); it has parameters beta, loss, steps");
  CHECK(problems[1].key == "loss");
  CHECK(problems[2].message == "expected int, got float -1.5");
}
