#!/bin/sh
# pcmoe container entrypoint, installed as /usr/local/bin/pcmoe in the hub and party images. It runs
# one pcmoe binary with the container's defaults, so that a compose file only says what differs.
#   pcmoe hub   [ARGS]   pcmoe-hub   --config ${PCMOE_CONFIG:-/etc/pcmoe/configs/hub.yaml}
#   pcmoe party [ARGS]   pcmoe-party --config ${PCMOE_CONFIG:-/etc/pcmoe/configs/party-$PCMOE_PARTY.yaml}
#   pcmoe ctl   [ARGS]   pcmoe-ctl   --config <the hub's config>, inside the hub's container, e.g.
#                        docker-compose exec hub pcmoe ctl status --json
#   pcmoe eval|central ARGS   the binary as is;  anything else is exec'd as given (sh, ls, ...)
# Arguments, in this order (a later --set wins):
#   1. container defaults: state (hub.out_dir / run.out_dir) in /var/lib/pcmoe (mount one volume per
#      participant there); the hub binds tcp://*:5555, a party its expert service on tcp://*:7000;
#      CURVE, always: ${PCMOE_KEY_FILE:-/etc/pcmoe/keys/curve.key} is this participant's key pair
#      (mount only the participant's own key folder) and the container refuses to start without it
#      (fail closed: these binds are reachable from the network); a party also needs
#      $PCMOE_HUB_PUBLIC_KEY; the hub's folder may hold operator.key, the operator key pair of
#      `pcmoe ctl` (hub.ctl_key_file);
#   2. every whitespace-separated word of $PCMOE_SET as `--set WORD` (no spaces inside a value);
#   3. ARGS.
set -eu
set -f # the words of $PCMOE_SET hold '*' and '[0]': no globbing
BIN=${PCMOE_BIN:-/opt/pcmoe/bin}
STATE=${PCMOE_STATE_DIR:-/var/lib/pcmoe}
KEY=${PCMOE_KEY_FILE:-/etc/pcmoe/keys/curve.key}
OPERATOR_KEY=$(dirname "$KEY")/operator.key
CONFIGS=/etc/pcmoe/configs
no_key() {
  echo "pcmoe $1: no key pair at $KEY: mount this participant's key folder at $(dirname "$KEY") (docker/keys.sh" \
    "makes one per participant). The container binds a network interface, so it never runs without CURVE" >&2
  exit 2
}
role=${1:-}
[ $# -gt 0 ] && shift
n_args=$#

# Appends the defaults given as arguments and the words of $PCMOE_SET after ARGS; rotate_args then
# moves ARGS back to the end.
add() { for w in "$@"; do extra="$extra$w$(printf '\036')"; done; }
extra=""
case $role in
  hub | ctl)
    # pcmoe-ctl (role ctl) authenticates with the operator key pair; the hub's config plus $PCMOE_SET
    # (which carries the parties' public keys) name the endpoint and the hub's key.
    [ -f "$KEY" ] || no_key "$role"
    add --config "${PCMOE_CONFIG:-$CONFIGS/hub.yaml}" --set "hub.bind=tcp://*:5555" \
      --set "hub.secret_key_file=$KEY" --set "hub.insecure=false"
    if [ -f "$OPERATOR_KEY" ]; then add --set "hub.ctl_key_file=$OPERATOR_KEY"; else add --set "hub.ctl_key_file="; fi
    [ "$role" = hub ] && add --set "hub.out_dir=$STATE"
    ;;
  party)
    if [ -z "${PCMOE_CONFIG:-}" ] && [ -z "${PCMOE_PARTY:-}" ]; then
      echo "pcmoe party: set PCMOE_PARTY (a, b, c: /etc/pcmoe/configs/party-ID.yaml) or PCMOE_CONFIG" >&2
      exit 2
    fi
    [ -f "$KEY" ] || no_key party
    if [ -z "${PCMOE_HUB_PUBLIC_KEY:-}" ]; then
      echo "pcmoe party: PCMOE_HUB_PUBLIC_KEY is empty: the party must know the hub's public key" >&2
      exit 2
    fi
    add --config "${PCMOE_CONFIG:-$CONFIGS/party-${PCMOE_PARTY:-}.yaml}" \
      --set "party.expert_bind=tcp://*:7000" --set "run.out_dir=$STATE" --set "party.insecure=false" \
      --set "party.curve.secret_key_file=$KEY" --set "party.curve.hub_public_key=$PCMOE_HUB_PUBLIC_KEY" \
      --set "party.curve.hub_public_key_file="
    ;;
  eval | central) exec "$BIN/pcmoe-$role" "$@" ;;
  "" | -h | --help) sed -n '2,15p' "$0"; exit 0 ;;
  *) exec "$role" "$@" ;;
esac
for w in ${PCMOE_SET:-}; do add --set "$w"; done

# "$@" = ARGS; append the defaults (split on the \036 separator), then rotate ARGS to the end.
IFS=$(printf '\036')
for w in $extra; do set -- "$@" "$w"; done
unset IFS
i=0
while [ "$i" -lt "$n_args" ]; do
  set -- "$@" "$1"
  shift
  i=$((i + 1))
done
exec "$BIN/pcmoe-$role" "$@"
