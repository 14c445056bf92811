/**
 * Test hosts for the multi-host tests: K "hosts" on this one machine (network, pid, mount and UTS
 * namespaces on a Linux bridge), each with a real sshd, plus a real Slurm cluster, made by the
 * scripts next to this file (test/hosts/*.sh; docs/testhosts.md).
 *
 *   const c = await upHosts({ count: 3, ssh: true, slurm: true });
 *   try {
 *     const r = await c.exec(c.hosts[0], 'srun', ['-N', '3', 'hostname']);
 *   } finally {
 *     await c.down();
 *   }
 *
 * Everything a test runs against the hosts must run inside one (`exec`): the root namespace has
 * no address on their bridge. Teardown happens even after a crash: `down()` in a finally, the
 * process's 'exit', SIGINT, SIGTERM and SIGHUP handlers, and `upHosts` replacing a stale cluster
 * of the same prefix (one whose owning process is gone). A cluster still owned by a live process
 * is never taken: without an explicit prefix, `upHosts` picks the next free one (th, thb, thc...),
 * so two test runs (two worktrees) coexist.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { root, run, type Ran, type RunOptions } from '../helpers.js';

/** The directory of the test-host scripts (hosts-up.sh, th-exec.sh, ...), in the source tree. */
export const scriptsDir: string = path.join(root, 'test', 'hosts');

/** Options of {@link upHosts}. */
export interface HostsOptions {
  /** Number of hosts, 1..64; they are named `${prefix}1` .. `${prefix}${count}`. */
  count: number;
  /** Start an sshd in every host (key-only root login, `ssh thN CMD` works inside). Default false. */
  ssh?: boolean;
  /** Start munged, slurmctld (on the first host) and one slurmd per host. Default false. */
  slurm?: boolean;
  /**
   * Host-name prefix: 1-8 lower-case letters or digits, starting and ending with a letter.
   * Default: $TH_PREFIX, else the first of th, thb, thc, ... thh not in use by a live process.
   */
  prefix?: string;
  /** First three octets of the hosts' /24 (host N is `${net}.N`). Default: $TH_NET, else 10.77.<slot>. */
  net?: string;
  /** Slots per host in the hostfiles and Slurm CPUs per node. Default 2. */
  cpus?: number;
  /** Slurm's SlurmdTimeout in seconds: a dead host is DOWN about 7 s after it. Default 10. */
  slurmdTimeout?: number;
}

/** A process running inside a test host, as {@link TestHosts.processes} lists it. */
export interface HostProcess {
  /** Its pid in the root pid namespace (for process.kill from the test). */
  pid: number;
  /** Its pid inside the host's pid namespace (what `ps` shows there). */
  nspid: number;
  /** Its parent's pid in the root pid namespace. */
  ppid: number;
  /** /proc/<pid>/comm. */
  comm: string;
  /** Its command line, arguments joined by spaces. */
  cmdline: string;
}

/** Wall time of each bring-up step, in ms. */
export interface UpTimings {
  /** hosts-up.sh (namespaces, bridge, addresses). */
  hosts: number;
  /** sshd-up.sh (0 without ssh). */
  ssh: number;
  /** slurm-up.sh (0 without slurm). */
  slurm: number;
}

/** A cluster of test hosts, as {@link upHosts} returns it. */
export interface TestHosts {
  /** Host-name prefix of this cluster. */
  readonly prefix: string;
  /** First three octets of its /24. */
  readonly net: string;
  /** Its state directory (keys, configs, logs; shared with the hosts, removed by down()). */
  readonly state: string;
  /** Host names, in order: `${prefix}1` .. */
  readonly hosts: readonly string[];
  /** Host addresses, in the order of `hosts`. */
  readonly addrs: readonly string[];
  /** Path of a hostfile with lines `thN slots=<cpus>` (Open MPI's form). */
  readonly hostfile: string;
  /** Paths of the same hosts in each format: one name a line, `thN slots=<cpus>`, `thN:<cpus>` (MPICH). */
  readonly hostfiles: { readonly names: string; readonly slots: string; readonly colon: string };
  /** Slots per host (and Slurm CPUs per node). */
  readonly cpus: number;
  /** Whether an sshd runs in every host. */
  readonly ssh: boolean;
  /** Whether Slurm runs (controller on hosts[0], partition "test", the default). */
  readonly slurm: boolean;
  /** Bring-up times. */
  readonly timings: UpTimings;
  /** TH_* settings that point the scripts at this cluster (e.g. to run th-exec.sh by hand). */
  readonly env: Readonly<Record<string, string>>;
  /**
   * Runs `cmd args...` inside `host` (through th-exec.sh: its namespaces, the test's cwd and
   * environment plus opts.env), with a deadline (opts.timeoutMs, default 30 s, scaled by
   * SF_TEST_TIMEOUT_MULTIPLIER), stdin from opts.input, and opts.onSpawn called with the pid of
   * the nsenter that waits for it in the root namespace. Resolves like helpers.ts `run`: exit
   * code, or the signal that killed the command; code 127 with a message if the host is down.
   * When the nsenter dies, the command gets SIGTERM (pdeathsig); its own children only die with
   * the process group, killed when the run ends or times out.
   */
  exec(host: string, cmd: string, args?: readonly string[], opts?: RunOptions): Promise<Ran>;
  /**
   * Crashes `host`: SIGKILL of its pid 1 kills all its processes; resolves once they are gone.
   * Peers see the connections reset; with `silent`, its link is cut first, so they hear nothing.
   */
  kill(host: string, opts?: { silent?: boolean }): Promise<void>;
  /** Unplugs (`down`) or replugs (`up`) host's link: a partition, its processes go on. */
  link(host: string, state: 'up' | 'down'): Promise<void>;
  /**
   * Processes running in `host`'s pid namespace now, read from /proc. Without `all`, the host's
   * own machinery is left out (its pid 1 and that one's sleep, the sshd listener, munged,
   * slurmctld and its slurmscriptd, slurmd), so an empty list means nothing was left behind.
   * A killed host has none.
   */
  processes(host: string, opts?: { all?: boolean }): HostProcess[];
  /** Removes the hosts, their processes, bridge, veths and state dir. Idempotent. */
  down(): Promise<void>;
}

/** What {@link hostsAvailable} found. */
export interface Availability {
  /** Whether test hosts can be made here. */
  ok: boolean;
  /** Why not (empty when ok), e.g. "not root" or "slurmd not installed". */
  reason: string;
}

const PREFIX_RE = /^[a-z]([a-z0-9]{0,6}[a-z])?$/;
const NET_RE = /^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){2}$/;
/** hosts-up.sh's exit status when the cluster is in use by a live process. */
const IN_USE = 75;
const SCRIPT_MS = 60_000;

/**
 * Whether test hosts (with ssh and Slurm unless told otherwise) can be made on this machine:
 * root, the tools the scripts need, and a kernel that lets us make a network namespace.
 * A test skips with `reason` printed when not ok; CI is root and installs the packages.
 */
export function hostsAvailable(opts: { ssh?: boolean; slurm?: boolean } = {}): Availability {
  const { ssh = true, slurm = true } = opts;
  if (process.platform !== 'linux') return { ok: false, reason: 'not Linux' };
  if (process.getuid?.() !== 0) return { ok: false, reason: 'not root (network, pid and mount namespaces need root)' };
  const need: Record<string, string> = {
    ip: 'iproute2', nsenter: 'util-linux', unshare: 'util-linux', setpriv: 'util-linux', flock: 'util-linux', bash: 'bash',
  };
  if (ssh) Object.assign(need, { sshd: 'openssh-server', ssh: 'openssh-client', 'ssh-keygen': 'openssh-client' });
  if (slurm) Object.assign(need, { munged: 'munge', mungekey: 'munge', slurmctld: 'slurmctld', slurmd: 'slurmd', srun: 'slurm-client', sinfo: 'slurm-client', scontrol: 'slurm-client' });
  const dirs = [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/sbin', '/usr/bin', '/bin'].filter(Boolean);
  const where = (c: string) => dirs.map((d) => path.join(d, c)).find(isExecutable);
  const missing = Object.keys(need).filter((c) => !where(c));
  if (missing.length) {
    const pkgs = [...new Set(missing.map((c) => need[c]))].join(' ');
    return { ok: false, reason: `${missing.join(', ')} not installed (apt-get install ${pkgs})` };
  }
  if (slurm && !fs.existsSync('/etc/slurm')) return { ok: false, reason: '/etc/slurm missing (apt-get install slurm-client)' };
  const probe = spawnSync(where('unshare')!, ['--net', '--pid', '--fork', '--mount', where('bash')!, '-c', ':'], { stdio: 'ignore', timeout: 10_000 });
  if (probe.status !== 0) return { ok: false, reason: 'cannot make namespaces here (unshare --net --pid --mount fails)' };
  return { ok: true, reason: '' };
}

function isExecutable(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

/** Clusters this process has up, by prefix: for the exit and signal handlers. */
const live = new Map<string, Cluster>();

/**
 * Makes `count` test hosts, with an sshd in each and Slurm if asked, and returns them. A stale
 * cluster of the same prefix (its owner died) is removed first; one owned by a live process is
 * not: with an explicit prefix that is an error naming the owner, otherwise the next free
 * prefix is used. If a step fails, what was made is taken down and the error names the step and
 * carries its output.
 */
export async function upHosts(opts: HostsOptions): Promise<TestHosts> {
  const { count, ssh = false, slurm = false, cpus = 2, slurmdTimeout = 10 } = opts;
  if (!Number.isInteger(count) || count < 1 || count > 64) throw new RangeError(`count must be an integer 1..64, got ${count}`);
  if (!Number.isInteger(cpus) || cpus < 1 || cpus > 999) throw new RangeError(`cpus must be an integer 1..999, got ${cpus}`);
  if (!Number.isInteger(slurmdTimeout) || slurmdTimeout < 1) throw new RangeError(`slurmdTimeout must be a positive integer, got ${slurmdTimeout}`);
  const prefix = opts.prefix ?? process.env.TH_PREFIX;
  const net = opts.net ?? process.env.TH_NET;
  if (prefix !== undefined && !PREFIX_RE.test(prefix)) {
    throw new TypeError(`prefix must be 1-8 lower-case letters or digits, starting and ending with a letter, got "${prefix}"`);
  }
  if (net !== undefined && !NET_RE.test(net)) throw new TypeError(`net must be three octets such as 10.77.0, got "${net}"`);
  if (prefix !== undefined && live.has(prefix)) throw new Error(`test hosts "${prefix}" are already up in this process: down() them first`);
  const avail = hostsAvailable({ ssh, slurm });
  if (!avail.ok) throw new Error(`cannot make test hosts: ${avail.reason}`);

  // Candidate (prefix, net) pairs: the one asked for, or the free slots in order.
  const slots = prefix !== undefined
    ? [{ prefix, net: net ?? '10.77.0' }]
    : ['th', 'thb', 'thc', 'thd', 'the', 'thf', 'thg', 'thh'].map((p, i) => ({ prefix: p, net: net ?? `10.77.${i}` }));
  const refused: string[] = [];
  for (const slot of slots) {
    if (live.has(slot.prefix)) continue;
    const env: Record<string, string> = {
      TH_PREFIX: slot.prefix,
      TH_NET: slot.net,
      TH_STATE: `/tmp/testhosts-${slot.prefix}`,
      TH_CPUS: String(cpus),
      TH_SLURMD_TIMEOUT: String(slurmdTimeout),
      TH_OWNER: String(process.pid),
    };
    const up = await script('hosts-up.sh', [String(count)], env);
    if (up.code === IN_USE) {
      refused.push(up.stderr.trim());
      continue;
    }
    if (up.code !== 0) throw stepError('hosts-up.sh', up);
    const c = new Cluster(slot.prefix, slot.net, env, count, cpus, ssh, slurm, up.ms);
    live.set(c.prefix, c);
    armTeardown();
    try {
      if (ssh) {
        const r = await script('sshd-up.sh', [], env);
        if (r.code !== 0) throw stepError('sshd-up.sh', r);
        c.timings.ssh = r.ms;
      }
      if (slurm) {
        const r = await script('slurm-up.sh', [], env);
        if (r.code !== 0) throw stepError('slurm-up.sh', r);
        c.timings.slurm = r.ms;
      }
    } catch (err) {
      await c.down().catch(() => undefined);
      throw err;
    }
    return c;
  }
  throw new Error(`no free test-host prefix:\n${refused.join('\n')}`);
}

class Cluster implements TestHosts {
  readonly state: string;
  readonly hosts: readonly string[];
  readonly addrs: readonly string[];
  readonly hostfile: string;
  readonly hostfiles: { readonly names: string; readonly slots: string; readonly colon: string };
  readonly timings: UpTimings;
  #down = false;

  constructor(
    readonly prefix: string,
    readonly net: string,
    readonly env: Readonly<Record<string, string>>,
    count: number,
    readonly cpus: number,
    readonly ssh: boolean,
    readonly slurm: boolean,
    hostsMs: number,
  ) {
    this.state = env.TH_STATE;
    this.hosts = Array.from({ length: count }, (_, i) => `${prefix}${i + 1}`);
    this.addrs = this.hosts.map((_, i) => `${net}.${i + 1}`);
    this.hostfiles = {
      names: path.join(this.state, 'hostfile'),
      slots: path.join(this.state, 'hostfile.slots'),
      colon: path.join(this.state, 'hostfile.colon'),
    };
    this.hostfile = this.hostfiles.slots;
    this.timings = { hosts: hostsMs, ssh: 0, slurm: 0 };
  }

  exec(host: string, cmd: string, args: readonly string[] = [], opts: RunOptions = {}): Promise<Ran> {
    this.#check(host);
    return run(path.join(scriptsDir, 'th-exec.sh'), [host, cmd, ...args], {
      timeoutMs: 30_000,
      ...opts,
      env: { ...opts.env, ...this.env },
    });
  }

  async kill(host: string, opts: { silent?: boolean } = {}): Promise<void> {
    this.#check(host);
    const r = await script('host-kill.sh', opts.silent ? [host, '--silent'] : [host], this.env);
    if (r.code !== 0) throw stepError(`host-kill.sh ${host}`, r);
  }

  async link(host: string, state: 'up' | 'down'): Promise<void> {
    this.#check(host);
    if (state !== 'up' && state !== 'down') throw new TypeError(`link state must be "up" or "down", got "${state}"`);
    const r = await script('host-link.sh', [host, state], this.env);
    if (r.code !== 0) throw stepError(`host-link.sh ${host} ${state}`, r);
  }

  processes(host: string, opts: { all?: boolean } = {}): HostProcess[] {
    this.#check(host);
    const init = this.#initPid(host);
    if (init === undefined) return [];
    let pidns: number;
    try {
      pidns = fs.statSync(`/proc/${init}/ns/pid`).ino;
    } catch {
      return [];
    }
    const out: HostProcess[] = [];
    for (const entry of fs.readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      try {
        if (fs.statSync(`/proc/${entry}/ns/pid`).ino !== pidns) continue;
        const status = fs.readFileSync(`/proc/${entry}/status`, 'utf8');
        if (/^State:\s+Z/m.test(status)) continue;
        const nspid = Number(/^NSpid:.*\s(\d+)$/m.exec(status)?.[1]);
        const ppid = Number(/^PPid:\s+(\d+)$/m.exec(status)?.[1]);
        const comm = fs.readFileSync(`/proc/${entry}/comm`, 'utf8').trim();
        const cmdline = fs.readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' ');
        out.push({ pid: Number(entry), nspid, ppid, comm, cmdline });
      } catch {
        /* it ended while we looked */
      }
    }
    if (opts.all) return out;
    const own = new Set([1, ...this.#daemonPids(host)]);
    const ownRoot = new Set(out.filter((p) => own.has(p.nspid)).map((p) => p.pid));
    // The init's `sleep 3600` and slurmctld's slurmscriptd are children of machinery too.
    return out.filter((p) => !ownRoot.has(p.pid) && !(ownRoot.has(p.ppid) && (p.comm === 'sleep' || p.comm === 'slurmscriptd')));
  }

  async down(): Promise<void> {
    if (this.#down) return;
    const r = await script('hosts-down.sh', ['-q'], this.env);
    if (r.code !== 0) throw stepError('hosts-down.sh', r);
    this.#down = true;
    live.delete(this.prefix);
    if (live.size === 0) disarmTeardown();
  }

  /** Synchronous teardown, for process exit. */
  downSync(): void {
    if (this.#down) return;
    spawnSync(path.join(scriptsDir, 'hosts-down.sh'), ['-q'], { env: { ...process.env, ...this.env }, stdio: 'inherit', timeout: SCRIPT_MS });
    this.#down = true;
    live.delete(this.prefix);
  }

  #check(host: string): void {
    if (this.#down) throw new Error(`test hosts "${this.prefix}" are down`);
    if (!this.hosts.includes(host)) throw new RangeError(`unknown test host "${host}"; the hosts are ${this.hosts.join(', ')}`);
  }

  /** Root-namespace pid of host's pid 1, if it still runs. */
  #initPid(host: string): number | undefined {
    try {
      const pid = Number(fs.readFileSync(path.join(this.state, host, 'init.pid'), 'utf8'));
      const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
      if (/^State:\s+Z/m.test(status) || !/^NSpid:.*\s1$/m.test(status)) return undefined;
      if (fs.statSync(`/proc/${pid}/ns/net`).ino !== fs.statSync(`/run/netns/${host}`).ino) return undefined;
      return pid;
    } catch {
      return undefined;
    }
  }

  /** Host-namespace pids of the daemons sshd-up.sh and slurm-up.sh started in host. */
  #daemonPids(host: string): number[] {
    const files = ['sshd', 'slurmd', 'slurmctld'].map((d) => path.join(this.state, host, 'run', `${d}.pid`));
    if (host === this.hosts[0]) files.push(path.join(this.state, 'slurm', 'munge', 'munged.pid'));
    return files.flatMap((f) => {
      try {
        return [Number(fs.readFileSync(f, 'utf8'))];
      } catch {
        return [];
      }
    });
  }
}

function script(name: string, args: string[], env: Record<string, string>): Promise<Ran> {
  return run(path.join(scriptsDir, name), args, { env, timeoutMs: SCRIPT_MS });
}

function stepError(step: string, r: Ran): Error {
  const how = r.timedOut ? 'timed out' : r.signal ? `killed by ${r.signal}` : `exit ${r.code}`;
  return new Error(`test hosts: ${step} failed (${how}):\n${(r.stderr + r.stdout).trim()}`);
}

// Teardown on the way out: 'exit' covers a normal end, process.exit and an uncaught exception;
// the signal handlers tear down, then die by the same signal as they would have.
const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
let armed = false;

function onExit(): void {
  for (const c of [...live.values()]) c.downSync();
}

function onSignal(signal: NodeJS.Signals): void {
  onExit();
  disarmTeardown();
  process.kill(process.pid, signal);
}

function armTeardown(): void {
  if (armed) return;
  armed = true;
  process.on('exit', onExit);
  for (const s of SIGNALS) process.on(s, onSignal);
}

function disarmTeardown(): void {
  if (!armed) return;
  armed = false;
  process.off('exit', onExit);
  for (const s of SIGNALS) process.off(s, onSignal);
}
