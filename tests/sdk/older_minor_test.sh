#!/usr/bin/env bash
# A plugin built for an older minor version of the SDK loads and runs in this prefopt: prefopt
# is installed into a temporary prefix whose SDK headers are then replaced by those of the
# major's release (the commit framework/sdk/abi/baseline.cmake names), and the release's
# examples/quantile_ensemble is built against that prefix, as a third party with the older SDK
# installed would have built it, then listed and run as the ensemble of a short PPO trial.
#   older_minor_test.sh BUILD_DIR RELEASE_COMMIT
# Exits 77 (reported as skipped) where the release's headers cannot be had (no git checkout, or
# a shallow one) or the release is this minor (right after a major release, no older minor exists).
set -euo pipefail
build_dir=$1 commit=$2
source_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

git -C "$source_dir" rev-parse --git-dir >/dev/null 2>&1 ||
  { echo "skipped: $source_dir is not a git checkout, so the release's headers are not at hand"; exit 77; }
if ! git -C "$source_dir" cat-file -e "$commit^{commit}" 2>/dev/null; then
  if [[ $(git -C "$source_dir" rev-parse --is-shallow-repository) == true ]]; then
    echo "skipped: the SDK release commit $commit is not in this shallow clone (git fetch --unshallow)"
    exit 77
  fi
  echo "FAIL: the SDK release commit $commit is not in this clone's history (framework/sdk/abi/baseline.cmake)"
  exit 1
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
prefix=$work/prefix

cmake --install "$build_dir" --prefix "$prefix" >"$work/install.log" 2>&1 || { cat "$work/install.log"; exit 1; }
rm -rf "$prefix/include/prefopt"
git -C "$source_dir" archive --prefix=release/ "$commit" framework/include/prefopt examples/quantile_ensemble | tar -x -C "$work"
mv "$work/release/framework/include/prefopt" "$prefix/include/prefopt"
api() { sed -nE "s/^#define PREFOPT_API_$1 ([0-9]+)$/\1/p" "$2/prefopt/version.h"; }
release="$(api MAJOR "$prefix/include").$(api MINOR "$prefix/include")"
current="$(api MAJOR "$source_dir/framework/include").$(api MINOR "$source_dir/framework/include")"
echo "plugin built against SDK $release (commit $commit), loaded by SDK $current"
[[ $release != "$current" ]] || { echo "skipped: SDK $current is the release itself: no older minor yet"; exit 77; }
[[ ${release%%.*} == "${current%%.*}" ]] ||
  { echo "FAIL: the release commit is SDK $release, another major than $current (scripts/abi-baseline.sh)"; exit 1; }

launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
cmake -S "$work/release/examples/quantile_ensemble" -B "$work/quantile" -G Ninja -DCMAKE_PREFIX_PATH="$prefix" \
  "${launcher[@]}" >"$work/configure.log" || { cat "$work/configure.log"; exit 1; }
cmake --build "$work/quantile" >"$work/build.log" || { cat "$work/build.log"; exit 1; }

prefopt=$prefix/bin/prefopt
export PREFOPT_PLUGIN_PATH=$work/quantile
show=$("$prefopt" plugins show quantile)
grep -q "Library      $work/quantile/ensemble_quantile.so" <<<"$show" || { echo "$show"; exit 1; }

# q = 0 is the worst case: the combined proxy is the members' minimum, at most each member's mean.
run=$work/run
"$prefopt" run "$source_dir/experiments/comparison.toml" algorithm=ppo ensemble=quantile ensemble.q=0 \
  --out "$run" --cache "$work/cache" policy.width=16 sft.steps=40 sft.corpus_size=512 preferences.pairs=200 \
  preferences.held_out=50 reward_models.members=3 eval.prompts=64 train.steps=2 train.eval_every=2 \
  >"$work/run.log" 2>&1 || { cat "$work/run.log"; exit 1; }
python3 - "$run/metrics.jsonl" <<'PY'
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
assert rows, "no evaluations in metrics.jsonl"
for row in rows:
    members = row["proxy_members"]
    assert len(members) == 3, f"expected 3 members' proxies, found {members}"
    assert row["proxy"] <= min(members) + 1e-6, f"proxy {row['proxy']} above a member's mean {members}"
print(f"{len(rows)} evaluations: the older-minor ensemble gave the members' minimum")
PY
echo "a plugin built against SDK $release loaded and ran in SDK $current"
