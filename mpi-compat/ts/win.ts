/**
 * One-sided windows (MPI_Win, mpi4py's `Win`): memory of every member that the others read and
 * write without its participation. `Win.create` exposes a typed array the caller has (a
 * `region`, or any typed array), `Win.allocate` and `Win.allocateShared` memory that the
 * window's members on this host share (`win.memory`, `win.sharedQuery(rank)`).
 *
 * Displacements are in the target's displacement unit, by default the element size of its
 * window's typed array: `win.Put(a, 2, 10)` writes a's elements at element 10 of rank 2's window.
 * Operations are upper-case (they move typed arrays, like Send); each needs an access epoch:
 * `Fence`, `Lock`/`Lock_all`, or `Start` (general active target).
 *
 * The engine is native (native/onesided, over the data plane; sf_onesided.h draws the two paths
 * and the wire format): members of this host are reached directly (a shared mapping, or
 * process_vm_readv/writev into a created window), with locks and accumulates in a control
 * block the host's members share, so passive-target epochs need nothing from a busy target;
 * members on other hosts by messages that the target's engine applies whenever it makes
 * progress (any blocking MPI call, or its event loop's wake-ups: win.cc).
 */
import { Comm } from './comm.js';
import { PROC_NULL, type CommCore } from './core.js';
import { agreeCtx } from './context.js';
import { ctorOf, requireTypedArray, TYPE_NAMES, typeIdOf, type TypedArray, type TypedArrayConstructor } from './datatype.js';
import { MPIError, rangeError, typeError } from './errors.js';
import { Group } from './group.js';
import { mpi, SF_OP } from './native.js';
import { Op, SUM } from './op.js';

/** Lock types (MPI_LOCK_EXCLUSIVE, MPI_LOCK_SHARED; MPICH's values). */
export const LOCK_EXCLUSIVE = 234;
/** A shared lock: several origins at once. */
export const LOCK_SHARED = 235;

/** Assertions (MPICH's values). NOCHECK: no conflicting lock is held, so none is taken. */
export const MODE_NOCHECK = 1024;
/** The window's memory was not stored to locally since the last synchronisation (accepted). */
export const MODE_NOSTORE = 2048;
/** The window's memory is not stored to by Put or Accumulate until the next synchronisation (accepted). */
export const MODE_NOPUT = 4096;
/** The fence ends no epoch: nothing to complete. */
export const MODE_NOPRECEDE = 8192;
/** The fence starts no epoch. */
export const MODE_NOSUCCEED = 16384;

/** Accumulate op: store the origin's value (MPI_REPLACE). One-sided calls only. */
export const REPLACE = new Op('REPLACE', (_a, b) => b);
/** Accumulate op: leave the target as it is (MPI_NO_OP), for Get_accumulate and Fetch_and_op. */
export const NO_OP = new Op('NO_OP', (a) => a);

const FLAVOR = { create: 1, allocate: 2, shared: 3 } as const;
/** The binding's synchronisation calls (win.cc's Sync, same order). */
const SYNC = { Fence: 0, Lock: 1, Unlock: 2, Lock_all: 3, Unlock_all: 4, Flush: 5, Flush_all: 6, Flush_local: 7, Flush_local_all: 8, Post: 9, Start: 10, Complete: 11, Wait: 12, Test: 13, Sync: 14 } as const;
const native = mpi as unknown as {
  winCreate(ranks: Int32Array | null, index: number, ctx: number, flavor: number, memory: TypedArray | null, bytes: number, dispUnit: number, direct: boolean, label: string): number;
  winInfo(id: number): [Float64Array, Float64Array, Uint8Array];
  winMemory(id: number, rank: number, dtype: number): TypedArray | null;
  winFree(id: number): void;
  winPut(id: number, buf: TypedArray, target: number, disp: number): void;
  winGet(id: number, buf: TypedArray, target: number, disp: number): void;
  winAcc(id: number, buf: TypedArray | null, result: TypedArray | null, dtype: number, op: number, target: number, disp: number, len: number): void;
  winCas(id: number, buf: TypedArray, compare: TypedArray, result: TypedArray, dtype: number, target: number, disp: number): void;
  winSync(id: number, call: number, a?: number | Int32Array, b?: number, c?: number): number;
};

/** Options of Win.create, Win.allocate and Win.allocateShared. */
export interface WinOptions {
  /** Bytes per displacement unit (default: the element size of the window's typed array). */
  dispUnit?: number;
  /** false: reach every member by messages, as across hosts (default true: directly where possible on this host). */
  direct?: boolean;
}

/** Options of Win.allocate and Win.allocateShared. */
export interface AllocOptions<C extends TypedArrayConstructor = Uint8ArrayConstructor> extends WinOptions {
  /** The element type of win.memory (default Uint8Array). */
  type?: C;
}

type Elem<C> = C extends new (n: number) => infer A ? A : Uint8Array;

/** The data plane's op code of an accumulate op on element type `dtype`. */
function accOp(where: string, op: unknown, dtype: number): number {
  if (op === REPLACE) return 12;
  if (op === NO_OP) return 13;
  if (!(op instanceof Op)) throw typeError(where, 'op must be a predefined MPI.Op (MPI.SUM, ..., MPI.REPLACE, MPI.NO_OP)', op);
  const code = (SF_OP as Record<string, number>)[op.name];
  if (code === undefined || op.name === 'user') throw new MPIError('ERR_OP', `${where}: ${op.name} is not a predefined op; one-sided accumulates take MPI.SUM ... MPI.BXOR, MPI.REPLACE and MPI.NO_OP`);
  if (dtype === 3 || !mpi.opValid(code, dtype)) throw new MPIError('ERR_OP', `${where}: ${op.name} is not defined for ${TYPE_NAMES[dtype]} elements`);
  return code;
}

/** A one-sided window. */
export class Win<T extends TypedArray = TypedArray> {
  #id: number;
  #freed = false;
  readonly #core: CommCore;
  readonly #sizes: Float64Array;
  readonly #units: Float64Array;
  readonly #direct: Uint8Array;
  readonly #type: number;
  #memory: T;
  readonly #flavor: number;

  /** The window's members, in rank order. */
  readonly comm: Comm;

  private constructor(comm: Comm, core: CommCore, flavor: number, memory: T | null, bytes: number, type: number, opts: WinOptions, where: string) {
    if (opts === null || typeof opts !== 'object') throw typeError(where, 'options must be an object', opts);
    const unit = opts.dispUnit ?? ctorOf(type).BYTES_PER_ELEMENT;
    if (typeof unit !== 'number' || !Number.isInteger(unit) || unit < 1) throw rangeError(where, `options.dispUnit ${String(unit)} must be a positive integer`);
    if (opts.direct !== undefined && typeof opts.direct !== 'boolean') throw typeError(where, 'options.direct must be a boolean', opts.direct);
    core.live(where);
    core.label(where.replace(/^Win\./, 'Win_'));
    // Four contexts (sf_onesided.h): two agreements give two consecutive pairs.
    const ctx = agreeCtx(core), ctx2 = agreeCtx(core);
    if (ctx2 !== ctx + 2) throw new MPIError('ERR_INTERN', `${where}: the window's contexts are not consecutive (${ctx}, ${ctx2})`);
    this.#id = native.winCreate(core.ranks, core.rank, ctx, flavor, memory, bytes, unit, opts.direct ?? true, where);
    this.comm = comm;
    this.#core = core;
    this.#flavor = flavor;
    this.#type = type;
    [this.#sizes, this.#units, this.#direct] = native.winInfo(this.#id);
    this.#memory = memory ?? (native.winMemory(this.#id, core.rank, type) as T);
  }

  /** Exposes `memory` (a typed array of this rank's; a region is a good one) to every member of `comm` (collective). */
  static create<A extends TypedArray>(memory: A, comm: Comm, options: WinOptions = {}): Win<A> {
    const where = 'Win.create';
    requireTypedArray(where, 'memory', memory);
    if (!(comm instanceof Comm)) throw typeError(where, 'comm must be a Comm', comm);
    if ((memory.buffer as ArrayBuffer & { resizable?: boolean }).resizable) throw typeError(where, 'memory must not be a view of a resizable ArrayBuffer (its memory can move)', memory);
    return new Win<A>(comm, Comm._core(comm), FLAVOR.create, memory, memory.byteLength, typeIdOf(memory), options, where);
  }

  /**
   * A window of `bytes` bytes per member, allocated for it (collective): members on this host
   * share the memory (win.memory is this rank's part), which makes every operation between
   * them a plain copy.
   */
  static allocate<C extends TypedArrayConstructor = Uint8ArrayConstructor>(bytes: number, comm: Comm, options: AllocOptions<C> = {}): Win<Elem<C>> {
    return Win.#alloc('Win.allocate', FLAVOR.allocate, bytes, comm, options) as Win<Elem<C>>;
  }

  /**
   * Like allocate, and every member may load and store any member's part directly:
   * win.sharedQuery(rank) is a typed array over it (MPI_Win_allocate_shared). Every member must
   * be on this host. Parts are back to back (MPI's contiguous default).
   */
  static allocateShared<C extends TypedArrayConstructor = Uint8ArrayConstructor>(bytes: number, comm: Comm, options: AllocOptions<C> = {}): Win<Elem<C>> {
    return Win.#alloc('Win.allocateShared', FLAVOR.shared, bytes, comm, options) as Win<Elem<C>>;
  }

  static #alloc(where: string, flavor: number, bytes: number, comm: Comm, options: AllocOptions<TypedArrayConstructor>): Win {
    if (!(comm instanceof Comm)) throw typeError(where, 'comm must be a Comm', comm);
    if (typeof bytes !== 'number' || !Number.isInteger(bytes)) throw typeError(where, 'bytes must be an integer', bytes);
    if (bytes < 0) throw rangeError(where, `size ${bytes} bytes must not be negative`);
    if (options === null || typeof options !== 'object') throw typeError(where, 'options must be an object', options);
    const C = options.type ?? Uint8Array;
    const type = typeIdOf(new (C as new (n: number) => TypedArray)(0));
    if (type <= 0) throw typeError(where, 'options.type must be a typed-array constructor (Float64Array, ...)', C);
    if (bytes % C.BYTES_PER_ELEMENT !== 0) throw rangeError(where, `size ${bytes} bytes is not a whole number of ${TYPE_NAMES[type]} elements`);
    return new Win(comm, Comm._core(comm), flavor, null, bytes, type, options, where);
  }

  /** This rank's window memory (the caller's array for Win.create); detached after free(). */
  get memory(): T {
    return this.#memory;
  }

  /** A typed array over member `rank`'s part of a Win.allocateShared window (MPI_Win_shared_query). */
  sharedQuery(rank: number): T {
    const where = 'win.sharedQuery';
    this.#live(where);
    if (this.#flavor !== FLAVOR.shared) throw new MPIError('ERR_ARG', `${where}: the window was not made by Win.allocateShared`);
    this.#rank(where, 'rank', rank, false);
    const a = native.winMemory(this.#id, rank, this.#type);
    if (a === null) throw new MPIError('ERR_OTHER', `${where}: rank ${rank}'s memory is not mapped here`);
    return a as T;
  }

  /** The group of the window's members (MPI_Win_get_group). */
  get group(): Group {
    return this.comm.group;
  }

  /** true when this rank reaches `rank`'s memory directly (same host), false when by messages. */
  isDirect(rank: number): boolean {
    this.#live('win.isDirect');
    this.#rank('win.isDirect', 'rank', rank, false);
    return this.#direct[rank] === 1;
  }

  #live(where: string): void {
    if (this.#freed) throw new MPIError('ERR_ARG', `${where}: the window has been freed`);
    this.#core.live(where);
  }

  #rank(where: string, name: string, r: unknown, procNull: boolean): number {
    if (typeof r !== 'number' || !Number.isInteger(r)) throw typeError(where, `${name} must be an integer rank`, r);
    if (procNull && r === PROC_NULL) return r;
    if (r < 0 || r >= this.#sizes.length) throw rangeError(where, `${name} ${r} out of range for a window of ${this.#sizes.length} ranks`);
    return r;
  }

  /** Checks an operation's target range; the length in bytes. */
  #range(where: string, target: number, disp: unknown, buf: TypedArray, name = 'origin'): void {
    if (typeof disp !== 'number' || !Number.isInteger(disp)) throw typeError(where, 'targetDisp must be an integer', disp);
    if (target === PROC_NULL) return;
    if (disp < 0) throw rangeError(where, `targetDisp ${disp} must not be negative`);
    const unit = this.#units[target], size = this.#sizes[target];
    if (disp * unit + buf.byteLength > size)
      throw rangeError(where, `targetDisp ${disp} (unit ${unit} bytes) with ${buf.byteLength} bytes of ${name} data (${buf.length} ${TYPE_NAMES[typeIdOf(buf)]}) reaches past rank ${target}'s window of ${size} bytes`);
  }

  /** Writes `origin`'s elements into `target`'s window at `targetDisp` (MPI_Put). `origin` may be reused at once. */
  Put(origin: TypedArray, target: number, targetDisp = 0): void {
    const where = 'win.Put';
    this.#live(where);
    requireTypedArray(where, 'origin', origin);
    const t = this.#rank(where, 'target', target, true);
    this.#range(where, t, targetDisp, origin);
    if (t !== PROC_NULL) native.winPut(this.#id, origin, t, targetDisp);
  }

  /**
   * Reads `target`'s window at `targetDisp` into `origin` (MPI_Get). Filled when it returns for
   * a target reached directly, else once the epoch ends (flush, unlock, fence, complete).
   */
  Get(origin: TypedArray, target: number, targetDisp = 0): void {
    const where = 'win.Get';
    this.#live(where);
    requireTypedArray(where, 'origin', origin);
    const t = this.#rank(where, 'target', target, true);
    this.#range(where, t, targetDisp, origin);
    if (t !== PROC_NULL) native.winGet(this.#id, origin, t, targetDisp);
  }

  /** Combines `origin` into `target`'s window element-wise with a predefined op (MPI_Accumulate; atomic per element). */
  Accumulate(origin: TypedArray, target: number, targetDisp = 0, op: Op = SUM): void {
    const where = 'win.Accumulate';
    this.#live(where);
    requireTypedArray(where, 'origin', origin);
    const t = this.#rank(where, 'target', target, true);
    this.#range(where, t, targetDisp, origin);
    const code = accOp(where, op, typeIdOf(origin));
    if (t !== PROC_NULL) native.winAcc(this.#id, origin, null, typeIdOf(origin), code, t, targetDisp, origin.byteLength);
  }

  /** Accumulate that also returns the target's previous values into `result` (MPI_Get_accumulate). */
  Get_accumulate(origin: TypedArray | null, result: TypedArray, target: number, targetDisp = 0, op: Op = SUM): void {
    this.#getAccumulate('win.Get_accumulate', origin, result, target, targetDisp, op);
  }

  /** One element: `result[0]` gets the target's value, which becomes value op `origin[0]` (MPI_Fetch_and_op). */
  Fetch_and_op(origin: TypedArray | null, result: TypedArray, target: number, targetDisp = 0, op: Op = SUM): void {
    const where = 'win.Fetch_and_op';
    requireTypedArray(where, 'result', result);
    if (op !== NO_OP) requireTypedArray(where, 'origin', origin);
    this.#getAccumulate(where, op === NO_OP ? null : origin!.subarray(0, 1), result.subarray(0, 1), target, targetDisp, op);
  }

  #getAccumulate(where: string, origin: TypedArray | null, result: TypedArray, target: number, targetDisp: number, op: Op): void {
    this.#live(where);
    requireTypedArray(where, 'result', result);
    if (op !== NO_OP) {
      requireTypedArray(where, 'origin', origin);
      if (typeIdOf(origin) !== typeIdOf(result)) throw new MPIError('ERR_TYPE', `${where}: origin is ${TYPE_NAMES[typeIdOf(origin)]} but result is ${TYPE_NAMES[typeIdOf(result)]}`);
      if (origin!.length !== result.length) throw rangeError(where, `origin has ${origin!.length} elements, result has ${result.length}`);
    }
    const t = this.#rank(where, 'target', target, true);
    this.#range(where, t, targetDisp, result, 'result');
    const code = accOp(where, op, typeIdOf(result));
    if (t !== PROC_NULL) native.winAcc(this.#id, op === NO_OP ? null : origin, result, typeIdOf(result), code, t, targetDisp, result.byteLength);
  }

  /** One element: if the target equals `compare[0]` it becomes `origin[0]`; `result[0]` gets the old value (MPI_Compare_and_swap). */
  Compare_and_swap(origin: TypedArray, compare: TypedArray, result: TypedArray, target: number, targetDisp = 0): void {
    const where = 'win.Compare_and_swap';
    this.#live(where);
    for (const [n, b] of [['origin', origin], ['compare', compare], ['result', result]] as const) {
      requireTypedArray(where, n, b);
      if (typeIdOf(b) !== typeIdOf(origin)) throw new MPIError('ERR_TYPE', `${where}: ${n} is ${TYPE_NAMES[typeIdOf(b)]} but origin is ${TYPE_NAMES[typeIdOf(origin)]}`);
      if (b.length < 1) throw rangeError(where, `${n} is empty`);
    }
    const t = this.#rank(where, 'target', target, true);
    this.#range(where, t, targetDisp, result.subarray(0, 1), 'result');
    if (t !== PROC_NULL) native.winCas(this.#id, origin.subarray(0, 1), compare.subarray(0, 1), result.subarray(0, 1), typeIdOf(origin), t, targetDisp);
  }

  #assert(where: string, a: unknown): number {
    if (typeof a !== 'number' || !Number.isInteger(a) || a < 0) throw typeError(where, 'assert must be a non-negative integer (MPI.MODE_* flags)', a);
    return (a & MODE_NOCHECK ? 1 : 0) | (a & MODE_NOPRECEDE ? 2 : 0) | (a & MODE_NOSUCCEED ? 4 : 0);
  }

  /**
   * Ends the previous access and exposure epoch and starts the next (MPI_Win_fence, collective):
   * every operation of the epoch is complete at its target and origin when it returns.
   */
  Fence(assert = 0): void {
    this.#live('win.Fence');
    native.winSync(this.#id, SYNC.Fence, this.#assert('win.Fence', assert));
  }

  /** Starts a passive-target epoch to `rank` (MPI_Win_lock): MPI.LOCK_EXCLUSIVE (default) or MPI.LOCK_SHARED. */
  Lock(rank: number, lockType = LOCK_EXCLUSIVE, assert = 0): void {
    const where = 'win.Lock';
    this.#live(where);
    const r = this.#rank(where, 'rank', rank, false);
    if (lockType !== LOCK_EXCLUSIVE && lockType !== LOCK_SHARED) throw rangeError(where, `lockType ${String(lockType)} is neither MPI.LOCK_EXCLUSIVE nor MPI.LOCK_SHARED`);
    native.winSync(this.#id, SYNC.Lock, lockType === LOCK_EXCLUSIVE ? 1 : 2, r, this.#assert(where, assert));
  }

  /** Ends the epoch to `rank`: its operations are complete there (MPI_Win_unlock). */
  Unlock(rank: number): void {
    this.#live('win.Unlock');
    native.winSync(this.#id, SYNC.Unlock, this.#rank('win.Unlock', 'rank', rank, false));
  }

  /** A shared lock on every member (MPI_Win_lock_all). */
  Lock_all(assert = 0): void {
    this.#live('win.Lock_all');
    native.winSync(this.#id, SYNC.Lock_all, this.#assert('win.Lock_all', assert));
  }

  /** Ends Lock_all (MPI_Win_unlock_all). */
  Unlock_all(): void {
    this.#live('win.Unlock_all');
    native.winSync(this.#id, SYNC.Unlock_all);
  }

  /** Completes this rank's operations to `rank` at the target, within a lock epoch (MPI_Win_flush). */
  Flush(rank: number): void {
    this.#live('win.Flush');
    native.winSync(this.#id, SYNC.Flush, this.#rank('win.Flush', 'rank', rank, false));
  }

  /** Flush to every locked member (MPI_Win_flush_all). */
  Flush_all(): void {
    this.#live('win.Flush_all');
    native.winSync(this.#id, SYNC.Flush_all);
  }

  /** Completes this rank's operations to `rank` locally: its buffers may be reused (MPI_Win_flush_local). */
  Flush_local(rank: number): void {
    this.#live('win.Flush_local');
    native.winSync(this.#id, SYNC.Flush_local, this.#rank('win.Flush_local', 'rank', rank, false));
  }

  /** Flush_local to every locked member (MPI_Win_flush_local_all). */
  Flush_local_all(): void {
    this.#live('win.Flush_local_all');
    native.winSync(this.#id, SYNC.Flush_local_all);
  }

  /** The window ranks of `group`'s members. */
  #members(where: string, group: Group): Int32Array {
    const world = Group._check(where, 'group', group)._world;
    const mine = this.comm.worldRanks();
    return Int32Array.from(world, (w, i) => {
      const r = mine.indexOf(w);
      if (r < 0) throw rangeError(where, `group member ${i} (world rank ${w}) is not a member of the window`);
      return r;
    });
  }

  /** Exposes this rank's window to `group`'s members (MPI_Win_post); ends with Wait. */
  Post(group: Group, assert = 0): void {
    this.#live('win.Post');
    native.winSync(this.#id, SYNC.Post, this.#members('win.Post', group), this.#assert('win.Post', assert));
  }

  /** Starts an access epoch to `group`'s members once each has posted (MPI_Win_start); ends with Complete. */
  Start(group: Group, assert = 0): void {
    this.#live('win.Start');
    native.winSync(this.#id, SYNC.Start, this.#members('win.Start', group), this.#assert('win.Start', assert));
  }

  /** Ends the access epoch of Start: every operation is complete at its target (MPI_Win_complete). */
  Complete(): void {
    this.#live('win.Complete');
    native.winSync(this.#id, SYNC.Complete);
  }

  /** Ends the exposure epoch of Post once every origin has completed (MPI_Win_wait). */
  Wait(): void {
    this.#live('win.Wait');
    native.winSync(this.#id, SYNC.Wait);
  }

  /** Wait without blocking: true once the exposure epoch ended (MPI_Win_test). */
  Test(): boolean {
    this.#live('win.Test');
    return native.winSync(this.#id, SYNC.Test) === 1;
  }

  /** Orders this rank's loads and stores of shared window memory against the others' (MPI_Win_sync). */
  Sync(): void {
    this.#live('win.Sync');
    native.winSync(this.#id, SYNC.Sync);
  }

  /**
   * Releases the window (MPI_Win_free, collective, after every epoch ended); the arrays over
   * allocated memory (win.memory, sharedQuery) are detached.
   */
  free(): void {
    this.#live('win.free');
    this.#freed = true;
    native.winFree(this.#id);
  }
}
