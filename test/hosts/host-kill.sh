#!/bin/bash
# host-kill.sh HOST [--silent] : crash test host HOST: SIGKILL its pid 1, which kills every
# process in it at once (sshd, slurmd, ranks...), and wait until they are all gone. Its netns
# stays, with its address (hosts-down.sh removes it); th-exec.sh HOST then fails with exit 127.
#   default : the kernel closes the dead processes' sockets, so peers get FIN/RST at once, and a
#             new connection to the host is refused (as when every process of a machine dies).
#   --silent: first unplug its link (host-link.sh HOST down), so peers hear nothing, as when a
#             machine loses power: they learn only by timeouts.
. "$(dirname "$0")/th-lib.sh"
h=${1:-}; mode=${2:-}
[ -n "$h" ] && [ $# -le 2 ] && { [ -z "$mode" ] || [ "$mode" = --silent ]; } || th_die "usage: host-kill.sh HOST [--silent]"
p=$(th_init_pid "$h"); [ -n "$p" ] || th_die "$(th_down_reason "$h")"
[ "$mode" = --silent ] && ip link set "${TH_PREFIX}v${h#"$TH_PREFIX"}" down
: > "$TH_STATE/$h/killed"
kill -9 "$p"
# A pid namespace's init turns into a zombie only once every other process in it has died.
for _ in $(seq 500); do
  st=$(awk '/^State:/ {print $2}' /proc/"$p"/status 2>/dev/null)
  [ -z "$st" ] || [ "$st" = Z ] && exit 0
  sleep 0.01
done
th_die "$h: its pid 1 ($p) is still alive 5 s after SIGKILL"
