#!/usr/bin/env bash
# bench/builds-ab.sh OLD_BUILD NEW_BUILD OUT — the same federation and the same pcmoe-central run
# with two builds of pcmoe (e.g. main before a refactor, and after), alternating A B A B in one
# run so that both see the same machine load. Prints, per round and as medians: federation global
# step ms and tokens/s, central step ms, and the ratios new/old.
# Env: PRESET (configs/models/tiny.yaml), PARTIES (3), STEPS (90), DEVICES (cpu), ROUNDS (2).
# Example (2-core CPU): bench/builds-ab.sh /work/base/build build /tmp/ab
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
one() {  # one TAG BUILD ROUND: a central run and a federation with BUILD
  local tag=$1 build=$2 r=$3 d="$OUT/$1-$3"
  mkdir -p "$d"
  write_central_config "$d/central.yaml" "$PRESET" "$CORPUS" "$d/central" "${DEVICES%%,*}"
  "$build/apps/pcmoe-central" --config "$d/central.yaml" --set train.steps="$STEPS" --set train.warmup_steps=5 \
    --set train.eval_every=0 --set train.eval_batches=1 >/dev/null 2>"$d/central.log" ||
    { tail -5 "$d/central.log"; return 1; }
  timed_federation "$build" "$PRESET" "$N" "$STEPS" "$DEVICES" "$CORPUS" "$d/fed"
}
for ((r = 0; r < ROUNDS; r++)); do
  one old "$OLD" "$r" || exit 1
  one new "$NEW" "$r" || exit 1
done
python3 - "$OUT" "$ROUNDS" <<'PY'
import json, statistics, sys
out, rounds = sys.argv[1], int(sys.argv[2])
def central_ms(d):
    rows = [json.loads(l) for l in open(f"{d}/central/metrics.jsonl")]
    return statistics.median(r["step_ms"] for r in rows[8:])
res = {"old": [], "new": []}
print(f"{'round':<7}{'build':<6}{'fed step ms':>12}{'fed tok/s':>11}{'central ms':>12}{'fed/central':>13}")
for r in range(rounds):
    for tag in ("old", "new"):
        d = f"{out}/{tag}-{r}"
        f = json.load(open(f"{d}/fed.json"))
        c = central_ms(d)
        res[tag].append((f["step_ms"], f["tokens_per_s"], c))
        print(f"{r:<7}{tag:<6}{f['step_ms']:>12.1f}{f['tokens_per_s']:>11.0f}{c:>12.1f}{c / f['step_ms']:>13.3f}")
med = {t: [statistics.median(x[i] for x in v) for i in range(3)] for t, v in res.items()}
print(f"median  new/old: federation step {med['new'][0] / med['old'][0]:.3f}, tokens/s {med['new'][1] / med['old'][1]:.3f},"
      f" central step {med['new'][2] / med['old'][2]:.3f}; fed/central old {med['old'][2] / med['old'][0]:.3f},"
      f" new {med['new'][2] / med['new'][0]:.3f}")
PY
