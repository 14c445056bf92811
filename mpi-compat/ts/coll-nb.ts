/**
 * @internal Non-blocking collectives (MPI_Ibarrier ... MPI_Ialltoall) and the schedules that run
 * them, and neighbourhood exchanges (topo.ts) on the same engine.
 *
 * A schedule is built here, in TypeScript, as rounds of messages and local steps over the
 * caller's arrays and temporaries; the binding runs it (native/addon/mpi/sched.cc) from the data
 * plane's progress hook, so a collective moves on while this rank blocks in any other MPI call,
 * and while it awaits anything (the event loop's wake-ups make progress). A round's messages are
 * posted when it starts; the next round starts once they all completed.
 *
 * Completion is a data-plane request like any other: the schedule, once done, sends a 4-byte
 * message (0, or 1 for a failure) to this rank on the doorbell context, and the Request the
 * caller holds is the receive of that message. So `wait`, `test`, `await`, `Request.waitany`
 * and the health checks and timeouts of the data plane apply unchanged, and collective
 * requests mix with point-to-point ones in one `waitall`.
 *
 * Ordering: members start the collectives of a communicator in the same order (MPI's rule), so
 * the n-th non-blocking collective has the same sequence number on every member; its messages
 * carry it in their tag, on a context of their own (the communicator's collective context with
 * bit 30 set), and never meet another collective's.
 *
 *   tag = (seq mod 2^24) << 6 | part      part: 0, or the slot of a neighbourhood exchange
 *
 * Algorithms (every message one copy; the data plane moves large ones by a single
 * process_vm_readv on one host): Ibarrier by dissemination, Ibcast a binomial tree, Ireduce a
 * binomial tree to rank 0 in rank order (non-commutative ops stay correct) then to the root,
 * Iallreduce recursive doubling for commutative ops on power-of-two groups, else Ireduce to
 * rank 0 and Ibcast; Igather, Iscatter, Iallgather and Ialltoall one round of direct messages.
 */
import { PROC_NULL, runtime, TAG_UB, type CommCore } from './core.js';
import { IN_PLACE, nativeOp, type SendBuf } from './coll-buf.js';
import { makeNativeError, MPIError, rangeError, typeError } from './errors.js';
import { requireTypedArray, TYPE_NAMES, typeIdOf, type TypedArray } from './datatype.js';
import { mpi } from './native.js';
import { ext } from './native-ext.js';
import { Request, ReqKind, type CollInfo } from './request.js';

/** Context of the doorbell messages that complete collective requests (never a communicator's). */
const DOOR_CTX = 0x7ffffff0;
/** Bit that turns a communicator's collective context into its schedules' context. */
const NBC_BIT = 0x40000000;
/** The wire id of int32, the doorbell's element type (datatype.ts). */
const INT32 = 6;

const seqs = new WeakMap<CommCore, number>();
let doorTag = 0;

/** The context of `c`'s schedules. */
export function nbcCtx(c: CommCore): number {
  return (c.cctx | NBC_BIT) >>> 0;
}

/** The tag base of `c`'s next collective schedule (collective order is the same everywhere). */
export function nextTag(c: CommCore): number {
  const s = seqs.get(c) ?? 0;
  seqs.set(c, s + 1);
  return (s & 0xffffff) << 6;
}

/** Builds a schedule: ops of 8 numbers [kind, peer, part, a, aoff, b, boff, len]. */
export class Sched {
  /** Buffers the schedule reads and writes: the caller's arrays. Temporaries are ids < 0. */
  readonly bufs: TypedArray[] = [];
  readonly temps: number[] = [];
  readonly ops: number[] = [];

  /** The id of a caller's array (once per array). */
  buf(a: TypedArray): number {
    const i = this.bufs.indexOf(a);
    if (i >= 0) return i;
    this.bufs.push(a);
    return this.bufs.length - 1;
  }

  /** A temporary of `bytes` bytes, owned by the schedule. */
  tmp(bytes: number): number {
    this.temps.push(bytes);
    return -this.temps.length;
  }

  #op(kind: number, peer: number, part: number, a: number, aoff: number, b: number, boff: number, len: number): void {
    this.ops.push(kind, peer, part, a, aoff, b, boff, len);
  }

  /** Send `len` bytes of buffer `b` at `off` to world rank `peer`. */
  send(peer: number, b: number, off: number, len: number, part = 0): void {
    if (peer !== PROC_NULL) this.#op(1, peer, part, b, off, 0, 0, len);
  }

  /** Receive `len` bytes into buffer `b` at `off` from world rank `peer`. */
  recv(peer: number, b: number, off: number, len: number, part = 0): void {
    if (peer !== PROC_NULL) this.#op(2, peer, part, b, off, 0, 0, len);
  }

  /** Copy `len` bytes (a local step, when its round starts). */
  copy(src: number, soff: number, dst: number, doff: number, len: number): void {
    if (len > 0 && !(src === dst && soff === doff)) this.#op(3, 0, 0, src, soff, dst, doff, len);
  }

  /** inout = in op inout over `len` bytes; `in` holds the lower ranks' contribution. */
  combine(inb: number, inoff: number, inout: number, iooff: number, len: number): void {
    if (len > 0) this.#op(4, 0, 0, inb, inoff, inout, iooff, len);
  }

  /** Ends the current round (empty rounds vanish). */
  round(): void {
    const n = this.ops.length;
    if (n > 0 && this.ops[n - 8] !== 0) this.#op(0, 0, 0, 0, 0, 0, 0, 0);
  }
}

/** How a reduction combines: the data plane's op code, or a JavaScript function on views. */
export type Combine = { code: number; fn: ((inb: TypedArray, inout: TypedArray) => void) | null; dtype: number; commute: boolean };

/** The combine of `op` on element type `dtype`, checked as the blocking twins check it. */
export function combineOf(where: string, c: CommCore, op: unknown, dtype: number): Combine {
  const o = c.op(where, op);
  const code = nativeOp(o, dtype);
  if (code >= 0) return { code, fn: null, dtype, commute: o.commute };
  if ((o.name === 'BAND' || o.name === 'BOR' || o.name === 'BXOR') && (dtype === 8 || dtype === 9)) {
    throw new MPIError('ERR_OP', `${where}: ${o.name} is not defined for ${TYPE_NAMES[dtype]} arrays`);
  }
  return { code: -1, fn: (inb, inout) => o.applyInto(inb, inout, inout), dtype, commute: o.commute };
}

/**
 * Starts `s` on `c` and returns the request that completes with it, yielding `result`.
 * `label` names the call in errors ("comm.Ibcast").
 */
export function start<T>(c: CommCore, label: string, tag: number, s: Sched, result: T, comb?: Combine): Request<T> {
  s.round();
  const door = new Int32Array(1);
  const dt = doorTag;
  doorTag = doorTag >= TAG_UB ? 0 : doorTag + 1;
  const me = runtime.worldRank;
  const id = mpi.irecv(door, INT32, me, DOOR_CTX, dt);
  try {
    ext.schedStart(nbcCtx(c), tag, DOOR_CTX, dt, s.bufs, Float64Array.from(s.temps), Float64Array.from(s.ops), comb ? (comb.fn ?? comb.code) : -1, comb?.dtype ?? 0, label);
  } catch (e) {
    mpi.free(id);
    throw e;
  }
  const info: CollInfo = {
    label,
    settle: () => {
      if (door[0] !== 0) {
        const m = ext.schedError(dt);
        throw makeNativeError(m?.[0] ?? 'ERR_INTERN', `${label}: ${m?.[1] ?? 'the collective failed'}`);
      }
      return result;
    },
    what: () => ext.schedWhat(dt) ?? 'the collective',
  };
  return new Request<T>(id, ReqKind.Coll, () => PROC_NULL, info);
}

/** Runs `s` to completion (the blocking neighbourhood collectives). */
export function run(c: CommCore, label: string, tag: number, s: Sched, comb?: Combine): void {
  start(c, label, tag, s, undefined, comb).wait();
}

// ---- building blocks (ranks are communicator ranks; c.world maps them) ------------------------

/** Binomial tree from `root`: `len` bytes of buffer b at off reach every member. */
function bcastTree(c: CommCore, s: Sched, root: number, b: number, off: number, len: number): void {
  const n = c.size, vr = (c.rank - root + n) % n;
  let mask = 1;
  while (mask < n) {
    if (vr & mask) {
      s.recv(c.world((vr - mask + root) % n), b, off, len);
      s.round();
      break;
    }
    mask <<= 1;
  }
  for (mask >>= 1; mask > 0; mask >>= 1) if (vr + mask < n) s.send(c.world((vr + mask + root) % n), b, off, len);
  s.round();
}

/**
 * Binomial reduction to rank 0 in rank order: after step k this rank holds ranks
 * [rank, rank + 2^k) and combines its child's [rank + 2^k, rank + 2^(k+1)) as the higher side.
 * Returns the buffer holding the result at rank 0, null elsewhere.
 */
function reduce0(c: CommCore, s: Sched, inb: number, len: number): number | null {
  let acc = inb;
  const bufs: number[] = [];
  let next = 0;
  for (let mask = 1; mask < c.size; mask <<= 1) {
    if (c.rank & mask) {
      s.send(c.world(c.rank - mask), acc, 0, len);
      s.round();
      return null;
    }
    if (c.rank + mask < c.size) {
      const into = bufs[next] ??= s.tmp(len);
      s.recv(c.world(c.rank + mask), into, 0, len);
      s.round();
      s.combine(acc, 0, into, 0, len); // into = acc (lower ranks) op into
      acc = into;
      next ^= 1;
    }
  }
  return acc;
}

// ---- argument checks shared with the blocking twins' wording -----------------------------------

function sameType(where: string, a: TypedArray, b: TypedArray): void {
  const ia = typeIdOf(a), ib = typeIdOf(b);
  if (ia !== ib) throw new MPIError('ERR_TYPE', `${where}: sendbuf is ${TYPE_NAMES[ia]} but recvbuf is ${TYPE_NAMES[ib]}`);
}

function sbuf(where: string, sendbuf: unknown): TypedArray | null {
  if (sendbuf === IN_PLACE) return null;
  return requireTypedArray(where, 'sendbuf', sendbuf);
}


// ---- the collectives ---------------------------------------------------------------------------

/** MPI_Ibarrier. */
export function Ibarrier(c: CommCore, where = 'comm.Ibarrier'): Request<void> {
  c.live(where);
  const s = new Sched(), tag = nextTag(c), n = c.size;
  const none = s.tmp(0);
  for (let k = 1; k < n; k <<= 1) {
    s.send(c.world((c.rank + k) % n), none, 0, 0);
    s.recv(c.world((c.rank - k + n) % n), none, 0, 0);
    s.round();
  }
  return start(c, where, tag, s, undefined);
}

/** MPI_Ibcast: the root's `buf` into every member's `buf`. */
export function Ibcast<B extends TypedArray>(c: CommCore, buf: B, root: number): Request<B> {
  const where = 'comm.Ibcast';
  c.live(where);
  requireTypedArray(where, 'buf', buf);
  const r = c.root(where, root);
  const s = new Sched(), tag = nextTag(c);
  if (buf.byteLength > 0 && c.size > 1) bcastTree(c, s, r, s.buf(buf), 0, buf.byteLength);
  return start(c, where, tag, s, buf);
}

/** Ireduce (root >= 0) or Iallreduce (root < 0). */
function ireduce<B extends TypedArray>(c: CommCore, where: string, sendbuf: SendBuf, recvbuf: B | null, op: unknown, root: number): Request<B | null> {
  c.live(where);
  const all = root < 0;
  const isRoot = all || c.rank === root;
  const sb = sbuf(where, sendbuf);
  if (isRoot || recvbuf) requireTypedArray(where, 'recvbuf', recvbuf);
  if (!sb && !isRoot) throw typeError(where, 'sendbuf may be IN_PLACE only at the root', sendbuf);
  if (sb && recvbuf) {
    sameType(where, sb, recvbuf);
    if (isRoot && recvbuf.length < sb.length) throw rangeError(where, `recvbuf has ${recvbuf.length} elements, sendbuf has ${sb.length}`);
  }
  const ref = (sb ?? recvbuf)!;
  const dtype = typeIdOf(ref);
  const comb = combineOf(where, c, op, dtype);
  const len = sb ? sb.byteLength : recvbuf!.byteLength;
  const s = new Sched(), tag = nextTag(c);
  const out = isRoot ? s.buf(recvbuf!) : -1;
  // The input: sendbuf, or (in place) a copy of recvbuf taken when the schedule starts.
  let inb: number;
  if (sb) inb = s.buf(sb);
  else {
    inb = s.tmp(len);
    s.copy(out, 0, inb, 0, len);
  }
  if (len === 0) return start(c, where, tag, s, recvbuf, comb);
  const n = c.size;
  if (all && n > 1 && (n & (n - 1)) === 0 && comb.commute) {
    // Recursive doubling: combine with the partner at distance 1, 2, 4, ...; the op commutes.
    let acc = inb;
    for (let mask = 1; mask < n; mask <<= 1) {
      const into = s.tmp(len);
      s.send(c.world(c.rank ^ mask), acc, 0, len);
      s.recv(c.world(c.rank ^ mask), into, 0, len);
      s.round();
      s.combine(acc, 0, into, 0, len);
      acc = into;
    }
    s.copy(acc, 0, out, 0, len);
    return start(c, where, tag, s, recvbuf, comb);
  }
  const res = reduce0(c, s, inb, len);
  if (all) {
    if (c.rank === 0) s.copy(res!, 0, out, 0, len);
    if (n > 1) bcastTree(c, s, 0, out, 0, len);
  } else if (root === 0) {
    if (c.rank === 0) s.copy(res!, 0, out, 0, len);
  } else {
    if (c.rank === 0) s.send(c.world(root), res!, 0, len);
    if (c.rank === root) s.recv(c.world(0), out, 0, len);
    s.round();
  }
  return start(c, where, tag, s, recvbuf, comb);
}

/** MPI_Ireduce: element-wise reduction into the root's recvbuf. */
export function Ireduce<B extends TypedArray>(c: CommCore, sendbuf: SendBuf, recvbuf: B | null, op: unknown, root: number): Request<B | null> {
  return ireduce(c, 'comm.Ireduce', sendbuf, recvbuf, op, c.root('comm.Ireduce', root));
}

/** MPI_Iallreduce: element-wise reduction into every member's recvbuf. */
export function Iallreduce<B extends TypedArray>(c: CommCore, sendbuf: SendBuf, recvbuf: B, op: unknown): Request<B> {
  return ireduce(c, 'comm.Iallreduce', sendbuf, recvbuf, op, -1) as Request<B>;
}

/** MPI_Igather: equal blocks into the root's recvbuf (size * sendbuf.length elements). */
export function Igather<B extends TypedArray>(c: CommCore, sendbuf: SendBuf, recvbuf: B | null, root: number): Request<B | null> {
  const where = 'comm.Igather';
  c.live(where);
  const r = c.root(where, root);
  const isRoot = c.rank === r;
  const sb = sbuf(where, sendbuf);
  if (!sb && !isRoot) throw typeError(where, 'sendbuf may be IN_PLACE only at the root', sendbuf);
  if (isRoot) requireTypedArray(where, 'recvbuf', recvbuf);
  let len: number;
  if (sb) len = sb.byteLength;
  else {
    if (recvbuf!.length % c.size !== 0) throw rangeError(where, `recvbuf has ${recvbuf!.length} elements, not a multiple of the communicator size ${c.size}`);
    len = recvbuf!.byteLength / c.size;
  }
  if (isRoot) {
    if (sb) sameType(where, sb, recvbuf!);
    if (recvbuf!.byteLength < len * c.size) throw rangeError(where, `recvbuf has ${recvbuf!.length} elements, the root needs ${(len * c.size) / recvbuf!.BYTES_PER_ELEMENT}`);
  }
  const s = new Sched(), tag = nextTag(c);
  if (isRoot) {
    const rb = s.buf(recvbuf!);
    for (let i = 0; i < c.size; i++) {
      if (i === c.rank) { if (sb) s.copy(s.buf(sb), 0, rb, i * len, len); }
      else s.recv(c.world(i), rb, i * len, len);
    }
  } else s.send(c.world(r), s.buf(sb!), 0, len);
  return start(c, where, tag, s, recvbuf);
}

/** MPI_Iscatter: equal blocks of the root's sendbuf; member i gets recvbuf.length elements. */
export function Iscatter<B extends TypedArray>(c: CommCore, sendbuf: TypedArray | null, recvbuf: B | typeof IN_PLACE, root: number): Request<B | undefined> {
  const where = 'comm.Iscatter';
  c.live(where);
  const r = c.root(where, root);
  const isRoot = c.rank === r;
  const rb = recvbuf === IN_PLACE ? null : requireTypedArray(where, 'recvbuf', recvbuf);
  if (!rb && !isRoot) throw typeError(where, 'recvbuf may be IN_PLACE only at the root', recvbuf);
  let len: number;
  if (isRoot) {
    requireTypedArray(where, 'sendbuf', sendbuf);
    if (rb) sameType(where, sendbuf!, rb);
    if (sendbuf!.length % c.size !== 0) throw rangeError(where, `sendbuf has ${sendbuf!.length} elements, not a multiple of the communicator size ${c.size}`);
    len = sendbuf!.byteLength / c.size;
    if (rb && rb.byteLength < len) throw rangeError(where, `recvbuf has ${rb.length} elements, each block has ${len / rb.BYTES_PER_ELEMENT}`);
  } else len = rb!.byteLength;
  const s = new Sched(), tag = nextTag(c);
  if (isRoot) {
    const sbid = s.buf(sendbuf!);
    for (let i = 0; i < c.size; i++) {
      if (i === c.rank) { if (rb) s.copy(sbid, i * len, s.buf(rb), 0, len); }
      else s.send(c.world(i), sbid, i * len, len);
    }
  } else s.recv(c.world(r), s.buf(rb!), 0, len);
  return start(c, where, tag, s, rb ? (rb as B) : undefined);
}

/** MPI_Iallgather: every member gets every member's block (recvbuf: size * sendbuf.length elements). */
export function Iallgather<B extends TypedArray>(c: CommCore, sendbuf: SendBuf, recvbuf: B): Request<B> {
  const where = 'comm.Iallgather';
  c.live(where);
  requireTypedArray(where, 'recvbuf', recvbuf);
  const sb = sbuf(where, sendbuf);
  if (sb) sameType(where, sb, recvbuf);
  else if (recvbuf.length % c.size !== 0) throw rangeError(where, `recvbuf has ${recvbuf.length} elements, not a multiple of the communicator size ${c.size}`);
  const len = sb ? sb.byteLength : recvbuf.byteLength / c.size;
  if (recvbuf.byteLength < len * c.size) throw rangeError(where, `recvbuf has ${recvbuf.length} elements, too few for ${c.size} blocks of ${len / recvbuf.BYTES_PER_ELEMENT}`);
  const s = new Sched(), tag = nextTag(c);
  const rb = s.buf(recvbuf);
  const mine = sb ? s.buf(sb) : rb, moff = sb ? 0 : c.rank * len;
  for (let i = 0; i < c.size; i++) {
    if (i === c.rank) s.copy(mine, moff, rb, i * len, len);
    else {
      s.send(c.world(i), mine, moff, len);
      s.recv(c.world(i), rb, i * len, len);
    }
  }
  return start(c, where, tag, s, recvbuf);
}

/** MPI_Ialltoall: member i's block j goes to member j's block i. */
export function Ialltoall<B extends TypedArray>(c: CommCore, sendbuf: TypedArray, recvbuf: B): Request<B> {
  const where = 'comm.Ialltoall';
  c.live(where);
  requireTypedArray(where, 'sendbuf', sendbuf);
  requireTypedArray(where, 'recvbuf', recvbuf);
  sameType(where, sendbuf, recvbuf);
  if (sendbuf.length % c.size !== 0) throw rangeError(where, `sendbuf has ${sendbuf.length} elements, not a multiple of the communicator size ${c.size}`);
  const len = sendbuf.byteLength / c.size;
  if (recvbuf.byteLength < sendbuf.byteLength) throw rangeError(where, `recvbuf has ${recvbuf.length} elements, sendbuf has ${sendbuf.length}`);
  const s = new Sched(), tag = nextTag(c);
  const sbid = s.buf(sendbuf), rb = s.buf(recvbuf);
  for (let i = 0; i < c.size; i++) {
    if (i === c.rank) s.copy(sbid, i * len, rb, i * len, len);
    else {
      s.send(c.world(i), sbid, i * len, len);
      s.recv(c.world(i), rb, i * len, len);
    }
  }
  return start(c, where, tag, s, recvbuf);
}
