/**
 * Requests of non-blocking operations (MPI_Request).
 *
 * A request completes by `wait()` (synchronous, blocks like MPI_Wait: the data plane spins
 * briefly, then sleeps), by `test()`, or by `await` (a request is a thenable): an awaited request
 * is settled from the event loop by the binding the moment the data plane completes it (a
 * peer's frame rings this rank's wake-up fd, which the loop watches), so an awaiting rank sleeps
 * without burning a core and wakes within microseconds. A timer checks the job's health and the
 * wait timeout a few times a second meanwhile.
 */
import { MPIError, makeNativeError } from './errors.js';
import { decodeReceived, mpi, settled, status as st } from './native.js';
import { Status } from './status.js';
import { refusedError, type TypedArray } from './datatype.js';

const HEALTH_MS = 25;

/** Requests being awaited, and the one timer that checks the job's health for them. */
const awaited = new Set<Request<any>>();
let healthTimer: NodeJS.Timeout | undefined;
function watchAwaited(): void {
  if (healthTimer) return;
  // Unreferenced: the binding's watch of the wake-up fd keeps the loop alive while awaiting.
  healthTimer = setInterval(() => {
    if (awaited.size === 0) {
      clearInterval(healthTimer);
      healthTimer = undefined;
      return;
    }
    Request._check(Date.now(), mpi.health(), waitTimeoutMs());
  }, HEALTH_MS).unref();
}

/** The blocking-wait limit, as the data plane reads it (MPI.init's timeoutMs overrides it). */
let timeoutOverride: number | undefined;
/** @internal set by MPI.init from options.timeoutMs. */
export function setWaitTimeout(ms: number | undefined): void {
  timeoutOverride = ms;
}
function waitTimeoutMs(): number {
  if (timeoutOverride !== undefined && timeoutOverride !== 0) return timeoutOverride;
  const env = Number(process.env.SFMPI_TIMEOUT_MS || process.env.SFMPI_WAIT_TIMEOUT_MS || 0);
  return env > 0 ? env : 60_000;
}

function describeReq(kind: number, _s: Status, buf: unknown): string {
  if (kind === ReqKind.Coll) return `${(buf as CollInfo).label}: ${(buf as CollInfo).what()}`;
  return kind === ReqKind.Send ? 'a send' : 'a receive';
}

/** @internal what a request yields once complete (Coll: a collective's schedule, coll-nb.ts). */
export const ReqKind = { Send: 0, RecvBuffer: 1, RecvObject: 2, Done: 3, Coll: 4 } as const;

/**
 * @internal A collective request: its Request is the receive of the doorbell message that its
 * schedule sends once done (coll-nb.ts). `settle` gives its value or throws its failure; `what`
 * says what it waits for, for timeout messages.
 */
export interface CollInfo {
  label: string;
  settle: () => unknown;
  what: () => string;
}

/** A collective's wait failed: say which collective and what it waited for, not the doorbell's receive. */
function collFailure(info: CollInfo, e: unknown): unknown {
  if (!(e instanceof MPIError)) return e;
  if (e.code === 'ERR_TIMEOUT') {
    const ms = /timed out after (\d+) ms/.exec(e.message)?.[1];
    return new MPIError('ERR_TIMEOUT', `${info.label}: timed out${ms ? ` after ${ms} ms` : ''} waiting for ${info.what()}`, { rank: e.rank, ranks: e.ranks });
  }
  return new MPIError(e.code, `${info.label}: ${e.message.replace(/^irecv from rank \d+ tag \d+: /, '')}`, { rank: e.rank, ranks: e.ranks, errno: e.errno, exitCode: e.exitCode });
}
/** @internal */
export type ReqKind = (typeof ReqKind)[keyof typeof ReqKind];

/** @internal maps a world rank to the communicator's rank. */
export type SourceMap = (world: number) => number;

/** A pending non-blocking operation; `T` is what wait() returns (the received value or buffer). */
export class Request<T = unknown> implements PromiseLike<T> {
  #id: number;
  #kind: ReqKind;
  #map: SourceMap;
  #buf: unknown;
  #done = false;
  #value: T | undefined;
  #error: unknown;
  #status = new Status();

  /** @internal created by Comm's isend/irecv/Isend/Irecv. */
  constructor(id: number, kind: ReqKind, map: SourceMap, buf?: unknown) {
    this.#id = id;
    this.#kind = kind;
    this.#map = map;
    this.#buf = buf;
  }

  /** @internal a request that is complete at creation (e.g. a receive from PROC_NULL). */
  static _completed<T>(value: T, status?: Status): Request<T> {
    const r = new Request<T>(0, ReqKind.Done, (w) => w);
    r.#done = true;
    r.#value = value;
    if (status) r.#status = status;
    return r;
  }

  /** True once the operation completed (no progress is made; use test() for that). */
  get done(): boolean {
    return this.#done;
  }

  /** The status of the completed operation (source, tag, count). */
  get status(): Status {
    return this.#status;
  }

  #complete(): void {
    this.#done = true;
    const source = st[0] < 0 ? st[0] : this.#map(st[0]);
    this.#status._set(source, st[1], st[2], st[3]);
    try {
      if (this.#kind === ReqKind.Coll) {
        this.#status._set(-1, -1, 0, 0); // MPI's empty status
        this.#value = (this.#buf as CollInfo).settle() as T;
      } else if (st[4] !== 0) {
        this.#error = refusedError('irecv', st[4], source, st[1], st[2], st[3], this.#buf as TypedArray);
      } else if (this.#kind === ReqKind.RecvObject) {
        const got = mpi.result(this.#id);
        this.#value = (got === null || got === undefined ? undefined : decodeReceived(got)) as T;
      } else if (this.#kind === ReqKind.RecvBuffer) {
        this.#value = this.#buf as T;
      }
    } catch (e) {
      this.#error = e;
    } finally {
      mpi.free(this.#id);
    }
  }

  #fail(e: unknown): never {
    if (this.#kind === ReqKind.Coll) e = collFailure(this.#buf as CollInfo, e);
    this.#done = true;
    this.#error = e;
    mpi.free(this.#id);
    throw e;
  }

  /** Completes the operation if possible without blocking; true when complete. */
  test(): boolean {
    if (this.#done) {
      if (this.#error) throw this.#error;
      return true;
    }
    let ok: boolean;
    try {
      ok = mpi.test(this.#id);
    } catch (e) {
      this.#fail(e);
    }
    if (!ok) return false;
    this.#complete();
    if (this.#error) throw this.#error;
    return true;
  }

  /** Blocks until the operation completes; returns the received value (receives) or undefined. */
  wait(): T {
    if (!this.#done) {
      try {
        mpi.wait(this.#id);
      } catch (e) {
        this.#fail(e);
      }
      this.#complete();
    }
    if (this.#error) throw this.#error;
    return this.#value as T;
  }

  /** Awaiting a request resolves with what wait() returns, without blocking the event loop. */
  then<R1 = T, R2 = never>(onfulfilled?: ((value: T) => R1 | PromiseLike<R1>) | null, onrejected?: ((reason: unknown) => R2 | PromiseLike<R2>) | null): Promise<R1 | R2> {
    return this.#promise().then(onfulfilled, onrejected);
  }

  #p: Promise<T> | undefined;
  #promise(): Promise<T> {
    this.#p ??= new Promise<T>((resolve, reject) => {
      const attempt = (): void => {
        try {
          if (this.test()) {
            awaited.delete(this);
            resolve(this.#value as T);
            return;
          }
        } catch (e) {
          awaited.delete(this);
          reject(e);
          return;
        }
        settled.set(this.#id, attempt);
        mpi.awaitRequest(this.#id);
      };
      this.#reject = (e: Error) => {
        settled.delete(this.#id);
        awaited.delete(this);
        reject(this.#failWith(e));
      };
      this.#awaitStart = Date.now();
      awaited.add(this);
      watchAwaited();
      attempt();
    });
    return this.#p;
  }

  #reject: ((e: Error) => void) | undefined;
  #awaitStart = 0;

  /** @internal the health and timeout checks of awaited requests (watchAwaited). */
  static _check(now: number, bad: [string, string, number] | null, limit: number): void {
    for (const r of [...awaited]) {
      if (bad) r.#reject?.(makeNativeError(bad[0], `awaited request: ${bad[1]}`, bad[2]));
      else if (limit > 0 && now - r.#awaitStart > limit)
        r.#reject?.(new MPIError('ERR_TIMEOUT', `awaited request timed out after ${now - r.#awaitStart} ms (${describeReq(r.#kind, r.#status, r.#buf)})`));
    }
  }

  #failWith(e: Error): Error {
    if (this.#kind === ReqKind.Coll) e = collFailure(this.#buf as CollInfo, e) as Error;
    this.#done = true;
    this.#error = e;
    mpi.free(this.#id);
    return e;
  }

  /** @internal the native id (0 when complete at creation). */
  get _id(): number {
    return this.#done ? 0 : this.#id;
  }

  /** Waits for every request; returns their values in order (MPI_Waitall). */
  static waitall<T>(requests: readonly Request<T>[]): T[] {
    if (!Array.isArray(requests)) throw new TypeError(`Request.waitall: requests must be an array of Request, got ${typeof requests}`);
    return requests.map((r) => r.wait());
  }

  /** True when every request is complete (MPI_Testall); completes those that can be. */
  static testall(requests: readonly Request[]): boolean {
    let all = true;
    for (const r of requests) if (!r.test()) all = false;
    return all;
  }

  /** Waits until one request completes; returns its index (MPI_Waitany), or -1 for an empty list. */
  static waitany(requests: readonly Request[]): number {
    if (requests.length === 0) return -1;
    for (let i = 0; i < requests.length; i++) if (requests[i].#done) return i;
    const ids = new Uint32Array(requests.map((r) => r.#id));
    const i = mpi.waitAny(ids);
    if (i >= 0) requests[i].test();
    return i;
  }

  /** Awaits every request (Promise.all over the thenables). */
  static all<T>(requests: readonly Request<T>[]): Promise<T[]> {
    return Promise.all(requests);
  }
}
