#!/usr/bin/env bash
# bench/wire.sh BUILD OUT — the remote expert call alone: latency for 1, 16, 256, 4096 rows and
# bytes per call against the minimum (bench/wire_bench.cpp), for the small preset's sizes, for each
# wire dtype of WIRE (default bf16,fp8); then the transport alone (tcp and ipc, 1/3/6 streams).
set -uo pipefail
BUILD=$1
OUT=$2
"$BUILD/apps/pcmoe-bench-wire" --d-model 512 --d-ff 1024 --wire ${WIRE:-bf16,fp8} --reps ${REPS:-50} | tee "$OUT/bench-wire.txt"
