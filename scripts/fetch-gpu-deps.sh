#!/usr/bin/env bash
# Fetches the Debian 12 packages that scripts/gpu-check.sh unpacks on a GPU node without
# internet: everything the build needs besides the compiler, CMake and libtorch (the node's
# PyTorch wheel brings libtorch). Run it on a Debian 12 machine with apt access, then carry the
# folder along with the checkout.
#   scripts/fetch-gpu-deps.sh [DIR]      default DIR: .gpu-deps (ignored by git)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dir=$(realpath -m "${1:-$root/.gpu-deps}")

packages=(
  libboost1.74-dev libboost-filesystem1.74-dev libboost-filesystem1.74.0
  libboost-program-options1.74-dev libboost-program-options1.74.0
  libtomlplusplus-dev libtomlplusplus3
  libfmt-dev libfmt9
  nlohmann-json3-dev
  libsqlite3-dev libsqlite3-0
  libpcre2-dev libpcre2-8-0 libicu-dev libicu72
  libcsv-dev libcsv3
  catch2
  libbenchmark-dev libbenchmark1debian
  ninja-build
)

mkdir -p "$dir"
rm -f "$dir"/*.deb
cd "$dir"
if ! apt-get download "${packages[@]}"; then
  echo "fetch-gpu-deps.sh: apt-get download failed; on a fresh machine run 'apt-get update' first" >&2
  exit 1
fi
echo "fetched ${#packages[@]} packages, $(du -sh "$dir" | cut -f1), into $dir"
