#!/usr/bin/env bash
# The main job: installs what is missing, builds, then runs the default experiment end to end —
# base policy, noisy preference collection, a reward-model ensemble, best-of-n against it, and
# the evaluation against the gold reward — printing gold beside proxy reward and KL per n.
# Extra arguments are overrides, e.g. scripts/main.sh reward_models.members=5 'algorithm.n=[1,16,256]'
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build_dir=${PREFOPT_BUILD_DIR:-$root/build}

"$root/scripts/build.sh" >&2
cd "$root"
exec "$build_dir/bin/prefopt" run experiments/best_of_n.toml "$@"
