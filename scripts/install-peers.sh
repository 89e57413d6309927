#!/usr/bin/env bash
# Installs the PyPI side of prefopt's tests into a venv outside the clone, reused between runs:
# the PyTorch wheel (its CUDA libtorch for scripts/build-wheel.sh) and the peers the tests compare
# against (Hydra, TensorBoard, MLflow), pinned in scripts/peers-requirements.txt. Installs only
# when the requirements changed since the last install. Prints the venv's python on stdout.
#   scripts/install-peers.sh             venv: $PREFOPT_VENV, default ~/.cache/prefopt/torch-venv
# Needs PyPI; the Debian quick start (scripts/main.sh, scripts/test.sh) does not.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv=${PREFOPT_VENV:-$HOME/.cache/prefopt/torch-venv}
requirements=$root/scripts/peers-requirements.txt
stamp=$venv/.prefopt-requirements

if [[ -x $venv/bin/python ]] && cmp -s "$requirements" "$stamp"; then
  echo "$venv/bin/python"
  exit 0
fi
if ! python3 -m venv --help >/dev/null 2>&1; then
  [[ $(id -u) -eq 0 ]] || { echo "install-peers.sh: python3 has no venv module; install Debian's python3-venv" >&2; exit 1; }
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3-venv >&2
fi
echo "install-peers.sh: installing $(grep -c '^[a-z]' "$requirements") pinned packages into $venv (the CUDA wheel is ~3 GB the first time)" >&2
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements" >&2
cp "$requirements" "$stamp"
echo "$venv/bin/python"
