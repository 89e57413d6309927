#!/usr/bin/env bash
# The benchmark suite: builds, then runs sampling with and without the KV cache and SFT steps
# (policy), a PPO iteration split into generation, scoring and training, DPO and ORPO steps
# (algorithm), and framework overhead against a bare libtorch loop plus model FLOP utilization
# against this machine's measured matmul peak (overhead), which ends with a summary table, and
# on a machine with CUDA the GPU-sized benchmarks (gpu), with their own table.
# Arguments go to every Google Benchmark binary (e.g. --benchmark_min_time=1).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build_dir=${PREFOPT_BUILD_DIR:-$root/build}
"$root/scripts/build.sh" >/dev/null
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(date -u +%F)"
for suite in policy algorithm; do
  echo
  echo "== prefopt_bench_$suite"
  "$build_dir/bin/prefopt_bench_$suite" --benchmark_color=false "$@"
done
# Overhead compares two loops a few percent apart: medians of 5 repetitions, run interleaved in
# random order (run one after the other, the second of a pair measured up to 8% off).
echo
echo "== prefopt_bench_overhead"
"$build_dir/bin/prefopt_bench_overhead" --benchmark_color=false --benchmark_repetitions=5 \
  --benchmark_enable_random_interleaving=true --benchmark_report_aggregates_only=true "$@"
# GPU-sized benchmarks (a GPT-2-small-sized policy on cuda:0); says so and returns without a GPU.
echo
echo "== prefopt_bench_gpu"
"$build_dir/bin/prefopt_bench_gpu" --benchmark_color=false "$@"
