#!/usr/bin/env bash
# Network namespaces for running pcmoe participants behind their own (optionally slow) links on one
# host: each participant gets a namespace pcmoe-NAME with one address 10.201.0.N/24 on a private
# switch (a bridge inside its own namespace, pcmoe-sw); the host's own namespace gets no address
# and no route, so traffic stays among the namespaces this script made. Bandwidth caps are tc tbf
# on both directions of a participant's link (netem delay/loss does not work on this kernel).
#   scripts/netns.sh up NAME N [--rate RATE]   namespace pcmoe-NAME at 10.201.0.N (N in 1..254),
#                                              capped to RATE (tc units: 20mbit, 500kbit) if given
#   scripts/netns.sh rate NAME RATE|off        change or remove a participant's cap
#   scripts/netns.sh exec NAME CMD [ARGS...]   run CMD inside pcmoe-NAME (ip netns exec)
#   scripts/netns.sh down NAME | down-all      remove one namespace / all of them and the switch
#   scripts/netns.sh status                    namespaces, addresses, qdiscs
# NAME: 1-8 of [a-z0-9]. Needs root (ip, tc from iproute2). Example, party c on a 20 Mbit/s link:
#   scripts/netns.sh up hub 1; scripts/netns.sh up a 2; scripts/netns.sh up b 3
#   scripts/netns.sh up c 4 --rate 20mbit
#   scripts/netns.sh exec hub build/apps/pcmoe-hub --config configs/hub.yaml --set hub.bind=tcp://10.201.0.1:5555 &
#   scripts/netns.sh exec c build/apps/pcmoe-party --config configs/party-c.yaml \
#     --set party.hub=tcp://10.201.0.1:5555 --set 'party.expert_bind=tcp://10.201.0.4:*'   (same for a, b)
#   ...; scripts/netns.sh down-all
# Exit codes: 0 ok, 1 failed, 2 usage.
set -euo pipefail
SW=pcmoe-sw
BR=pcmoe-br
usage() { sed -n '2,20p' "$0" >&2; exit 2; }
need_name() { [[ ${1:-} =~ ^[a-z0-9]{1,8}$ ]] || { echo "netns: NAME must be 1-8 of [a-z0-9], found '${1:-}'" >&2; exit 2; }; }
has_ns() { ip netns list | awk '{print $1}' | grep -qx "$1"; }
in_sw() { ip netns exec "$SW" "$@"; }

switch_up() {
  has_ns "$SW" || ip netns add "$SW"
  if ! in_sw ip link show "$BR" >/dev/null 2>&1; then
    in_sw ip link add "$BR" type bridge
    in_sw ip link set "$BR" up
    in_sw ip link set lo up
  fi
}

# cap DEV_NS DEV_IN_NS RATE: tbf on the party's egress (in its namespace) and on the switch port's
# egress (traffic towards the party); RATE "off" removes both.
cap() {
  local ns=$1 rate=$2 name=$3
  local dev_party=eth0 dev_sw=pn-$name
  if [[ $rate == off ]]; then
    ip netns exec "$ns" tc qdisc del dev "$dev_party" root 2>/dev/null || true
    in_sw tc qdisc del dev "$dev_sw" root 2>/dev/null || true
    return
  fi
  # burst: at least one 10 ms slice of the rate and a few full frames; latency bounds the queue.
  local q=(tbf rate "$rate" burst 64kb latency 100ms)
  ip netns exec "$ns" tc qdisc replace dev "$dev_party" root "${q[@]}"
  in_sw tc qdisc replace dev "$dev_sw" root "${q[@]}"
}

cmd=${1:-}
[[ -n $cmd ]] || usage
shift
case $cmd in
  up)
    [[ $# -ge 2 ]] || usage
    name=$1 n=$2
    shift 2
    need_name "$name"
    [[ $n =~ ^[0-9]+$ && $n -ge 1 && $n -le 254 ]] || { echo "netns: N must be 1..254" >&2; exit 2; }
    rate=""
    if [[ ${1:-} == --rate ]]; then rate=${2:?--rate needs a value}; shift 2; fi
    [[ $# -eq 0 ]] || usage
    ns=pcmoe-$name
    has_ns "$ns" && { echo "netns: $ns exists (scripts/netns.sh down $name first)" >&2; exit 1; }
    switch_up
    ip netns add "$ns"
    # The veth pair is made inside the switch namespace, so no interface ever appears in the host's.
    in_sw ip link add "pn-$name" type veth peer name eth0 netns "$ns"
    in_sw ip link set "pn-$name" master "$BR" up
    ip netns exec "$ns" ip link set lo up
    ip netns exec "$ns" ip addr add "10.201.0.$n/24" dev eth0
    ip netns exec "$ns" ip link set eth0 up
    [[ -n $rate ]] && cap "$ns" "$rate" "$name"
    echo "netns: $ns at 10.201.0.$n${rate:+, capped to $rate each way}"
    ;;
  rate)
    [[ $# -eq 2 ]] || usage
    need_name "$1"
    has_ns "pcmoe-$1" || { echo "netns: pcmoe-$1 does not exist" >&2; exit 1; }
    cap "pcmoe-$1" "$2" "$1"
    ;;
  exec)
    [[ $# -ge 2 ]] || usage
    need_name "$1"
    ns=pcmoe-$1
    shift
    exec ip netns exec "$ns" "$@"
    ;;
  down)
    [[ $# -eq 1 ]] || usage
    need_name "$1"
    # Deleting the namespace deletes its end of the veth pair, and with it the switch's end.
    has_ns "pcmoe-$1" && ip netns del "pcmoe-$1"
    has_ns "$SW" && in_sw ip link del "pn-$1" 2>/dev/null || true
    ;;
  down-all)
    for ns in $(ip netns list | awk '{print $1}' | grep -E '^pcmoe-' || true); do ip netns del "$ns"; done
    ;;
  status)
    for ns in $(ip netns list | awk '{print $1}' | grep -E '^pcmoe-' | sort || true); do
      [[ $ns == "$SW" ]] && continue
      addr=$(ip netns exec "$ns" ip -4 -o addr show dev eth0 2>/dev/null | awk '{print $4}')
      qd=$(ip netns exec "$ns" tc qdisc show dev eth0 2>/dev/null | grep -o 'tbf.*rate [^ ]*' || echo "no cap")
      echo "$ns  ${addr:-?}  $qd"
    done
    ;;
  -h | --help) usage ;;
  *) usage ;;
esac
