#!/usr/bin/env bash
# The main job: installs what is missing, builds, then runs the canonical comparison sweep —
# RLHF (PPO against a reward-model ensemble) vs DPO vs ORPO, under annotator label-flip rates
# 0, 0.1 and 0.25, three seeds each — every trial in its own process. It prints the report's path
# first, then the results aggregated over seeds (mean ± 95% CI), and writes report.html.
# Running it again resumes: finished trials are kept. Extra arguments go to `prefopt sweep`:
#   scripts/main.sh --jobs 2                  # two trials at once, one thread each
#   scripts/main.sh --gpus auto --per-gpu 2   # on a GPU node (see sweeps/comparison.toml)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build_dir=${PREFOPT_BUILD_DIR:-$root/build}

"$root/scripts/build.sh" >&2
cd "$root"
exec "$build_dir/bin/prefopt" sweep sweeps/comparison.toml "$@"
