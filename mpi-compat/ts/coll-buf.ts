/**
 * @internal Collectives of typed arrays (mpi4py's upper-case Bcast, Reduce, Allreduce, ...):
 * elements move straight between the callers' arrays through the data plane; predefined ops on
 * number arrays are applied natively, other ops call back into JavaScript (op.ts). Counts and
 * displacements are in elements, checked here and handed to the data plane in bytes.
 */
import { runtime, type CommCore } from './core.js';
import { displs } from './coll-obj.js';
import { describe, MPIError, rangeError, typeError } from './errors.js';
import { isTypedArray, requireTypedArray, TYPE_NAMES, typeIdOf, type TypedArray } from './datatype.js';
import { mpi, SF_OP } from './native.js';
import { Op, SUM } from './op.js';
import { hintOverwrite } from '../../runtime/share.js';

/** Pass as the send buffer of a buffer collective to operate in place (MPI_IN_PLACE). */
export const IN_PLACE: unique symbol = Symbol('MPI.IN_PLACE');

/** A send buffer, or IN_PLACE. */
export type SendBuf = TypedArray | typeof IN_PLACE;

/** Per op, per dtype: the data plane's sf_op (>= 0), or -1 to combine in JavaScript; opValid is asked once. */
const nativeOps = new WeakMap<Op, number[]>();
/** The data plane's code of `o` on element type `dtype`, or -1 when it is combined in JavaScript. */
export function nativeOp(o: Op, dtype: number): number {
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


function sameType(where: string, a: TypedArray, b: TypedArray): void {
  const ia = typeIdOf(a), ib = typeIdOf(b);
  if (ia !== ib) throw new MPIError('ERR_TYPE', `${where}: sendbuf is ${TYPE_NAMES[ia]} but recvbuf is ${TYPE_NAMES[ib]}`);
}

function sbuf(where: string, sendbuf: unknown): TypedArray | null {
  if (sendbuf === IN_PLACE) return null;
  return requireTypedArray(where, 'sendbuf', sendbuf);
}

function combine(where: string, o: Op, dtype: number): number | ((a: any, b: any) => void) {
  const native = nativeOp(o, dtype);
  if (native >= 0) return native;
  if ((o.name === 'BAND' || o.name === 'BOR' || o.name === 'BXOR') && (dtype === 8 || dtype === 9)) {
    throw new MPIError('ERR_OP', `${where}: ${o.name} is not defined for ${TYPE_NAMES[dtype]} arrays`);
  }
  return (inb: TypedArray, inout: TypedArray) => o.applyInto(inb, inout, inout);
}

/** Broadcasts the root's `buf` into every member's `buf` (same type and length everywhere). */
export function Bcast(comm: CommCore, buf: TypedArray, root = 0): void {
  comm.live('comm.Bcast');
  requireTypedArray('comm.Bcast', 'buf', buf);
  const r = comm.root('comm.Bcast', root);
  comm.label('Bcast');
  if (comm.rank !== r) hintOverwrite(buf); // the root's bytes replace all of it
  mpi.bcast(...comm.g(), buf, r);
}

function reduceBuf(comm: CommCore, where: string, kind: number, sendbuf: SendBuf, recvbuf: TypedArray | null, op: Op | ((a: any, b: any) => any), root: number): void {
  comm.live(where);
  const o = comm.op(where, op);
  const s = sbuf(where, sendbuf);
  const needRecv = kind !== 0 || comm.rank === root;
  if (needRecv || recvbuf) requireTypedArray(where, 'recvbuf', recvbuf);
  if (!s && !recvbuf) throw typeError(where, 'recvbuf must be a typed array when sendbuf is IN_PLACE', recvbuf);
  if (s && recvbuf) {
    sameType(where, s, recvbuf);
    if (needRecv && recvbuf.length < s.length) throw rangeError(where, `recvbuf has ${recvbuf.length} elements, sendbuf has ${s.length}`);
  }
  const ref = (s ?? recvbuf)!;
  const dtype = typeIdOf(ref);
  comm.label(where.slice(5)); // 'comm.Reduce' -> 'Reduce'
  const rb = recvbuf && s ? (recvbuf.length === s.length ? recvbuf : recvbuf.subarray(0, s.length)) : recvbuf;
  mpi.reduce(...comm.g(), s, rb, combine(where, o, dtype), dtype, root, kind);
}

/** Element-wise reduction of every member's `sendbuf` into the root's `recvbuf`. */
export function Reduce(comm: CommCore, sendbuf: SendBuf, recvbuf: TypedArray | null, op: Op | ((a: any, b: any) => any) = SUM, root = 0): void {
  reduceBuf(comm, 'comm.Reduce', 0, sendbuf, recvbuf, op, comm.root('comm.Reduce', root));
}

/** Element-wise reduction into every member's `recvbuf`. */
export function Allreduce(comm: CommCore, sendbuf: SendBuf, recvbuf: TypedArray, op: Op | ((a: any, b: any) => any) = SUM): void {
  // Fast path for compute loops: same-typed, same-length arrays and a predefined native op.
  if (op instanceof Op && !comm.freed && !runtime.finalized) {
    const id = typeIdOf(sendbuf);
    if (id > 0 && id === typeIdOf(recvbuf) && (sendbuf as TypedArray).length === recvbuf.length) {
      const code = nativeOp(op, id);
      if (code >= 0) {
        comm.label('Allreduce');
        mpi.reduce(comm.ranks, comm.rank, comm.cctx, sendbuf as TypedArray, recvbuf, code, id, 0, 1);
        return;
      }
    }
  }
  reduceBuf(comm, 'comm.Allreduce', 1, sendbuf, recvbuf, op, 0);
}

/** Element-wise inclusive prefix reduction. */
export function Scan(comm: CommCore, sendbuf: SendBuf, recvbuf: TypedArray, op: Op | ((a: any, b: any) => any) = SUM): void {
  reduceBuf(comm, 'comm.Scan', 2, sendbuf, recvbuf, op, 0);
}

/** Element-wise exclusive prefix reduction (rank 0's recvbuf is left untouched). */
export function Exscan(comm: CommCore, sendbuf: SendBuf, recvbuf: TypedArray, op: Op | ((a: any, b: any) => any) = SUM): void {
  reduceBuf(comm, 'comm.Exscan', 3, sendbuf, recvbuf, op, 0);
}

function countsOf(comm: CommCore, where: string, name: string, counts: unknown): number[] {
  if (!Array.isArray(counts) && !isTypedArray(counts)) throw typeError(where, `${name} must be an array of ${comm.size} element counts`, counts);
  const c = Array.from(counts as ArrayLike<number>);
  if (c.length !== comm.size) throw rangeError(where, `${name} has ${c.length} entries, the communicator has ${comm.size} ranks`);
  c.forEach((x, i) => {
    if (!Number.isInteger(x) || x < 0) throw rangeError(where, `${name}[${i}] must be a non-negative integer, got ${describe(x)}`);
  });
  return c;
}

function bytes(counts: number[], esz: number): Float64Array {
  return new Float64Array(counts.map((c) => c * esz));
}

function displsOr(comm: CommCore, where: string, given: unknown, counts: number[], esz: number): Float64Array {
  if (given === undefined) return displs(bytes(counts, esz));
  return bytes(countsOf(comm, where, 'displs', given), esz);
}

/** Gathers equal-sized blocks: the root's recvbuf gets size * sendbuf.length elements. */
export function Gather(comm: CommCore, sendbuf: SendBuf, recvbuf: TypedArray | null, root = 0): void {
  const where = 'comm.Gather';
  comm.live(where);
  const r = comm.root(where, root);
  const s = sbuf(where, sendbuf);
  let n: number;
  if (s) n = s.length;
  else {
    requireTypedArray(where, 'recvbuf', recvbuf);
    n = recvbuf!.length / comm.size;
  }
  Gatherv(comm, sendbuf, recvbuf, new Array(comm.size).fill(n), r);
}

/** Gathers blocks of counts[i] elements (at displs[i], default packed) into the root's recvbuf. */
export function Gatherv(comm: CommCore, sendbuf: SendBuf, recvbuf: TypedArray | null, counts: ArrayLike<number> | null, root = 0, displs?: ArrayLike<number>): void {
  const where = 'comm.Gatherv';
  comm.live(where);
  const r = comm.root(where, root);
  const s = sbuf(where, sendbuf);
  const isRoot = comm.rank === r;
  if (isRoot) requireTypedArray(where, 'recvbuf', recvbuf);
  if (!s && !isRoot) throw typeError(where, 'sendbuf may be IN_PLACE only at the root', sendbuf);
  const ref = (s ?? recvbuf)!;
  const esz = ref.BYTES_PER_ELEMENT;
  let lens: Float64Array | null = null, ds: Float64Array | null = null;
  if (isRoot) {
    if (s) sameType(where, s, recvbuf!);
    const c = countsOf(comm, where, 'counts', counts);
    if (s && c[comm.rank] !== s.length) throw rangeError(where, `counts[${comm.rank}] is ${c[comm.rank]} but sendbuf has ${s.length} elements`);
    lens = bytes(c, esz);
    ds = displsOr(comm, where, displs, c, esz);
    for (let i = 0; i < comm.size; i++) {
      if (ds[i] + lens[i] > recvbuf!.byteLength) throw rangeError(where, `recvbuf has ${recvbuf!.length} elements, too few for block ${i} (${c[i]} elements at ${ds[i] / esz})`);
    }
  }
  comm.label('Gatherv');
  mpi.gatherv(...comm.g(), s, isRoot ? recvbuf : null, lens, ds, r, false);
}

/** Scatters equal blocks of the root's sendbuf: member i gets recvbuf.length elements. */
export function Scatter(comm: CommCore, sendbuf: TypedArray | null, recvbuf: TypedArray | typeof IN_PLACE, root = 0): void {
  const where = 'comm.Scatter';
  comm.live(where);
  const r = comm.root(where, root);
  let n: number;
  if (recvbuf === IN_PLACE) {
    requireTypedArray(where, 'sendbuf', sendbuf);
    n = sendbuf!.length / comm.size;
  } else {
    n = requireTypedArray(where, 'recvbuf', recvbuf).length;
    if (comm.rank !== r) hintOverwrite(recvbuf); // its block fills all of it
  }
  Scatterv(comm, sendbuf, new Array(comm.size).fill(n), recvbuf, r);
}

/** Scatters blocks of counts[i] elements (at displs[i], default packed) of the root's sendbuf. */
export function Scatterv(comm: CommCore, sendbuf: TypedArray | null, counts: ArrayLike<number> | null, recvbuf: TypedArray | typeof IN_PLACE, root = 0, displs?: ArrayLike<number>): void {
  const where = 'comm.Scatterv';
  comm.live(where);
  const r = comm.root(where, root);
  const isRoot = comm.rank === r;
  const rb = recvbuf === IN_PLACE ? null : requireTypedArray(where, 'recvbuf', recvbuf);
  if (!rb && !isRoot) throw typeError(where, 'recvbuf may be IN_PLACE only at the root', recvbuf);
  let lens: Float64Array | null = null, ds: Float64Array | null = null;
  if (isRoot) {
    requireTypedArray(where, 'sendbuf', sendbuf);
    if (rb) sameType(where, sendbuf!, rb);
    const esz = sendbuf!.BYTES_PER_ELEMENT;
    const c = countsOf(comm, where, 'counts', counts);
    lens = bytes(c, esz);
    ds = displsOr(comm, where, displs, c, esz);
    for (let i = 0; i < comm.size; i++) {
      if (ds[i] + lens[i] > sendbuf!.byteLength) throw rangeError(where, `sendbuf has ${sendbuf!.length} elements, too few for block ${i} (${c[i]} elements at ${ds[i] / esz})`);
    }
    if (rb && rb.length < c[comm.rank]) throw rangeError(where, `recvbuf has ${rb.length} elements, counts[${comm.rank}] is ${c[comm.rank]}`);
  }
  comm.label('Scatterv');
  mpi.scatterv(...comm.g(), isRoot ? sendbuf : null, lens, ds, rb, r);
}

/** Every member gets every member's block: recvbuf holds size * sendbuf.length elements. */
export function Allgather(comm: CommCore, sendbuf: SendBuf, recvbuf: TypedArray): void {
  const where = 'comm.Allgather';
  comm.live(where);
  requireTypedArray(where, 'recvbuf', recvbuf);
  const s = sbuf(where, sendbuf);
  const n = s ? s.length : recvbuf.length / comm.size;
  Allgatherv(comm, sendbuf, recvbuf, new Array(comm.size).fill(n));
}

/** Every member gets blocks of counts[i] elements (at displs[i], default packed). */
export function Allgatherv(comm: CommCore, sendbuf: SendBuf, recvbuf: TypedArray, counts: ArrayLike<number>, displs?: ArrayLike<number>): void {
  const where = 'comm.Allgatherv';
  comm.live(where);
  requireTypedArray(where, 'recvbuf', recvbuf);
  const s = sbuf(where, sendbuf);
  if (s) sameType(where, s, recvbuf);
  const esz = recvbuf.BYTES_PER_ELEMENT;
  const c = countsOf(comm, where, 'counts', counts);
  if (s && c[comm.rank] !== s.length) throw rangeError(where, `counts[${comm.rank}] is ${c[comm.rank]} but sendbuf has ${s.length} elements`);
  const lens = bytes(c, esz), ds = displsOr(comm, where, displs, c, esz);
  for (let i = 0; i < comm.size; i++) {
    if (ds[i] + lens[i] > recvbuf.byteLength) throw rangeError(where, `recvbuf has ${recvbuf.length} elements, too few for block ${i}`);
  }
  comm.label('Allgatherv');
  mpi.gatherv(...comm.g(), s, recvbuf, lens, ds, 0, true);
}

/** Member i's block j (sendbuf.length / size elements) goes to member j's block i. */
export function Alltoall(comm: CommCore, sendbuf: TypedArray, recvbuf: TypedArray): void {
  const where = 'comm.Alltoall';
  comm.live(where);
  requireTypedArray(where, 'sendbuf', sendbuf);
  requireTypedArray(where, 'recvbuf', recvbuf);
  if (sendbuf.length % comm.size !== 0) throw rangeError(where, `sendbuf has ${sendbuf.length} elements, not a multiple of the communicator size ${comm.size}`);
  const n = sendbuf.length / comm.size;
  const c = new Array(comm.size).fill(n);
  Alltoallv(comm, sendbuf, c, recvbuf, c);
}

/** All-to-all with per-member counts and displacements (elements). */
export function Alltoallv(comm: CommCore, sendbuf: TypedArray, sendcounts: ArrayLike<number>, recvbuf: TypedArray, recvcounts: ArrayLike<number>, sdispls?: ArrayLike<number>, rdispls?: ArrayLike<number>): void {
  const where = 'comm.Alltoallv';
  comm.live(where);
  requireTypedArray(where, 'sendbuf', sendbuf);
  requireTypedArray(where, 'recvbuf', recvbuf);
  sameType(where, sendbuf, recvbuf);
  const esz = sendbuf.BYTES_PER_ELEMENT;
  const sc = countsOf(comm, where, 'sendcounts', sendcounts), rc = countsOf(comm, where, 'recvcounts', recvcounts);
  const sl = bytes(sc, esz), rl = bytes(rc, esz);
  const sd = displsOr(comm, where, sdispls, sc, esz), rd = displsOr(comm, where, rdispls, rc, esz);
  for (let i = 0; i < comm.size; i++) {
    if (sd[i] + sl[i] > sendbuf.byteLength) throw rangeError(where, `sendbuf has ${sendbuf.length} elements, too few for block ${i}`);
    if (rd[i] + rl[i] > recvbuf.byteLength) throw rangeError(where, `recvbuf has ${recvbuf.length} elements, too few for block ${i}`);
  }
  comm.label('Alltoallv');
  mpi.alltoallv(...comm.g(), sendbuf, sl, sd, recvbuf, rl, rd);
}

/** Element-wise reduction of sendbuf, then block i (counts[i] elements) goes to member i. */
export function ReduceScatter(comm: CommCore, sendbuf: SendBuf, recvbuf: TypedArray, counts: ArrayLike<number>, op: Op | ((a: any, b: any) => any) = SUM): void {
  const where = 'comm.ReduceScatter';
  comm.live(where);
  requireTypedArray(where, 'recvbuf', recvbuf);
  const c = countsOf(comm, where, 'counts', counts);
  const total = c.reduce((a, b) => a + b, 0);
  const s = sbuf(where, sendbuf);
  if (s && s.length !== total) throw rangeError(where, `sendbuf has ${s.length} elements, counts add up to ${total}`);
  if (recvbuf.length < c[comm.rank]) throw rangeError(where, `recvbuf has ${recvbuf.length} elements, counts[${comm.rank}] is ${c[comm.rank]}`);
  const C = recvbuf.constructor as new (n: number) => TypedArray;
  const tmp = new C(total);
  if (!s) {
    // In place: the input is in recvbuf (total elements).
    if (recvbuf.length < total) throw rangeError(where, `with IN_PLACE, recvbuf must hold all ${total} elements`);
    (tmp as any).set(recvbuf.subarray(0, total));
  }
  reduceBuf(comm, where, 0, s ?? IN_PLACE, s ? (comm.rank === 0 ? tmp : null) : tmp, op, 0);
  Scatterv(comm, comm.rank === 0 ? tmp : null, c, recvbuf.subarray(0, c[comm.rank]), 0);
}
