# Sourced by the scripts that need Docker on this Debian 12 machine (scripts/docker-demo.sh,
# scripts/deb-check.sh): installs what is missing with apt and starts dockerd when none runs.
#   docker_env_setup LOG_DIR PACKAGES...   apt-get install the missing ones (root), start dockerd;
#                                          sets DOCKER (the apt docker CLI), DOCKERD_PID and
#                                          STARTED_DOCKERD=1 when it started one. Returns 1 with
#                                          the reason in DOCKER_ENV_ERROR.
#   docker_env_teardown                    stops the dockerd docker_env_setup started, if any.
# dockerd's log: $DOCKERD_LOG (default /tmp/pcmoe-dockerd.log).
DOCKER="" DOCKERD_PID="" STARTED_DOCKERD=0 DOCKER_ENV_ERROR=""
DOCKERD_LOG=${DOCKERD_LOG:-/tmp/pcmoe-dockerd.log}

docker_env_setup() {
  local logs=$1 p missing=()
  shift
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if ((${#missing[@]})); then
    [[ $(id -u) == 0 ]] || { DOCKER_ENV_ERROR="needs root to install ${missing[*]}"; return 1; }
    echo "installing ${missing[*]} (apt)"
    { DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"; } \
      >"$logs/apt.log" 2>&1 || { tail -20 "$logs/apt.log"; DOCKER_ENV_ERROR="apt-get install ${missing[*]} failed"; return 1; }
  fi
  # The apt client matches the apt daemon; another docker CLI earlier on PATH may need buildx.
  DOCKER=$(command -v /usr/bin/docker || command -v docker)
  export DOCKER
  "$DOCKER" info >/dev/null 2>&1 && return 0
  echo "starting dockerd (log: $DOCKERD_LOG)"
  nohup dockerd >>"$DOCKERD_LOG" 2>&1 &
  DOCKERD_PID=$!
  STARTED_DOCKERD=1
  for _ in $(seq 1 120); do
    "$DOCKER" info >/dev/null 2>&1 && return 0
    kill -0 "$DOCKERD_PID" 2>/dev/null || break
    sleep 0.5
  done
  tail -20 "$DOCKERD_LOG"
  DOCKER_ENV_ERROR="dockerd did not come up within 60 s (log: $DOCKERD_LOG)"
  return 1
}

docker_env_teardown() {
  [[ $STARTED_DOCKERD == 1 && -n $DOCKERD_PID ]] || return 0
  echo "stopping the dockerd this script started (pid $DOCKERD_PID)"
  kill -TERM "$DOCKERD_PID" 2>/dev/null
  for _ in $(seq 1 60); do kill -0 "$DOCKERD_PID" 2>/dev/null || break; sleep 0.5; done
  STARTED_DOCKERD=0
}
