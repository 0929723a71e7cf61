#!/usr/bin/env bash
# Draws the loss curves of every party of a federation run — training thin, held-out bold, one hue
# per party — and of the centralised baseline when given (black, dashed), plus the hub's global
# expert load per MoE layer: one line per expert in the hue of the party that hosts it (the
# placement in hub/hub_state.json, named in the legend), and the uniform load 100/m % dashed.
#   scripts/plot.sh RUN_DIR [CENTRAL_METRICS.jsonl]
# RUN_DIR holds party-*/metrics.jsonl, hub/expert_load.jsonl and hub/hub_state.json
# (scripts/run-federation.sh layout). Writes RUN_DIR/loss.png and RUN_DIR/expert_load.png; prints
# their paths. The hues are the hub status page's (lib/hub/status_page.cpp), by party index.
set -euo pipefail
run=${1:?usage: scripts/plot.sh RUN_DIR [CENTRAL_METRICS.jsonl]}
central=${2:-}
command -v gnuplot >/dev/null || { echo "plot: gnuplot is missing (scripts/setup.sh installs gnuplot-nox)" >&2; exit 1; }
command -v jq >/dev/null || { echo "plot: jq is missing (scripts/setup.sh installs it)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
hues=("#1f77b4" "#d62728" "#2ca02c" "#ff7f0e" "#9467bd" "#8c564b" "#e377c2" "#7f7f7f" "#bcbd22" "#17becf")
state=$run/hub/hub_state.json
# Party id -> index (the hub's order); without hub_state.json, the order of the party folders.
declare -A index
if [[ -f $state ]]; then
  while IFS=$'\t' read -r id i; do index[$id]=$i; done < <(jq -r '.parties[] | [.id, .index] | @tsv' "$state")
fi

# ---- loss.png ----
trains=() evals=() n=0
for m in "$run"/party-*/metrics.jsonl; do
  [[ -f $m ]] || continue
  dir=$(basename "$(dirname "$m")")
  id=${dir#party-}
  i=${index[$id]:-$n}
  n=$((n + 1))
  hue=${hues[$((i % ${#hues[@]}))]}
  jq -r '[.step, .loss] | @tsv' "$m" >"$tmp/$dir.train"
  jq -r 'select(.eval_loss != null) | [.step, .eval_loss] | @tsv' "$m" >"$tmp/$dir.eval"
  trains+=("'$tmp/$dir.train' using 1:2 with lines lw 1 lc rgb '$hue' title '$id train'")
  [[ -s $tmp/$dir.eval ]] &&
    evals+=("'$tmp/$dir.eval' using 1:2 with linespoints lw 3 pt 7 ps 1.2 lc rgb '$hue' title '$id held-out'")
done
[[ ${#trains[@]} -gt 0 ]] || { echo "plot: no party-*/metrics.jsonl under $run" >&2; exit 1; }
if [[ -n $central && -f $central ]]; then
  jq -r '[.step, .loss] | @tsv' "$central" >"$tmp/central.train"
  jq -r 'select(.eval_loss != null) | [.step, .eval_loss] | @tsv' "$central" >"$tmp/central.eval"
  trains+=("'$tmp/central.train' using 1:2 with lines lw 1 dt 2 lc rgb 'black' title 'central train'")
  [[ -s $tmp/central.eval ]] &&
    evals+=("'$tmp/central.eval' using 1:2 with linespoints lw 3 dt 2 pt 5 lc rgb 'black' title 'central held-out'")
fi
all=$(IFS=,; echo "${trains[*]}${evals:+,}${evals[*]:-}")
gnuplot <<GP
set terminal pngcairo size 1100,650 noenhanced
set output '$run/loss.png'
set title 'pcmoe: loss per party, training (thin) and held-out (bold)'
set xlabel 'global step'
set ylabel 'cross-entropy (nats/token)'
set key outside right
set grid
plot $all
GP
echo "$run/loss.png"

# ---- expert_load.png ----
load=$run/hub/expert_load.jsonl
[[ -s $load ]] || exit 0
layers=$(head -1 "$load" | jq '.window | length')
experts=$(head -1 "$load" | jq '.window[0] | length')
# Host party of each expert per layer (party index), and the MoE layer numbers, from hub_state.json.
placement='[]' moe='[]' ids='[]'
if [[ -f $state ]] && jq -e '.placement' "$state" >/dev/null 2>&1; then
  placement=$(jq -c '.placement' "$state")
  moe=$(jq -c '.moe_layers' "$state")
  ids=$(jq -c '[.parties | sort_by(.index)[] | .id]' "$state")
fi
for ((l = 0; l < layers; l++)); do
  jq -r --argjson l "$l" '[.step] + (.window[$l] | map(. * 100)) | @tsv' "$load" >"$tmp/load$l"
done
{
  echo "set terminal pngcairo size 1100,$((290 * layers)) noenhanced"
  echo "set output '$run/expert_load.png'"
  echo "set multiplot layout $layers,1 title 'global expert load: % of routed tokens per expert (hub window, hub.load_window_steps)'"
  echo "set key outside right"
  echo "set grid"
  echo "set xlabel 'global step'"
  echo "set ylabel '% of routed tokens'"
  uniform=$(awk -v m="$experts" 'BEGIN { printf "%.4g", 100 / m }')
  for ((l = 0; l < layers; l++)); do
    echo "set title 'MoE layer $(jq -r --argjson l "$l" '.[$l] // $l' <<<"$moe")'"
    printf "plot "
    for ((e = 0; e < experts; e++)); do
      host=$(jq -r --argjson l "$l" --argjson e "$e" '.[$l][$e] // -1' <<<"$placement")
      if [[ $host -ge 0 ]]; then
        name=$(jq -r --argjson h "$host" '.[$h] // $h' <<<"$ids")
        # The experts of one host share its hue and differ by dash pattern.
        printf "'%s' using 1:%d with lines lw 1.5 lc rgb '%s' dt %d title 'e%d on %s', " "$tmp/load$l" $((e + 2)) \
          "${hues[$((host % ${#hues[@]}))]}" $((e / (${#index[@]} > 0 ? ${#index[@]} : 1) % 5 + 1)) "$e" "$name"
      else
        printf "'%s' using 1:%d with lines lw 1.5 title 'e%d', " "$tmp/load$l" $((e + 2)) "$e"
      fi
    done
    echo "$uniform with lines lw 2 dt 2 lc rgb 'black' title 'uniform $uniform%'"
  done
  echo "unset multiplot"
} | gnuplot
echo "$run/expert_load.png"
