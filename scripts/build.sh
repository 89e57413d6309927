#!/usr/bin/env bash
# Installs what is missing (Debian packages), then configures and builds prefopt (Release) in
# ./build, or in $PREFOPT_BUILD_DIR. Re-running only rebuilds what changed; -D options (and
# PREFOPT_BUILD_TYPE) given again reconfigure the existing build with them.
#   scripts/build.sh [-DOPTION=VALUE...]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build_dir=${PREFOPT_BUILD_DIR:-$root/build}

"$root/scripts/install-deps.sh"
if [[ ! -f "$build_dir/build.ninja" ]]; then
  cmake -S "$root" -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE="${PREFOPT_BUILD_TYPE:-Release}" "$@"
elif [[ $# -gt 0 || -n ${PREFOPT_BUILD_TYPE:-} ]]; then
  cmake "$build_dir" ${PREFOPT_BUILD_TYPE:+-DCMAKE_BUILD_TYPE="$PREFOPT_BUILD_TYPE"} "$@"
fi
cmake --build "$build_dir" --parallel "$(nproc)"
