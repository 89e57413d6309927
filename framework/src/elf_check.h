// Checks that a file is a loadable ELF shared object for this machine *before* dlopen sees it.
//
// dlopen of a truncated ELF library kills the process with SIGBUS (the loader maps segments past
// the end of the file), and so does boost::dll::library_info. Reading the headers ourselves turns
// that into an error message; a sweep must never die because of one bad file in a plugin folder.
#pragma once

#include <filesystem>
#include <optional>
#include <string>

namespace prefopt {

// nullopt when the file looks loadable; otherwise what is wrong with it, phrased to follow
// "<file>: ".
std::optional<std::string> check_elf_shared_object(const std::filesystem::path& file);

}  // namespace prefopt
