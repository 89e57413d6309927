#!/usr/bin/env bash
# Scale soak of the local launcher: a sweep of N tiny DPO trials (default 1,000; one update each,
# sharing one base policy and reward model through a warm stage cache, so the trials are nearly
# all process start, files and bookkeeping) with --jobs J (default 2). Reports:
#   - wall time and trials per minute; per trial, the wall time of a job slot split into the trial's
#     own run (status.json's seconds) and the rest: process start (exec, libtorch and plugin
#     loading) and the launcher's bookkeeping;
#   - the launcher's peak memory (GNU time's maximum resident set size);
#   - files and bytes per trial folder;
#   - resuming the finished sweep (every trial kept: the manifest check, the index, the report);
#   - `prefopt results` on it, and the report's size.
#   bench/soak.sh [BUILD_DIR] [TRIALS] [JOBS]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
prefopt=${1:-$root/build}/bin/prefopt
trials=${2:-1000}
jobs=${3:-2}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
command -v /usr/bin/time >/dev/null || { echo "bench/soak.sh needs GNU time (Debian's time package)"; exit 1; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { print b - a }'; }
calc() { awk "BEGIN { print $1 }"; }

tiny='"algorithm=dpo", "policy.width=16", "sft.steps=20", "sft.corpus_size=256", "preferences.pairs=64",
             "preferences.held_out=32", "reward_models.members=1", "eval.prompts=16", "train.steps=1",
             "train.eval_every=1"'
cat >"$work/soak.toml" <<EOF
experiment = "$root/experiments/comparison.toml"
overrides = [$tiny]
[grid]
"algorithm.beta" = "range(1,$((trials + 1)))"   # not a stage input: every trial reuses the stages
EOF
"$prefopt" run "$root/experiments/comparison.toml" algorithm=dpo policy.width=16 sft.steps=20 sft.corpus_size=256 \
  preferences.pairs=64 preferences.held_out=32 reward_models.members=1 eval.prompts=16 train.steps=1 \
  train.eval_every=1 --out "$work/warm" --cache "$work/cache" >/dev/null 2>&1

start=$(now)
/usr/bin/time -f '%M' -o "$work/rss" "$prefopt" sweep "$work/soak.toml" --out "$work/sweep" --cache "$work/cache" \
  --jobs "$jobs" >/dev/null 2>"$work/sweep.err"
wall=$(elapsed "$start" "$(now)")
finished=$(grep -l '"state": *"finished"' "$work"/sweep/*/status.json | wc -l)
trial_seconds=$(cat "$work"/sweep/*/status.json | awk -F'[:,]' '/"seconds"/ { s += $2 } END { print s }')
first=$(find "$work/sweep" -mindepth 1 -maxdepth 1 -type d | head -1)
files=$(find "$first" -type f | wc -l)
bytes=$(du -sk --apparent-size "$work"/sweep/*/ | awk '{ s += $1 } END { print s / NR }')

start=$(now)
"$prefopt" sweep "$work/soak.toml" --out "$work/sweep" --cache "$work/cache" --jobs "$jobs" >/dev/null 2>&1
resume=$(elapsed "$start" "$(now)")
start=$(now)
"$prefopt" results "$work/sweep" >/dev/null
results=$(elapsed "$start" "$(now)")

printf '%-62s %12s\n' "soak: $trials tiny trials, --jobs $jobs, warm stage cache" "result"
printf '%-62s %11s\n' "trials finished" "$finished/$trials"
printf '%-62s %10.1fs\n' "wall time" "$wall"
printf '%-62s %11.1f\n' "trials per minute" "$(calc "$trials / $wall * 60")"
printf '%-62s %10.2fs\n' "per trial: wall x jobs / trials" "$(calc "$wall * $jobs / $trials")"
printf '%-62s %10.2fs\n' "  of which the trial's own run (status.json seconds)" "$(calc "$trial_seconds / $trials")"
printf '%-62s %10.2fs\n' "  the rest: process start (libtorch, plugins) and the launcher" \
  "$(calc "($wall * $jobs - $trial_seconds) / $trials")"
printf '%-62s %9.0fMB\n' "launcher's peak memory (max RSS)" "$(calc "$(cat "$work/rss") / 1024")"
printf '%-62s %11d\n' "files per trial folder" "$files"
printf '%-62s %9.0fkB\n' "bytes per trial folder" "$bytes"
printf '%-62s %10.1fs\n' "re-running the finished sweep (all kept; index, report)" "$resume"
printf '%-62s %10.2fs\n' "prefopt results on it" "$results"
printf '%-62s %9.0fkB\n' "report.html" "$(calc "$(stat -c %s "$work/sweep/report.html") / 1024")"
