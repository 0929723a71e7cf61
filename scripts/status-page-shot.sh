#!/usr/bin/env bash
# Checks the hub's status page (hub.http) in headless Chromium and saves a screenshot: the page's
# script must have fetched status.json and drawn the parties, the losses and the expert load (the
# DOM after the script ran is checked), and the PNG is written.
#   scripts/status-page-shot.sh [--url URL | --run DIR] [--out FILE.png] [--steps N]
#   --url URL   a running hub's status page;  --run DIR: the one of the run in DIR (its ctl.json)
#   default     starts a short federation (scripts/run-federation.sh --no-setup --steps N, default
#               120, in a temporary folder), shoots it at step 30 and stops it
#   --out FILE  the screenshot (default status-page.png in the current directory)
# Exit 0 ok, 1 a check failed, 2 usage, 77 Chromium is missing (apt-get install chromium; CI skips).
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
URL="" RUN="" OUT=$PWD/status-page.png STEPS=120
while [[ $# -gt 0 ]]; do
  case $1 in
    --url) URL=$2; shift 2 ;;
    --run) RUN=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --steps) STEPS=$2; shift 2 ;;
    -h | --help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "status-page-shot: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
done
CHROMIUM=$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)
[[ -n $CHROMIUM ]] || { echo "status-page-shot: skipped: no chromium (apt-get install chromium)"; exit 77; }
CTL=$ROOT/build/apps/pcmoe-ctl
tmp=$(mktemp -d /tmp/pcmoe-shot.XXXXXX)
fed_pid=""
cleanup() {
  if [[ -n $fed_pid ]] && kill -0 "$fed_pid" 2>/dev/null; then
    "$CTL" --run "$RUN" stop >/dev/null 2>&1 || kill -TERM "$fed_pid"
    wait "$fed_pid" 2>/dev/null
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT

if [[ -z $URL && -z $RUN ]]; then
  RUN=$tmp/run
  echo "status-page-shot: starting a $STEPS-step federation in $RUN"
  bash "$ROOT/scripts/run-federation.sh" --no-setup --steps "$STEPS" --out "$RUN" >"$tmp/federation.out" 2>&1 &
  fed_pid=$!
  "$CTL" --run "$RUN" wait --step 30 --timeout-ms 180000 || { tail -20 "$tmp/federation.out"; exit 1; }
fi
if [[ -z $URL ]]; then
  ctl_json=$RUN/ctl.json
  [[ -f $ctl_json ]] || ctl_json=$RUN/hub/ctl.json
  URL=$(jq -r '.http // ""' "$ctl_json" 2>/dev/null)
  [[ -n $URL ]] || { echo "status-page-shot: $ctl_json names no status page (hub.http is off)" >&2; exit 1; }
fi

# The page fetches status.json every 2 s: give its script time to run before reading the DOM.
chrome=("$CHROMIUM" --headless --no-sandbox --disable-gpu --disable-dev-shm-usage --hide-scrollbars
  --no-first-run --user-data-dir="$tmp/profile" --virtual-time-budget=4000)
fails=0
check() { if eval "$2"; then echo "PASS  $1"; else echo "FAIL  $1"; fails=$((fails + 1)); fi; }
"${chrome[@]}" --dump-dom "$URL" >"$tmp/dom.html" 2>"$tmp/chromium.log"
check "the script drew the state badge" 'grep -qE "<span id=\"state\" class=\"badge (training|paused|stopping|finished)\">" "$tmp/dom.html"'
check "one table row per party, with its loss" '[[ $(grep -o "<tr><td><span class=\"dot\"" "$tmp/dom.html" | wc -l) -ge 1 ]]'
check "the loss chart has a line per party" '[[ $(grep -o "<polyline" "$tmp/dom.html" | wc -l) -ge 1 ]]'
check "the expert-load panels with the uniform line" 'grep -q "stroke-dasharray=\"4 3\"" "$tmp/dom.html"'
"${chrome[@]}" --window-size=1280,900 --screenshot="$OUT" "$URL" >>"$tmp/chromium.log" 2>&1
check "screenshot written: $OUT" '[[ -s $OUT && $(stat -c %s "$OUT") -gt 20000 ]]'
((fails == 0)) || { tail -5 "$tmp/chromium.log"; exit 1; }
echo "status-page-shot: $URL -> $OUT"
