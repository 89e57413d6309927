#!/usr/bin/env bash
# The main job: installs what is missing, builds, then compares RLHF (PPO against a reward-model
# ensemble), DPO and ORPO on the default synthetic task with noisy annotators — base policy,
# preference collection, reward models, each algorithm in its own process — and prints gold
# reward beside proxy reward and KL for each, side by side.
# Extra arguments are overrides, e.g. scripts/main.sh train.steps=100 algorithm=ppo,dpo,orpo,simpo
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build_dir=${PREFOPT_BUILD_DIR:-$root/build}

"$root/scripts/build.sh" >&2
cd "$root"
exec "$build_dir/bin/prefopt" run -m experiments/comparison.toml "$@"
