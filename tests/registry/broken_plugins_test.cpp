// Every kind of broken plugin library gives one clear message naming the file, what was found and
// what was expected, and never hides the healthy plugins beside it: through the registry here,
// through the CLI (exit status 3) in cli_test.cpp.
#include <catch2/catch.hpp>

#include <fstream>

#include "broken_cases.h"
#include "support.h"

using namespace prefopt;
namespace fs = std::filesystem;

TEST_CASE("each broken library is one load problem, and the healthy plugins still load", "[registry][broken]") {
  test::TempDir scratch;
  for (const test::BrokenCase& broken : test::broken_cases(scratch.path())) {
    DYNAMIC_SECTION(broken.name) {
      const Registry registry = test::load_registry({broken.dir});
      REQUIRE(registry.problems().size() == broken.problems);
      for (const LoadProblem& problem : registry.problems()) {
        CHECK(problem.message.starts_with("plugin library " + problem.file.string() + ": "));
        CHECK(problem.file.parent_path() == broken.dir);
      }
      for (const std::string& fragment : broken.expected)
        CHECK_THAT(registry.problems().back().message, Catch::Contains(fragment));
      // The built-ins beside the broken library are all there.
      std::vector<std::string> names;
      for (const PluginInfo* info : registry.plugins(PluginKind::ensemble)) names.push_back(info->name);
      for (const char* builtin : {"mean", "uncertainty_weighted", "worst_case"})
        CHECK(std::find(names.begin(), names.end(), builtin) != names.end());
      CHECK(std::find(names.begin(), names.end(), "should_not_load") == names.end());
      CHECK(std::find(names.begin(), names.end(), "half_registered") == names.end());
    }
  }
}

TEST_CASE("a plugin that two libraries claim cannot be created", "[registry][broken]") {
  const Registry registry = test::load_registry({test::test_library_dir("duplicate")});
  const fs::path dir = test::test_library_dir("duplicate");
  CHECK_THROWS_WITH(registry.find(PluginKind::ensemble, "twin"),
                    "ensemble 'twin' is provided by several libraries: " + (dir / "twin_a.so").string() +
                        ", " + (dir / "twin_b.so").string() + "; remove all but one from the plugin path");
}
