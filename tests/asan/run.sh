#!/usr/bin/env bash
# Configures, builds and runs the sanitized plugin-boundary test (CMakeLists.txt here).
#   run.sh BUILD_DIR TORCH_INCLUDE_DIR...   (libtorch's include folders)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
build=$1
shift
torch_includes=$(IFS=';'; echo "$*")
launcher=()
if command -v ccache >/dev/null; then
  launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
  export CCACHE_BASEDIR=$(cd "$here/../.." && pwd)
fi
cmake -S "$here" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE= "-DPREFOPT_TORCH_INCLUDE_DIRS=$torch_includes" "${launcher[@]}" >/dev/null
cmake --build "$build"
# Leaks too: the registry owns what it loads, and a plugin shares its info rather than copy it.
ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1 "$build/plugin_boundary_test"
