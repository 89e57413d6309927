// Loading, lookup and creation through the registry, and the guard around plugin calls.
#include <catch2/catch.hpp>
#include <torch/torch.h>

#include <cstdlib>

#include "prefopt/ensemble.h"
#include "support.h"

using namespace prefopt;
namespace fs = std::filesystem;

TEST_CASE("the built-in plugins load from beside libprefopt", "[registry]") {
  const Registry registry = test::load_registry();
  CHECK(registry.problems().empty());
  std::vector<std::string> names;
  for (const PluginInfo* info : registry.plugins(PluginKind::ensemble)) names.push_back(info->name);
  CHECK(names == std::vector<std::string>{"mean", "uncertainty_weighted", "worst_case"});
  const PluginInfo& mean = registry.find(PluginKind::ensemble, "mean");
  CHECK(mean.library == (default_plugin_dir() / "ensemble_mean.so").string());
  CHECK(mean.version == "1.0.0");
}

TEST_CASE("search path: --plugin-path, then PREFOPT_PLUGIN_PATH, then the built-ins", "[registry]") {
  ::setenv("PREFOPT_PLUGIN_PATH", "/env/one::/env/two", 1);
  PluginSearchPath path;
  path.add("/cli/a:/cli/b", "--plugin-path");
  path.add_environment();
  path.add_default();
  ::unsetenv("PREFOPT_PLUGIN_PATH");
  std::vector<std::string> dirs, origins;
  for (const SearchDir& dir : path.dirs()) {
    dirs.push_back(dir.path.string());
    origins.push_back(dir.origin);
  }
  CHECK(dirs == std::vector<std::string>{"/cli/a", "/cli/b", "/env/one", "/env/two",
                                         default_plugin_dir().string()});
  CHECK(origins.back() == "built-in plugins");
  CHECK(path.describe().find("    /env/one (PREFOPT_PLUGIN_PATH, does not exist)\n") != std::string::npos);
}

TEST_CASE("a folder listed twice is loaded once", "[registry]") {
  const Registry registry = test::load_registry({default_plugin_dir(), default_plugin_dir() / "."});
  CHECK(registry.problems().empty());
  CHECK(registry.plugins().size() == test::load_registry().plugins().size());
}

TEST_CASE("an unknown name lists the kind's names, a did-you-mean and the search path", "[registry]") {
  const Registry registry = test::load_registry({"/no/such/folder"});
  try {
    registry.create<Ensemble>("worstcase");
    FAIL("expected a PluginError");
  } catch (const PluginError& e) {
    const std::string message = e.what();
    CHECK(message.starts_with("unknown ensemble 'worstcase' (did you mean 'worst_case'?)\n"));
    CHECK(message.find("known ensemble plugins: mean, uncertainty_weighted, worst_case") != std::string::npos);
    CHECK(message.find("/no/such/folder (--plugin-path, does not exist)") != std::string::npos);
    CHECK(message.find(default_plugin_dir().string() + " (built-in plugins)") != std::string::npos);
    CHECK(e.code() == ExitCode::plugin);
  }
  CHECK_THROWS_WITH(registry.find(PluginKind::algorithm, "reinforce"),
                    Catch::StartsWith("unknown algorithm 'reinforce'\n  known algorithm plugins: best_of_n, dpo, grpo, kto, "
                                      "orpo, ppo, rloo, simpo"));
  CHECK_THROWS_WITH(registry.find(PluginKind::algorithm, "mean"),
                    Catch::Contains("note: 'mean' is a plugin of kind ensemble"));
}

TEST_CASE("exceptions from plugin code come back as PluginErrors naming the plugin", "[registry]") {
  const Registry registry = test::load_registry({test::test_library_dir("faulty")});
  REQUIRE(registry.problems().empty());
  const std::string library = (test::test_library_dir("faulty") / "faulty.so").string();

  const auto faulty = registry.create<Ensemble>("faulty");
  CHECK(faulty->display_name() == "ensemble 'faulty'");
  CHECK_THROWS_MATCHES(faulty->combine(torch::ones({2, 3})), PluginError,
                       Catch::Matchers::Message("ensemble 'faulty' failed: member scores contain NaN (from " +
                                                library + ")"));
  CHECK_THROWS_MATCHES(registry.create<Ensemble>("faulty", {{"fail_on_create", true}}), PluginError,
                       Catch::Matchers::Message("creating ensemble 'faulty' (from " + library +
                                                ") failed: cannot open weights file"));
  CHECK_THROWS_MATCHES(registry.create<Ensemble>("wrong_shape")->combine(torch::ones({2, 3})), PluginError,
                       Catch::Matchers::Message(
                           "ensemble 'wrong_shape' returned a tensor of 2 dimensions; expected [batch = 3]"));
}

TEST_CASE("a plugin object outlives its registry: its info and error messages stay valid", "[registry]") {
  std::unique_ptr<Ensemble> faulty;
  std::string library;
  {
    const Registry registry = test::load_registry({test::test_library_dir("faulty")});
    library = (test::test_library_dir("faulty") / "faulty.so").string();
    faulty = registry.create<Ensemble>("faulty");
  }  // the registry, and every Entry it owned, is gone
  REQUIRE(faulty->info() != nullptr);
  CHECK(faulty->info()->name == "faulty");
  CHECK(faulty->info()->library == library);
  CHECK(faulty->display_name() == "ensemble 'faulty'");
  CHECK_THROWS_MATCHES(faulty->combine(torch::ones({2, 3})), PluginError,
                       Catch::Matchers::Message("ensemble 'faulty' failed: member scores contain NaN (from " +
                                                library + ")"));
}
