#!/usr/bin/env bash
# bench/quality.sh [TOTAL_STEPS] — quality of PC-MoE on CPU with the tiny preset (issue:
# federation), every number from models evaluated on held-out text with pcmoe-eval:
#  (a) equal steps per party: each party's federated model (its backbone + the shared experts)
#      vs that party's isolated model (same preset and seed, its own data only, TOTAL/3 steps),
#      on its own domain and on the mean of the three domains' held-out sets;
#  (b) equal total steps: the parties' mean own-domain held-out loss vs pcmoe-central trained on
#      the union for TOTAL steps (evaluated on the same three held-out sets): the ratio.
# Default TOTAL_STEPS 1500. Output: runs/quality/, a table on stdout, runs/quality/quality.json.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
T=${1:-1500}
P=$((T / 3))
OUT=runs/quality
BIN=build/apps
mkdir -p "$OUT"
warm=$((T / 20 > 50 ? 50 : T / 20))
eval_every=$((T / 5))
# Each stage is skipped when its model exists (delete runs/quality to start over), so an
# interrupted run continues where it stopped. One thread each: robust on a busy machine.
if [[ ! -f $OUT/federation/party-c/model.pcmoe ]]; then
  echo "quality: federation of 3 parties, $T global steps ($P per party)"
  bash scripts/run-federation.sh --no-setup --steps "$T" --out "$OUT/federation" >"$OUT/federation.out" 2>&1 ||
    { tail -20 "$OUT/federation.out"; exit 1; }
fi
for p in a b c; do
  [[ -f $OUT/isolated-$p/model.pcmoe ]] && continue
  echo "quality: isolated baseline $p, $P steps"
  "$BIN/pcmoe-central" --config "configs/isolated-$p.yaml" --set "train.steps=$P" --set "train.warmup_steps=$((warm / 3 + 1))" \
    --set "train.eval_every=$((P / 5))" --set "run.out_dir=$OUT/isolated-$p" --set run.resume=false --set run.threads=1 \
    --set run.progress=off --set run.log_file="$OUT/isolated-$p.log" >"$OUT/isolated-$p.json" || exit 1
done
if [[ ! -f $OUT/central/model.pcmoe ]]; then
  echo "quality: centralised baseline on the union, $T steps"
  "$BIN/pcmoe-central" --config configs/central-union.yaml --set "train.steps=$T" --set "train.warmup_steps=$warm" \
    --set "train.eval_every=$eval_every" --set "run.out_dir=$OUT/central" --set run.resume=false --set run.threads=1 \
    --set run.progress=off --set run.log_file="$OUT/central.log" >"$OUT/central.json" || exit 1
fi
echo "quality: evaluating every model on every domain's held-out text"
: >"$OUT/evals.jsonl"
for model in federation/party-a federation/party-b federation/party-c isolated-a isolated-b isolated-c central; do
  for d in a b c; do
    r=$("$BIN/pcmoe-eval" --config "configs/isolated-$d.yaml" --checkpoint "$OUT/$model/model.pcmoe" --set run.log_level=warn) || exit 1
    echo "$r" | jq -c --arg m "$model" --arg d "$d" '. + {model: $m, domain: $d}' >>"$OUT/evals.jsonl"
  done
done
python3 - "$OUT" "$T" <<'PY'
import json, sys
out, T = sys.argv[1], int(sys.argv[2])
ev = {}
for l in open(f"{out}/evals.jsonl"):
    r = json.loads(l); ev[(r["model"], r["domain"])] = r
L = lambda m, d: ev[(m, d)]["loss"]
B = lambda m, d: ev[(m, d)]["bpb"]
names = {"a": "English fortunes", "b": "German fortunes", "c": "Linux C headers"}
print(f"\n== (a) equal steps per party ({T // 3} each): held-out loss (nats/token; bits per byte in brackets), lower is better")
print(f"{'party':<6}{'domain':<18}{'PC-MoE own':>16}{'isolated own':>16}{'gain':>8}{'PC-MoE union':>15}{'isolated union':>16}{'gain':>8}")
res = {"total_steps": T, "parties": {}}
for p in "abc":
    f, i = f"federation/party-{p}", f"isolated-{p}"
    fu = sum(L(f, d) for d in "abc") / 3
    iu = sum(L(i, d) for d in "abc") / 3
    print(f"{p:<6}{names[p]:<18}{L(f,p):>9.4f} ({B(f,p):.2f}){L(i,p):>9.4f} ({B(i,p):.2f}){100*(1-L(f,p)/L(i,p)):>7.1f}%{fu:>15.4f}{iu:>16.4f}{100*(1-fu/iu):>7.1f}%")
    res["parties"][p] = {"pcmoe_own": L(f, p), "isolated_own": L(i, p), "pcmoe_union": fu, "isolated_union": iu,
                         "pcmoe_own_bpb": B(f, p), "isolated_own_bpb": B(i, p)}
fed_mean = sum(L(f"federation/party-{p}", p) for p in "abc") / 3
cen_mean = sum(L("central", d) for d in "abc") / 3
print(f"\n== (b) equal total steps ({T}): parties' mean own-domain held-out loss vs pcmoe-central on the union")
print(f"{'':<34}" + "".join(f"{names[d]:>18}" for d in "abc") + f"{'mean':>10}")
print(f"{'PC-MoE (each party, own domain)':<34}" + "".join(f"{L(f'federation/party-{d}', d):>18.4f}" for d in "abc") + f"{fed_mean:>10.4f}")
print(f"{'pcmoe-central (union)':<34}" + "".join(f"{L('central', d):>18.4f}" for d in "abc") + f"{cen_mean:>10.4f}")
print(f"ratio PC-MoE / central: {fed_mean / cen_mean:.4f}")
res["central"] = {d: L("central", d) for d in "abc"}
res["ratio_pcmoe_over_central"] = fed_mean / cen_mean
json.dump(res, open(f"{out}/quality.json", "w"), indent=1)
PY
