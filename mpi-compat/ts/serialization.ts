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
 * 3 + UTF-8 (string), 4 true, 5 false, 6 null, 7 undefined. Plain data (plain objects and dense
 * arrays of numbers, strings, booleans, null and undefined, nested up to 32 deep) goes as flag 9
 * + the compact form below, written in one pass into a reused buffer: measured here, a round
 * trip of `{ i: 0, name: 'ping' }` took about 0.35 us this way against 1.1 us through JSON
 * (checked, stringified, copied, parsed) and 3 us through v8, and those costs dominated small
 * object messages and collectives. The flag lets the receiver skip the mathjs walk for the
 * common case of no mathjs values.
 *
 * The compact form: a value is a type byte and its body (little-endian):
 *
 *     1 int32:4 | 2 float64:8 | 3 string | 4 true | 5 false | 6 null | 7 undefined
 *     8 array:  count, then count values
 *     9 object: count, then count times (key: string, value)
 *
 *     count:  n:1 (n < 255) | 255, n:4
 *     string: n:1, n ASCII bytes (n < 254) | 254, n:4, n ASCII bytes | 255, n:4, 2n bytes UTF-16
 *
 * UTF-16 keeps every JavaScript string exactly (lone surrogates too); keys and values keep
 * their order, numbers their bits (-0, NaN).
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
const F_NUMBER = 2, F_STRING = 3, F_TRUE = 4, F_FALSE = 5, F_NULL = 6, F_UNDEFINED = 7, F_COMPACT = 9;
// Type bytes of the compact form.
const C_INT = 1, C_FLOAT = 2, C_STRING = 3, C_TRUE = 4, C_FALSE = 5, C_NULL = 6, C_UNDEFINED = 7, C_ARRAY = 8, C_OBJECT = 9;
const MAX_DEPTH = 32;
const SCRATCH_BYTES = 64 << 10;

/** Where the compact form is written: reused, so that a small message allocates nothing. */
let out: Buffer = Buffer.allocUnsafe(SCRATCH_BYTES);
let at = 0;

function room(n: number): void {
  if (at + n <= out.length) return;
  const bigger = Buffer.allocUnsafe(Math.max(2 * out.length, at + n));
  out.copy(bigger, 0, 0, at);
  out = bigger;
}

function putCount(n: number): void {
  room(5);
  if (n < 255) out[at++] = n;
  else {
    out[at] = 255;
    out.writeUInt32LE(n, at + 1);
    at += 5;
  }
}

function putString(s: string): void {
  const n = s.length;
  if (n <= 32) {
    room(1 + n);
    let i = 0;
    for (; i < n; i++) {
      const ch = s.charCodeAt(i);
      if (ch >= 0x80) break;
      out[at + 1 + i] = ch;
    }
    if (i === n) {
      out[at] = n;
      at += 1 + n;
      return;
    }
  } else if (Buffer.byteLength(s, 'utf8') === n) { // every char ASCII (others take 2+ bytes)
    room(5 + n);
    if (n < 254) out[at++] = n;
    else {
      out[at] = 254;
      out.writeUInt32LE(n, at + 1);
      at += 5;
    }
    at += out.write(s, at, n, 'latin1');
    return;
  }
  room(5 + 2 * n);
  out[at] = 255;
  out.writeUInt32LE(n, at + 1);
  at += 5;
  at += out.write(s, at, 2 * n, 'utf16le');
}

/** Writes `v` in the compact form; false when it is not plain data (the caller falls back to v8). */
function putValue(v: unknown, depth: number): boolean {
  switch (typeof v) {
    case 'number':
      room(9);
      if ((v | 0) === v && !Object.is(v, -0)) {
        out[at] = C_INT;
        out.writeInt32LE(v, at + 1);
        at += 5;
      } else {
        out[at] = C_FLOAT;
        out.writeDoubleLE(v, at + 1);
        at += 9;
      }
      return true;
    case 'string':
      room(1);
      out[at++] = C_STRING;
      putString(v);
      return true;
    case 'boolean':
      room(1);
      out[at++] = v ? C_TRUE : C_FALSE;
      return true;
    case 'undefined':
      room(1);
      out[at++] = C_UNDEFINED;
      return true;
    case 'object': {
      if (v === null) {
        room(1);
        out[at++] = C_NULL;
        return true;
      }
      if (depth >= MAX_DEPTH) return false; // deep, or a cycle: v8 keeps those
      if (Array.isArray(v)) {
        const n = v.length;
        room(1);
        out[at++] = C_ARRAY;
        putCount(n);
        for (let i = 0; i < n; i++) if (!(i in v) || !putValue(v[i], depth + 1)) return false;
        return Object.keys(v).length === n; // no extra properties
      }
      if (Object.getPrototypeOf(v) !== Object.prototype) return false;
      const keys = Object.keys(v);
      room(1);
      out[at++] = C_OBJECT;
      putCount(keys.length);
      for (let i = 0; i < keys.length; i++) {
        const k = keys[i];
        if (k === '__proto__') return false;
        putString(k);
        if (!putValue((v as Record<string, unknown>)[k], depth + 1)) return false;
      }
      return true;
    }
    default:
      return false;
  }
}

/** The compact form of `v` in the scratch buffer (0..at), or false. */
function compact(v: unknown): boolean {
  if (out.length > 16 * SCRATCH_BYTES) out = Buffer.allocUnsafe(SCRATCH_BYTES); // one large message must not pin its size
  out[0] = F_COMPACT;
  at = 1;
  return putValue(v, 0);
}

// Reading the compact form.
let inp: Buffer = out;
let pos = 0;

/** Short ASCII strings recur (keys above all): a small cache saves creating them again. */
const seen: (string | null)[] = new Array(256).fill(null);

function getCount(): number {
  const n = inp[pos++];
  if (n < 255) return n;
  const m = inp.readUInt32LE(pos);
  pos += 4;
  return m;
}

function getString(): string {
  const b = inp[pos++];
  if (b <= 24) {
    let h = b;
    const end = pos + b;
    for (let i = pos; i < end; i++) h = (h * 31 + inp[i]) & 255;
    const c = seen[h];
    if (c !== null && c.length === b) {
      let same = true;
      for (let i = 0; i < b; i++) if (c.charCodeAt(i) !== inp[pos + i]) { same = false; break; }
      if (same) {
        pos = end;
        return c;
      }
    }
    const s = inp.toString('latin1', pos, end);
    seen[h] = s;
    pos = end;
    return s;
  }
  if (b < 254) {
    pos += b;
    return inp.toString('latin1', pos - b, pos);
  }
  const n = inp.readUInt32LE(pos);
  pos += 4;
  if (b === 254) {
    pos += n;
    return inp.toString('latin1', pos - n, pos);
  }
  pos += 2 * n;
  return inp.toString('utf16le', pos - 2 * n, pos);
}

function getValue(): unknown {
  switch (inp[pos++]) {
    case C_INT:
      pos += 4;
      return inp.readInt32LE(pos - 4);
    case C_FLOAT:
      pos += 8;
      return inp.readDoubleLE(pos - 8);
    case C_STRING: return getString();
    case C_TRUE: return true;
    case C_FALSE: return false;
    case C_NULL: return null;
    case C_UNDEFINED: return undefined;
    case C_ARRAY: {
      const n = getCount();
      const a: unknown[] = new Array(n);
      for (let i = 0; i < n; i++) a[i] = getValue();
      return a;
    }
    case C_OBJECT: {
      const n = getCount();
      const o: Record<string, unknown> = {};
      for (let i = 0; i < n; i++) {
        const k = getString();
        if (k === '__proto__') Object.defineProperty(o, k, { value: getValue(), enumerable: true, writable: true, configurable: true });
        else o[k] = getValue();
      }
      return o;
    }
    default:
      throw new RangeError(`unknown type byte ${inp[pos - 1]} at offset ${pos - 1}`);
  }
}

function fromCompact(buf: Buffer, offset: number, length: number): unknown {
  inp = buf;
  pos = offset + 1;
  let v: unknown;
  try {
    v = getValue();
  } catch (e) {
    throw new MPIError('ERR_SERIALIZE', `object message cannot be decoded: ${(e as Error).message}`);
  } finally {
    inp = out; // hold no received buffer
  }
  if (pos !== offset + length) throw new MPIError('ERR_SERIALIZE', `object message of ${length} bytes holds ${pos - offset} bytes of value`);
  return v;
}

const f64 = new Float64Array(1);
const f64bytes = new Uint8Array(f64.buffer);
/** encodeTemp's number message (flag, float64), reused like its buffer. */
const numberTemp = new Uint8Array(9);
numberTemp[0] = F_NUMBER;

const scalar = (flag: number): Uint8Array => {
  const b = new Uint8Array(1);
  b[0] = flag;
  return b;
};

function encodeScalar(value: unknown): Uint8Array | null {
  switch (typeof value) {
    case 'number': {
      const b = new Uint8Array(9);
      b[0] = F_NUMBER;
      f64[0] = value;
      b.set(f64bytes, 1);
      return b;
    }
    case 'string': {
      const b = Buffer.from(value, 'utf8');
      const r = new Uint8Array(b.length + 1);
      r[0] = F_STRING;
      r.set(b, 1);
      return r;
    }
    case 'boolean':
      return scalar(value ? F_TRUE : F_FALSE);
    case 'undefined':
      return scalar(F_UNDEFINED);
    default:
      return value === null ? scalar(F_NULL) : null;
  }
}

/** Serialize one object message into bytes of its own. */
export function encode(value: unknown, where = 'send'): Uint8Array {
  const s = encodeScalar(value);
  if (s) return s;
  if (compact(value)) {
    if (at > SCRATCH_BYTES) { // hand a large result over instead of copying it
      const r = out.subarray(0, at);
      out = Buffer.allocUnsafe(SCRATCH_BYTES);
      return r;
    }
    return new Uint8Array(out.subarray(0, at));
  }
  return encodeV8(value, where);
}

/**
 * Serialize one object message for a call that is done with the bytes before it returns (a
 * blocking send or collective): plain data stays in the reused buffer, valid until the next
 * encode, so nothing is allocated.
 */
export function encodeTemp(value: unknown, where = 'send'): Uint8Array {
  if (typeof value === 'number') {
    f64[0] = value;
    numberTemp.set(f64bytes, 1);
    return numberTemp;
  }
  const s = encodeScalar(value);
  if (s) return s;
  if (compact(value)) return out.subarray(0, at);
  return encodeV8(value, where);
}

function encodeV8(value: unknown, where: string): Uint8Array {
  let payload: Buffer;
  let flag = 0;
  try {
    const enc = encodeWalk(value, new Set());
    flag = hasWrapper(value, enc) ? 1 : 0;
    payload = v8.serialize(enc);
  } catch (e) {
    throw new MPIError('ERR_SERIALIZE', `${where}: value cannot be serialized: ${(e as Error).message}`);
  }
  const r = new Uint8Array(payload.length + 1);
  r[0] = flag;
  r.set(payload, 1);
  return r;
}

function hasWrapper(orig: unknown, enc: unknown): boolean {
  return orig !== enc; // encodeWalk copies exactly when it replaced something
}

/** Deserialize one object message (`length` bytes of `bytes` from `offset`). */
export function decode(bytes: Uint8Array, length = bytes.length, offset = 0): unknown {
  if (length < 1) throw new MPIError('ERR_SERIALIZE', 'object message is empty (expected a flag byte)');
  const buf = bytes instanceof Buffer ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const flag = buf[offset];
  switch (flag) {
    case F_NUMBER:
      if (length !== 9) break;
      return buf.readDoubleLE(offset + 1);
    case F_STRING:
      return buf.toString('utf8', offset + 1, offset + length);
    case F_TRUE: return true;
    case F_FALSE: return false;
    case F_NULL: return null;
    case F_UNDEFINED: return undefined;
    case F_COMPACT:
      return fromCompact(buf, offset, length);
  }
  // v8.deserialize gives typed arrays that view its input: copy a message that shares its memory
  // (the staging buffer of small receives, a packed allgather) so that they stay its own.
  let body = buf.subarray(offset + 1, offset + length);
  if (buf.byteOffset + offset !== 0 || length !== buf.buffer.byteLength) {
    const own = new Uint8Array(body);
    body = Buffer.from(own.buffer, 0, own.length);
  }
  let v: unknown;
  try {
    v = v8.deserialize(body);
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
