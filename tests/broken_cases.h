// The broken plugin libraries the registry and CLI tests share: each case is a folder holding the
// broken file(s) and the message fragments its load problem must contain.
#pragma once

#include <cstddef>
#include <filesystem>
#include <string>
#include <vector>

namespace prefopt::test {

struct BrokenCase {
  std::string name;
  std::filesystem::path dir;
  std::size_t problems = 1;
  std::vector<std::string> expected;  // fragments of the (last) problem's message
};

// Builds the cases made at run time (a text file and a truncated library) under `scratch`.
std::vector<BrokenCase> broken_cases(const std::filesystem::path& scratch);

}  // namespace prefopt::test
