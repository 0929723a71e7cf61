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
#      CURVE: if ${PCMOE_KEY_FILE:-/etc/pcmoe/keys/curve.key} exists it is this participant's key pair
#      (mount only the participant's own key folder); a party then needs $PCMOE_HUB_PUBLIC_KEY;
#   2. every whitespace-separated word of $PCMOE_SET as `--set WORD` (no spaces inside a value);
#   3. ARGS.
set -eu
set -f # the words of $PCMOE_SET hold '*' and '[0]': no globbing
BIN=${PCMOE_BIN:-/opt/pcmoe/bin}
STATE=${PCMOE_STATE_DIR:-/var/lib/pcmoe}
KEY=${PCMOE_KEY_FILE:-/etc/pcmoe/keys/curve.key}
CONFIGS=/etc/pcmoe/configs
role=${1:-}
[ $# -gt 0 ] && shift
n_args=$#

# Appends the defaults given as arguments and the words of $PCMOE_SET after ARGS; rotate_args then
# moves ARGS back to the end.
add() { for w in "$@"; do extra="$extra$w$(printf '\036')"; done; }
extra=""
case $role in
  hub)
    add --config "${PCMOE_CONFIG:-$CONFIGS/hub.yaml}" --set "hub.bind=tcp://*:5555" --set "hub.out_dir=$STATE"
    [ -f "$KEY" ] && add --set "hub.secret_key_file=$KEY"
    ;;
  ctl)
    # pcmoe-ctl authenticates with the hub's own key pair; the hub's config plus $PCMOE_SET (which
    # carries the parties' public keys, checked when CURVE is on) name the endpoint.
    add --config "${PCMOE_CONFIG:-$CONFIGS/hub.yaml}" --set "hub.bind=tcp://*:5555"
    [ -f "$KEY" ] && add --set "hub.secret_key_file=$KEY"
    ;;
  party)
    if [ -z "${PCMOE_CONFIG:-}" ] && [ -z "${PCMOE_PARTY:-}" ]; then
      echo "pcmoe party: set PCMOE_PARTY (a, b, c: /etc/pcmoe/configs/party-ID.yaml) or PCMOE_CONFIG" >&2
      exit 2
    fi
    add --config "${PCMOE_CONFIG:-$CONFIGS/party-${PCMOE_PARTY:-}.yaml}" \
      --set "party.expert_bind=tcp://*:7000" --set "run.out_dir=$STATE"
    if [ -f "$KEY" ]; then
      if [ -z "${PCMOE_HUB_PUBLIC_KEY:-}" ]; then
        echo "pcmoe party: $KEY is mounted (CURVE on) but PCMOE_HUB_PUBLIC_KEY is empty" >&2
        exit 2
      fi
      add --set "party.curve.secret_key_file=$KEY" --set "party.curve.hub_public_key=$PCMOE_HUB_PUBLIC_KEY"
    fi
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
