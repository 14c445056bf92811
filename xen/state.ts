/**
 * The state split: a state value that a program hands to its clones (`clone(ticket, state)`,
 * `MPI.init({ share })`) becomes a small blob, which travels in the descriptor, and the large
 * buffers in it, which become regions whose pages a seed fetches on demand. In the seed,
 * `joinState` rebuilds the value from the blob and one ArrayBuffer per region (lazily mapped).
 *
 * What becomes a region: every buffer of a `region()` array, and every other ArrayBuffer of at
 * least `threshold` bytes (default 64 KiB: below that a page fault and a round trip cost more
 * than the bytes). A buffer is a region whole, whichever part of it the state's views cover.
 *
 * Blob layout (big-endian):
 *
 *      0               1               2               3
 *     +---------------+---------------+---------------+---------------+
 *   0 |  version (1)  |                  reserved (0)                 |
 *     +---------------+-----------------------------------------------+
 *   4 |   buffer count (u32, <= MAX_STATE_BUFFERS): the distinct ArrayBuffers the value reaches
 *     +---------------------------------------------------------------+
 *   8 |   buffer table, in index order, each entry:                   |
 *     |     kind (u8: 0 inline, 1 region), reserved (3 bytes, 0)      |
 *     |     inline: byte length (u32), the bytes                      |
 *     |     region: slot (u32, = regions before it), byte length (u64)|
 *     +---------------------------------------------------------------+
 *     |   v8 payload: v8.Serializer's header and value, to the end    |
 *     +---------------------------------------------------------------+
 *
 * In the v8 payload, an ArrayBuffer reached directly is "transferred" (written as its index in
 * the buffer table, not its bytes), and every typed array, DataView and Buffer is a host object
 * written here as: buffer index (u32), view kind (u32, VIEW_KINDS), byte offset (double),
 * length in elements (double). So each buffer's bytes appear once, or not at all for regions.
 *
 * Why v8.Serializer and not mpi-compat/ts/serialization.ts: the state is a graph, not a
 * message. v8's structured clone keeps shared references and cycles (an object reached twice
 * comes back as one object), and its hooks (host objects for views, transferred ArrayBuffers)
 * let buffers leave the blob by reference while keeping their identity: two views of one buffer
 * come back as two views of one buffer, at the same offsets. serialization.ts is tuned for small
 * messages (a JSON fast path that loses sharing, mathjs revival) and copies every view's bytes.
 *
 * Rules (each refused with a TypeError naming the part, like runtime/state.ts checkState):
 * functions, symbols, WeakMap/WeakSet/WeakRef/FinalizationRegistry, Promises; SharedArrayBuffers and views of them
 * (memory shared between threads of one process cannot be shared with another host: copy it into
 * an ArrayBuffer or a region()); detached ArrayBuffers (their memory is gone); resizable
 * ArrayBuffers (a region has a fixed length). Class instances come back as plain objects, as
 * with any structured clone (mathjs values included: send those with the MPI calls instead);
 * subclasses of typed arrays come back as their base type. A Buffer from Node's 8 KiB pool
 * (Buffer.from(string), small allocUnsafe) comes back with a buffer of its own, as with Node's
 * v8.serialize, so that the pool's unrelated bytes stay home: that is the case when an
 * ArrayBuffer of Buffer.poolSize bytes is reached only through Buffers that do not cover it.
 */
import * as v8 from 'node:v8';
import { native } from '../native/addon.js';
import { regionOf, type RegionEntry } from '../runtime/region.js';
import { DescriptorError, LIMITS, pageCountOf, ZeroMap, type DescriptorRegion, type ElementType } from './descriptor.js';

/** Buffers of at least this many bytes become regions (unless `splitState` is told otherwise). */
export const STATE_REGION_THRESHOLD = 64 * 1024;
/** Most distinct buffers one state may reach (the buffer table's limit). */
export const MAX_STATE_BUFFERS = 65536;
/** The blob format's version. */
export const STATE_VERSION = 1;

/** The views the blob can carry; the index is the code in the v8 payload. */
const VIEW_KINDS = [
  'Int8Array',
  'Uint8Array',
  'Uint8ClampedArray',
  'Int16Array',
  'Uint16Array',
  'Int32Array',
  'Uint32Array',
  'Float32Array',
  'Float64Array',
  'BigInt64Array',
  'BigUint64Array',
  'DataView',
  'Buffer',
] as const;
type ViewKind = (typeof VIEW_KINDS)[number];
type ViewCtor = new (buffer: ArrayBuffer, byteOffset: number, length: number) => ArrayBufferView;
const CTORS: Record<ViewKind, ViewCtor> = {
  Int8Array,
  Uint8Array,
  Uint8ClampedArray,
  Int16Array,
  Uint16Array,
  Int32Array,
  Uint32Array,
  Float32Array,
  Float64Array,
  BigInt64Array,
  BigUint64Array,
  DataView: DataView as unknown as ViewCtor,
  Buffer: function (buffer: ArrayBuffer, byteOffset: number, length: number) {
    return Buffer.from(buffer, byteOffset, length);
  } as unknown as ViewCtor,
};

/** One buffer of the state that becomes a region. */
export interface StateRegion {
  /** Its place in the state: index of its ArrayBuffer in joinState's `views`. */
  readonly slot: number;
  /** The buffer (the whole of it becomes the region). */
  readonly buffer: ArrayBuffer;
  /** Bytes. */
  readonly byteLength: number;
  /** Where the value first reaches it ("state.grid.cells"), for messages. */
  readonly path: string;
  /** The type of the first typed array that reaches it; 'ArrayBuffer' if none does. */
  readonly elementType: ElementType;
  /** Its entry in the region table when it is a `region()` array's buffer. */
  readonly region?: RegionEntry;
}

/** What {@link splitState} returns. */
export interface SplitState {
  /** The small part, for the descriptor's state field. */
  readonly blob: Uint8Array;
  /** The large part, by slot. */
  readonly regions: StateRegion[];
}

/** Options of {@link splitState}. */
export interface SplitOptions {
  /** Buffers of at least this many bytes become regions; default {@link STATE_REGION_THRESHOLD}. */
  threshold?: number;
  /** Names the caller in errors; default 'splitState(value)'. */
  where?: string;
}

interface PathNode {
  readonly parent: PathNode | null;
  readonly key: string;
}

function pathOf(node: PathNode): string {
  const keys: string[] = [];
  for (let n: PathNode | null = node; n; n = n.parent) keys.push(n.key);
  return keys.reverse().join('');
}

const IDENT = /^[A-Za-z_$][\w$]*$/;
const propKey = (k: string) => (IDENT.test(k) ? `.${k}` : /^\d+$/.test(k) ? `[${k}]` : `[${JSON.stringify(k)}]`);

interface BufferEntry {
  buffer: ArrayBuffer;
  node: PathNode;
  elementType: ElementType;
  slot: number; // -1: inline
  region?: RegionEntry;
  /** Reached bare, through a typed array or DataView, or through a Buffer that covers it whole. */
  wholeUse: boolean;
}

/** One entry of the blob's buffer table. */
interface TableEntry {
  buffer: ArrayBuffer;
  slot: number; // -1: inline
}

function isDetached(buffer: ArrayBuffer): boolean {
  if (buffer.byteLength !== 0) return false;
  try {
    new Uint8Array(buffer);
    return false;
  } catch {
    return true;
  }
}

function viewKind(view: ArrayBufferView): ViewKind | undefined {
  if (Buffer.isBuffer(view)) return 'Buffer';
  if (view instanceof DataView) return 'DataView';
  // The TypedArray prototype's toStringTag getter gives the base type, for subclasses too.
  const tag = (view as unknown as { [Symbol.toStringTag]: unknown })[Symbol.toStringTag];
  return typeof tag === 'string' && (VIEW_KINDS as readonly string[]).includes(tag) ? (tag as ViewKind) : undefined;
}

/** Node's v8.Serializer hooks that @types/node does not declare. */
interface SerializerHooks {
  _setTreatArrayBufferViewsAsHostObjects(flag: boolean): void;
}

class StateSerializer extends v8.Serializer {
  constructor(private readonly place: (view: ArrayBufferView) => { index: number; offset: number }) {
    super();
    (this as unknown as SerializerHooks)._setTreatArrayBufferViewsAsHostObjects(true);
  }

  _writeHostObject(object: object): void {
    if (!ArrayBuffer.isView(object)) throw new TypeError(`a ${object.constructor?.name ?? 'host object'} (a native object) cannot be serialized`);
    const kind = viewKind(object)!;
    const { index, offset } = this.place(object);
    this.writeUint32(index);
    this.writeUint32(VIEW_KINDS.indexOf(kind));
    this.writeDouble(offset);
    this.writeDouble(kind === 'DataView' || kind === 'Buffer' ? object.byteLength : (object as unknown as { length: number }).length);
  }
}

/**
 * Splits a state value into a blob and the buffers that become regions (see the header
 * comment). The value is only read; the regions' buffers are the value's own (not copies).
 * @throws TypeError naming the first part of the value that cannot go to a clone on another host.
 * @throws DescriptorError ERR_DESCRIPTOR_TOO_LARGE when the blob would be over the descriptor's
 *   state limit (LIMITS.state), or the regions over LIMITS.regions.
 */
export function splitState(value: unknown, options: SplitOptions = {}): SplitState {
  const threshold = options.threshold ?? STATE_REGION_THRESHOLD;
  const where = options.where ?? 'splitState(value)';
  if (!Number.isSafeInteger(threshold) || threshold < 1)
    throw new RangeError(`${where}: options.threshold must be a positive integer number of bytes, got ${threshold}`);

  const buffers: BufferEntry[] = [];
  const index = new Map<ArrayBuffer, number>();
  let regionCount = 0;
  const bad = (node: PathNode, what: string) =>
    new TypeError(`${where}: ${pathOf(node)} is ${what}, which cannot be sent to a clone on another host`);

  const register = (buffer: ArrayBuffer, node: PathNode, type: ElementType, asView: boolean, wholeUse: boolean): number => {
    const known = index.get(buffer);
    if (known !== undefined) {
      const e = buffers[known];
      if (e.elementType === 'ArrayBuffer' && type !== 'ArrayBuffer') e.elementType = type;
      e.wholeUse ||= wholeUse;
      return known;
    }
    const of = asView ? 'a view of ' : '';
    if (isDetached(buffer)) throw bad(node, `${of}a detached ArrayBuffer (its memory was transferred away)`);
    if ((buffer as unknown as { resizable?: boolean }).resizable === true)
      throw bad(node, `${of}a resizable ArrayBuffer (a region has a fixed length: copy it into a fixed-length one)`);
    if (buffers.length >= MAX_STATE_BUFFERS)
      throw new DescriptorError('ERR_DESCRIPTOR_TOO_LARGE', `${where}: the state reaches more than ${MAX_STATE_BUFFERS} distinct ArrayBuffers`, 'state');
    const region = regionOf(buffer);
    const large = region !== undefined || buffer.byteLength >= threshold;
    if (large && regionCount >= LIMITS.regions)
      throw new DescriptorError(
        'ERR_DESCRIPTOR_TOO_LARGE',
        `${where}: ${pathOf(node)} would be region ${regionCount + 1}, over the limit of ${LIMITS.regions} regions in a descriptor: put large arrays together in fewer buffers`,
        'regions',
      );
    const entry: BufferEntry = { buffer, node, elementType: type, slot: large ? regionCount++ : -1, wholeUse, ...(region ? { region } : {}) };
    index.set(buffer, buffers.length);
    buffers.push(entry);
    return buffers.length - 1;
  };

  const viewBuffer = (view: ArrayBufferView, node: PathNode): number => {
    const kind = viewKind(view);
    if (kind === undefined) throw bad(node, `a ${view.constructor?.name ?? 'view'}, a kind of view the state cannot carry`);
    if (view.buffer instanceof SharedArrayBuffer)
      throw bad(node, 'a view of a SharedArrayBuffer (memory shared between threads of one process cannot be shared with another host: copy it into an ArrayBuffer or a region())');
    const type: ElementType = kind === 'DataView' ? 'ArrayBuffer' : kind === 'Buffer' ? 'Uint8Array' : kind;
    const partialBuffer = kind === 'Buffer' && view.byteLength < view.buffer.byteLength;
    return register(view.buffer as ArrayBuffer, node, type, true, !partialBuffer);
  };

  // Walk the value as v8 will (own enumerable string keys, Map and Set entries, an Error's
  // cause), iteratively so that deep values do not overflow the stack, to find every buffer
  // before v8 does: a bare ArrayBuffer must be marked for transfer before it is written.
  const root: PathNode = { parent: null, key: 'state' };
  const stack: [unknown, PathNode][] = [[value, root]];
  const seen = new Set<object>();
  while (stack.length > 0) {
    const [v, node] = stack.pop()!;
    if (typeof v === 'function') throw bad(node, 'a function');
    if (typeof v === 'symbol') throw bad(node, 'a symbol');
    if (v === null || typeof v !== 'object') continue;
    if (seen.has(v)) continue;
    seen.add(v);
    if (v instanceof SharedArrayBuffer)
      throw bad(node, 'a SharedArrayBuffer (memory shared between threads of one process cannot be shared with another host: copy it into an ArrayBuffer or a region())');
    if (v instanceof ArrayBuffer) {
      register(v, node, 'ArrayBuffer', false, true);
      continue;
    }
    if (ArrayBuffer.isView(v)) {
      viewBuffer(v, node);
      continue;
    }
    if (v instanceof WeakMap || v instanceof WeakSet || v instanceof WeakRef || v instanceof FinalizationRegistry || v instanceof Promise)
      throw bad(node, `a ${v.constructor.name}`);
    // Children are pushed last first, so that they are visited (and paths named) in order.
    const children: [unknown, PathNode][] = [];
    if (v instanceof Map) {
      let i = 0;
      for (const [k, x] of v) {
        children.push([k, { parent: node, key: ` key ${i}` }], [x, { parent: node, key: `.get(${i})` }]);
        i++;
      }
    } else if (v instanceof Set) {
      let i = 0;
      for (const x of v) children.push([x, { parent: node, key: ` item ${i++}` }]);
    } else if (v instanceof Error) {
      if (Object.hasOwn(v, 'cause')) children.push([(v as { cause?: unknown }).cause, { parent: node, key: '.cause' }]);
    } else if (!(v instanceof Date || v instanceof RegExp || v instanceof Number || v instanceof String || v instanceof Boolean)) {
      for (const k of Object.keys(v)) children.push([(v as Record<string, unknown>)[k], { parent: node, key: propKey(k) }]);
    }
    for (let i = children.length - 1; i >= 0; i--) stack.push(children[i]);
  }

  // The buffer table. Node's small Buffers share an 8 KiB pool with unrelated data: a pool
  // reached only through Buffers that do not cover it is left out, and each of those Buffers
  // is carried as its own bytes instead (what Node's own v8.serialize does with every Buffer).
  const isPool = (e: BufferEntry) => e.slot < 0 && !e.wholeUse && e.buffer.byteLength === Buffer.poolSize;
  const table: TableEntry[] = [];
  const tableIndex = new Map<ArrayBuffer, number>();
  const add = (buffer: ArrayBuffer, slot: number) => {
    if (table.length >= MAX_STATE_BUFFERS)
      throw new DescriptorError('ERR_DESCRIPTOR_TOO_LARGE', `${where}: the state holds more than ${MAX_STATE_BUFFERS} distinct buffers`, 'state');
    table.push({ buffer, slot });
    return table.length - 1;
  };
  for (const e of buffers) if (!isPool(e)) tableIndex.set(e.buffer, add(e.buffer, e.slot));
  const copies = new Map<ArrayBufferView, number>();
  const place = (view: ArrayBufferView): { index: number; offset: number } => {
    const buffer = view.buffer as ArrayBuffer;
    const copied = copies.get(view);
    if (copied !== undefined) return { index: copied, offset: 0 };
    let known = tableIndex.get(buffer);
    if (known !== undefined) return { index: known, offset: view.byteOffset };
    let entry = index.get(buffer);
    if (entry === undefined) {
      // A view the walk did not see (a getter that makes a new one each time): added as v8 meets it.
      entry = viewBuffer(view, { parent: root, key: ' (a view met only while serializing)' });
      const e = buffers[entry];
      if (!isPool(e)) {
        known = add(e.buffer, e.slot);
        tableIndex.set(e.buffer, known);
        return { index: known, offset: view.byteOffset };
      }
    }
    const copy = buffer.slice(view.byteOffset, view.byteOffset + view.byteLength);
    const at = add(copy, -1);
    copies.set(view, at);
    return { index: at, offset: 0 };
  };
  const ser = new StateSerializer(place);
  for (const [buffer, i] of tableIndex) ser.transferArrayBuffer(i, buffer);
  let payload: Buffer;
  try {
    ser.writeHeader();
    ser.writeValue(value);
    payload = ser.releaseBuffer();
  } catch (e) {
    if (e instanceof TypeError && e.message.startsWith(where)) throw e;
    if (e instanceof DescriptorError) throw e;
    throw new TypeError(`${where}: state cannot be serialized for a clone on another host: ${(e as Error).message}`);
  }

  let size = 8;
  for (const b of table) size += b.slot >= 0 ? 16 : 8 + b.buffer.byteLength;
  size += payload.length;
  if (size > LIMITS.state)
    throw new DescriptorError(
      'ERR_DESCRIPTOR_TOO_LARGE',
      `${where}: the state blob is ${size} bytes, over the descriptor's limit of ${LIMITS.state}: hand large data as typed arrays of at least ${threshold} bytes (they become regions) or region() arrays`,
      'state',
    );
  const blob = Buffer.alloc(size);
  blob[0] = STATE_VERSION;
  blob.writeUInt32BE(table.length, 4);
  let pos = 8;
  for (const b of table) {
    if (b.slot >= 0) {
      blob[pos] = 1;
      blob.writeUInt32BE(b.slot, pos + 4);
      blob.writeBigUInt64BE(BigInt(b.buffer.byteLength), pos + 8);
      pos += 16;
    } else {
      blob.writeUInt32BE(b.buffer.byteLength, pos + 4);
      blob.set(new Uint8Array(b.buffer), pos + 8);
      pos += 8 + b.buffer.byteLength;
    }
  }
  blob.set(payload, pos);

  const regions: StateRegion[] = [];
  for (const b of buffers)
    if (b.slot >= 0)
      regions.push({
        slot: b.slot,
        buffer: b.buffer,
        byteLength: b.buffer.byteLength,
        path: pathOf(b.node),
        elementType: b.elementType,
        ...(b.region ? { region: b.region } : {}),
      });
  return { blob, regions };
}

class StateDeserializer extends v8.Deserializer {
  constructor(
    bytes: Buffer,
    private readonly buffers: ArrayBuffer[],
    private readonly fail: (what: string) => DescriptorError,
  ) {
    super(bytes);
  }

  _readHostObject(): ArrayBufferView {
    const index = this.readUint32();
    const kind = this.readUint32();
    const offset = this.readDouble();
    const length = this.readDouble();
    if (index >= this.buffers.length) throw this.fail(`a view of buffer ${index}, the table has ${this.buffers.length}`);
    if (kind >= VIEW_KINDS.length) throw this.fail(`view kind ${kind} is not one of 0..${VIEW_KINDS.length - 1}`);
    if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(length) || length < 0)
      throw this.fail(`a ${VIEW_KINDS[kind]} at byte offset ${offset} of length ${length}: not non-negative integers`);
    try {
      return new CTORS[VIEW_KINDS[kind]](this.buffers[index], offset, length);
    } catch (e) {
      throw this.fail(`a ${VIEW_KINDS[kind]} of ${length} elements at byte offset ${offset} of buffer ${index} (${this.buffers[index].byteLength} bytes): ${(e as Error).message}`);
    }
  }
}

/**
 * Rebuilds a state value in a seed from its blob and one ArrayBuffer per region, by slot (the
 * lead passes the lazily mapped region buffers; their pages are only touched when the program
 * reads them). Typed arrays of a region are views of the given buffer, not copies; inline
 * buffers are copied out of the blob.
 * @throws DescriptorError ERR_DESCRIPTOR_STATE for a blob that breaks its format, or whose
 *   regions do not match `views` (count, byte lengths: views come from the same descriptor's
 *   region table, so a mismatch is a bad descriptor), naming the entry and offset.
 * @throws TypeError when a view is not an ArrayBuffer.
 */
export function joinState(blob: Uint8Array, views: readonly ArrayBuffer[] = []): unknown {
  const buf = Buffer.isBuffer(blob) ? blob : Buffer.from(blob.buffer, blob.byteOffset, blob.byteLength);
  const fail = (field: string, at: number, what: string) =>
    new DescriptorError('ERR_DESCRIPTOR_STATE', `state blob ${field} at offset ${at}: ${what}`, `state.${field}`, at);
  const need = (field: string, at: number, n: number) => {
    if (n > buf.length - at) throw fail(field, at, `needs ${n} bytes, only ${buf.length - at} remain`);
  };
  need('header', 0, 8);
  if (buf[0] !== STATE_VERSION) throw fail('version', 0, `version ${buf[0]}, this host reads version ${STATE_VERSION}`);
  for (let i = 1; i < 4; i++) if (buf[i] !== 0) throw fail('reserved', i, `reserved byte is ${buf[i]}, not 0`);
  const count = buf.readUInt32BE(4);
  if (count > MAX_STATE_BUFFERS) throw fail('buffers', 4, `${count} buffers is over the limit of ${MAX_STATE_BUFFERS}`);
  if (count * 8 > buf.length - 8) throw fail('buffers', 4, `${count} buffer entries cannot fit in the ${buf.length - 8} bytes that remain`);

  const buffers: ArrayBuffer[] = [];
  let regions = 0;
  let pos = 8;
  for (let i = 0; i < count; i++) {
    const f = `buffers[${i}]`;
    need(f, pos, 8);
    const kind = buf[pos];
    for (let j = 1; j < 4; j++) if (buf[pos + j] !== 0) throw fail(f, pos + j, `reserved byte is ${buf[pos + j]}, not 0`);
    if (kind === 0) {
      const n = buf.readUInt32BE(pos + 4);
      need(f, pos + 8, n);
      const copy = new ArrayBuffer(n);
      new Uint8Array(copy).set(buf.subarray(pos + 8, pos + 8 + n));
      buffers.push(copy);
      pos += 8 + n;
    } else if (kind === 1) {
      need(f, pos, 16);
      const slot = buf.readUInt32BE(pos + 4);
      if (slot !== regions) throw fail(f, pos + 4, `region slot ${slot}, expected ${regions} (slots are in table order)`);
      const length = buf.readBigUInt64BE(pos + 8);
      if (length > BigInt(LIMITS.regionBytes)) throw fail(f, pos + 8, `a region of ${length} bytes is over the limit of ${LIMITS.regionBytes}`);
      if (slot >= views.length) throw fail(f, pos + 4, `a region in slot ${slot}, but joinState was given ${views.length} region buffers`);
      const view = views[slot];
      if (!(view instanceof ArrayBuffer)) throw new TypeError(`joinState(blob, views): views[${slot}] must be an ArrayBuffer`);
      if (BigInt(view.byteLength) !== length)
        throw fail(f, pos + 8, `the region in slot ${slot} is ${length} bytes, but joinState's views[${slot}] is ${view.byteLength}`);
      buffers.push(view);
      regions++;
      pos += 16;
    } else throw fail(f, pos, `kind ${kind} is neither 0 (inline) nor 1 (region)`);
  }
  if (views.length !== regions) throw fail('buffers', 4, `${regions} regions, but joinState was given ${views.length} region buffers`);

  const payloadAt = pos;
  const de = new StateDeserializer(buf.subarray(payloadAt), buffers, (what) => fail('payload', payloadAt, what));
  buffers.forEach((b, i) => de.transferArrayBuffer(i, b));
  try {
    de.readHeader();
    return de.readValue();
  } catch (e) {
    if (e instanceof DescriptorError) throw e;
    throw fail('payload', payloadAt, `cannot be deserialized: ${(e as Error).message}`);
  }
}

/** Options of {@link describeRegions}. */
export interface DescribeOptions {
  /** The memory server's id of each region, by slot; default slot + 1. */
  ids?: readonly number[];
  /** Which pages are known zero, by slot (from the native pagemap scan, or scanZeroPages); default none. */
  zeroMaps?: readonly (ZeroMap | undefined)[];
}

/**
 * The descriptor's region table for a split state: one entry per region, in slot order, with
 * the page size and huge-page advice of its region table entry (the host's page size and none
 * for ordinary buffers).
 */
export function describeRegions(split: SplitState, options: DescribeOptions = {}): DescriptorRegion[] {
  const hostPage = native.pageSize();
  return split.regions.map((r) => {
    const pageSize = r.region?.pageSize ?? hostPage;
    return {
      id: options.ids?.[r.slot] ?? r.slot + 1,
      slot: r.slot,
      path: r.path,
      byteLength: r.byteLength,
      pageSize,
      hugePages: r.region?.hugePages ?? false,
      elementType: r.elementType,
      zeroMap: options.zeroMaps?.[r.slot] ?? ZeroMap.none(pageCountOf(r.byteLength, pageSize)),
    };
  });
}
