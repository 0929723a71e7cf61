#!/usr/bin/env bash
# Draws loss curves (training and held-out) of every party of a federation run — and of the
# centralised baseline, when given — plus the hub's global expert load per MoE layer, as PNGs.
#   scripts/plot.sh RUN_DIR [CENTRAL_METRICS.jsonl]
# RUN_DIR holds party-*/metrics.jsonl and hub/expert_load.jsonl (scripts/run-federation.sh
# layout). Writes RUN_DIR/loss.png and RUN_DIR/expert_load.png; prints their paths.
set -euo pipefail
run=${1:?usage: scripts/plot.sh RUN_DIR [CENTRAL_METRICS.jsonl]}
central=${2:-}
command -v gnuplot >/dev/null || { echo "plot: gnuplot is missing (scripts/setup.sh installs gnuplot-nox)" >&2; exit 1; }
command -v jq >/dev/null || { echo "plot: jq is missing (scripts/setup.sh installs it)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
plots=() evals=()
for m in "$run"/party-*/metrics.jsonl; do
  [[ -f $m ]] || continue
  p=$(basename "$(dirname "$m")")
  jq -r '[.step, .loss] | @tsv' "$m" >"$tmp/$p.train"
  jq -r 'select(.eval_loss != null) | [.step, .eval_loss] | @tsv' "$m" >"$tmp/$p.eval"
  plots+=("'$tmp/$p.train' using 1:2 with lines lw 1 title '$p train'")
  [[ -s $tmp/$p.eval ]] && evals+=("'$tmp/$p.eval' using 1:2 with linespoints lw 2 pt 7 title '$p held-out'")
done
if [[ -n $central && -f $central ]]; then
  jq -r '[.step, .loss] | @tsv' "$central" >"$tmp/central.train"
  jq -r 'select(.eval_loss != null) | [.step, .eval_loss] | @tsv' "$central" >"$tmp/central.eval"
  plots+=("'$tmp/central.train' using 1:2 with lines lw 1 dt 2 title 'central train'")
  [[ -s $tmp/central.eval ]] && evals+=("'$tmp/central.eval' using 1:2 with linespoints lw 2 dt 2 pt 5 title 'central held-out'")
fi
[[ ${#plots[@]} -gt 0 ]] || { echo "plot: no party-*/metrics.jsonl under $run" >&2; exit 1; }
all=$(IFS=,; echo "${plots[*]}${evals:+,}${evals[*]:-}")
gnuplot <<GP
set terminal pngcairo size 1100,650 noenhanced
set output '$run/loss.png'
set title 'pcmoe: loss per party (global step)'
set xlabel 'global step'
set ylabel 'cross-entropy (nats/token)'
set key outside right
set grid
plot $all
GP
echo "$run/loss.png"
load=$run/hub/expert_load.jsonl
if [[ -s $load ]]; then
  # One panel per MoE layer: share of routed tokens per expert over the hub's window (hub.load_window_steps), per global step.
  layers=$(head -1 "$load" | jq '.window | length')
  experts=$(head -1 "$load" | jq '.window[0] | length')
  for ((l = 0; l < layers; l++)); do
    jq -r --argjson l "$l" '[.step] + (.window[$l] | map(. * 100)) | @tsv' "$load" >"$tmp/load$l"
  done
  {
    echo "set terminal pngcairo size 1100,$((260 * layers)) noenhanced"
    echo "set output '$run/expert_load.png'"
    echo "set multiplot layout $layers,1 title 'global expert load (hub window), % of routed tokens per expert'"
    echo "set key outside right"
    echo "set grid"
    for ((l = 0; l < layers; l++)); do
      echo "set title 'MoE layer index $l'"
      printf "plot "
      for ((e = 0; e < experts; e++)); do
        printf "'%s' using 1:%d with lines title 'e%d'%s" "$tmp/load$l" $((e + 2)) "$e" "$([[ $e -lt $((experts - 1)) ]] && echo ,)"
      done
      echo
    done
    echo "unset multiplot"
  } | gnuplot
  echo "$run/expert_load.png"
fi
