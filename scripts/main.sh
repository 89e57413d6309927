#!/usr/bin/env bash
# The main job: installs what is missing, builds, then shows what prefopt can run — every plugin
# found on the plugin search path, and the parameter schema of each (the default comparison
# sweep replaces this once the pipeline and algorithms exist).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build_dir=${PREFOPT_BUILD_DIR:-$root/build}

"$root/scripts/build.sh" >&2
prefopt=$build_dir/bin/prefopt
"$prefopt" --version
echo
"$prefopt" plugins list
"$prefopt" plugins list | awk 'NR > 1 && NF >= 2 && $1 !~ /^\(/ { print $1, $2 }' |
  while read -r kind name; do
    echo
    "$prefopt" plugins show "$name" --kind "$kind"
  done
