#!/usr/bin/env bash
# The main job: a PC-MoE federation of a hub and three parties on this host, each party training
# on its own private real corpus (a: English fortunes, b: German fortunes, c: Linux C headers).
# Sets up (apt, build) if needed, starts the four daemons from configs/, shows live progress,
# and ends with a summary table and the path of the loss-curve plot. Ctrl-C stops every process
# it started, cleanly (each checkpoints).
#   scripts/run-federation.sh [--steps N] [--preset FILE] [--out DIR] [--curve] [--no-setup]
# Defaults: 600 global steps of configs/models/tiny.yaml, output in runs/federation.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
STEPS=600
PRESET=""
OUT=runs/federation
SETUP=1
CURVE=0
while [[ $# -gt 0 ]]; do
  case $1 in
    --steps) STEPS=$2; shift 2 ;;
    --preset) PRESET=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --curve) CURVE=1; shift ;;
    --no-setup) SETUP=0; shift ;;
    -h | --help) sed -n '2,9p' "$0"; exit 0 ;;
    *) echo "run-federation: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
done
[[ $STEPS =~ ^[0-9]+$ && $STEPS -gt 0 ]] || { echo "run-federation: --steps must be a positive integer" >&2; exit 2; }

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

# ---- run directory, port, keys ----
if [[ -d $OUT ]]; then rm -rf "$OUT.prev" && mv "$OUT" "$OUT.prev"; fi
mkdir -p "$OUT"
port=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])' 2>/dev/null ||
  shuf -i 20000-60000 -n 1)
HUB=tcp://127.0.0.1:$port
common=(--set "train.steps=$STEPS" --set "train.warmup_steps=$((STEPS < 500 ? STEPS / 10 : 50))"
  --set "train.eval_every=$((STEPS / 6 > 0 ? STEPS / 6 : 1))")
[[ -n $PRESET ]] && echo "run-federation: preset override is read from each config's 'preset:'; use --set-style edits of configs/" >&2
hub_set=(--set "hub.bind=$HUB" --set "hub.out_dir=$OUT/hub" --set "hub.log_file=$OUT/hub.log")
declare -A party_set
for p in a b c; do party_set[$p]="--set party.hub=$HUB --set run.out_dir=$OUT/party-$p --set run.log_file=$OUT/party-$p.log"; done
if [[ $CURVE == 1 ]]; then
  mkdir -p "$OUT/keys"
  hub_pub=$("$BIN/pcmoe-ctl" keygen --out "$OUT/keys/hub.key" | tail -1 | awk '{print $NF}')
  hub_set+=(--set "hub.secret_key_file=$ROOT/$OUT/keys/hub.key")
  i=0
  for p in a b c; do
    pub=$("$BIN/pcmoe-ctl" keygen --out "$OUT/keys/party-$p.key" | tail -1 | awk '{print $NF}')
    hub_set+=(--set "hub.parties[$i].public_key=$pub")
    party_set[$p]+=" --set party.curve.secret_key_file=$ROOT/$OUT/keys/party-$p.key --set party.curve.hub_public_key=$hub_pub"
    i=$((i + 1))
  done
fi

# ---- start ----
pids=()
names=()
cleanup() {
  trap - INT TERM
  echo
  echo "run-federation: stopping (each process checkpoints)..."
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null; done
  for pid in "${pids[@]}"; do
    for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null
  done
  exit 130
}
trap cleanup INT TERM
start() {  # name binary args...
  local name=$1
  shift
  "$@" >>"$OUT/$name.out" 2>&1 &
  pids+=($!)
  names+=("$name")
}
start hub "$BIN/pcmoe-hub" --config configs/hub.yaml "${common[@]}" "${hub_set[@]}"
for p in a b c; do
  # shellcheck disable=SC2086
  start "party-$p" "$BIN/pcmoe-party" --config "configs/party-$p.yaml" "${common[@]}" ${party_set[$p]}
done
t0=$SECONDS
echo "run-federation: hub at $HUB, parties a (English fortunes), b (German fortunes), c (C headers); $STEPS global steps"
echo "run-federation: logs in $OUT/*.log, metrics in $OUT/party-*/metrics.jsonl; Ctrl-C stops everything"

# ---- live progress ----
ctl=("$BIN/pcmoe-ctl" --config configs/hub.yaml --endpoint "$HUB" --timeout-ms 1500)
# With CURVE, pcmoe-ctl authenticates with the hub's own key pair (from the same settings).
[[ $CURVE == 1 ]] && ctl=("$BIN/pcmoe-ctl" --config configs/hub.yaml "${hub_set[@]}" --timeout-ms 1500)
last_step=0
while true; do
  alive=0
  for i in "${!pids[@]}"; do kill -0 "${pids[$i]}" 2>/dev/null && alive=$((alive + 1)); done
  [[ $alive -eq 0 ]] && break
  if [[ $alive -lt ${#pids[@]} ]]; then
    for i in "${!pids[@]}"; do
      if ! kill -0 "${pids[$i]}" 2>/dev/null && ! grep -qE '"(party.exit|hub.finished)"' "$OUT/${names[$i]}.log" 2>/dev/null; then
        wait "${pids[$i]}" 2>/dev/null
        echo
        echo "run-federation: ${names[$i]} stopped unexpectedly; its last lines:" >&2
        tail -5 "$OUT/${names[$i]}.out" "$OUT/${names[$i]}.log" 2>/dev/null | cut -c1-300 >&2
        cleanup
      fi
    done
  fi
  el=$((SECONDS - t0))
  line=$("${ctl[@]}" status --json 2>/dev/null | jq -r --argjson el "$el" '
      def f: if . == null or . < 0 then "-" else (. * 1000 | round / 1000 | tostring) end;
      "step \(.step)/\(.total_steps) | loss " + ([.parties[] | "\(.id) \(.last_loss | f)"] | join("  ")) +
      " | \(([.parties[] | .tokens] | add) / ([$el, 1] | max) | floor) tok/s | \(.state)"' 2>/dev/null)
  if [[ -n $line ]]; then
    step=$(sed -E 's/^step ([0-9]+).*/\1/' <<<"$line")
    eta="-"
    [[ $step -gt 0 ]] && eta="$(((STEPS - step) * el / step))s"
    printf '\r%-110s' "$line | ${el}s, ETA $eta"
    last_step=$step
  fi
  sleep 2
done
echo
wall=$((SECONDS - t0))

# ---- summary ----
echo
echo "== pcmoe federation: $last_step global steps in ${wall}s ($OUT)"
printf '%-8s %-18s %7s %10s %10s %12s %12s %10s\n' party corpus steps "eval loss" "eval bpb" "bytes sent" "bytes recv" "peak MiB"
for p in a b c; do
  case $p in a) corpus="English fortunes" ;; b) corpus="German fortunes" ;; c) corpus="Linux C headers" ;; esac
  done_line=$(grep '"party.done"' "$OUT/party-$p.log" 2>/dev/null | tail -1)
  sent=$(jq -s 'map(.bytes_sent // 0) | add // 0' "$OUT/party-$p/metrics.jsonl" 2>/dev/null)
  recv=$(jq -s 'map(.bytes_received // 0) | add // 0' "$OUT/party-$p/metrics.jsonl" 2>/dev/null)
  if [[ -n $done_line ]]; then
    jq -r --arg p "$p" --arg c "$corpus" --arg s "$sent" --arg r "$recv" \
      '"\($p)\t\($c)\t\(.steps_done)\t\(.eval_loss*1000|round/1000)\t\(.eval_bpb*1000|round/1000)\t\($s)\t\($r)\t\(.peak_memory_bytes/1048576|floor)"' <<<"$done_line" |
      awk -F'\t' '{printf "%-8s %-18s %7s %10s %10s %12s %12s %10s\n", $1, $2, $3, $4, $5, $6, $7, $8}'
  else
    printf '%-8s %-18s %s\n' "$p" "$corpus" "(no final summary: see $OUT/party-$p.log)"
  fi
done
echo "models (backbone + shared experts): $OUT/party-*/model.pcmoe; expert pool: $OUT/hub/pool.pcmoe"
if plots=$(bash scripts/plot.sh "$OUT" 2>&1); then
  echo "plots: $(tr '\n' ' ' <<<"$plots")"
else
  echo "plots: not drawn ($plots)"
fi
