#!/usr/bin/env bash
# bench/privacy_audit.sh BUILD OUT [SCENARIO...] — the privacy audit (README "Privacy"): for each
# scenario, the demo federation (hub + parties a: English fortunes, b: German fortunes, c: Linux C
# headers; tiny preset, $STEPS global steps, private seeds drawn from the OS) with audit capture on,
# then pcmoe-attack as every host against the two others (all six victim -> host pairs, every MoE
# layer, white box included), and the hub's view (bench/hub_view.py: the target run against a
# shadow run of the same scenario). Ends with bench/privacy_report.py's tables and
# OUT/privacy-audit.json.
# Scenarios (default: all but the shadows, which the hub view adds for private and shared):
#   private         the defaults: every backbone from its party's private seed
#   shared          privacy.shared_init: every backbone from one initialisation (the leaking case)
#   shared-rotate   shared + privacy.rotate_hidden (a private rotation of each party's hidden space)
#   shared-local0   shared + privacy.local_only_layers=0 (the first MoE layer's rows never leave)
#   shared-noise    shared + privacy.row_clip=$CLIP privacy.row_noise_std=$SIGMA (the attacker
#                   trains on rows noised alike: it knows the defence's parameters)
# Env: STEPS (600), CAPTURE_EVERY (10), CLIP (8), SIGMA (0.1), BATCHES (the attacker's own batches,
# 32), MAX_ROWS (victim rows scored per pair and layer, 8000), HUB_VIEW (1: shadow runs for the hub
# view). About 6 minutes a scenario on 2 cores.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
[[ $# -ge 2 ]] || { sed -n '2,22p' "$0"; exit 2; }
BUILD=$(cd "$1" && pwd) OUT=$2
shift 2
mkdir -p "$OUT" && OUT=$(cd "$OUT" && pwd)
SCENARIOS=("$@")
[[ ${#SCENARIOS[@]} -gt 0 ]] || SCENARIOS=(private shared shared-rotate shared-local0 shared-noise)
STEPS=${STEPS:-600} EVERY=${CAPTURE_EVERY:-10} CLIP=${CLIP:-8} SIGMA=${SIGMA:-0.1}
BATCHES=${BATCHES:-32} MAX_ROWS=${MAX_ROWS:-8000} HUB_VIEW=${HUB_VIEW:-1}

defence() {  # scenario -> party --set words
  case $1 in
    private | private-shadow) ;;
    shared | shared-shadow) echo privacy.shared_init=true ;;
    shared-rotate) echo privacy.shared_init=true privacy.rotate_hidden=true ;;
    shared-local0) echo privacy.shared_init=true privacy.local_only_layers=0 ;;
    shared-noise) echo privacy.shared_init=true privacy.row_clip=$CLIP privacy.row_noise_std=$SIGMA ;;
    *) echo "privacy_audit: unknown scenario '$1'" >&2; return 1 ;;
  esac
}

federation() {  # scenario [capture]
  local name=$1 dir=$OUT/$1 sets=() kv
  defence "$name" >/dev/null || exit 2
  if [[ -f $dir/party-a/model.pcmoe && -f $dir/party-b/model.pcmoe && -f $dir/party-c/model.pcmoe ]] &&
    grep -q "global step $STEPS of $STEPS, hub finished" "$OUT/$name.federation.txt" 2>/dev/null; then
    echo "privacy_audit: $name: the federation in $dir is complete: kept (delete it to train again)"
    return
  fi
  for kv in run.seed=0 $(defence "$name"); do sets+=(--party-set "$kv"); done
  [[ ${2:-1} == 1 ]] && sets+=(--party-set audit.capture=both --party-set "audit.capture_every=$EVERY")
  echo "privacy_audit: $name: federation of $STEPS steps (${sets[*]})"
  bash "$ROOT/scripts/run-federation.sh" --no-setup --steps "$STEPS" --out "$dir" --http off "${sets[@]}" \
    >"$OUT/$name.federation.txt" 2>&1 || { tail -20 "$OUT/$name.federation.txt"; exit 1; }
}

attacks() {  # scenario
  local name=$1 dir=$OUT/$1 host v args
  for host in a b c; do
    args=(--config "$ROOT/configs/party-$host.yaml" --set run.threads=2 --set run.log_level=warn
      --model "$dir/party-$host/model.pcmoe" --capture "$dir/party-$host/audit/received.cap"
      --batches "$BATCHES" --max-rows "$MAX_ROWS" --out "$dir/attack-$host.json")
    for v in a b c; do
      [[ $v == "$host" ]] && continue
      args+=(--truth "$v=$dir/party-$v/audit/sent.cap" --victim-model "$v=$dir/party-$v/model.pcmoe")
    done
    [[ $name == shared-noise ]] && args+=(--assume-clip "$CLIP" --assume-noise "$SIGMA")
    echo "privacy_audit: $name: host $host attacks"
    "$BUILD/apps/pcmoe-attack" "${args[@]}" >"$dir/attack-$host.txt" 2>&1 || { tail -20 "$dir/attack-$host.txt"; exit 1; }
  done
}

t0=$SECONDS
for s in "${SCENARIOS[@]}"; do
  federation "$s"
  attacks "$s"
  if [[ $HUB_VIEW == 1 && ($s == private || $s == shared) ]]; then
    federation "$s-shadow" 0
    python3 "$ROOT/bench/hub_view.py" "$OUT/$s/hub" "$OUT/$s-shadow/hub" --json "$OUT/$s/hub-view.json" |
      tee "$OUT/$s/hub-view.txt"
  fi
  echo "privacy_audit: $s done after $((SECONDS - t0)) s"
done
python3 "$ROOT/bench/privacy_report.py" "$OUT" "${SCENARIOS[@]}"
