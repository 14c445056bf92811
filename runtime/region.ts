/** Regions: large typed arrays in memory the runtime knows page by page (DESIGN.md, "region"). */
import { allocRegion } from '../xen/domain.js';

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
  return new type(allocRegion(length * type.BYTES_PER_ELEMENT, options), 0, length);
}
