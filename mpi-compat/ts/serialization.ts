/**
 * Object messages: any value that v8.serialize accepts (structured clone: objects, arrays,
 * Maps, Sets, Dates, typed arrays, bigints, ...) plus mathjs values (Matrix, Complex, BigNumber,
 * Fraction, Unit, ...), which v8 alone would turn into plain objects without their prototype.
 *
 * Wire shape of one object message (the data plane's datatype word is OBJECT_TYPE):
 *
 *     +--------+-----------------------------------+
 *     | flag:1 | v8.serialize(value'):n            |
 *     +--------+-----------------------------------+
 *
 * flag 0: value' is the value itself. flag 1: value' has every mathjs value replaced by
 * `{ [MATHJS_KEY]: value.toJSON() }`, and the receiver revives them with mathjs's reviver.
 * Scalars skip v8 (its fixed cost dominates small messages): flag 2 + float64 (number),
 * 3 + UTF-8 (string), 4 true, 5 false, 6 null, 7 undefined. Plain data that JSON carries
 * exactly (plain objects and dense arrays of strings, booleans, null and finite numbers other
 * than -0) goes as flag 8 + JSON text: measured here, a round trip of `{ a: 1 }` took 0.35 us
 * through JSON against 3 us through v8, which dominated small object collectives.
 * The flag lets the receiver skip the walk for the common case of no mathjs values.
 *
 * mathjs is not loaded by this layer unless a mathjs value arrives and no instance was given
 * (`MPI.init({ mathjs })`): loading it costs 0.5-0.9 s, which a program that never uses it
 * should not pay. Pass the program's own instance to avoid the dual ESM/CJS package hazard.
 */
import { createRequire } from 'node:module';
import * as v8 from 'node:v8';
import { MPIError } from './errors.js';

/** The key of the wrapper object that carries one mathjs value's JSON form. */
export const MATHJS_KEY = '__sfmpi_mathjs__';

/** What this layer uses of a mathjs instance. */
export interface MathjsLike {
  /** mathjs's JSON reviver: `JSON.parse(text, math.reviver)`. */
  reviver: (key: string, value: unknown) => unknown;
  [name: string]: unknown;
}

let mathjs: MathjsLike | undefined;

/** Use the program's own mathjs instance for reviving values and for reduction ops. */
export function setMathjs(instance: MathjsLike): void {
  if (!instance || typeof instance.reviver !== 'function') {
    throw new TypeError('MPI.init: options.mathjs must be the mathjs module (import * as math from "mathjs"), got ' + typeof instance);
  }
  mathjs = instance;
}

/** The mathjs instance: the one given to MPI.init, else mathjs loaded on first use. */
export function getMathjs(): MathjsLike {
  if (!mathjs) {
    try {
      mathjs = createRequire(import.meta.url)('mathjs') as MathjsLike;
    } catch (e) {
      throw new MPIError('ERR_SERIALIZE', `a mathjs value was received but mathjs cannot be loaded: ${(e as Error).message}`);
    }
  }
  return mathjs;
}

/** True for mathjs values (duck-typed, so values from any mathjs instance count). */
export function isMathjsValue(v: unknown): boolean {
  if (v === null || typeof v !== 'object') return false;
  const o = v as Record<string, unknown>;
  return o.isMatrix === true || o.isComplex === true || o.isBigNumber === true || o.isFraction === true ||
    o.isUnit === true || o.isRange === true || o.isIndex === true || o.isResultSet === true;
}

function plainPrototype(o: object): boolean {
  const p = Object.getPrototypeOf(o);
  return p === Object.prototype || p === null;
}

/** Replace mathjs values by wrappers; returns the same object when nothing changed. */
function encodeWalk(v: unknown, seen: Set<object>): unknown {
  if (v === null || typeof v !== 'object') return v;
  if (ArrayBuffer.isView(v) || v instanceof ArrayBuffer) return v;
  if (isMathjsValue(v)) {
    const json = (v as { toJSON(): unknown }).toJSON();
    // toJSON of a matrix keeps nested mathjs values (a matrix of Complex); wrap them too.
    return { [MATHJS_KEY]: JSON.parse(JSON.stringify(json)) };
  }
  if (seen.has(v)) return v; // cycles: v8.serialize keeps them, mathjs values inside are rare
  seen.add(v);
  if (Array.isArray(v)) {
    let out: unknown[] | undefined;
    for (let i = 0; i < v.length; i++) {
      const e = v[i];
      if (e === null || typeof e !== 'object') continue;
      const r = encodeWalk(e, seen);
      if (r !== e) { out ??= v.slice(); out[i] = r; }
    }
    return out ?? v;
  }
  if (v instanceof Map) {
    let changed = false;
    const entries: [unknown, unknown][] = [];
    for (const [k, x] of v) {
      const rk = encodeWalk(k, seen), rx = encodeWalk(x, seen);
      if (rk !== k || rx !== x) changed = true;
      entries.push([rk, rx]);
    }
    return changed ? new Map(entries) : v;
  }
  if (v instanceof Set) {
    let changed = false;
    const items: unknown[] = [];
    for (const x of v) { const r = encodeWalk(x, seen); if (r !== x) changed = true; items.push(r); }
    return changed ? new Set(items) : v;
  }
  if (!plainPrototype(v)) return v;
  let out: Record<string, unknown> | undefined;
  for (const k of Object.keys(v)) {
    const e = (v as Record<string, unknown>)[k];
    if (e === null || typeof e !== 'object') continue;
    const r = encodeWalk(e, seen);
    if (r !== e) { out ??= { ...(v as Record<string, unknown>) }; out[k] = r; }
  }
  return out ?? v;
}

function decodeWalk(v: unknown, revive: (k: string, x: unknown) => unknown): unknown {
  if (v === null || typeof v !== 'object' || ArrayBuffer.isView(v)) return v;
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) v[i] = decodeWalk(v[i], revive);
    return v;
  }
  if (v instanceof Map) {
    const entries = [...v].map(([k, x]) => [decodeWalk(k, revive), decodeWalk(x, revive)] as [unknown, unknown]);
    v.clear();
    for (const [k, x] of entries) v.set(k, x);
    return v;
  }
  if (v instanceof Set) {
    const items = [...v].map((x) => decodeWalk(x, revive));
    v.clear();
    for (const x of items) v.add(x);
    return v;
  }
  const o = v as Record<string, unknown>;
  if (MATHJS_KEY in o && Object.keys(o).length === 1) {
    return JSON.parse(JSON.stringify(o[MATHJS_KEY]), revive);
  }
  for (const k of Object.keys(o)) o[k] = decodeWalk(o[k], revive);
  return o;
}

// Scalars skip v8.serialize, whose fixed cost dominates small messages.
const F_NUMBER = 2, F_STRING = 3, F_TRUE = 4, F_FALSE = 5, F_NULL = 6, F_UNDEFINED = 7, F_JSON = 8;

/** Does JSON carry `v` exactly (what v8.deserialize would give back)? Cycles and deep values: no. */
function jsonExact(v: unknown, depth: number): boolean {
  switch (typeof v) {
    case 'string':
    case 'boolean':
      return true;
    case 'number':
      return Number.isFinite(v) && !Object.is(v, -0);
    case 'object': {
      if (v === null) return true;
      if (depth > 32) return false;
      if (Array.isArray(v)) {
        for (let i = 0; i < v.length; i++) if (!(i in v) || !jsonExact(v[i], depth + 1)) return false;
        return Object.keys(v).length === v.length; // no holes, no extra properties
      }
      if (Object.getPrototypeOf(v) !== Object.prototype) return false;
      for (const k in v) {
        if (k === '__proto__' || !jsonExact((v as Record<string, unknown>)[k], depth + 1)) return false;
      }
      return true;
    }
    default:
      return false;
  }
}
const f64 = new Float64Array(1);
const f64bytes = new Uint8Array(f64.buffer);

/** Serialize one object message. */
export function encode(value: unknown, where = 'send'): Uint8Array {
  switch (typeof value) {
    case 'number': {
      const out = new Uint8Array(9);
      out[0] = F_NUMBER;
      f64[0] = value;
      out.set(f64bytes, 1);
      return out;
    }
    case 'string': {
      const b = Buffer.from(value, 'utf8');
      const out = new Uint8Array(b.length + 1);
      out[0] = F_STRING;
      out.set(b, 1);
      return out;
    }
    case 'boolean':
      return new Uint8Array([value ? F_TRUE : F_FALSE]);
    case 'undefined':
      return new Uint8Array([F_UNDEFINED]);
    default:
      if (value === null) return new Uint8Array([F_NULL]);
  }
  if (jsonExact(value, 0)) {
    const text = JSON.stringify(value);
    const out = Buffer.allocUnsafe(Buffer.byteLength(text) + 1);
    out[0] = F_JSON;
    out.write(text, 1);
    return out;
  }
  let payload: Buffer;
  let flag = 0;
  try {
    const enc = encodeWalk(value, new Set());
    flag = hasWrapper(value, enc) ? 1 : 0;
    payload = v8.serialize(enc);
  } catch (e) {
    throw new MPIError('ERR_SERIALIZE', `${where}: value cannot be serialized: ${(e as Error).message}`);
  }
  const out = new Uint8Array(payload.length + 1);
  out[0] = flag;
  out.set(payload, 1);
  return out;
}

function hasWrapper(orig: unknown, enc: unknown): boolean {
  return orig !== enc; // encodeWalk copies exactly when it replaced something
}

/** Deserialize one object message (the first `length` bytes of `bytes`). */
export function decode(bytes: Uint8Array, length = bytes.length): unknown {
  if (length < 1) throw new MPIError('ERR_SERIALIZE', 'object message is empty (expected a flag byte)');
  const buf = bytes instanceof Buffer ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const flag = buf[0];
  switch (flag) {
    case F_NUMBER:
      if (length !== 9) break;
      return buf.readDoubleLE(1);
    case F_STRING:
      return buf.toString('utf8', 1, length);
    case F_TRUE: return true;
    case F_FALSE: return false;
    case F_NULL: return null;
    case F_UNDEFINED: return undefined;
    case F_JSON:
      return JSON.parse(buf.toString('utf8', 1, length));
  }
  let v: unknown;
  try {
    v = v8.deserialize(buf.subarray(1, length));
  } catch (e) {
    throw new MPIError('ERR_SERIALIZE', `object message cannot be deserialized: ${(e as Error).message}`);
  }
  if (flag === 1) v = decodeWalk(v, getMathjs().reviver);
  return v;
}

/**
 * A value as every other rank will see it after it travelled: the value itself for scalars
 * (their encoding is exact), else its own encoding decoded again (mathjs values go through
 * their JSON form, class instances lose their prototype). Collectives combine a rank's own
 * operand in this form, so that every rank combines the same operands and gets the same result.
 */
export function asSent(value: unknown, bytes: Uint8Array): unknown {
  return bytes[0] >= F_NUMBER ? value : decode(bytes);
}
