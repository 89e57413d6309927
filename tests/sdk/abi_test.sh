#!/usr/bin/env bash
# Within a major version the SDK keeps the ABI of the major's release: abidiff between that
# release's description (framework/sdk/abi/sdk-<API>.abi.xz, abidw's XML) and this build's SDK with debug
# information (the prefopt_sdk_abi target) may find added functions and variables, nothing else.
# A removed function, a changed signature, or a changed type that a function reaches (a member
# added to a struct, a virtual function added to a class) is a major bump: then the new release's
# description is recorded with scripts/abi-baseline.sh.
#   abi_test.sh BASELINE_ABI_XZ LIBPREFOPT VERSION_H
# Exits 77 (reported as skipped) where abidiff is missing.
set -euo pipefail
baseline=$1 library=$2 version_h=$3

command -v abidiff >/dev/null || { echo "skipped: no abidiff (Debian's abigail-tools)"; exit 77; }
api() { sed -nE "s/^#define PREFOPT_API_$1 ([0-9]+)$/\1/p" "$version_h"; }
current="$(api MAJOR).$(api MINOR)"
released=$(basename "$baseline" .abi.xz)
released=${released#sdk-}
if [[ ${current%%.*} != "${released%%.*}" ]]; then
  echo "FAIL: the SDK is API $current, but the ABI baseline is the $released release's; a new major"
  echo "      version records its own: scripts/abi-baseline.sh"
  exit 1
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
xz -dc "$baseline" >"$work/baseline.abi"
status=0
report=$(abidiff --no-show-locs "$work/baseline.abi" "$library") || status=$?
echo "abidiff SDK $released (baseline) -> $current (this build), exit status $status:"
echo "$report"
# abidiff's status is a bit set: 1 error, 2 usage error, 4 ABI change, 8 incompatible change.
if ((status & 3)); then
  echo "FAIL: abidiff could not compare the two"
  exit 1
fi
# Additions alone are compatible; every summary line must report 0 removed and 0 changed.
incompatible=$(grep -E "summary: .*[1-9][0-9]* (Removed|Changed)" <<<"$report" || true)
if ((status & 8)) || [[ -n $incompatible ]]; then
  echo "FAIL: SDK $current is not ABI-compatible with $released: removals and changes above need a"
  echo "      major version bump (framework/include/prefopt/version.h, docs/writing-a-plugin.md)"
  exit 1
fi
echo "SDK $current keeps the ABI of $released"
