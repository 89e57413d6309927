#!/usr/bin/env bash
# Installs prefopt from BUILD_DIR into a temporary prefix, builds the out-of-tree example plugin
# in EXAMPLE_DIR against that prefix only, and checks that the installed prefopt lists it through
# PREFOPT_PLUGIN_PATH (and still lists its own built-in plugins).
#   third_party_plugin_test.sh BUILD_DIR EXAMPLE_DIR
set -euo pipefail
build_dir=$1 example_dir=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
prefix=$work/prefix

cmake --install "$build_dir" --prefix "$prefix" >"$work/install.log"
test -x "$prefix/bin/prefopt"
test -f "$prefix/include/prefopt/plugin.h"
test -f "$prefix/lib/cmake/prefopt/prefoptConfig.cmake"
test -f "$prefix/lib/prefopt/plugins/ensemble_mean.so"

launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
cmake -S "$example_dir" -B "$work/example" -G Ninja -DCMAKE_PREFIX_PATH="$prefix" "${launcher[@]}" \
  >"$work/configure.log" || { cat "$work/configure.log"; exit 1; }
cmake --build "$work/example" >"$work/build.log" || { cat "$work/build.log"; exit 1; }
plugin=$work/example/ensemble_quantile.so
test -f "$plugin"
# find_package(prefopt) leaves the project's build type alone (none here); its plugin is built as
# prefopt was, so the fingerprint matches.
grep -qx "CMAKE_BUILD_TYPE:STRING=" "$work/example/CMakeCache.txt" ||
  { echo "find_package(prefopt) changed the project's CMAKE_BUILD_TYPE:"; grep CMAKE_BUILD_TYPE "$work/example/CMakeCache.txt"; exit 1; }

# The installed binary must not depend on the build tree.
list=$(env -u LD_LIBRARY_PATH PREFOPT_PLUGIN_PATH="$work/example" "$prefix/bin/prefopt" plugins list)
echo "$list"
grep -Eq "^ensemble +quantile +1.0.0 .*ensemble_quantile.so$" <<<"$list"
grep -Eq "^ensemble +mean " <<<"$list"
show=$(PREFOPT_PLUGIN_PATH="$work/example" "$prefix/bin/prefopt" plugins show quantile)
echo "$show"
grep -q "Library      $plugin" <<<"$show"
grep -q "q  float  default 0.25  \[0, 1\]" <<<"$show"
grep -q "interpolation  string  default \"linear\"  one of: linear, lower, higher, midpoint, nearest" <<<"$show"
echo "third-party plugin built against the installed SDK and listed"
