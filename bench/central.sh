#!/usr/bin/env bash
# bench/central.sh BUILD OUT — on the GPU machine (via scripts/gpu-run.sh bench-central):
# pcmoe-central vs a plain PyTorch eager implementation of the identical model (bench/torch_peer.py),
# same preset, batch, sequence length and dtype, fixed number of steps on real text. Prints
# tokens/s (median step after warm-up) and peak GPU memory for both, and the ratio.
# Env: PRESET (default configs/models/small.yaml), STEPS (default 200).
set -uo pipefail
BUILD=$1
OUT=$2
ROOT=$(cd "$(dirname "$0")/.." && pwd)
source "$ROOT/bench/common.sh"
PRESET=${PRESET:-$ROOT/configs/models/small.yaml}
STEPS=${STEPS:-200}
WARM=20
CORPUS=$ROOT/.gpu-deps/corpus
mkdir -p "$OUT/central-bench"
write_central_config "$OUT/central-bench.yaml" "$PRESET" "$CORPUS" "$OUT/central-bench" cuda
"$BUILD/apps/pcmoe-central" --config "$OUT/central-bench.yaml" --set train.steps=$STEPS --set train.warmup_steps=10 \
  --set train.eval_every=0 --set train.eval_batches=1 >"$OUT/central-bench.json" 2>"$OUT/central-bench.log" \
  || { tail -20 "$OUT/central-bench.log"; exit 1; }
mkdir -p "$OUT/central-loop"
sed "s|out_dir: $OUT/central-bench|out_dir: $OUT/central-loop|" "$OUT/central-bench.yaml" >"$OUT/central-loop.yaml"
PCMOE_GROUPED_MM=0 "$BUILD/apps/pcmoe-central" --config "$OUT/central-loop.yaml" --set train.steps=$STEPS --set train.warmup_steps=10 \
  --set train.eval_every=0 --set train.eval_batches=1 >"$OUT/central-loop.json" 2>"$OUT/central-loop.log" \
  || { tail -20 "$OUT/central-loop.log"; exit 1; }
python3 "$ROOT/bench/torch_peer.py" --preset "$PRESET" --text "$CORPUS/fortunes-en" --steps $STEPS --warmup $WARM \
  >"$OUT/torch-peer.json" 2>"$OUT/torch-peer.log" || { tail -20 "$OUT/torch-peer.log"; exit 1; }
python3 - "$OUT" "$PRESET" $WARM <<'PY'
import json, statistics, sys
out, preset, warm = sys.argv[1], sys.argv[2], int(sys.argv[3])
def load(d):
    rows = [json.loads(l) for l in open(f"{out}/{d}/metrics.jsonl")]
    ms = statistics.median(r["step_ms"] for r in rows[warm:])
    tokens = rows[1]["tokens"] - rows[0]["tokens"]
    return rows, tokens, {"tokens_per_s": tokens / (ms / 1e3), "median_step_ms": ms,
                          "peak_memory_bytes": max(r["peak_memory_bytes"] for r in rows)}
rows, tokens, ours = load("central-bench")
_, _, loop = load("central-loop")
peer = json.loads(open(f"{out}/torch-peer.json").read())
print(f"\n== pcmoe-central vs PyTorch eager ({preset.split('/')[-1]}, {len(rows)} steps, batch x seq = {tokens} tokens, {peer['dtype']}, torch {peer['torch']})")
print(f"{'implementation':<24}{'tokens/s':>12}{'median step ms':>16}{'peak GPU MiB':>14}")
for name, r in (("pcmoe-central (C++)", ours), ("  same, per-expert loop", loop), ("PyTorch eager (Python)", peer)):
    print(f"{name:<24}{r['tokens_per_s']:>12.0f}{r['median_step_ms']:>16.2f}{r['peak_memory_bytes']/2**20:>14.0f}")
print(f"speed ratio pcmoe/pytorch: {ours['tokens_per_s']/peer['tokens_per_s']:.3f}   memory ratio: {ours['peak_memory_bytes']/peer['peak_memory_bytes']:.3f}")
json.dump({"pcmoe": ours, "pcmoe_loop": loop, "pytorch": peer}, open(f"{out}/bench-central.json", "w"))
PY
