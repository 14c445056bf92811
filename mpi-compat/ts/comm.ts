/**
 * Communicators (MPI_Comm): point-to-point and collective communication within a group of ranks.
 *
 * As in mpi4py, lower-case methods move any serializable value (`send`, `bcast`, ...) and
 * upper-case methods move typed arrays in place (`Send`, `Bcast`, ...). Blocking methods block
 * the JavaScript thread like MPI (the data plane spins a few microseconds, then sleeps on a
 * futex); non-blocking ones return a {@link Request}.
 *
 * Context ids: each communicator owns two data-plane contexts, `ctx` for point-to-point and
 * `ctx + 1` for collectives, so that a collective never matches a user's ANY_TAG receive.
 * New communicators (dup, split) agree on their context with a MAX-allreduce of every member's
 * next free context, so disjoint sub-communicators cannot collide.
 */
import { MPIError, rangeError, typeError, describe } from './errors.js';
import { bytesOf, ctorOf, isTypedArray, OBJECT_TYPE, refusedError, requireTypedArray, TYPE_NAMES, typeIdOf, type TypedArray } from './datatype.js';
import { mpi, SF_OP, status as st } from './native.js';
import { Op, SUM } from './op.js';
import { Request, ReqKind } from './request.js';
import { decode, encode } from './serialization.js';
import { Status } from './status.js';

/** Receive from any source (MPI_ANY_SOURCE). */
export const ANY_SOURCE = -1;
/** Receive with any tag (MPI_ANY_TAG). */
export const ANY_TAG = -1;
/** The null process: sends to it and receives from it complete at once (MPI_PROC_NULL). */
export const PROC_NULL = -2;
/** split(): a color that gives no new communicator (MPI_UNDEFINED). */
export const UNDEFINED = -32766;
/** Largest user tag (MPI_TAG_UB). */
export const TAG_UB = 0x3fffffff;
/** Pass as the send buffer of a buffer collective to operate in place (MPI_IN_PLACE). */
export const IN_PLACE: unique symbol = Symbol('MPI.IN_PLACE');

type SendBuf = TypedArray | typeof IN_PLACE;

const WORLD_CTX = 16;
const SELF_CTX = 4;
let nextCtx = WORLD_CTX + 2;
let lastLabel = '';
/** Per op, per dtype: the data plane's sf_op (>= 0), or -1 to combine in JavaScript; opValid is asked once. */
const nativeOps = new WeakMap<Op, number[]>();
function nativeOp(o: Op, dtype: number): number {
  let byType = nativeOps.get(o);
  if (!byType) nativeOps.set(o, (byType = []));
  let v = byType[dtype];
  if (v === undefined) {
    const code = (SF_OP as Record<string, number>)[o.name];
    // uint8clamped saturates in JavaScript but wraps in C: reduce it in JavaScript.
    v = code !== undefined && o.name !== 'user' && dtype !== 3 && mpi.opValid(code, dtype) ? code : -1;
    byType[dtype] = v;
  }
  return v;
}

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

/** @internal module state shared with index.ts. */
export const runtime = { finalized: false, worldSize: 1, worldRank: 0 };

/** A group of ranks that communicate; COMM_WORLD holds every rank of the job. */
export class Comm {
  /** This process's rank in the communicator, 0..size-1. */
  readonly rank: number;
  /** Number of ranks in the communicator. */
  readonly size: number;
  readonly #ranks: Int32Array | null; // world rank of each member; null = the world itself
  readonly #ctx: number;
  readonly #cctx: number;
  readonly #toLocal: (w: number) => number;
  #freed = false;
  readonly #name: string;

  /** @internal use MPI.init(), comm.dup() or comm.split(). */
  constructor(ranks: Int32Array | null, rank: number, ctx: number, name: string) {
    this.#ranks = ranks;
    this.rank = rank;
    this.size = ranks ? ranks.length : runtime.worldSize;
    this.#ctx = ctx;
    this.#cctx = ctx + 1;
    this.#name = name;
    if (ranks === null) this.#toLocal = (w) => w;
    else {
      const map = new Map<number, number>();
      ranks.forEach((w, i) => map.set(w, i));
      this.#toLocal = (w) => (w < 0 ? w : map.get(w) ?? w);
    }
  }

  /** The communicator's name, for messages ("COMM_WORLD", "COMM_WORLD.split(1)"). */
  get name(): string {
    return this.#name;
  }

  // --------------------------------------------------------------------------------------------
  // Validation

  #live(where: string): void {
    if (runtime.finalized) throw new MPIError('ERR_FINALIZED', `${where}: MPI has been finalized`);
    if (this.#freed) throw new MPIError('ERR_COMM', `${where}: ${this.#name} has been freed`);
  }

  #world(local: number): number {
    return local < 0 ? local : this.#ranks ? this.#ranks[local] : local;
  }

  #dest(where: string, name: string, r: unknown): number {
    if (typeof r !== 'number' || !Number.isInteger(r)) throw typeError(where, `${name} must be an integer rank`, r);
    if (r === PROC_NULL) return r;
    if (r < 0 || r >= this.size) throw rangeError(where, `${name} ${r} out of range for a communicator of size ${this.size}`);
    return this.#world(r);
  }

  #source(where: string, r: unknown): number {
    if (r === ANY_SOURCE) return r;
    return this.#dest(where, 'source', r);
  }

  #tag(where: string, t: unknown, any: boolean): number {
    if (typeof t !== 'number' || !Number.isInteger(t)) throw typeError(where, 'tag must be an integer', t);
    if (any && t === ANY_TAG) return t;
    if (t < 0 || t > TAG_UB) throw rangeError(where, `tag ${t} out of range 0..${TAG_UB}${any ? ' (or ANY_TAG)' : ''}`);
    return t;
  }

  #root(where: string, root: unknown): number {
    if (typeof root !== 'number' || !Number.isInteger(root)) throw typeError(where, 'root must be an integer rank', root);
    if (root < 0 || root >= this.size) throw rangeError(where, `root ${root} out of range for a communicator of size ${this.size}`);
    return root;
  }

  #op(where: string, op: unknown): Op {
    if (op instanceof Op) return op;
    if (typeof op === 'function') return Op.create(op as (a: unknown, b: unknown) => unknown);
    throw typeError(where, 'op must be an MPI.Op (MPI.SUM, ...) or a function (a, b) => result', op);
  }

  #status(status: Status | undefined, fallbackType = 0): Status {
    const s = status ?? new Status();
    return s._set(st[0] < 0 ? st[0] : this.#toLocal(st[0]), st[1], st[2], st[3] ?? fallbackType);
  }

  /** After a typed receive: its status, or the error of a refused message (in this comm's ranks). */
  #received(where: string, buf: TypedArray, status: Status | undefined): Status {
    if (st[4] !== 0) throw refusedError(where, st[4], this.#toLocal(st[0]), st[1], st[2], st[3], buf);
    return this.#status(status);
  }

  #decode(bytes: Buffer | null): unknown {
    if (bytes === null) return undefined; // PROC_NULL
    if (st[3] === OBJECT_TYPE) return decode(bytes);
    const C = ctorOf(st[3]);
    return new C(bytes.buffer, bytes.byteOffset, bytes.byteLength / C.BYTES_PER_ELEMENT);
  }

  /** Names the collective in data-plane timeout messages (one native call, only on change). */
  #label(l: string): void {
    if (l !== lastLabel) {
      lastLabel = l;
      mpi.setLabel(l);
    }
  }

  // --------------------------------------------------------------------------------------------
  // Point-to-point, objects

  /** Sends any serializable value to `dest` (blocking; returns once the value is buffered or received). */
  send(value: unknown, dest: number, tag = 0): void {
    this.#live('comm.send');
    const d = this.#dest('comm.send', 'dest', dest), t = this.#tag('comm.send', tag, false);
    if (d === PROC_NULL) return;
    const id = plainTypedArrayId(value);
    if (id > 0) mpi.send(value as TypedArray, id, d, this.#ctx, t, 0);
    else mpi.send(encode(value, 'comm.send'), OBJECT_TYPE, d, this.#ctx, t, 0);
  }

  /** Synchronous send: returns only once the receiver has matched the message (MPI_Ssend). */
  ssend(value: unknown, dest: number, tag = 0): void {
    this.#live('comm.ssend');
    const d = this.#dest('comm.ssend', 'dest', dest), t = this.#tag('comm.ssend', tag, false);
    if (d === PROC_NULL) return;
    const id = plainTypedArrayId(value);
    if (id > 0) mpi.send(value as TypedArray, id, d, this.#ctx, t, 1);
    else mpi.send(encode(value, 'comm.ssend'), OBJECT_TYPE, d, this.#ctx, t, 1);
  }

  /** Receives a value (blocking). A buffer message arrives as a typed array of the sent type. */
  recv<T = any>(source: number = ANY_SOURCE, tag: number = ANY_TAG, status?: Status): T {
    this.#live('comm.recv');
    const s = this.#source('comm.recv', source), t = this.#tag('comm.recv', tag, true);
    const bytes = mpi.recvObject(s, this.#ctx, t);
    if (status) this.#status(status);
    return this.#decode(bytes) as T;
  }

  /** Starts a send of a value; the request completes when the value may be reused. */
  isend(value: unknown, dest: number, tag = 0): Request<void> {
    this.#live('comm.isend');
    const d = this.#dest('comm.isend', 'dest', dest), t = this.#tag('comm.isend', tag, false);
    if (d === PROC_NULL) return Request._completed(undefined);
    // The value may change as soon as isend returns: typed arrays are copied (one memcpy).
    const id = plainTypedArrayId(value);
    const bytes = id > 0 ? (value as TypedArray).slice() : encode(value, 'comm.isend');
    return new Request<void>(mpi.isend(bytes, id > 0 ? id : OBJECT_TYPE, d, this.#ctx, t, 0), ReqKind.Send, this.#toLocal, bytes);
  }

  /** Starts a receive of a value; `await req` or `req.wait()` gives the value. */
  irecv<T = any>(source: number = ANY_SOURCE, tag: number = ANY_TAG): Request<T> {
    this.#live('comm.irecv');
    const s = this.#source('comm.irecv', source), t = this.#tag('comm.irecv', tag, true);
    return new Request<T>(mpi.irecv(null, -1, s, this.#ctx, t), ReqKind.RecvObject, this.#toLocal);
  }

  /** Waits for a matching message without receiving it; its status (source, tag, count). */
  probe(source: number = ANY_SOURCE, tag: number = ANY_TAG, status?: Status): Status {
    this.#live('comm.probe');
    const s = this.#source('comm.probe', source), t = this.#tag('comm.probe', tag, true);
    mpi.probe(s, this.#ctx, t);
    return this.#status(status);
  }

  /** Checks for a matching message without blocking: its status, or null when there is none. */
  iprobe(source: number = ANY_SOURCE, tag: number = ANY_TAG, status?: Status): Status | null {
    this.#live('comm.iprobe');
    const s = this.#source('comm.iprobe', source), t = this.#tag('comm.iprobe', tag, true);
    return mpi.iprobe(s, this.#ctx, t) ? this.#status(status) : null;
  }

  /** Sends a value and receives one (deadlock-free exchange). */
  sendrecv<T = any>(value: unknown, dest: number, sendtag = 0, source: number = ANY_SOURCE, recvtag: number = ANY_TAG, status?: Status): T {
    this.#live('comm.sendrecv');
    const d = this.#dest('comm.sendrecv', 'dest', dest), t = this.#tag('comm.sendrecv', sendtag, false);
    const s = this.#source('comm.sendrecv', source), rt = this.#tag('comm.sendrecv', recvtag, true);
    const id = plainTypedArrayId(value);
    const bytes = id > 0 ? (value as TypedArray) : encode(value, 'comm.sendrecv');
    const sreq = d === PROC_NULL ? 0 : mpi.isend(bytes, id > 0 ? id : OBJECT_TYPE, d, this.#ctx, t, 0);
    try {
      const got = mpi.recvObject(s, this.#ctx, rt);
      if (status) this.#status(status);
      const v = this.#decode(got) as T;
      if (sreq) mpi.wait(sreq);
      return v;
    } finally {
      if (sreq) mpi.free(sreq);
    }
  }

  // --------------------------------------------------------------------------------------------
  // Point-to-point, typed arrays

  /** Sends the elements of a typed array (blocking; large arrays go without intermediate copies). */
  Send(buf: TypedArray, dest: number, tag = 0): void {
    // Fast path for compute loops: one combined check, then the native call.
    const id = typeIdOf(buf);
    if (id > 0 && dest >= 0 && dest < this.size && (dest | 0) === dest && tag >= 0 && tag <= TAG_UB && (tag | 0) === tag && !this.#freed && !runtime.finalized) {
      mpi.send(buf, id, this.#ranks ? this.#ranks[dest] : dest, this.#ctx, tag, 0);
      return;
    }
    this.#live('comm.Send');
    requireTypedArray('comm.Send', 'buf', buf);
    const d = this.#dest('comm.Send', 'dest', dest), t = this.#tag('comm.Send', tag, false);
    if (d === PROC_NULL) return;
    mpi.send(buf, typeIdOf(buf), d, this.#ctx, t, 0);
  }

  /** Synchronous typed-array send (MPI_Ssend). */
  Ssend(buf: TypedArray, dest: number, tag = 0): void {
    this.#live('comm.Ssend');
    requireTypedArray('comm.Ssend', 'buf', buf);
    const d = this.#dest('comm.Ssend', 'dest', dest), t = this.#tag('comm.Ssend', tag, false);
    if (d === PROC_NULL) return;
    mpi.send(buf, typeIdOf(buf), d, this.#ctx, t, 1);
  }

  /** Receives into `buf` (same element type as sent; at least as long). Returns the status. */
  Recv(buf: TypedArray, source: number = ANY_SOURCE, tag: number = ANY_TAG, status?: Status): Status {
    const id = typeIdOf(buf);
    if (id > 0 && source >= 0 && source < this.size && (source | 0) === source && tag >= -1 && tag <= TAG_UB && (tag | 0) === tag && !this.#freed && !runtime.finalized) {
      mpi.recv(buf, id, this.#ranks ? this.#ranks[source] : source, this.#ctx, tag);
      return this.#received('recv', buf, status);
    }
    this.#live('comm.Recv');
    requireTypedArray('comm.Recv', 'buf', buf);
    const s = this.#source('comm.Recv', source), t = this.#tag('comm.Recv', tag, true);
    mpi.recv(buf, typeIdOf(buf), s, this.#ctx, t);
    return this.#received('recv', buf, status);
  }

  /** Starts a typed-array send; do not modify `buf` until the request completes. */
  Isend(buf: TypedArray, dest: number, tag = 0): Request<void> {
    this.#live('comm.Isend');
    requireTypedArray('comm.Isend', 'buf', buf);
    const d = this.#dest('comm.Isend', 'dest', dest), t = this.#tag('comm.Isend', tag, false);
    if (d === PROC_NULL) return Request._completed(undefined);
    return new Request<void>(mpi.isend(buf, typeIdOf(buf), d, this.#ctx, t, 0), ReqKind.Send, this.#toLocal, buf);
  }

  /** Starts a receive into `buf`; the request yields `buf` and its status tells the count. */
  Irecv<B extends TypedArray>(buf: B, source: number = ANY_SOURCE, tag: number = ANY_TAG): Request<B> {
    this.#live('comm.Irecv');
    requireTypedArray('comm.Irecv', 'buf', buf);
    const s = this.#source('comm.Irecv', source), t = this.#tag('comm.Irecv', tag, true);
    return new Request<B>(mpi.irecv(buf, typeIdOf(buf), s, this.#ctx, t), ReqKind.RecvBuffer, this.#toLocal, buf);
  }

  /** Sends `sendbuf` to `dest` and receives into `recvbuf` from `source` (deadlock-free). */
  Sendrecv(sendbuf: TypedArray, dest: number, sendtag: number, recvbuf: TypedArray, source: number = ANY_SOURCE, recvtag: number = ANY_TAG, status?: Status): Status {
    this.#live('comm.Sendrecv');
    requireTypedArray('comm.Sendrecv', 'sendbuf', sendbuf);
    requireTypedArray('comm.Sendrecv', 'recvbuf', recvbuf);
    const d = this.#dest('comm.Sendrecv', 'dest', dest), t = this.#tag('comm.Sendrecv', sendtag, false);
    const s = this.#source('comm.Sendrecv', source), rt = this.#tag('comm.Sendrecv', recvtag, true);
    const sreq = d === PROC_NULL ? 0 : mpi.isend(sendbuf, typeIdOf(sendbuf), d, this.#ctx, t, 0);
    try {
      mpi.recv(recvbuf, typeIdOf(recvbuf), s, this.#ctx, rt);
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
  // Collectives: plumbing

  #g(): [Int32Array | null, number, number] {
    return [this.#ranks, this.rank, this.#cctx];
  }

  /** Allgathers one length per member (as float64), returns them. */
  #allLens(len: number): Float64Array {
    const out = new Float64Array(this.size);
    const lens = new Float64Array(this.size).fill(8), displs = new Float64Array(this.size);
    for (let i = 0; i < this.size; i++) displs[i] = 8 * i;
    mpi.gatherv(...this.#g(), new Float64Array([len]), out, lens, displs, 0, true);
    return out;
  }

  #displs(lens: ArrayLike<number>): Float64Array {
    const d = new Float64Array(lens.length);
    for (let i = 1; i < lens.length; i++) d[i] = d[i - 1] + lens[i - 1];
    return d;
  }

  #split(all: Uint8Array, lens: Float64Array): unknown[] {
    const out: unknown[] = [];
    let off = 0;
    for (let i = 0; i < lens.length; i++) {
      out.push(decode(all.subarray(off, off + lens[i])));
      off += lens[i];
    }
    return out;
  }

  /** Every member's value, in rank order (allgather of serialized values). */
  #allValues(value: unknown, where: string): unknown[] {
    const mine = encode(value, where);
    const lens = this.#allLens(mine.length);
    const total = lens.reduce((a, b) => a + b, 0);
    const all = new Uint8Array(total);
    mpi.gatherv(...this.#g(), mine, all, lens, this.#displs(lens), 0, true);
    return this.#split(all, lens);
  }

  /** Fold values[0..n) in rank order. */
  #fold(op: Op, values: unknown[], n = values.length): unknown {
    let acc = values[0];
    // One operand: still check that the op applies to it, as it would on more ranks.
    if (values.length === 1 && op.name !== 'user') op.apply(acc, acc);
    for (let i = 1; i < n; i++) acc = op.apply(acc, values[i]);
    return acc;
  }

  // --------------------------------------------------------------------------------------------
  // Collectives, objects

  /** Blocks until every member has called barrier (MPI_Barrier). */
  barrier(): void {
    this.#live('comm.barrier');
    this.#label('barrier');
    mpi.barrier(...this.#g());
  }

  /** Alias of barrier, buffer spelling. */
  Barrier(): void {
    this.barrier();
  }

  /** Broadcasts `value` from `root`; every member returns the root's value. */
  bcast<T = any>(value: T, root = 0): T {
    this.#live('comm.bcast');
    const r = this.#root('comm.bcast', root);
    this.#label('bcast');
    if (this.size === 1) return decode(encode(value, 'comm.bcast')) as T;
    const len = new Float64Array(1);
    let bytes: Uint8Array | undefined;
    if (this.rank === r) {
      bytes = encode(value, 'comm.bcast');
      len[0] = bytes.length;
    }
    mpi.bcast(...this.#g(), len, r);
    if (this.rank !== r) bytes = new Uint8Array(len[0]);
    mpi.bcast(...this.#g(), bytes!, r);
    return (this.rank === r ? value : decode(bytes!)) as T;
  }

  /** Reduces every member's value with `op` in rank order; the result at `root`, undefined elsewhere. */
  reduce<T = any>(value: T, op: Op | ((a: T, b: T) => T) = SUM, root = 0): T | undefined {
    this.#live('comm.reduce');
    const o = this.#op('comm.reduce', op), r = this.#root('comm.reduce', root);
    this.#label('reduce');
    const mine = encode(value, 'comm.reduce');
    const lens = new Float64Array(this.size);
    const ls = new Float64Array(this.size).fill(8), ds = this.#displs(ls);
    mpi.gatherv(...this.#g(), new Float64Array([mine.length]), this.rank === r ? lens : null, ls, ds, r, false);
    const all = this.rank === r ? new Uint8Array(lens.reduce((a, b) => a + b, 0)) : null;
    mpi.gatherv(...this.#g(), mine, all, lens, this.#displs(lens), r, false);
    if (this.rank !== r) return undefined;
    return this.#fold(o, this.#split(all!, lens)) as T;
  }

  /** Reduces every member's value with `op`; every member gets the result. */
  allreduce<T = any>(value: T, op: Op | ((a: T, b: T) => T) = SUM): T {
    this.#live('comm.allreduce');
    const o = this.#op('comm.allreduce', op);
    this.#label('allreduce');
    return this.#fold(o, this.#allValues(value, 'comm.allreduce')) as T;
  }

  /** Inclusive prefix reduction: member i gets v0 op ... op vi. */
  scan<T = any>(value: T, op: Op | ((a: T, b: T) => T) = SUM): T {
    this.#live('comm.scan');
    const o = this.#op('comm.scan', op);
    this.#label('scan');
    return this.#fold(o, this.#allValues(value, 'comm.scan'), this.rank + 1) as T;
  }

  /** Exclusive prefix reduction: member i gets v0 op ... op v(i-1); rank 0 gets undefined. */
  exscan<T = any>(value: T, op: Op | ((a: T, b: T) => T) = SUM): T | undefined {
    this.#live('comm.exscan');
    const o = this.#op('comm.exscan', op);
    this.#label('exscan');
    const all = this.#allValues(value, 'comm.exscan');
    return this.rank === 0 ? undefined : (this.#fold(o, all, this.rank) as T);
  }

  /** Gathers every member's value at `root` (an array in rank order); undefined elsewhere. */
  gather<T = any>(value: T, root = 0): T[] | undefined {
    this.#live('comm.gather');
    const r = this.#root('comm.gather', root);
    this.#label('gather');
    const mine = encode(value, 'comm.gather');
    const lens = new Float64Array(this.size);
    const ls = new Float64Array(this.size).fill(8), ds = this.#displs(ls);
    mpi.gatherv(...this.#g(), new Float64Array([mine.length]), this.rank === r ? lens : null, ls, ds, r, false);
    const all = this.rank === r ? new Uint8Array(lens.reduce((a, b) => a + b, 0)) : null;
    mpi.gatherv(...this.#g(), mine, all, lens, this.#displs(lens), r, false);
    return this.rank === r ? (this.#split(all!, lens) as T[]) : undefined;
  }

  /** Scatters `values[i]` from `root` to member i (values matter only at the root). */
  scatter<T = any>(values: readonly T[] | undefined, root = 0): T {
    this.#live('comm.scatter');
    const r = this.#root('comm.scatter', root);
    this.#label('scatter');
    let parts: Uint8Array[] = [];
    const lens = new Float64Array(this.size);
    if (this.rank === r) {
      if (!Array.isArray(values)) throw typeError('comm.scatter', 'values must be an array at the root', values);
      if (values.length !== this.size) throw rangeError('comm.scatter', `values has ${values.length} items, the communicator has ${this.size} ranks`);
      parts = values.map((v) => encode(v, 'comm.scatter'));
      parts.forEach((p, i) => (lens[i] = p.length));
    }
    const mylen = new Float64Array(1);
    const ls = new Float64Array(this.size).fill(8);
    mpi.scatterv(...this.#g(), this.rank === r ? lens : null, ls, this.#displs(ls), mylen, r);
    let sbuf: Uint8Array | null = null;
    if (this.rank === r) {
      sbuf = new Uint8Array(lens.reduce((a, b) => a + b, 0));
      let off = 0;
      for (const p of parts) { sbuf.set(p, off); off += p.length; }
    }
    const mine = new Uint8Array(mylen[0]);
    mpi.scatterv(...this.#g(), sbuf, lens, this.#displs(lens), mine, r);
    return decode(mine) as T;
  }

  /** Every member gets every member's value, in rank order. */
  allgather<T = any>(value: T): T[] {
    this.#live('comm.allgather');
    this.#label('allgather');
    return this.#allValues(value, 'comm.allgather') as T[];
  }

  /** Member i sends values[j] to member j; returns what each member sent to this one. */
  alltoall<T = any>(values: readonly T[]): T[] {
    this.#live('comm.alltoall');
    if (!Array.isArray(values)) throw typeError('comm.alltoall', 'values must be an array', values);
    if (values.length !== this.size) throw rangeError('comm.alltoall', `values has ${values.length} items, the communicator has ${this.size} ranks`);
    this.#label('alltoall');
    const parts = values.map((v) => encode(v, 'comm.alltoall'));
    const slens = new Float64Array(parts.map((p) => p.length));
    const rlens = new Float64Array(this.size);
    const eights = new Float64Array(this.size).fill(8), d8 = this.#displs(eights);
    mpi.alltoallv(...this.#g(), slens, eights, d8, rlens, eights, d8);
    const sbuf = new Uint8Array(slens.reduce((a, b) => a + b, 0));
    let off = 0;
    for (const p of parts) { sbuf.set(p, off); off += p.length; }
    const rbuf = new Uint8Array(rlens.reduce((a, b) => a + b, 0));
    mpi.alltoallv(...this.#g(), sbuf, slens, this.#displs(slens), rbuf, rlens, this.#displs(rlens));
    return this.#split(rbuf, rlens) as T[];
  }

  /** values[i] of every member is reduced with `op`; member i gets that result. */
  reduceScatter<T = any>(values: readonly T[], op: Op | ((a: T, b: T) => T) = SUM): T {
    this.#live('comm.reduceScatter');
    const o = this.#op('comm.reduceScatter', op);
    const got = this.alltoall(values);
    return this.#fold(o, got) as T;
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
  // Collectives, typed arrays

  #sameType(where: string, a: TypedArray, b: TypedArray): void {
    const ia = typeIdOf(a), ib = typeIdOf(b);
    if (ia !== ib) throw new MPIError('ERR_TYPE', `${where}: sendbuf is ${TYPE_NAMES[ia]} but recvbuf is ${TYPE_NAMES[ib]}`);
  }

  #sbuf(where: string, sendbuf: unknown): TypedArray | null {
    if (sendbuf === IN_PLACE) return null;
    return requireTypedArray(where, 'sendbuf', sendbuf);
  }

  #combine(where: string, o: Op, dtype: number): number | ((a: any, b: any) => void) {
    const native = nativeOp(o, dtype);
    if (native >= 0) return native;
    if ((o.name === 'BAND' || o.name === 'BOR' || o.name === 'BXOR') && (dtype === 8 || dtype === 9)) {
      throw new MPIError('ERR_OP', `${where}: ${o.name} is not defined for ${TYPE_NAMES[dtype]} arrays`);
    }
    return (inb: TypedArray, inout: TypedArray) => o.applyInto(inb, inout, inout);
  }

  /** Broadcasts the root's `buf` into every member's `buf` (same type and length everywhere). */
  Bcast(buf: TypedArray, root = 0): void {
    this.#live('comm.Bcast');
    requireTypedArray('comm.Bcast', 'buf', buf);
    const r = this.#root('comm.Bcast', root);
    this.#label('Bcast');
    mpi.bcast(...this.#g(), buf, r);
  }

  #reduceBuf(where: string, kind: number, sendbuf: SendBuf, recvbuf: TypedArray | null, op: Op | ((a: any, b: any) => any), root: number): void {
    this.#live(where);
    const o = this.#op(where, op);
    const s = this.#sbuf(where, sendbuf);
    const needRecv = kind !== 0 || this.rank === root;
    if (needRecv || recvbuf) requireTypedArray(where, 'recvbuf', recvbuf);
    if (!s && !recvbuf) throw typeError(where, 'recvbuf must be a typed array when sendbuf is IN_PLACE', recvbuf);
    if (s && recvbuf) {
      this.#sameType(where, s, recvbuf);
      if (needRecv && recvbuf.length < s.length) throw rangeError(where, `recvbuf has ${recvbuf.length} elements, sendbuf has ${s.length}`);
    }
    const ref = (s ?? recvbuf)!;
    const dtype = typeIdOf(ref);
    this.#label(where.slice(5)); // 'comm.Reduce' -> 'Reduce'
    const rb = recvbuf && s ? (recvbuf.length === s.length ? recvbuf : recvbuf.subarray(0, s.length)) : recvbuf;
    mpi.reduce(...this.#g(), s, rb, this.#combine(where, o, dtype), dtype, root, kind);
  }

  /** Element-wise reduction of every member's `sendbuf` into the root's `recvbuf`. */
  Reduce(sendbuf: SendBuf, recvbuf: TypedArray | null, op: Op | ((a: any, b: any) => any) = SUM, root = 0): void {
    this.#reduceBuf('comm.Reduce', 0, sendbuf, recvbuf, op, this.#root('comm.Reduce', root));
  }

  /** Element-wise reduction into every member's `recvbuf`. */
  Allreduce(sendbuf: SendBuf, recvbuf: TypedArray, op: Op | ((a: any, b: any) => any) = SUM): void {
    // Fast path for compute loops: same-typed, same-length arrays and a predefined native op.
    if (op instanceof Op && !this.#freed && !runtime.finalized) {
      const id = typeIdOf(sendbuf);
      if (id > 0 && id === typeIdOf(recvbuf) && (sendbuf as TypedArray).length === recvbuf.length) {
        const code = nativeOp(op, id);
        if (code >= 0) {
          this.#label('Allreduce');
          mpi.reduce(this.#ranks, this.rank, this.#cctx, sendbuf as TypedArray, recvbuf, code, id, 0, 1);
          return;
        }
      }
    }
    this.#reduceBuf('comm.Allreduce', 1, sendbuf, recvbuf, op, 0);
  }

  /** Element-wise inclusive prefix reduction. */
  Scan(sendbuf: SendBuf, recvbuf: TypedArray, op: Op | ((a: any, b: any) => any) = SUM): void {
    this.#reduceBuf('comm.Scan', 2, sendbuf, recvbuf, op, 0);
  }

  /** Element-wise exclusive prefix reduction (rank 0's recvbuf is left untouched). */
  Exscan(sendbuf: SendBuf, recvbuf: TypedArray, op: Op | ((a: any, b: any) => any) = SUM): void {
    this.#reduceBuf('comm.Exscan', 3, sendbuf, recvbuf, op, 0);
  }

  #counts(where: string, name: string, counts: unknown): number[] {
    if (!Array.isArray(counts) && !isTypedArray(counts)) throw typeError(where, `${name} must be an array of ${this.size} element counts`, counts);
    const c = Array.from(counts as ArrayLike<number>);
    if (c.length !== this.size) throw rangeError(where, `${name} has ${c.length} entries, the communicator has ${this.size} ranks`);
    c.forEach((x, i) => {
      if (!Number.isInteger(x) || x < 0) throw rangeError(where, `${name}[${i}] must be a non-negative integer, got ${describe(x)}`);
    });
    return c;
  }

  #bytes(counts: number[], esz: number): Float64Array {
    return new Float64Array(counts.map((c) => c * esz));
  }

  #displsOr(where: string, displs: unknown, counts: number[], esz: number): Float64Array {
    if (displs === undefined) return this.#displs(this.#bytes(counts, esz));
    return this.#bytes(this.#counts(where, 'displs', displs), esz);
  }

  /** Gathers equal-sized blocks: the root's recvbuf gets size * sendbuf.length elements. */
  Gather(sendbuf: SendBuf, recvbuf: TypedArray | null, root = 0): void {
    const where = 'comm.Gather';
    this.#live(where);
    const r = this.#root(where, root);
    const s = this.#sbuf(where, sendbuf);
    let n: number;
    if (s) n = s.length;
    else {
      requireTypedArray(where, 'recvbuf', recvbuf);
      n = recvbuf!.length / this.size;
    }
    this.Gatherv(sendbuf, recvbuf, new Array(this.size).fill(n), r);
  }

  /** Gathers blocks of counts[i] elements (at displs[i], default packed) into the root's recvbuf. */
  Gatherv(sendbuf: SendBuf, recvbuf: TypedArray | null, counts: ArrayLike<number> | null, root = 0, displs?: ArrayLike<number>): void {
    const where = 'comm.Gatherv';
    this.#live(where);
    const r = this.#root(where, root);
    const s = this.#sbuf(where, sendbuf);
    const isRoot = this.rank === r;
    if (isRoot) requireTypedArray(where, 'recvbuf', recvbuf);
    if (!s && !isRoot) throw typeError(where, 'sendbuf may be IN_PLACE only at the root', sendbuf);
    const ref = (s ?? recvbuf)!;
    const esz = ref.BYTES_PER_ELEMENT;
    let lens: Float64Array | null = null, ds: Float64Array | null = null;
    if (isRoot) {
      if (s) this.#sameType(where, s, recvbuf!);
      const c = this.#counts(where, 'counts', counts);
      if (s && c[this.rank] !== s.length) throw rangeError(where, `counts[${this.rank}] is ${c[this.rank]} but sendbuf has ${s.length} elements`);
      lens = this.#bytes(c, esz);
      ds = this.#displsOr(where, displs, c, esz);
      for (let i = 0; i < this.size; i++) {
        if (ds[i] + lens[i] > recvbuf!.byteLength) throw rangeError(where, `recvbuf has ${recvbuf!.length} elements, too few for block ${i} (${c[i]} elements at ${ds[i] / esz})`);
      }
    }
    this.#label('Gatherv');
    mpi.gatherv(...this.#g(), s, isRoot ? recvbuf : null, lens, ds, r, false);
  }

  /** Scatters equal blocks of the root's sendbuf: member i gets recvbuf.length elements. */
  Scatter(sendbuf: TypedArray | null, recvbuf: TypedArray | typeof IN_PLACE, root = 0): void {
    const where = 'comm.Scatter';
    this.#live(where);
    const r = this.#root(where, root);
    let n: number;
    if (recvbuf === IN_PLACE) {
      requireTypedArray(where, 'sendbuf', sendbuf);
      n = sendbuf!.length / this.size;
    } else n = requireTypedArray(where, 'recvbuf', recvbuf).length;
    this.Scatterv(sendbuf, new Array(this.size).fill(n), recvbuf, r);
  }

  /** Scatters blocks of counts[i] elements (at displs[i], default packed) of the root's sendbuf. */
  Scatterv(sendbuf: TypedArray | null, counts: ArrayLike<number> | null, recvbuf: TypedArray | typeof IN_PLACE, root = 0, displs?: ArrayLike<number>): void {
    const where = 'comm.Scatterv';
    this.#live(where);
    const r = this.#root(where, root);
    const isRoot = this.rank === r;
    const rb = recvbuf === IN_PLACE ? null : requireTypedArray(where, 'recvbuf', recvbuf);
    if (!rb && !isRoot) throw typeError(where, 'recvbuf may be IN_PLACE only at the root', recvbuf);
    let lens: Float64Array | null = null, ds: Float64Array | null = null;
    if (isRoot) {
      requireTypedArray(where, 'sendbuf', sendbuf);
      if (rb) this.#sameType(where, sendbuf!, rb);
      const esz = sendbuf!.BYTES_PER_ELEMENT;
      const c = this.#counts(where, 'counts', counts);
      lens = this.#bytes(c, esz);
      ds = this.#displsOr(where, displs, c, esz);
      for (let i = 0; i < this.size; i++) {
        if (ds[i] + lens[i] > sendbuf!.byteLength) throw rangeError(where, `sendbuf has ${sendbuf!.length} elements, too few for block ${i} (${c[i]} elements at ${ds[i] / esz})`);
      }
      if (rb && rb.length < c[this.rank]) throw rangeError(where, `recvbuf has ${rb.length} elements, counts[${this.rank}] is ${c[this.rank]}`);
    }
    this.#label('Scatterv');
    mpi.scatterv(...this.#g(), isRoot ? sendbuf : null, lens, ds, rb, r);
  }

  /** Every member gets every member's block: recvbuf holds size * sendbuf.length elements. */
  Allgather(sendbuf: SendBuf, recvbuf: TypedArray): void {
    const where = 'comm.Allgather';
    this.#live(where);
    requireTypedArray(where, 'recvbuf', recvbuf);
    const s = this.#sbuf(where, sendbuf);
    const n = s ? s.length : recvbuf.length / this.size;
    this.Allgatherv(sendbuf, recvbuf, new Array(this.size).fill(n));
  }

  /** Every member gets blocks of counts[i] elements (at displs[i], default packed). */
  Allgatherv(sendbuf: SendBuf, recvbuf: TypedArray, counts: ArrayLike<number>, displs?: ArrayLike<number>): void {
    const where = 'comm.Allgatherv';
    this.#live(where);
    requireTypedArray(where, 'recvbuf', recvbuf);
    const s = this.#sbuf(where, sendbuf);
    if (s) this.#sameType(where, s, recvbuf);
    const esz = recvbuf.BYTES_PER_ELEMENT;
    const c = this.#counts(where, 'counts', counts);
    if (s && c[this.rank] !== s.length) throw rangeError(where, `counts[${this.rank}] is ${c[this.rank]} but sendbuf has ${s.length} elements`);
    const lens = this.#bytes(c, esz), ds = this.#displsOr(where, displs, c, esz);
    for (let i = 0; i < this.size; i++) {
      if (ds[i] + lens[i] > recvbuf.byteLength) throw rangeError(where, `recvbuf has ${recvbuf.length} elements, too few for block ${i}`);
    }
    this.#label('Allgatherv');
    mpi.gatherv(...this.#g(), s, recvbuf, lens, ds, 0, true);
  }

  /** Member i's block j (sendbuf.length / size elements) goes to member j's block i. */
  Alltoall(sendbuf: TypedArray, recvbuf: TypedArray): void {
    const where = 'comm.Alltoall';
    this.#live(where);
    requireTypedArray(where, 'sendbuf', sendbuf);
    requireTypedArray(where, 'recvbuf', recvbuf);
    if (sendbuf.length % this.size !== 0) throw rangeError(where, `sendbuf has ${sendbuf.length} elements, not a multiple of the communicator size ${this.size}`);
    const n = sendbuf.length / this.size;
    const c = new Array(this.size).fill(n);
    this.Alltoallv(sendbuf, c, recvbuf, c);
  }

  /** All-to-all with per-member counts and displacements (elements). */
  Alltoallv(sendbuf: TypedArray, sendcounts: ArrayLike<number>, recvbuf: TypedArray, recvcounts: ArrayLike<number>, sdispls?: ArrayLike<number>, rdispls?: ArrayLike<number>): void {
    const where = 'comm.Alltoallv';
    this.#live(where);
    requireTypedArray(where, 'sendbuf', sendbuf);
    requireTypedArray(where, 'recvbuf', recvbuf);
    this.#sameType(where, sendbuf, recvbuf);
    const esz = sendbuf.BYTES_PER_ELEMENT;
    const sc = this.#counts(where, 'sendcounts', sendcounts), rc = this.#counts(where, 'recvcounts', recvcounts);
    const sl = this.#bytes(sc, esz), rl = this.#bytes(rc, esz);
    const sd = this.#displsOr(where, sdispls, sc, esz), rd = this.#displsOr(where, rdispls, rc, esz);
    for (let i = 0; i < this.size; i++) {
      if (sd[i] + sl[i] > sendbuf.byteLength) throw rangeError(where, `sendbuf has ${sendbuf.length} elements, too few for block ${i}`);
      if (rd[i] + rl[i] > recvbuf.byteLength) throw rangeError(where, `recvbuf has ${recvbuf.length} elements, too few for block ${i}`);
    }
    this.#label('Alltoallv');
    mpi.alltoallv(...this.#g(), sendbuf, sl, sd, recvbuf, rl, rd);
  }

  /** Element-wise reduction of sendbuf, then block i (counts[i] elements) goes to member i. */
  ReduceScatter(sendbuf: SendBuf, recvbuf: TypedArray, counts: ArrayLike<number>, op: Op | ((a: any, b: any) => any) = SUM): void {
    const where = 'comm.ReduceScatter';
    this.#live(where);
    requireTypedArray(where, 'recvbuf', recvbuf);
    const c = this.#counts(where, 'counts', counts);
    const total = c.reduce((a, b) => a + b, 0);
    const s = this.#sbuf(where, sendbuf);
    if (s && s.length !== total) throw rangeError(where, `sendbuf has ${s.length} elements, counts add up to ${total}`);
    if (recvbuf.length < c[this.rank]) throw rangeError(where, `recvbuf has ${recvbuf.length} elements, counts[${this.rank}] is ${c[this.rank]}`);
    const C = recvbuf.constructor as new (n: number) => TypedArray;
    const tmp = new C(total);
    if (!s) {
      // In place: the input is in recvbuf (total elements).
      if (recvbuf.length < total) throw rangeError(where, `with IN_PLACE, recvbuf must hold all ${total} elements`);
      (tmp as any).set(recvbuf.subarray(0, total));
    }
    this.#reduceBuf(where, 0, s ?? IN_PLACE, s ? (this.rank === 0 ? tmp : null) : tmp, op, 0);
    this.Scatterv(this.rank === 0 ? tmp : null, c, recvbuf.subarray(0, c[this.rank]), 0);
  }

  /** mpi4py's spelling of ReduceScatter. */
  Reduce_scatter(sendbuf: SendBuf, recvbuf: TypedArray, counts: ArrayLike<number>, op: Op | ((a: any, b: any) => any) = SUM): void {
    this.ReduceScatter(sendbuf, recvbuf, counts, op);
  }

  // --------------------------------------------------------------------------------------------
  // Communicator management

  /** Agrees on a fresh context id with every member (MAX-allreduce of the next free one). */
  #agreeCtx(): number {
    const v = new Float64Array([nextCtx]);
    mpi.reduce(...this.#g(), null, v, SF_OP.MAX, 9, 0, 1);
    const ctx = v[0];
    nextCtx = ctx + 2;
    return ctx;
  }

  /** A new communicator with the same members and its own message space (collective). */
  dup(): Comm {
    this.#live('comm.dup');
    this.#label('dup');
    const ctx = this.#agreeCtx();
    return new Comm(this.#ranks ? this.#ranks.slice() : null, this.rank, ctx, `${this.#name}.dup()`);
  }

  /**
   * Splits into one communicator per `color`, members ordered by (`key`, old rank) (collective).
   * Members that pass UNDEFINED get null.
   */
  split(color: number, key = 0): Comm | null {
    this.#live('comm.split');
    if (typeof color !== 'number' || !Number.isInteger(color)) throw typeError('comm.split', 'color must be an integer (or MPI.UNDEFINED)', color);
    if (color < 0 && color !== UNDEFINED) throw rangeError('comm.split', `color ${color} must be non-negative (or MPI.UNDEFINED)`);
    if (typeof key !== 'number' || !Number.isInteger(key)) throw typeError('comm.split', 'key must be an integer', key);
    this.#label('split');
    const mine = new Int32Array([color, key]);
    const all = new Int32Array(2 * this.size);
    const lens = new Float64Array(this.size).fill(8);
    mpi.gatherv(...this.#g(), mine, all, lens, this.#displs(lens), 0, true);
    const ctx = this.#agreeCtx();
    if (color === UNDEFINED) return null;
    const members: { old: number; key: number }[] = [];
    for (let i = 0; i < this.size; i++) if (all[2 * i] === color) members.push({ old: i, key: all[2 * i + 1] });
    members.sort((a, b) => a.key - b.key || a.old - b.old);
    const ranks = new Int32Array(members.map((m) => this.#world(m.old)));
    const rank = members.findIndex((m) => m.old === this.rank);
    return new Comm(ranks, rank, ctx, `${this.#name}.split(${color})`);
  }

  /** Marks the communicator freed; later calls on it throw ERR_COMM. COMM_WORLD cannot be freed. */
  free(): void {
    if (this.#ctx === WORLD_CTX || this.#ctx === SELF_CTX) throw new MPIError('ERR_COMM', `comm.free: ${this.#name} cannot be freed`);
    this.#freed = true;
  }

  /** The world rank of each member, in rank order (MPI_Group_translate_ranks against WORLD). */
  worldRanks(): number[] {
    return this.#ranks ? Array.from(this.#ranks) : Array.from({ length: this.size }, (_, i) => i);
  }

  /** Aborts the whole job with `code` (MPI_Abort on any communicator aborts every rank here). */
  abort(code = 1): never {
    return abortHook(code);
  }
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

export { bytesOf };
