#!/usr/bin/env bash
# bench/memory.sh BUILD OUT — peak GPU memory per party vs the centralised model (issue: GPU).
# pcmoe-central and federations of n = 2, 4, 8 parties of the same preset (default medium: 64
# experts per MoE layer, top-2, experts ~99% of the parameters), all on one GPU (the processes
# share the card; each measures its own peak with the CUDA caching allocator). Prints n, central
# peak, max party peak, ratio, and the ratio predicted by the footprint model (model/footprint.h).
# Both sides reserve their AdamW state at start (AdamW::reserve_state), so a short run's peak is
# the steady state's, except for gradients of experts that received no row in any step run.
# With SCHEDULES="sequential concurrent" also concurrent rounds (rows "n conc"): a party trains
# while it serves every other party, so its peak holds both (footprint: concurrent_requesters).
# Env: PRESET, PARTIES ("2 4 8"), DEVICE (cuda:0), STEPS_PER_PARTY (2), SCHEDULES (sequential).
set -uo pipefail
BUILD=$1
OUT=$2
ROOT=$(cd "$(dirname "$0")/.." && pwd)
source "$ROOT/bench/common.sh"
PRESET=$(realpath "${PRESET:-$ROOT/configs/models/medium.yaml}")
PARTIES=${PARTIES:-"2 4 8"}
DEVICE=${DEVICE:-cuda:0}
SPP=${STEPS_PER_PARTY:-2}
CORPUS=$(bench_corpus)
SETS=(--set train.warmup_steps=1 --set train.eval_every=0 --set train.eval_batches=1)
mkdir -p "$OUT/memory"
write_central_config "$OUT/memory/central.yaml" "$PRESET" "$CORPUS" "$OUT/memory/central" "$DEVICE"
"$BUILD/apps/pcmoe-central" --config "$OUT/memory/central.yaml" --set train.steps=4 "${SETS[@]}" \
  >"$OUT/memory/central.json" 2>"$OUT/memory/central.log" || { tail -5 "$OUT/memory/central.log"; exit 1; }
RUNS=()
for s in ${SCHEDULES:-sequential}; do
  for n in $PARTIES; do
    name=$n steps=$((n * SPP)) hub_set=()
    [[ $s == concurrent ]] && name=$n-conc steps=$SPP hub_set=(--hub-set hub.schedule=concurrent)
    python3 "$ROOT/bench/federation.py" --bin "$BUILD/apps" --preset "$PRESET" --parties "$n" --steps $steps \
      --out "$OUT/memory/fed$name" --corpus "$CORPUS" --devices "$DEVICE" --threads 2 --warm 0 "${hub_set[@]}" \
      --set train.warmup_steps=1 --set train.eval_every=0 --set train.eval_batches=1 \
      >"$OUT/memory/fed$name.json" 2>"$OUT/memory/fed$name.err" || { tail -5 "$OUT/memory/fed$name.err"; }
    RUNS+=("$name")
  done
done
python3 - "$OUT/memory" "$PRESET" "${RUNS[*]}" <<'PY'
import json, sys
d, preset, parties = sys.argv[1], sys.argv[2], sys.argv[3].split()
c = json.loads(open(f"{d}/central.json").read().strip().splitlines()[-1])
gib = lambda b: b / 2**30
print(f"\n== peak GPU memory per process ({preset.split('/')[-1]}; allocated by the CUDA caching allocator)")
print(f"central: measured {gib(c['peak_memory_bytes']):.2f} GiB, footprint estimate {gib(c['footprint_estimate_bytes']):.2f} GiB "
      f"(estimate/measured {c['footprint_estimate_bytes']/c['peak_memory_bytes']:.3f})")
print(f"{'n':>7} {'central GiB':>12} {'max party GiB':>14} {'ratio':>7} {'predicted':>10} {'party est/meas':>15} {'reserved GiB':>13}")
rows = []
for n in parties:
    try:
        f = json.loads(open(f"{d}/fed{n}.json").read())
    except Exception as e:
        print(f"{n:>7} (federation failed: see {d}/fed{n}.err)")
        continue
    ps = f["party"].values()
    peak = max(p["peak_allocated_bytes"] for p in ps)
    res = max(p["peak_reserved_bytes"] for p in ps)
    est = max(p["footprint_bytes"] or 0 for p in ps)
    pred = est / c["footprint_estimate_bytes"]
    print(f"{n.replace('-conc', ' conc'):>7} {gib(c['peak_memory_bytes']):>12.2f} {gib(peak):>14.2f} {peak/c['peak_memory_bytes']:>7.3f} {pred:>10.3f} {est/peak:>15.3f} {gib(res):>13.2f}")
    rows.append({"n": int(n.split("-")[0]), "schedule": "concurrent" if n.endswith("-conc") else "sequential",  "central_peak": c["peak_memory_bytes"], "party_peak": peak, "ratio": peak / c["peak_memory_bytes"],
                 "predicted_ratio": pred, "party_estimate": est, "party_reserved": res, "exit_codes": f["exit_codes"]})
json.dump({"central": c, "federations": rows}, open(f"{d}/../bench-memory.json", "w"))
PY
