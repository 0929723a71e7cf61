#!/usr/bin/env bash
# Checks the Debian packages in a fresh Debian 12 container (the docker demo's base image,
# pcmoe/debian:bookworm, made with debootstrap by docker/build-images.sh --base-only): builds them
# (cmake --build --preset default --target package), installs pcmoe-common and pcmoe-hub with apt
# (dependencies from the Debian mirror), and checks: `pcmoe-hub --version` and `pcmoe-ctl --version`
# run and name this build's version, the pcmoe user and /etc/pcmoe exist, systemd-analyze verify
# accepts the installed unit, and the installed hub, started as the pcmoe user from the packaged
# example config, answers `pcmoe-ctl --run` status and serves its status page. With --with-party
# also pcmoe-party (libtorch and its dependencies: a large download) and `pcmoe-party --version`.
#   scripts/deb-check.sh [--with-party] [--debs DIR]     (root: apt, dockerd; see scripts/docker-env.sh)
# Prints one PASS/FAIL line per check; exit 0 when all pass, 1 otherwise, 2 usage.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT" || exit 1
WITH_PARTY=0 DEBS=""
while [[ $# -gt 0 ]]; do
  case $1 in
    --with-party) WITH_PARTY=1; shift ;;
    --debs) DEBS=$(cd "$2" && pwd) || exit 2; shift 2 ;;
    -h | --help) sed -n '2,11p' "$0"; exit 0 ;;
    *) echo "deb-check: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
done
T0=$SECONDS
say() { printf '[deb-check %4ds] %s\n' $((SECONDS - T0)) "$*"; }
LOGS=$(mktemp -d /tmp/pcmoe-deb-check.XXXXXX)
# shellcheck source=scripts/docker-env.sh
source "$ROOT/scripts/docker-env.sh"
trap 'docker_env_teardown | while read -r l; do say "$l"; done' EXIT

# ---- the packages ----
if [[ -z $DEBS ]]; then
  [[ -f build/build.ninja ]] || cmake --preset default >"$LOGS/configure.log" 2>&1 ||
    { tail -20 "$LOGS/configure.log"; exit 1; }
  say "building the packages (cmake --build --preset default --target package)"
  cmake --build --preset default --target package >"$LOGS/package.log" 2>&1 || { tail -30 "$LOGS/package.log"; exit 1; }
  DEBS=$ROOT/build/packages
fi
version=$(sed -n 's/^#define PCMOE_VERSION_STRING "\(.*\)"/\1/p' build/generated/common/version_info.h 2>/dev/null)
pkgs=(pcmoe-common pcmoe-hub)
[[ $WITH_PARTY == 1 ]] && pkgs+=(pcmoe-party)
files=()
for p in "${pkgs[@]}"; do
  f=$(ls -t "$DEBS/${p}_"*.deb 2>/dev/null | head -1)
  [[ -n $f ]] || { say "FATAL: no $p .deb in $DEBS"; exit 1; }
  files+=("/debs/$(basename "$f")")
done
say "packages: ${files[*]#/debs/}"

# ---- docker and the base image ----
docker_env_setup "$LOGS" docker.io debootstrap > >(while read -r l; do say "$l"; done) ||
  { say "FATAL: $DOCKER_ENV_ERROR"; exit 1; }
bash docker/build-images.sh --base-only 2>&1 | sed 's/^/  /'
[[ ${PIPESTATUS[0]} == 0 ]] || { say "FATAL: docker/build-images.sh --base-only failed"; exit 1; }
BASE=${PCMOE_BASE_IMAGE:-pcmoe/debian:bookworm}

# ---- install and check, in a throwaway container ----
# Each check prints "CHECK <ok 0/1> <name>: <detail>"; apt's output goes to the log.
cat >"$LOGS/in-container.sh" <<'EOF'
set -u
check() { echo "CHECK $1 $2"; }
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/tmp/apt.log 2>&1 && apt-get install -y -qq --no-install-recommends "$@" systemd >>/tmp/apt.log 2>&1
rc=$?
check $((rc == 0)) "apt-get install $*: exit $rc"
[ $rc -eq 0 ] || { tail -20 /tmp/apt.log; exit 1; }
v=$(pcmoe-hub --version 2>&1); check $(case $v in "pcmoe-hub $PCMOE_VERSION (git "*", protocol "*) echo 1 ;; *) echo 0 ;; esac) "pcmoe-hub --version: $v"
v=$(pcmoe-ctl --version 2>&1); check $(case $v in "pcmoe-ctl $PCMOE_VERSION"*) echo 1 ;; *) echo 0 ;; esac) "pcmoe-ctl --version: $v"
if [ -x /usr/bin/pcmoe-party ]; then
  v=$(pcmoe-party --version 2>&1); check $(case $v in "pcmoe-party $PCMOE_VERSION"*) echo 1 ;; *) echo 0 ;; esac) "pcmoe-party --version: $v"
fi
check $(id pcmoe >/dev/null 2>&1 && [ -d /etc/pcmoe ] && echo 1 || echo 0) "pcmoe user and /etc/pcmoe: $(id pcmoe 2>&1), $(stat -c '%U:%G %a' /etc/pcmoe 2>&1)"
for u in /usr/lib/systemd/system/pcmoe-hub.service /usr/lib/systemd/system/pcmoe-party@.service; do
  [ -f "$u" ] || continue
  unit=$(basename "$u" | sed 's/@\./@a./')
  out=$(systemd-analyze verify "$unit" 2>&1 | grep -v 'sysinit.target\|/etc/pcmoe' ); check $([ -z "$out" ] && echo 1 || echo 0) "systemd-analyze verify $unit${out:+: $out}"
done
cp -r /usr/share/pcmoe/configs/hub.yaml /usr/share/pcmoe/configs/models /etc/pcmoe/  # as the README says
pcmoe-ctl keygen --dir /etc/pcmoe/keys --names hub,operator,party-a,party-b,party-c >/dev/null  # CURVE (the default)
chown -R pcmoe /etc/pcmoe/keys
su -s /bin/sh pcmoe -c 'pcmoe-hub --config /etc/pcmoe/hub.yaml --set hub.out_dir=/tmp/hub --set hub.bind=tcp://127.0.0.1:5555 --set hub.http=127.0.0.1:0 --set hub.log_file=/tmp/hub.log >/tmp/hub.out 2>&1 &'
st=$(pcmoe-ctl --run /tmp/hub wait --step 0 --timeout-ms 20000 2>&1 && pcmoe-ctl --run /tmp/hub status 2>&1 | head -1)
check $(case $st in *"state waiting"*) echo 1 ;; *) echo 0 ;; esac) "installed hub answers pcmoe-ctl --run: $(echo "$st" | tail -1)"
case $st in *"state waiting"*) ;; *) tail -5 /tmp/hub.out /tmp/hub.log 2>&1 ;; esac
url=$(sed -n 's/.*"http":"\([^"]*\)".*/\1/p' /tmp/hub/ctl.json 2>/dev/null)
# No curl in the base image: bash's /dev/tcp is enough for one GET.
page=$(host=${url#http://}; host=${host%/}; [ -n "$host" ] && exec 3<>"/dev/tcp/${host%:*}/${host##*:}" &&
  printf 'GET /healthz HTTP/1.0\r\n\r\n' >&3 && cat <&3)
check $(case $page in *"200 OK"*ok*) echo 1 ;; *) echo 0 ;; esac) "installed hub serves ${url}healthz: $(echo "$page" | head -1 | tr -d '\r')"
EOF
say "installing ${pkgs[*]} in a fresh $BASE container (apt fetches the dependencies)"
"$DOCKER" run --rm -e PCMOE_VERSION="$version" -v "$DEBS:/debs:ro" -v "$LOGS/in-container.sh:/check.sh:ro" \
  "$BASE" bash /check.sh "${files[@]}" >"$LOGS/container.log" 2>&1
fails=0 n=0
while read -r _ ok detail; do
  n=$((n + 1))
  if [[ $ok == 1 ]]; then say "PASS  $detail"; else say "FAIL  $detail"; fails=$((fails + 1)); fi
done < <(grep '^CHECK ' "$LOGS/container.log")
if ((n == 0 || fails > 0)); then
  say "== FAIL ($fails of $n checks; container output: $LOGS/container.log)"
  tail -20 "$LOGS/container.log"
  exit 1
fi
say "== PASS ($n checks)"
rm -rf "$LOGS"
