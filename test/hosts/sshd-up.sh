#!/bin/bash
# sshd-up.sh : one sshd per test host (port 22 on its address, inside the host), key-only root
# login with keys made for this run, and a client config bound over /etc/ssh/ssh_config inside
# every host, so that inside any host a plain `ssh th2 CMD` (or `ssh 10.77.0.2 CMD`) just works:
# no password, no prompt, host keys checked against a generated known_hosts. From the root
# namespace: th-exec.sh th1 ssh th2 CMD, or ssh -F $TH_STATE/ssh/ssh_config inside a host.
# Needs openssh-server and openssh-client. Restarts the sshds if they run. Writes nothing to the
# real /etc or /root/.ssh. TH_KEEP_BASHRC=1 keeps the machine's /root/.bashrc inside the hosts.
set -euo pipefail
. "$(dirname "$0")/th-lib.sh"
th_close_fds
t0=$(date +%s%N)
hosts=$(th_hosts)
[ -n "$hosts" ] || th_die "no test hosts '$TH_PREFIX' (run hosts-up.sh first)"
for f in /usr/sbin/sshd /etc/ssh/ssh_config; do [ -e $f ] || th_die "$f missing: apt-get install openssh-server openssh-client"; done
S=$TH_STATE/ssh; mkdir -p "$S"; chmod 700 "$S"
[ -e "$S/id_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C testhosts -f "$S/id_ed25519"
cp "$S/id_ed25519.pub" "$S/authorized_keys"
cat > "$S/sshd_config" <<CFG
# sshd of the test hosts (sshd-up.sh); ListenAddress, HostKey and PidFile come on the command line.
Port 22
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
AuthorizedKeysFile $S/authorized_keys
# $TH_STATE lies under world-writable /tmp, which StrictModes refuses.
StrictModes no
UseDNS no
# A launcher may pass variables with ssh -o SendEnv=...; 'ssh host VAR=x cmd' works anyway.
AcceptEnv LANG LC_* SFMPI_* TH_*
X11Forwarding no
PrintMotd no
PrintLastLog no
# Tests start many sessions at once: do not refuse connections at 10 unauthenticated (default).
MaxStartups 200
MaxSessions 200
LogLevel INFO
Subsystem sftp /usr/lib/openssh/sftp-server
CFG
cat > "$S/ssh_config" <<CFG
# ssh client config of the test hosts (sshd-up.sh): bound over /etc/ssh/ssh_config inside each.
Host *
    User root
    IdentityFile $S/id_ed25519
    IdentitiesOnly yes
    UserKnownHostsFile $S/known_hosts
    GlobalKnownHostsFile /dev/null
    StrictHostKeyChecking yes
    BatchMode yes
    ConnectTimeout 5
    LogLevel ERROR
    # OpenSSH 9's default sntrup761x25519 costs ~90 ms per connection on a small VM; this ~0.
    KexAlgorithms curve25519-sha256
CFG
# sshd runs every command as `bash -c CMD`, and such a bash reads ~/.bashrc: a slow one (pyenv
# init: ~350 ms) would be paid on every ssh. Inside the hosts it is empty, as on a fresh node.
printf '# .bashrc of the test hosts (sshd-up.sh): empty on purpose\n' > "$S/bashrc"
: > "$S/empty"
: > "$S/known_hosts"
for h in $hosts; do
  ip=$(th_addr "$h")
  mkdir -p "$S/$h"
  rm -f "$S/$h/ssh_host_ed25519_key" "$S/$h/ssh_host_ed25519_key.pub"
  ssh-keygen -q -t ed25519 -N '' -C "$h" -f "$S/$h/ssh_host_ed25519_key"
  echo "$h,$ip $(cut -d' ' -f1,2 < "$S/$h/ssh_host_ed25519_key.pub")" >> "$S/known_hosts"
done
for h in $hosts; do
  ip=$(th_addr "$h"); r=$TH_STATE/$h/run
  mkdir -p "$r/sshd"; chmod 755 "$r/sshd"                  # sshd's privilege separation dir
  if [ -r "$r/sshd.pid" ]; then th_kill "$h" "$(cat "$r/sshd.pid")" sshd 2>/dev/null || true; rm -f "$r/sshd.pid"; fi
  # One th_exec per host for the binds and the start: each costs a few ms.
  th_exec "$h" bash -c '
    mountpoint -q /etc/ssh/ssh_config || mount -n --bind "$1/ssh_config" /etc/ssh/ssh_config
    # A user ssh config of the machine would override the hosts'"'"' one: hide it.
    [ ! -e /root/.ssh/config ] || mountpoint -q /root/.ssh/config || mount -n --bind "$1/empty" /root/.ssh/config
    if [ -z "$4" ] && [ -e /root/.bashrc ]; then mountpoint -q /root/.bashrc || mount -n --bind "$1/bashrc" /root/.bashrc; fi
    exec /usr/sbin/sshd -f "$1/sshd_config" -h "$1/$2/ssh_host_ed25519_key" \
      -o ListenAddress="$3" -o PidFile=/run/sshd.pid -E "$5/sshd.log"' \
    sh "$S" "$h" "$ip" "${TH_KEEP_BASHRC:-}" "$TH_STATE/$h"
done
# sshd writes its pid file once it listens. Then one ssh from the first host to every host, in
# parallel, proves keys, known_hosts and config.
for h in $hosts; do
  for _ in $(seq 300); do [ -s "$TH_STATE/$h/run/sshd.pid" ] && break; sleep 0.01; done
  [ -s "$TH_STATE/$h/run/sshd.pid" ] || { echo "sshd-up.sh: sshd on $h did not start; log:" >&2; cat "$TH_STATE/$h/sshd.log" >&2; exit 1; }
done
first=$(echo "$hosts" | head -1); checks=()
for h in $hosts; do th_exec "$first" ssh -n "$h" true & checks+=("$h:$!"); done
for c in "${checks[@]}"; do
  wait "${c#*:}" || { h=${c%%:*}; echo "sshd-up.sh: ssh $first -> $h fails; log:" >&2; cat "$TH_STATE/$h/sshd.log" >&2; exit 1; }
done
echo "sshd-up.sh: sshd on $(echo $hosts) ready in $(th_ms "$t0") ms"
