#!/bin/bash
# host-link.sh HOST down|up : unplug / replug test host HOST's cable (its veth on the bridge).
# Down: packets to and from it are dropped silently (no RST, no ICMP): a network partition; the
# host's processes go on. (This kernel has no netem: delay and loss cannot be emulated; a rate
# limit can: tc qdisc add dev ${TH_PREFIX}vN root tbf rate 100mbit burst 32kbit latency 50ms.)
. "$(dirname "$0")/th-lib.sh"
h=${1:-}; s=${2:-}
[ $# = 2 ] && { [ "$s" = up ] || [ "$s" = down ]; } || th_die "usage: host-link.sh HOST down|up"
[ -e /run/netns/"$h" ] && [[ $h =~ ^${TH_PREFIX}[0-9]+$ ]] || th_die "$(th_down_reason "$h")"
ip link set "${TH_PREFIX}v${h#"$TH_PREFIX"}" "$s"
