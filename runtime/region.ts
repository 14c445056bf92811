/**
 * Regions: large typed arrays in memory the runtime knows page by page (DESIGN.md, "region").
 * Every region is in the region table, from which a descriptor for a clone on another host is
 * built (id, length, page size, huge pages or not, whether untouched pages are known zero).
 */
import { allocRegion } from '../xen/domain.js';
import { native } from '../native/addon.js';

type TypedArrayCtor<T> = { new (buffer: ArrayBuffer, byteOffset?: number, length?: number): T; BYTES_PER_ELEMENT: number };

/**
 * A zero-filled typed array of `length` elements in a region: page-aligned memory outside the
 * JavaScript heap, on huge pages when large, so that clones of a process holding gigabytes fork
 * in milliseconds. Use it for the big arrays a job loads before its fork point.
 *
 * @example const a = region(Float64Array, 1 << 27) // 1 GiB
 */
export function region<T>(type: TypedArrayCtor<T>, length: number, options: { hugePages?: boolean } = {}): T {
  if (!Number.isSafeInteger(length) || length < 1)
    throw new RangeError(`region(type, length): length must be a positive integer, got ${length}`);
  const buffer = allocRegion(length * type.BYTES_PER_ELEMENT, options);
  const bytes = buffer.byteLength;
  const entry: RegionEntry = {
    id: nextRegion++,
    base: native.bufferAddress(buffer),
    length: bytes,
    pageSize: native.pageSize(),
    hugePages: (options.hugePages ?? true) && bytes >= 2 << 20,
    zeroKnown: true,
  };
  table.set(buffer, entry);
  live.add(new WeakRef(buffer));
  return new type(buffer, 0, length);
}

/** One entry of the region table. */
export interface RegionEntry {
  /** Unique in this process, in order of allocation (1, 2, ...). */
  readonly id: number;
  /** Address of its first byte. */
  readonly base: bigint;
  /** Bytes. */
  readonly length: number;
  /** The host's base page size (the unit a page map counts). */
  readonly pageSize: number;
  /** Advised onto 2 MiB transparent huge pages. */
  readonly hugePages: boolean;
  /** Pages never written are known to be zero (regions start zero-filled). */
  readonly zeroKnown: boolean;
}

let nextRegion = 1;
const table = new WeakMap<ArrayBuffer, RegionEntry>();
const live = new Set<WeakRef<ArrayBuffer>>();

/** The region a typed array (or ArrayBuffer) lives in, or undefined for ordinary memory. */
export function regionOf(view: ArrayBufferView | ArrayBuffer): RegionEntry | undefined {
  const buffer = view instanceof ArrayBuffer ? view : view.buffer;
  return buffer instanceof ArrayBuffer ? table.get(buffer) : undefined;
}

/** Every live region of this process, by id. */
export function regionTable(): RegionEntry[] {
  const out: RegionEntry[] = [];
  for (const ref of live) {
    const b = ref.deref();
    if (b === undefined) live.delete(ref);
    else out.push(table.get(b)!);
  }
  return out.sort((a, b) => a.id - b.id);
}
