#!/usr/bin/env bash
# bench/fp8.sh BUILD OUT — the fp8 wire's round-trip error on real traffic (pcmoe-bench-fp8): trains
# pcmoe-central on the fortune corpus for STEPS steps (PRESET, default small; DEVICE, default
# cuda:0 when there is one), then quantizes one step's expert rows and gradients with fp8e4m3 and
# fp8e5m2 at several scale granularities and prints the error table.
set -uo pipefail
BUILD=$1
OUT=$2
ROOT=$(cd "$(dirname "$0")/.." && pwd)
source "$ROOT/bench/common.sh"
PRESET=$(realpath "${PRESET:-$ROOT/configs/models/small.yaml}")
DEVICE=${DEVICE:-$(python3 -c 'import torch;print("cuda:0" if torch.cuda.is_available() else "cpu")' 2>/dev/null || echo cpu)}
mkdir -p "$OUT/fp8"
write_central_config "$OUT/fp8/central.yaml" "$PRESET" "$(bench_corpus)" "$OUT/fp8/central" "$DEVICE"
"$BUILD/apps/pcmoe-bench-fp8" --config "$OUT/fp8/central.yaml" --steps "${STEPS:-200}" | tee "$OUT/bench-fp8.txt"
