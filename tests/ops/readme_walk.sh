#!/usr/bin/env bash
# Acceptance test of the README's operations section: runs the lines between the
# `operations-walk` markers one by one, as a user types them into an interactive shell (job control
# on, so `kill -INT %1` is a terminal's Ctrl-C: SIGINT to the job's process group), in a scratch
# root made of symlinks to this checkout (its own runs/), and checks what the README says of them:
# each line's exit status (0, or the "(exit N)" its comment names), the commands file, pause, the
# status JSON and /metrics over HTTP, Ctrl-C and `pcmoe-ctl stop` each ending with one stop path,
# a summary and plots, `--resume` continuing to the end, and log files that are JSON lines only.
#   tests/ops/readme_walk.sh [--keep]       (ctest: readme_walk, label integration)
# Exit 0 all checks pass, 1 a check failed, 77 skipped (demo corpora, jq, curl or gnuplot missing).
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
KEEP=0
[[ ${1:-} == --keep ]] && KEEP=1
skip() { echo "readme-walk: skipped: $*"; exit 77; }
for t in jq curl gnuplot; do command -v "$t" >/dev/null || skip "$t is missing (scripts/setup.sh installs it)"; done
[[ -d /usr/share/games/fortunes && -d /usr/include/linux ]] || skip "the demo corpora are missing (scripts/setup.sh)"
for b in pcmoe-hub pcmoe-party pcmoe-ctl; do
  [[ -x $ROOT/build/apps/$b ]] || { echo "readme-walk: $ROOT/build/apps/$b missing: build first" >&2; exit 1; }
done

SCRATCH=$(mktemp -d /tmp/pcmoe-readme-walk.XXXXXX)
OUTS=$SCRATCH/.walk
mkdir -p "$OUTS"
for e in "$ROOT"/* "$ROOT"/.clang-format "$ROOT"/.editorconfig; do
  [[ -e $e && $(basename "$e") != runs ]] && ln -s "$e" "$SCRATCH/$(basename "$e")"
done
mapfile -t lines < <(sed -n '/<!-- operations-walk:begin/,/<!-- operations-walk:end/p' "$ROOT/README.md" |
  grep -v -e '^<!--' -e '^```')
((${#lines[@]} > 5)) || { echo "readme-walk: no operations-walk block in README.md" >&2; exit 1; }

fails=0
pass() { echo "PASS  $*"; }
fail() { echo "FAIL  $*"; fails=$((fails + 1)); }
# name condition: evaluated in a subshell, without pipefail (grep -q may end a pipe early).
expect() { if (set +o pipefail; eval "$2"); then pass "$1"; else fail "$1"; fi; }

# ---- walk: every line in this shell, in order ----
cd "$SCRATCH" || exit 1
set -m
T0=$SECONDS
for i in "${!lines[@]}"; do
  line=${lines[$i]}
  [[ -z ${line// /} ]] && continue
  want=0
  [[ $line =~ \(exit\ ([0-9]+)\) ]] && want=${BASH_REMATCH[1]}
  printf '[%4ds] $ %s\n' $((SECONDS - T0)) "$line"
  eval "$line" >"$OUTS/$i.out" 2>&1
  rc=$?
  sed 's/^/         | /' "$OUTS/$i.out" | head -25
  expect "line $((i + 1)) exits $want (got $rc)" '[[ $rc == "$want" ]]'
done
set +m

# ---- what the README says about them ----
out_of() { local i; for i in "${!lines[@]}"; do [[ ${lines[$i]} == *"$1"* ]] && cat "$OUTS/$i.out"; done; }
R=runs/federation
expect "commands.txt names the hub, pcmoe-ctl --run and the status page" \
  'out_of "cat $R/commands.txt" | grep -q "status: *build/apps/pcmoe-ctl --run $R status" &&
   out_of "cat $R/commands.txt" | grep -q "status page: *http://127.0.0.1:[0-9]*/"'
expect "pause: the hub reports paused" '[[ $(out_of "jq -r .state") == paused ]]'
expect "status.json over HTTP: each party with its step time" \
  '[[ $(out_of "status.json" | grep -c "\"step_ms_mean\":[0-9]") == 3 ]]'
expect "/metrics over HTTP: pcmoe_party_loss of a, b and c" \
  'for p in a b c; do out_of "metrics\"" | grep -q "^pcmoe_party_loss{party=\"$p\"} [0-9]" || exit 1; done'
expect "Ctrl-C and pcmoe-ctl stop: one stop path each (the hub never took a second stop)" \
  '! grep -q "\"hub.exit_now\"" $R/hub.log && [[ $(grep -c "\"event\":\"hub.stopping\",\"reason\":\"operator\"" $R/hub.log) == 2 ]]'
expect "Ctrl-C: the script says it stops the normal way, once" \
  '[[ $(grep -c "^run-federation: stopping: final expert pool" runs/federation.out) == 1 ]]'
expect "what the script says when it stops fits an 80-column terminal" \
  '[[ $(grep -E "^run-federation: (stopping|\(Ctrl-C)" runs/federation.out | awk "length > 80" | wc -l) == 0 ]]'
expect "each stop ended with a summary and plots" \
  '[[ $(grep -c "^== pcmoe federation: global step" runs/federation.out) == 2 && $(grep -c "^plots: .*loss.png" runs/federation.out) == 2 ]]'
expect "the summary shows party steps and MiB for a, b and c" \
  'out_of "grep -A5" | grep -q "party steps" && [[ $(out_of "grep -A5" | grep -cE "^[abc] .* [0-9]+\.[0-9] +[0-9]+\.[0-9] +[0-9]+\.[0-9]$") == 3 ]]'
expect "the summary's header, table and first note fit an 80-column terminal" \
  '[[ $(out_of "grep -A5" | awk "length > 80" | wc -l) == 0 ]]'
expect "every stop exported every party's model (3 ends x 3 parties)" \
  '[[ $(cat $R/party-*.log | grep -c "\"party.exported\"") == 9 ]]'
expect "--resume continued the runs: hub.resumed twice, each party resumed twice" \
  '[[ $(grep -c "\"hub.resumed\"" $R/hub.log) == 2 && $(cat $R/party-*.log | grep -c "\"party.resumed\"") == 6 ]]'
expect "the last --resume ran to the end: global step 240 of 240, plots drawn" \
  'out_of "run-federation.sh --resume" | tail -15 | grep -q "global step 240 of 240" &&
   [[ -s $R/loss.png && -s $R/expert_load.png ]] && jq -e ".step == 240 and .total_steps == 240" $R/hub/hub_state.json >/dev/null'
expect "log files are JSON lines only" \
  'for f in $R/*.log; do jq -e . "$f" >/dev/null || exit 1; done'
expect "hub.stats names each party's step time and the slowest" \
  'jq -se "map(select(.event == \"hub.stats\")) | last | .step_ms_mean.a > 0 and .slowest != \"\"" $R/hub.log >/dev/null'

echo "readme-walk: $((SECONDS - T0)) s, $fails failed"
if ((fails > 0 || KEEP == 1)); then echo "readme-walk: kept $SCRATCH"; else rm -rf "$SCRATCH"; fi
((fails == 0))
