/**
 * The data-plane binding (native/addon/mpi.cc, `sfnative.mpi`), typed. The public API keeps it
 * private: user code sees only `MPI`, `Comm`, `Request`, `Status` and `Op`.
 *
 * Conventions of the binding: ranks are world ranks; `ctx` is a data-plane context id; `dtype` is
 * a datatype wire id (datatype.ts; -1 = object receive). Results of receives, probes and waits go
 * to the shared `status` array [source, tag, nbytes, dtype, refused] instead of a fresh object per
 * call; `refused` (datatype.ts REFUSED) says why a receive refused its message.
 */
import { isMainThread } from 'node:worker_threads';
import { native as addon } from '../../native/addon.js';
import { makeNativeError } from './errors.js';
import type { TypedArray } from './datatype.js';
import { decode } from './serialization.js';

type Buf = ArrayBufferView | null;
/** What a receive of any type and size gives: an object message's bytes (a number: that many bytes in
 * `staging`), a typed message as a typed array of its type that owns its ArrayBuffer, null from PROC_NULL. */
export type Received = Buffer | number | TypedArray | null;
/** (ranks of the group in world numbering, or null for the world; my index; collective ctx) */
type G = [Int32Array | null, number, number];

export interface NativeMPI {
  setErrorFactory(fn: (code: string, message: string, rank: number, ranks?: number[]) => Error, isMainThread: boolean, onSettled: (id: number) => void): Float64Array;
  create(size: number, ringBytes: number, eagerLimit: number, waitTimeoutMs: number, spinUs: number, cma: number, hostOf?: Int32Array, host?: number): void;
  /** A host's first rank of a multi-host job: its part of the job from dom0 (blocks until dom0's go). */
  join(fd: number): { size: number; host: number; hostOf: Int32Array; links: Int32Array };
  /** This rank's link to `peer` on another host. */
  addLink(peer: number, fd: number): void;
  /** [host, localCount, ...world ranks of this host's ranks in local order]. */
  local(): Int32Array;
  setPid(rank: number, pid: number): void;
  attach(rank: number): void;
  destroy(): void;
  info(): [number, number] | null;
  pid(rank: number): number;
  markFinished(): void;
  markFailReported(rank: number): void;
  failReported(rank: number): boolean;
  abort(code: number, cause: string): void;
  aborted(): [number, number, string] | null;
  peerDeath(rank: number): string | null;
  health(): [string, string, number] | null;
  setLabel(label: string | null): void;
  wtime(): number;
  send(buf: Buf, dtype: number, dst: number, ctx: number, tag: number, sync: number): void;
  recv(buf: Buf, dtype: number, src: number, ctx: number, tag: number): void;
  /** A message of any type and size (the status's dtype says which kind). */
  recvObject(src: number, ctx: number, tag: number): Received;
  /** Where small received messages of blocking calls land. */
  setStaging(buffer: Buffer): void;
  iprobe(src: number, ctx: number, tag: number): boolean;
  /** Sends `buf` and receives a message of any size and type at once. */
  sendrecvObject(buf: Buf, dtype: number, dst: number, sendtag: number, src: number, recvtag: number, ctx: number): Received;
  probe(src: number, ctx: number, tag: number): boolean;
  isend(buf: Buf, dtype: number, dst: number, ctx: number, tag: number, sync: number): number;
  irecv(buf: Buf, dtype: number, src: number, ctx: number, tag: number): number;
  test(id: number): boolean;
  wait(id: number): void;
  waitAny(ids: Uint32Array): number;
  /** An object receive's message once complete (never in `staging`): an object message's Buffer,
   * or for a typed message (status dtype > 0) a typed array of its type (see Received); null for
   * PROC_NULL, undefined for none. */
  result(id: number): Exclude<Received, number> | undefined;
  free(id: number): void;
  /** Settle `id` from the event loop: onSettled(id) is called once it completes. */
  awaitRequest(id: number): void;
  barrier(...g: G): void;
  bcast(ranks: G[0], index: number, ctx: number, buf: Buf, root: number): void;
  reduce(ranks: G[0], index: number, ctx: number, sbuf: Buf, rbuf: Buf, op: number | ((a: any, b: any) => void), dtype: number, root: number, kind: number): void;
  gatherv(ranks: G[0], index: number, ctx: number, sbuf: Buf, rbuf: Buf, lens: Float64Array | null, displs: Float64Array | null, root: number, all: boolean): void;
  scatterv(ranks: G[0], index: number, ctx: number, sbuf: Buf, lens: Float64Array | null, displs: Float64Array | null, rbuf: Buf, root: number): void;
  alltoallv(ranks: G[0], index: number, ctx: number, sbuf: Buf, slens: Float64Array, sdispls: Float64Array, rbuf: Buf, rlens: Float64Array, rdispls: Float64Array): void;
  opValid(op: number, dtype: number): boolean;
  /** Broadcasts bytes of unknown size: the root passes them (and gets undefined), the others get a Buffer. */
  bcastObject(ranks: G[0], index: number, ctx: number, bytes: Buf, root: number): Buffer | number | undefined;
  /** Every member's bytes packed in rank order (a number: that many bytes in `staging`); member i's length in lens[i]. */
  allgatherObjects(ranks: G[0], index: number, ctx: number, bytes: Buf, lens: Float64Array): Buffer | number;
  ctlFork(fd: number, rank: number, pid: number, ms: number): number;
  ctlExit(fd: number, rank: number, code: number): number;
  ctlFail(fd: number, rank: number, code: number, signal: number, cause: string): number;
  /** Reports `rank`'s failure unless it was reported already (the job's claim-once flag); true when this call wrote it. */
  ctlFailOnce(fd: number, rank: number, code: number, signal: number, cause: string): boolean;
  /** The MPI error class of a data-plane error code ("ERR_TIMEOUT"). */
  errorClass(code: number): string;
  /** Origin: hands its clones (ranks, pids) to the native watcher, which reports them on ctlFd. */
  watchClones(ctlFd: number, ranks: Int32Array, pids: Int32Array): void;
  /** Origin past finalize: clones that end now are reaped at once. */
  watchFinished(): void;
  /** Origin: reaps every clone (kills what is left after graceMs, -1 waits); how many failed. */
  reapClones(graceMs: number, reportDead: boolean): number;
  readonly ANY_SOURCE: number;
  readonly ANY_TAG: number;
  readonly PROC_NULL: number;
  readonly TAG_MAX: number;
  readonly MAX_RANKS: number;
}

const mod = (addon as unknown as { mpi?: NativeMPI }).mpi;
if (!mod) {
  throw new Error('sfmpi: the native addon has no MPI binding (native/addon/mpi.cc is not built into build/Release/sfnative.node)');
}

/** The binding. */
export const mpi: NativeMPI = mod;

/** Small received messages of blocking calls land here (the binding returns their length). */
const staging: Buffer = Buffer.alloc(64 << 10);
mpi.setStaging(staging);

/** The bytes a blocking object receive returned: its Buffer, or (a length) a view of the staging buffer, valid until the next receive. */
export function received(got: Buffer | number): Buffer {
  return typeof got === 'number' ? staging.subarray(0, got) : got;
}

/** The value of a message a blocking call returned (see received): an object message decoded in
 * place; a typed message is its own value. */
export function decodeReceived(got: Exclude<Received, null>): unknown {
  return typeof got === 'number' ? decode(staging, got) : got instanceof Buffer ? decode(got) : got;
}

/** Awaited requests register here; the binding calls back with their id once they complete. */
export const settled = new Map<number, () => void>();

/** [source, tag, nbytes, dtype, refused] of the last receive, probe or wait. */
export const status: Float64Array = mpi.setErrorFactory(
  (code, message, rank, ranks) => makeNativeError(code, message, rank, ranks),
  isMainThread,
  (id) => {
    const fn = settled.get(id);
    settled.delete(id);
    fn?.();
  },
);

/** The data plane's sf_op numbering (sf_dataplane.h `sf_op`). */
export const SF_OP = { MAX: 0, MIN: 1, SUM: 2, PROD: 3, LAND: 4, BAND: 5, LOR: 6, BOR: 7, LXOR: 8, BXOR: 9 } as const;

/** The process-level helpers of the addon that MPI.init uses (stdio wiring). */
export const proc = addon;
