#!/usr/bin/env bash
# bench/federation-ab.sh BUILD OUT — the same federation (PARTIES=4 parties of the small preset on
# DEVICES=cuda:0, STEPS=40 global steps, loopback TCP) with one setting changed at a time, to see
# what a setting is worth without comparing runs of different days: default settings;
# party.max_request_rows 0 (one request per host and layer, no pipelining), 1024 and 4096 (the
# default is 2048); one ZeroMQ I/O thread; threads that block (or yield) while they wait for the
# device instead of CUDA's default spinning (PCMOE_CUDA_SYNC). VARIANTS picks some (default:
# "default rows0 rows1024 rows4096 io1"; also "rows8192", "links2", "links3" (connections per
# host), "blocking", "yield", "fp8ops" (with WIRE=fp8: the fp8 wire as libtorch operations instead
# of its CUDA kernels, PCMOE_FP8_KERNELS=0)). WIRE: the wire dtype of every variant
# (party.wire_dtype; default: the party's, bf16 on CUDA).
# Prints one line per variant: global step time, tokens/s, forward and backward (with the waiting
# for hosts inside them), and the hosts' compute time per global step.
set -uo pipefail
BUILD=$1
OUT=$2
ROOT=$(cd "$(dirname "$0")/.." && pwd)
source "$ROOT/bench/common.sh"
PRESET=$(realpath "${PRESET:-$ROOT/configs/models/small.yaml}")
CORPUS=$(bench_corpus)
mkdir -p "$OUT/ab"
run() {  # run TAG "FEDERATION ARGS" [VAR=VALUE]
  local tag=$1${WIRE:+-$WIRE} pset=$2 var=${3:-}
  (
    if [[ -n $var ]]; then export "${var?}"; fi
    # shellcheck disable=SC2086
    timed_federation "$BUILD" "$PRESET" "${PARTIES:-4}" "${STEPS:-40}" "${DEVICES:-cuda:0}" "$CORPUS" \
      "$OUT/ab/$tag" --plain ${WIRE:+--party-set party.wire_dtype=$WIRE} $pset
  ) || return
  python3 - "$OUT/ab/$tag.json" "$tag" <<'PY'
import json, statistics, sys
f = json.load(open(sys.argv[1]))
ps = list(f["party"].values())
med = lambda k: statistics.median(p.get(k, 0) or 0 for p in ps)
print(f"{sys.argv[2]:<22} step {f.get('step_ms') or 0:7.1f} ms  tokens/s {f.get('tokens_per_s') or 0:8.0f}"
      f"  forward {med('median_forward_ms'):6.1f} (waiting {med('median_forward_wait_ms'):6.1f})"
      f"  backward {med('median_backward_ms'):6.1f} (waiting {med('median_backward_wait_ms'):6.1f})"
      f"  host compute/step {f.get('host_compute_ms_per_step') or 0:6.1f}")
PY
}
echo "== federation settings A/B ($(basename "$PRESET"), ${PARTIES:-4} parties on ${DEVICES:-cuda:0}, ${STEPS:-40} steps, wire ${WIRE:-default})"
# VARIANTS: which of them, in this order (default: all).
for v in ${VARIANTS:-default rows0 rows1024 rows4096 io1}; do
  case $v in
    default) run default "" ;;
    rows0) run max_request_rows=0 "--party-set party.max_request_rows=0" ;;
    rows1024) run max_request_rows=1024 "--party-set party.max_request_rows=1024" ;;
    rows4096) run max_request_rows=4096 "--party-set party.max_request_rows=4096" ;;
    rows8192) run max_request_rows=8192 "--party-set party.max_request_rows=8192" ;;
    links2) run links_per_host=2 "--party-set party.links_per_host=2" ;;
    links3) run links_per_host=3 "--party-set party.links_per_host=3" ;;
    io1) run io_threads=1 "" PCMOE_ZMQ_IO_THREADS=1 ;;
    blocking) run cuda_sync=blocking "" PCMOE_CUDA_SYNC=blocking ;;
    yield) run cuda_sync=yield "" PCMOE_CUDA_SYNC=yield ;;
    fp8ops) run fp8_kernels=0 "" PCMOE_FP8_KERNELS=0 ;;
    *) echo "federation-ab: unknown variant '$v'" >&2; exit 2 ;;
  esac
done
