// Replays the fuzzers' seed corpus and every crash they ever found (fuzz/regressions/) through
// the same harnesses, in the normal build: each input must end cleanly or in a ConfigError.
#include <catch2/catch.hpp>

#include <filesystem>

#include "harness.h"
#include "support.h"

namespace fs = std::filesystem;

namespace {
void replay(const std::string& target, void (*harness)(const std::uint8_t*, std::size_t)) {
  std::size_t inputs = 0;
  for (const char* folder : {"corpus", "regressions"}) {
    const fs::path dir = fs::path(PREFOPT_FUZZ_DIR) / folder / target;
    if (!fs::is_directory(dir)) continue;
    for (const auto& entry : fs::directory_iterator(dir)) {
      const std::string input = prefopt::test::read_file(entry.path());
      INFO(entry.path().string());
      CHECK_NOTHROW(harness(reinterpret_cast<const std::uint8_t*>(input.data()), input.size()));
      ++inputs;
    }
  }
  CHECK(inputs >= 2);
}
}  // namespace

TEST_CASE("fuzz inputs replay cleanly through the override harness", "[config][fuzz]") {
  replay("override", prefopt::fuzz::override_harness);
}

TEST_CASE("fuzz inputs replay cleanly through the composition harness", "[config][fuzz]") {
  replay("compose", prefopt::fuzz::compose_harness);
}

TEST_CASE("fuzz inputs replay cleanly through the safetensors header harness", "[models][fuzz]") {
  replay("safetensors", prefopt::fuzz::safetensors_harness);
}

TEST_CASE("fuzz inputs replay cleanly through the dataset reader's harness", "[data][fuzz]") {
  replay("records", prefopt::fuzz::records_harness);
}
