#include <catch2/catch.hpp>
#include <elf.h>

#include <cstring>
#include <fstream>

#include "elf_check.h"
#include "registry.h"
#include "support.h"

using namespace prefopt;
namespace fs = std::filesystem;

namespace {
const fs::path kRealPlugin = default_plugin_dir() / "ensemble_mean.so";

fs::path write_bytes(const fs::path& file, const std::string& bytes) {
  std::ofstream(file, std::ios::binary) << bytes;
  return file;
}
}  // namespace

TEST_CASE("a real plugin passes the ELF check", "[elf]") {
  CHECK_FALSE(check_elf_shared_object(kRealPlugin).has_value());
}

TEST_CASE("files that would crash or confuse dlopen are rejected first", "[elf]") {
  test::TempDir dir;
  const std::string real = test::read_file(kRealPlugin);
  REQUIRE(real.size() > 20000);

  SECTION("a text file named .so") {
    auto problem = check_elf_shared_object(write_bytes(dir.path() / "notes.so", "not a library\n"));
    REQUIRE(problem);
    CHECK(problem->starts_with("is not an ELF shared library"));
  }
  SECTION("an empty file") {
    REQUIRE(check_elf_shared_object(write_bytes(dir.path() / "empty.so", "")));
  }
  SECTION("the first 5,000 bytes of a real plugin (dlopen would die of SIGBUS)") {
    auto problem = check_elf_shared_object(write_bytes(dir.path() / "cut.so", real.substr(0, 5000)));
    REQUIRE(problem);
    CHECK(problem->starts_with("is truncated: loadable segment"));
    CHECK(problem->find("the file has 5000 bytes") != std::string::npos);
  }
  SECTION("a 32-bit library") {
    std::string bytes = real;
    bytes[EI_CLASS] = ELFCLASS32;
    CHECK(check_elf_shared_object(write_bytes(dir.path() / "x32.so", bytes)) ==
          "is a 32-bit ELF file; prefopt is 64-bit");
  }
  SECTION("another architecture") {
    std::string bytes = real;
    Elf64_Ehdr header;
    std::memcpy(&header, bytes.data(), sizeof header);
    header.e_machine = EM_RISCV;
    std::memcpy(bytes.data(), &header, sizeof header);
    auto problem = check_elf_shared_object(write_bytes(dir.path() / "riscv.so", bytes));
    REQUIRE(problem);
    CHECK(problem->starts_with("is built for RISC-V"));
  }
  SECTION("program headers pointing past the end") {
    std::string bytes = real;
    Elf64_Ehdr header;
    std::memcpy(&header, bytes.data(), sizeof header);
    header.e_phoff = ~std::uint64_t{0} - 8;  // would overflow a naive offset + size check
    std::memcpy(bytes.data(), &header, sizeof header);
    auto problem = check_elf_shared_object(write_bytes(dir.path() / "phoff.so", bytes));
    REQUIRE(problem);
    CHECK(problem->starts_with("is truncated or corrupt"));
  }
  SECTION("a missing file") {
    auto problem = check_elf_shared_object(dir.path() / "absent.so");
    REQUIRE(problem);
    CHECK(problem->starts_with("cannot be opened"));
  }
}
