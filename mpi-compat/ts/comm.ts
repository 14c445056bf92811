/**
 * Communicators (MPI_Comm): point-to-point and collective communication within a group of ranks.
 *
 * As in mpi4py, lower-case methods move any serializable value (`send`, `bcast`, ...) and
 * upper-case methods move typed arrays in place (`Send`, `Bcast`, ...). Blocking methods block
 * the JavaScript thread like MPI (the data plane spins a few microseconds, then sleeps);
 * non-blocking ones return a {@link Request}.
 *
 * This file holds the public class and point-to-point; the collectives are in coll-obj.ts and
 * coll-buf.ts, context agreement in context.ts, and what they share (members, contexts, checks)
 * in core.ts.
 */
import * as CB from './coll-buf.js';
import * as CO from './coll-obj.js';
import * as NB from './coll-nb.js';
import { agreeCtx, SELF_CTX, WORLD_CTX } from './context.js';
import { ANY_SOURCE, ANY_TAG, CommCore, PROC_NULL, runtime, TAG_UB, UNDEFINED } from './core.js';
import { MPIError, rangeError, typeError } from './errors.js';
import { ctorOf, OBJECT_TYPE, refusedError, requireTypedArray, typeIdOf, type TypedArray } from './datatype.js';
import { mpi, status as st } from './native.js';
import { Op, SUM } from './op.js';
import { Request, ReqKind } from './request.js';
import { encode, encodeTemp } from './serialization.js';
import { Status } from './status.js';
import { hintOverwrite, isLazy, lazyInUse } from '../../runtime/share.js';
import { Group } from './group.js';
import type { Cartcomm, CartOptions, DistGraphcomm, DistGraphOptions, Graphcomm } from './topo.js';

export { ANY_SOURCE, ANY_TAG, PROC_NULL, TAG_UB, UNDEFINED, runtime };
export { IN_PLACE } from './coll-buf.js';

type SendBuf = CB.SendBuf;
type AnyOp<T = any> = Op | ((a: T, b: T) => T);

/**
 * A value sent as an object that is a plain typed array (exactly one of the built-in
 * constructors; not a Buffer or a subclass) travels as a buffer message: no serialization, and
 * recv() gives back a typed array of the same type holding the view's elements.
 */
function plainTypedArrayId(v: unknown): number {
  if (v === null || typeof v !== 'object' || !ArrayBuffer.isView(v)) return -1;
  const id = typeIdOf(v);
  return id > 0 && v.constructor === ctorOf(id) ? id : -1;
}

/** A group of ranks that communicate; COMM_WORLD holds every rank of the job. */
export class Comm {
  /** This process's rank in the communicator, 0..size-1. */
  readonly rank: number;
  /** Number of ranks in the communicator. */
  readonly size: number;
  readonly #core: CommCore;

  /** @internal use MPI.init(), comm.dup() or comm.split(). */
  constructor(ranks: Int32Array | null, rank: number, ctx: number, name: string) {
    this.#core = new CommCore(ranks, rank, ctx, name);
    this.rank = rank;
    this.size = this.#core.size;
  }

  /** @internal the core of a communicator, for the modules that extend Comm (topo.ts, win.ts). */
  static _core(c: Comm): CommCore {
    return c.#core;
  }

  /** The communicator's name, for messages ("COMM_WORLD", "COMM_WORLD.split(1)"). */
  get name(): string {
    return this.#core.name;
  }

  /** After a typed receive: its status, or the error of a refused message (in this comm's ranks). */
  #received(where: string, buf: TypedArray, status: Status | undefined): Status {
    if (st[4] !== 0) throw refusedError(where, st[4], this.#core.toLocal(st[0]), st[1], st[2], st[3], buf);
    return this.#core.status(status);
  }

  // --------------------------------------------------------------------------------------------
  // Point-to-point, objects

  /** Sends any serializable value to `dest` (blocking; returns once the value is buffered or received). */
  send(value: unknown, dest: number, tag = 0): void {
    this.#core.live('comm.send');
    const d = this.#core.dest('comm.send', 'dest', dest), t = this.#core.tag('comm.send', tag, false);
    if (d === PROC_NULL) return;
    const id = plainTypedArrayId(value);
    if (id > 0) mpi.send(value as TypedArray, id, d, this.#core.ctx, t, 0);
    else mpi.send(encodeTemp(value, 'comm.send'), OBJECT_TYPE, d, this.#core.ctx, t, 0);
  }

  /** Synchronous send: returns only once the receiver has matched the message (MPI_Ssend). */
  ssend(value: unknown, dest: number, tag = 0): void {
    this.#core.live('comm.ssend');
    const d = this.#core.dest('comm.ssend', 'dest', dest), t = this.#core.tag('comm.ssend', tag, false);
    if (d === PROC_NULL) return;
    const id = plainTypedArrayId(value);
    if (id > 0) mpi.send(value as TypedArray, id, d, this.#core.ctx, t, 1);
    else mpi.send(encodeTemp(value, 'comm.ssend'), OBJECT_TYPE, d, this.#core.ctx, t, 1);
  }

  /** Receives a value (blocking). A buffer message arrives as a typed array of the sent type. */
  recv<T = any>(source: number = ANY_SOURCE, tag: number = ANY_TAG, status?: Status): T {
    this.#core.live('comm.recv');
    const s = this.#core.source('comm.recv', source), t = this.#core.tag('comm.recv', tag, true);
    const bytes = mpi.recvObject(s, this.#core.ctx, t);
    if (status) this.#core.status(status);
    return this.#core.decode(bytes) as T;
  }

  /** Starts a send of a value; the request completes when the value may be reused. */
  isend(value: unknown, dest: number, tag = 0): Request<void> {
    this.#core.live('comm.isend');
    const d = this.#core.dest('comm.isend', 'dest', dest), t = this.#core.tag('comm.isend', tag, false);
    if (d === PROC_NULL) return Request._completed(undefined);
    // The value may change as soon as isend returns: typed arrays are copied (one memcpy).
    const id = plainTypedArrayId(value);
    const bytes = id > 0 ? (value as TypedArray).slice() : encode(value, 'comm.isend');
    return new Request<void>(mpi.isend(bytes, id > 0 ? id : OBJECT_TYPE, d, this.#core.ctx, t, 0), ReqKind.Send, this.#core.toLocal, bytes);
  }

  /** Starts a receive of a value; `await req` or `req.wait()` gives the value. */
  irecv<T = any>(source: number = ANY_SOURCE, tag: number = ANY_TAG): Request<T> {
    this.#core.live('comm.irecv');
    const s = this.#core.source('comm.irecv', source), t = this.#core.tag('comm.irecv', tag, true);
    return new Request<T>(mpi.irecv(null, -1, s, this.#core.ctx, t), ReqKind.RecvObject, this.#core.toLocal);
  }

  /** Waits for a matching message without receiving it; its status (source, tag, count). */
  probe(source: number = ANY_SOURCE, tag: number = ANY_TAG, status?: Status): Status {
    this.#core.live('comm.probe');
    const s = this.#core.source('comm.probe', source), t = this.#core.tag('comm.probe', tag, true);
    mpi.probe(s, this.#core.ctx, t);
    return this.#core.status(status);
  }

  /** Checks for a matching message without blocking: its status, or null when there is none. */
  iprobe(source: number = ANY_SOURCE, tag: number = ANY_TAG, status?: Status): Status | null {
    this.#core.live('comm.iprobe');
    const s = this.#core.source('comm.iprobe', source), t = this.#core.tag('comm.iprobe', tag, true);
    return mpi.iprobe(s, this.#core.ctx, t) ? this.#core.status(status) : null;
  }

  /** Sends a value and receives one (deadlock-free exchange). */
  sendrecv<T = any>(value: unknown, dest: number, sendtag = 0, source: number = ANY_SOURCE, recvtag: number = ANY_TAG, status?: Status): T {
    const c = this.#core;
    c.live('comm.sendrecv');
    const d = c.dest('comm.sendrecv', 'dest', dest), t = c.tag('comm.sendrecv', sendtag, false);
    const s = c.source('comm.sendrecv', source), rt = c.tag('comm.sendrecv', recvtag, true);
    const id = plainTypedArrayId(value);
    const bytes = d === PROC_NULL ? null : id > 0 ? (value as TypedArray) : encodeTemp(value, 'comm.sendrecv');
    const got = mpi.sendrecvObject(bytes, id > 0 ? id : OBJECT_TYPE, d, t, s, rt, c.ctx);
    if (status) c.status(status);
    return c.decode(got) as T;
  }

  // --------------------------------------------------------------------------------------------
  // Point-to-point, typed arrays

  /** Sends the elements of a typed array (blocking; large arrays go without intermediate copies). */
  Send(buf: TypedArray, dest: number, tag = 0): void {
    // Fast path for compute loops: one combined check, then the native call.
    const id = typeIdOf(buf);
    if (id > 0 && dest >= 0 && dest < this.size && (dest | 0) === dest && tag >= 0 && tag <= TAG_UB && (tag | 0) === tag && !this.#core.freed && !runtime.finalized) {
      mpi.send(buf, id, this.#core.ranks ? this.#core.ranks[dest] : dest, this.#core.ctx, tag, 0);
      return;
    }
    this.#core.live('comm.Send');
    requireTypedArray('comm.Send', 'buf', buf);
    const d = this.#core.dest('comm.Send', 'dest', dest), t = this.#core.tag('comm.Send', tag, false);
    if (d === PROC_NULL) return;
    mpi.send(buf, typeIdOf(buf), d, this.#core.ctx, t, 0);
  }

  /** Synchronous typed-array send (MPI_Ssend). */
  Ssend(buf: TypedArray, dest: number, tag = 0): void {
    this.#core.live('comm.Ssend');
    requireTypedArray('comm.Ssend', 'buf', buf);
    const d = this.#core.dest('comm.Ssend', 'dest', dest), t = this.#core.tag('comm.Ssend', tag, false);
    if (d === PROC_NULL) return;
    mpi.send(buf, typeIdOf(buf), d, this.#core.ctx, t, 1);
  }

  /** Receives into `buf` (same element type as sent; at least as long). Returns the status. */
  Recv(buf: TypedArray, source: number = ANY_SOURCE, tag: number = ANY_TAG, status?: Status): Status {
    if (lazyInUse && isLazy(buf)) {
      // Into a lazy region: learn the size first, so the pages it overwrites whole are not fetched.
      const st = this.Probe(source, tag);
      hintOverwrite(buf, st.bytes);
      source = st.source;
      tag = st.tag;
    }
    const id = typeIdOf(buf);
    if (id > 0 && source >= 0 && source < this.size && (source | 0) === source && tag >= -1 && tag <= TAG_UB && (tag | 0) === tag && !this.#core.freed && !runtime.finalized) {
      mpi.recv(buf, id, this.#core.ranks ? this.#core.ranks[source] : source, this.#core.ctx, tag);
      return this.#received('recv', buf, status);
    }
    this.#core.live('comm.Recv');
    requireTypedArray('comm.Recv', 'buf', buf);
    const s = this.#core.source('comm.Recv', source), t = this.#core.tag('comm.Recv', tag, true);
    mpi.recv(buf, typeIdOf(buf), s, this.#core.ctx, t);
    return this.#received('recv', buf, status);
  }

  /** Starts a typed-array send; do not modify `buf` until the request completes. */
  Isend(buf: TypedArray, dest: number, tag = 0): Request<void> {
    this.#core.live('comm.Isend');
    requireTypedArray('comm.Isend', 'buf', buf);
    const d = this.#core.dest('comm.Isend', 'dest', dest), t = this.#core.tag('comm.Isend', tag, false);
    if (d === PROC_NULL) return Request._completed(undefined);
    return new Request<void>(mpi.isend(buf, typeIdOf(buf), d, this.#core.ctx, t, 0), ReqKind.Send, this.#core.toLocal, buf);
  }

  /** Starts a receive into `buf`; the request yields `buf` and its status tells the count. */
  Irecv<B extends TypedArray>(buf: B, source: number = ANY_SOURCE, tag: number = ANY_TAG): Request<B> {
    this.#core.live('comm.Irecv');
    requireTypedArray('comm.Irecv', 'buf', buf);
    const s = this.#core.source('comm.Irecv', source), t = this.#core.tag('comm.Irecv', tag, true);
    return new Request<B>(mpi.irecv(buf, typeIdOf(buf), s, this.#core.ctx, t), ReqKind.RecvBuffer, this.#core.toLocal, buf);
  }

  /** Sends `sendbuf` to `dest` and receives into `recvbuf` from `source` (deadlock-free). */
  Sendrecv(sendbuf: TypedArray, dest: number, sendtag: number, recvbuf: TypedArray, source: number = ANY_SOURCE, recvtag: number = ANY_TAG, status?: Status): Status {
    this.#core.live('comm.Sendrecv');
    requireTypedArray('comm.Sendrecv', 'sendbuf', sendbuf);
    requireTypedArray('comm.Sendrecv', 'recvbuf', recvbuf);
    const d = this.#core.dest('comm.Sendrecv', 'dest', dest), t = this.#core.tag('comm.Sendrecv', sendtag, false);
    const s = this.#core.source('comm.Sendrecv', source), rt = this.#core.tag('comm.Sendrecv', recvtag, true);
    const sreq = d === PROC_NULL ? 0 : mpi.isend(sendbuf, typeIdOf(sendbuf), d, this.#core.ctx, t, 0);
    try {
      mpi.recv(recvbuf, typeIdOf(recvbuf), s, this.#core.ctx, rt);
      const out = this.#received('recv', recvbuf, status);
      if (sreq) mpi.wait(sreq);
      return out;
    } finally {
      if (sreq) mpi.free(sreq);
    }
  }

  /** Probe aliases in mpi4py's buffer spelling. */
  Probe(source: number = ANY_SOURCE, tag: number = ANY_TAG, status?: Status): Status {
    return this.probe(source, tag, status);
  }
  /** Non-blocking probe, buffer spelling. */
  Iprobe(source: number = ANY_SOURCE, tag: number = ANY_TAG, status?: Status): Status | null {
    return this.iprobe(source, tag, status);
  }

  // --------------------------------------------------------------------------------------------
  // Collectives, objects (coll-obj.ts)

  /** Blocks until every member has called barrier (MPI_Barrier). */
  barrier(): void {
    this.#core.live('comm.barrier');
    this.#core.label('barrier');
    mpi.barrier(...this.#core.g());
  }

  /** Alias of barrier, buffer spelling. */
  Barrier(): void {
    this.barrier();
  }

  /** Broadcasts `value` from `root`; every member returns the root's value. */
  bcast<T = any>(value: T, root = 0): T {
    this.#core.live('comm.bcast');
    return CO.bcast(this.#core, value, this.#core.root('comm.bcast', root));
  }

  /** Reduces every member's value with `op` in rank order; the result at `root`, undefined elsewhere. */
  reduce<T = any>(value: T, op: AnyOp<T> = SUM, root = 0): T | undefined {
    this.#core.live('comm.reduce');
    return CO.reduce(this.#core, value, this.#core.op('comm.reduce', op), this.#core.root('comm.reduce', root));
  }

  /** Reduces every member's value with `op`; every member gets the result. */
  allreduce<T = any>(value: T, op: AnyOp<T> = SUM): T {
    this.#core.live('comm.allreduce');
    return CO.allreduce(this.#core, value, this.#core.op('comm.allreduce', op));
  }

  /** Inclusive prefix reduction: member i gets v0 op ... op vi. */
  scan<T = any>(value: T, op: AnyOp<T> = SUM): T {
    this.#core.live('comm.scan');
    return CO.scan(this.#core, value, this.#core.op('comm.scan', op), false) as T;
  }

  /** Exclusive prefix reduction: member i gets v0 op ... op v(i-1); rank 0 gets undefined. */
  exscan<T = any>(value: T, op: AnyOp<T> = SUM): T | undefined {
    this.#core.live('comm.exscan');
    return CO.scan(this.#core, value, this.#core.op('comm.exscan', op), true);
  }

  /** Gathers every member's value at `root` (an array in rank order); undefined elsewhere. */
  gather<T = any>(value: T, root = 0): T[] | undefined {
    this.#core.live('comm.gather');
    return CO.gather(this.#core, value, this.#core.root('comm.gather', root));
  }

  /** Scatters `values[i]` from `root` to member i (values matter only at the root). */
  scatter<T = any>(values: readonly T[] | undefined, root = 0): T {
    this.#core.live('comm.scatter');
    return CO.scatter(this.#core, values, this.#core.root('comm.scatter', root));
  }

  /** Every member gets every member's value, in rank order. */
  allgather<T = any>(value: T): T[] {
    this.#core.live('comm.allgather');
    return CO.allgather(this.#core, value);
  }

  /** Member i sends values[j] to member j; returns what each member sent to this one. */
  alltoall<T = any>(values: readonly T[]): T[] {
    this.#core.live('comm.alltoall');
    return CO.alltoall(this.#core, values);
  }

  /** values[i] of every member is reduced with `op`; member i gets that result. */
  reduceScatter<T = any>(values: readonly T[], op: AnyOp<T> = SUM): T {
    this.#core.live('comm.reduceScatter');
    return CO.reduceScatter(this.#core, values, this.#core.op('comm.reduceScatter', op));
  }

  /** Objects have variable size already: gatherv is gather. */
  gatherv<T = any>(value: T, root = 0): T[] | undefined { return this.gather(value, root); }
  /** Objects have variable size already: scatterv is scatter. */
  scatterv<T = any>(values: readonly T[] | undefined, root = 0): T { return this.scatter(values, root); }
  /** Objects have variable size already: allgatherv is allgather. */
  allgatherv<T = any>(value: T): T[] { return this.allgather(value); }
  /** Objects have variable size already: alltoallv is alltoall. */
  alltoallv<T = any>(values: readonly T[]): T[] { return this.alltoall(values); }

  // --------------------------------------------------------------------------------------------
  // Collectives, typed arrays (coll-buf.ts)

  /** Broadcasts the root's `buf` into every member's `buf` (same type and length everywhere). */
  Bcast(buf: TypedArray, root = 0): void { CB.Bcast(this.#core, buf, root); }

  /** Element-wise reduction of every member's `sendbuf` into the root's `recvbuf`. */
  Reduce(sendbuf: SendBuf, recvbuf: TypedArray | null, op: AnyOp = SUM, root = 0): void { CB.Reduce(this.#core, sendbuf, recvbuf, op, root); }

  /** Element-wise reduction into every member's `recvbuf`. */
  Allreduce(sendbuf: SendBuf, recvbuf: TypedArray, op: AnyOp = SUM): void { CB.Allreduce(this.#core, sendbuf, recvbuf, op); }

  /** Element-wise inclusive prefix reduction. */
  Scan(sendbuf: SendBuf, recvbuf: TypedArray, op: AnyOp = SUM): void { CB.Scan(this.#core, sendbuf, recvbuf, op); }

  /** Element-wise exclusive prefix reduction (rank 0's recvbuf is left untouched). */
  Exscan(sendbuf: SendBuf, recvbuf: TypedArray, op: AnyOp = SUM): void { CB.Exscan(this.#core, sendbuf, recvbuf, op); }

  /** Gathers equal-sized blocks: the root's recvbuf gets size * sendbuf.length elements. */
  Gather(sendbuf: SendBuf, recvbuf: TypedArray | null, root = 0): void { CB.Gather(this.#core, sendbuf, recvbuf, root); }

  /** Gathers blocks of counts[i] elements (at displs[i], default packed) into the root's recvbuf. */
  Gatherv(sendbuf: SendBuf, recvbuf: TypedArray | null, counts: ArrayLike<number> | null, root = 0, displs?: ArrayLike<number>): void {
    CB.Gatherv(this.#core, sendbuf, recvbuf, counts, root, displs);
  }

  /** Scatters equal blocks of the root's sendbuf: member i gets recvbuf.length elements. */
  Scatter(sendbuf: TypedArray | null, recvbuf: TypedArray | typeof CB.IN_PLACE, root = 0): void { CB.Scatter(this.#core, sendbuf, recvbuf, root); }

  /** Scatters blocks of counts[i] elements (at displs[i], default packed) of the root's sendbuf. */
  Scatterv(sendbuf: TypedArray | null, counts: ArrayLike<number> | null, recvbuf: TypedArray | typeof CB.IN_PLACE, root = 0, displs?: ArrayLike<number>): void {
    CB.Scatterv(this.#core, sendbuf, counts, recvbuf, root, displs);
  }

  /** Every member gets every member's block: recvbuf holds size * sendbuf.length elements. */
  Allgather(sendbuf: SendBuf, recvbuf: TypedArray): void { CB.Allgather(this.#core, sendbuf, recvbuf); }

  /** Every member gets blocks of counts[i] elements (at displs[i], default packed). */
  Allgatherv(sendbuf: SendBuf, recvbuf: TypedArray, counts: ArrayLike<number>, displs?: ArrayLike<number>): void {
    CB.Allgatherv(this.#core, sendbuf, recvbuf, counts, displs);
  }

  /** Member i's block j (sendbuf.length / size elements) goes to member j's block i. */
  Alltoall(sendbuf: TypedArray, recvbuf: TypedArray): void { CB.Alltoall(this.#core, sendbuf, recvbuf); }

  /** All-to-all with per-member counts and displacements (elements). */
  Alltoallv(sendbuf: TypedArray, sendcounts: ArrayLike<number>, recvbuf: TypedArray, recvcounts: ArrayLike<number>, sdispls?: ArrayLike<number>, rdispls?: ArrayLike<number>): void {
    CB.Alltoallv(this.#core, sendbuf, sendcounts, recvbuf, recvcounts, sdispls, rdispls);
  }

  /** Element-wise reduction of sendbuf, then block i (counts[i] elements) goes to member i. */
  ReduceScatter(sendbuf: SendBuf, recvbuf: TypedArray, counts: ArrayLike<number>, op: AnyOp = SUM): void {
    CB.ReduceScatter(this.#core, sendbuf, recvbuf, counts, op);
  }

  /** mpi4py's spelling of ReduceScatter. */
  Reduce_scatter(sendbuf: SendBuf, recvbuf: TypedArray, counts: ArrayLike<number>, op: AnyOp = SUM): void {
    this.ReduceScatter(sendbuf, recvbuf, counts, op);
  }

  // --------------------------------------------------------------------------------------------
  // Communicator management

  /** A new communicator with the same members and its own message space (collective). */
  dup(): Comm {
    const c = this.#core;
    c.live('comm.dup');
    c.label('dup');
    const ctx = agreeCtx(c);
    return new Comm(c.ranks ? c.ranks.slice() : null, c.rank, ctx, `${c.name}.dup()`);
  }

  /**
   * Splits into one communicator per `color`, members ordered by (`key`, old rank) (collective).
   * Members that pass UNDEFINED get null.
   */
  split(color: number, key = 0): Comm | null {
    const c = this.#core;
    c.live('comm.split');
    if (typeof color !== 'number' || !Number.isInteger(color)) throw typeError('comm.split', 'color must be an integer (or MPI.UNDEFINED)', color);
    if (color < 0 && color !== UNDEFINED) throw rangeError('comm.split', `color ${color} must be non-negative (or MPI.UNDEFINED)`);
    if (typeof key !== 'number' || !Number.isInteger(key)) throw typeError('comm.split', 'key must be an integer', key);
    c.label('split');
    const mine = new Int32Array([color, key]);
    const all = new Int32Array(2 * c.size);
    const lens = new Float64Array(c.size).fill(8);
    mpi.gatherv(...c.g(), mine, all, lens, CO.displs(lens), 0, true);
    const ctx = agreeCtx(c);
    if (color === UNDEFINED) return null;
    const members: { old: number; key: number }[] = [];
    for (let i = 0; i < c.size; i++) if (all[2 * i] === color) members.push({ old: i, key: all[2 * i + 1] });
    members.sort((a, b) => a.key - b.key || a.old - b.old);
    const ranks = new Int32Array(members.map((m) => c.world(m.old)));
    const rank = members.findIndex((m) => m.old === c.rank);
    return new Comm(ranks, rank, ctx, `${c.name}.split(${color})`);
  }

  /** Marks the communicator freed; later calls on it throw ERR_COMM. COMM_WORLD cannot be freed. */
  free(): void {
    const c = this.#core;
    if (c.ctx === WORLD_CTX || c.ctx === SELF_CTX) throw new MPIError('ERR_COMM', `comm.free: ${c.name} cannot be freed`);
    c.freed = true;
  }

  /** The world rank of each member, in rank order (MPI_Group_translate_ranks against WORLD). */
  worldRanks(): number[] {
    const c = this.#core;
    return c.ranks ? Array.from(c.ranks) : Array.from({ length: c.size }, (_, i) => i);
  }

  // --------------------------------------------------------------------------------------------
  // Non-blocking collectives (coll-nb.ts): every member starts them in the same order

  /** Starts a barrier (MPI_Ibarrier); the request completes once every member has started it. */
  Ibarrier(): Request<void> { return NB.Ibarrier(this.#core); }

  /** Object spelling of Ibarrier. */
  ibarrier(): Request<void> { return NB.Ibarrier(this.#core, 'comm.ibarrier'); }

  /** Starts a broadcast of the root's `buf` into every member's `buf`; the request yields buf. */
  Ibcast<B extends TypedArray>(buf: B, root = 0): Request<B> { return NB.Ibcast(this.#core, buf, root); }

  /** Starts an element-wise reduction into the root's `recvbuf` (`null` elsewhere). */
  Ireduce<B extends TypedArray>(sendbuf: SendBuf, recvbuf: B | null, op: AnyOp = SUM, root = 0): Request<B | null> { return NB.Ireduce(this.#core, sendbuf, recvbuf, op, root); }

  /** Starts an element-wise reduction into every member's `recvbuf`. */
  Iallreduce<B extends TypedArray>(sendbuf: SendBuf, recvbuf: B, op: AnyOp = SUM): Request<B> { return NB.Iallreduce(this.#core, sendbuf, recvbuf, op); }

  /** Starts a gather of equal blocks into the root's `recvbuf`. */
  Igather<B extends TypedArray>(sendbuf: SendBuf, recvbuf: B | null, root = 0): Request<B | null> { return NB.Igather(this.#core, sendbuf, recvbuf, root); }

  /** Starts a scatter of equal blocks of the root's `sendbuf`. */
  Iscatter<B extends TypedArray>(sendbuf: TypedArray | null, recvbuf: B | typeof CB.IN_PLACE, root = 0): Request<B | undefined> { return NB.Iscatter(this.#core, sendbuf, recvbuf, root); }

  /** Starts an allgather: every member gets every member's block. */
  Iallgather<B extends TypedArray>(sendbuf: SendBuf, recvbuf: B): Request<B> { return NB.Iallgather(this.#core, sendbuf, recvbuf); }

  /** Starts an all-to-all: member i's block j goes to member j's block i. */
  Ialltoall<B extends TypedArray>(sendbuf: TypedArray, recvbuf: B): Request<B> { return NB.Ialltoall(this.#core, sendbuf, recvbuf); }

  // --------------------------------------------------------------------------------------------
  // Groups (group.ts) and topologies (topo.ts)

  /** The group of this communicator's members, in rank order (MPI_Comm_group). */
  get group(): Group {
    this.#core.live('comm.group');
    return new Group(this.worldRanks());
  }

  /**
   * A communicator of `group`'s members, ranked as in the group (MPI_Comm_create, collective
   * over this communicator: every member passes the same group); null for the others.
   */
  create(group: Group): Comm | null {
    const c = this.#core, where = 'comm.create';
    c.live(where);
    const members = this.#subset(where, group);
    c.label('create');
    const ctx = agreeCtx(c);
    const rank = members.indexOf(runtime.worldRank);
    return rank < 0 ? null : new Comm(Int32Array.from(members), rank, ctx, `${c.name}.create()`);
  }

  /**
   * A communicator of `group`'s members, collective over the group only (MPI_Comm_create_group):
   * only members call it; `tag` tells apart concurrent calls of overlapping groups.
   */
  createGroup(group: Group, tag = 0): Comm {
    const c = this.#core, where = 'comm.createGroup';
    c.live(where);
    const members = this.#subset(where, group);
    const t = c.tag(where, tag, false);
    const rank = members.indexOf(runtime.worldRank);
    if (rank < 0) throw rangeError(where, `this process (world rank ${runtime.worldRank}) is not in the group: only the group's members call createGroup`);
    c.label('createGroup');
    // The members agree on a context among themselves, on a context of the parent's reserved
    // for this, with the tag folded in.
    const agree = new CommCore(Int32Array.from(members), rank, (0x10000000 | ((c.ctx & 0xfff) << 16) | (t & 0xfffe)) >>> 0, where);
    const ctx = agreeCtx(agree);
    return new Comm(Int32Array.from(members), rank, ctx, `${c.name}.createGroup(${t})`);
  }

  #subset(where: string, group: Group): number[] {
    const members = Group._check(where, 'group', group)._world;
    const mine = new Set(this.worldRanks());
    members.forEach((w, i) => {
      if (!mine.has(w)) throw rangeError(where, `group member ${i} (world rank ${w}) is not a member of ${this.#core.name}`);
    });
    return [...members];
  }

  /**
   * A Cartesian grid over the first prod(dims) ranks (MPI_Cart_create, collective); null for
   * the ranks beyond it. `options.periods`: wrap-around per dimension (or one for all).
   */
  createCart(dims: readonly number[], options: CartOptions = {}): Cartcomm | null {
    return topoHooks().createCart(this, this.#core, dims, options);
  }

  /** A graph over the first index.length ranks (MPI_Graph_create, collective); null beyond it. */
  createGraph(index: readonly number[], edges: readonly number[]): Graphcomm | null {
    return topoHooks().createGraph(this, this.#core, index, edges);
  }

  /** A distributed graph: each rank names its own sources and destinations (MPI_Dist_graph_create_adjacent, collective). */
  createDistGraphAdjacent(sources: readonly number[], destinations: readonly number[], options: DistGraphOptions = {}): DistGraphcomm {
    return topoHooks().createDistGraphAdjacent(this, this.#core, sources, destinations, options);
  }

  /** Aborts the whole job with `code` (MPI_Abort on any communicator aborts every rank here). */
  abort(code = 1): never {
    return abortHook(code);
  }
}

/** @internal the topology constructors (topo.ts, whose classes extend Comm, installs them). */
export interface TopoHooks {
  createCart(comm: Comm, c: CommCore, dims: readonly number[], options: CartOptions): Cartcomm | null;
  createGraph(comm: Comm, c: CommCore, index: readonly number[], edges: readonly number[]): Graphcomm | null;
  createDistGraphAdjacent(comm: Comm, c: CommCore, sources: readonly number[], destinations: readonly number[], options: DistGraphOptions): DistGraphcomm;
}
let topo: TopoHooks | null = null;
function topoHooks(): TopoHooks {
  if (!topo) throw new Error('sfmpi: topologies are not loaded (import from sfmpi/mpi, whose index loads topo.ts)');
  return topo;
}
/** @internal */
export function setTopoHooks(h: TopoHooks): void {
  topo = h;
}

let abortHook: (code: number) => never = () => {
  throw new Error('MPI.abort before MPI.init');
};

/** @internal installs MPI.abort's implementation (index.ts). */
export function setAbortHook(fn: (code: number) => never): void {
  abortHook = fn;
}

/** @internal the world and self communicators, made by MPI.init. */
export function makeWorld(rank: number, size: number): { world: Comm; self: Comm } {
  runtime.worldRank = rank;
  runtime.worldSize = size;
  const world = new Comm(null, rank, WORLD_CTX, 'COMM_WORLD');
  const self = new Comm(new Int32Array([rank]), 0, SELF_CTX, 'COMM_SELF');
  return { world, self };
}
