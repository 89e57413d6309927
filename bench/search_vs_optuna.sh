#!/usr/bin/env bash
# prefopt's search samplers against Optuna's (PyPI, in the peers' venv) on standard test functions
# at an equal budget; prints a Markdown table (docs/performance.md keeps the last one).
#   bench/search_vs_optuna.sh [BUDGET] [SEEDS] [BUILD_DIR]      # default 50 evaluations, 10 seeds
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${3:-$root/build}
python=$("$root/scripts/install-peers.sh")
cmake --build "$build" --target prefopt_search_quality >/dev/null
# One thread each: the samplers are compared, not the machine's parallelism.
OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 \
  "$python" "$root/bench/search_vs_optuna.py" "$build/bin/prefopt_search_quality" "${1:-50}" "${2:-10}"
