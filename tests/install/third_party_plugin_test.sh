#!/usr/bin/env bash
# Installs prefopt from BUILD_DIR into a temporary prefix and builds the out-of-tree examples
# against that prefix only: the ensemble examples/quantile_ensemble, which the installed prefopt
# must list through PREFOPT_PLUGIN_PATH (beside its own built-in plugins), and the algorithm
# examples/raft_algorithm, which must run as `algorithm=raft` with no config file of its own and
# raise the gold reward.
#   third_party_plugin_test.sh BUILD_DIR
set -euo pipefail
build_dir=$1
source_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
prefix=$work/prefix

cmake --install "$build_dir" --prefix "$prefix" >"$work/install.log"
test -x "$prefix/bin/prefopt"
test -f "$prefix/include/prefopt/plugin.h"
test -f "$prefix/lib/cmake/prefopt/prefoptConfig.cmake"
test -f "$prefix/lib/prefopt/plugins/ensemble_mean.so"

launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
build_example() {  # build_example NAME: examples/NAME into $work/NAME
  cmake -S "$source_dir/examples/$1" -B "$work/$1" -G Ninja -DCMAKE_PREFIX_PATH="$prefix" "${launcher[@]}" \
    >"$work/$1-configure.log" || { cat "$work/$1-configure.log"; exit 1; }
  cmake --build "$work/$1" >"$work/$1-build.log" || { cat "$work/$1-build.log"; exit 1; }
}
build_example quantile_ensemble
build_example raft_algorithm
plugin=$work/quantile_ensemble/ensemble_quantile.so
test -f "$plugin"
# find_package(prefopt) leaves the project's build type alone (none here); its plugin is built as
# prefopt was, so the fingerprint matches.
grep -qx "CMAKE_BUILD_TYPE:STRING=" "$work/quantile_ensemble/CMakeCache.txt" ||
  { echo "find_package(prefopt) changed the project's CMAKE_BUILD_TYPE:"; grep CMAKE_BUILD_TYPE "$work/quantile_ensemble/CMakeCache.txt"; exit 1; }

# The installed binary must not depend on the build tree.
list=$(env -u LD_LIBRARY_PATH PREFOPT_PLUGIN_PATH="$work/quantile_ensemble" "$prefix/bin/prefopt" plugins list)
echo "$list"
grep -Eq "^ensemble +quantile +1.0.0 .*ensemble_quantile.so$" <<<"$list"
grep -Eq "^ensemble +mean " <<<"$list"
show=$(PREFOPT_PLUGIN_PATH="$work/quantile_ensemble" "$prefix/bin/prefopt" plugins show quantile)
echo "$show"
grep -q "Library      $plugin" <<<"$show"
grep -q "q  float  default 0.25  \[0, 1\]" <<<"$show"
grep -q "interpolation  string  default \"linear\"  one of: linear, lower, higher, midpoint, nearest" <<<"$show"
echo "third-party plugin built against the installed SDK and listed"

# A third party's algorithm: one folder, built against the installed SDK, run by name.
run=$work/raft-run
env -u LD_LIBRARY_PATH PREFOPT_PLUGIN_PATH="$work/raft_algorithm" "$prefix/bin/prefopt" run \
  "$source_dir/experiments/comparison.toml" algorithm=raft --out "$run" --cache "$work/cache" \
  policy.width=32 sft.steps=150 sft.corpus_size=2048 preferences.pairs=800 preferences.held_out=100 \
  reward_models.members=1 eval.prompts=512 train.steps=60 train.eval_every=60 annotator.rate=0.1 \
  >"$work/raft.log" 2>&1 || { cat "$work/raft.log"; exit 1; }
grep -q "algorithm: algorithm 'raft'" "$run/run.log"
# The gold reward rose by at least 4 standard errors of the difference (fixed seed 0).
python3 - "$run/metrics.jsonl" <<'PY'
import json, math, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
first, last = rows[0], rows[-1]
gain, se = last["gold"] - first["gold"], math.hypot(first["gold_se"], last["gold_se"])
print(f"raft: gold {first['gold']:.3f} -> {last['gold']:.3f} (standard error {se:.3f}), KL {last['kl']:.3f}")
sys.exit(0 if gain > 4 * se else 1)
PY
echo "third-party algorithm built against the installed SDK ran as algorithm=raft and raised the gold reward"
