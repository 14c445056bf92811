#!/bin/bash
# th-init.sh NAME STATEDIR ADDR : pid 1 of test host NAME, started by hosts-up.sh as
#   nsenter --net=/run/netns/NAME unshare --pid --fork --mount-proc --uts --mount --propagation private th-init.sh ...
# Brings up the host's network (eth0 = ADDR/24), makes its private mounts and hostname, writes
# STATEDIR/NAME/ready, then reaps orphans until it is killed (SIGKILL only).
set -e
name=$1; state=$2; addr=$3; st=$state/$name
hostname "$name"
# Network, inside the netns: lo, the address, and a multicast route (there is no default route,
# so without it Node's addMembership fails with ENODEV). Hosts configure themselves in parallel.
ip -batch - <<NET
link set lo up
addr add $addr/24 dev eth0
link set eth0 up
route add 224.0.0.0/4 dev eth0
NET
# Drop this mount namespace's copies of /run/netns/* (taken when it was made): else another
# host's netns, and its veth, would live on after `ip netns del` until this host is gone too.
umount -n -R -l /run/netns 2>/dev/null || true
# Private /run first, and `mount -n` everywhere: mount(8) otherwise keeps a utab in /run/mount,
# which must not appear in the machine's /run.
mount -n --bind "$st/run" /run
# A sysfs of this netns (/sys/class/net shows eth0, lo), keeping /sys/fs/cgroup: slurmd 22.05
# refuses to start without it even when it uses no cgroup plugin.
mkdir -p "$st/sys"
mount -n -t sysfs -o nosuid,nodev,noexec sysfs "$st/sys"
mount -n --rbind /sys/fs/cgroup "$st/sys/fs/cgroup"
umount -n -l /sys
mount -n --move "$st/sys" /sys
mount -n -t tmpfs -o mode=1777,size=256m tmpfs /dev/shm   # POSIX shm is per host, as on real hosts
mount -n --bind "$state/hosts" /etc/hosts                # every test host's name
[ ! -e /etc/hostname ] || mount -n --bind "$st/hostname" /etc/hostname
# Per-host identity: UCX (MPICH ch4:ucx, Open MPI) decides "same machine, use shared memory"
# from boot_id, which is one per kernel; give each host its own, and its own machine-id.
cat /proc/sys/kernel/random/uuid > "$st/boot_id"
tr -d - < /proc/sys/kernel/random/uuid > "$st/machine-id"
mount -n --bind "$st/boot_id" /proc/sys/kernel/random/boot_id
[ ! -e /etc/machine-id ] || mount -n --bind "$st/machine-id" /etc/machine-id
set +e
trap '' TERM INT HUP            # a host ends only by SIGKILL from outside (hosts-down, host-kill)
echo ready > "$st/ready"
# pid 1 must reap re-parented orphans (daemons double-fork): bash's wait reaps every child.
while :; do sleep 3600 & wait $!; done
