#!/usr/bin/env bash
# Builds pcmoe's Docker images on a machine with no registry: the base image pcmoe/debian:bookworm
# (debootstrap minbase + docker import, cached: skipped when it exists), then pcmoe/hub:latest and
# pcmoe/party:cpu.
#   docker/build-images.sh [--full-build] [--bin-dir DIR] [--rebuild-base] [--no-cache] [--base-only]
#   --full-build   compile inside Docker (docker/Dockerfile: builder stage, Release, g++; ~30+ min on 2 cores)
#   default        fast path: copy binaries already built on this Debian 12 host (docker/Dockerfile.prebuilt)
#   --bin-dir DIR  where the prebuilt binaries are (default build/apps; built with cmake --preset default)
#   --base-only    make only the base image (scripts/deb-check.sh installs the .debs in it)
#   --cuda         build only pcmoe/party:cuda (docker/Dockerfile.party-cuda): needs a reachable registry
#                  (nvidia/cuda images, the PyTorch wheel index), so not on the development machine
# Needs root or the docker group; debootstrap (apt) for the base image. The build context is always
# a small staged folder or tarball (sources or binaries), never the repository with its build*/ dirs.
# Image names: $PCMOE_BASE_IMAGE, $PCMOE_HUB_IMAGE, $PCMOE_PARTY_IMAGE. Exit: 0 ok, 1 failed, 2 usage.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BASE_IMAGE=${PCMOE_BASE_IMAGE:-pcmoe/debian:bookworm}
HUB_IMAGE=${PCMOE_HUB_IMAGE:-pcmoe/hub:latest}
PARTY_IMAGE=${PCMOE_PARTY_IMAGE:-pcmoe/party:cpu}
MIRROR=${PCMOE_DEBIAN_MIRROR:-http://deb.debian.org/debian}
FULL=0 CUDA=0 REBUILD_BASE=0 BASE_ONLY=0 NO_CACHE=()
BIN_DIR=$ROOT/build/apps
while [[ $# -gt 0 ]]; do
  case $1 in
    --full-build) FULL=1; shift ;;
    --cuda) CUDA=1; shift ;;
    --bin-dir) BIN_DIR=$(cd "$2" && pwd); shift 2 ;;
    --rebuild-base) REBUILD_BASE=1; shift ;;
    --base-only) BASE_ONLY=1; shift ;;
    --no-cache) NO_CACHE=(--no-cache); shift ;;
    -h | --help) sed -n '2,14p' "$0"; exit 0 ;;
    *) echo "build-images: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
done
# The apt client matches the apt daemon (20.10); another docker CLI on PATH may want buildx.
DOCKER=${DOCKER:-$(command -v /usr/bin/docker || command -v docker)}
log() { echo "build-images: $*" >&2; }
tmp=$(mktemp -d /tmp/pcmoe-images.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

# ---- base image: Debian 12 minbase, trimmed like the official -slim images ----
make_base() {
  if [[ $REBUILD_BASE == 0 ]] && "$DOCKER" image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
    log "base image $BASE_IMAGE exists (cached)"
    return
  fi
  command -v debootstrap >/dev/null || { log "debootstrap missing (apt-get install debootstrap)"; return 1; }
  local t0=$SECONDS r=$tmp/rootfs
  log "making $BASE_IMAGE with debootstrap (about a minute)..."
  debootstrap --variant=minbase bookworm "$r" "$MIRROR" >"$tmp/debootstrap.log" 2>&1 ||
    { tail -20 "$tmp/debootstrap.log" >&2; return 1; }
  cat >"$r/etc/apt/sources.list" <<EOF
deb $MIRROR bookworm main
deb $MIRROR bookworm-updates main
deb ${MIRROR%/debian}/debian-security bookworm-security main
EOF
  # No docs, man pages or translations in images; apt cleans its caches after each install.
  cat >"$r/etc/dpkg/dpkg.cfg.d/01-pcmoe-slim" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
path-exclude /usr/share/lintian/*
EOF
  cat >"$r/etc/apt/apt.conf.d/01-pcmoe-slim" <<'EOF'
APT::Install-Recommends "false";
APT::Install-Suggests "false";
Acquire::Languages "none";
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
EOF
  find "$r/usr/share/doc" -mindepth 2 ! -name copyright -type f -delete 2>/dev/null || true
  rm -rf "$r"/var/cache/apt/archives/*.deb "$r"/var/cache/apt/*.bin "$r"/var/lib/apt/lists/* \
    "$r"/usr/share/man/* "$r"/usr/share/info/* "$r"/var/log/*.log "$r"/var/log/apt/*
  find "$r/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} +
  tar -C "$r" --numeric-owner --exclude='./dev/*' --exclude='./proc/*' --exclude='./sys/*' -c . |
    "$DOCKER" import -c 'ENV LANG=C.UTF-8' -c 'CMD ["/bin/bash"]' - "$BASE_IMAGE" >/dev/null
  rm -rf "$r"
  log "base image $BASE_IMAGE made in $((SECONDS - t0)) s"
}

build() {  # target image dockerfile context-args...
  local target=$1 image=$2 dockerfile=$3 t0=$SECONDS
  shift 3
  log "building $image (target $target)..."
  if ! "$DOCKER" build "${NO_CACHE[@]}" --build-arg "BASE=$BASE_IMAGE" --target "$target" -t "$image" \
    -f "$dockerfile" "$@" >"$tmp/build-$target.log" 2>&1; then
    tail -40 "$tmp/build-$target.log" >&2
    log "building $image failed"
    return 1
  fi
  log "$image built in $((SECONDS - t0)) s"
}

if [[ $CUDA == 1 ]]; then
  tar -C "$ROOT" --exclude=configs/keys -cf "$tmp/context.tar" CMakeLists.txt cmake lib apps configs docker/Dockerfile.party-cuda docker/entrypoint.sh
  # No BASE here: the Dockerfile names its nvidia/cuda bases.
  t0=$SECONDS
  log "building ${PCMOE_CUDA_IMAGE:-pcmoe/party:cuda} (docker/Dockerfile.party-cuda)..."
  "$DOCKER" build "${NO_CACHE[@]}" -t "${PCMOE_CUDA_IMAGE:-pcmoe/party:cuda}" -f docker/Dockerfile.party-cuda - \
    <"$tmp/context.tar" || { log "building the CUDA party image failed"; exit 1; }
  log "${PCMOE_CUDA_IMAGE:-pcmoe/party:cuda} built in $((SECONDS - t0)) s"
  exit 0
fi
make_base
[[ $BASE_ONLY == 1 ]] && exit 0
if [[ $FULL == 1 ]]; then
  # Context: the sources only, streamed as a tarball (-f names the Dockerfile inside it).
  tar -C "$ROOT" --exclude=configs/keys -cf "$tmp/context.tar" CMakeLists.txt cmake lib apps configs docker/Dockerfile docker/entrypoint.sh
  for t in hub party; do
    img=$HUB_IMAGE
    [[ $t == party ]] && img=$PARTY_IMAGE
    build "$t" "$img" docker/Dockerfile - <"$tmp/context.tar"
  done
else
  for b in pcmoe-hub pcmoe-ctl pcmoe-party pcmoe-eval pcmoe-central; do
    [[ -x $BIN_DIR/$b ]] || {
      log "$BIN_DIR/$b missing: build on the host first (cmake --preset default && cmake --build --preset default) or use --full-build"
      exit 1
    }
  done
  stage=$tmp/stage
  mkdir -p "$stage/bin" "$stage/docker"
  for b in pcmoe-hub pcmoe-ctl pcmoe-party pcmoe-eval pcmoe-central; do
    # Stripped copies: the host build carries debug info (RelWithDebInfo), 5-10x the code's size.
    strip --strip-unneeded -o "$stage/bin/$b" "$BIN_DIR/$b" 2>/dev/null || cp "$BIN_DIR/$b" "$stage/bin/$b"
  done
  cp -r "$ROOT/configs" "$stage/configs"
  rm -rf "$stage/configs/keys"  # local key pairs (pcmoe-ctl keygen --dir configs/keys) never go into an image
  cp "$ROOT/docker/entrypoint.sh" "$stage/docker/entrypoint.sh"
  log "staged prebuilt binaries from $BIN_DIR ($(du -sh "$stage" | cut -f1))"
  build hub "$HUB_IMAGE" "$ROOT/docker/Dockerfile.prebuilt" "$stage"
  build party "$PARTY_IMAGE" "$ROOT/docker/Dockerfile.prebuilt" "$stage"
fi
"$DOCKER" image ls --format '{{.Repository}}:{{.Tag}}\t{{.Size}}' | grep -E "^(${BASE_IMAGE}|${HUB_IMAGE}|${PARTY_IMAGE})\b" >&2 || true
