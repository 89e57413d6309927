#!/usr/bin/env bash
# Compiles every prefopt source against libtorch 2.x headers, on a machine without a PyTorch
# wheel or a GPU: a developer's check that the code still builds against the 2.x API (what a
# GPU node's wheel provides) before scripts/gpu-check.sh runs there. It fetches Debian 13's
# libtorch-dev 2.6 headers with a private apt state (nothing is installed), then compiles each
# translation unit of build/compile_commands.json with -fsyntax-only against them in place of
# Debian 12's 1.13, <torch/torch.h> first as the precompiled header has it. Not part of the build
# or CI: it downloads from Debian 13.
#   scripts/check-libtorch2.sh [JOBS]      after scripts/build.sh; JOBS defaults to nproc
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
work=$root/build/libtorch2
commands=$root/build/compile_commands.json
[[ -f $commands ]] || { echo "check-libtorch2.sh: no $commands; run scripts/build.sh first" >&2; exit 2; }

if [[ ! -d $work/root/usr/include/torch ]]; then
  mkdir -p "$work/lists/partial" "$work/cache/archives/partial" "$work/debs" "$work/root"
  echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main" \
    >"$work/sources.list"
  apt_state=(-o "Dir::Etc::SourceList=$work/sources.list" -o Dir::Etc::SourceParts=/nonexistent
             -o "Dir::State::Lists=$work/lists" -o "Dir::Cache=$work/cache")
  apt-get "${apt_state[@]}" update -qq
  (cd "$work/debs" && apt-get "${apt_state[@]}" download libtorch-dev)  # the headers; no libraries needed
  for deb in "$work"/debs/*.deb; do dpkg-deb -x "$deb" "$work/root"; done
fi

python3 - "$commands" "$work/root/usr/include" "${1:-$(nproc)}" <<'PY'
import concurrent.futures, json, shlex, subprocess, sys

commands, headers, jobs = sys.argv[1], sys.argv[2], int(sys.argv[3])
debian_api = "/usr/include/torch/csrc/api/include"

def syntax_only(entry):
    args, out, i = shlex.split(entry["command"]), [], 0
    while i < len(args):
        a = args[i]
        if a == "-include" and "cmake_pch" in args[i + 1]:
            out += ["-include", "torch/torch.h"]  # what the precompiled header holds, first as there
            i += 2
        elif a == "-o":
            i += 2
        elif a == "-isystem" and args[i + 1] == debian_api:
            out += ["-isystem", headers + "/torch/csrc/api/include", "-isystem", headers]
            i += 2
        else:
            out.append(a)
            i += 1
    result = subprocess.run([out[0], "-fsyntax-only"] + out[1:], cwd=entry["directory"], capture_output=True, text=True)
    errors = [line for line in result.stderr.splitlines() if "error" in line]
    return entry["file"], result.returncode, errors

entries = [e for e in json.load(open(commands)) if "/build/" not in e["file"]]
failed = 0
with concurrent.futures.ThreadPoolExecutor(jobs) as pool:
    for file, status, errors in pool.map(syntax_only, entries):
        if status != 0:
            failed += 1
            print(f"FAIL {file}\n  " + "\n  ".join(errors[:10]), flush=True)
print(f"{len(entries)} sources against libtorch 2.6 headers: {len(entries) - failed} compile, {failed} fail")
sys.exit(1 if failed else 0)
PY
