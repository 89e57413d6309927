// Loading, lookup and creation through the registry, and the guard around plugin calls.
#include <catch2/catch.hpp>
#include <torch/torch.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>

#include "config/compose.h"
#include "config/validate.h"
#include "pipeline/sections.h"
#include "prefopt/ensemble.h"
#include "support.h"
#include "text.h"

using namespace prefopt;
namespace fs = std::filesystem;

TEST_CASE("the built-in plugins load from beside libprefopt, one for each folder of plugins/", "[registry]") {
  const Registry registry = test::load_registry();
  CHECK(registry.problems().empty());
  std::size_t folders = 0;
  for (PluginKind kind : kAllPluginKinds)
    for (const auto& folder : fs::directory_iterator(fs::path(PREFOPT_SOURCE_DIR) / "plugins" / (std::string(to_string(kind)) + "s"))) {
      ++folders;
      const std::string name = folder.path().filename().string();
      INFO(folder.path());
      CHECK(registry.find(kind, name).library == (default_plugin_dir() / (std::string(to_string(kind)) + "_" + name + ".so")).string());
    }
  CHECK(registry.plugins().size() == folders);
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
  std::vector<std::string> algorithms;
  for (const PluginInfo* info : registry.plugins(PluginKind::algorithm)) algorithms.push_back(info->name);
  CHECK(std::is_sorted(algorithms.begin(), algorithms.end()));
  CHECK_THROWS_WITH(registry.find(PluginKind::algorithm, "reinforce"),
                    Catch::StartsWith("unknown algorithm 'reinforce'\n  known algorithm plugins: " + join(algorithms, ", ")));
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

// Group files in experiments/<kind>/ are presets (`algorithm=ipo`): each composes to an installed
// plugin under a name of its own (a file named after its plugin would hide the plugin's built-in
// option), valid values, and sets some parameters itself, none to its default (a copied default
// goes stale when the schema's changes).
TEST_CASE("the group files in experiments/ are presets of installed plugins that repeat no default", "[registry][config]") {
  const Registry registry = test::load_registry();
  const fs::path experiments = fs::path(PREFOPT_SOURCE_DIR) / "experiments";
  test::TempDir dir;
  std::size_t presets = 0;
  for (PluginKind kind : kAllPluginKinds) {
    const std::string group = to_string(kind);
    if (!fs::is_directory(experiments / group)) continue;
    for (const auto& file : fs::directory_iterator(experiments / group)) {
      ++presets;
      const std::string stem = file.path().stem().string();
      INFO(file.path());
      const fs::path experiment = dir.path() / "preset.toml";
      std::ofstream(experiment) << "defaults = [{" << group << " = \"" << stem << "\"}]\n";
      const config::Node composed =
          config::Composer(experiment, {experiments}, plugin_options(registry)).compose({}).config;
      CHECK(config::validate_plugins(composed, registry).empty());
      const config::Node* plugin = config::find(composed, group + ".plugin");
      REQUIRE((plugin != nullptr && plugin->is_string()));
      const std::string& name = std::get<std::string>(plugin->value);
      CHECK(stem != name);
      const auto infos = registry.plugins(kind);
      const auto info = std::find_if(infos.begin(), infos.end(), [&](const PluginInfo* i) { return i->name == name; });
      if (info == infos.end()) continue;  // reported above
      config::Node own = config::load_toml_file(file.path().string());
      own.erase_child("defaults");
      own.erase_child("plugin");
      CHECK(!own.table().empty());
      for (const auto& [key, value] : config::section_params(own)) {
        const auto spec = std::find_if((*info)->params.begin(), (*info)->params.end(),
                                       [&](const ParamSpec& p) { return p.name() == key; });
        if (spec == (*info)->params.end()) continue;  // reported above
        const auto accepted = spec->accept(value);
        const auto* normalized = std::get_if<ParamValue>(&accepted);
        INFO(key);
        CHECK((normalized == nullptr || *normalized != spec->default_value()));
      }
    }
  }
  CHECK(presets > 0);  // the test reads the folders it means to
}
