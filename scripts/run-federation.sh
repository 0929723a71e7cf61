#!/usr/bin/env bash
# The main job: a PC-MoE federation of a hub and three parties on this host, each party training
# on its own private real corpus (a: English fortunes, b: German fortunes, c: Linux C headers).
# Sets up (apt, build) if needed, starts the four daemons from configs/, prints how to reach the
# hub (pcmoe-ctl --run DIR, the status page), shows live progress, and ends with a summary table
# and the plots.
#   scripts/run-federation.sh [--steps N] [--schedule sequential|concurrent] [--out DIR] [--insecure]
#                             [--http PORT|off] [--set K=V]... [--party-set K=V]... [--resume] [--no-setup]
# Defaults: 600 global steps of configs/models/tiny.yaml, output in runs/federation, CURVE on every
# socket with fresh keys in DIR/keys (pcmoe-ctl keygen; --insecure: plain mode, this host only),
# the status page on a free port of 127.0.0.1. --resume continues the stopped run in DIR.
# --schedule concurrent: every party trains every global step at once (hub.schedule, README "Two
# schedules"): N rounds are 3N party steps, about twice the time of N sequential steps here; the
# experts learn at 3x the rate (train.expert_lr_scale=3) unless --set chooses it.
# --set K=V: an override for the hub and every party (model.*, train.*: all must agree);
# --party-set K=V: for every party (privacy.*, audit.*, party.*). Both are kept for --resume.
# A party that dies does not stop the others: they train to the end and export; the summary says
# who was lost.
# Ctrl-C: one stop, the normal end (final expert pool, each party evaluates, checkpoints and
# exports), then the summary and plots; exit 130. A second Ctrl-C stops at once (each checkpoints).
# Exit: 0 the run finished, 130 stopped early (Ctrl-C, pcmoe-ctl stop; resumable with --resume),
# 1 a daemon failed (the others went on to the end), 2 usage.
set -uo pipefail
CALLER_PWD=$PWD
ROOT=$(cd "$(dirname "$0")/.." && pwd)
STEPS="" OUT="" SETUP=1 CURVE=1 HTTP=0 RESUME=0 SCHEDULE=""
EXTRA_SETS=() EXTRA_PARTY_SETS=()
usage() { sed -n '2,/^set -uo/p' "$0" | sed '$d'; }
die() { echo "run-federation: $*" >&2; exit 2; }
while [[ $# -gt 0 ]]; do
  case $1 in
    --steps) [[ $# -ge 2 ]] || die "--steps needs a value"; STEPS=$2; shift 2 ;;
    --schedule) [[ $# -ge 2 ]] || die "--schedule needs a value"; SCHEDULE=$2; shift 2 ;;
    --set) [[ $# -ge 2 && $2 == *=* ]] || die "--set needs KEY=VALUE"; EXTRA_SETS+=("$2"); shift 2 ;;
    --party-set) [[ $# -ge 2 && $2 == *=* ]] || die "--party-set needs KEY=VALUE"; EXTRA_PARTY_SETS+=("$2"); shift 2 ;;
    --out) [[ $# -ge 2 ]] || die "--out needs a value"; OUT=$2; shift 2 ;;
    --curve) CURVE=1; shift ;;  # the default (kept for older command lines)
    --insecure) CURVE=0; shift ;;
    --http) [[ $# -ge 2 ]] || die "--http needs a port or off"; HTTP=$2; shift 2 ;;
    --resume) RESUME=1; shift ;;
    --no-setup) SETUP=0; shift ;;
    -h | --help) usage; exit 0 ;;
    *) die "unknown option '$1' (see --help)" ;;
  esac
done
# --out is relative to where the user is; everything else to the repository.
OUT=${OUT:-$ROOT/runs/federation}
[[ $OUT == /* ]] || OUT=$CALLER_PWD/$OUT
cd "$ROOT" || exit 1
# Paths as the user should type them: relative to their directory when below it.
show() { if [[ $1 == "$CALLER_PWD"/* ]]; then echo "${1#"$CALLER_PWD"/}"; else echo "$1"; fi; }

# ---- settings: fresh, or those of the run to resume ----
if [[ $RESUME == 1 ]]; then
  [[ -f $OUT/run.env ]] || die "--resume: $(show "$OUT")/run.env missing: no run of this script to continue there"
  want_steps=$STEPS want_schedule=$SCHEDULE
  [[ ${#EXTRA_SETS[@]} -eq 0 && ${#EXTRA_PARTY_SETS[@]} -eq 0 ]] ||
    die "--resume takes the stopped run's --set and --party-set (in $(show "$OUT")/run.env): drop them"
  # shellcheck source=/dev/null
  source "$OUT/run.env"  # STEPS CURVE HTTP SCHEDULE of the stopped run
  [[ -z $want_steps || $want_steps == "$STEPS" ]] ||
    die "--resume: the run in $(show "$OUT") trains $STEPS steps; drop --steps $want_steps (or start a new run)"
  SCHEDULE=${SCHEDULE:-sequential}
  [[ -z $want_schedule || $want_schedule == "$SCHEDULE" ]] ||
    die "--resume: the run in $(show "$OUT") is $SCHEDULE; drop --schedule $want_schedule (or start a new run)"
  if [[ -f $OUT/hub/hub_state.json ]] &&
    jq -e '.step >= .total_steps' "$OUT/hub/hub_state.json" >/dev/null 2>&1; then
    echo "run-federation: the run in $(show "$OUT") already trained all its $STEPS steps: nothing to resume"
    bash scripts/federation-summary.sh "$OUT"
    exit 0
  fi
fi
STEPS=${STEPS:-600}
SCHEDULE=${SCHEDULE:-sequential}
[[ $SCHEDULE == sequential || $SCHEDULE == concurrent ]] ||
  die "--schedule must be sequential or concurrent, found '$SCHEDULE'"
[[ $STEPS =~ ^[0-9]+$ && $STEPS -gt 0 ]] || die "--steps must be a positive integer, found '$STEPS'"
[[ $HTTP == off || ($HTTP =~ ^[0-9]+$ && $HTTP -le 65535) ]] || die "--http must be a port (0: any free one) or off, found '$HTTP'"
# Concurrent rounds: an expert takes one step per round on the mean of the 3 parties' gradients;
# three times the rate removed their deficit against training alone (README "Two schedules").
# A fresh run only (kept in run.env, so --resume hashes the same), and only when --set does not
# choose the rate.
if [[ $RESUME == 0 && $SCHEDULE == concurrent ]] &&
  ! printf '%s\n' "${EXTRA_SETS[@]}" | grep -q '^train.expert_lr_scale='; then
  EXTRA_SETS+=("train.expert_lr_scale=3")
  echo "run-federation: concurrent: experts at 3x the rate (train.expert_lr_scale=3)"
fi

# ---- set-up and build ----
if [[ $SETUP == 1 ]]; then
  bash scripts/setup.sh || exit 1
  if [[ ! -f build/build.ninja ]]; then cmake --preset default >/dev/null || exit 1; fi
  echo "run-federation: building (first time: a few minutes)..."
  cmake --build --preset default >/tmp/pcmoe-build.log 2>&1 || { tail -30 /tmp/pcmoe-build.log; exit 1; }
fi
BIN=$ROOT/build/apps
for b in pcmoe-hub pcmoe-party pcmoe-ctl; do
  [[ -x $BIN/$b ]] || { echo "run-federation: $BIN/$b missing (build first, or drop --no-setup)" >&2; exit 1; }
done

# ---- run folder, port, keys ----
if [[ $RESUME == 0 && -d $OUT ]]; then
  rm -rf "$OUT.prev" && mv "$OUT" "$OUT.prev"
  echo "run-federation: the previous run in $(show "$OUT") is now $(show "$OUT.prev") (--resume continues a run instead)"
fi
mkdir -p "$OUT"
{
  printf 'STEPS=%s\nCURVE=%s\nHTTP=%s\nSCHEDULE=%s\n' "$STEPS" "$CURVE" "$HTTP" "$SCHEDULE"
  printf 'EXTRA_SETS=(%s)\nEXTRA_PARTY_SETS=(%s)\n' "${EXTRA_SETS[*]@Q}" "${EXTRA_PARTY_SETS[*]@Q}"
} >"$OUT/run.env"
port=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])' 2>/dev/null ||
  shuf -i 20000-60000 -n 1)
HUB=tcp://127.0.0.1:$port
common=(--set "train.steps=$STEPS" --set "train.warmup_steps=$((STEPS < 500 ? STEPS / 10 : 50))"
  --set "train.eval_every=$((STEPS / 6 > 0 ? STEPS / 6 : 1))")
for kv in "${EXTRA_SETS[@]}"; do common+=(--set "$kv"); done
party_extra=()
for kv in "${EXTRA_PARTY_SETS[@]}"; do party_extra+=(--set "$kv"); done
hub_set=(--set "hub.bind=$HUB" --set "hub.out_dir=$OUT/hub" --set "hub.log_file=$OUT/hub.log"
  --set "hub.schedule=$SCHEDULE")
[[ $HTTP != off ]] && hub_set+=(--set "hub.http=127.0.0.1:$HTTP")
declare -A party_set
for p in a b c; do party_set[$p]="--set party.hub=$HUB --set run.out_dir=$OUT/party-$p --set run.log_file=$OUT/party-$p.log"; done
if [[ $CURVE == 1 ]]; then
  # One key pair per participant and one for the operator (pcmoe-ctl); kept across --resume.
  "$BIN/pcmoe-ctl" keygen --dir "$OUT/keys" --names hub,operator,party-a,party-b,party-c >/dev/null || exit 1
  K=$OUT/keys
  hub_set+=(--set "hub.secret_key_file=$K/hub.key" --set "hub.ctl_key_file=$K/operator.key")
  i=0
  for p in a b c; do
    hub_set+=(--set "hub.parties[$i].public_key_file=$K/party-$p.pub")
    party_set[$p]+=" --set party.curve.secret_key_file=$K/party-$p.key --set party.curve.hub_public_key_file=$K/hub.pub"
    i=$((i + 1))
  done
else
  hub_set+=(--set hub.insecure=true)
  for p in a b c; do party_set[$p]+=" --set party.insecure=true"; done
fi

# ---- start: every daemon in its own session, so a terminal's Ctrl-C reaches only this script ----
pids=() names=() codes=()
start() {  # name binary args...
  local name=$1
  shift
  setsid "$@" >>"$OUT/$name.out" 2>&1 &
  pids+=($!)
  names+=("$name")
  codes+=("")
}
start hub "$BIN/pcmoe-hub" --config configs/hub.yaml "${common[@]}" "${hub_set[@]}"
for p in a b c; do
  # shellcheck disable=SC2086
  start "party-$p" "$BIN/pcmoe-party" --config "configs/party-$p.yaml" "${common[@]}" ${party_set[$p]} "${party_extra[@]}"
done
ctl="$(show "$BIN/pcmoe-ctl") --run $(show "$OUT")"
for _ in $(seq 1 100); do
  [[ -s $OUT/hub/ctl.json ]] && jq -e --argjson pid "${pids[0]}" '.pid == $pid' "$OUT/hub/ctl.json" >/dev/null 2>&1 && break
  kill -0 "${pids[0]}" 2>/dev/null || break
  sleep 0.1
done
http_url=$(jq -r '.http // ""' "$OUT/hub/ctl.json" 2>/dev/null)
{
  echo "hub:          $HUB   (parties a: English fortunes, b: German fortunes, c: C headers; $STEPS global steps, $SCHEDULE)"
  echo "status:       $ctl status"
  echo "live:         $ctl watch"
  echo "control:      $ctl pause | resume | checkpoint | snapshot | stop"
  [[ -n $http_url ]] && echo "status page:  $http_url   (JSON: ${http_url}status.json, Prometheus: ${http_url}metrics)"
  echo "logs:         $(show "$OUT")/*.log (JSON lines), metrics: $(show "$OUT")/party-*/metrics.jsonl"
  echo "Ctrl-C:       stop (final pool, evaluation, export, summary); continue later: $(show "$ROOT/scripts/run-federation.sh") --resume --out $(show "$OUT")"
} | tee "$OUT/commands.txt" | sed 's/^/run-federation: /'

# ---- stop path: the first Ctrl-C/SIGTERM asks the hub for its end sequence, the second stops all ----
stops=0
on_stop() {
  stops=$((stops + 1))
  echo
  if [[ $stops -eq 1 ]]; then
    echo "run-federation: stopping: final expert pool, evaluation, checkpoints, export"
    echo "run-federation: (Ctrl-C again: stop at once)"
    kill -TERM "${pids[0]}" 2>/dev/null
  else
    echo "run-federation: stopping at once (each process checkpoints)"
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null; done
  fi
}
trap on_stop INT TERM

# ---- live progress (pcmoe-ctl watch) while watching the daemons ----
setsid "$BIN/pcmoe-ctl" --run "$OUT" watch --timeout-ms 1500 &
watch_pid=$!
t0=$SECONDS
failed="" lost=()
while true; do
  running=0
  for i in "${!pids[@]}"; do
    [[ -n ${codes[$i]} ]] && continue
    if kill -0 "${pids[$i]}" 2>/dev/null; then
      running=$((running + 1))
      continue
    fi
    wait "${pids[$i]}" 2>/dev/null
    codes[i]=$?
    [[ ${codes[$i]} -eq 0 ]] && continue
    [[ -z $failed ]] && failed=${names[$i]}
    echo
    echo "run-federation: ${names[$i]} stopped unexpectedly (exit ${codes[$i]}); its last lines:" >&2
    tail -5 "$OUT/${names[$i]}.out" "$OUT/${names[$i]}.log" 2>/dev/null | cut -c1-300 >&2
    if [[ ${names[$i]} == hub ]]; then
      # Without the hub the parties cannot finish: stop them.
      stops=1
      on_stop
    else
      # Without a party the others can: its experts come from the last pool snapshot.
      lost+=("${names[$i]} (exit ${codes[$i]})")
      echo "run-federation: the others go on without ${names[$i]} (its experts: from the last snapshot)" >&2
    fi
  done
  [[ $running -eq 0 ]] && break
  sleep 1
done
kill -TERM "$watch_pid" 2>/dev/null
wait "$watch_pid" 2>/dev/null
echo

# ---- summary and plots ----
echo "run-federation: all processes ended after $((SECONDS - t0)) s"
[[ ${#lost[@]} -gt 0 ]] && echo "run-federation: lost during the run: ${lost[*]}"
bash scripts/federation-summary.sh "$OUT"
if plots=$(bash scripts/plot.sh "$OUT" 2>&1); then
  echo "plots: $(show "$OUT/loss.png") $(show "$OUT/expert_load.png")"
else
  echo "plots: not drawn ($plots)"
fi
if [[ -n $failed ]]; then
  exit 1
elif ! jq -e '.step >= .total_steps' "$OUT/hub/hub_state.json" >/dev/null 2>&1; then
  # Stopped before the end (Ctrl-C, pcmoe-ctl stop): resumable.
  echo "run-federation: stopped; continue it with: $(show "$ROOT/scripts/run-federation.sh") --resume --out $(show "$OUT")"
  exit 130
fi
exit 0
