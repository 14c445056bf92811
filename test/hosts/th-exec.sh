#!/bin/bash
# th-exec.sh HOST CMD [ARGS...] : run CMD inside test host HOST (its net, uts, mount and pid
# namespaces), as root, with this shell's cwd and environment. The exit status is CMD's, and a
# CMD killed by signal N kills nsenter with N too (a shell sees 128+N). 127 if HOST is down.
. "$(dirname "$0")/th-lib.sh"
[ $# -ge 2 ] || th_die "usage: th-exec.sh HOST CMD [ARGS...]"
h=$1; shift
p=$(th_init_pid "$h")
[ -n "$p" ] || { echo "th-exec.sh: $(th_down_reason "$h")" >&2; exit 127; }
# nsenter forks to enter the pid namespace and waits; exec, so that killing this pid kills
# nsenter, and --pdeathsig then sends SIGTERM to CMD (nsenter forwards no signal itself).
exec nsenter -t "$p" -n -u -m -p --wd="$PWD" -- setpriv --pdeathsig TERM -- "$@"
