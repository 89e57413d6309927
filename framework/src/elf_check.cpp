#include "elf_check.h"

#include <elf.h>
#include <fmt/format.h>

#include <cstring>
#include <fstream>
#include <vector>

namespace prefopt {
namespace {

#if defined(__x86_64__)
constexpr std::uint16_t kHostMachine = EM_X86_64;
#elif defined(__aarch64__)
constexpr std::uint16_t kHostMachine = EM_AARCH64;
#else
#error "add this machine's ELF e_machine value"
#endif

const char* machine_name(std::uint16_t machine) {
  switch (machine) {
    case EM_X86_64: return "x86-64";
    case EM_AARCH64: return "AArch64";
    case EM_386: return "i386";
    case EM_ARM: return "ARM";
    case EM_RISCV: return "RISC-V";
    default: return "another architecture";
  }
}

}  // namespace

std::optional<std::string> check_elf_shared_object(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return fmt::format("cannot be opened for reading: {}", std::strerror(errno));
  in.seekg(0, std::ios::end);
  const auto size = static_cast<std::uint64_t>(in.tellg());
  in.seekg(0);

  Elf64_Ehdr header{};
  if (size < sizeof header || !in.read(reinterpret_cast<char*>(&header), sizeof header) ||
      std::memcmp(header.e_ident, ELFMAG, SELFMAG) != 0)
    return fmt::format("is not an ELF shared library (found {} bytes without the ELF signature)",
                       size);
  if (header.e_ident[EI_CLASS] != ELFCLASS64)
    return "is a 32-bit ELF file; prefopt is 64-bit";
  if (header.e_ident[EI_DATA] != ELFDATA2LSB) return "is a big-endian ELF file";
  if (header.e_type != ET_DYN)
    return "is an ELF file but not a shared library (build it as a MODULE/SHARED library)";
  if (header.e_machine != kHostMachine)
    return fmt::format("is built for {}, but this machine is {}", machine_name(header.e_machine),
                       machine_name(kHostMachine));
  const std::uint64_t table_size = std::uint64_t{header.e_phnum} * sizeof(Elf64_Phdr);
  if (header.e_phentsize != sizeof(Elf64_Phdr) || header.e_phoff > size ||
      table_size > size - header.e_phoff)
    return fmt::format("is truncated or corrupt: its program headers lie past its end ({} bytes)",
                       size);

  std::vector<Elf64_Phdr> segments(header.e_phnum);
  in.seekg(static_cast<std::streamoff>(header.e_phoff));
  in.read(reinterpret_cast<char*>(segments.data()),
          static_cast<std::streamsize>(segments.size() * sizeof(Elf64_Phdr)));
  if (!in) return "could not be read";
  for (std::size_t i = 0; i < segments.size(); ++i) {
    const Elf64_Phdr& segment = segments[i];
    if (segment.p_type != PT_LOAD) continue;
    if (segment.p_offset > size || segment.p_filesz > size - segment.p_offset)
      return fmt::format(
          "is truncated: loadable segment {} ends at byte {} but the file has {} bytes "
          "(an interrupted copy or download?)",
          i, segment.p_offset + segment.p_filesz, size);
  }
  return std::nullopt;
}

}  // namespace prefopt
