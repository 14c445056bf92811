/**
 * @internal What the parts of a communicator's implementation share (comm.ts: the public class
 * and point-to-point; coll-obj.ts and coll-buf.ts: collectives; context.ts: context ids): its
 * members, its data-plane contexts, argument checks that name the argument, and status handling.
 *
 * Context ids: each communicator owns two data-plane contexts, `ctx` for point-to-point and
 * `ctx + 1` for collectives, so that a collective never matches a user's ANY_TAG receive.
 */
import { MPIError, rangeError, typeError } from './errors.js';
import { decodeReceived, mpi, type Received, status as st } from './native.js';
import { Op } from './op.js';
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

/** @internal module state shared with index.ts. */
export const runtime = { finalized: false, worldSize: 1, worldRank: 0 };

let lastLabel = '';

/** @internal one communicator's members, contexts and checks. */
export class CommCore {
  /** World rank of each member; null = the world itself. */
  readonly ranks: Int32Array | null;
  readonly rank: number;
  readonly size: number;
  readonly ctx: number;
  readonly cctx: number;
  readonly name: string;
  freed = false;
  /** World rank -> rank in this communicator. */
  readonly toLocal: (w: number) => number;

  constructor(ranks: Int32Array | null, rank: number, ctx: number, name: string) {
    this.ranks = ranks;
    this.rank = rank;
    this.size = ranks ? ranks.length : runtime.worldSize;
    this.ctx = ctx;
    this.cctx = ctx + 1;
    this.name = name;
    if (ranks === null) this.toLocal = (w) => w;
    else {
      const map = new Map<number, number>();
      ranks.forEach((w, i) => map.set(w, i));
      this.toLocal = (w) => (w < 0 ? w : map.get(w) ?? w);
    }
  }

  /** The group argument of the binding's collectives. */
  g(): [Int32Array | null, number, number] {
    return [this.ranks, this.rank, this.cctx];
  }

  world(local: number): number {
    return local < 0 ? local : this.ranks ? this.ranks[local] : local;
  }

  live(where: string): void {
    if (runtime.finalized) throw new MPIError('ERR_FINALIZED', `${where}: MPI has been finalized`);
    if (this.freed) throw new MPIError('ERR_COMM', `${where}: ${this.name} has been freed`);
  }

  /** Names the collective in data-plane timeout messages (one native call, only on change). */
  label(l: string): void {
    if (l !== lastLabel) {
      lastLabel = l;
      mpi.setLabel(l);
    }
  }

  dest(where: string, name: string, r: unknown): number {
    if (typeof r !== 'number' || !Number.isInteger(r)) throw typeError(where, `${name} must be an integer rank`, r);
    if (r === PROC_NULL) return r;
    if (r < 0 || r >= this.size) throw rangeError(where, `${name} ${r} out of range for a communicator of size ${this.size}`);
    return this.world(r);
  }

  source(where: string, r: unknown): number {
    if (r === ANY_SOURCE) return r;
    return this.dest(where, 'source', r);
  }

  tag(where: string, t: unknown, any: boolean): number {
    if (typeof t !== 'number' || !Number.isInteger(t)) throw typeError(where, 'tag must be an integer', t);
    if (any && t === ANY_TAG) return t;
    if (t < 0 || t > TAG_UB) throw rangeError(where, `tag ${t} out of range 0..${TAG_UB}${any ? ' (or ANY_TAG)' : ''}`);
    return t;
  }

  root(where: string, root: unknown): number {
    if (typeof root !== 'number' || !Number.isInteger(root)) throw typeError(where, 'root must be an integer rank', root);
    if (root < 0 || root >= this.size) throw rangeError(where, `root ${root} out of range for a communicator of size ${this.size}`);
    return root;
  }

  op(where: string, op: unknown): Op {
    if (op instanceof Op) return op;
    if (typeof op === 'function') return Op.create(op as (a: unknown, b: unknown) => unknown);
    throw typeError(where, 'op must be an MPI.Op (MPI.SUM, ...) or a function (a, b) => result', op);
  }

  /** The last receive's status, in this communicator's ranks. */
  status(status: Status | undefined, fallbackType = 0): Status {
    const s = status ?? new Status();
    return s._set(st[0] < 0 ? st[0] : this.toLocal(st[0]), st[1], st[2], st[3] ?? fallbackType);
  }

  /** The value of a blocking object receive: decoded, or (a typed message) the binding's typed array. */
  decode(got: Received): unknown {
    return got === null ? undefined : decodeReceived(got); // null: PROC_NULL
  }
}
