#!/bin/bash
# hosts-down.sh [-q] : remove every test host of TH_PREFIX, its bridge, its veths and $TH_STATE.
# Idempotent and safe after a crash: it finds the hosts by name (ip netns list), not by state
# files, and signals only processes inside their network namespaces. Other prefixes' hosts and
# other namespaces on the machine are never touched. -q: print nothing unless something is left.
. "$(dirname "$0")/th-lib.sh"
t0=$(date +%s%N)
hosts=$(th_hosts)
# SIGKILL every process in each host's netns: each host's pid 1 (killing a pid namespace's init
# kills the whole namespace: sshd, munged, slurm*, jobs) and the nsenter of any th-exec.sh
# still waiting in the root pid namespace. Nothing of ours runs outside the hosts' netns.
for h in $hosts; do
  pids=$(ip netns pids "$h" 2>/dev/null)
  [ -z "$pids" ] || kill -9 $pids 2>/dev/null
done
# Wait (bounded) until each netns is empty, then delete it (its veth pair dies with it).
for h in $hosts; do
  for _ in $(seq 300); do [ -z "$(ip netns pids "$h" 2>/dev/null)" ] && break; sleep 0.01; done
  ip netns del "$h" 2>/dev/null || { umount -l /run/netns/"$h" 2>/dev/null; rm -f /run/netns/"$h"; }
done
# A netns another mount namespace still pins would keep its veth: delete the root-side ends.
for v in $(ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | sed 's/@.*//' | grep -E "^${TH_PREFIX}v[0-9]+$"); do
  ip link del "$v" 2>/dev/null
done
ip link del "$TH_BR" 2>/dev/null
if [ -e "$TH_STATE/.testhosts" ]; then rm -rf "$TH_STATE"
elif [ -d "$TH_STATE" ]; then echo "hosts-down.sh: not removing $TH_STATE: not a test-host state dir" >&2
fi
left=$(th_hosts; ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | sed 's/@.*//' | grep -E "^${TH_PREFIX}(br0|v[0-9]+)$")
if [ -n "$left" ]; then echo "hosts-down.sh: FAILED, left: $(echo $left)" >&2; exit 1; fi
[ "${1:-}" = -q ] || echo "hosts-down.sh: '$TH_PREFIX' clean in $(th_ms "$t0") ms"
