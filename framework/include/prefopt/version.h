// The SDK boundary's version and the toolchain fingerprint.
//
// A plugin library records both when it is compiled (through PREFOPT_PLUGIN_LIBRARY in plugin.h);
// prefopt compares them with its own before it touches any C++ object of the library:
//   - the API major version must be equal: a major bump changes an interface incompatibly;
//   - the plugin's API minor version must be <= prefopt's: a minor bump only adds things, so an
//     older plugin runs on a newer prefopt but not the other way round;
//   - the toolchain fingerprint must be equal: C++ objects (std::string, torch::Tensor, vtables)
//     cross the boundary, so compiler family and major version, the libstdc++ string ABI, the
//     libtorch version and the build type must all agree.
#pragma once

#include <cstddef>  // defines _GLIBCXX_USE_CXX11_ABI

#include <torch/version.h>

#include "prefopt/export.h"

// See docs/writing-a-plugin.md, "Versions and compatibility", for what bumps which.
#define PREFOPT_API_MAJOR 3
#define PREFOPT_API_MINOR 2

#define PREFOPT_STRINGIFY_(x) #x
#define PREFOPT_STRINGIFY(x) PREFOPT_STRINGIFY_(x)

#if defined(__clang__)
#define PREFOPT_COMPILER_ "clang-" PREFOPT_STRINGIFY(__clang_major__)
#elif defined(__GNUC__)
#define PREFOPT_COMPILER_ "gcc-" PREFOPT_STRINGIFY(__GNUC__)
#else
#error "prefopt plugins are built with GCC or Clang"
#endif

// The build type is set by prefopt's CMake (and by prefopt_add_plugin for third-party plugins).
#ifndef PREFOPT_BUILD_TYPE
#define PREFOPT_BUILD_TYPE unknown
#endif

// "compiler=gcc-12;cxx11abi=1;libtorch=1.13.0;build=Release": ';'-separated key=value pairs so a
// mismatch message can say which part differs.
#define PREFOPT_TOOLCHAIN_FINGERPRINT                                          \
  "compiler=" PREFOPT_COMPILER_                                                \
  ";cxx11abi=" PREFOPT_STRINGIFY(_GLIBCXX_USE_CXX11_ABI)                      \
  ";libtorch=" PREFOPT_STRINGIFY(TORCH_VERSION_MAJOR) "." PREFOPT_STRINGIFY( \
      TORCH_VERSION_MINOR) "." PREFOPT_STRINGIFY(TORCH_VERSION_PATCH)          \
  ";build=" PREFOPT_STRINGIFY(PREFOPT_BUILD_TYPE)


namespace prefopt {

// The fingerprint and API version of the running prefopt (libprefopt), for comparison with a
// plugin's. Both are fixed when libprefopt is compiled.
PREFOPT_API const char* host_toolchain_fingerprint();
PREFOPT_API const char* version_string();  // the prefopt release, e.g. "0.1.0"

}  // namespace prefopt
