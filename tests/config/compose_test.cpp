// Composition: defaults lists, config groups, packages, group and value overrides, sweeps.
#include <catch2/catch.hpp>

#include <fmt/format.h>

#include <fstream>

#include "config/compose.h"
#include "prefopt/error.h"
#include "support.h"
#include "text.h"

using namespace prefopt;
using namespace prefopt::config;
using Catch::Contains;
namespace fs = std::filesystem;

namespace {

const fs::path kFixtures = fs::path(PREFOPT_TEST_SOURCE_DIR) / "config" / "fixtures";

std::vector<Override> parse_all(const std::vector<std::string>& texts) {
  std::vector<Override> out;
  for (const std::string& text : texts) out.push_back(parse_override(text));
  return out;
}

Node compose(const fs::path& experiment, const std::vector<std::string>& overrides = {},
             const std::vector<fs::path>& config_dirs = {}) {
  return Composer(experiment, config_dirs).compose(parse_all(overrides)).config;
}

Node::Value value_at(const Node& config, std::string_view key) {
  const Node* node = find(config, key);
  if (node == nullptr) FAIL("no key " << key << " in\n" << to_toml_string(config));
  return node->value;
}

std::string compose_error(const fs::path& experiment, const std::vector<std::string>& overrides) {
  try {
    compose(experiment, overrides);
  } catch (const ConfigError& e) {
    return e.what();
  }
  FAIL("composition succeeded");
  return "";
}

// A bare experiment written to a temporary folder.
struct BareExperiment {
  test::TempDir dir;
  fs::path file = dir.path() / "experiment.toml";
  explicit BareExperiment(const std::string& text) { std::ofstream(file) << text; }
};

}  // namespace

TEST_CASE("the defaults list composes config groups in order, _self_ last by default", "[config][compose]") {
  const fs::path experiment = kFixtures / "basic" / "experiment.toml";
  const Node config = compose(experiment);
  CHECK(value_at(config, "seed") == Node::Value(std::int64_t{7}));
  CHECK(value_at(config, "data.vocab") == Node::Value(std::int64_t{32}));
  CHECK(value_at(config, "method.beta") == Node::Value(0.2));          // the experiment's own value wins
  CHECK(value_at(config, "method.loss") == Node::Value(std::string("sigmoid")));
  CHECK(value_at(config, "method.optimizer.lr") == Node::Value(0.001));  // nested, relative group
  CHECK(value_at(config, "ensemble.plugin") == Node::Value(std::string("mean")));
  CHECK(config.child("defaults") == nullptr);
  // Keys keep their file order: seed, then the groups in defaults order... merged by first appearance.
  CHECK(config.table().front().first == "data");

  CHECK(value_at(compose(kFixtures / "basic" / "self_first.toml"), "method.beta") == Node::Value(0.1));
  CHECK(value_at(compose(kFixtures / "basic" / "implicit_self.toml"), "method.beta") == Node::Value(0.3));
}

TEST_CASE("group overrides choose, add and remove config group options", "[config][compose]") {
  const fs::path experiment = kFixtures / "basic" / "experiment.toml";
  const Node orpo = compose(experiment, {"method=orpo"});
  CHECK(value_at(orpo, "method.lambda") == Node::Value(0.2));
  CHECK(value_at(orpo, "method.beta") == Node::Value(0.2));  // still merged from the experiment
  CHECK(find(orpo, "method.loss") == nullptr);
  CHECK(value_at(compose(experiment, {"method/optimizer=sgd"}), "method.optimizer.momentum") == Node::Value(0.9));
  CHECK(value_at(compose(experiment, {"ensemble=worst"}), "ensemble.plugin") == Node::Value(std::string("worst_case")));
  CHECK(compose(experiment, {"~ensemble"}).child("ensemble") == nullptr);
  CHECK(compose(experiment, {"ensemble=null"}).child("ensemble") == nullptr);
  CHECK(compose(experiment, {"~ensemble=mean"}).child("ensemble") == nullptr);
  CHECK_THAT(compose_error(experiment, {"~ensemble=worst"}), Contains("its option is 'mean', not 'worst'"));
  // +group adds to the experiment's defaults list; the package header puts it at the root.
  CHECK(value_at(compose(experiment, {"+global=runtime"}), "threads") == Node::Value(std::int64_t{2}));
  CHECK(value_at(compose(experiment, {"++ensemble=worst"}), "ensemble.plugin") == Node::Value(std::string("worst_case")));
  CHECK(value_at(compose(experiment, {"++global=runtime"}), "threads") == Node::Value(std::int64_t{2}));
  // The experiment's own `override` entry, and the command line winning over it.
  CHECK(value_at(compose(kFixtures / "basic" / "with_override.toml"), "method.optimizer.lr") == Node::Value(0.1));
  CHECK(value_at(compose(kFixtures / "basic" / "with_override.toml", {"method/optimizer=adam"}), "method.optimizer.lr") ==
        Node::Value(0.001));
}

TEST_CASE("built-in options need no file, are groups of their own, and a file wins over them", "[config][compose]") {
  test::TempDir dir;
  const fs::path experiment = dir.path() / "mine.toml";  // a folder with no config groups at all
  std::ofstream(experiment) << "defaults = [{algorithm = \"dpo\"}, \"_self_\"]\n[algorithm]\nbeta = 0.3\n";
  BuiltinOptions builtin;
  builtin["algorithm"].emplace("dpo", parse_toml("plugin = 'dpo'\nbeta = 0.1\nloss = 'sigmoid'\n", "dpo defaults"));
  builtin["algorithm"].emplace("ppo", parse_toml("plugin = 'ppo'\nkl_coef = 0.05\n", "ppo defaults"));
  builtin["ensemble"].emplace("worst_case", parse_toml("plugin = 'worst_case'\n", "worst_case defaults"));
  const Composer composer(experiment, {}, builtin);
  const Composition plain = composer.compose({});
  CHECK(plain.config == parse_toml("[algorithm]\nplugin = 'dpo'\nbeta = 0.3\nloss = 'sigmoid'\n", "expected"));
  CHECK(find(plain.config, "algorithm.loss")->origin == "dpo defaults:3:8");
  CHECK(plain.choices.at("algorithm") == "dpo");
  CHECK_THAT(join(plain.defaults_tree, "\n"), Contains("algorithm: dpo (built in) @ algorithm"));
  // Changed, value-overridden without '+' (the defaults are there), added, swept and globbed.
  const Composition changed = composer.compose(parse_all({"algorithm=ppo", "algorithm.kl_coef=0.5", "+ensemble=worst_case"}));
  CHECK(value_at(changed.config, "algorithm.kl_coef") == Node::Value(0.5));
  CHECK(value_at(changed.config, "ensemble.plugin") == Node::Value(std::string("worst_case")));
  CHECK(composer.trials(parse_all({"algorithm=glob(*)"}), true).size() == 2);
  CHECK(composer.group_options("algorithm") == std::vector<std::string>{"dpo", "ppo"});
  CHECK_THROWS_WITH(composer.compose(parse_all({"algorithm=dpoo"})),
                    Contains("could not find config group option 'algorithm/dpoo' (did you mean 'dpo'?)"));
  // Without them (plain Hydra composition) there is no such group.
  CHECK_THROWS_WITH(Composer(experiment, {}).compose({}), Contains("could not find config group option 'algorithm/dpo'"));
  // A file of the option's name wins: the fixture's ensemble/mean.toml over a built-in "mean".
  const fs::path basic = kFixtures / "basic" / "experiment.toml";
  BuiltinOptions shadowed;
  shadowed["ensemble"].emplace("mean", parse_toml("plugin = 'not_this_one'\n", "built in"));
  CHECK(value_at(Composer(basic, {}, shadowed).compose({}).config, "ensemble.plugin") == Node::Value(std::string("mean")));
}

TEST_CASE("group override mistakes are clear errors", "[config][compose]") {
  const fs::path experiment = kFixtures / "basic" / "experiment.toml";
  const std::string unknown = compose_error(experiment, {"method=dpoo"});
  CHECK_THAT(unknown, Contains("could not find config group option 'method/dpoo' (did you mean 'dpo'?)"));
  CHECK_THAT(unknown, Contains("available options: dpo, orpo"));
  CHECK_THAT(unknown, Contains("(experiment folder)"));
  CHECK_THAT(compose_error(kFixtures / "basic" / "bad_option.toml", {}),
             Contains("bad_option.toml:1:13: could not find config group option 'method/dpoo'"));
  CHECK_THAT(compose_error(experiment, {"+method=orpo"}), Contains("config group 'method' is already in it"));
  CHECK_THAT(compose_error(experiment, {"global=runtime"}),
             Contains("Could not override 'global' (override 'global=runtime'): no match in the defaults list.\n"
                      "  To append to your defaults list use +global=runtime"));
  CHECK_THAT(compose_error(experiment, {"~global"}), Contains("Could not delete 'global'"));
  CHECK_THAT(compose_error(experiment, {"foo@bar=10"}),
             Contains("looks like a config group override, but config group 'foo' does not exist"));
  CHECK_THAT(compose_error(experiment, {"method=[1,2]"}), Contains("config group 'method' takes an option name"));
  CHECK_THAT(compose_error(kFixtures / "cycle" / "a.toml", {}), Contains("the defaults lists form a cycle"));
  CHECK_THAT(compose_error(experiment, {"method=../data/synthetic"}),
             Contains("invalid option name '../data/synthetic' for config group 'method'"));
}

TEST_CASE("optional options that do not exist are skipped", "[config][compose]") {
  const Node config = compose(kFixtures / "basic" / "optional_missing.toml");
  CHECK(config.child("ensemble") == nullptr);
  CHECK(value_at(config, "x") == Node::Value(std::int64_t{1}));
}

TEST_CASE("packages place a group option elsewhere", "[config][compose]") {
  const Node config = compose(kFixtures / "basic" / "packages.toml");
  CHECK(value_at(config, "policy.beta") == Node::Value(0.1));
  CHECK(value_at(config, "policy.optimizer.lr") == Node::Value(0.001));  // nested defaults follow the package
  CHECK(value_at(config, "reference.lambda") == Node::Value(0.2));
  CHECK(config.child("method") == nullptr);
  CHECK(value_at(compose(kFixtures / "basic" / "packages.toml", {"method@reference=dpo"}), "reference.beta") ==
        Node::Value(0.1));
}

TEST_CASE("the config search path: --config-dir and [prefopt] searchpath", "[config][compose]") {
  const fs::path experiment = kFixtures / "basic" / "experiment.toml";
  CHECK(value_at(compose(experiment, {"method=ipo"}, {kFixtures / "extra"}), "method.loss") ==
        Node::Value(std::string("ipo")));
  BareExperiment searchpath(fmt::format("defaults = [{{method = \"ipo\"}}]\n[prefopt]\nsearchpath = [\"{}\"]\n",
                                        (kFixtures / "extra").string()));
  CHECK(value_at(compose(searchpath.file), "method.beta") == Node::Value(0.5));
  const Composer composer(searchpath.file, {});
  REQUIRE(composer.search_path().size() == 2);
  CHECK_THAT(composer.search_path()[1].origin, Contains("[prefopt] searchpath"));
  CHECK(composer.group_options("method") == std::vector<std::string>{"ipo"});
}

TEST_CASE("conformance: applying value overrides", "[config][compose][conformance]") {
  BareExperiment empty("");
  CHECK_THAT(compose_error(empty.file, {"x=10"}),
             Contains("Could not override 'x'. To append to your config use +x=10"));
  CHECK(value_at(compose(empty.file, {"+x=10"}), "x") == Node::Value(std::int64_t{10}));
  BareExperiment x20("x = 20\n");
  CHECK_THAT(compose_error(x20.file, {"+x=10"}), Contains("Could not append to config. An item is already at 'x'"));
  CHECK(value_at(compose(x20.file, {"++x=10"}), "x") == Node::Value(std::int64_t{10}));
  CHECK_THAT(compose_error(x20.file, {"~x=10"}), Contains("The value of 'x' is 20 and not 10."));
  CHECK(compose(x20.file, {"~x=20"}).child("x") == nullptr);
  CHECK_THAT(compose_error(x20.file, {"~z"}), Contains("'z' does not exist."));
  BareExperiment list("x = [1, 2, 3]\n");
  CHECK(value_at(compose(list.file, {"~x.1"}), "x") == Node::Value(Array{{std::int64_t{1}, ""}, {std::int64_t{3}, ""}}));
  CHECK(value_at(compose(list.file, {"x=[4]"}), "x") == Node::Value(Array{{std::int64_t{4}, ""}}));  // lists are assigned
  BareExperiment table("[t]\na = 1\nb = 2\n");
  // Tables are merged; `t=` changes keys t has (Hydra's struct mode), `+t=` may add keys too.
  CHECK(value_at(compose(table.file, {"t={b: 3}"}), "t.b") == Node::Value(std::int64_t{3}));
  const Node merged = compose(table.file, {"+t={b: 3, c: 4}"});
  CHECK(value_at(merged, "t.a") == Node::Value(std::int64_t{1}));
  CHECK(value_at(merged, "t.b") == Node::Value(std::int64_t{3}));
  CHECK(value_at(merged, "t.c") == Node::Value(std::int64_t{4}));
  CHECK(compose(table.file, {"t.a=null"}).child("t")->child("a") == nullptr);  // null deletes
  CHECK(value_at(compose(table.file, {"+u.v.w=1"}), "u.v.w") == Node::Value(std::int64_t{1}));  // parents are created
  CHECK_THAT(compose_error(table.file, {"t.aa=5"}), Contains("override 't.aa=5': Could not override 't.aa'. To append to your config use +t.aa=5. Did you mean 't.a'?"));
  // Every failing override is reported, not only the first.
  const std::string several = compose_error(table.file, {"t.x=1", "~t.y"});
  CHECK_THAT(several, Contains("Could not override 't.x'"));
  CHECK_THAT(several, Contains("'t.y' does not exist"));
}

TEST_CASE("sweeps expand to the cartesian product, first override varying slowest", "[config][compose][sweep]") {
  const Composer composer(kFixtures / "basic" / "experiment.toml", {});
  const auto trials = composer.trials(parse_all({"seed=1,2", "method=glob(*)", "method.beta=0.5"}), true);
  std::vector<std::string> names;
  for (const Trial& trial : trials) names.push_back(join(trial.sweep_texts, " "));
  CHECK(names == std::vector<std::string>{"seed=1 method=dpo", "seed=1 method=orpo", "seed=2 method=dpo",
                                          "seed=2 method=orpo"});
  const Node last = composer.compose(trials.back().overrides).config;
  CHECK(value_at(last, "seed") == Node::Value(std::int64_t{2}));
  CHECK(value_at(last, "method.lambda") == Node::Value(0.2));
  CHECK(composer.trials(parse_all({"seed=3"}), false).size() == 1);
  CHECK_THROWS_WITH(composer.trials(parse_all({"seed=1,2"}), false), Contains("Ambiguous value for argument 'seed=1,2'"));
  CHECK_THROWS_WITH(composer.trials(parse_all({"seed=glob(*)"}), true), Contains("'seed' is not a config group"));
  CHECK_THROWS_WITH(composer.trials(parse_all({"seed=range(0)"}), true), Contains("sweeps over no values"));
}

TEST_CASE("TOML syntax errors name the file, line and column", "[config][compose]") {
  BareExperiment broken("a = 1\nb = [1,\n");
  CHECK_THROWS_WITH(Composer(broken.file, {}), Contains(broken.file.string() + ":2:9: invalid TOML"));
  CHECK_THROWS_WITH(Composer("/no/such/experiment.toml", {}), Contains("does not exist"));
}

// Found by the Hydra differential test (tests/hydra/differential.py); each was a difference.
TEST_CASE("value overrides merge as Hydra's struct mode does", "[config][compose][hydra]") {
  BareExperiment e("a = 1\nl = [1, 2]\n[b]\nc = 2\n[b.d]\ne = 'x'\n");
  CHECK(std::get<std::int64_t>(value_at(compose(e.file, {"b={c: 5}"}), "b.c")) == 5);
  CHECK_THAT(compose_error(e.file, {"b={z: 1}"}), Contains("'b' has no key 'z'"));
  CHECK_THAT(compose_error(e.file, {"b={d: {f: 1}}"}), Contains("'b.d' has no key 'f'"));
  CHECK(std::get<std::int64_t>(value_at(compose(e.file, {"+b={z: 1}"}), "b.z")) == 1);  // + may add keys
  CHECK(std::get<std::int64_t>(value_at(compose(e.file, {"++b={z: 1}"}), "b.c")) == 2);
  CHECK_THAT(compose_error(e.file, {"l={}"}), Contains("it is an array, and a table cannot replace it"));
  CHECK_THAT(compose_error(e.file, {"b=[1]"}), Contains("it is a table, and an array cannot replace it"));
  CHECK(find(compose(e.file, {"+l=[9]"}), "l")->array().size() == 1);  // + replaces a list, as Hydra's
  CHECK(std::get<std::int64_t>(value_at(compose(e.file, {"b=1"}), "b")) == 1);
}

TEST_CASE("appended groups land at their package, and nested group keys name their package", "[config][compose][hydra]") {
  test::TempDir dir;
  const auto write = [&](const std::string& name, const std::string& text) {
    fs::create_directories((dir.path() / name).parent_path());
    std::ofstream(dir.path() / name) << text;
  };
  write("main.toml", "defaults = [{model = 'small'}, {'model@teacher' = 'small'}, '_self_']\nseed = 7\n");
  write("model/small.toml", "defaults = [{act = 'relu'}, '_self_']\nwidth = 64\n");
  write("model/act/relu.toml", "name = 'relu'\n");
  write("model/act/gelu.toml", "name = 'gelu'\n");
  write("opt/adam.toml", "lr = 0.001\n");
  const fs::path main = dir.path() / "main.toml";
  CHECK(std::get<double>(value_at(compose(main, {"+opt=adam"}), "opt.lr")) == 0.001);
  CHECK(find(compose(main, {"+opt=adam", "~opt"}), "opt") == nullptr);
  const Node changed = compose(main, {"model/act=gelu"});  // only the act composed at model.act
  CHECK(std::get<std::string>(value_at(changed, "model.act.name")) == "gelu");
  CHECK(std::get<std::string>(value_at(changed, "teacher.act.name")) == "relu");
  const Node teacher = compose(main, {"model/act@teacher.act=gelu"});
  CHECK(std::get<std::string>(value_at(teacher, "model.act.name")) == "relu");
  CHECK(std::get<std::string>(value_at(teacher, "teacher.act.name")) == "gelu");
  const Node removed = compose(main, {"~model/act"});
  CHECK(find(removed, "model.act") == nullptr);
  CHECK(find(removed, "teacher.act") != nullptr);
}

TEST_CASE("in a sweep, a later override of a key replaces the earlier one in its place", "[config][compose][hydra]") {
  BareExperiment e("a = 1\nb = 2\n");
  const auto trials = Composer(e.file, {}).trials(parse_all({"a=1,2", "b=3", "a=5,6"}), /*multirun=*/true);
  REQUIRE(trials.size() == 2);
  CHECK(trials[0].sweep_texts == std::vector<std::string>{"a=5"});
  CHECK(trials[1].sweep_texts == std::vector<std::string>{"a=6"});
}
