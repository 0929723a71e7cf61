#!/usr/bin/env bash
# Checks the per-role compose files as a deployment across machines would use them, on this one
# host: the hub from docker/compose-hub.yml and parties a, b, c each from docker/compose-party.yml,
# four separate compose projects that reach each other only through ports published on this
# host's address (as separate machines would), CURVE on, each with its own key. Checks: all
# healthchecks turn healthy; the status page answers on the host's loopback; the hub process
# killed with SIGKILL is restarted by its restart policy and continues the run from its
# hub_state.json (hub.resumed) while the parties rejoin; the run ends at train.steps with every
# party's model exported; the containers that exited 0 stay down.
#   scripts/docker-roles-demo.sh [--steps N]      (default 600; root: apt, dockerd; see scripts/docker-env.sh)
# Images: docker/build-images.sh (fast path from build/apps) when missing. Exit 0 all pass, 1 not.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT" || exit 1
STEPS=600
[[ ${1:-} == --steps ]] && STEPS=$2
T0=$SECONDS
say() { printf '[docker-roles %4ds] %s\n' $((SECONDS - T0)) "$*"; }
fails=0
check() { if [[ $2 == 1 ]]; then say "PASS  $1: $3"; else say "FAIL  $1: $3"; fails=$((fails + 1)); fi; }
RUN=$(mktemp -d /tmp/pcmoe-docker-roles.XXXXXX)
# shellcheck source=scripts/docker-env.sh
source "$ROOT/scripts/docker-env.sh"
P=pcmoeroles$$
PARTIES=(a b c)
declare -A DATA=([a]=/usr/share/games/fortunes [b]=/usr/share/games/fortunes/de [c]=/usr/include/linux)
declare -A PORT=()
hub_dc() { docker-compose -p "$P-hub" -f docker/compose-hub.yml "$@"; }
party_dc() { local p=$1; shift; docker-compose -p "$P-$p" -f docker/compose-party.yml "$@"; }
cid() { docker ps -aq --filter "label=com.docker.compose.project=$1" | head -1; }
health() { docker inspect -f '{{.State.Health.Status}}' "$1" 2>/dev/null; }
teardown() {
  say "tearing down"
  for p in "${PARTIES[@]}"; do env_party "$p"; party_dc "$p" down -v -t 10 >/dev/null 2>&1; done
  env_hub; hub_dc down -v -t 10 >/dev/null 2>&1
  docker run --rm --network none --user 0 -v "$RUN:/r" --entrypoint sh pcmoe/hub:latest -c 'rm -rf /r/keys' >/dev/null 2>&1
  rm -rf "$RUN"
  docker_env_teardown | while read -r l; do say "$l"; done
}
trap teardown EXIT
docker() { "$DOCKER" "$@"; }
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("",0));print(s.getsockname()[1])'; }

docker_env_setup "$RUN" docker.io docker-compose debootstrap jq > >(while read -r l; do say "$l"; done) ||
  { say "FATAL: $DOCKER_ENV_ERROR"; exit 1; }
if ! docker image inspect pcmoe/hub:latest pcmoe/party:cpu >/dev/null 2>&1; then
  bash docker/build-images.sh 2>&1 | sed 's/^/  /'
fi
HOST=$(hostname -I | awk '{print $1}')
[[ -n $HOST ]] || { say "FATAL: no address of this host to publish on"; exit 1; }

# ---- keys: one folder per participant, each made inside the image, owned by the image's user ----
mkdir -p "$RUN/keys"
keygen() {  # name -> public key
  mkdir -p "$RUN/keys/$1" && chmod 0777 "$RUN/keys/$1"
  docker run --rm --network none --user 10001 -v "$RUN/keys/$1:/k" pcmoe/hub:latest pcmoe-ctl keygen --out /k/curve.key
}
HUB_PUB=$(keygen hub)
# The operator key pair of pcmoe-ctl in the hub's container (the healthcheck's status request).
docker run --rm --network none --user 10001 -v "$RUN/keys/hub:/k" pcmoe/hub:latest \
  pcmoe-ctl keygen --out /k/operator.key >/dev/null
parties_json="["
for p in "${PARTIES[@]}"; do
  pub=$(keygen "party-$p")
  parties_json+="{\"id\":\"$p\",\"public_key\":\"$pub\"},"
  PORT[$p]=$(free_port)
done
parties_json="${parties_json%,}]"
HUB_PORT=$(free_port) HTTP_PORT=$(free_port)
export PCMOE_HEALTH_INTERVAL=3s
export PCMOE_PRESET_SET="train.steps=$STEPS train.batch_size=8 train.warmup_steps=$((STEPS / 10)) train.eval_every=$((STEPS / 4))"
env_hub() {
  export PCMOE_KEYS=$RUN/keys/hub PCMOE_PARTIES=$parties_json PCMOE_HUB_PORT=$HUB_PORT PCMOE_HTTP_PORT=$HTTP_PORT
  export PCMOE_HUB_SET="hub.state_every=5 hub.party_timeout_ms=8000"
}
env_party() {
  export PCMOE_PARTY=$1 PCMOE_HUB=tcp://$HOST:$HUB_PORT PCMOE_ADVERTISE=tcp://$HOST:${PORT[$1]}
  export PCMOE_EXPERT_PORT=${PORT[$1]} PCMOE_DATA=${DATA[$1]} PCMOE_KEYS=$RUN/keys/party-$1 PCMOE_HUB_PUBLIC_KEY=$HUB_PUB
  export PCMOE_PARTY_SET="party.hub_timeout_ms=60000" PCMOE_PARTY_MEMORY=2g
}

# ---- up: four projects, as on four machines ----
env_hub
hub_dc up -d >"$RUN/hub-up.log" 2>&1 || { cat "$RUN/hub-up.log"; exit 1; }
for p in "${PARTIES[@]}"; do
  env_party "$p"
  party_dc "$p" up -d >"$RUN/party-$p-up.log" 2>&1 || { cat "$RUN/party-$p-up.log"; exit 1; }
done
say "hub on $HOST:$HUB_PORT (status page 127.0.0.1:$HTTP_PORT), parties on ports ${PORT[*]}; $STEPS steps"
HUB=$(cid "$P-hub")
status() { docker exec "$HUB" pcmoe-ctl --run /var/lib/pcmoe status --json --timeout-ms 2000 2>/dev/null; }
step=0
for _ in $(seq 1 120); do
  step=$(status | jq -r '.step // 0' 2>/dev/null)
  [[ ${step:-0} -ge $((STEPS / 3)) ]] && break
  sleep 2
done
check "the federation trains across the published ports" $([[ ${step:-0} -ge $((STEPS / 3)) ]] && echo 1 || echo 0) "step ${step:-?}"
for _ in $(seq 1 30); do
  all=1
  for c in "$HUB" $(for p in "${PARTIES[@]}"; do cid "$P-$p"; done); do [[ $(health "$c") == healthy ]] || all=0; done
  [[ $all == 1 ]] && break
  sleep 2
done
if [[ $all != 1 ]]; then
  for c in "$HUB" $(for p in "${PARTIES[@]}"; do cid "$P-$p"; done); do
    docker inspect -f '{{range .State.Health.Log}}{{.ExitCode}} {{.Output}}{{end}}' "$c" | tail -3
  done
fi
check "healthchecks: hub and parties healthy" "$all" "$(for c in "$HUB" $(for p in "${PARTIES[@]}"; do cid "$P-$p"; done); do printf '%s ' "$(health "$c")"; done)"
page=$(curl -s "http://127.0.0.1:$HTTP_PORT/status.json" | jq -r '"\(.state) step \(.step)"' 2>/dev/null)
check "status page on the host's loopback" $([[ $page == training* ]] && echo 1 || echo 0) "${page:-no answer}"

# ---- a crash of the hub: SIGKILL to its process; the restart policy brings it back, it resumes ----
hub_pid=$(docker top "$HUB" -eo pid,comm | awk '$2 == "pcmoe-hub" {print $1}')
before=$(status | jq -r .step)
say "kill -9 pcmoe-hub (host pid $hub_pid) at step $before"
kill -KILL "$hub_pid"
for _ in $(seq 1 60); do
  [[ $(docker logs "$HUB" 2>&1 | grep -c '"hub.resumed"') -ge 1 ]] && break
  sleep 1
done
restarts=$(docker inspect -f '{{.RestartCount}}' "$HUB")
resumed=$(docker logs "$HUB" 2>&1 | grep '"hub.resumed"' | tail -1 | jq -r '"step \(.step) of run \(.run_id)"' 2>/dev/null)
check "restart policy: the killed hub came back and resumed its run" $([[ $restarts -ge 1 && -n $resumed ]] && echo 1 || echo 0) \
  "restarts $restarts, hub.resumed ${resumed:-missing}"

# ---- the end: everyone exits 0 and stays down ----
for _ in $(seq 1 300); do
  [[ $(docker inspect -f '{{.State.Status}}' "$HUB") == exited ]] && break
  sleep 2
done
hub_exit=$(docker inspect -f '{{.State.Status}} {{.State.ExitCode}}' "$HUB")
final=$(docker logs "$HUB" 2>&1 | grep '"hub.finished"' | tail -1 | jq -r '"\(.reason) at step \(.step)/\(.total_steps)"' 2>/dev/null)
check "the hub finished the run and exited 0" $([[ $hub_exit == "exited 0" && $final == "finished at step $STEPS/$STEPS" ]] && echo 1 || echo 0) \
  "$hub_exit, ${final:-no hub.finished}"
for p in "${PARTIES[@]}"; do
  c=$(cid "$P-$p")
  for _ in $(seq 1 60); do [[ $(docker inspect -f '{{.State.Status}}' "$c") == exited ]] && break; sleep 1; done
  st=$(docker inspect -f '{{.State.Status}} {{.State.ExitCode}}' "$c")
  exported=$(docker logs "$c" 2>&1 | grep -c '"party.exported"')
  rejoined=$(docker logs "$c" 2>&1 | grep -c '"party.rejoined"')
  check "party $p exported its model and exited 0" $([[ $st == "exited 0" && $exported -ge 1 ]] && echo 1 || echo 0) \
    "$st, rejoined after the hub's restart: $rejoined"
done
sleep 5
check "exit 0 is not restarted" $([[ $(docker inspect -f '{{.State.Status}}' "$HUB") == exited ]] && echo 1 || echo 0) \
  "hub $(docker inspect -f '{{.State.Status}}, restarts {{.RestartCount}}' "$HUB")"
say "== $([[ $fails == 0 ]] && echo PASS || echo "FAIL ($fails)")"
((fails == 0))
