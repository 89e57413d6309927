#!/usr/bin/env bash
# Records this commit's SDK as the ABI baseline of its major version, at a major release: builds
# the SDK with debug information on its types (target prefopt_sdk_abi) in ./build (or
# $PREFOPT_BUILD_DIR), writes framework/sdk/abi/sdk-<API>.abi.xz (abidw's XML, which compresses
# 30-fold) and baseline.cmake (API, commit,
# toolchain), and removes the previous major's description. Commit both files with the release.
#   scripts/abi-baseline.sh
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build_dir=${PREFOPT_BUILD_DIR:-$root/build}
abi_dir=$root/framework/sdk/abi

[[ -z $(git -C "$root" status --porcelain -- framework/include framework/sdk ':(exclude)framework/sdk/abi') ]] ||
  { echo "abi-baseline.sh: commit the SDK first: the baseline names the commit its headers come from" >&2; exit 1; }
command -v abidw >/dev/null || { echo "abi-baseline.sh: needs abidw (apt-get install abigail-tools)" >&2; exit 1; }
[[ -f $build_dir/CMakeCache.txt ]] || "$root/scripts/build.sh"
api() { sed -nE "s/^#define PREFOPT_API_$1 ([0-9]+)$/\1/p" "$root/framework/include/prefopt/version.h"; }
version="$(api MAJOR).$(api MINOR)"
toolchain=$(sed -nE 's/^PREFOPT_TOOLCHAIN:INTERNAL=(.*)$/\1/p' "$build_dir/CMakeCache.txt")
[[ -n $toolchain ]] || { echo "abi-baseline.sh: $build_dir predates the ABI check; reconfigure it (scripts/build.sh)" >&2; exit 1; }

# The new baseline replaces the old one only once it is made.
previous=$(cat "$abi_dir/baseline.cmake")
trap 'echo "$previous" >"$abi_dir/baseline.cmake"; rm -f "$abi_dir/sdk.abi.xz.tmp"' ERR
cat >"$abi_dir/baseline.cmake" <<EOF
# The SDK release whose ABI every later minor version of the same major keeps. Written, with
# sdk-<API>.abi.xz beside it, by scripts/abi-baseline.sh when a major version is released.
#   API        the release's SDK API version
#   COMMIT     the commit it was released from: its public headers build the older-minor test plugin
#   TOOLCHAIN  compiler and libtorch the ABI description was made with (only that build checks it)
set(PREFOPT_ABI_BASELINE_API $version)
set(PREFOPT_ABI_BASELINE_COMMIT $(git -C "$root" rev-parse HEAD))
set(PREFOPT_ABI_BASELINE_TOOLCHAIN "$toolchain")
EOF
cmake --build "$build_dir" --target prefopt_sdk_abi
abidw --no-corpus-path --no-comp-dir-path --drop-private-types --headers-dir "$root/framework/include/prefopt" \
  "$build_dir/abi/libprefopt.so" | xz -9 >"$abi_dir/sdk.abi.xz.tmp"
trap - ERR
rm -f "$abi_dir"/sdk-*.abi.xz
mv "$abi_dir/sdk.abi.xz.tmp" "$abi_dir/sdk-$version.abi.xz"
echo "abi-baseline.sh: SDK $version ($toolchain): $abi_dir/sdk-$version.abi.xz, $(wc -c <"$abi_dir/sdk-$version.abi.xz") bytes"
