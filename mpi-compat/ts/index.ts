/**
 * MPI for TypeScript ranks. `MPI.init()` is the fork point: the one running process becomes
 * SFMPI_SIZE ranks (or `options.size`) that continue from here with everything loaded before.
 *
 * @example
 * import { MPI } from 'sfmpi/mpi';
 * const comm = MPI.init();
 * const total = comm.allreduce(comm.rank + 1, MPI.SUM);
 * MPI.finalize();
 *
 * Flow of init (docs/mpi-ts.md has the whole story):
 *   1. create the shared-memory data plane (rings for every rank pair) in this process;
 *   2. requestTicket(size - 1) and clone(): the process forks; each copy gets its rank (clone id);
 *   3. the origin records each clone's pid; every rank attaches to the data plane;
 *   4. each rank wires SFMPI_STDIO_FDS, sends `fork` on SFMPI_CONTROL_FD, installs failure reporting.
 * Failure: an uncaught exception in a rank sends `fail` to the launcher and sets the data plane's
 * abort word; ranks blocked in MPI calls wake and throw MPIError ERR_ABORTED naming that rank.
 * The origin's clones are watched by the native process module (native/proc/watch.c), the same
 * code as libsfmpi's: a clone's death reaches the data plane and the launcher at once, and the
 * origin reaps every clone at finalize or exit with an `exit` line for each (and one `fail` for a
 * failure nobody reported: the claim-once policy of native/control).
 */
import { loadOnce, sealShares } from '../../runtime/share.js';
import { clone, requestTicket, type Ticket } from '../../runtime/index.js';
import { handOver } from '../../runtime/clone.js';
import {
  ANY_SOURCE, ANY_TAG, Comm, IN_PLACE, PROC_NULL, TAG_UB, UNDEFINED, makeWorld, runtime, setAbortHook,
} from './comm.js';
import { ERRORS, MPIError, rangeError, typeError } from './errors.js';
import { mpi, proc } from './native.js';
import { BAND, BOR, BXOR, LAND, LOR, LXOR, MAX, MAXLOC, MIN, MINLOC, Op, PROD, SUM } from './op.js';
import { Request, setWaitTimeout } from './request.js';
import { setMathjs, type MathjsLike } from './serialization.js';
import { Status } from './status.js';
import { CONGRUENT, Group, GROUP_EMPTY, IDENT, SIMILAR, UNEQUAL } from './group.js';
import { CART, Cartcomm, computeDims, DIST_GRAPH, DistGraphcomm, GRAPH, Graphcomm } from './topo.js';
import {
  LOCK_EXCLUSIVE, LOCK_SHARED, MODE_NOCHECK, MODE_NOPRECEDE, MODE_NOPUT, MODE_NOSTORE, MODE_NOSUCCEED, NO_OP, REPLACE, Win,
} from './win.js';

export { Comm, MPIError, Op, Request, Status, ERRORS, Group, Cartcomm, Graphcomm, DistGraphcomm, Win };
export type { CartOptions, DistGraphOptions } from './topo.js';
export type { AllocOptions, WinOptions } from './win.js';
export type { RankRange } from './group.js';
export type { MPIErrorCode } from './errors.js';
export type { TypedArray } from './datatype.js';

/** Options of MPI.init. */
export interface InitOptions {
  /** Number of ranks. Default: SFMPI_SIZE from sfmpirun, else 1 (a singleton job). */
  size?: number;
  /** Blocking-wait limit in ms before a timeout error (default: SFMPI_TIMEOUT_MS, else SFMPI_WAIT_TIMEOUT_MS, else 60 000; -1: none). */
  timeoutMs?: number;
  /** The program's mathjs module, for object messages and reductions of mathjs values (default: loaded on first use). */
  mathjs?: MathjsLike;
  /** Bytes per ring, a power of two (default: the data plane's, 256 KiB..1 MiB). */
  ringBytes?: number;
  /** Largest message copied through a ring (default 64 KiB). */
  eagerLimit?: number;
}

const MAX_RANKS = mpi.MAX_RANKS;

interface Job {
  rank: number;
  size: number;
  world: Comm;
  self: Comm;
  /** This host's first rank (the origin, or a seed on another host): the parent of its host's ranks. */
  localRoot: boolean;
  /** The host's first rank: gives the clones' admission slots back once they are reaped. */
  releaseSlots: (() => void) | null;
  ctlFd: number;
  reaped: boolean;
  failed: boolean;
}

let job: Job | null = null;

function envInt(name: string): number | undefined {
  const v = process.env[name];
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  if (!Number.isInteger(n)) throw new RangeError(`MPI.init: environment variable ${name}=${JSON.stringify(v)} is not an integer`);
  return n;
}

function oneLine(s: string): string {
  const line = s.replace(/\s+/g, ' ').trim();
  return line.length > 300 ? line.slice(0, 297) + '...' : line;
}

function ctl(fn: () => void): void {
  try {
    fn();
  } catch {
    /* the launcher may be gone; the exit status still tells */
  }
}

/** Makes this rank's pair of SFMPI_STDIO_FDS (listed by local rank: this host's ranks) its stdout and stderr. */
function wireStdio(local: number, count: number): void {
  const spec = process.env.SFMPI_STDIO_FDS;
  if (!spec) return;
  const fds = spec.split(',').map(Number);
  if (fds.length !== 2 * count || fds.some((f) => !Number.isInteger(f) || f < 0)) {
    throw new RangeError(`MPI.init: SFMPI_STDIO_FDS has ${fds.length} fds (${spec}), expected 2 x ${count}`);
  }
  const out = fds[2 * local], err = fds[2 * local + 1];
  proc.dup2(out, 1);
  proc.dup2(err, 2);
  for (const fd of fds) if (fd > 2) proc.closeFd(fd);
}

/** Reports this rank's own failure once (unless its parent did): `fail` to the launcher, then the job's abort word. */
function reportFailure(j: Job, code: number, cause: string): void {
  if (j.failed) return;
  j.failed = true;
  ctl(() => mpi.ctlFailOnce(j.ctlFd, j.rank, code, 0, oneLine(cause)));
  mpi.abort(code, oneLine(cause));
}

/** Origin: reaps every clone (killing them after `graceMs` when the job is failing), each reported by the native watcher. */
function reapClones(j: Job, graceMs: number): void {
  if (j.reaped || !j.releaseSlots) return;
  j.reaped = true;
  ctl(() => mpi.reapClones(graceMs, graceMs >= 0));
  j.releaseSlots();
}

/** True for errors that only echo another rank's failure (abort word, dead peer). */
function isEcho(e: unknown): boolean {
  return e instanceof MPIError && (e.code === 'ERR_ABORTED' || (e.code === 'ERR_PROC_FAILED' && e.rank !== undefined));
}

function installFailureReporting(j: Job): void {
  process.on('uncaughtExceptionMonitor', (err) => {
    if (!job || runtime.finalized && j.reaped) return;
    if (isEcho(err)) {
      // Another rank failed first and has reported it (or its parent will): just leave.
      // One line instead of a stack: the launcher already names the rank that failed first.
      mpi.markFailReported(j.rank); // its cause is another rank's, reported there
      j.failed = true;
      process.stderr.write(`sfmpi: rank ${j.rank} stopped: ${(err as Error).message}\n`);
      process.exit(1);
    }
    const e = err as Error;
    const what = e instanceof Error ? `${e.name}: ${e.message}` : String(err);
    reportFailure(j, 1, `threw ${what}`);
  });
  process.on('exit', (code) => {
    if (!job) return;
    const failing = j.failed || code !== 0 || mpi.aborted() !== null;
    if (!failing && !runtime.finalized) {
      // A program that ends without finalize: this rank is done. No barrier here (unlike
      // MPI.finalize): the origin reaches its 'exit' only once every clone has exited (it
      // watches them), so clones waiting for it at exit would deadlock.
      mpi.markFinished();
      runtime.finalized = true;
    }
    if (j.localRoot) {
      if (failing && !j.failed) reportFailure(j, code || 1, `exited with code ${code}`);
      reapClones(j, j.failed || failing ? 2000 : -1);
      ctl(() => mpi.ctlExit(j.ctlFd, j.rank, code));
    }
  });
}

/**
 * Starts MPI: forks this process into the job's ranks and returns COMM_WORLD in each. Call once,
 * after loading what every rank needs (it is inherited, not reloaded).
 * @throws RangeError for a bad size; Error when the fork is refused (admission, system limits).
 */
export function init(options: InitOptions = {}): Comm {
  if (job) throw new MPIError('ERR_OTHER', 'MPI.init: MPI is already initialized (init is called once per job)');
  if (runtime.finalized) throw new MPIError('ERR_FINALIZED', 'MPI.init: MPI was finalized; it cannot be initialized again');
  if (options === null || typeof options !== 'object') throw typeError('MPI.init', 'options must be an object', options);
  const size = options.size ?? envInt('SFMPI_SIZE') ?? 1;
  if (typeof size !== 'number' || !Number.isInteger(size)) throw typeError('MPI.init', 'options.size must be an integer', size);
  if (size < 1 || size > MAX_RANKS) throw rangeError('MPI.init', `size ${size} out of range 1..${MAX_RANKS}`);
  const timeoutMs = options.timeoutMs ?? 0;
  if (!Number.isInteger(timeoutMs) || timeoutMs < -1) throw rangeError('MPI.init', `options.timeoutMs must be an integer >= -1, got ${timeoutMs}`);
  if (options.mathjs !== undefined) setMathjs(options.mathjs);
  sealShares(); // loadOnce is for the code before the fork point
  setWaitTimeout(options.timeoutMs);
  const ctlFd = envInt('SFMPI_CONTROL_FD') ?? -1;

  const t0 = performance.now();
  // A job that spans hosts: dom0 started this process and says where every rank lives.
  const dom0Fd = envInt('SFMPI_DOM0_FD');
  const joined = dom0Fd === undefined ? null : mpi.join(dom0Fd);
  if (joined && options.size !== undefined && options.size !== joined.size)
    throw rangeError('MPI.init', `options.size is ${options.size}, but this job has ${joined.size} ranks`);
  const worldSize = joined ? joined.size : size;
  // This host's ranks, in local order (every rank of the job on one host).
  const locals = joined ? [...joined.hostOf.keys()].filter((r) => joined.hostOf[r] === joined.host) : [...Array(worldSize).keys()];
  mpi.create(worldSize, options.ringBytes ?? 0, options.eagerLimit ?? 0, timeoutMs, 0, 0, joined?.hostOf, joined?.host);
  let id = 0;
  let ticket: Ticket | null = null;
  if (locals.length > 1) {
    try {
      ticket = requestTicket(locals.length - 1);
      id = clone(ticket);
    } catch (e) {
      mpi.destroy();
      // Add this layer's context; keep the class (RangeError for admission) and the cause.
      if (!(e instanceof Error)) throw e;
      const C = e instanceof RangeError ? RangeError : e instanceof TypeError ? TypeError : Error;
      throw new C(`MPI.init: cannot start ${locals.length} ranks: ${e.message}`, { cause: e });
    }
  }
  const rank = locals[id];
  let releaseSlots: (() => void) | null = null;
  let pids: number[] = [];
  if (id === 0 && ticket) {
    ({ pids, release: releaseSlots } = handOver(ticket));
    pids.forEach((pid, i) => mpi.setPid(locals[i + 1], pid));
  }
  mpi.attach(rank);
  if (joined) {
    const l = joined.links;
    for (let i = 0; i < l.length; i += 3) {
      if (l[i] === id) mpi.addLink(l[i + 1], l[i + 2]);
      else proc.closeFd(l[i + 2]);
    }
    proc.closeFd(dom0Fd!);
  }
  if (id === 0 && pids.length > 0) mpi.watchClones(ctlFd, Int32Array.from(locals.slice(1)), Int32Array.from(pids));
  const ms = performance.now() - t0;
  const { world, self } = makeWorld(rank, worldSize);
  job = { rank, size: worldSize, world, self, localRoot: id === 0, releaseSlots, ctlFd, reaped: false, failed: false };
  wireStdio(id, locals.length);
  ctl(() => mpi.ctlFork(ctlFd, rank, process.pid, ms));
  // With --verbose, sfmpirun prints each rank's `ms` from this message (SFMPI_VERBOSE).
  installFailureReporting(job);
  setAbortHook(abort);
  return world;
}

function requireJob(where: string): Job {
  if (!job) throw new MPIError('ERR_NOT_INITIALIZED', `${where}: MPI.init() has not been called`);
  return job;
}

/**
 * Ends MPI: a barrier over COMM_WORLD, then the origin waits for every clone to exit and reports
 * them. Clones continue to their own end. Calling it twice is a no-op.
 */
export function finalize(): void {
  const j = requireJob('MPI.finalize');
  if (runtime.finalized) return;
  j.world.barrier();
  mpi.markFinished();
  runtime.finalized = true;
  if (j.localRoot) {
    mpi.watchFinished();
    reapClones(j, -1);
  }
}

/** Aborts the whole job with `code`: reports this rank as the cause, wakes every rank, exits. */
export function abort(code = 1): never {
  if (typeof code !== 'number' || !Number.isInteger(code)) throw typeError('MPI.abort', 'code must be an integer', code);
  const j = job;
  if (j) reportFailure(j, code & 0xff || 1, `called MPI.abort(${code})`);
  process.exitCode = code & 0xff || 1;
  process.exit(code & 0xff || 1);
}

/** Seconds since an arbitrary point, monotonic (MPI_Wtime). */
export function wtime(): number {
  return mpi.wtime();
}

/** Resolution of wtime in seconds. */
export function wtick(): number {
  return 1e-9;
}

/** The MPI namespace, mpi4py-style: `MPI.init()`, `MPI.COMM_WORLD`, `MPI.SUM`, ... */
export const MPI = {
  init,
  /** Runs a loader once per cluster, before init: other hosts get the origin's value (runtime/share.ts). */
  loadOnce,
  finalize,
  abort,
  wtime,
  wtick,
  /** True after MPI.init. */
  isInitialized: (): boolean => job !== null,
  /** True after MPI.finalize. */
  isFinalized: (): boolean => runtime.finalized,
  /** Every rank of the job (after init). */
  get COMM_WORLD(): Comm {
    return requireJob('MPI.COMM_WORLD').world;
  },
  /** This rank alone. */
  get COMM_SELF(): Comm {
    return requireJob('MPI.COMM_SELF').self;
  },
  ANY_SOURCE,
  ANY_TAG,
  PROC_NULL,
  UNDEFINED,
  IN_PLACE,
  TAG_UB,
  SUM, PROD, MIN, MAX, LAND, LOR, LXOR, BAND, BOR, BXOR, MAXLOC, MINLOC,
  computeDims,
  GROUP_EMPTY, IDENT, CONGRUENT, SIMILAR, UNEQUAL,
  CART, GRAPH, DIST_GRAPH,
  LOCK_EXCLUSIVE, LOCK_SHARED, MODE_NOCHECK, MODE_NOSTORE, MODE_NOPUT, MODE_NOPRECEDE, MODE_NOSUCCEED, REPLACE, NO_OP,
  Op, Request, Status, Comm, MPIError, Group, Cartcomm, Graphcomm, DistGraphcomm, Win,
} as const;

export default MPI;
export { ANY_SOURCE, ANY_TAG, PROC_NULL, UNDEFINED, IN_PLACE, TAG_UB };
export { SUM, PROD, MIN, MAX, LAND, LOR, LXOR, BAND, BOR, BXOR, MAXLOC, MINLOC };
export { computeDims, GROUP_EMPTY, IDENT, CONGRUENT, SIMILAR, UNEQUAL, CART, GRAPH, DIST_GRAPH };
export { LOCK_EXCLUSIVE, LOCK_SHARED, MODE_NOCHECK, MODE_NOSTORE, MODE_NOPUT, MODE_NOPRECEDE, MODE_NOSUCCEED, REPLACE, NO_OP };
