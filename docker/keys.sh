#!/usr/bin/env bash
# CURVE keys for the compose federation: one folder per participant, each holding only that
# participant's key pair, plus the env file docker-compose reads (paths and public keys).
#   docker/keys.sh DIR            make DIR/{hub,party-a,party-b,party-c}/curve.key (+ curve.pub),
#                                 DIR/hub/operator.key (pcmoe ctl in the hub's container) and
#                                 DIR/compose.env; refuses if DIR/hub/curve.key exists
#   docker/keys.sh --remove DIR   delete DIR (the key files belong to the containers' user, 10001)
# Keys are made with `pcmoe-ctl keygen` inside the hub image (no network), owned by uid 10001 (the
# images' pcmoe user) with mode 0600 in 0700 folders. The container of a participant mounts only
# its own folder at /etc/pcmoe/keys (docker/docker-compose.yml); the hub's config lists the
# parties' public keys and each party gets the hub's public key, from compose.env.
# Then: docker-compose -f docker/docker-compose.yml --env-file DIR/compose.env up -d
set -euo pipefail
DOCKER=${DOCKER:-$(command -v /usr/bin/docker || command -v docker)}
HUB_IMAGE=${PCMOE_HUB_IMAGE:-pcmoe/hub:latest}
PARTICIPANTS=(hub party-a party-b party-c)
usage() { sed -n '2,11p' "$0" >&2; exit 2; }

if [[ ${1:-} == --remove ]]; then
  [[ $# -eq 2 && -n $2 ]] || usage
  [[ -d $2 ]] || exit 0
  dir=$(cd "$2" && pwd)
  "$DOCKER" run --rm --network none --user 0 -v "$dir:/keys" --entrypoint sh "$HUB_IMAGE" \
    -c 'rm -rf /keys/hub /keys/party-* /keys/compose.env'
  rmdir "$dir" 2>/dev/null || true
  exit 0
fi
[[ $# -eq 1 && $1 != -* ]] || usage
mkdir -p "$1"
DIR=$(cd "$1" && pwd)
if [[ -e $DIR/hub/curve.key ]]; then
  echo "keys: $DIR/hub/curve.key exists; use another folder or remove it (docker/keys.sh --remove $DIR)" >&2
  exit 1
fi
# One container writes every pair and prints "NAME PUBLIC_KEY" lines; files go to uid 10001.
out=$("$DOCKER" run --rm --network none --user 0 -v "$DIR:/keys" --entrypoint sh "$HUB_IMAGE" -c '
  set -e
  for p in "$@"; do
    install -d -m 0700 "/keys/$p"
    # A public key that starts with a letter or digit reads as a plain string even where --set
    # parses its value as YAML (older pcmoe: a Z85 key may start with *, &, [ ...); one holding
    # "${" is mangled by docker-compose, which expands ${...} even in single-quoted env-file
    # values (about 1 key in 200): draw again.
    for _ in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16; do
      pub=$(pcmoe-ctl keygen --out "/keys/$p/curve.key" --public-out "/keys/$p/curve.pub")
      case $pub in *"\${"*) continue ;; [0-9A-Za-z]*) break ;; esac
    done
    echo "$p $pub"
  done
  # The operator key pair of `pcmoe ctl` inside the hub container (hub.ctl_key_file).
  pcmoe-ctl keygen --out /keys/hub/operator.key --public-out /keys/hub/operator.pub >/dev/null
  for p in "$@"; do chown -R 10001:10001 "/keys/$p"; done' sh "${PARTICIPANTS[@]}")
declare -A pub
while read -r name key; do pub[$name]=$key; done <<<"$out"
for p in "${PARTICIPANTS[@]}"; do
  [[ ${#pub[$p]} -eq 40 ]] || { echo "keys: keygen gave no key for $p: $out" >&2; exit 1; }
done
# Single quotes: Z85 keys hold '$' and '#'; docker-compose reads the values literally.
umask 077
cat >"$DIR/compose.env" <<EOF
# pcmoe compose federation: key folders and public keys (docker/keys.sh, $(date -u +%FT%TZ))
PCMOE_KEYS='$DIR'
PCMOE_HUB_PUBLIC_KEY='${pub[hub]}'
PCMOE_PUBKEY_A='${pub[party-a]}'
PCMOE_PUBKEY_B='${pub[party-b]}'
PCMOE_PUBKEY_C='${pub[party-c]}'
EOF
echo "keys: $DIR/{hub,party-a,party-b,party-c}/curve.key and $DIR/compose.env" >&2
