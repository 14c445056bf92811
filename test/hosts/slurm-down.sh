#!/bin/bash
# slurm-down.sh [-q] : stop every slurmd, the slurmctld and munged of the test hosts (SIGTERM,
# then SIGKILL after 3 s). hosts-down.sh kills them anyway, with the hosts.
. "$(dirname "$0")/th-lib.sh"
daemons=()   # HOST:PID:NAME, PID in the host's own pid namespace (as the pid files hold it)
for h in $(th_hosts); do
  [ -n "$(th_init_pid "$h")" ] || continue
  for d in slurmd slurmctld; do
    read -r n 2>/dev/null < "$TH_STATE/$h/run/$d.pid" || continue
    daemons+=("$h:$n:$d")
  done
done
if read -r n 2>/dev/null < "$TH_STATE/slurm/munge/munged.pid"; then daemons+=("$(th_hosts | head -1):$n:munged"); fi
# Kill from inside the host, and only a process that still has the daemon's name: a stale pid
# file never kills a stranger.
stopped=()
for e in "${daemons[@]}"; do IFS=: read -r h n d <<<"$e"; th_kill "$h" "$n" "$d" 2>/dev/null && stopped+=("$e"); done
alive=("${stopped[@]}")
for _ in $(seq 30); do
  [ ${#alive[@]} -eq 0 ] && break; sleep 0.1
  still=(); for e in "${alive[@]}"; do IFS=: read -r h n d <<<"$e"; th_kill "$h" "$n" "$d" 0 2>/dev/null && still+=("$e"); done
  alive=("${still[@]}")
done
for e in "${alive[@]}"; do IFS=: read -r h n d <<<"$e"; th_kill "$h" "$n" "$d" KILL 2>/dev/null; done
rm -f "$TH_STATE"/*/run/slurmd.pid "$TH_STATE"/*/run/slurmctld.pid "$TH_STATE/slurm/munge/munged.pid"
[ "${1:-}" = -q ] || echo "slurm-down.sh: stopped ${#stopped[@]} daemons"
