/**
 * The one error catalogue of the TypeScript MPI layer.
 *
 * Every failure that MPI itself would report (a dead peer, a timeout, a truncated receive, a
 * type mismatch, an abort) is an {@link MPIError} with a stable string `code` and the numeric
 * MPI error class (`errorClass`, MPICH's numbering). Argument errors found at the boundary are
 * plain `TypeError`/`RangeError`, as in Node's own APIs, because they are the caller's bug and
 * never depend on what another rank did.
 *
 * Native code (native/addon/mpi.cc) does not build errors itself: it calls the factory that
 * `native.ts` hands it at load time, so errors thrown from C++ are the same class as those
 * thrown from TypeScript.
 */

/** Stable error codes, their MPI error class, and a one-line meaning. */
export const ERRORS = {
  ERR_BUFFER: { errorClass: 1, text: 'invalid buffer' },
  ERR_COUNT: { errorClass: 2, text: 'invalid count' },
  ERR_TYPE: { errorClass: 3, text: 'datatype mismatch' },
  ERR_TAG: { errorClass: 4, text: 'invalid tag' },
  ERR_COMM: { errorClass: 5, text: 'invalid communicator' },
  ERR_RANK: { errorClass: 6, text: 'invalid rank' },
  ERR_ROOT: { errorClass: 7, text: 'invalid root' },
  ERR_OP: { errorClass: 9, text: 'invalid reduction operation' },
  ERR_ARG: { errorClass: 12, text: 'invalid argument' },
  ERR_TRUNCATE: { errorClass: 14, text: 'message truncated' },
  ERR_OTHER: { errorClass: 15, text: 'other error' },
  ERR_INTERN: { errorClass: 16, text: 'internal error' },
  ERR_REQUEST: { errorClass: 19, text: 'invalid request' },
  ERR_NO_MEM: { errorClass: 34, text: 'out of memory' },
  ERR_NOT_INITIALIZED: { errorClass: 15, text: 'MPI.init() has not been called' },
  ERR_NOT_MAIN_THREAD: { errorClass: 15, text: 'MPI calls are only possible on the main thread' },
  ERR_FINALIZED: { errorClass: 15, text: 'MPI has been finalized' },
  ERR_SERIALIZE: { errorClass: 15, text: 'value cannot be serialized' },
  ERR_TIMEOUT: { errorClass: 15, text: 'timed out waiting for a peer' },
  /** MPICH's MPIX_ERR_PROC_FAILED: a peer rank died. */
  ERR_PROC_FAILED: { errorClass: 101, text: 'a peer rank failed' },
  /** Another rank called abort() or failed; the whole job is ending. */
  ERR_ABORTED: { errorClass: 15, text: 'the job was aborted' },
} as const;

/** A stable error code, e.g. `'ERR_TRUNCATE'`. */
export type MPIErrorCode = keyof typeof ERRORS;

/** Extra facts an error may carry, each naming what failed. */
export interface MPIErrorDetails {
  /** The rank (in COMM_WORLD) that failed, timed out or aborted, when one is known. */
  rank?: number;
  /** Every rank involved, e.g. the ranks that never reached a barrier. */
  ranks?: number[];
  /** The OS error (`errno`) behind the failure, when there is one. */
  errno?: number;
  /** The abort or exit code of the failed rank. */
  exitCode?: number;
}

/** An MPI failure: `code` is stable, `errorClass` is MPICH's MPI error class number. */
export class MPIError extends Error {
  /** The stable code, e.g. `'ERR_PROC_FAILED'`. */
  readonly code: MPIErrorCode;
  /** The MPI error class number (MPI_ERR_*), as MPICH numbers them. */
  readonly errorClass: number;
  /** The world rank that failed, timed out or aborted, when one is known. */
  readonly rank?: number;
  /** Every world rank involved, when several are. */
  readonly ranks?: number[];
  /** The OS error number, when the failure came from a system call. */
  readonly errno?: number;
  /** The failed rank's exit code, when known. */
  readonly exitCode?: number;

  constructor(code: MPIErrorCode, message: string, details: MPIErrorDetails = {}) {
    super(message);
    this.name = 'MPIError';
    this.code = code;
    this.errorClass = (ERRORS[code] ?? ERRORS.ERR_OTHER).errorClass;
    if (details.rank !== undefined) this.rank = details.rank;
    if (details.ranks !== undefined) this.ranks = details.ranks;
    if (details.errno !== undefined) this.errno = details.errno;
    if (details.exitCode !== undefined) this.exitCode = details.exitCode;
  }
}

/** Build an MPIError from native code; unknown codes become ERR_INTERN. */
export function makeNativeError(code: string, message: string, rank?: number, ranks?: number[], errno?: number): MPIError {
  const known = (code in ERRORS ? code : 'ERR_INTERN') as MPIErrorCode;
  const details: MPIErrorDetails = {};
  if (typeof rank === 'number' && rank >= 0) details.rank = rank;
  if (Array.isArray(ranks) && ranks.length > 0) details.ranks = ranks;
  if (typeof errno === 'number' && errno > 0) details.errno = errno;
  return new MPIError(known, message, details);
}

/** TypeError naming the argument: "comm.send: tag must be an integer, got 1.5". */
export function typeError(where: string, what: string, got: unknown): TypeError {
  return new TypeError(`${where}: ${what}, got ${describe(got)}`);
}

/** RangeError naming the value: "comm.send: dest 5 out of range for a communicator of size 4". */
export function rangeError(where: string, message: string): RangeError {
  return new RangeError(`${where}: ${message}`);
}

/** A short description of a value for error messages. */
export function describe(v: unknown): string {
  if (v === null) return 'null';
  if (v === undefined) return 'undefined';
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? v.slice(0, 40) + '…' : v);
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return `${typeof v} ${String(v)}`;
  if (typeof v === 'function') return 'a function';
  if (ArrayBuffer.isView(v)) return `a ${v.constructor.name}`;
  if (Array.isArray(v)) return 'an array';
  const name = (v as object).constructor?.name;
  return name && name !== 'Object' ? `a ${name}` : 'an object';
}
