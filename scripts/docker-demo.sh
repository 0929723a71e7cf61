#!/usr/bin/env bash
# End-to-end Docker demo and test (CI runs it as root on a fresh Debian 12 machine): a hub and three
# parties in containers (docker/docker-compose.yml), CURVE on, each party training on its own
# corpus, one party killed (SIGKILL) mid-run; ends with a PASS/FAIL table, exit 1 on any FAIL.
#   scripts/docker-demo.sh [--full-build] [--bin-dir DIR] [--steps N] [--kill-at N | --no-kill]
#                          [--schedule sequential|concurrent] [--timeout S] [--keep-logs] [--clean]
#   --full-build   compile inside Docker (docker/Dockerfile) instead of copying host binaries
#   --bin-dir DIR  host binaries for the fast path (default build/apps; built here when missing)
#   --steps N      global steps (default 300); --kill-at N: kill party c at global step N (default 2/3)
#   --schedule S   hub.schedule (default sequential; concurrent: every party trains every step)
#   --timeout S    limit for the training phase (default 900 s)
#   --keep-logs    keep the run folder (logs, metrics) even on success;  --clean: remove the images too
# Steps: apt (docker.io, docker-compose, debootstrap, jq) if missing; dockerd if not running (stopped
# again at the end); images (docker/build-images.sh: base image cached, fast path by default); keys
# (docker/keys.sh); docker-compose up; watch `pcmoe ctl status --json` in the hub container; checks;
# docker-compose down -v. A trap removes containers, network, volumes and keys on any exit.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT" || exit 1
T_START=$SECONDS
FULL=0 CLEAN=0 KEEP_LOGS=0 KILL=1
STEPS=300 KILL_AT="" TRAIN_TIMEOUT=900 SCHEDULE=sequential
BIN_DIR=$ROOT/build/apps
while [[ $# -gt 0 ]]; do
  case $1 in
    --full-build) FULL=1; shift ;;
    --bin-dir) BIN_DIR=$2; shift 2 ;;
    --steps) STEPS=$2; shift 2 ;;
    --schedule) SCHEDULE=${2:-}; shift 2 ;;
    --kill-at) KILL_AT=$2; shift 2 ;;
    --no-kill) KILL=0; shift ;;
    --timeout) TRAIN_TIMEOUT=$2; shift 2 ;;
    --keep-logs) KEEP_LOGS=1; shift ;;
    --clean) CLEAN=1; shift ;;
    -h | --help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "docker-demo: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
done
for v in STEPS TRAIN_TIMEOUT ${KILL_AT:+KILL_AT}; do
  [[ ${!v} =~ ^[0-9]+$ && ${!v} -gt 0 ]] || { echo "docker-demo: $v must be a positive integer" >&2; exit 2; }
done
[[ $SCHEDULE == sequential || $SCHEDULE == concurrent ]] ||
  { echo "docker-demo: --schedule must be sequential or concurrent" >&2; exit 2; }
[[ -n $KILL_AT ]] || KILL_AT=$((STEPS * 2 / 3))
((KILL_AT < STEPS)) || { echo "docker-demo: --kill-at must be below --steps" >&2; exit 2; }

# The run's settings. Small batches keep 300 steps within minutes on 2 shared cores. Short timeouts
# make the loss of the killed party visible within seconds, but hub.party_timeout_ms must stay above
# the longest silent stretch of a live party (it does not heartbeat while it computes a step or an
# evaluation; older builds were also silent while waiting for a dead host, up to
# party.request_timeout_ms); $PCMOE_DEMO_PARTY_TIMEOUT_MS overrides it. Pool snapshots before the
# kill keep the killed party's experts, so the survivors can still export a complete model.
EVAL_EVERY=$((STEPS / 6 > 0 ? STEPS / 6 : 1))
SNAPSHOT_EVERY=$((KILL_AT / 2 < EVAL_EVERY ? KILL_AT / 2 : EVAL_EVERY))
((SNAPSHOT_EVERY > 0)) || SNAPSHOT_EVERY=1
export PCMOE_PRESET_SET="train.steps=$STEPS train.batch_size=8 train.warmup_steps=$((STEPS / 10)) train.eval_every=$EVAL_EVERY train.eval_batches=4"
# Concurrent rounds: the experts' rate for the mean of 3 parties' gradients (README "Two schedules").
[[ $SCHEDULE == concurrent ]] && PCMOE_PRESET_SET+=" train.expert_lr_scale=3"
export PCMOE_HUB_SET="hub.party_timeout_ms=${PCMOE_DEMO_PARTY_TIMEOUT_MS:-5000} hub.heartbeat_ms=500 hub.snapshot_every=$SNAPSHOT_EVERY hub.schedule=$SCHEDULE"
export PCMOE_PARTY_SET="party.request_timeout_ms=2000 party.heartbeat_ms=500 party.hub_timeout_ms=30000"
export PCMOE_PARTY_MEMORY=2g PCMOE_PARTY_CPUS=1.0
PROJECT=pcmoedemo$$
RUN=$(mktemp -d /tmp/pcmoe-docker-demo.XXXXXX)
LOGS=$RUN/logs
mkdir -p "$LOGS"
# shellcheck source=scripts/docker-env.sh
source "$ROOT/scripts/docker-env.sh"

say() { printf '[docker-demo %4ds] %s\n' $((SECONDS - T_START)) "$*"; }
now_ms() { date +%s%3N; }
ts_ms() { date -d "$1" +%s%3N; }

# ---- results table ----
declare -a R_NAME=() R_OK=() R_INFO=()
check() {  # name ok(0/1) info
  R_NAME+=("$1"); R_OK+=("$2"); R_INFO+=("$3")
  if [[ $2 == 1 ]]; then say "PASS  $1: $3"; else say "FAIL  $1: $3"; fi
}
table_ok() {
  local i
  ((${#R_NAME[@]} > 0)) || return 1
  for i in "${!R_OK[@]}"; do [[ ${R_OK[$i]} == 1 ]] || return 1; done
}
table() {
  local n_fail=0 i
  TABLE_DONE=1
  echo
  echo "== pcmoe docker demo: $PROJECT, $STEPS global steps ($SCHEDULE), $((SECONDS - T_START)) s in all"
  printf '%-6s %-34s %s\n' result check detail
  for i in "${!R_NAME[@]}"; do
    local r=PASS
    [[ ${R_OK[$i]} == 1 ]] || { r=FAIL; n_fail=$((n_fail + 1)); }
    printf '%-6s %-34s %s\n' "$r" "${R_NAME[$i]}" "${R_INFO[$i]}"
  done
  if ((n_fail == 0 && ${#R_NAME[@]} > 0)); then echo "== PASS (${#R_NAME[@]} checks)"; else echo "== FAIL ($n_fail of ${#R_NAME[@]} checks failed)"; fi
  echo "docker-demo: $((${#R_NAME[@]} - n_fail)) passed, $n_fail failed"
  return $((n_fail > 0 || ${#R_NAME[@]} == 0))
}

# ---- docker and compose ----
docker() { "$DOCKER" "$@"; }
dc() { docker-compose -p "$PROJECT" -f "$ROOT/docker/docker-compose.yml" --env-file "$RUN/keys/compose.env" "$@"; }
declare -A CID=()
SERVICES=(hub party-a party-b party-c)
clogs() { [[ -n ${CID[$1]:-} ]] && docker logs "${CID[$1]}" 2>&1; }       # a container's log (JSON lines)
events() { clogs "$1" | grep -F "\"event\":\"$2\""; }                       # its events of one name
status_json() { docker exec "${CID[hub]}" pcmoe ctl status --json --timeout-ms 3000 2>/dev/null; }

save_logs() {
  local s
  for s in "${SERVICES[@]}"; do clogs "$s" >"$LOGS/$s.log" 2>/dev/null || true; done
  dc ps >"$LOGS/compose-ps.txt" 2>&1 || true
}
dump_logs() {
  local s
  echo "---- last lines of each container's log (all of them in $LOGS) ----"
  for s in "${SERVICES[@]}"; do
    [[ -s $LOGS/$s.log ]] || continue
    echo "-- $s"
    grep -vE '"event":"hub.turn(_done|_order)?"' "$LOGS/$s.log" | tail -15 | cut -c1-400
  done
}

UP=0 TABLE_DONE=0
compose_down() {  # rc: on failure, the logs are printed too
  [[ $UP == 1 ]] || return 0
  save_logs
  [[ ${1:-0} != 0 ]] && dump_logs
  say "tearing down (docker-compose down -v)"
  dc down -v --remove-orphans -t 10 >"$LOGS/down.log" 2>&1 || cat "$LOGS/down.log"
  # Belt and braces: anything of this project that down missed.
  local ids kind
  for kind in container network volume; do
    case $kind in
      container) ids=$(docker ps -aq --filter "label=com.docker.compose.project=$PROJECT") ;;
      network) ids=$(docker network ls -q --filter "label=com.docker.compose.project=$PROJECT") ;;
      volume) ids=$(docker volume ls -q --filter "label=com.docker.compose.project=$PROJECT") ;;
    esac
    [[ -z $ids ]] && continue
    # shellcheck disable=SC2086
    case $kind in
      container) docker rm -f $ids >/dev/null 2>&1 ;;
      *) docker "$kind" rm $ids >/dev/null 2>&1 ;;
    esac
  done
  UP=0
}
leftovers() {  # "N containers, N networks, N volumes" of this project
  local c n v f="label=com.docker.compose.project=$PROJECT"
  c=$(docker ps -aq --filter "$f" | wc -l)
  n=$(docker network ls -q --filter "$f" | wc -l)
  v=$(docker volume ls -q --filter "$f" | wc -l)
  echo "$c containers, $n networks, $v volumes"
  [[ $c == 0 && $n == 0 && $v == 0 ]]
}
on_exit() {
  local rc=$?
  trap - EXIT INT TERM
  [[ -n $DOCKER ]] && compose_down "$rc"
  [[ -d $RUN/keys ]] && { rm -rf "$RUN/keys" 2>/dev/null || bash docker/keys.sh --remove "$RUN/keys"; }
  if [[ $CLEAN == 1 && -n $DOCKER ]]; then
    say "--clean: removing the images"
    docker image rm "${PCMOE_HUB_IMAGE:-pcmoe/hub:latest}" "${PCMOE_PARTY_IMAGE:-pcmoe/party:cpu}" \
      "${PCMOE_BASE_IMAGE:-pcmoe/debian:bookworm}" >/dev/null 2>&1
    docker image prune -f >/dev/null 2>&1
  fi
  docker_env_teardown | while read -r l; do say "$l"; done
  if [[ $rc != 0 ]] && table_ok; then check "${CURRENT_PHASE:-setup}" 0 "exit status $rc"; fi
  [[ $TABLE_DONE == 1 ]] || { table || rc=1; }
  ((rc == 0)) && ! table_ok && rc=1
  if [[ $rc != 0 || $KEEP_LOGS == 1 ]]; then
    say "logs kept in $LOGS"
  else
    rm -rf "$RUN"
  fi
  exit "$rc"
}
trap on_exit EXIT
trap 'say "interrupted"; check "${CURRENT_PHASE:-setup}" 0 "interrupted by a signal"; exit 130' INT TERM
die() { say "FATAL: $*"; check "${CURRENT_PHASE:-setup}" 0 "$*"; exit 1; }

# ---- 1. packages, 2. dockerd ----
CURRENT_PHASE="packages and dockerd"
docker_env_setup "$LOGS" docker.io docker-compose debootstrap jq > >(while read -r l; do say "$l"; done) ||
  die "$DOCKER_ENV_ERROR"
say "docker $(docker version --format '{{.Server.Version}}' 2>/dev/null), $(docker-compose version --short 2>/dev/null)"

# ---- 3. images ----
CURRENT_PHASE="images"
build_args=()
if [[ $FULL == 1 ]]; then
  build_args+=(--full-build)
else
  have_bins=1
  for b in pcmoe-hub pcmoe-ctl pcmoe-party pcmoe-eval pcmoe-central; do [[ -x $BIN_DIR/$b ]] || have_bins=0; done
  if [[ $have_bins == 0 && $BIN_DIR == "$ROOT/build/apps" ]]; then
    say "no host binaries in build/apps: building them (scripts/setup.sh, cmake --preset default; long on 2 cores)"
    { bash scripts/setup.sh && { [[ -f build/build.ninja ]] || cmake --preset default; } &&
      cmake --build --preset default --target pcmoe-hub pcmoe-ctl pcmoe-party pcmoe-eval pcmoe-central; } \
      >"$LOGS/host-build.log" 2>&1 || { tail -30 "$LOGS/host-build.log"; die "host build failed"; }
  fi
  build_args+=(--bin-dir "$BIN_DIR")
fi
t0=$SECONDS
bash docker/build-images.sh "${build_args[@]}" 2>&1 | tee "$LOGS/images.log" | sed 's/^/  /'
[[ ${PIPESTATUS[0]} == 0 ]] || die "image build failed (docker/build-images.sh ${build_args[*]})"
T_IMAGES=$((SECONDS - t0))
sizes=$(docker image ls --format '{{.Repository}}:{{.Tag}}={{.Size}}' | grep -E '^pcmoe/(hub:latest|party:cpu)=' | tr '\n' ' ')
check "images ($([[ $FULL == 1 ]] && echo full build || echo fast path))" 1 "${T_IMAGES}s; $sizes"

# ---- 4. keys, network, 5. up ----
# A /24 for the federation's fixed addresses that no docker network uses yet (docker-compose.yml).
used=$(docker network ls -q | xargs -r "$DOCKER" network inspect -f '{{range .IPAM.Config}}{{.Subnet}} {{end}}' 2>/dev/null)
for i in $(seq 77 99); do
  grep -qE "(^| )10\.213\.$i\." <<<"$used" || { export PCMOE_NET=10.213.$i; break; }
done
[[ -n ${PCMOE_NET:-} ]] || die "no free 10.213.77-99.0/24 for the federation network"
CURRENT_PHASE="keys"
bash docker/keys.sh "$RUN/keys" >"$LOGS/keys.log" 2>&1 || { cat "$LOGS/keys.log"; die "docker/keys.sh failed"; }
CURRENT_PHASE="compose up"
say "docker-compose up -d (project $PROJECT): $PCMOE_PRESET_SET"
UP=1
T_UP=$SECONDS
dc up -d >"$LOGS/up.log" 2>&1 || { cat "$LOGS/up.log"; die "docker-compose up failed"; }
for s in "${SERVICES[@]}"; do
  CID[$s]=$(dc ps -q "$s")
  [[ -n ${CID[$s]} ]] || die "no container for service $s"
done
exit_code() { docker inspect -f '{{.State.ExitCode}}' "${CID[$1]}" 2>/dev/null; }
running() { [[ $(docker inspect -f '{{.State.Running}}' "${CID[$1]}" 2>/dev/null) == true ]]; }

# ---- 6. watch: join, train, kill, continue, finish ----
CURRENT_PHASE="training"
max_alive=0 step=0 kill_ms="" step_at_kill="" killed=0 lost_ms="" lost_step="" last_print=0
deadline=$((SECONDS + TRAIN_TIMEOUT))
while true; do
  running hub || break
  if ((SECONDS > deadline)); then die "training did not finish within ${TRAIN_TIMEOUT}s (step $step of $STEPS)"; fi
  for s in party-a party-b party-c; do
    [[ $s == party-c && $killed == 1 ]] && continue
    if ! running "$s" && ! events "$s" party.done >/dev/null; then
      die "$s stopped unexpectedly (exit $(exit_code "$s")) at step $step"
    fi
  done
  if j=$(status_json) && [[ -n $j ]]; then
    step=$(jq -r '.step' <<<"$j")
    alive=$(jq -r '[.parties[] | select(.alive)] | length' <<<"$j")
    ((alive > max_alive)) && max_alive=$alive
    if ((SECONDS - last_print >= 10)); then
      last_print=$SECONDS
      say "$(jq -r '"step \(.step)/\(.total_steps) \(.state), alive \([.parties[] | select(.alive)] | length)/3, loss " + ([.parties[] | "\(.id) \(if .last_loss < 0 then "-" else (.last_loss * 100 | round / 100) end)"] | join(" "))' <<<"$j")"
    fi
    if [[ $KILL == 1 && $killed == 0 ]] && ((step >= KILL_AT)); then
      say "docker kill (SIGKILL) party-c at global step $step"
      kill_ms=$(now_ms)
      step_at_kill=$step
      docker kill "${CID[party-c]}" >/dev/null || die "docker kill party-c failed"
      killed=1
    fi
  fi
  if [[ $killed == 1 && -z $lost_ms ]]; then
    if line=$(events hub hub.party_lost | grep -F '"party":"c"' | tail -1) && [[ -n $line ]]; then
      lost_ms=$(ts_ms "$(jq -r '.ts' <<<"$line")")
      lost_step=$(jq -r '.step' <<<"$line")
      say "hub marked c lost after $((lost_ms - kill_ms)) ms (step $lost_step)"
    elif (($(now_ms) - kill_ms > 60000)); then
      die "the hub did not mark the killed party c lost within 60 s"
    fi
  fi
  sleep 2
done
T_TRAIN=$((SECONDS - T_UP))
# The parties leave after the hub's release; give them a moment to write their last lines.
for _ in $(seq 1 30); do
  all=1
  for s in party-a party-b; do running "$s" && all=0; done
  [[ $all == 1 ]] && break
  sleep 1
done
save_logs

# ---- 7. checks ----
CURRENT_PHASE="checks"
fin=$(events hub hub.finished | tail -1)
hub_started=$(events hub hub.started | head -1)
check "CURVE on" "$([[ $(jq -r '.curve' <<<"$hub_started" 2>/dev/null) == true ]] && echo 1 || echo 0)" \
  "hub.started curve=$(jq -r '.curve' <<<"$hub_started" 2>/dev/null); each container mounts only its own key"
joined=$(events hub hub.party_joined | jq -r '.party' | sort -u | tr -d '\n')
check "3 parties joined, 3 alive" "$([[ $joined == abc && $max_alive == 3 ]] && echo 1 || echo 0)" \
  "joined: $joined; most alive at once in status: $max_alive"
for p in a b c; do
  evals=$(events "party-$p" party.eval | jq -r '.eval_loss')
  final=$(events "party-$p" party.done | jq -r '.eval_loss' | tail -1)
  [[ -n $final ]] && evals+=$'\n'$final
  first=$(grep -v '^$' <<<"$evals" | head -1)
  last=$(grep -v '^$' <<<"$evals" | tail -1)
  n=$(grep -vc '^$' <<<"$evals")
  ok=0
  [[ $n -ge 2 ]] && awk -v a="$first" -v b="$last" 'BEGIN{exit !(b < a)}' && ok=1
  check "held-out loss fell: party $p" "$ok" \
    "$(printf '%.3f -> %.3f over %d evals%s' "${first:-0}" "${last:-0}" "$n" "$([[ -n $final ]] && echo ", last = final eval" || echo "")")"
done
if [[ $KILL == 1 ]]; then
  early=$(events hub hub.party_lost | while read -r l; do
    t=$(ts_ms "$(jq -r '.ts' <<<"$l")")
    [[ -z $kill_ms || $t -lt $kill_ms ]] && jq -r '.party' <<<"$l"
  done | tr '\n' ' ')
  check "no live party lost" "$([[ -z $early ]] && echo 1 || echo 0)" \
    "$([[ -z $early ]] && echo "none lost before the kill" || echo "lost before the kill: $early(a silent turn > hub.party_timeout_ms)")"
  if [[ -n $lost_ms ]]; then
    check "kill detected (hub.party_lost c)" 1 "$((lost_ms - kill_ms)) ms after docker kill at step $step_at_kill"
  else
    check "kill detected (hub.party_lost c)" 0 "no hub.party_lost for c (killed at step ${step_at_kill:-never})"
  fi
  fin_step=$(jq -r '.step // 0' <<<"$fin" 2>/dev/null)
  after=$((${fin_step:-0} - ${lost_step:-$STEPS}))
  check "training went on after the kill" "$([[ -n $lost_step ]] && ((after >= 10)) && echo 1 || echo 0)" \
    "$after global steps after the loss (step ${lost_step:-?} -> ${fin_step:-?}), by a and b"
fi
hub_rc=$(exit_code hub)
check "hub finished" "$([[ -n $fin && $hub_rc == 0 ]] && echo 1 || echo 0)" \
  "exit $hub_rc; $(jq -r '"reason \(.reason), step \(.step)/\(.total_steps), pool_step \(.pool_step)"' <<<"$fin" 2>/dev/null)"
for p in a b $([[ $KILL == 1 ]] || echo c); do
  rc=$(exit_code "party-$p")
  exported=$(events "party-$p" party.exported | tail -1 | jq -r '.path' 2>/dev/null)
  done_line=$(events "party-$p" party.done | tail -1)
  check "party $p finished and exported" "$([[ $rc == 0 && -n $done_line && -n $exported ]] && echo 1 || echo 0)" \
    "exit $rc; $(jq -r '"steps \(.steps_done), final eval loss \(.eval_loss * 1000 | round / 1000)"' <<<"$done_line" 2>/dev/null); model ${exported:-none}"
done
CURRENT_PHASE="teardown"
compose_down 0
if left=$(leftovers); then check "teardown (down -v)" 1 "left: $left"; else check "teardown (down -v)" 0 "left: $left"; fi
say "times: images ${T_IMAGES}s, compose run ${T_TRAIN}s, total $((SECONDS - T_START))s"
table
