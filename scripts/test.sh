#!/usr/bin/env bash
# The whole test suite: installs what is missing (with Slurm's packages, for the [slurm] tests
# that ctest runs against a single-node Slurm it starts), builds, runs every test with ctest.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build_dir=${PREFOPT_BUILD_DIR:-$root/build}

"$root/scripts/install-deps.sh" --slurm
"$root/scripts/build.sh"
ctest --test-dir "$build_dir" --output-on-failure --parallel "$(nproc)" "$@"
