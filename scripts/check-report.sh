#!/usr/bin/env bash
# Renders a sweep's report.html in headless Chromium and checks what a reader would see: the page
# loads offline, its plots (four; a search's section adds its own, counted from report.html) and the
# results table are in the rendered DOM, and the screenshot is not blank. Installs Chromium if missing (scripts/install-deps.sh --chromium).
#   scripts/check-report.sh SWEEP_DIR [SCREENSHOT.png]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
sweep_dir=${1:?usage: scripts/check-report.sh SWEEP_DIR [SCREENSHOT.png]}
report=$(cd "$sweep_dir" && pwd)/report.html
screenshot=${2:-$sweep_dir/report.png}
[[ -f "$report" ]] || { echo "no report at $report (run: prefopt report $sweep_dir)" >&2; exit 2; }
"$root/scripts/install-deps.sh" --chromium

chrome=(chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --no-first-run
        --disable-background-networking --window-size=1100,2000)
dom=$(timeout 120 "${chrome[@]}" --dump-dom "file://$report" 2>/dev/null)
timeout 120 "${chrome[@]}" --screenshot="$screenshot" "file://$report" >/dev/null 2>&1

svgs=$(grep -o '<svg' <<<"$dom" | wc -l)
expected=$(grep -o '<svg' "$report" | wc -l)
rows=$(grep -o '<tr>' <<<"$dom" | wc -l)
bytes=$(stat -c %s "$screenshot")
echo "rendered $report: $svgs plots, $((rows - 1)) result rows, screenshot $screenshot ($bytes bytes)"
[[ $expected -ge 4 && $svgs -eq $expected ]] || { echo "expected $expected plots (at least 4) in the rendered page, found $svgs" >&2; exit 1; }
[[ $rows -ge 2 ]] || { echo "the results table is empty" >&2; exit 1; }
[[ $bytes -gt 20000 ]] || { echo "the screenshot looks blank" >&2; exit 1; }
