// The registry and the plugin objects it creates, under AddressSanitizer and UBSan: a plugin
// outlives its registry with its info and error messages intact, and every broken library is one
// load problem, read and reported without touching freed or foreign memory.
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <memory>

#include "probe.h"
#include "registry.h"

using namespace prefopt;
using Catch::Contains;
namespace fs = std::filesystem;

namespace {

const fs::path kProbes = PROBE_DIR;

Registry load(const fs::path& dir) {
  PluginSearchPath path;
  path.add(dir.string(), "test");
  return Registry::load(path);
}

}  // namespace

TEST_CASE("a plugin outlives its registry: its info and error messages stay valid") {
  std::unique_ptr<probe::Probe> adder;
  {
    const Registry registry = load(kProbes / "healthy");
    REQUIRE(registry.problems().empty());
    adder = registry.create<probe::Probe>("adder", {{"offset", std::int64_t{40}}});
  }  // the registry, and every Entry it owned, is gone
  CHECK(adder->answer(2) == 42);
  REQUIRE(adder->info() != nullptr);
  CHECK(adder->info()->name == "adder");
  CHECK(adder->info()->library == (kProbes / "healthy" / "adder.so").string());
  CHECK(adder->display_name() == "ensemble 'adder'");
  CHECK_THROWS_WITH(adder->answer(-1), "ensemble 'adder' failed: negative question (from " +
                                           (kProbes / "healthy" / "adder.so").string() + ")");
}

TEST_CASE("a moved registry creates the same plugins, and checks their parameters") {
  Registry first = load(kProbes / "healthy");
  const Registry moved = std::move(first);
  CHECK(moved.create<probe::Probe>("adder")->answer(1) == 2);  // the default offset
  CHECK_THROWS_AS(moved.create<probe::Probe>("adder", {{"ofset", std::int64_t{1}}}), ConfigError);
  CHECK_THROWS_WITH(moved.create<probe::Probe>("adder", {{"ofset", std::int64_t{1}}}), Contains("did you mean 'offset'?"));
  CHECK_THROWS_WITH(moved.create<probe::Probe>("adder", {{"offset", std::int64_t{-3}}}), Contains("offset"));
  CHECK_THROWS_WITH(moved.create<probe::Probe>("addr"), Contains("did you mean 'adder'?"));
}

TEST_CASE("each broken library is one load problem naming its file") {
  struct Case {
    const char* folder;
    const char* expected;
  };
  for (const Case& broken : {Case{"throwing_registration", "calibration table missing"},
                             Case{"bad_default", "offset"}, Case{"wrong_api_major", "API"},
                             Case{"no_entry", "prefopt_plugin_entry"}}) {
    DYNAMIC_SECTION(broken.folder) {
      const Registry registry = load(kProbes / broken.folder);
      REQUIRE(registry.problems().size() == 1);
      const LoadProblem& problem = registry.problems().front();
      CHECK(problem.message.starts_with("plugin library " + problem.file.string() + ": "));
      CHECK_THAT(problem.message, Contains(broken.expected));
      CHECK(registry.plugins().empty());
    }
  }
}

TEST_CASE("a file that is not a shared library is a load problem, not a crash") {
  const fs::path dir = fs::temp_directory_path() / "prefopt-asan-not-elf";
  fs::create_directories(dir);
  std::ofstream(dir / "notes.so") << "not an ELF file\n";
  std::ofstream(dir / "short.so") << "\x7f" "EL";
  const Registry registry = load(dir);
  CHECK(registry.problems().size() == 2);
  for (const LoadProblem& problem : registry.problems()) CHECK_THAT(problem.message, Contains(problem.file.string()));
  fs::remove_all(dir);
}

TEST_CASE("a plugin two libraries claim cannot be created") {
  const Registry registry = load(kProbes / "duplicate");
  REQUIRE(registry.problems().size() == 1);  // the second claim
  CHECK_THAT(registry.problems().front().message,
             Contains("registers ensemble 'twin', which " + (kProbes / "duplicate" / "twin_a.so").string()));
  CHECK_THROWS_WITH(registry.find(PluginKind::ensemble, "twin"), Contains("provided by several libraries"));
  CHECK_THROWS_AS(registry.create<probe::Probe>("twin"), PluginError);
}
