#!/bin/bash
# hosts-up.sh [K] : make K (default 3, at most 64) test hosts ${TH_PREFIX}1..K on the bridge
# ${TH_PREFIX}br0, with addresses $TH_NET.1..K (settings: th-lib.sh). Needs root.
# First removes a stale cluster of the same prefix (a crashed run), but never one still in use:
# exit 75 names its owner. TH_OWNER=PID records the process that owns the new cluster (the test
# module, testhosts.ts, sets it: once that process is gone the cluster is stale). Without it the
# cluster is "manual": a test never takes it, hosts-up.sh by hand replaces it.
# Writes to $TH_STATE: hosts (for /etc/hosts), hostfile (one name a line), hostfile.slots
# ("th1 slots=$TH_CPUS", Open MPI's form), hostfile.colon ("th1:$TH_CPUS", MPICH's form).
set -euo pipefail
. "$(dirname "$0")/th-lib.sh"
th_close_fds
K=${1:-3}
[[ $K =~ ^[1-9][0-9]?$ && $K -le 64 ]] || th_die "K must be 1..64, got '$K'"
[ "$(id -u)" = 0 ] || th_die "needs root (network, pid and mount namespaces)"
t0=$(date +%s%N)
exec 9>>"$TH_LOCK"
flock -w 60 9 || th_die "another hosts-up.sh has held $TH_LOCK for 60 s"
if who=$(th_owner_live); then
  echo "hosts-up.sh: test hosts '$TH_PREFIX' ($TH_STATE) are in use by $who;" \
    "use another TH_PREFIX and TH_NET, or hosts-down.sh to take them down" >&2
  exit 75
fi
if [ -d "$TH_STATE" ] && [ ! -e "$TH_STATE/.testhosts" ] && [ -n "$(ls -A "$TH_STATE")" ]; then
  th_die "$TH_STATE exists and is not a test-host state dir; set TH_STATE to a new directory"
fi
"$TH_LIBDIR/hosts-down.sh" -q
# From here on, a failure takes down whatever was made.
trap 'rc=$?; [ $rc = 0 ] || "$TH_LIBDIR/hosts-down.sh" -q; exit $rc' EXIT

mkdir -p "$TH_STATE"; chmod 755 "$TH_STATE"
echo "$TH_PREFIX" > "$TH_STATE/.testhosts"            # hosts-down.sh removes only such a dir
if [ -n "${TH_OWNER:-}" ]; then
  read -r stat < /proc/"$TH_OWNER"/stat || th_die "TH_OWNER=$TH_OWNER is not a running process"
  stat=${stat##*) }; set -- $stat; echo "$TH_OWNER ${20}" > "$TH_STATE/owner"
else
  echo manual > "$TH_STATE/owner"
fi
{ echo "127.0.0.1 localhost"; for i in $(seq 1 "$K"); do echo "$TH_NET.$i ${TH_PREFIX}$i"; done; } > "$TH_STATE/hosts"
for i in $(seq 1 "$K"); do echo "${TH_PREFIX}$i"; done > "$TH_STATE/hostfile"
sed "s/\$/ slots=$TH_CPUS/" "$TH_STATE/hostfile" > "$TH_STATE/hostfile.slots"
sed "s/\$/:$TH_CPUS/" "$TH_STATE/hostfile" > "$TH_STATE/hostfile.colon"

# The bridge floods multicast to every port (no IGMP snooping, so no querier is needed) and
# forwards at once. addrgenmode none: no IPv6 link-local address on the root side either (bridge,
# veth ends), so the root namespace cannot be reached from the hosts by IPv4 or IPv6.
{
  echo "link add $TH_BR type bridge mcast_snooping 0 forward_delay 0 stp_state 0"
  echo "link set $TH_BR addrgenmode none"
  echo "link set $TH_BR up"
  for i in $(seq 1 "$K"); do
    echo "netns add ${TH_PREFIX}$i"
    echo "link add ${TH_PREFIX}v$i type veth peer name eth0 netns ${TH_PREFIX}$i"   # born inside as eth0
    echo "link set ${TH_PREFIX}v$i addrgenmode none"
    echo "link set ${TH_PREFIX}v$i master $TH_BR up"
  done
} | ip -batch -

starters=()
for i in $(seq 1 "$K"); do
  h=${TH_PREFIX}$i
  mkdir -p "$TH_STATE/$h/run/sshd"; echo "$h" > "$TH_STATE/$h/hostname"
  # pid 1 of the host. setsid: it must not share the process group or session of whoever ran
  # this script (a test kills its helper's group when the helper ends). nsenter --net execs
  # unshare without forking, so $! is unshare, whose one child is the host's pid 1.
  setsid nsenter --net=/run/netns/"$h" \
    unshare --pid --fork --mount-proc --uts --mount --propagation private \
    "$TH_LIBDIR/th-init.sh" "$h" "$TH_STATE" "$TH_NET.$i" </dev/null >"$TH_STATE/$h/init.log" 2>&1 9>&- &
  starters+=($!)
done
for i in $(seq 1 "$K"); do   # wait for each host (bounded), record its pid 1
  h=${TH_PREFIX}$i; s=${starters[$((i - 1))]}
  for _ in $(seq 500); do [ -e "$TH_STATE/$h/ready" ] && break; sleep 0.01; done
  [ -e "$TH_STATE/$h/ready" ] || { echo "hosts-up.sh: $h did not start in 5 s:" >&2; cat "$TH_STATE/$h/init.log" >&2; exit 1; }
  read -r p < /proc/"$s"/task/"$s"/children || true
  echo "${p%% *}" > "$TH_STATE/$h/init.pid"
  [ -n "$(th_init_pid "$h")" ] || { echo "hosts-up.sh: $h has no init (unshare pid $s)" >&2; exit 1; }
done
echo "hosts-up.sh: $K hosts ($(paste -sd' ' "$TH_STATE/hostfile")) on $TH_NET.0/24 in $(th_ms "$t0") ms; state $TH_STATE"
