#!/usr/bin/env bash
# Configures and builds prefopt (Release) against the libtorch bundled in a PyTorch wheel: a
# CUDA build (2.11.0+cu130 here), so the CUDA code paths compile and link even where no GPU runs
# them. The second build CI runs beside the Debian one, and the build scripts/gpu-check.sh runs
# on a GPU node.
#   scripts/build-wheel.sh [-DOPTION=VALUE...] [TARGET...]     default: every target
# Environment:
#   PREFOPT_PYTHON        a python that imports torch; default: the venv of scripts/install-peers.sh
#   PREFOPT_TORCH_PREFIX  a libtorch's CMake prefix instead of a wheel's
#   PREFOPT_BUILD_DIR     default ./build-wheel
#   TORCH_CUDA_ARCH_LIST  default 9.0 (Hopper, the GPU nodes' H200)
#   PREFOPT_SYSROOT       a folder of unpacked Debian packages (usr/include, usr/lib) to build with,
#                         where they are not installed (the GPU node)
# Exit status: 0 built, 1 the build failed, 2 a missing tool or an unusable wheel.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build_dir=${PREFOPT_BUILD_DIR:-$root/build-wheel}
fail() { echo "build-wheel.sh: $*" >&2; exit 2; }

[[ -z ${PREFOPT_SYSROOT:-} ]] && "$root/scripts/install-deps.sh"
if [[ -n ${PREFOPT_TORCH_PREFIX:-} ]]; then
  torch_prefix=$PREFOPT_TORCH_PREFIX
else
  python=${PREFOPT_PYTHON:-$("$root/scripts/install-peers.sh")}
  torch_prefix=$("$python" -c 'import torch; print(torch.utils.cmake_prefix_path)' 2>/dev/null) ||
    fail "$python cannot import torch"
  [[ $("$python" -c 'import torch; print(int(torch._C._GLIBCXX_USE_CXX11_ABI))') == 1 ]] ||
    fail "this PyTorch wheel uses the pre-C++11 string ABI; Debian's libraries need the C++11 ABI (PyTorch 2.7 and later wheels use it)"
fi
export TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-9.0}

args=(-G Ninja -DCMAKE_BUILD_TYPE=Release "-DPREFOPT_CUDA_ARCH_LIST=$TORCH_CUDA_ARCH_LIST" "-DCMAKE_PREFIX_PATH=$torch_prefix${PREFOPT_SYSROOT:+;$PREFOPT_SYSROOT/usr}")
if [[ -n ${PREFOPT_SYSROOT:-} ]]; then
  args+=("-DCMAKE_CXX_FLAGS=-isystem $PREFOPT_SYSROOT/usr/include")
  export PATH=$PATH:$PREFOPT_SYSROOT/usr/bin  # ninja, where the machine has none
fi
# The wheel's CMake package looks for the CUDA toolkit (nvcc and its headers) it was built for.
nvcc=$(command -v nvcc || echo "${CUDA_HOME:-/usr/local/cuda}/bin/nvcc")
if [[ -x $nvcc ]]; then
  args+=("-DCUDAToolkit_ROOT=$(dirname "$(dirname "$nvcc")")")
else
  echo "build-wheel.sh: no nvcc on PATH or in CUDA_HOME; the wheel's CMake package may not configure without the CUDA toolkit" >&2
fi

targets=()
for arg in "$@"; do
  if [[ $arg == -D* ]]; then args+=("$arg"); else targets+=(--target "$arg"); fi
done
# Configuring again takes the options given now (a configured build keeps earlier ones otherwise).
cmake -S "$root" -B "$build_dir" "${args[@]}" >/dev/null || { echo "build-wheel.sh: configure failed" >&2; exit 1; }
cmake --build "$build_dir" --parallel "$(nproc)" "${targets[@]}" || exit 1
