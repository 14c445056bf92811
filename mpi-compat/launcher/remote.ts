/**
 * The command lines that start one dom0 per host: over ssh (one ssh per host, as Open MPI's
 * rsh launcher and MPICH's hydra do), or inside a Slurm allocation with one `srun` step that
 * runs one dom0 per node (what Open MPI does with its orted there). Pure functions: they build
 * argv arrays for child_process.spawn and run nothing.
 *
 * ssh: `ssh -T -x -o BatchMode=yes -o ConnectTimeout=5 -o ServerAliveInterval=5
 *       -o ServerAliveCountMax=3 [-l user] [-p port] -- HOST 'cd -- DIR && exec env K=V... NODE
 *       [node flags] DOM0_MAIN ARGS...'`
 * - no `-n`: the secret goes as the first line of ssh's standard input, which then stays open
 *   as the launcher's lifeline (dom0 sees its end when the launcher or its ssh dies);
 * - BatchMode: a host that wants a password or a host-key confirmation fails at once instead
 *   of prompting; ConnectTimeout and ServerAlive*: a host that does not answer, or stops
 *   answering, ends its ssh within seconds;
 * - ssh joins its command words with spaces and the remote sshd runs the result with the
 *   user's login shell (`$SHELL -c`), so the command is ONE string in which every word is
 *   quoted for a POSIX shell (sh, bash, dash, ksh, zsh; csh and fish quote differently and are
 *   not supported, as with hydra's and Open MPI's own ssh launch lines);
 * - the package, node and the job's directory are at the same paths on every host (as MPI
 *   requires of its installs): DIR, NODE and DOM0_MAIN are the launcher's own paths.
 *
 * srun: `srun --nodes=N --ntasks=N --ntasks-per-node=1 --nodelist=a,b,... --kill-on-bad-exit
 *        --mpi=none --input=none --export=ALL --chdir=DIR --quiet --cpu-bind=none --overlap
 *        NODE [node flags] DOM0_MAIN ARGS...`, the secret in srun's environment (exported to
 *        the step by --export=ALL; Slurm runs the step's argv without a shell, so nothing is
 *        quoted). --kill-on-bad-exit: one dom0 failing ends the step everywhere; --cpu-bind=none
 *        (Open MPI does the same): a site's task/affinity must not pin a dom0 and every rank it
 *        starts to one CPU (under task/none srun prints "cluster configuration lacks support for
 *        cpu binding" on stderr); --overlap: the step may share CPUs with the step that runs
 *        sfmpirun itself (`srun sfmpirun ...`), which would otherwise leave it waiting forever.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { encodeSecret, SECRET_ENV } from '../../dom0/handshake.js';
import { badHostName } from './hostfile.js';

/** Something to spawn: argv, environment additions, and a first line for its stdin. */
export interface Dom0Command {
  /** argv[0] for spawn (no local shell is involved). */
  command: string;
  args: string[];
  /** Variables to add to the spawned process's environment. */
  env: Record<string, string>;
  /** Bytes to write on its standard input first (ssh: the secret line), or null for none. */
  stdin: string | null;
}

/** What both launch forms need. */
export interface Dom0Start {
  /** The job secret (32 bytes); never placed in argv. */
  secret: Buffer;
  /** Absolute directory dom0 starts in on every host (normally the launcher's cwd). */
  cwd: string;
  /** Environment for dom0 (not the secret). */
  env?: Record<string, string>;
  /** dom0's own arguments. */
  args?: string[];
  /** Node on the hosts; default this process's (the same path everywhere). */
  node?: string;
  /** Flags for node before the script. */
  nodeArgs?: string[];
  /** dom0's entry point; default {@link defaultDom0Main}(). */
  dom0Main?: string;
}

/** Options of {@link sshCommand}. */
export interface SshStart extends Dom0Start {
  /** The host to reach (an ssh target: a name or an IPv4 address). */
  host: string;
  /** Login name (`-l`); default ssh's own (~/.ssh/config, then the local user). */
  user?: string;
  /** Port (`-p`); default ssh's own. */
  port?: number;
  /** Seconds to wait for the connection (default 5). */
  connectTimeoutSec?: number;
  /** Seconds between keepalives; 3 missed ones end ssh (default 5). 0 leaves ssh's setting. */
  aliveIntervalSec?: number;
  /** More ssh options, placed before the host (e.g. ['-F', config]). */
  sshOptions?: string[];
  /** The ssh program (default `ssh`). */
  ssh?: string;
}

/** Options of {@link srunCommand}. */
export interface SrunStart extends Dom0Start {
  /** The nodes, one dom0 each (names as Slurm knows them). */
  hosts: string[];
  /** Add --cpu-bind=none (default true). */
  cpuBindNone?: boolean;
  /** Add --overlap (Slurm >= 20.11; default true). */
  overlap?: boolean;
  /** More srun options, placed before the command. */
  srunOptions?: string[];
  /** The srun program (default `srun`). */
  srun?: string;
}

/** dom0's entry point in this package: `<package>/dist/dom0/main.js`. */
export function defaultDom0Main(): string {
  // This file is dist/mpi-compat/launcher/remote.js.
  return path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'dom0', 'main.js');
}

/** Quotes a word for a POSIX shell: plain words stay as they are, anything else goes in
 * single quotes, a single quote becoming '\'' (the only character single quotes cannot hold). */
export function shellQuote(word: string): string {
  if (word.includes('\0')) throw new RangeError('a shell word cannot hold a NUL byte');
  if (/^[A-Za-z0-9_\/.,:@%+=-]+$/.test(word)) return word;
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

function checkCommon(o: Dom0Start): { node: string; main: string; env: [string, string][] } {
  if (!path.isAbsolute(o.cwd)) throw new RangeError(`cwd must be an absolute path, got "${o.cwd}"`);
  const node = o.node ?? process.execPath;
  const main = o.dom0Main ?? defaultDom0Main();
  const env = Object.entries(o.env ?? {});
  for (const [k, v] of env) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) throw new RangeError(`environment variable name "${k}" is not a valid name`);
    if (v.includes('\0')) throw new RangeError(`environment variable ${k} holds a NUL byte`);
    if (k === SECRET_ENV) throw new RangeError(`${SECRET_ENV} must not be passed in env: the builder places the secret itself`);
  }
  for (const [what, word] of [['cwd', o.cwd], ['node', node], ['dom0Main', main], ...(o.args ?? []).map((a) => ['an argument', a]), ...(o.nodeArgs ?? []).map((a) => ['a node flag', a])])
    if (word.includes('\0')) throw new RangeError(`${what} holds a NUL byte`);
  return { node, main, env };
}

function checkHost(host: string): void {
  const bad = badHostName(host);
  if (bad) throw new RangeError(`cannot start dom0 on ${JSON.stringify(host)}: ${bad}`);
}

/** Refuses a command line that would show the secret to every user of the host. */
function assertNoSecret(secret: Buffer, words: string[]): void {
  const encoded = encodeSecret(secret);
  for (const w of words) if (w.includes(encoded)) throw new RangeError('the job secret must not be on a command line');
}

/** The one string the remote login shell runs: `cd -- DIR && exec env K=V... NODE ... MAIN ARGS`. */
export function remoteShellCommand(o: Dom0Start): string {
  const { node, main, env } = checkCommon(o);
  // env(1) takes every leading word with a "=" for an assignment, the program's path included.
  if (env.length > 0 && node.includes('=')) throw new RangeError(`node's path "${node}" contains "=", which env(1) would take for a variable`);
  const words = [node, ...(o.nodeArgs ?? []), main, ...(o.args ?? [])].map(shellQuote);
  const run = env.length > 0 ? ['exec', 'env', ...env.map(([k, v]) => `${k}=${shellQuote(v)}`), ...words] : ['exec', ...words];
  return `cd -- ${shellQuote(o.cwd)} && ${run.join(' ')}`;
}

/** The ssh command that starts dom0 on `o.host`; write `stdin` (the secret line) to its
 * standard input first and keep it open for as long as the job runs. */
export function sshCommand(o: SshStart): Dom0Command {
  checkHost(o.host);
  if (o.user !== undefined && !/^[A-Za-z0-9_][A-Za-z0-9_.-]*$/.test(o.user)) throw new RangeError(`ssh user "${o.user}" is not a valid login name`);
  if (o.port !== undefined && (!Number.isInteger(o.port) || o.port < 1 || o.port > 65535)) throw new RangeError(`ssh port must be 1..65535, got ${o.port}`);
  const connect = o.connectTimeoutSec ?? 5;
  const alive = o.aliveIntervalSec ?? 5;
  if (!Number.isInteger(connect) || connect < 1) throw new RangeError(`connectTimeoutSec must be a positive integer, got ${connect}`);
  if (!Number.isInteger(alive) || alive < 0) throw new RangeError(`aliveIntervalSec must be a non-negative integer, got ${alive}`);
  const remote = remoteShellCommand(o);
  const args = ['-T', '-x', '-o', 'BatchMode=yes', '-o', `ConnectTimeout=${connect}`];
  if (alive > 0) args.push('-o', `ServerAliveInterval=${alive}`, '-o', 'ServerAliveCountMax=3');
  if (o.user !== undefined) args.push('-l', o.user);
  if (o.port !== undefined) args.push('-p', String(o.port));
  args.push(...(o.sshOptions ?? []), '--', o.host, remote);
  assertNoSecret(o.secret, args);
  return { command: o.ssh ?? 'ssh', args, env: {}, stdin: `${encodeSecret(o.secret)}\n` };
}

/** The srun step that starts one dom0 on each of `o.hosts`, the secret in its environment. */
export function srunCommand(o: SrunStart): Dom0Command {
  const { node, main, env } = checkCommon(o);
  if (o.hosts.length === 0) throw new RangeError('srun needs at least one host');
  for (const h of o.hosts) checkHost(h);
  const n = o.hosts.length;
  const args = [
    `--nodes=${n}`,
    `--ntasks=${n}`,
    '--ntasks-per-node=1',
    `--nodelist=${o.hosts.join(',')}`,
    '--kill-on-bad-exit',
    '--mpi=none',
    '--input=none',
    '--export=ALL',
    `--chdir=${o.cwd}`,
    '--quiet',
  ];
  if (o.cpuBindNone ?? true) args.push('--cpu-bind=none');
  if (o.overlap ?? true) args.push('--overlap');
  args.push(...(o.srunOptions ?? []), node, ...(o.nodeArgs ?? []), main, ...(o.args ?? []));
  assertNoSecret(o.secret, args);
  return { command: o.srun ?? 'srun', args, env: { ...Object.fromEntries(env), [SECRET_ENV]: encodeSecret(o.secret) }, stdin: null };
}
