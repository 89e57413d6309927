#!/usr/bin/env bash
# Installs prefopt's build and test dependencies from Debian 12 packages. Idempotent: installs only
# what is missing. As root it runs apt-get; otherwise it prints the exact command and exits 1.
#   scripts/install-deps.sh           build + test dependencies
#   scripts/install-deps.sh --slurm   also the single-node Slurm used by the cluster tests
#   scripts/install-deps.sh --chromium  also headless Chromium, to check the HTML report renders
set -euo pipefail

packages=(
  build-essential cmake ninja-build ccache pkg-config
  libtorch-dev
  libopenblas0-pthread    # mandatory: without it libtorch uses reference BLAS (~30x slower sgemm)
  libboost-dev libboost-filesystem-dev libboost-program-options-dev
  libtomlplusplus-dev
  libfmt-dev libspdlog-dev nlohmann-json3-dev libsqlite3-dev libcurl4-openssl-dev
  libpcre2-dev libicu-dev # tokenizers: Unicode-property regexes, NFC/NFKC normalization
  libcsv-dev              # preference datasets in CSV (RFC 4180, quoted newlines)
  catch2 libbenchmark-dev
  abigail-tools           # abidiff: the SDK keeps its release's ABI (tests/sdk/abi_test.sh)
  fortunes                # the sentiment task's English text (/usr/share/games/fortunes), 2.8 MB
)
for option in "$@"; do
  case "$option" in
    --slurm) packages+=(slurmctld slurmd slurm-client munge) ;;
    --chromium) packages+=(chromium) ;;
    *) echo "install-deps.sh: unknown option $option (--slurm, --chromium)" >&2; exit 2 ;;
  esac
done

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

cmd=(apt-get install -y --no-install-recommends "${missing[@]}")
if [[ $(id -u) -ne 0 ]]; then
  echo "prefopt needs these Debian packages: ${missing[*]}" >&2
  echo "Install them with:  sudo apt-get update && sudo ${cmd[*]}" >&2
  exit 1
fi
echo "installing: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
"${cmd[@]}"
