// Hydra's override grammar: every reference case of shared/conformance/hydra_overrides.md (read
// from Hydra's own tests/test_overrides_parser.py), plus prefopt's documented differences.
#include <catch2/catch.hpp>

#include <cmath>

#include "config/override.h"
#include "prefopt/error.h"

using namespace prefopt;
using namespace prefopt::config;
using Catch::Contains;

namespace {

Node value(std::string_view text) {
  OverrideValue parsed = parse_override_value(text);
  REQUIRE(std::holds_alternative<Node>(parsed));
  return std::get<Node>(parsed);
}
std::string string_value(std::string_view text) {
  const Node node = value(text);
  REQUIRE(node.is_string());
  return std::get<std::string>(node.value);
}
std::vector<Node> sweep(std::string_view text, const std::vector<std::string>& options = {}) {
  OverrideValue parsed = parse_override_value(text);
  REQUIRE(std::holds_alternative<Sweep>(parsed));
  return sweep_values(std::get<Sweep>(parsed), options, std::string(text));
}
Node n(Node::Value v) { return Node{std::move(v), ""}; }
std::vector<Node> ints(std::initializer_list<std::int64_t> values) {
  std::vector<Node> out;
  for (auto v : values) out.push_back(n(v));
  return out;
}
std::vector<Node> strings(std::initializer_list<const char*> values) {
  std::vector<Node> out;
  for (auto v : values) out.push_back(n(std::string(v)));
  return out;
}

}  // namespace

TEST_CASE("conformance: elements and primitives", "[config][override][conformance]") {
  CHECK(string_value(" abc-123 ") == "abc-123");
  CHECK(string_value("a b c\t-\t1 2 3") == "a b c\t-\t1 2 3");
  CHECK(string_value("123abc") == "123abc");
  CHECK(string_value(R"(a\,b)") == "a,b");
  CHECK(string_value(R"(\ ab)") == " ab");
  CHECK(string_value(R"(f\(a\, b\))") == "f(a, b)");
  // The literal "${foo.bar}", stored with the raw-string escape so it is never interpolated.
  CHECK(string_value(R"($\{foo.bar\})") == R"(\${foo.bar})");
  CHECK(string_value(R"(c:\foo\a-b.txt)") == R"(c:\foo\a-b.txt)");
  CHECK(value("+1") == n(std::int64_t{1}));
  CHECK(string_value("1___0___") == "1___0___");
  CHECK(std::get<double>(value("+inf").value) == INFINITY);
  CHECK(string_value(".") == ".");
  CHECK(value("10_0") == n(std::int64_t{100}));
  CHECK(value("3.1_4") == n(3.14));
  CHECK(value("-10e1") == n(-100.0));
  CHECK(std::isnan(std::get<double>(value("NaN").value)));
  CHECK(value("trUe") == n(true));
  CHECK(string_value("/-\\+.$%*@?|") == "/-\\+.$%*@?|");
  CHECK(string_value(R"('foo \'bar')") == "foo 'bar");
}

TEST_CASE("primitives beyond the reference cases", "[config][override]") {
  CHECK(value("1e-3") == n(0.001));
  CHECK(value(".5") == n(0.5));
  CHECK(value("1.") == n(1.0));
  CHECK(value("-inf") == n(-INFINITY));
  CHECK(value("FALSE") == n(false));
  CHECK(value("0") == n(std::int64_t{0}));
  CHECK(string_value("012") == "012");
  CHECK(string_value("true_ish") == "true_ish");
  CHECK(string_value("info") == "info");
  CHECK(string_value(R"("double \"quoted\"")") == R"(double "quoted")");
  CHECK(string_value("''") == "");
  CHECK(string_value("${a.b}") == "${a.b}");            // an interpolation, resolved later
  CHECK(string_value("lr_${a.b}_x") == "lr_${a.b}_x");
  CHECK(string_value("${env:HOME,/tmp}") == "${env:HOME,/tmp}");
  CHECK(string_value("") == "");                         // key= is the empty string, as in Hydra
  CHECK(std::holds_alternative<Null>(parse_override_value("null")));
  CHECK(std::holds_alternative<Null>(parse_override_value("NULL")));
  CHECK(string_value("nullable") == "nullable");
  CHECK(string_value("héllo wörld") == "héllo wörld");  // prefopt also accepts non-ASCII letters
}

TEST_CASE("conformance: containers", "[config][override][conformance]") {
  CHECK(value("['a b']") == n(Array{n(std::string("a b"))}));
  CHECK(value("[1,[a]]") == n(Array{n(std::int64_t{1}), n(Array{n(std::string("a"))})}));
  CHECK(value("{a:10,b:{c:[1,2]}}") ==
        n(Table{{"a", n(std::int64_t{10})}, {"b", n(Table{{"c", n(Array{n(std::int64_t{1}), n(std::int64_t{2})})}})}}));
  CHECK(value("[ 1 , 2 ]") == n(Array{n(std::int64_t{1}), n(std::int64_t{2})}));
  CHECK(value("[]") == n(Array{}));
  CHECK(value("{}") == n(Table{}));
  CHECK(value("{a: b:c}") == n(Table{{"a", n(std::string("b:c"))}}));
}

TEST_CASE("conformance: sweeps and functions", "[config][override][conformance]") {
  CHECK(sweep("1, 2, 3") == ints({1, 2, 3}));
  CHECK(sweep("[a,b],[c,d]") == std::vector<Node>{n(Array{n(std::string("a")), n(std::string("b"))}),
                                                  n(Array{n(std::string("c")), n(std::string("d"))})});
  CHECK(sweep("choice (a,b)") == strings({"a", "b"}));
  CHECK(sweep("range(10)") == ints({0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
  CHECK(sweep("range(-10, step=-1)") == ints({0, -1, -2, -3, -4, -5, -6, -7, -8, -9}));
  const auto floats = sweep("range(1.0, 3.14, 0.1)");
  REQUIRE(floats.size() == 22);
  CHECK(std::get<double>(floats.front().value) == 1.0);
  CHECK(std::get<double>(floats.back().value) == Approx(3.1));
  const auto interval = parse_override_value("interval(10,11)");
  REQUIRE(std::holds_alternative<Sweep>(interval));
  CHECK(std::get<Sweep>(interval).interval == std::pair<double, double>{10.0, 11.0});
  CHECK_THROWS_WITH(sweep_values(std::get<Sweep>(interval), {}, "x=interval(10,11)"),
                    Contains("a grid sweep cannot enumerate it"));
  const auto tagged = parse_override_value("tag(tag1,tag2,sweep=range(1,2))");
  REQUIRE(std::holds_alternative<Sweep>(tagged));
  CHECK(std::get<Sweep>(tagged).tags == std::vector<std::string>{"tag1", "tag2"});
  CHECK(std::get<Sweep>(tagged).values == ints({1}));
  CHECK(sweep("glob(include=[a*, b*], exclude=c*)", {"apple", "banana", "cherry", "avocado", "date"}) ==
        strings({"apple", "avocado", "banana"}));
  CHECK(sweep("glob(*)", {"b", "a"}) == strings({"a", "b"}));
  CHECK(sweep("sort(a,c,b,reverse=true)") == strings({"c", "b", "a"}));
  CHECK(sweep("sort(range(9,0,-1))") == ints({1, 2, 3, 4, 5, 6, 7, 8, 9}));
  CHECK(value("sort([3,1,2])") == n(Array{n(std::int64_t{1}), n(std::int64_t{2}), n(std::int64_t{3})}));
  CHECK(value("int(10.0)") == n(std::int64_t{10}));
  CHECK(value("str(10.0)") == n(std::string("10.0")));
  CHECK(value("str([1,2])") == n(Array{n(std::string("1")), n(std::string("2"))}));
  CHECK(value("float(1)") == n(1.0));
  CHECK(value("bool(0)") == n(false));
  CHECK(value("str(true)") == n(std::string("true")));
  CHECK(value("int(-2.7)") == n(std::int64_t{-2}));
  CHECK(sweep("float(range(3))") == std::vector<Node>{n(0.0), n(1.0), n(2.0)});
}

TEST_CASE("shuffle is a permutation, and the same text always gives the same order", "[config][override]") {
  const auto once = sweep("shuffle(choice(1,2,3,4,5,6,7,8))");
  CHECK(once == sweep("shuffle(choice(1,2,3,4,5,6,7,8))"));
  auto sorted = once;
  std::sort(sorted.begin(), sorted.end(), [](const Node& a, const Node& b) {
    return std::get<std::int64_t>(a.value) < std::get<std::int64_t>(b.value);
  });
  CHECK(sorted == ints({1, 2, 3, 4, 5, 6, 7, 8}));
  CHECK(once != ints({1, 2, 3, 4, 5, 6, 7, 8}));  // this seed does move things
}

TEST_CASE("conformance: errors are clear messages, never crashes", "[config][override][conformance]") {
  auto error = [](std::string_view text) -> std::string {
    try {
      parse_override_value(text);
    } catch (const ConfigError& e) {
      CHECK(e.code() == ExitCode::usage);
      return e.what();
    }
    FAIL("no error for " << text);
    return "";
  };
  // Hydra's `primitive` rule refuses " ", but an override's value " " is "" (`key= `).
  CHECK_THAT(error("[1, ,2]"), Contains("Trying to parse a primitive that is all whitespaces"));
  CHECK_THAT(error("["), Contains("no viable alternative at input '['"));
  CHECK_THAT(error("[]aa"), Contains("extraneous input 'aa'"));
  CHECK_THAT(error("[1,2,3]'"), Contains("token recognition error at: '''"));
  CHECK_THAT(error("{'0a': 0}"), Contains("quoted dict keys are illegal"));
  CHECK_THAT(error("range(start=10,20,1)"), Contains("positional argument follows keyword argument"));
  CHECK_THAT(error("sort(3,2,str(1))"), Contains("cannot compare str and int"));
  CHECK_THAT(error("int('10.0')"), Contains("invalid literal for int() with base 10: '10.0'"));
  CHECK_THAT(error("[1,null]"), Contains("TOML has no null"));
  CHECK_THAT(error("choise(a,b)"), Contains("unknown function 'choise' (did you mean 'choice'?)"));
  CHECK_THAT(error("range(1,2,0)"), Contains("step must not be zero"));
  CHECK_THAT(error("range(1142,600511)"), Contains("would produce 599369 values; at most 100,000"));
  CHECK_THAT(error("a=b"), Contains("token recognition error at: '='"));
  CHECK_THAT(error("[1,2"), Contains("missing ']'"));
  CHECK_THAT(error("'abc"), Contains("token recognition error at: '''"));
  CHECK_THAT(error("${a.b"), Contains("unterminated interpolation"));
  CHECK_THAT(error("99999999999999999999"), Contains("does not fit in 64 bits"));
  CHECK_THAT(error("ab\xff"), Contains("not valid UTF-8 at byte 2"));  // found by the compose fuzzer
  CHECK_THAT(error(std::string(5000, '[')), Contains("values nest deeper than 64 levels"));  // and this one by the override fuzzer
  CHECK(value(std::string(60, '[') + std::string(60, ']')).is_array());
  // The caret points at the offending column of the override.
  CHECK_THAT(error("[]aa"), Contains("\n  []aa\n    ^"));
}

TEST_CASE("override keys: prefixes, groups and packages", "[config][override][conformance]") {
  const Override change = parse_override("a.b=1");
  CHECK(change.kind == Override::Kind::change);
  CHECK(change.key == "a.b");
  CHECK(parse_override("+a.b=1").kind == Override::Kind::add);
  CHECK(parse_override("++a.b=1").kind == Override::Kind::force_add);
  const Override remove = parse_override("~a.b");
  CHECK(remove.kind == Override::Kind::remove);
  CHECK_FALSE(remove.value.has_value());
  CHECK(parse_override("~x=10").value.has_value());
  const Override group = parse_override("algorithm@ref=dpo");
  CHECK(group.key == "algorithm");
  CHECK(group.package == "ref");
  CHECK(parse_override("server/db=mysql").key == "server/db");
  CHECK(parse_override("foo@$bar=1").package == "$bar");  // '$' is fine in packages
  CHECK_THROWS_WITH(parse_override("$foo/bar=foobar"), Contains("'$' is allowed in package names, not in config group paths"));
  CHECK_THROWS_WITH(parse_override("a.b"), Contains("missing '='"));
  CHECK_THROWS_WITH(parse_override("=1"), Contains("missing key"));
  CHECK_THROWS_WITH(parse_override("a b=1"), Contains("invalid package 'a b'"));
  CHECK(std::get<Node>(*parse_override("x=").value) == Node{std::string(), ""});
  CHECK(parse_override("x=1,2").is_sweep());
}

// Found by the Hydra differential test (tests/hydra/differential.py); each was a difference.
TEST_CASE("Hydra's quoting, empty values, repeated keys and cast sweeps", "[config][override][hydra]") {
  CHECK(string_value("'a\\\\'") == "a\\");          // a backslash run before the closing quote halves
  CHECK(string_value("'a\\\\\\''") == "a\\'");       // odd: the last one escapes the quote
  CHECK(string_value("'a\\\\b'") == "a\\\\b");       // elsewhere backslashes stay as written
  CHECK(string_value("'\\\\'") == "\\");
  const Node list = value("['a\\\\', 'b\\\\']");
  REQUIRE(list.array().size() == 2);
  CHECK(std::get<std::string>(list.array()[1].value) == "b\\");
  CHECK(string_value(" ") == "");  // `key= ` is the empty string
  const Node dict = value("{a: 1, a: 2}");
  REQUIRE(dict.table().size() == 1);
  CHECK(std::get<std::int64_t>(dict.table()[0].second.value) == 2);
  CHECK(sweep("str(1,2)") == strings({"1", "2"}));
  CHECK_THROWS_WITH(parse_override("+1=x"), Contains("invalid key '1'"));
  CHECK_NOTHROW(parse_override("+a.1=x"));
}
