#include "broken_cases.h"

#include <fmt/format.h>

#include <unistd.h>

#include <fstream>

#include "prefopt/version.h"
#include "registry.h"
#include "support.h"

namespace prefopt::test {
namespace fs = std::filesystem;

std::vector<BrokenCase> broken_cases(const fs::path& scratch) {
  const std::string api = fmt::format("{}.{}", PREFOPT_API_MAJOR, PREFOPT_API_MINOR);
  std::vector<BrokenCase> cases = {
      {"wrong API major", test_library_dir("wrong_api_major"), 1,
       {fmt::format("built for prefopt SDK API {}.{}", PREFOPT_API_MAJOR + 1, PREFOPT_API_MINOR),
        "this prefopt provides API " + api, "major versions must match"}},
      {"newer API minor", test_library_dir("newer_api_minor"), 1,
       {fmt::format("built for prefopt SDK API {}.{}, newer than this prefopt's API {}",
                    PREFOPT_API_MAJOR, PREFOPT_API_MINOR + 1, api)}},
      {"wrong toolchain fingerprint", test_library_dir("wrong_toolchain"), 1,
       {"built with a different toolchain: compiler othercc-99 (plugin) vs ",
        std::string("expected '") + host_toolchain_fingerprint() + "'",
        "found 'compiler=othercc-99;"}},
      {"no entry symbol", test_library_dir("no_entry"), 1,
       {"exports no 'prefopt_plugin_entry' entry point, so it is not a prefopt plugin library"}},
      {"registration callback throws", test_library_dir("throwing_registration"), 1,
       {"its registration callback failed, so none of its plugins were registered: "
        "calibration table missing"}},
      {"default outside its own range", test_library_dir("bad_default"), 1,
       {"its registration callback failed",
        "plugin 'bad_default': the default of parameter 'p' is invalid: 0.9 is out of range (-inf, 0.5]"}},
      {"two libraries claim one name", test_library_dir("duplicate"), 1,
       {"registers ensemble 'twin', which " + (test_library_dir("duplicate") / "twin_a.so").string() +
        " already provides"}},
  };

  const fs::path text_dir = scratch / "text_file";
  fs::create_directories(text_dir);
  std::ofstream(text_dir / "readme.so") << "This is not a library.\n";
  cases.push_back({"text file named .so", text_dir, 1,
                   {"is not an ELF shared library (found 23 bytes without the ELF signature)"}});

  const fs::path truncated_dir = scratch / "truncated";
  fs::create_directories(truncated_dir);
  const std::string real = read_file(default_plugin_dir() / "ensemble_mean.so");
  std::ofstream(truncated_dir / "ensemble_mean.so", std::ios::binary) << real.substr(0, 5000);
  cases.push_back({"truncated library", truncated_dir, 1,
                   {"is truncated: loadable segment", "the file has 5000 bytes"}});

  // Code anyone could have written is refused: a library writable by every user, and a healthy
  // library in a folder writable by every user (without /tmp's sticky bit).
  const fs::path open_file_dir = scratch / "open_file";
  fs::create_directories(open_file_dir);
  fs::copy_file(default_plugin_dir() / "ensemble_mean.so", open_file_dir / "ensemble_mean.so");
  fs::permissions(open_file_dir / "ensemble_mean.so", fs::perms::others_write, fs::perm_options::add);
  cases.push_back({"library writable by every user", open_file_dir, 1,
                   {"is writable by every user", "not loaded (chmod o-w " + (open_file_dir / "ensemble_mean.so").string()}});
  const fs::path open_dir = scratch / "open_folder";
  fs::create_directories(open_dir);
  fs::copy_file(default_plugin_dir() / "ensemble_mean.so", open_dir / "ensemble_mean.so");
  fs::permissions(open_dir, fs::perms::others_all, fs::perm_options::add);
  cases.push_back({"library in a folder writable by every user", open_dir, 1,
                   {"is in " + open_dir.string() + ", a folder writable by every user"}});
  // In a folder like /tmp (writable by all, sticky), a library another user put there; only root
  // can give a file away, so the case exists where the tests run as root (CI).
  if (::geteuid() == 0) {
    const fs::path shared_dir = scratch / "shared_folder";
    fs::create_directories(shared_dir);
    fs::copy_file(default_plugin_dir() / "ensemble_mean.so", shared_dir / "ensemble_mean.so");
    fs::permissions(shared_dir, fs::perms::others_all | fs::perms::sticky_bit, fs::perm_options::add);
    if (::chown((shared_dir / "ensemble_mean.so").c_str(), 65534, 65534) == 0)
      cases.push_back({"another user's library in a shared folder", shared_dir, 1,
                       {"belongs to another user (uid 65534) in " + shared_dir.string()}});
  }
  return cases;
}

}  // namespace prefopt::test
