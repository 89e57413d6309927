#!/usr/bin/env bash
# Runs a test script with the python of the peers' venv (scripts/install-peers.sh): $PREFOPT_PYTHON,
# else $PREFOPT_VENV/bin/python, else ~/.cache/prefopt/torch-venv/bin/python. Without one it
# exits 77, which ctest reports as skipped (the Debian-only quick start has no PyPI peers).
#   peers.sh SCRIPT [ARGS...]
set -euo pipefail
python=${PREFOPT_PYTHON:-${PREFOPT_VENV:-$HOME/.cache/prefopt/torch-venv}/bin/python}
if [[ ! -x $python ]]; then
  echo "skipped: no peers' venv at $python (scripts/install-peers.sh makes it)"
  exit 77
fi
exec "$python" "$@"
