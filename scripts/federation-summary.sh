#!/usr/bin/env bash
# Prints the summary of a federation run folder (scripts/run-federation.sh's layout: hub/ and
# party-*/ with their logs): the global step reached, and per party the steps it trained, its
# final held-out loss and bits per byte, its expert traffic and its peak memory, in MiB.
#   scripts/federation-summary.sh RUN_DIR
# One definition of bytes, the hub's: the expert traffic of a party's training steps (the rows
# and gradients it sent to other parties' experts and their answers), summed from its step
# reports — what `pcmoe-ctl status` shows as SENT/RECEIVED and the sum of bytes_sent /
# bytes_received in party-*/metrics.jsonl. Read from hub/hub_state.json, which the hub writes at
# the end (and which survives hub restarts); held-out numbers from each party's party.done line.
set -uo pipefail
run=${1:?usage: scripts/federation-summary.sh RUN_DIR}
state=$run/hub/hub_state.json
command -v jq >/dev/null || { echo "summary: jq is missing (scripts/setup.sh installs it)" >&2; exit 1; }
[[ -f $state ]] || { echo "summary: $state missing: the hub never saved its state" >&2; exit 1; }
mib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }
corpus() { case $1 in a) echo "English fortunes" ;; b) echo "German fortunes" ;; c) echo "Linux C headers" ;; *) echo "-" ;; esac; }
# Every line fits 80 columns (but the paths at the end, which are as long as the run folder's).
jq -r '"== pcmoe federation: global step \(.step) of \(.total_steps), hub \(.state)" +
  (if .stop_reason != "" and .stop_reason != .state then " (stop: \(.stop_reason))" else "" end)' "$state"
row='%-5s %-16s %6s %8s %7s %9s %9s %8s\n'
printf "$row" party corpus steps held-out bits/B "sent MiB" "recv MiB" "peak MiB"
while IFS=$'\t' read -r id steps sent recv peak last_eval; do
  done_line=$(grep '"party.done"' "$run/party-$id.log" 2>/dev/null | tail -1)
  loss="-" bpb="-"
  if [[ -n $done_line ]] && jq -e '.eval_loss >= 0' <<<"$done_line" >/dev/null 2>&1; then
    read -r loss bpb < <(jq -r '"\(.eval_loss * 10000 | round / 10000) \(.eval_bpb * 1000 | round / 1000)"' <<<"$done_line")
  elif [[ $last_eval != -1 && $last_eval != null ]]; then
    loss="$last_eval*"  # no final evaluation: the last periodic one
  fi
  printf "$row" "$id" "$(corpus "$id")" "$steps" "$loss" "$bpb" "$(mib "$sent")" "$(mib "$recv")" "$(mib "$peak")"
done < <(jq -r '.parties[] | [.id, .steps_done, .bytes_sent, .bytes_received, .peak_memory_bytes,
  ((.last_eval_loss // -1) * 10000 | round / 10000)] | @tsv' "$state")
if grep -q '"event":"hub.round_open"' "$run/hub.log" 2>/dev/null; then
  echo "party steps: concurrent rounds, a live party trains every global step"
else
  echo "party steps: the steps each party trained; they add up to the global step"
fi
echo "held-out: final held-out loss in nats/token, bits per byte (party.done;"
echo "  * = no final evaluation: the last periodic one)"
echo "sent/recv: expert traffic of its training steps (as pcmoe-ctl status)"
models=$(ls "$run"/party-*/model.pcmoe 2>/dev/null | wc -l)
echo "models (backbone + shared experts): $models of $(jq '.parties | length' "$state") exported,"
echo "  $run/party-*/model.pcmoe"
echo "expert pool: $run/hub/pool.pcmoe"
jq -r '"run: \(.run_id)"' "$state"
# Which experts in each exported model are older than the rest (a host lost before the last pool:
# its experts come from the last snapshot it answered).
for log in "$run"/party-*.log; do
  [[ -f $log ]] || continue
  line=$(grep '"party.exported"' "$log" 2>/dev/null | tail -1)
  [[ -n $line ]] || continue
  older=$(jq -r '[(.older_experts // [])[] ] | join(", ")' <<<"$line" 2>/dev/null)
  if [[ -n $older ]]; then
    echo "  $(basename "$log" .log): experts of $older from an older snapshot ($(jq -c '.expert_steps' <<<"$line"))"
  fi
done
