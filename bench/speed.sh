#!/usr/bin/env bash
# bench/speed.sh BUILD OUT — tokens/s of a federation (sequential turns, as in the paper) vs
# pcmoe-central on the same GPU(s), same preset, batch and dtype, over loopback TCP; and where a
# party's step time goes: local work (backbone, local experts, optimizer), waiting for hosts
# (their expert compute + wire), (de)serialisation; plus bytes per step against the minimum.
# Env: PRESET (small), PARTIES (4), STEPS (60), DEVICES (cuda:0; e.g. cuda:0,cuda:1 on two GPUs).
set -uo pipefail
BUILD=$1
OUT=$2
ROOT=$(cd "$(dirname "$0")/.." && pwd)
source "$ROOT/bench/common.sh"
PRESET=$(realpath "${PRESET:-$ROOT/configs/models/small.yaml}")
N=${PARTIES:-4}
STEPS=${STEPS:-60}
DEVICES=${DEVICES:-cuda:0}
TAG=${TAG:-$(echo "$DEVICES" | tr ',:' '__')}
CORPUS=$(bench_corpus)
mkdir -p "$OUT/speed-$TAG"
write_central_config "$OUT/speed-$TAG/central.yaml" "$PRESET" "$CORPUS" "$OUT/speed-$TAG/central" "${DEVICES%%,*}"
"$BUILD/apps/pcmoe-central" --config "$OUT/speed-$TAG/central.yaml" --set train.steps=$STEPS --set train.warmup_steps=5 \
  --set train.eval_every=0 --set train.eval_batches=1 >"$OUT/speed-$TAG/central.json" 2>"$OUT/speed-$TAG/central.log" ||
  { tail -5 "$OUT/speed-$TAG/central.log"; exit 1; }
timed_federation "$BUILD" "$PRESET" "$N" "$STEPS" "$DEVICES" "$CORPUS" "$OUT/speed-$TAG/fed" || exit 1
python3 - "$OUT/speed-$TAG" "$PRESET" "$N" "$DEVICES" <<'PY'
import json, statistics, sys
d, preset, n, devices = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
rows = [json.loads(l) for l in open(f"{d}/central/metrics.jsonl")]
cms = statistics.median(r["step_ms"] for r in rows[8:])
tokens = rows[1]["tokens"] - rows[0]["tokens"]
c_tps = tokens / (cms / 1e3)
f = json.loads(open(f"{d}/fed.json").read())
print(f"\n== federation vs central ({preset.split('/')[-1]}, {n} parties on {devices}, batch x seq = {tokens} tokens/step)")
print(f"{'':<28}{'tokens/s':>12}{'step ms':>10}")
print(f"{'pcmoe-central':<28}{c_tps:>12.0f}{cms:>10.1f}")
print(f"{'federation (sequential)':<28}{f.get('tokens_per_s') or 0:>12.0f}{f.get('step_ms') or 0:>10.1f}")
print(f"ratio federation/central: {(f.get('tokens_per_s') or 0) / c_tps:.3f}")
ps = list(f["party"].values())
med = lambda k: statistics.median(p.get(k, 0) or 0 for p in ps)
step, wait, ser = med("median_step_ms"), med("median_wait_ms"), med("median_serialize_ms")
host_ms = f.get("host_compute_ms_per_step") or 0
print(f"where a party's step goes (median over parties, ms): total {step:.1f} = local work {step - wait - ser:.1f}"
      f" + (de)serialisation {ser:.1f} + waiting for hosts {wait:.1f} (of which host compute+host serialisation ~{host_ms:.1f},"
      f" wire and queueing ~{max(0.0, wait - host_ms):.1f})")
if all("median_forward_ms" in p for p in ps):
    print(f"{'phase (median ms)':<18}{'total':>8}{'waiting':>9}{'(de)ser.':>9}{'local':>8}")
    for ph in ("forward", "backward"):
        t, w, z = med(f"median_{ph}_ms"), med(f"median_{ph}_wait_ms"), med(f"median_{ph}_serialize_ms")
        print(f"{ph:<18}{t:>8.1f}{w:>9.1f}{z:>9.1f}{t - w - z:>8.1f}")
    print(f"{'update':<18}{med('median_update_ms'):>8.1f}   (hosts' step_end, own optimizer)")
rows_sent, bs, br = med("median_rows_sent"), med("median_bytes_sent"), med("median_bytes_received")
# minimum: rows x d_model x wire bytes (bf16 on CUDA), both directions, forward and backward
import re
dm = int(re.search(r"d_model:\s*(\d+)", open(preset).read()).group(1))
wb = 2 if "cuda" in devices else 4
minimum = rows_sent * dm * wb * 4
print(f"bytes per step on the wire: {bs + br:.0f} (sent {bs:.0f} + received {br:.0f}); minimum {minimum:.0f}; ratio {(bs + br) / max(minimum, 1):.3f}")
json.dump({"central_tokens_per_s": c_tps, "central_step_ms": cms, "federation": f}, open(f"{d}/../bench-speed-{d.split('speed-')[-1]}.json", "w"))
PY
