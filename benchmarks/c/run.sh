#!/bin/sh
# benchmarks/c/run.sh: libsfmpi beside MPICH and Open MPI (Debian's packages), one table.
#   OSU-style latency 8 B..1 MiB, bandwidth 64 KiB..4 MiB, allreduce 8 B and 1 MiB (2 ranks),
#   and whole-job wall time of hello world at -n 2/4/8 (median of $REPS runs, default 7).
# The same sources (osu.c, hello.c) are built with sfmpicc, mpicc.mpich and mpicc.openmpi.
# Installs mpich and openmpi-bin/libopenmpi-dev with apt-get when they are missing (root).
# Benchmarks print figures; they are not tests and are not run in CI.
set -eu
here=$(cd "$(dirname "$(readlink -f "$0")")" && pwd)
root=$(cd "$here/../.." && pwd)
REPS=${REPS:-7}

need=""
command -v mpicc.mpich >/dev/null 2>&1 || need="$need mpich libmpich-dev"
command -v mpicc.openmpi >/dev/null 2>&1 || need="$need openmpi-bin libopenmpi-dev"
if [ -n "$need" ]; then
  echo "installing:$need" >&2
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $need >&2
fi
make -s -C "$root/mpi-compat/c" >&2
launcher="$root/dist/mpi-compat/launcher/sfmpirun.js"
[ -f "$launcher" ] || (cd "$root" && npx tsc -p tsconfig.json >&2)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT INT TERM

# Build each program three ways. Both MPI packages fight over the plain mpicc/mpiexec
# alternatives, so the suffixed commands are used explicitly.
for impl in sf mpich ompi; do
  case $impl in
    sf) cc="$root/mpi-compat/c/sfmpicc" ;;
    mpich) cc=mpicc.mpich ;;
    ompi) cc=mpicc.openmpi ;;
  esac
  for p in osu hello; do
    "$cc" -O2 -w "$here/$p.c" -o "$work/${p}_$impl"
  done
done

runjob() { # impl n program args...
  impl=$1 n=$2
  shift 2
  case $impl in
    sf) node "$launcher" -n "$n" "$@" ;;
    mpich) mpiexec.mpich -n "$n" "$@" ;;
    ompi) mpiexec.openmpi --allow-run-as-root --oversubscribe -n "$n" "$@" ;;
  esac
}

now_ns() { date +%s%N; }

for impl in sf mpich ompi; do
  out="$work/$impl.txt"
  : >"$out"
  for what in latency bw allreduce; do
    echo "running $impl osu $what" >&2
    runjob "$impl" 2 "$work/osu_$impl" "$what" >>"$out"
  done
  for n in 2 4 8; do
    echo "running $impl hello -n $n x$REPS" >&2
    i=0
    : >"$work/times"
    while [ "$i" -lt "$REPS" ]; do
      t0=$(now_ns)
      runjob "$impl" "$n" "$work/hello_$impl" >/dev/null
      t1=$(now_ns)
      echo $(((t1 - t0) / 1000)) >>"$work/times"
      i=$((i + 1))
    done
    med=$(sort -n "$work/times" | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] / 1000 }')
    echo "hello $n $med" >>"$out"
  done
done

# One table: figures side by side, and our ratio to each peer (time: ours/theirs, lower is
# better; bandwidth: ours/theirs, higher is better). Goal rows are marked.
awk -v REPS="$REPS" '
  FNR == 1 { impl++ }
  { key = $1 " " $2; val[impl, key] = $3; if (impl == 1) order[++n] = key }
  function human(b) { return b >= 1048576 ? b / 1048576 " MiB" : b >= 1024 ? b / 1024 " KiB" : b " B" }
  END {
    printf "%-26s %-6s %11s %11s %11s %9s %9s  %s\n", "benchmark (2 ranks unless -n)", "unit", "sfmpi", "MPICH", "Open MPI", "sf/MPICH", "sf/OMPI", "goal"
    for (i = 1; i <= n; i++) {
      split(order[i], k, " ")
      if (k[1] == "lat") { name = "latency " human(k[2]); unit = "us" }
      else if (k[1] == "bw") { name = "bandwidth " human(k[2]); unit = "MB/s" }
      else if (k[1] == "allreduce") { name = "allreduce " human(k[2]); unit = "us" }
      else { name = "hello world -n " k[2]; unit = "ms" }
      a = val[1, order[i]]; b = val[2, order[i]]; c = val[3, order[i]]
      goal = ""
      if (order[i] == "lat 8") goal = (a / b <= 1.5 ? "met" : "MISSED") " (<= 1.5x MPICH)"
      if (order[i] == "bw 1048576") goal = (a / b >= 0.8 ? "met" : "MISSED") " (>= 0.8x MPICH)"
      if (order[i] == "hello 8") goal = (a / b <= 0.5 ? "met" : "MISSED") " (<= 0.5x MPICH)"
      printf "%-26s %-6s %11.2f %11.2f %11.2f %8.2fx %8.2fx  %s\n", name, unit, a, b, c, a / b, a / c, goal
    }
    printf "hello world: whole-job wall time, median of %d runs, launcher included\n", REPS
  }' "$work/sf.txt" "$work/mpich.txt" "$work/ompi.txt"
