#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (fuzz/CMakeLists.txt) and runs each for SECONDS
# (default 300, so the four together run 20 minutes). Crashes land in build-fuzz/crashes/; copy a
# fixed one to fuzz/regressions/<target>/ so the test suite replays it from then on.
#   scripts/fuzz.sh [SECONDS] [TARGET...]      targets: override compose safetensors records
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
seconds=${1:-300}
shift || true
targets=(override compose safetensors records)
[[ $# -gt 0 ]] && targets=("$@")
clang=$(command -v clang++-14 || command -v clang++ || true)
[[ -n "$clang" ]] || { echo "fuzzing needs clang++ (Debian: apt-get install clang-14 libclang-rt-14-dev)" >&2; exit 1; }
"$root/scripts/install-deps.sh"

build=$root/build-fuzz
cmake -S "$root/fuzz" -B "$build" -G Ninja -DCMAKE_CXX_COMPILER="$clang" >/dev/null
cmake --build "$build"
mkdir -p "$build/crashes"
for target in "${targets[@]}"; do
  corpus=$build/corpus/$target
  mkdir -p "$corpus"
  echo "== fuzzing $target for ${seconds}s" >&2
  "$build/${target}_fuzzer" "$corpus" "$root/fuzz/corpus/$target" "$root/fuzz/regressions/$target" \
    -max_total_time="$seconds" -max_len=4096 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$build/crashes/$target-"
done
