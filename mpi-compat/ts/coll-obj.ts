/**
 * @internal Collectives of objects (mpi4py's lower-case bcast, reduce, allreduce, ...): any
 * serializable value, reduced with an Op in rank order.
 *
 * They scale like MPI's own algorithms instead of sending every value to every rank: reduce is
 * a binomial tree to rank 0 (each rank receives at most log2(n) partial results and sends one),
 * allreduce is recursive doubling on power-of-two sizes (log2(n) exchanges, the lower rank's
 * operand always first, so every rank computes the same result in rank order) and reduce +
 * bcast otherwise, bcast is the data plane's (binomial, or one shared-memory step within a
 * host), scan is a chain. gather, scatter and alltoall move each value once to where it is
 * needed; allgather is one native call (native/addon/mpi/coll.cc allgatherObjects: small values
 * in one allreduce of fixed blocks, log2(n) steps or one shared-memory step, longer ones' rest
 * by one allgatherv). Messages travel in the communicator's collective context, on tags of their
 * own.
 */
import type { CommCore } from './core.js';
import { MPIError, rangeError, typeError, type MPIErrorCode } from './errors.js';
import { OBJECT_TYPE } from './datatype.js';
import { decodeReceived, mpi, received } from './native.js';
import type { Op } from './op.js';
import { asSent, decode, encode, encodeTemp } from './serialization.js';

const T_REDUCE = 100, T_ROOT = 101, T_ALLREDUCE = 102, T_SCAN = 103, T_GATHER = 104, T_SCATTER = 105;

function send(c: CommCore, value: unknown, to: number, tag: number, where: string): void {
  mpi.send(encodeTemp(value, where), OBJECT_TYPE, c.world(to), c.cctx, tag, 0);
}

/** This rank's own operand, as the others see it (see asSent). */
function own(value: unknown, where: string): unknown {
  return asSent(value, encodeTemp(value, where));
}

function recv(c: CommCore, from: number, tag: number): unknown {
  return decodeReceived(mpi.recvObject(c.world(from), c.cctx, tag)!);
}

/**
 * An op that throws on one rank must not leave the others waiting: its error travels on in
 * place of the partial result (it absorbs whatever it is combined with), and every rank that
 * ends up with it throws (the rank where it happened throws its own error).
 */
const OP_ERROR = '__sfmpi_op_error__';
interface OpError { [OP_ERROR]: { code: string; message: string; rank: number } }
const isOpError = (v: unknown): v is OpError => typeof v === 'object' && v !== null && OP_ERROR in v;
let ownError: { error: unknown; rank: number } | null = null;

function combine(c: CommCore, op: Op, a: unknown, b: unknown): unknown {
  if (isOpError(a)) return a;
  if (isOpError(b)) return b;
  try {
    return op.apply(a, b);
  } catch (e) {
    ownError = { error: e, rank: c.rank };
    const code = e instanceof MPIError ? e.code : 'ERR_OP';
    const message = e instanceof Error ? (e instanceof MPIError ? e.message : `${e.name}: ${e.message}`) : String(e);
    return { [OP_ERROR]: { code, message, rank: c.world(c.rank) } };
  }
}

/** The result of a reduction, or its error thrown. */
function settle<T>(c: CommCore, v: unknown): T {
  const mine = ownError;
  ownError = null;
  if (!isOpError(v)) return v as T;
  if (mine && mine.rank === c.rank) throw mine.error;
  const e = v[OP_ERROR];
  throw new MPIError(e.code as MPIErrorCode, `${e.message} (the op failed on world rank ${e.rank})`);
}

/** One operand only: still check that the op applies to it, as it would on more ranks. */
function alone(op: Op, v: unknown): unknown {
  if (op.name !== 'user') op.apply(v, v);
  return v;
}

/** Binomial reduce to rank 0 in rank order; the result at rank 0, undefined elsewhere. */
function reduce0(c: CommCore, value: unknown, op: Op, where: string): unknown {
  let acc = c.rank === 0 ? own(value, where) : value;
  for (let mask = 1; mask < c.size; mask <<= 1) {
    if (c.rank & mask) {
      send(c, acc, c.rank - mask, T_REDUCE, where);
      return undefined;
    }
    if (c.rank + mask < c.size) acc = combine(c, op, acc, recv(c, c.rank + mask, T_REDUCE));
  }
  return acc;
}

export function bcast<T>(c: CommCore, value: T, root: number): T {
  c.label('bcast');
  if (c.size === 1) return decode(encodeTemp(value, 'comm.bcast')) as T;
  if (c.rank === root) {
    mpi.bcastObject(...c.g(), encodeTemp(value, 'comm.bcast'), root);
    return value;
  }
  return decodeReceived(mpi.bcastObject(...c.g(), null, root)!) as T;
}

export function reduce<T>(c: CommCore, value: T, op: Op, root: number): T | undefined {
  c.label('reduce');
  if (c.size === 1) return alone(op, own(value, 'comm.reduce')) as T;
  const acc = reduce0(c, value, op, 'comm.reduce');
  if (root === 0) return c.rank === 0 ? settle<T>(c, acc) : settle<undefined>(c, undefined);
  if (c.rank === 0) send(c, acc, root, T_ROOT, 'comm.reduce');
  return c.rank === root ? settle<T>(c, recv(c, 0, T_ROOT)) : settle<undefined>(c, undefined);
}

export function allreduce<T>(c: CommCore, value: T, op: Op): T {
  c.label('allreduce');
  const n = c.size;
  if (n === 1) return alone(op, own(value, 'comm.allreduce')) as T;
  if ((n & (n - 1)) === 0) {
    let acc: unknown = value;
    for (let mask = 1; mask < n; mask <<= 1) {
      const partner = c.rank ^ mask;
      const bytes = encodeTemp(acc, 'comm.allreduce');
      const got = decodeReceived(mpi.sendrecvObject(bytes, OBJECT_TYPE, c.world(partner), T_ALLREDUCE, c.world(partner), T_ALLREDUCE, c.cctx)!);
      const mine = asSent(acc, bytes); // both partners combine the same two operands
      acc = partner < c.rank ? combine(c, op, got, mine) : combine(c, op, mine, got);
    }
    return settle<T>(c, acc);
  }
  return settle<T>(c, bcast(c, reduce0(c, value, op, 'comm.allreduce'), 0));
}

/** Inclusive (exclusive) prefix: rank r gets v0 op ... op vr (v(r-1)); exscan gives rank 0 undefined. */
export function scan<T>(c: CommCore, value: T, op: Op, exclusive: boolean): T | undefined {
  c.label(exclusive ? 'exscan' : 'scan');
  const mine = own(value, exclusive ? 'comm.exscan' : 'comm.scan');
  if (c.size === 1) {
    alone(op, mine);
    return exclusive ? undefined : (mine as T);
  }
  const before = c.rank > 0 ? recv(c, c.rank - 1, T_SCAN) : undefined;
  const upto = c.rank > 0 ? combine(c, op, before, mine) : mine;
  if (c.rank < c.size - 1) send(c, upto, c.rank + 1, T_SCAN, exclusive ? 'comm.exscan' : 'comm.scan');
  const out = settle<unknown>(c, upto); // an error before this rank reaches it too
  return (exclusive ? before : out) as T | undefined;
}

export function gather<T>(c: CommCore, value: T, root: number): T[] | undefined {
  c.label('gather');
  if (c.rank !== root) {
    send(c, value, root, T_GATHER, 'comm.gather');
    return undefined;
  }
  const out: T[] = [];
  for (let i = 0; i < c.size; i++) out.push(i === root ? (own(value, 'comm.gather') as T) : (recv(c, i, T_GATHER) as T));
  return out;
}

export function scatter<T>(c: CommCore, values: readonly T[] | undefined, root: number): T {
  c.label('scatter');
  if (c.rank !== root) return recv(c, root, T_SCATTER) as T;
  if (!Array.isArray(values)) throw typeError('comm.scatter', 'values must be an array at the root', values);
  if (values.length !== c.size) throw rangeError('comm.scatter', `values has ${values.length} items, the communicator has ${c.size} ranks`);
  const parts = values.map((v) => encode(v, 'comm.scatter'));
  for (let i = 0; i < c.size; i++) if (i !== root) mpi.send(parts[i], OBJECT_TYPE, c.world(i), c.cctx, T_SCATTER, 0);
  return decode(parts[root]) as T;
}

export function allgather<T>(c: CommCore, value: T): T[] {
  c.label('allgather');
  const lens = new Float64Array(c.size);
  const all = received(mpi.allgatherObjects(...c.g(), encodeTemp(value, 'comm.allgather'), lens));
  const out: T[] = new Array(c.size);
  for (let i = 0, off = 0; i < c.size; off += lens[i++]) out[i] = decode(all, lens[i], off) as T;
  return out;
}

export function alltoall<T>(c: CommCore, values: readonly T[]): T[] {
  if (!Array.isArray(values)) throw typeError('comm.alltoall', 'values must be an array', values);
  if (values.length !== c.size) throw rangeError('comm.alltoall', `values has ${values.length} items, the communicator has ${c.size} ranks`);
  c.label('alltoall');
  const parts = values.map((v) => encode(v, 'comm.alltoall'));
  const n = c.size;
  const slens = new Float64Array(parts.map((p) => p.length));
  const rlens = new Float64Array(n);
  const eights = new Float64Array(n).fill(8), d8 = displs(eights);
  mpi.alltoallv(...c.g(), slens, eights, d8, rlens, eights, d8);
  const sbuf = new Uint8Array(slens.reduce((a, b) => a + b, 0));
  let off = 0;
  for (const p of parts) {
    sbuf.set(p, off);
    off += p.length;
  }
  const rbuf = new Uint8Array(rlens.reduce((a, b) => a + b, 0));
  mpi.alltoallv(...c.g(), sbuf, slens, displs(slens), rbuf, rlens, displs(rlens));
  const out: T[] = [];
  off = 0;
  for (let i = 0; i < n; i++) {
    out.push(decode(rbuf.subarray(off, off + rlens[i])) as T);
    off += rlens[i];
  }
  return out;
}

/** values[i] of every member reduced with `op`, in rank order; member i gets that result. */
export function reduceScatter<T>(c: CommCore, values: readonly T[], op: Op): T {
  const got = alltoall(c, values);
  let acc: unknown = got[0];
  if (got.length === 1) alone(op, acc);
  for (let i = 1; i < got.length; i++) acc = combine(c, op, acc, got[i]);
  return settle<T>(c, acc);
}

/** Packed displacements of lengths. */
export function displs(lens: ArrayLike<number>): Float64Array {
  const d = new Float64Array(lens.length);
  for (let i = 1; i < lens.length; i++) d[i] = d[i - 1] + lens[i - 1];
  return d;
}
