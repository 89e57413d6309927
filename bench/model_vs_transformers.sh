#!/usr/bin/env bash
# prefopt's Hugging Face decoder against transformers on the same work (bench/model_bench.cpp,
# bench/model_vs_transformers.py): a GPT-2-small-shaped model, greedy sampling tokens/s and DPO
# step tokens/s, both at the same thread count. The comparison is fair on the same libtorch: run
# it with the wheel's build (PREFOPT_BUILD_DIR=build-wheel, scripts/build-wheel.sh), whose
# libtorch is the venv's torch; with ./build (Debian's libtorch 1.13) it says so.
#   bench/model_vs_transformers.sh [THREADS]       default: all cores
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build_dir=${PREFOPT_BUILD_DIR:-$root/build-wheel}
[[ -x $build_dir/bin/prefopt_bench_model ]] || { echo "model_vs_transformers.sh: build $build_dir first" >&2; exit 1; }
python=$("$root/scripts/install-peers.sh")
threads=${1:-$(nproc)}
export OMP_NUM_THREADS=$threads OPENBLAS_NUM_THREADS=$threads MKL_NUM_THREADS=$threads

ours=$("$build_dir/bin/prefopt_bench_model" --benchmark_format=json 2>/dev/null)
theirs=$("$python" "$root/bench/model_vs_transformers.py" "$threads" 2>/dev/null | tail -1)
"$python" - "$ours" "$theirs" "$build_dir" "$threads" <<'PY'
import json, sys
ours = {b["name"].split("/")[0]: b["items_per_second"] for b in json.loads(sys.argv[1])["benchmarks"]}
theirs = json.loads(sys.argv[2])
print(f"GPT-2-small shape, {sys.argv[4]} threads, prefopt from {sys.argv[3]}, transformers attention: {theirs['attention']}")
print(f"{'work':<34}{'prefopt':>12}{'transformers':>14}{'ratio':>8}")
for label, mine, other in [("greedy sampling, tokens/s", ours["BM_GreedySample"], theirs["sample_tokens_per_second"]),
                           ("DPO step, tokens/s", ours["BM_DpoStep"], theirs["dpo_tokens_per_second"])]:
    print(f"{label:<34}{mine:>12.1f}{other:>14.1f}{mine / other:>8.2f}")
PY
