# th-lib.sh: settings and helpers shared by the test-host scripts (sourced, never run).
#
# A test host "thN" (N = 1..K) is five Linux namespaces on this one machine:
#   net : /run/netns/thN (made by `ip netns add`); eth0 = $TH_NET.N/24 on the bridge thbr0 of the
#         root namespace, which has NO address: nothing outside the test hosts reaches them, and
#         they reach nothing outside (their only routes are the /24 and multicast 224.0.0.0/4).
#   pid : its own pid namespace whose pid 1 is th-init.sh; SIGKILL of that pid 1 kills every
#         process of the host at once (a host crash).
#   mnt : its own /proc, /sys (of its netns), /run, /dev/shm, and from $TH_STATE /etc/hosts (all
#         host names), /etc/hostname, /etc/machine-id, /proc/sys/kernel/random/boot_id; sshd-up.sh
#         and slurm-up.sh add /etc/ssh/ssh_config, /root/.bashrc and /etc/slurm. /tmp, /root and
#         the working tree stay shared: they play the cluster's shared file system.
#   uts : hostname thN.
#
# Settings (environment; one cluster per TH_PREFIX, so two clusters coexist with two prefixes):
#   TH_PREFIX  host names $TH_PREFIX1.., bridge ${TH_PREFIX}br0, veths ${TH_PREFIX}v1..   (th)
#   TH_NET     first three octets of the hosts' /24: host N is $TH_NET.N                   (10.77.0)
#   TH_STATE   keys, configs, logs, pid files; removed by hosts-down.sh   (/tmp/testhosts-$TH_PREFIX)
#   TH_CPUS    slots per host in the hostfiles and Slurm CPUs per node                     (2)
TH_PREFIX=${TH_PREFIX:-th}
TH_NET=${TH_NET:-10.77.0}
TH_STATE=${TH_STATE:-/tmp/testhosts-$TH_PREFIX}
TH_CPUS=${TH_CPUS:-2}
TH_LOCK=/tmp/testhosts.lock          # serializes bring-ups machine-wide (held ~0.2 s each)
TH_BR=${TH_PREFIX}br0
TH_LIBDIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# sshd, munged, slurmd and ip live in sbin, which a non-login PATH may lack.
case ":$PATH:" in *:/usr/sbin:*) ;; *) PATH=$PATH:/usr/sbin:/sbin ;; esac

th_die() { echo "${0##*/}: $*" >&2; exit 2; }

# A prefix ends with a letter so that "th" never matches the hosts of "th1" ("th11"...), and is
# short enough for interface names (15 bytes): ${TH_PREFIX}v64 at most.
[[ $TH_PREFIX =~ ^[a-z]([a-z0-9]{0,6}[a-z])?$ ]] ||
  th_die "TH_PREFIX must be 1-8 lower-case letters or digits, starting and ending with a letter, got '$TH_PREFIX'"
[[ $TH_NET =~ ^(25[0-5]|2[0-4][0-9]|1?[0-9]?[0-9])(\.(25[0-5]|2[0-4][0-9]|1?[0-9]?[0-9])){2}$ ]] ||
  th_die "TH_NET must be three octets such as 10.77.0, got '$TH_NET'"
# hosts-down.sh runs rm -rf on it: only a directory of its own below a temporary tree.
[[ $TH_STATE =~ ^/(tmp|run|var/tmp)/[^/]+(/[^/]+)*$ && $TH_STATE != *..* ]] ||
  th_die "TH_STATE must be a directory below /tmp, /run or /var/tmp, got '$TH_STATE'"
[[ $TH_CPUS =~ ^[1-9][0-9]{0,2}$ ]] || th_die "TH_CPUS must be a positive integer, got '$TH_CPUS'"

th_hosts() {  # the test hosts of TH_PREFIX that exist now (by netns name), in order
  ip netns list 2>/dev/null | awk '{print $1}' | grep -E "^${TH_PREFIX}[0-9]+$" | sort -V
}

th_addr() { echo "$TH_NET.${1#"$TH_PREFIX"}"; }   # th_addr th2 -> 10.77.0.2

th_init_pid() {  # root-namespace pid of host $1's pid 1, or nothing if it is not running
  # Builtins only: th-exec.sh calls this on every command.
  local p line
  read -r p 2>/dev/null < "$TH_STATE/$1/init.pid" || return 0
  # Trust the pid file only if that pid is still pid 1 of a pid namespace, in the host's netns.
  [ /proc/$p/ns/net -ef /run/netns/$1 ] 2>/dev/null || return 0
  while read -r line; do
    case $line in
      State:*Z*) return 0 ;;                                  # killed, not yet reaped
      NSpid:*) [[ $line =~ [[:space:]]1$ ]] && echo "$p"; return 0 ;;
    esac
  done < /proc/$p/status 2>/dev/null
}

th_down_reason() {  # why host $1 cannot be entered, for error messages
  if [ -e "$TH_STATE/$1/killed" ]; then echo "test host $1 is down (host-kill.sh)"
  elif [ -e /run/netns/$1 ]; then echo "test host $1 has no running init (see $TH_STATE/$1/init.log)"
  else echo "no test host $1 (hosts-up.sh makes ${TH_PREFIX}1..; up now: $(th_hosts | paste -sd' '))"
  fi
}

th_exec() {  # th_exec HOST CMD [ARGS...]: run CMD inside test host HOST (see th-exec.sh)
  local h=$1 p; shift
  p=$(th_init_pid "$h")
  [ -n "$p" ] || { echo "th_exec: $(th_down_reason "$h")" >&2; return 127; }
  nsenter -t "$p" -n -u -m -p --wd="$PWD" -- setpriv --pdeathsig TERM -- "$@"
}

th_kill() {  # th_kill HOST PID COMM [SIG]: signal PID (a pid of HOST's pid ns) only if it is COMM
  th_exec "$1" sh -c '[ "$(cat /proc/$1/comm 2>/dev/null)" = "$2" ] && kill -s "$3" "$1"' sh "$2" "$3" "${4:-TERM}"
}

th_owner_live() {  # prints who holds this cluster if its owner still runs; fails if none/stale
  # $TH_STATE/owner is "PID STARTTIME" (the test process that made it, see TH_OWNER in
  # hosts-up.sh) or "manual" (hosts-up.sh by hand: in use until hosts-down.sh).
  local pid start stat
  read -r pid start 2>/dev/null < "$TH_STATE/owner" || return 1
  [ "$pid" = "${TH_OWNER:-manual}" ] && return 1      # our own earlier cluster: stale by definition
  if [ "$pid" = manual ]; then echo "a cluster made by hand (hosts-up.sh)"; return 0; fi
  read -r stat 2>/dev/null < /proc/"$pid"/stat || return 1
  stat=${stat##*) }; set -- $stat                     # fields after "(comm) ": field 22 is $20
  [ "${20}" = "$start" ] || return 1                  # that pid was reused by another process
  echo "pid $pid ($(tr '\0' ' ' < /proc/"$pid"/cmdline | cut -c1-80))"
}

th_close_fds() {  # close every inherited fd but 0-2: daemons and host inits must not keep a
  # caller's pipe open (a test that waits for its helper's output would wait for the hosts).
  local fd
  for fd in /proc/$$/fd/*; do
    fd=${fd##*/}
    [ "$fd" -gt 2 ] && [ "$fd" != 255 ] && eval "exec $fd>&-"
  done 2>/dev/null
  return 0
}

th_ms() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }   # ms since a $(date +%s%N)
