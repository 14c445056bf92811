#!/bin/sh
# sfmpirun: npm's entry point. It runs the native launcher (build/c/sfmpirun), which runs a job
# of an executable on this host itself and hands the others (JavaScript, TypeScript, jobs
# across hosts) to the Node launcher (dist/mpi-compat/launcher/sfmpirun.js). A script, not the
# binary, because npm links bins before its install script builds them; it costs well under a
# millisecond, plus one readlink when started through a symlink (node_modules/.bin).
self=$0
case $self in */*) ;; *) self=./$self ;; esac
if [ -L "$self" ]; then self=$(readlink -f "$self"); fi
home=${self%/*}/../..
bin=$home/build/c/sfmpirun
if [ ! -x "$bin" ]; then
  # `node-gyp rebuild` deletes build/: build the launcher again, under sfmpicc's lock.
  if mkdir -p "$home/build/c" && command -v make >/dev/null 2>&1; then
    if command -v flock >/dev/null 2>&1; then
      flock "$home/build/c/.build-lock" make -s -C "$home/mpi-compat/c" launcher >&2 || true
    else
      make -s -C "$home/mpi-compat/c" launcher >&2 || true
    fi
  fi
  if [ ! -x "$bin" ]; then
    echo "sfmpirun: the native launcher is not built ($bin) and building it failed; run: make -C $home/mpi-compat/c" >&2
    exit 127
  fi
fi
exec "$bin" "$@"
