#!/usr/bin/env bash
# The GPU check: on a GPU node with PyTorch 2.x (a wheel: its libtorch has CUDA), a C++ compiler
# and CMake, without internet and without Debian packages. It unpacks the packages that
# scripts/fetch-gpu-deps.sh fetched into .gpu-deps (carry that folder along), configures prefopt
# against the wheel's libtorch, builds it (Release), runs the tests tagged [cuda] (plus the quick
# device-independent [runtime] and [policy] ones) and the GPU benchmarks, and writes into OUT_DIR:
#   summary.md       machine, versions, phase times, test results, the benchmark table
#   tests.txt        the test run's output
#   bench-gpu.txt    the benchmarks' raw output
#   bench-model.txt  a GPT-2-small-shaped Hugging Face decoder on cuda:0 in bfloat16 (sampling, DPO step)
#   build.log
# Exit status: 0 when everything built and passed, 1 otherwise, 2 for bad usage or a missing tool.
#   scripts/gpu-check.sh OUT_DIR
# PREFOPT_GPU_DEPS (default .gpu-deps) says where the packages are; PREFOPT_TORCH_PREFIX, a
# libtorch's CMake prefix, replaces the wheel's (to try the script on a machine without one).
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
[[ $# -eq 1 ]] || { echo "usage: scripts/gpu-check.sh OUT_DIR" >&2; exit 2; }
out=$(realpath -m "$1")
deps=${PREFOPT_GPU_DEPS:-$root/.gpu-deps}
build=$root/build-gpu
sysroot=$build/sysroot
mkdir -p "$out" "$build"
summary=$out/summary.md
started=$SECONDS
fail() { echo "gpu-check: $*" | tee -a "$summary" >&2; exit "${2:-1}"; }
phase() { printf -- '- %s: %s (%d s)\n' "$1" "$2" "$((SECONDS - phase_start))" >>"$summary"; phase_start=$SECONDS; }

echo "# prefopt GPU check, $(date -u +%Y-%m-%dT%H:%MZ), commit $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)" >"$summary"
echo >>"$summary"

# ---- Tools and the wheel ------------------------------------------------------------------
compiler=$(command -v c++ || command -v g++ || command -v clang++) || fail "no C++ compiler (c++, g++ or clang++) on PATH" 2
command -v cmake >/dev/null || fail "no cmake on PATH" 2
if [[ -n ${PREFOPT_TORCH_PREFIX:-} ]]; then
  torch_prefix=$PREFOPT_TORCH_PREFIX
  torch_about="libtorch from PREFOPT_TORCH_PREFIX=$torch_prefix"
else
  torch_prefix=$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)') || fail "python3 cannot import torch" 2
  torch_about=$(python3 -c 'import torch; print(f"PyTorch {torch.__version__}, CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}")')
  abi=$(python3 -c 'import torch; print(int(torch._C._GLIBCXX_USE_CXX11_ABI))')
  [[ $abi == 1 ]] || fail "this PyTorch wheel uses the pre-C++11 string ABI; Debian's libraries need the C++11 ABI (PyTorch 2.7 and later wheels use it)" 2
  capability=$(python3 -c 'import torch; assert torch.cuda.is_available(); print("%d.%d" % torch.cuda.get_device_capability())') ||
    fail "PyTorch sees no CUDA device here (driver, CUDA_VISIBLE_DEVICES?): nothing to check" 2
  export TORCH_CUDA_ARCH_LIST=$capability  # no detection at configure time
fi
{
  echo "- machine: $(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null | head -1 || echo 'no nvidia-smi'); $(nproc) cores"
  echo "- $torch_about"
  echo "- compiler: $("$compiler" --version | head -1); $(cmake --version | head -1)"
} >>"$summary"

# ---- Packages -----------------------------------------------------------------------------
phase_start=$SECONDS
shopt -s nullglob
debs=("$deps"/*.deb)
[[ ${#debs[@]} -gt 0 ]] || fail "no packages in $deps: run scripts/fetch-gpu-deps.sh on a Debian 12 machine first and carry the folder" 2
rm -rf "$sysroot" && mkdir -p "$sysroot"
for deb in "${debs[@]}"; do
  if command -v dpkg-deb >/dev/null; then
    dpkg-deb -x "$deb" "$sysroot" || fail "cannot unpack $deb"
  else  # a .deb is an ar archive holding data.tar.{xz,zst,gz}
    member=$(ar t "$deb" | grep '^data\.tar') || fail "cannot read $deb"
    case $member in
      *.xz) decompress=(-J) ;; *.zst) decompress=(--zstd) ;; *.gz) decompress=(-z) ;; *) decompress=() ;;
    esac
    ar p "$deb" "$member" | tar -x "${decompress[@]}" -C "$sysroot" || fail "cannot unpack $deb"
  fi
done
export PATH=$PATH:$sysroot/usr/bin  # ninja, where the node has none
export LD_LIBRARY_PATH=$sysroot/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
phase "packages" "${#debs[@]} unpacked into $sysroot"

# ---- Configure and build (scripts/build-wheel.sh, as CI's wheel build) ----------------------
if ! PREFOPT_TORCH_PREFIX=$torch_prefix PREFOPT_SYSROOT=$sysroot PREFOPT_BUILD_DIR=$build CXX=$compiler \
    "$root/scripts/build-wheel.sh" prefopt_tests prefopt_bench_gpu prefopt_bench_model >"$out/build.log" 2>&1; then
  grep -m 20 -E "error|Error" "$out/build.log" >&2
  fail "configure or build failed: see build.log"
fi
phase "build" "Release against $torch_prefix: prefopt_tests, prefopt_bench_gpu, prefopt_bench_model"

# ---- Tests and benchmarks -----------------------------------------------------------------
status=0
"$build/bin/prefopt_tests" "[cuda],[runtime],[policy]" --durations yes >"$out/tests.txt" 2>&1 || status=1
if [[ -z ${PREFOPT_TORCH_PREFIX:-} ]] && grep -q "prefopt-test-skipped:" "$out/tests.txt"; then
  status=1  # the wheel sees the GPU, so a [cuda] test that skipped did not
  echo "- a [cuda] test skipped although PyTorch sees a GPU: see tests.txt" >>"$summary"
fi
phase "tests" "$(grep -E '^(All tests passed|test cases:)' "$out/tests.txt" | tail -1)"
"$build/bin/prefopt_bench_gpu" --benchmark_min_time=0.5 >"$out/bench-gpu.txt" 2>&1 || status=1
# A GPT-2-small-shaped Hugging Face decoder: greedy sampling and a DPO step, bfloat16 on cuda:0.
"$build/bin/prefopt_bench_model" --device=cuda --dtype=bfloat16 >"$out/bench-model.txt" 2>&1 || status=1
phase "benchmarks" "exit $([[ $status == 0 ]] && echo 0 || echo 'see bench-gpu.txt, bench-model.txt')"

{
  echo
  echo "Total $((SECONDS - started)) s. Tests that skipped for want of a GPU say so in tests.txt."
  echo
  echo '```'
  sed -n '/^summary/,$p' "$out/bench-gpu.txt"
  grep -m 1 "no CUDA device" "$out/bench-gpu.txt"
  grep -E "^BM_" "$out/bench-model.txt"
  echo '```'
} >>"$summary"
cat "$summary"
exit $status
