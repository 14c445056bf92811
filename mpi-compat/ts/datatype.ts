/**
 * Datatypes: the typed arrays that buffer messages (Send/Recv/...) move, and the wire id that
 * every buffer message carries so that a receive into a different element type is an error
 * instead of silent garbage.
 *
 * Wire ids 1..11 name typed-array element types; 0 is reserved for object messages (v8-serialized
 * bytes, see serialization.ts). The ids are this layer's own; they travel in the data plane's
 * per-message datatype word.
 */
import { MPIError, typeError } from './errors.js';

/** A typed array that buffer messages can move (DataView is not one: it has no element type). */
export type TypedArray =
  | Int8Array | Uint8Array | Uint8ClampedArray | Int16Array | Uint16Array
  | Int32Array | Uint32Array | Float32Array | Float64Array | BigInt64Array | BigUint64Array;

/** Typed arrays whose elements are numbers (not bigints). */
export type NumberArray = Exclude<TypedArray, BigInt64Array | BigUint64Array>;

/** A typed-array constructor. */
export type TypedArrayConstructor = { new(n: number): TypedArray; new(buf: ArrayBufferLike, off: number, len: number): TypedArray; readonly BYTES_PER_ELEMENT: number; readonly name: string };

/** The wire id of object messages. */
export const OBJECT_TYPE = 0;

const CTORS: TypedArrayConstructor[] = [
  // index = wire id; 0 is the object datatype.
  undefined as unknown as TypedArrayConstructor,
  Int8Array, Uint8Array, Uint8ClampedArray, Int16Array, Uint16Array,
  Int32Array, Uint32Array, Float32Array, Float64Array, BigInt64Array, BigUint64Array,
] as TypedArrayConstructor[];

/** MPI-style names of the datatypes, by wire id (used in error messages). */
export const TYPE_NAMES = ['object', 'int8', 'uint8', 'uint8clamped', 'int16', 'uint16', 'int32', 'uint32', 'float32', 'float64', 'bigint64', 'biguint64'];

const ID_BY_CTOR = new Map<unknown, number>(CTORS.map((c, i) => [c, i] as [unknown, number]).slice(1));

/** True when `v` is a typed array other than DataView. */
export function isTypedArray(v: unknown): v is TypedArray {
  return ArrayBuffer.isView(v) && !(v instanceof DataView);
}

/**
 * Each typed-array prototype carries its wire id under a private symbol (non-enumerable), so the
 * hot path reads one property through an inline cache instead of hashing the constructor.
 */
const TYPE_ID: unique symbol = Symbol.for('sfmpi.typeId') as never;
CTORS.forEach((C, id) => {
  if (C && !Object.prototype.hasOwnProperty.call(C.prototype, TYPE_ID)) {
    Object.defineProperty(C.prototype, TYPE_ID, { value: id, enumerable: false, writable: false, configurable: false });
  }
});

/** The wire id of a typed array (Node's Buffer counts as uint8), or -1 for anything else. */
export function typeIdOf(v: unknown): number {
  const fast = (v as { [TYPE_ID]?: number } | null | undefined)?.[TYPE_ID];
  if (typeof fast === 'number' && ArrayBuffer.isView(v)) return fast;
  if (!isTypedArray(v)) return -1;
  const id = ID_BY_CTOR.get(v.constructor);
  if (id !== undefined) return id;
  // Buffer and other subclasses: walk up to the built-in constructor.
  for (const [ctor, cid] of ID_BY_CTOR) if (v instanceof (ctor as TypedArrayConstructor)) return cid;
  return -1;
}

/** The constructor for a wire id. */
export function ctorOf(id: number): TypedArrayConstructor {
  const c = CTORS[id];
  if (!c) throw new RangeError(`unknown datatype id ${id}`);
  return c;
}

/** Check that `buf` is a typed array, naming the argument otherwise. */
export function requireTypedArray(where: string, name: string, buf: unknown): TypedArray {
  if (!isTypedArray(buf)) throw typeError(where, `${name} must be a typed array (Float64Array, Int32Array, ...)`, buf);
  return buf;
}

/** A byte view of a typed array's elements (no copy). */
export function bytesOf(a: TypedArray): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

/** "40 bytes (10 int32)", or "40 bytes" for object messages. */
export function elems(nbytes: number, id: number): string {
  const C = id > 0 ? CTORS[id] : undefined;
  return C ? `${nbytes} bytes (${nbytes / C.BYTES_PER_ELEMENT} ${TYPE_NAMES[id]})` : `${nbytes} bytes`;
}

/** Why a receive refused its message: the binding's status array says so in its fifth entry. */
export const REFUSED = { none: 0, truncated: 1, typeMismatch: 2 } as const;

/**
 * The error of a receive that refused its message, in the communicator's ranks: truncation (the
 * buffer is too short) or a type mismatch (another element type, or an object message).
 * @param source the sender's rank in the communicator
 */
export function refusedError(where: string, refused: number, source: number, tag: number, nbytes: number, sentType: number, buf: TypedArray): MPIError {
  const mine = typeIdOf(buf);
  if (refused === REFUSED.typeMismatch) {
    const sent = sentType === OBJECT_TYPE ? 'an object message (send)' : `${TYPE_NAMES[sentType] ?? 'unknown'} elements`;
    return new MPIError('ERR_TYPE', `${where}: type mismatch: rank ${source} sent ${sent} with tag ${tag}, but the receive buffer is ${TYPE_NAMES[mine]}` +
      (sentType === OBJECT_TYPE ? ' (use recv for object messages)' : ''), { rank: source });
  }
  return new MPIError('ERR_TRUNCATE', `${where}: message truncated: rank ${source} sent ${elems(nbytes, sentType)} with tag ${tag}, but the receive buffer holds ${elems(buf.byteLength, mine)}`, { rank: source });
}
