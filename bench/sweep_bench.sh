#!/usr/bin/env bash
# Sweep benchmarks (the launcher is processes and files, so a script rather than Google Benchmark):
#   1. launcher overhead per trial: a 12-trial sweep against the same 12 `prefopt run`s in a loop,
#      both on a warm stage cache, so only the launcher's own work differs;
#   2. stage sharing: a 12-trial sweep of the comparison experiment at its default sizes (4
#      algorithms x 3 flip rates, 20 updates each: one base policy, three preference sets and
#      reward ensembles) with the stage cache against the same sweep with --no-cache (goal <= 0.35x).
#   bench/sweep_bench.sh [BUILD_DIR]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
prefopt=${1:-$root/build}/bin/prefopt
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { print b - a }'; }
calc() { awk "BEGIN { print $1 }"; }

tiny=(policy.width=16 sft.steps=20 sft.corpus_size=256 preferences.pairs=64 preferences.held_out=32
      reward_models.members=1 eval.prompts=16 train.steps=2 train.eval_every=2)
exp=$root/experiments/comparison.toml
"$prefopt" run "$exp" "${tiny[@]}" --out "$work/warm" --cache "$work/cache" >/dev/null 2>&1

rates=(1e-4 2e-4 3e-4 4e-4 5e-4 6e-4 7e-4 8e-4 9e-4 1e-3 2e-3 3e-3)
start=$(now)
for rate in "${rates[@]}"; do
  "$prefopt" run "$exp" "${tiny[@]}" algorithm=dpo "algorithm.learning_rate=$rate" --out "$work/loop/$rate" \
    --cache "$work/cache" >/dev/null 2>&1
done
loop=$(elapsed "$start" "$(now)")
start=$(now)
"$prefopt" run -m "$exp" "${tiny[@]}" algorithm=dpo "algorithm.learning_rate=$(IFS=,; echo "${rates[*]}")" \
  --out "$work/sweep" --cache "$work/cache" >/dev/null 2>&1
sweep=$(elapsed "$start" "$(now)")
overhead=$(calc "($sweep - $loop) / 12 * 1000")
# The launcher's own time: the sweep's wall time less the time its trial processes ran.
trial_seconds=$(cat "$work"/sweep/*/status.json | awk -F'[:,]' '/"seconds"/ { s += $2 } END { print s }')
own=$(calc "($sweep - $trial_seconds) / 12 * 1000")

small=(train.steps=20 train.eval_every=10 eval.prompts=64
       "algorithm=dpo,orpo,simpo,kto" "annotator.rate=0.0,0.1,0.25")
start=$(now)
"$prefopt" run -m "$exp" "${small[@]}" --out "$work/shared" --cache "$work/shared-cache" >/dev/null 2>&1
shared=$(elapsed "$start" "$(now)")
start=$(now)
"$prefopt" run -m "$exp" "${small[@]}" --out "$work/alone" --no-cache >/dev/null 2>&1
alone=$(elapsed "$start" "$(now)")

printf '%-58s %10s\n' "benchmark" "result"
printf '%-58s %9.1fs\n' "12 trials as 12 prefopt runs in a loop (warm cache)" "$loop"
printf '%-58s %9.1fs\n' "the same 12 trials as one sweep (run -m)" "$sweep"
printf '%-58s %8.0fms\n' "sweep minus loop, per trial" "$overhead"
printf '%-58s %8.0fms\n' "launcher's own time per trial (wall minus trial processes)" "$own"
printf '%-58s %9.1fs\n' "12-trial sweep sharing stages" "$shared"
printf '%-58s %9.1fs\n' "the same sweep with --no-cache" "$alone"
printf '%-58s %9.2fx\n' "shared / no-cache (goal <= 0.35)" "$(calc "$shared / $alone")"
