#!/usr/bin/env bash
# bench/speed.sh BUILD OUT — one run, side by side: pcmoe-central; the federation (sequential turns,
# as in the paper; PARTIES parties) with each wire dtype of WIRES (bf16 and fp8); with IPC=1 also
# the first of WIRES over ipc://; and the ZeroMQ transport's GB/s measured on this machine in the
# same run. Prints tokens/s, step ms, bytes per step, the step's bound max(central step, bytes /
# GB/s) and step / bound; then where a federation step's time goes: the requester's phases (wall
# clock) and each request as the hosts saw it (their replies' timelines, protocol 1.1).
# With SCHEDULES="sequential concurrent" also concurrent rounds (hub.schedule: concurrent) per wire,
# against pcmoe-central of equal compute (one step on PARTIES batches: batch_size x PARTIES); a
# round's bound is max(that central step, the round's bytes / GB/s).
# Federations run in plain mode (no CURVE), as the transport bound is measured and as every GPU
# figure in README was; CURVE=1 runs them with CURVE, the product's default (encryption costs).
# Env: PRESET (small), PARTIES (4), STEPS (60), DEVICES (cuda:0; e.g. cuda:0,cuda:1 on two GPUs),
#      WIRES ("bf16 fp8"), IPC (0), SCHEDULES (sequential), CURVE (0), TRACE (0; 1: the federations
#      run with the request trace, PCMOE_TRACE, and bench/trace_report.py prints each one's), WARM (8:
#      global steps left out at the start: a fresh model's routers send most of a layer's rows to
#      few experts in its first steps; e.g. STEPS=300 WARM=200 measures a later routing, and the
#      trace's `top` column says how spread it is).
set -uo pipefail
BUILD=$1
OUT=$2
ROOT=$(cd "$(dirname "$0")/.." && pwd)
source "$ROOT/bench/common.sh"
PRESET=$(realpath "${PRESET:-$ROOT/configs/models/small.yaml}")
N=${PARTIES:-4}
STEPS=${STEPS:-60}
DEVICES=${DEVICES:-cuda:0}
WIRES=${WIRES:-bf16 fp8}
TAG=${TAG:-$(echo "$DEVICES" | tr ',:' '__')}
CORPUS=$(bench_corpus)
D="$OUT/speed-$TAG"
mkdir -p "$D"
write_central_config "$D/central.yaml" "$PRESET" "$CORPUS" "$D/central" "${DEVICES%%,*}"
"$BUILD/apps/pcmoe-central" --config "$D/central.yaml" --set train.steps=$STEPS --set train.warmup_steps=5 \
  --set train.eval_every=0 --set train.eval_batches=1 >"$D/central.json" 2>"$D/central.log" ||
  { tail -5 "$D/central.log"; exit 1; }
"$BUILD/apps/pcmoe-bench-wire" --transport-only >"$D/transport.txt" 2>&1 || { tail -5 "$D/transport.txt"; exit 1; }
variants=()
# TRACE=1: the next federation writes its request trace into $1 (exported to the processes).
trace_on() {
  [[ ${TRACE:-0} == 1 ]] || return 0
  rm -rf "$1" && mkdir -p "$1" && export PCMOE_TRACE=$1
}
plain=(--plain)
[[ ${CURVE:-0} == 1 ]] && plain=()
for s in ${SCHEDULES:-sequential}; do
  suffix=() hub_set=()
  if [[ $s == concurrent ]]; then
    suffix=-conc hub_set=(--hub-set hub.schedule=concurrent)
    B=$(sed -n 's/^ *batch_size: *\([0-9]*\).*/\1/p' "$PRESET" | head -1)
    "$BUILD/apps/pcmoe-central" --config "$D/central.yaml" --set train.steps=$STEPS --set train.warmup_steps=5 \
      --set train.eval_every=0 --set train.eval_batches=1 --set train.batch_size=$((B * N)) \
      --set run.out_dir="$D/central-eq" >"$D/central-eq.json" 2>"$D/central-eq.log" ||
      { tail -5 "$D/central-eq.log"; exit 1; }
  fi
  for w in $WIRES; do
    trace_on "$D/trace-$w-tcp${suffix[*]}"
    timed_federation "$BUILD" "$PRESET" "$N" "$STEPS" "$DEVICES" "$CORPUS" "$D/fed-$w-tcp${suffix[*]}" \
      --party-set party.wire_dtype="$w" "${hub_set[@]}" "${plain[@]}" || exit 1
    variants+=("$w-tcp${suffix[*]}")
  done
done
if [[ ${IPC:-0} == 1 ]]; then
  w=${WIRES%% *}
  trace_on "$D/trace-$w-ipc"
  timed_federation "$BUILD" "$PRESET" "$N" "$STEPS" "$DEVICES" "$CORPUS" "$D/fed-$w-ipc" \
    --party-set party.wire_dtype="$w" --transport ipc "${plain[@]}" || exit 1
  variants+=("$w-ipc")
fi
unset PCMOE_TRACE
python3 "$ROOT/bench/speed_report.py" "$D" "$PRESET" "$N" "$DEVICES" "${variants[@]}"
if [[ ${TRACE:-0} == 1 ]]; then
  for v in "${variants[@]}"; do
    echo
    echo "## $v"
    python3 "$ROOT/bench/trace_report.py" "$D/trace-$v" --json "$D/trace-$v.json" \
      --skip-steps $(((${WARM:-8} + N - 1) / N > 3 ? (${WARM:-8} + N - 1) / N : 3))
  done
fi
