/**
 * Process topologies (mpi4py's `Cartcomm`, `Graphcomm`, `Distgraphcomm`): communicators that
 * know a neighbourhood. `MPI.computeDims` is MPI_Dims_create; `comm.createCart`,
 * `comm.createGraph` and `comm.createDistGraphAdjacent` make them (collective); neighbourhood
 * collectives move blocks between neighbours on the schedule engine of coll-nb.ts.
 *
 * `reorder` is accepted and ignored, as MPI allows: every rank keeps its rank (on one host no
 * placement is better than another). Ranks beyond the grid or graph get null. Cartesian ranks
 * are row-major (the last dimension varies fastest), as MPI requires.
 *
 * Neighbour order, as MPI defines it: Cartesian, for each dimension d the -1 neighbour then the
 * +1 neighbour (MPI.PROC_NULL at an open edge: its block is not sent and its receive slot is
 * left as it was); graph, the node's edges in order; distributed graph, sources (receive) and
 * destinations (send) as given. Each Cartesian message carries the slot it lands in, so in a
 * periodic dimension of size 1 or 2, where both neighbours are one rank, every block still lands
 * in the slot of the direction it travelled (MPI-4's reading; MPICH does the same).
 */
import { Comm, setTopoHooks } from './comm.js';
import { PROC_NULL, type CommCore } from './core.js';
import { agreeCtx } from './context.js';
import { nbcCtx, nextTag, run, Sched, start } from './coll-nb.js';
import { OBJECT_TYPE, requireTypedArray, TYPE_NAMES, typeIdOf, type TypedArray } from './datatype.js';
import { MPIError, rangeError, typeError } from './errors.js';
import { decodeReceived, mpi } from './native.js';
import { Request } from './request.js';
import { encode } from './serialization.js';

/** Topology kinds (MPI_CART, MPI_GRAPH, MPI_DIST_GRAPH; MPICH's values). */
export const CART = 1;
/** A general graph topology. */
export const GRAPH = 2;
/** A distributed graph topology. */
export const DIST_GRAPH = 3;

/** Options of comm.createCart. */
export interface CartOptions {
  /** Periodic (wrap-around) dimensions: one boolean per dimension, or one for all (default false). */
  periods?: boolean | readonly boolean[];
  /** Accepted and ignored: ranks keep their rank (MPI allows it). */
  reorder?: boolean;
}

function intArray(where: string, name: string, v: unknown): number[] {
  if (!Array.isArray(v) && !ArrayBuffer.isView(v)) throw typeError(where, `${name} must be an array of integers`, v);
  const a = Array.from(v as ArrayLike<number>);
  a.forEach((x, i) => {
    if (typeof x !== 'number' || !Number.isInteger(x)) throw typeError(where, `${name}[${i}] must be an integer`, x);
  });
  return a;
}

/**
 * The non-increasing factorisation of `nnodes` over the free (0) entries of `dims` with the
 * smallest spread (largest minus smallest factor): a depth-first search over divisors.
 */
function search(m: number, k: number, maxf: number, cur: number[], depth: number, best: { dims: number[]; spread: number }): void {
  if (depth === k - 1) {
    if (m > maxf) return;
    cur[depth] = m;
    const spread = cur[0] - cur[depth];
    if (best.spread < 0 || spread < best.spread) best.dims = cur.slice(0, k), best.spread = spread;
    return;
  }
  for (let f = Math.min(maxf, m); f >= 1; f--) {
    if (m % f) continue;
    let reach = 1;
    for (let i = 0; i < k - depth - 1 && reach < m / f; i++) reach *= f;
    if (reach < m / f) break;
    cur[depth] = f;
    search(m / f, k, f, cur, depth + 1, best);
  }
}

/**
 * A balanced grid of `nnodes` processes (MPI_Dims_create): `dims` is the number of dimensions,
 * or an array whose 0 entries are chosen (non-increasing) and whose other entries are kept.
 */
export function computeDims(nnodes: number, dims: number | readonly number[]): number[] {
  const where = 'MPI.computeDims';
  if (typeof nnodes !== 'number' || !Number.isInteger(nnodes)) throw typeError(where, 'nnodes must be an integer', nnodes);
  if (nnodes < 1) throw rangeError(where, `nnodes ${nnodes} must be positive`);
  let d: number[];
  if (typeof dims === 'number') {
    if (!Number.isInteger(dims) || dims < 0) throw rangeError(where, `dims ${dims} must be a non-negative integer (the number of dimensions) or an array`);
    d = new Array(dims).fill(0);
  } else d = intArray(where, 'dims', dims);
  let fixed = 1, free = 0;
  d.forEach((x, i) => {
    if (x < 0) throw rangeError(where, `dims[${i}] is ${x}: entries must be 0 (to choose) or positive`);
    if (x > 0) fixed *= x;
    else free++;
  });
  if (nnodes % fixed !== 0) throw rangeError(where, `the given dims multiply to ${fixed}, which does not divide nnodes ${nnodes}`);
  if (free === 0) {
    if (fixed !== nnodes) throw rangeError(where, `dims multiply to ${fixed}, not nnodes ${nnodes}`);
    return d;
  }
  const best = { dims: [] as number[], spread: -1 };
  search(nnodes / fixed, free, nnodes / fixed, new Array(free).fill(0), 0, best);
  let k = 0;
  return d.map((x) => (x === 0 ? best.dims[k++] : x));
}

/** @internal the members of `c`'s first n ranks (in rank order) as world ranks. */
function firstRanks(c: CommCore, n: number): Int32Array {
  return Int32Array.from({ length: n }, (_, i) => c.world(i));
}

// ---- neighbourhood exchanges (every topology) --------------------------------------------------

/** Who this rank receives from and sends to, in MPI's neighbour order, with the slot tags. */
interface Neighbours {
  sources: number[];    // comm ranks (or PROC_NULL)
  dests: number[];
  recvParts: number[];  // the tag part of the message arriving in receive slot i
  sendParts: number[];  // the tag part of the message sent from send slot i
}

function checkBlocks(where: string, c: CommCore, nb: Neighbours, sendbuf: TypedArray, recvbuf: TypedArray, gather: boolean): number {
  requireTypedArray(where, 'sendbuf', sendbuf);
  requireTypedArray(where, 'recvbuf', recvbuf);
  if (typeIdOf(sendbuf) !== typeIdOf(recvbuf)) throw new MPIError('ERR_TYPE', `${where}: sendbuf is ${TYPE_NAMES[typeIdOf(sendbuf)]} but recvbuf is ${TYPE_NAMES[typeIdOf(recvbuf)]}`);
  const nin = nb.sources.length, nout = nb.dests.length;
  let len: number;
  if (gather) len = sendbuf.byteLength;
  else if (nout > 0) {
    if (sendbuf.length % nout !== 0) throw rangeError(where, `sendbuf has ${sendbuf.length} elements, not a multiple of the ${nout} neighbours`);
    len = sendbuf.byteLength / nout;
  } else len = nin > 0 ? Math.floor(recvbuf.length / nin) * recvbuf.BYTES_PER_ELEMENT : 0;
  if (recvbuf.byteLength < len * nin) throw rangeError(where, `recvbuf has ${recvbuf.length} elements, too few for ${nin} neighbours' blocks of ${len / recvbuf.BYTES_PER_ELEMENT}`);
  return len;
}

function exchange(c: CommCore, nb: Neighbours, where: string, sendbuf: TypedArray, recvbuf: TypedArray, gather: boolean, sched: Sched): number {
  const len = checkBlocks(where, c, nb, sendbuf, recvbuf, gather);
  const sb = sched.buf(sendbuf), rb = sched.buf(recvbuf);
  nb.sources.forEach((s, i) => sched.recv(c.world(s), rb, i * len, len, nb.recvParts[i]));
  nb.dests.forEach((d, i) => sched.send(c.world(d), sb, gather ? 0 : i * len, len, nb.sendParts[i]));
  return len;
}

/** Object neighbour exchange: values[i] to dests[i]; the value from each source (undefined for PROC_NULL). */
function exchangeObjects(c: CommCore, nb: Neighbours, where: string, values: unknown[]): unknown[] {
  const ctx = nbcCtx(c), tag = nextTag(c);
  const recvs = nb.sources.map((s, i) => (s === PROC_NULL ? 0 : mpi.irecv(null, -1, c.world(s), ctx, tag | nb.recvParts[i])));
  const sends = nb.dests.map((d, i) => (d === PROC_NULL ? 0 : mpi.isend(encode(values[i], where), OBJECT_TYPE, c.world(d), ctx, tag | nb.sendParts[i], 0)));
  try {
    for (const id of sends) if (id) mpi.wait(id);
    return recvs.map((id) => {
      if (!id) return undefined;
      mpi.wait(id);
      return decodeReceived(mpi.result(id)!);
    });
  } finally {
    for (const id of [...recvs, ...sends]) if (id) mpi.free(id);
  }
}

/** The neighbourhood collectives every topology has, over its neighbour lists. */
abstract class TopoComm extends Comm {
  /** @internal this rank's neighbours. */
  abstract _neighbours(): Neighbours;

  /** Every neighbour's `sendbuf` into consecutive blocks of `recvbuf`, in neighbour order (MPI_Neighbor_allgather). */
  Neighbor_allgather(sendbuf: TypedArray, recvbuf: TypedArray): void {
    const c = Comm._core(this), where = 'comm.Neighbor_allgather';
    c.live(where);
    const s = new Sched(), tag = nextTag(c);
    exchange(c, this._neighbours(), where, sendbuf, recvbuf, true, s);
    run(c, where, tag, s);
  }

  /** Block i of `sendbuf` to neighbour i, block i of `recvbuf` from it (MPI_Neighbor_alltoall). */
  Neighbor_alltoall(sendbuf: TypedArray, recvbuf: TypedArray): void {
    const c = Comm._core(this), where = 'comm.Neighbor_alltoall';
    c.live(where);
    const s = new Sched(), tag = nextTag(c);
    exchange(c, this._neighbours(), where, sendbuf, recvbuf, false, s);
    run(c, where, tag, s);
  }

  /** Non-blocking Neighbor_allgather; the request yields recvbuf. */
  Ineighbor_allgather<B extends TypedArray>(sendbuf: TypedArray, recvbuf: B): Request<B> {
    const c = Comm._core(this), where = 'comm.Ineighbor_allgather';
    c.live(where);
    const s = new Sched(), tag = nextTag(c);
    exchange(c, this._neighbours(), where, sendbuf, recvbuf, true, s);
    return start(c, where, tag, s, recvbuf);
  }

  /** Non-blocking Neighbor_alltoall; the request yields recvbuf. */
  Ineighbor_alltoall<B extends TypedArray>(sendbuf: TypedArray, recvbuf: B): Request<B> {
    const c = Comm._core(this), where = 'comm.Ineighbor_alltoall';
    c.live(where);
    const s = new Sched(), tag = nextTag(c);
    exchange(c, this._neighbours(), where, sendbuf, recvbuf, false, s);
    return start(c, where, tag, s, recvbuf);
  }

  /** `value` to every neighbour; returns each neighbour's value in neighbour order (undefined for MPI.PROC_NULL). */
  neighborAllgather<T = any>(value: unknown): (T | undefined)[] {
    const c = Comm._core(this);
    c.live('comm.neighborAllgather');
    const nb = this._neighbours();
    return exchangeObjects(c, nb, 'comm.neighborAllgather', nb.dests.map(() => value)) as (T | undefined)[];
  }

  /** values[i] to neighbour i; returns what each neighbour sent here (undefined for MPI.PROC_NULL). */
  neighborAlltoall<T = any>(values: readonly unknown[]): (T | undefined)[] {
    const c = Comm._core(this), where = 'comm.neighborAlltoall';
    c.live(where);
    const nb = this._neighbours();
    if (!Array.isArray(values)) throw typeError(where, `values must be an array of ${nb.dests.length} values, one per neighbour`, values);
    if (values.length !== nb.dests.length) throw rangeError(where, `values has ${values.length} items, this rank has ${nb.dests.length} neighbours`);
    return exchangeObjects(c, nb, where, [...values]) as (T | undefined)[];
  }
}

// ---- Cartesian ---------------------------------------------------------------------------------

/** A communicator with a Cartesian grid (mpi4py's Cartcomm). */
export class Cartcomm extends TopoComm {
  /** Processes along each dimension. */
  readonly dims: readonly number[];
  /** Whether each dimension wraps around. */
  readonly periods: readonly boolean[];
  /** This process's coordinates. */
  readonly coords: readonly number[];

  /** @internal use comm.createCart or cart.sub. */
  constructor(ranks: Int32Array | null, rank: number, ctx: number, name: string, dims: readonly number[], periods: readonly boolean[]) {
    super(ranks, rank, ctx, name);
    this.dims = Object.freeze([...dims]);
    this.periods = Object.freeze([...periods]);
    this.coords = Object.freeze(this.#coords(rank));
  }

  /** Number of dimensions. */
  get ndim(): number {
    return this.dims.length;
  }

  /** The topology kind: MPI.CART. */
  get topology(): number {
    return CART;
  }

  #coords(rank: number): number[] {
    const out = new Array<number>(this.dims.length);
    for (let d = this.dims.length - 1; d >= 0; d--) {
      out[d] = rank % this.dims[d];
      rank = Math.floor(rank / this.dims[d]);
    }
    return out;
  }

  /** Rank of coords (periodic dimensions wrap); -1 when outside a non-periodic one. */
  #rank(coords: readonly number[]): number {
    let r = 0;
    for (let d = 0; d < this.dims.length; d++) {
      let x = coords[d];
      const n = this.dims[d];
      if (this.periods[d]) x = ((x % n) + n) % n;
      else if (x < 0 || x >= n) return -1;
      r = r * n + x;
    }
    return r;
  }

  /** The coordinates of `rank` (MPI_Cart_coords). */
  getCoords(rank: number): number[] {
    const where = 'cart.getCoords';
    if (typeof rank !== 'number' || !Number.isInteger(rank)) throw typeError(where, 'rank must be an integer', rank);
    if (rank < 0 || rank >= this.size) throw rangeError(where, `rank ${rank} out of range for a communicator of size ${this.size}`);
    return this.#coords(rank);
  }

  /** The rank at `coords` (MPI_Cart_rank); periodic dimensions wrap, others must be in range. */
  getCartRank(coords: readonly number[]): number {
    const where = 'cart.getCartRank';
    const c = intArray(where, 'coords', coords);
    if (c.length !== this.ndim) throw rangeError(where, `coords has ${c.length} entries, the grid has ${this.ndim} dimensions`);
    c.forEach((x, d) => {
      if (!this.periods[d] && (x < 0 || x >= this.dims[d])) throw rangeError(where, `coords[${d}] is ${x}, outside the non-periodic dimension of size ${this.dims[d]}`);
    });
    return this.#rank(c);
  }

  /**
   * The ranks `disp` steps below and above this one along `direction` (MPI_Cart_shift):
   * `[source, dest]`, MPI.PROC_NULL beyond an open edge. Receive from source and send to dest
   * to shift data by disp.
   */
  shift(direction: number, disp = 1): [source: number, dest: number] {
    const where = 'cart.shift';
    if (typeof direction !== 'number' || !Number.isInteger(direction)) throw typeError(where, 'direction must be an integer', direction);
    if (direction < 0 || direction >= this.ndim) throw rangeError(where, `direction ${direction} out of range for a grid of ${this.ndim} dimensions`);
    if (typeof disp !== 'number' || !Number.isInteger(disp)) throw typeError(where, 'disp must be an integer', disp);
    const co = [...this.coords];
    co[direction] += disp;
    const dest = this.#rank(co);
    co[direction] -= 2 * disp;
    const source = this.#rank(co);
    return [source < 0 ? PROC_NULL : source, dest < 0 ? PROC_NULL : dest];
  }

  /**
   * The sub-grids that keep the dimensions where `remainDims` is true (MPI_Cart_sub,
   * collective): this rank's sub-grid, ranked by its coordinates in the kept dimensions.
   */
  sub(remainDims: readonly boolean[]): Cartcomm {
    const where = 'cart.sub';
    const c = Comm._core(this);
    c.live(where);
    if (!Array.isArray(remainDims) || remainDims.length !== this.ndim || !remainDims.every((x) => typeof x === 'boolean'))
      throw typeError(where, `remainDims must be an array of ${this.ndim} booleans`, remainDims);
    c.label('sub');
    const ctx = agreeCtx(c);
    const mine = this.coords;
    const members: number[] = [];
    for (let r = 0; r < this.size; r++) {
      const co = this.#coords(r);
      if (co.every((x, d) => remainDims[d] || x === mine[d])) members.push(r); // row-major over the kept dims
    }
    const dims = this.dims.filter((_, d) => remainDims[d]);
    const periods = this.periods.filter((_, d) => remainDims[d]);
    const ranks = Int32Array.from(members, (r) => c.world(r));
    return new Cartcomm(ranks, members.indexOf(this.rank), ctx, `${this.name}.sub([${remainDims.join(',')}])`, dims, periods);
  }

  /** @internal the -1 and +1 neighbours of each dimension, with the slot each message lands in. */
  _neighbours(): Neighbours {
    const nb: Neighbours = { sources: [], dests: [], recvParts: [], sendParts: [] };
    for (let d = 0; d < this.ndim; d++) {
      const [lo, hi] = this.shift(d, 1);
      nb.sources.push(lo, hi);
      nb.dests.push(lo, hi);
      nb.recvParts.push(2 * d, 2 * d + 1);
      // A block sent to the -1 neighbour arrives in its +1 slot, and the other way round.
      nb.sendParts.push(2 * d + 1, 2 * d);
    }
    return nb;
  }
}

// ---- graphs ------------------------------------------------------------------------------------

/** A communicator with a general graph (mpi4py's Graphcomm): node i's edges are edges[index[i-1]..index[i]). */
export class Graphcomm extends TopoComm {
  /** Cumulative edge counts per node (MPI's index array). */
  readonly index: readonly number[];
  /** The edges, node by node. */
  readonly edges: readonly number[];

  /** @internal use comm.createGraph. */
  constructor(ranks: Int32Array | null, rank: number, ctx: number, name: string, index: readonly number[], edges: readonly number[]) {
    super(ranks, rank, ctx, name);
    this.index = Object.freeze([...index]);
    this.edges = Object.freeze([...edges]);
  }

  /** The topology kind: MPI.GRAPH. */
  get topology(): number {
    return GRAPH;
  }

  /** The neighbours of `rank` (MPI_Graph_neighbors; default: this rank), in edge order. */
  neighbors(rank: number = this.rank): number[] {
    const where = 'graph.neighbors';
    if (typeof rank !== 'number' || !Number.isInteger(rank)) throw typeError(where, 'rank must be an integer', rank);
    if (rank < 0 || rank >= this.size) throw rangeError(where, `rank ${rank} out of range for a communicator of size ${this.size}`);
    return this.edges.slice(rank === 0 ? 0 : this.index[rank - 1], this.index[rank]);
  }

  /** @internal every edge both ways. */
  _neighbours(): Neighbours {
    const n = this.neighbors();
    const zeros = n.map(() => 0);
    return { sources: n, dests: n, recvParts: zeros, sendParts: zeros };
  }
}

/** Options of comm.createDistGraphAdjacent. */
export interface DistGraphOptions {
  /** A weight per source (accepted; weights do not change placement here). */
  sourceWeights?: readonly number[];
  /** A weight per destination (accepted). */
  destWeights?: readonly number[];
  /** Accepted and ignored. */
  reorder?: boolean;
}

/** A communicator with a distributed graph (mpi4py's Distgraphcomm): this rank's own in- and out-neighbours. */
export class DistGraphcomm extends TopoComm {
  /** The ranks this one receives from, in order. */
  readonly sources: readonly number[];
  /** The ranks this one sends to, in order. */
  readonly destinations: readonly number[];

  /** @internal use comm.createDistGraphAdjacent. */
  constructor(ranks: Int32Array | null, rank: number, ctx: number, name: string, sources: readonly number[], destinations: readonly number[]) {
    super(ranks, rank, ctx, name);
    this.sources = Object.freeze([...sources]);
    this.destinations = Object.freeze([...destinations]);
  }

  /** The topology kind: MPI.DIST_GRAPH. */
  get topology(): number {
    return DIST_GRAPH;
  }

  /** [indegree, outdegree, weighted] (MPI_Dist_graph_neighbors_count; weights are not kept: false). */
  neighborsCount(): [number, number, boolean] {
    return [this.sources.length, this.destinations.length, false];
  }

  /** @internal sources and destinations as given. */
  _neighbours(): Neighbours {
    return { sources: [...this.sources], dests: [...this.destinations], recvParts: this.sources.map(() => 0), sendParts: this.destinations.map(() => 0) };
  }
}

// ---- creation (comm.createCart ..., installed on Comm by comm.ts's topology hooks) --------------

/** comm.createCart: the first prod(dims) ranks form the grid; the others get null. */
export function createCart(comm: Comm, c: CommCore, dims: readonly number[], options: CartOptions = {}): Cartcomm | null {
  const where = 'comm.createCart';
  c.live(where);
  const d = intArray(where, 'dims', dims);
  d.forEach((x, i) => {
    if (x < 1) throw rangeError(where, `dims[${i}] is ${x}: every dimension needs at least one process`);
  });
  const n = d.reduce((a, b) => a * b, 1);
  if (n > c.size) throw rangeError(where, `dims [${d.join(', ')}] make a grid of ${n} processes, but ${c.name} has ${c.size}`);
  if (options === null || typeof options !== 'object') throw typeError(where, 'options must be an object', options);
  const p = options.periods ?? false;
  let periods: boolean[];
  if (typeof p === 'boolean') periods = d.map(() => p);
  else {
    if (!Array.isArray(p) || !p.every((x) => typeof x === 'boolean')) throw typeError(where, 'options.periods must be a boolean or an array of booleans', p);
    if (p.length !== d.length) throw rangeError(where, `options.periods has ${p.length} entries, dims has ${d.length}`);
    periods = [...p];
  }
  if (options.reorder !== undefined && typeof options.reorder !== 'boolean') throw typeError(where, 'options.reorder must be a boolean', options.reorder);
  if (d.length > 31) throw rangeError(where, `${d.length} dimensions: at most 31 are supported`);
  c.label('createCart');
  const ctx = agreeCtx(c);
  if (comm.rank >= n) return null;
  return new Cartcomm(firstRanks(c, n), comm.rank, ctx, `${c.name}.createCart([${d.join(',')}])`, d, periods);
}

/** comm.createGraph: nodes 0..index.length-1 are the first ranks; the others get null. */
export function createGraph(comm: Comm, c: CommCore, index: readonly number[], edges: readonly number[]): Graphcomm | null {
  const where = 'comm.createGraph';
  c.live(where);
  const ix = intArray(where, 'index', index), ed = intArray(where, 'edges', edges);
  const nnodes = ix.length;
  if (nnodes > c.size) throw rangeError(where, `index describes ${nnodes} nodes, but ${c.name} has ${c.size} ranks`);
  ix.forEach((x, i) => {
    if (x < (i ? ix[i - 1] : 0)) throw rangeError(where, `index[${i}] is ${x}, smaller than the entry before it (index holds cumulative edge counts)`);
  });
  if ((nnodes ? ix[nnodes - 1] : 0) !== ed.length) throw rangeError(where, `index says ${nnodes ? ix[nnodes - 1] : 0} edges, edges has ${ed.length}`);
  ed.forEach((x, i) => {
    if (x < 0 || x >= nnodes) throw rangeError(where, `edges[${i}] is ${x}, not a node of the ${nnodes}-node graph`);
  });
  c.label('createGraph');
  const ctx = agreeCtx(c);
  if (comm.rank >= nnodes) return null;
  return new Graphcomm(firstRanks(c, nnodes), comm.rank, ctx, `${c.name}.createGraph()`, ix, ed);
}

/** comm.createDistGraphAdjacent: every rank names its own sources and destinations (collective). */
export function createDistGraphAdjacent(comm: Comm, c: CommCore, sources: readonly number[], destinations: readonly number[], options: DistGraphOptions = {}): DistGraphcomm {
  const where = 'comm.createDistGraphAdjacent';
  c.live(where);
  const check = (name: string, v: unknown) => {
    const a = intArray(where, name, v);
    a.forEach((x, i) => {
      if (x < 0 || x >= c.size) throw rangeError(where, `${name}[${i}] is rank ${x}, out of range for a communicator of size ${c.size}`);
    });
    return a;
  };
  const src = check('sources', sources), dst = check('destinations', destinations);
  if (options === null || typeof options !== 'object') throw typeError(where, 'options must be an object', options);
  if (options.sourceWeights !== undefined && intArray(where, 'options.sourceWeights', options.sourceWeights).length !== src.length)
    throw rangeError(where, `options.sourceWeights has ${options.sourceWeights.length} entries, sources has ${src.length}`);
  if (options.destWeights !== undefined && intArray(where, 'options.destWeights', options.destWeights).length !== dst.length)
    throw rangeError(where, `options.destWeights has ${options.destWeights.length} entries, destinations has ${dst.length}`);
  c.label('createDistGraph');
  const ctx = agreeCtx(c);
  return new DistGraphcomm(c.ranks ? c.ranks.slice() : null, comm.rank, ctx, `${c.name}.createDistGraphAdjacent()`, src, dst);
}

setTopoHooks({ createCart, createGraph, createDistGraphAdjacent });
