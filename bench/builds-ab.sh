#!/usr/bin/env bash
# bench/builds-ab.sh OLD_BUILD NEW_BUILD OUT — the same federation and the same pcmoe-central run
# with two builds of pcmoe (e.g. main before a refactor, and after), alternating A B A B in one
# run so that both see the same machine load. Prints, per round and as medians: federation global
# step ms and tokens/s, central step ms, and the ratios new/old.
# Env: PRESET (configs/models/tiny.yaml), PARTIES (3), STEPS (90), DEVICES (cpu), ROUNDS (2),
# FED_ARGS (more bench/federation.py arguments for both builds, space-separated; on a GPU
# "--plain", as bench/speed.sh: CURVE's encryption would be what is measured), CENTRAL (0: no
# central runs). Also prints, per federation, the medians of bench/speed.sh's timeline: forward
# and backward and their waiting, and per request the hosts' out / other / back.
# Example (2-core CPU): bench/builds-ab.sh /work/base/build build /tmp/ab
# On the GPU (a base commit's source carried as a tarball; scripts/gpu-run.sh's SRC_DIR):
#   SRC_DIR=/tmp/b/base BUILD_DIR=/tmp/b/build BUILD_TARGETS="pcmoe-party pcmoe-hub pcmoe-central
#   pcmoe-ctl" scripts/gpu-run.sh build; PRESET=configs/models/small.yaml PARTIES=4 DEVICES=cuda:0
#   FED_ARGS=--plain bench/builds-ab.sh /tmp/b/build build-gpu /tmp/ab
set -uo pipefail
OLD=$1
NEW=$2
OUT=$3
ROOT=$(cd "$(dirname "$0")/.." && pwd)
source "$ROOT/bench/common.sh"
PRESET=$(realpath "${PRESET:-$ROOT/configs/models/tiny.yaml}")
N=${PARTIES:-3}
STEPS=${STEPS:-90}
DEVICES=${DEVICES:-cpu}
ROUNDS=${ROUNDS:-2}
CORPUS=$(bench_corpus)
mkdir -p "$OUT"
read -r -a fed_args <<<"${FED_ARGS:-}"
one() {  # one TAG BUILD ROUND: a central run and a federation with BUILD
  local tag=$1 build=$2 r=$3 d="$OUT/$1-$3"
  mkdir -p "$d"
  if [[ ${CENTRAL:-1} == 0 ]]; then
    timed_federation "$build" "$PRESET" "$N" "$STEPS" "$DEVICES" "$CORPUS" "$d/fed" "${fed_args[@]}"
    return
  fi
  write_central_config "$d/central.yaml" "$PRESET" "$CORPUS" "$d/central" "${DEVICES%%,*}"
  "$build/apps/pcmoe-central" --config "$d/central.yaml" --set train.steps="$STEPS" --set train.warmup_steps=5 \
    --set train.eval_every=0 --set train.eval_batches=1 >/dev/null 2>"$d/central.log" ||
    { tail -5 "$d/central.log"; return 1; }
  timed_federation "$build" "$PRESET" "$N" "$STEPS" "$DEVICES" "$CORPUS" "$d/fed" "${fed_args[@]}"
}
for ((r = 0; r < ROUNDS; r++)); do
  one old "$OLD" "$r" || exit 1
  one new "$NEW" "$r" || exit 1
done
python3 - "$OUT" "$ROUNDS" <<'PY'
import json, os, statistics, sys
out, rounds = sys.argv[1], int(sys.argv[2])
def central_ms(d):
    try:
        rows = [json.loads(l) for l in open(f"{d}/central/metrics.jsonl")]
    except OSError:
        return None
    return statistics.median(r["step_ms"] for r in rows[8:])
def med(ps, key):
    vals = [p.get(key) for p in ps if p.get(key) is not None]
    return statistics.median(vals) if vals else 0.0
res = {"old": [], "new": []}
print(f"{'round':<7}{'build':<6}{'fed step ms':>12}{'fed tok/s':>11}{'central ms':>12}{'fed/central':>13}"
      f"{'fwd':>7}{'wait':>7}{'bwd':>7}{'wait':>7}{'out':>6}{'other':>6}{'back':>6}")
for r in range(rounds):
    for tag in ("old", "new"):
        d = f"{out}/{tag}-{r}"
        f = json.load(open(f"{d}/fed.json"))
        c = central_ms(d)
        res[tag].append((f["step_ms"], f["tokens_per_s"], c))
        ps = list(f["party"].values())
        k = "median_tl_forward_host_"
        same, nreq = med(ps, k + "same_clock") or 1, med(ps, k + "requests") or 1
        tl = [med(ps, "median_forward_ms"), med(ps, "median_forward_wait_ms"), med(ps, "median_backward_ms"),
              med(ps, "median_backward_wait_ms"), med(ps, k + "out_ms") / same, med(ps, k + "other_ms") / nreq,
              med(ps, k + "back_ms") / same]
        cs = f"{c:>12.1f}{c / f['step_ms']:>13.3f}" if c else f"{'-':>12}{'-':>13}"
        print(f"{r:<7}{tag:<6}{f['step_ms']:>12.1f}{f['tokens_per_s']:>11.0f}{cs}" + "".join(f"{x:>7.1f}" for x in tl[:4])
              + "".join(f"{x:>6.2f}" for x in tl[4:]))
med3 = {t: [statistics.median(x[i] for x in v) if all(x[i] for x in v) else None for i in range(3)]
        for t, v in res.items()}
line = (f"median  new/old: federation step {med3['new'][0] / med3['old'][0]:.3f}, "
        f"tokens/s {med3['new'][1] / med3['old'][1]:.3f}")
if med3["old"][2] and med3["new"][2]:
    line += (f", central step {med3['new'][2] / med3['old'][2]:.3f}; fed/central old {med3['old'][2] / med3['old'][0]:.3f},"
             f" new {med3['new'][2] / med3['new'][0]:.3f}")
print(line)
print("(fwd/bwd: a party's forward and backward ms and the waiting for hosts in them; out/other/back: per forward"
      " request, ms: requester send -> host takes it, the host's unattributed time, host reply -> requester takes it)")
PY
