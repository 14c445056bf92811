/**
 * Reduction operations (MPI_Op): the predefined SUM ... MINLOC and user functions.
 *
 * An op combines two operands `a op b` (a from the lower rank). It applies
 *   - element-wise to typed arrays of the same type and length (into a new array or in place),
 *   - to numbers, bigints, booleans and strings,
 *   - element-wise to plain arrays and to plain objects key by key (a departure from mpi4py,
 *     which applies Python's `+` and so concatenates lists),
 *   - through mathjs to mathjs values: Matrix (element-wise), Complex, BigNumber, Fraction.
 * MAXLOC/MINLOC take `[value, index]` pairs (or `{ value, index }`), and on typed arrays
 * interleaved pairs `[v0, i0, v1, i1, ...]`; ties keep the lower index, as MPI says.
 */
import { MPIError, typeError } from './errors.js';
import { TYPE_NAMES, typeIdOf, type TypedArray } from './datatype.js';
import { getMathjs, isMathjsValue } from './serialization.js';

/** A user reduction: combines two operands, `a` from the lower rank. */
export type UserFunction = (a: any, b: any) => any;

type Scalar = (a: any, b: any) => any;

const isFloatId = (id: number): boolean => id === 8 || id === 9;

/** An MPI reduction operation. */
export class Op {
  /** The op's name, for messages ("SUM", or "user" for user functions). */
  readonly name: string;
  /** True when `a op b == b op a`; non-commutative ops are applied in rank order. */
  readonly commute: boolean;
  readonly #scalar: Scalar;
  readonly #mathjs: string | undefined;
  readonly #bitwise: boolean;
  readonly #loc: 'max' | 'min' | undefined;
  readonly #user: boolean;

  /** Wrap a user function `(a, b) => a op b` as an op (mpi4py's Op.Create). */
  static create(fn: UserFunction, commute = true): Op {
    if (typeof fn !== 'function') throw typeError('Op.create', 'fn must be a function (a, b) => result', fn);
    return new Op('user', fn, { commute, user: true });
  }

  /** @internal use Op.create for user ops. */
  constructor(name: string, scalar: Scalar, opts: { commute?: boolean; mathjs?: string; bitwise?: boolean; loc?: 'max' | 'min'; user?: boolean } = {}) {
    this.name = name;
    this.#scalar = scalar;
    this.commute = opts.commute ?? true;
    this.#mathjs = opts.mathjs;
    this.#bitwise = opts.bitwise ?? false;
    this.#loc = opts.loc;
    this.#user = opts.user ?? false;
  }

  /** `a op b` as a new value (operands are not modified). */
  apply(a: unknown, b: unknown): unknown {
    if (this.#user) return this.#scalar(a, b);
    if (ArrayBuffer.isView(a)) {
      const ta = a as TypedArray;
      const out = new (ta.constructor as new (n: number) => TypedArray)(ta.length);
      this.applyInto(ta, b as TypedArray, out);
      return out;
    }
    return this.#generic(a, b);
  }

  /** Element-wise `out[i] = a[i] op b[i]` on typed arrays of one type and length; `out` may be `a` or `b`. */
  applyInto(a: TypedArray, b: TypedArray, out: TypedArray): void {
    const ida = typeIdOf(a), idb = typeIdOf(b);
    if (ida < 0 || ida !== idb) {
      throw new MPIError('ERR_TYPE', `${this.name}: operands differ in type (${TYPE_NAMES[ida] ?? typeof a} and ${TYPE_NAMES[idb] ?? typeof b})`);
    }
    if (a.length !== b.length) {
      throw new MPIError('ERR_COUNT', `${this.name}: operands differ in length (${a.length} and ${b.length})`);
    }
    if (this.#user) {
      // On typed arrays a user op gets the two whole arrays and returns the result array.
      const r = this.#scalar(a, b);
      if (r === out) return;
      if (!(ArrayBuffer.isView(r) || Array.isArray(r)) || (r as ArrayLike<unknown>).length !== out.length) {
        throw new MPIError('ERR_OP', `user op on ${TYPE_NAMES[ida]} arrays must return an array of ${out.length} elements (it gets the two whole arrays), got ${r === null ? 'null' : ArrayBuffer.isView(r) || Array.isArray(r) ? `${(r as ArrayLike<unknown>).length} elements` : typeof r}`);
      }
      (out as any).set(r);
      return;
    }
    if (this.#bitwise && isFloatId(ida)) {
      throw new MPIError('ERR_OP', `${this.name} is not defined for ${TYPE_NAMES[ida]} arrays`);
    }
    const x = a as any, y = b as any, o = out as any, n = a.length;
    if (this.#loc) {
      if (n % 2 !== 0) throw new MPIError('ERR_COUNT', `${this.name} needs interleaved (value, index) pairs: length ${n} is odd`);
      const max = this.#loc === 'max';
      for (let i = 0; i < n; i += 2) {
        const va = x[i], vb = y[i], ia = x[i + 1], ib = y[i + 1];
        const takeB = max ? vb > va || (vb === va && ib < ia) : vb < va || (vb === va && ib < ia);
        o[i] = takeB ? vb : va;
        o[i + 1] = takeB ? ib : ia;
      }
      return;
    }
    const f = this.#scalar;
    // Hand-inlined loops for the hot ops: the generic path calls f per element.
    switch (this.name) {
      case 'SUM': for (let i = 0; i < n; i++) o[i] = x[i] + y[i]; return;
      case 'PROD': for (let i = 0; i < n; i++) o[i] = x[i] * y[i]; return;
      case 'MAX': for (let i = 0; i < n; i++) { const p = x[i], q = y[i]; o[i] = q > p ? q : p; } return;
      case 'MIN': for (let i = 0; i < n; i++) { const p = x[i], q = y[i]; o[i] = q < p ? q : p; } return;
      default: {
        const big = ida >= 10;
        for (let i = 0; i < n; i++) {
          const r = f(x[i], y[i]);
          o[i] = typeof r === 'boolean' ? (big ? BigInt(r ? 1 : 0) : r ? 1 : 0) : r;
        }
      }
    }
  }

  #generic(a: unknown, b: unknown): unknown {
    if (isMathjsValue(a) || isMathjsValue(b)) return this.#viaMathjs(a, b);
    if (this.#loc) return this.#locPair(a, b);
    if (Array.isArray(a) && Array.isArray(b)) {
      if (a.length !== b.length) throw new MPIError('ERR_COUNT', `${this.name}: arrays differ in length (${a.length} and ${b.length})`);
      return a.map((e, i) => this.#generic(e, b[i]));
    }
    if (ArrayBuffer.isView(a) && ArrayBuffer.isView(b)) return this.apply(a, b);
    if (a !== null && b !== null && typeof a === 'object' && typeof b === 'object' && !Array.isArray(a) && !Array.isArray(b)) {
      const out: Record<string, unknown> = {};
      for (const k of Object.keys(a)) {
        if (!(k in b)) throw new MPIError('ERR_TYPE', `${this.name}: key ${JSON.stringify(k)} is missing from one operand`);
        out[k] = this.#generic((a as any)[k], (b as any)[k]);
      }
      return out;
    }
    const ta = typeof a, tb = typeof b;
    if (ta !== tb) throw new MPIError('ERR_TYPE', `${this.name}: operands differ in type (${ta} and ${tb})`);
    if (ta !== 'number' && ta !== 'bigint' && ta !== 'boolean' && ta !== 'string') {
      throw new MPIError('ERR_OP', `${this.name} is not defined for ${ta} operands`);
    }
    if (this.#bitwise && ta === 'number' && (!Number.isInteger(a) || !Number.isInteger(b))) {
      throw new MPIError('ERR_OP', `${this.name} needs integers, got ${String(a)} and ${String(b)}`);
    }
    if (ta === 'string' && this.name !== 'SUM' && this.name !== 'MIN' && this.name !== 'MAX') {
      throw new MPIError('ERR_OP', `${this.name} is not defined for string operands`);
    }
    return this.#scalar(a, b);
  }

  #locPair(a: unknown, b: unknown): unknown {
    const pair = (p: unknown): [unknown, number] | undefined => {
      if (Array.isArray(p) && p.length === 2) return [p[0], p[1]];
      if (p && typeof p === 'object' && 'value' in p && 'index' in p) return [(p as any).value, (p as any).index];
      return undefined;
    };
    const pa = pair(a), pb = pair(b);
    if (!pa || !pb) throw new MPIError('ERR_TYPE', `${this.name} needs [value, index] pairs or { value, index } objects`);
    const max = this.#loc === 'max';
    const [va, ia] = pa as [any, number], [vb, ib] = pb as [any, number];
    const takeB = max ? vb > va || (vb === va && ib < ia) : vb < va || (vb === va && ib < ia);
    return takeB ? b : a;
  }

  #viaMathjs(a: unknown, b: unknown): unknown {
    const math = getMathjs() as any;
    const isM = (v: any) => v && v.isMatrix === true;
    if (this.#mathjs === 'add') return math.add(a, b);
    if (this.#mathjs === 'dotMultiply') return isM(a) || isM(b) ? math.dotMultiply(a, b) : math.multiply(a, b);
    if (this.#mathjs === 'max' || this.#mathjs === 'min') {
      const pick = (p: any, q: any) => {
        const c = math.compare(q, p);
        const n = typeof c === 'number' ? c : Number(c);
        return (this.#mathjs === 'max' ? n > 0 : n < 0) ? q : p;
      };
      if (isM(a) && isM(b)) return (a as any).map((v: any, idx: number[]) => pick(v, (b as any).get(idx)));
      return pick(a, b);
    }
    throw new MPIError('ERR_OP', `${this.name} is not defined for mathjs values (use SUM, PROD, MIN, MAX or a user op)`);
  }
}

const truthy = (v: any): boolean => (typeof v === 'bigint' ? v !== 0n : Boolean(v));
const logical = (v: boolean, a: any): any => (typeof a === 'boolean' ? v : typeof a === 'bigint' ? (v ? 1n : 0n) : v ? 1 : 0);

/** Sum. */
export const SUM = new Op('SUM', (a, b) => a + b, { mathjs: 'add' });
/** Product (element-wise on matrices). */
export const PROD = new Op('PROD', (a, b) => a * b, { mathjs: 'dotMultiply' });
/** Maximum. */
export const MAX = new Op('MAX', (a, b) => (b > a ? b : a), { mathjs: 'max' });
/** Minimum. */
export const MIN = new Op('MIN', (a, b) => (b < a ? b : a), { mathjs: 'min' });
/** Logical and (booleans stay booleans; numbers give 1 or 0). */
export const LAND = new Op('LAND', (a, b) => logical(truthy(a) && truthy(b), a));
/** Logical or. */
export const LOR = new Op('LOR', (a, b) => logical(truthy(a) || truthy(b), a));
/** Logical exclusive or. */
export const LXOR = new Op('LXOR', (a, b) => logical(truthy(a) !== truthy(b), a));
/** Bitwise and (integers only). */
export const BAND = new Op('BAND', (a, b) => a & b, { bitwise: true });
/** Bitwise or (integers only). */
export const BOR = new Op('BOR', (a, b) => a | b, { bitwise: true });
/** Bitwise exclusive or (integers only). */
export const BXOR = new Op('BXOR', (a, b) => a ^ b, { bitwise: true });
/** Maximum with its location: operands are [value, index] pairs. */
export const MAXLOC = new Op('MAXLOC', (a) => a, { loc: 'max' });
/** Minimum with its location: operands are [value, index] pairs. */
export const MINLOC = new Op('MINLOC', (a) => a, { loc: 'min' });
