/**
 * Descriptors: what a host needs to start a clone of a running program (DESIGN.md, "A remote
 * clone"), and nothing more. A seed on another host has re-run the program to its fork point
 * and waits there; the descriptor tells it which program and fork point it is at (checked
 * against its own), which clone ids it becomes, the small part of the handed-over state, and
 * the region table of the large part, whose pages it fetches from the memory server on demand.
 * No page contents ever travel in a descriptor.
 *
 * Layout (big-endian, like every other format of the cluster network):
 *
 *      0                   1                   2                   3
 *      0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 *     +---------------------------------------------------------------+
 *   0 |                   magic 0x53464453 ("SFDS")                   |
 *     +---------------+---------------+-------------------------------+
 *   4 |  version (1)  | flags (0)     |         reserved (0)          |
 *     +---------------+---------------+-------------------------------+
 *   8 |        total length in bytes, header and MAC included (u32)   |
 *     +---------------------------------------------------------------+
 *  12 |  body (the fields below, in this order, no padding) ...       |
 *     +---------------------------------------------------------------+
 * n-32|  MAC: HMAC-SHA256(job secret, "sfmpi descriptor v1\0" |       |
 *     |       bytes 0..n-32), 32 bytes                                |
 *     +---------------------------------------------------------------+
 *
 *   body field            encoding                  limit (LIMITS)
 *   job id                str8                      1..128 bytes
 *   program path          str16, absolute           1..4096 (PATH_MAX)
 *   program sha256        32 bytes                  SHA-256 of the program file's content
 *   working directory     str16, absolute           1..4096
 *   argument count        u32                       0..65536
 *   arguments             count x str32             each 0..131072 (MAX_ARG_STRLEN), 2 MiB in all
 *   fork point sequence   u32                       which fork point of the program (0, 1, ...)
 *   fork point label      str8                      1..128 ("MPI.init", "clone")
 *   world size            u32                       2..65536 (origin and every clone)
 *   clone count           u32                       1..4096 (clones of one seed's host)
 *   clone ids             count x u32               strictly increasing, 1..world size - 1
 *   server host           str8                      1..253 (a name, for messages)
 *   server address        4 bytes                   IPv4, unicast
 *   server port           u16                       1..65535
 *   multicast             u8 0 or 1, u8 reserved 0, 4 bytes IPv4 group (224.0.0.0/4), u16 port;
 *                         group and port all zero when multicast is 0
 *   state length          u32                       0..2 MiB
 *   state                 bytes                     the state blob (xen/state.ts), opaque here
 *   region count          u16                       0..1024
 *   regions               count x region:
 *
 *     +---------------------------------------------------------------+
 *   0 |   region id (u32, >= 1, unique: the memory server's name)     |
 *     +---------------------------------------------------------------+
 *   4 |   slot (u32): its place in the state, an index into joinState's views; unique, < count
 *     +---------------------------------------------------------------+
 *   8 |   byte length (u64, 1..2^40)                                  |
 *     +---------------------------------------------------------------+
 *  16 |   page size (u32, a power of two, 4 KiB..1 GiB): the unit of the zero map
 *     +---------------+---------------+---------------+---------------+
 *  20 | flags: bit 0  | element type  | zero map      | reserved (0)  |
 *     | huge pages    | (ELEMENT_TYPES)| encoding     |               |
 *     +---------------+---------------+---------------+---------------+
 *  24 |   path in the state (str16, 1..1024: "state.grid.cells", for messages)
 *     +---------------------------------------------------------------+
 *     |   zero map length (u32), zero map bytes                       |
 *     +---------------------------------------------------------------+
 *
 *   str8/str16/str32: a u8/u16/u32 byte length, then that many bytes of UTF-8 (valid, no NUL).
 *
 * Zero maps (one bit per page, 1 = the page is known to be zero and is filled locally without a
 * fetch; page p is bit p & 7 of byte p >> 3, padding bits 0). The encoder picks the smallest of:
 * 0 none (no page known zero: 0 bytes), 1 all (every page: 0 bytes), 2 bitmap (ceil(pages / 8)
 * bytes), 3 runs (run lengths as canonical unsigned LEB128, alternating data pages, zero pages,
 * data pages..., starting with data pages; only the first run may be empty; they sum to the page
 * count; fewer bytes than the bitmap). So a descriptor is at most 64 KiB plus one bit per region
 * page, and much less for a mostly-zero or mostly-written region (SnowFlock's took 1 MB per GB).
 *
 * Why these limits: the total, 4 MiB, is the control frame's MAX_PAYLOAD (dom0/wire.ts), so a
 * descriptor always travels as one frame; with 4 KiB pages that leaves room for the raw bitmaps
 * of about 120 GiB of regions. Path and argument limits are Linux's (PATH_MAX, MAX_ARG_STRLEN,
 * ARG_MAX at an 8 MiB stack), so any program that could be started can be described. The others
 * bound what a descriptor can make a seed allocate: decoding allocates no more than the
 * descriptor's own size (zero maps stay in their encoded form until asked for).
 *
 * Checks, in this order, each a {@link DescriptorError} naming the field and its offset: the
 * header as far as it is there (magic, version, flags, reserved), then the total length (over
 * the limit, shorter than the bytes given: trailing bytes, longer: truncated), then the MAC
 * (compared with timingSafeEqual: a forged or altered descriptor, or one made with another job's
 * secret, is refused before any field of the body is read), then every field of the body: every
 * length against its limit and against what remains, every count against its maximum before
 * anything is allocated for it, enums, reserved bytes, UTF-8, and no bytes left over. A seed then
 * checks the program identity against its own ({@link checkProgram}).
 *
 * Left out on purpose: the job secret (the seed has it already, from its dom0), the environment
 * (dom0 started the seed with the origin's, see dom0/wire.ts `start`), page contents, and any
 * encryption: like the rest of the cluster network this is authenticated, not secret (the state
 * blob travels in clear).
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';

/** "SFDS": sfmpi descriptor. */
export const DESCRIPTOR_MAGIC = 0x53464453;
/** The format's version; a descriptor of any other version is refused. */
export const DESCRIPTOR_VERSION = 1;
/** Bytes before the body. */
export const DESCRIPTOR_HEADER_SIZE = 12;
/** Bytes of the MAC that ends every descriptor. */
export const DESCRIPTOR_MAC_SIZE = 32;

/** The format's limits (see the header comment for why each is what it is). */
export const LIMITS = {
  /** Whole descriptor, header and MAC included (dom0/wire.ts MAX_PAYLOAD). */
  total: 4 * 1024 * 1024,
  /** Job id, bytes of UTF-8. */
  jobId: 128,
  /** Program path and working directory, bytes (PATH_MAX). */
  path: 4096,
  /** Number of program arguments. */
  argCount: 65536,
  /** One argument, bytes (Linux's MAX_ARG_STRLEN). */
  arg: 131072,
  /** All arguments together, bytes. */
  args: 2 * 1024 * 1024,
  /** Fork point label, bytes. */
  label: 128,
  /** World size: the origin and every clone. */
  worldSize: 65536,
  /** Clone ids in one descriptor. */
  clones: 4096,
  /** Memory server host name, bytes (a DNS name's maximum). */
  host: 253,
  /** State blob, bytes. */
  state: 2 * 1024 * 1024,
  /** Regions in one descriptor. */
  regions: 1024,
  /** A region's path in the state, bytes. */
  regionPath: 1024,
  /** One region's byte length (1 TiB). */
  regionBytes: 2 ** 40,
  /** Smallest page size of a region. */
  minPageSize: 4096,
  /** Largest page size of a region (1 GiB huge pages). */
  maxPageSize: 2 ** 30,
} as const;

const MAGIC_BYTES = Buffer.from('SFDS', 'latin1');
const MAC_LABEL = Buffer.from('sfmpi descriptor v1\0', 'latin1');
const SECRET_SIZE = 32;
/** Fixed bytes of one region entry, before its path and zero map. */
const REGION_FIXED = 24;

/** Element types of the typed arrays a region can hold; the index is the code on the wire. */
export const ELEMENT_TYPES = [
  'ArrayBuffer',
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
] as const;
/** One of {@link ELEMENT_TYPES}: the type of the first view that reached a region's buffer
 * ('ArrayBuffer' when the buffer itself was reached first, or through a DataView). */
export type ElementType = (typeof ELEMENT_TYPES)[number];

/** Stable codes of {@link DescriptorError}. */
export type DescriptorErrorCode =
  | 'ERR_DESCRIPTOR_MAGIC'
  | 'ERR_DESCRIPTOR_VERSION'
  | 'ERR_DESCRIPTOR_TRUNCATED'
  | 'ERR_DESCRIPTOR_TRAILING'
  | 'ERR_DESCRIPTOR_TOO_LARGE'
  | 'ERR_DESCRIPTOR_FORGED'
  | 'ERR_DESCRIPTOR_FIELD'
  | 'ERR_DESCRIPTOR_PROGRAM'
  | 'ERR_DESCRIPTOR_JOB'
  | 'ERR_DESCRIPTOR_CLONES'
  | 'ERR_DESCRIPTOR_STATE';

/** A descriptor (or state blob) that is refused, or a value that cannot be put in one. */
export class DescriptorError extends Error {
  /** What is wrong; stable across versions. */
  readonly code: DescriptorErrorCode;
  /** The field, as a path ("regions[2].pageSize"); '' when about the whole descriptor. */
  readonly field: string;
  /** Byte offset of the field in the descriptor (or blob); -1 when encoding or not about a position. */
  readonly offset: number;
  /** @param code what is wrong; @param message one line naming the field and offset; @param field the field; @param offset where. */
  constructor(code: DescriptorErrorCode, message: string, field = '', offset = -1) {
    super(message);
    this.name = 'DescriptorError';
    this.code = code;
    this.field = field;
    this.offset = offset;
  }
}

/** Which program a clone runs: a seed must run the very same one. */
export interface ProgramIdentity {
  /** Absolute path of the program file (the script or the executable). */
  path: string;
  /** SHA-256 of the program file's content, 64 lower-case hex digits ({@link programHash}). */
  sha256: string;
  /** Its arguments (argv after the program). */
  args: string[];
  /** Absolute working directory it was started in. */
  cwd: string;
}

/** Where in the program a clone resumes. */
export interface ForkPoint {
  /** Which fork point of the run, counting from 0 (a program may fork more than once). */
  sequence: number;
  /** What it is, for messages: "MPI.init", "clone". */
  label: string;
}

/** Where the memory server of the origin's host listens. */
export interface MemoryServerAddress {
  /** The host's name, for messages. */
  host: string;
  /** Its IPv4 address on the cluster network, dotted. */
  address: string;
  /** TCP port. */
  port: number;
}

/** The UDP multicast group on which pages are distributed to every seed. */
export interface MulticastGroup {
  /** IPv4 group address in 224.0.0.0/4, dotted. */
  group: string;
  /** UDP port. */
  port: number;
}

/** One region of the state: a large buffer whose pages come from the memory server. */
export interface DescriptorRegion {
  /** The memory server's id for it (>= 1, unique in a descriptor). */
  id: number;
  /** Its place in the state: the index of its view in joinState's `views` (xen/state.ts). */
  slot: number;
  /** Where it sits in the state value, for messages ("state.grid"). */
  path: string;
  /** Bytes. */
  byteLength: number;
  /** The unit of its zero map (the host's base page size, or a huge page size). */
  pageSize: number;
  /** Backed by huge pages in the origin (a seed should advise the same). */
  hugePages: boolean;
  /** The typed array it was reached as. */
  elementType: ElementType;
  /** Which pages are known zero; `ZeroMap.none(pages)` when none is. */
  zeroMap: ZeroMap;
}

/** A descriptor's content. */
export interface Descriptor {
  /** The job it belongs to. */
  jobId: string;
  /** The program the seed must be running. */
  program: ProgramIdentity;
  /** Where the seed resumes. */
  forkPoint: ForkPoint;
  /** Ranks in the world: the origin (0) and clones 1..worldSize-1. */
  worldSize: number;
  /** The clone ids this descriptor makes of its host's seeds, increasing. */
  cloneIds: number[];
  /** The state blob (xen/state.ts `splitState`), carried opaquely. */
  state: Uint8Array;
  /** The region table. */
  regions: DescriptorRegion[];
  /** Where the pages of the regions come from. */
  memoryServer: MemoryServerAddress;
  /** Where pages are multicast, if they are. */
  multicast?: MulticastGroup;
}

/** What a seed expects of a descriptor; every field given is checked by {@link decodeDescriptor}. */
export interface DescriptorExpectation {
  /** This seed's own program (ERR_DESCRIPTOR_PROGRAM on a mismatch). */
  program?: ProgramIdentity;
  /** This job's id (ERR_DESCRIPTOR_JOB). */
  jobId?: string;
  /** The clone ids dom0 started this host's seeds as (ERR_DESCRIPTOR_CLONES). */
  cloneIds?: readonly number[];
}

// ---------------------------------------------------------------------------------------------
// Zero maps

/** How a zero map travels (the header comment draws each). */
export type ZeroMapEncoding = 'none' | 'all' | 'bitmap' | 'runs';
const ZERO_ENCODINGS: readonly ZeroMapEncoding[] = ['none', 'all', 'bitmap', 'runs'];

const POPCOUNT = new Uint8Array(256).map((_, i) => {
  let n = 0;
  for (let b = i; b; b >>= 1) n += b & 1;
  return n;
});

/** Sets bits start..start+count-1 of a bitmap. */
function setBits(bm: Uint8Array, start: number, count: number): void {
  let p = start;
  const end = start + count;
  while (p < end && (p & 7) !== 0) bm[p >> 3] |= 1 << (p++ & 7);
  const full = (end - p) >> 3;
  if (full > 0) {
    bm.fill(0xff, p >> 3, (p >> 3) + full);
    p += full << 3;
  }
  while (p < end) bm[p >> 3] |= 1 << (p++ & 7);
}

function varintSize(v: number): number {
  return v < 0x80 ? 1 : v < 0x4000 ? 2 : v < 0x200000 ? 3 : v < 0x10000000 ? 4 : 5;
}

/**
 * Which pages of a region are known to be zero: one bit per page. Built from a bitmap that the
 * caller made (the native side reads pagemap and scans present pages, see docs/lazy-memory.md;
 * {@link scanZeroPages} is a slow fallback), or decoded from a
 * descriptor, where it stays in its encoded form until {@link ZeroMap.toBitmap} is called.
 */
export class ZeroMap {
  /** Pages the map covers: ceil(byteLength / pageSize). */
  readonly pageCount: number;
  /** Pages known zero. */
  readonly zeroCount: number;
  #bitmap: Uint8Array | undefined;
  #runs: Uint8Array | undefined;
  /** The runs were measured and are not smaller than the bitmap. */
  #runsLarger = false;

  private constructor(pageCount: number, zeroCount: number, bitmap: Uint8Array | undefined, runs: Uint8Array | undefined) {
    this.pageCount = pageCount;
    this.zeroCount = zeroCount;
    this.#bitmap = bitmap;
    this.#runs = runs;
  }

  /** No page known zero: every page is fetched. */
  static none(pageCount: number): ZeroMap {
    checkPageCount(pageCount, 'ZeroMap.none');
    return new ZeroMap(pageCount, 0, undefined, undefined);
  }

  /** Every page known zero (a region never written): no page is fetched. */
  static allZero(pageCount: number): ZeroMap {
    checkPageCount(pageCount, 'ZeroMap.allZero');
    return new ZeroMap(pageCount, pageCount, undefined, undefined);
  }

  /**
   * A map from a bitmap: bit p & 7 of byte p >> 3 set when page p is known zero. The bitmap is
   * copied; it must be ceil(pageCount / 8) bytes, and bits past the last page are ignored.
   * @throws RangeError for a wrong length or page count.
   */
  static fromBitmap(bitmap: Uint8Array, pageCount: number): ZeroMap {
    checkPageCount(pageCount, 'ZeroMap.fromBitmap');
    if (!(bitmap instanceof Uint8Array)) throw new TypeError('ZeroMap.fromBitmap(bitmap, pageCount): bitmap must be a Uint8Array');
    const bytes = Math.ceil(pageCount / 8);
    if (bitmap.length !== bytes)
      throw new RangeError(`ZeroMap.fromBitmap: a bitmap of ${pageCount} pages is ${bytes} bytes, got ${bitmap.length}`);
    const bm = Uint8Array.from(bitmap);
    if (pageCount & 7) bm[bytes - 1] &= (1 << (pageCount & 7)) - 1;
    let zeros = 0;
    for (let i = 0; i < bytes; i++) zeros += POPCOUNT[bm[i]];
    return new ZeroMap(pageCount, zeros, bm, undefined);
  }

  /**
   * A map from its encoded form (what a descriptor carries), checked: a bitmap of exactly
   * ceil(pageCount / 8) bytes with zero padding bits; runs that are canonical LEB128, non-empty
   * but for the first, sum to pageCount and take fewer bytes than the bitmap. The bytes are
   * copied. Allocates no more than `bytes.length`.
   * @throws DescriptorError ERR_DESCRIPTOR_FIELD naming `field` and `offset`.
   */
  static decode(encoding: ZeroMapEncoding, bytes: Uint8Array, pageCount: number, field = 'zeroMap', offset = -1): ZeroMap {
    checkPageCount(pageCount, 'ZeroMap.decode');
    const bad = (at: number, what: string) =>
      new DescriptorError('ERR_DESCRIPTOR_FIELD', `descriptor ${field} at offset ${at}: ${what}`, field, at);
    const bitmapBytes = Math.ceil(pageCount / 8);
    switch (encoding) {
      case 'none':
      case 'all':
        if (bytes.length !== 0) throw bad(offset, `a zero map encoded as '${encoding}' has no bytes, got ${bytes.length}`);
        return encoding === 'none' ? ZeroMap.none(pageCount) : ZeroMap.allZero(pageCount);
      case 'bitmap': {
        if (bytes.length !== bitmapBytes)
          throw bad(offset, `a bitmap of ${pageCount} pages is ${bitmapBytes} bytes, got ${bytes.length}`);
        if (pageCount & 7 && bytes[bitmapBytes - 1] >> (pageCount & 7) !== 0)
          throw bad(offset + bitmapBytes - 1, `padding bits past page ${pageCount - 1} are not zero`);
        let zeros = 0;
        for (let i = 0; i < bytes.length; i++) zeros += POPCOUNT[bytes[i]];
        return new ZeroMap(pageCount, zeros, Uint8Array.from(bytes), undefined);
      }
      case 'runs': {
        if (bytes.length === 0 || bytes.length >= bitmapBytes)
          throw bad(offset, `runs of ${bytes.length} bytes for ${pageCount} pages: must be 1..${bitmapBytes - 1} bytes (fewer than the bitmap)`);
        let pos = 0, sum = 0, zeros = 0, index = 0;
        while (pos < bytes.length) {
          const at = pos;
          let v = 0, shift = 0, b: number;
          do {
            if (pos >= bytes.length) throw bad(offset + at, `run ${index} is cut off (a LEB128 byte with its high bit set ends the map)`);
            if (shift === 28 && bytes[pos] > 0x0f) throw bad(offset + at, `run ${index} does not fit 32 bits`);
            b = bytes[pos++];
            v += (b & 0x7f) * 2 ** shift;
            shift += 7;
          } while (b & 0x80);
          if (pos - at > 1 && b === 0) throw bad(offset + at, `run ${index} is not in canonical LEB128 (a trailing zero byte)`);
          if (v === 0 && index > 0) throw bad(offset + at, `run ${index} is empty (only the first run may be)`);
          sum += v;
          if (sum > pageCount) throw bad(offset + at, `runs cover more than the region's ${pageCount} pages`);
          if (index & 1) zeros += v;
          index++;
        }
        if (sum !== pageCount) throw bad(offset, `runs cover ${sum} pages, the region has ${pageCount}`);
        return new ZeroMap(pageCount, zeros, undefined, Uint8Array.from(bytes));
      }
      default:
        throw bad(offset, `unknown zero map encoding ${String(encoding)}`);
    }
  }

  /** The encoding a descriptor uses for this map: the smallest. */
  get encoding(): ZeroMapEncoding {
    if (this.zeroCount === 0) return 'none';
    if (this.zeroCount === this.pageCount) return 'all';
    return this.#runsEncoded() !== undefined ? 'runs' : 'bitmap';
  }

  /** The bytes a descriptor carries for this map ({@link ZeroMap.encoding} says which form), a copy. */
  encoded(): Uint8Array {
    switch (this.encoding) {
      case 'none':
      case 'all':
        return new Uint8Array(0);
      case 'runs':
        return Uint8Array.from(this.#runsEncoded()!);
      default:
        return Uint8Array.from(this.#bitmapOf());
    }
  }

  /** A fresh bitmap (ceil(pageCount / 8) bytes): bit p & 7 of byte p >> 3 set when page p is zero. */
  toBitmap(): Uint8Array {
    return Uint8Array.from(this.#bitmapOf());
  }

  /** Is page `page` known to be zero? */
  isZero(page: number): boolean {
    if (!Number.isInteger(page) || page < 0 || page >= this.pageCount)
      throw new RangeError(`ZeroMap.isZero: page ${page} out of range 0..${this.pageCount - 1}`);
    if (this.zeroCount === 0) return false;
    if (this.zeroCount === this.pageCount) return true;
    const bm = this.#bitmapOf();
    return (bm[page >> 3] & (1 << (page & 7))) !== 0;
  }

  #bitmapOf(): Uint8Array {
    if (this.#bitmap) return this.#bitmap;
    const bm = new Uint8Array(Math.ceil(this.pageCount / 8));
    if (this.zeroCount === this.pageCount) setBits(bm, 0, this.pageCount);
    else if (this.#runs) {
      const r = this.#runs;
      let pos = 0, page = 0, index = 0;
      while (pos < r.length) {
        let v = 0, shift = 0, b: number;
        do {
          b = r[pos++];
          v += (b & 0x7f) * 2 ** shift;
          shift += 7;
        } while (b & 0x80);
        if (index++ & 1) setBits(bm, page, v);
        page += v;
      }
    }
    this.#bitmap = bm;
    return bm;
  }

  /** The runs encoding when it is smaller than the bitmap, else undefined. */
  #runsEncoded(): Uint8Array | undefined {
    if (this.#runs) return this.#runs;
    if (this.#runsLarger) return undefined;
    const bm = this.#bitmapOf();
    const limit = bm.length;
    const runs: number[] = [];
    let size = 0;
    let page = 0;
    let zero = false; // runs alternate, starting with data pages
    while (page < this.pageCount) {
      const start = page;
      const want = zero ? 0xff : 0x00;
      // Whole bytes at a time where the run spans them.
      while (page < this.pageCount) {
        if ((page & 7) === 0 && page + 8 <= this.pageCount && bm[page >> 3] === want) {
          page += 8;
          continue;
        }
        if (((bm[page >> 3] >> (page & 7)) & 1) !== (zero ? 1 : 0)) break;
        page++;
      }
      runs.push(page - start);
      size += varintSize(page - start);
      if (size >= limit) {
        this.#runsLarger = true;
        return undefined;
      }
      zero = !zero;
    }
    const out = new Uint8Array(size);
    let pos = 0;
    for (let v of runs) {
      while (v >= 0x80) {
        out[pos++] = (v & 0x7f) | 0x80;
        v = Math.floor(v / 128);
      }
      out[pos++] = v;
    }
    this.#runs = out;
    return out;
  }
}

function checkPageCount(pageCount: number, where: string): void {
  if (!Number.isSafeInteger(pageCount) || pageCount < 1 || pageCount > LIMITS.regionBytes / LIMITS.minPageSize)
    throw new RangeError(`${where}: pageCount must be an integer in 1..${LIMITS.regionBytes / LIMITS.minPageSize}, got ${pageCount}`);
}

/** Pages of a region of `byteLength` bytes in units of `pageSize`. */
export function pageCountOf(byteLength: number, pageSize: number): number {
  return Math.ceil(byteLength / pageSize);
}

/**
 * A zero map made by reading `bytes` page by page: the slow fallback for memory that the
 * native side does not map (ordinary typed arrays, tests). Reading memory never written faults
 * in the zero page, about 0.3 s per GiB (measured on a 2-core VM): for regions, build the
 * map from pagemap natively and pass it to {@link ZeroMap.fromBitmap}.
 */
export function scanZeroPages(bytes: Uint8Array, pageSize: number): ZeroMap {
  if (!Number.isInteger(pageSize) || pageSize < 1) throw new RangeError(`scanZeroPages: pageSize must be a positive integer, got ${pageSize}`);
  const pages = pageCountOf(bytes.byteLength, pageSize);
  const bm = new Uint8Array(Math.ceil(pages / 8));
  const zero = Buffer.alloc(pageSize);
  const all = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let p = 0; p < pages; p++) {
    const page = all.subarray(p * pageSize, Math.min((p + 1) * pageSize, all.length));
    // Buffer#equals is a memcmp: about memory speed.
    if (page.equals(page.length === pageSize ? zero : zero.subarray(0, page.length))) bm[p >> 3] |= 1 << (p & 7);
  }
  return ZeroMap.fromBitmap(bm, pages);
}

// ---------------------------------------------------------------------------------------------
// Program identity

interface HashEntry {
  dev: bigint;
  ino: bigint;
  size: bigint;
  mtimeNs: bigint;
  ctimeNs: bigint;
  sha256: string;
}
const hashes = new Map<string, HashEntry>();

function sameFile(a: fs.BigIntStats | HashEntry, b: fs.BigIntStats): boolean {
  return a.dev === b.dev && a.ino === b.ino && a.size === b.size && a.mtimeNs === b.mtimeNs && a.ctimeNs === b.ctimeNs;
}

function hashFile(file: string): string {
  const hash = createHash('sha256');
  const fd = fs.openSync(file, 'r');
  try {
    const chunk = Buffer.allocUnsafe(1 << 20);
    for (;;) {
      const n = fs.readSync(fd, chunk, 0, chunk.length, null);
      if (n === 0) break;
      hash.update(chunk.subarray(0, n));
    }
  } finally {
    fs.closeSync(fd);
  }
  return hash.digest('hex');
}

/**
 * SHA-256 (hex) of a program file's content. Computed once and cached per path, size, mtime
 * (and inode, device and ctime, which also change when a file is replaced): a seed and the
 * origin hash their program when they start, and later calls are free. A file that changes
 * while it is read is read again.
 * @throws Error from the file system naming the path (ENOENT...), or when it is not a regular file.
 */
export function programHash(file: string): string {
  const abs = path.resolve(file);
  let st = fs.statSync(abs, { bigint: true });
  if (!st.isFile()) throw new Error(`program ${abs} is not a regular file`);
  const cached = hashes.get(abs);
  if (cached && sameFile(cached, st)) return cached.sha256;
  for (let attempt = 0; attempt < 3; attempt++) {
    const sha256 = hashFile(abs);
    const after = fs.statSync(abs, { bigint: true });
    if (sameFile(st, after)) {
      hashes.set(abs, { dev: st.dev, ino: st.ino, size: st.size, mtimeNs: st.mtimeNs, ctimeNs: st.ctimeNs, sha256 });
      return sha256;
    }
    st = after;
  }
  throw new Error(`program ${abs} kept changing while it was being hashed`);
}

/** This process's program identity, for a descriptor or for a seed's check: `file` resolved
 * against `cwd`, its content hash ({@link programHash}), a copy of `args`. */
export function programIdentity(file: string, args: readonly string[], cwd: string = process.cwd()): ProgramIdentity {
  const dir = path.resolve(cwd);
  const abs = path.resolve(dir, file);
  return { path: abs, sha256: programHash(abs), args: [...args], cwd: dir };
}

function showList(list: readonly string[]): string {
  const text = JSON.stringify(list);
  return text.length > 200 ? `${text.slice(0, 200)}... (${list.length} arguments)` : text;
}

/**
 * Refuses a descriptor made for another program than this seed's: path, content hash,
 * arguments and working directory must all be the same, since a seed re-runs the program up
 * to the fork point and only the same program with the same input gets there in the same shape.
 * @throws DescriptorError ERR_DESCRIPTOR_PROGRAM naming the path and both hashes (or both values).
 */
export function checkProgram(theirs: ProgramIdentity, own: ProgramIdentity): void {
  const fail = (field: string, message: string) => new DescriptorError('ERR_DESCRIPTOR_PROGRAM', message, `program.${field}`);
  if (theirs.path !== own.path || theirs.sha256 !== own.sha256) {
    const what =
      theirs.path === own.path
        ? `descriptor is for program ${theirs.path} with sha256 ${theirs.sha256}, but this seed's ${own.path} has sha256 ${own.sha256} (the file differs between the hosts)`
        : `descriptor is for program ${theirs.path} with sha256 ${theirs.sha256}, but this seed runs ${own.path} with sha256 ${own.sha256}`;
    throw fail(theirs.path === own.path ? 'sha256' : 'path', what);
  }
  if (theirs.args.length !== own.args.length || theirs.args.some((a, i) => a !== own.args[i]))
    throw fail('args', `descriptor is for ${theirs.path} with arguments ${showList(theirs.args)}, but this seed runs it with ${showList(own.args)}`);
  if (theirs.cwd !== own.cwd)
    throw fail('cwd', `descriptor is for ${theirs.path} run in ${theirs.cwd}, but this seed runs in ${own.cwd}`);
}

// ---------------------------------------------------------------------------------------------
// Encoding

function checkSecret(secret: Buffer): void {
  if (!Buffer.isBuffer(secret)) throw new TypeError('the job secret must be a Buffer');
  if (secret.length !== SECRET_SIZE) throw new RangeError(`the job secret must be ${SECRET_SIZE} bytes, got ${secret.length}`);
}

function mac(secret: Buffer, bytes: Buffer): Buffer {
  return createHmac('sha256', secret).update(MAC_LABEL).update(bytes).digest();
}

const encodeError = (code: DescriptorErrorCode, field: string, what: string) =>
  new DescriptorError(code, `encode descriptor: ${field} ${what}`, field);

/** Appends fields to a list of pieces; big pieces (state, zero maps) are not copied until the end. */
class Writer {
  readonly parts: Uint8Array[] = [];
  size = 0;

  #put(b: Uint8Array): void {
    this.parts.push(b);
    this.size += b.length;
  }

  uint(bytes: 1 | 2 | 4 | 8, v: number): void {
    const b = Buffer.allocUnsafe(bytes);
    if (bytes === 1) b[0] = v;
    else if (bytes === 2) b.writeUInt16BE(v);
    else if (bytes === 4) b.writeUInt32BE(v);
    else b.writeBigUInt64BE(BigInt(v));
    this.#put(b);
  }

  raw(b: Uint8Array): void {
    this.#put(b);
  }

  str(field: string, v: unknown, lenBytes: 1 | 2 | 4, max: number, min = 1): void {
    if (typeof v !== 'string') throw encodeError('ERR_DESCRIPTOR_FIELD', field, `must be a string, got ${typeof v}`);
    const b = Buffer.from(v, 'utf8');
    if (b.toString('utf8') !== v) throw encodeError('ERR_DESCRIPTOR_FIELD', field, 'is not well-formed Unicode (a lone surrogate)');
    if (b.includes(0)) throw encodeError('ERR_DESCRIPTOR_FIELD', field, 'contains a NUL character');
    if (b.length > max) throw encodeError('ERR_DESCRIPTOR_TOO_LARGE', field, `is ${b.length} bytes, over the limit of ${max}`);
    if (b.length < min) throw encodeError('ERR_DESCRIPTOR_FIELD', field, 'is empty');
    this.uint(lenBytes, b.length);
    this.#put(b);
  }
}

function checkInt(field: string, v: unknown, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max)
    throw encodeError(typeof v === 'number' && Number.isInteger(v) && v > max ? 'ERR_DESCRIPTOR_TOO_LARGE' : 'ERR_DESCRIPTOR_FIELD', field, `must be an integer in ${min}..${max}, got ${String(v)}`);
  return v;
}

function ipv4Bytes(field: string, v: unknown, kind: 'unicast' | 'multicast'): Buffer {
  if (typeof v !== 'string' || !net.isIPv4(v)) throw encodeError('ERR_DESCRIPTOR_FIELD', field, `must be a dotted IPv4 address, got ${JSON.stringify(v)}`);
  const b = Buffer.from(v.split('.').map(Number));
  const why = ipv4Problem(b, kind);
  if (why) throw encodeError('ERR_DESCRIPTOR_FIELD', field, `${v} ${why}`);
  return b;
}

/** Why an address cannot be a memory server's (unicast) or a page group (multicast); '' if it can. */
function ipv4Problem(b: Uint8Array, kind: 'unicast' | 'multicast'): string {
  const multicast = b[0] >= 224 && b[0] <= 239;
  if (kind === 'multicast') return multicast ? '' : 'is not a multicast group (224.0.0.0/4)';
  if (b[0] === 0) return 'is not a host address (0.0.0.0/8)';
  if (multicast) return 'is a multicast group, not a host address';
  if (b[0] >= 240) return 'is reserved or broadcast, not a host address';
  return '';
}

const SHA256_HEX = /^[0-9a-f]{64}$/;

/**
 * Encodes and authenticates a descriptor with the job secret. Every field is checked against
 * the format's limits first, so what one host encodes, every host decodes.
 * @throws DescriptorError ERR_DESCRIPTOR_FIELD (a value the format cannot carry) or
 *   ERR_DESCRIPTOR_TOO_LARGE (over a limit), naming the field.
 * @throws RangeError for a secret that is not 32 bytes.
 */
export function encodeDescriptor(d: Descriptor, secret: Buffer): Buffer {
  checkSecret(secret);
  const w = new Writer();
  w.raw(MAGIC_BYTES);
  w.uint(1, DESCRIPTOR_VERSION);
  w.uint(1, 0);
  w.uint(2, 0);
  w.uint(4, 0); // total length, set at the end

  w.str('jobId', d.jobId, 1, LIMITS.jobId);
  const p = d.program;
  if (p === null || typeof p !== 'object') throw encodeError('ERR_DESCRIPTOR_FIELD', 'program', 'must be a ProgramIdentity');
  w.str('program.path', p.path, 2, LIMITS.path);
  if (!path.isAbsolute(p.path)) throw encodeError('ERR_DESCRIPTOR_FIELD', 'program.path', `must be absolute, got ${p.path}`);
  if (typeof p.sha256 !== 'string' || !SHA256_HEX.test(p.sha256))
    throw encodeError('ERR_DESCRIPTOR_FIELD', 'program.sha256', `must be 64 lower-case hex digits, got ${JSON.stringify(p.sha256)}`);
  w.raw(Buffer.from(p.sha256, 'hex'));
  w.str('program.cwd', p.cwd, 2, LIMITS.path);
  if (!path.isAbsolute(p.cwd)) throw encodeError('ERR_DESCRIPTOR_FIELD', 'program.cwd', `must be absolute, got ${p.cwd}`);
  if (!Array.isArray(p.args)) throw encodeError('ERR_DESCRIPTOR_FIELD', 'program.args', 'must be an array of strings');
  if (p.args.length > LIMITS.argCount)
    throw encodeError('ERR_DESCRIPTOR_TOO_LARGE', 'program.args', `has ${p.args.length} arguments, over the limit of ${LIMITS.argCount}`);
  w.uint(4, p.args.length);
  const argsStart = w.size;
  p.args.forEach((a, i) => w.str(`program.args[${i}]`, a, 4, LIMITS.arg, 0));
  const argBytes = w.size - argsStart - 4 * p.args.length;
  if (argBytes > LIMITS.args)
    throw encodeError('ERR_DESCRIPTOR_TOO_LARGE', 'program.args', `are ${argBytes} bytes in all, over the limit of ${LIMITS.args}`);

  const fp = d.forkPoint;
  if (fp === null || typeof fp !== 'object') throw encodeError('ERR_DESCRIPTOR_FIELD', 'forkPoint', 'must be a ForkPoint');
  w.uint(4, checkInt('forkPoint.sequence', fp.sequence, 0, 0xffffffff));
  w.str('forkPoint.label', fp.label, 1, LIMITS.label);

  const world = checkInt('worldSize', d.worldSize, 2, LIMITS.worldSize);
  w.uint(4, world);
  if (!Array.isArray(d.cloneIds)) throw encodeError('ERR_DESCRIPTOR_FIELD', 'cloneIds', 'must be an array of clone ids');
  if (d.cloneIds.length > LIMITS.clones)
    throw encodeError('ERR_DESCRIPTOR_TOO_LARGE', 'cloneIds', `has ${d.cloneIds.length} ids, over the limit of ${LIMITS.clones}`);
  if (d.cloneIds.length < 1) throw encodeError('ERR_DESCRIPTOR_FIELD', 'cloneIds', 'is empty');
  w.uint(4, d.cloneIds.length);
  d.cloneIds.forEach((id, i) => {
    checkInt(`cloneIds[${i}]`, id, 1, world - 1);
    if (i > 0 && id <= d.cloneIds[i - 1])
      throw encodeError('ERR_DESCRIPTOR_FIELD', `cloneIds[${i}]`, `must be above cloneIds[${i - 1}] (${d.cloneIds[i - 1]}): ids are strictly increasing, got ${id}`);
    w.uint(4, id);
  });

  const ms = d.memoryServer;
  if (ms === null || typeof ms !== 'object') throw encodeError('ERR_DESCRIPTOR_FIELD', 'memoryServer', 'must be a MemoryServerAddress');
  w.str('memoryServer.host', ms.host, 1, LIMITS.host);
  w.raw(ipv4Bytes('memoryServer.address', ms.address, 'unicast'));
  w.uint(2, checkInt('memoryServer.port', ms.port, 1, 65535));
  if (d.multicast === undefined || d.multicast === null) {
    w.raw(new Uint8Array(8));
  } else {
    w.uint(1, 1);
    w.uint(1, 0);
    w.raw(ipv4Bytes('multicast.group', d.multicast.group, 'multicast'));
    w.uint(2, checkInt('multicast.port', d.multicast.port, 1, 65535));
  }

  if (!(d.state instanceof Uint8Array)) throw encodeError('ERR_DESCRIPTOR_FIELD', 'state', 'must be a Uint8Array (xen/state.ts splitState(value).blob)');
  if (d.state.length > LIMITS.state)
    throw encodeError('ERR_DESCRIPTOR_TOO_LARGE', 'state', `is ${d.state.length} bytes, over the limit of ${LIMITS.state}`);
  w.uint(4, d.state.length);
  w.raw(d.state);

  if (!Array.isArray(d.regions)) throw encodeError('ERR_DESCRIPTOR_FIELD', 'regions', 'must be an array');
  if (d.regions.length > LIMITS.regions)
    throw encodeError('ERR_DESCRIPTOR_TOO_LARGE', 'regions', `has ${d.regions.length} regions, over the limit of ${LIMITS.regions}`);
  w.uint(2, d.regions.length);
  const ids = new Set<number>();
  const slots = new Set<number>();
  d.regions.forEach((r, i) => {
    const f = `regions[${i}]`;
    const id = checkInt(`${f}.id`, r.id, 1, 0xffffffff);
    if (ids.has(id)) throw encodeError('ERR_DESCRIPTOR_FIELD', `${f}.id`, `${id} is the id of an earlier region`);
    ids.add(id);
    const slot = checkInt(`${f}.slot`, r.slot, 0, d.regions.length - 1);
    if (slots.has(slot)) throw encodeError('ERR_DESCRIPTOR_FIELD', `${f}.slot`, `${slot} is the slot of an earlier region`);
    slots.add(slot);
    const length = checkInt(`${f}.byteLength`, r.byteLength, 1, LIMITS.regionBytes);
    const pageSize = checkInt(`${f}.pageSize`, r.pageSize, LIMITS.minPageSize, LIMITS.maxPageSize);
    if ((pageSize & (pageSize - 1)) !== 0) throw encodeError('ERR_DESCRIPTOR_FIELD', `${f}.pageSize`, `must be a power of two, got ${pageSize}`);
    const type = ELEMENT_TYPES.indexOf(r.elementType);
    if (type < 0) throw encodeError('ERR_DESCRIPTOR_FIELD', `${f}.elementType`, `must be one of ${ELEMENT_TYPES.join(', ')}, got ${String(r.elementType)}`);
    if (!(r.zeroMap instanceof ZeroMap)) throw encodeError('ERR_DESCRIPTOR_FIELD', `${f}.zeroMap`, 'must be a ZeroMap (ZeroMap.none(pages) when no page is known zero)');
    const pages = pageCountOf(length, pageSize);
    if (r.zeroMap.pageCount !== pages)
      throw encodeError('ERR_DESCRIPTOR_FIELD', `${f}.zeroMap`, `covers ${r.zeroMap.pageCount} pages, the region has ${pages} (${length} bytes in pages of ${pageSize})`);
    w.uint(4, id);
    w.uint(4, slot);
    w.uint(8, length);
    w.uint(4, pageSize);
    w.uint(1, r.hugePages ? 1 : 0);
    w.uint(1, type);
    w.uint(1, ZERO_ENCODINGS.indexOf(r.zeroMap.encoding));
    w.uint(1, 0);
    w.str(`${f}.path`, r.path, 2, LIMITS.regionPath);
    const map = r.zeroMap.encoded();
    w.uint(4, map.length);
    w.raw(map);
    if (w.size + DESCRIPTOR_MAC_SIZE > LIMITS.total)
      throw encodeError('ERR_DESCRIPTOR_TOO_LARGE', f, `brings the descriptor to ${w.size + DESCRIPTOR_MAC_SIZE} bytes, over the limit of ${LIMITS.total}`);
  });

  const total = w.size + DESCRIPTOR_MAC_SIZE;
  if (total > LIMITS.total) throw encodeError('ERR_DESCRIPTOR_TOO_LARGE', '', `is ${total} bytes, over the limit of ${LIMITS.total}`);
  const out = Buffer.allocUnsafe(total);
  let pos = 0;
  for (const part of w.parts) {
    out.set(part, pos);
    pos += part.length;
  }
  out.writeUInt32BE(total, 8);
  mac(secret, out.subarray(0, pos)).copy(out, pos);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Decoding

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Reads the body field by field; every read checks what remains before the MAC. */
class Reader {
  pos: number;

  constructor(
    readonly buf: Buffer,
    start: number,
    readonly end: number,
  ) {
    this.pos = start;
  }

  fail(code: DescriptorErrorCode, field: string, at: number, what: string): DescriptorError {
    return new DescriptorError(code, `descriptor ${field} at offset ${at}: ${what}`, field, at);
  }

  need(field: string, n: number): number {
    const left = this.end - this.pos;
    if (n > left) throw this.fail('ERR_DESCRIPTOR_FIELD', field, this.pos, `needs ${n} bytes, only ${left} remain before the MAC`);
    const at = this.pos;
    this.pos += n;
    return at;
  }

  u8(field: string): number {
    return this.buf[this.need(field, 1)];
  }

  u16(field: string): number {
    return this.buf.readUInt16BE(this.need(field, 2));
  }

  u32(field: string): number {
    return this.buf.readUInt32BE(this.need(field, 4));
  }

  u64(field: string, max: number): number {
    const at = this.need(field, 8);
    const v = this.buf.readBigUInt64BE(at);
    if (v > BigInt(max)) throw this.fail('ERR_DESCRIPTOR_TOO_LARGE', field, at, `${v} is over the limit of ${max}`);
    return Number(v);
  }

  bytes(field: string, n: number): Buffer {
    const at = this.need(field, n);
    return this.buf.subarray(at, at + n);
  }

  /** An integer field that must lie in min..max (TOO_LARGE above max, FIELD below min). */
  int(field: string, bytes: 1 | 2 | 4, min: number, max: number): number {
    const at = this.pos;
    const v = bytes === 1 ? this.u8(field) : bytes === 2 ? this.u16(field) : this.u32(field);
    if (v > max) throw this.fail('ERR_DESCRIPTOR_TOO_LARGE', field, at, `${v} is over the limit of ${max}`);
    if (v < min) throw this.fail('ERR_DESCRIPTOR_FIELD', field, at, `${v} is below the minimum of ${min}`);
    return v;
  }

  /** A count whose items take at least `itemBytes` each: refused before anything is allocated for it. */
  count(field: string, bytes: 2 | 4, min: number, max: number, itemBytes: number): number {
    const at = this.pos;
    const n = this.int(field, bytes, min, max);
    const left = this.end - this.pos;
    if (n * itemBytes > left)
      throw this.fail('ERR_DESCRIPTOR_FIELD', field, at, `${n} entries of at least ${itemBytes} bytes cannot fit in the ${left} bytes that remain`);
    return n;
  }

  str(field: string, lenBytes: 1 | 2 | 4, max: number, min = 1): string {
    const at = this.pos;
    const n = lenBytes === 1 ? this.u8(field) : lenBytes === 2 ? this.u16(field) : this.u32(field);
    if (n > max) throw this.fail('ERR_DESCRIPTOR_TOO_LARGE', field, at, `length ${n} is over the limit of ${max} bytes`);
    if (n < min) throw this.fail('ERR_DESCRIPTOR_FIELD', field, at, 'is empty');
    const b = this.bytes(field, n);
    if (b.includes(0)) throw this.fail('ERR_DESCRIPTOR_FIELD', field, at + lenBytes + b.indexOf(0), 'contains a NUL byte');
    try {
      return utf8.decode(b);
    } catch {
      throw this.fail('ERR_DESCRIPTOR_FIELD', field, at + lenBytes, 'is not valid UTF-8');
    }
  }

  ipv4(field: string, kind: 'unicast' | 'multicast'): string {
    const at = this.pos;
    const b = this.bytes(field, 4);
    const text = [...b].join('.');
    const why = ipv4Problem(b, kind);
    if (why) throw this.fail('ERR_DESCRIPTOR_FIELD', field, at, `${text} ${why}`);
    return text;
  }

  zero(field: string, n: number): void {
    const at = this.pos;
    const b = this.bytes(field, n);
    const i = b.findIndex((x) => x !== 0);
    if (i >= 0) throw this.fail('ERR_DESCRIPTOR_FIELD', field, at + i, `reserved byte is ${b[i]}, not 0`);
  }
}

/** Smallest possible descriptor: header, MAC and the fixed part of a body with 1-byte strings. */
const MIN_TOTAL = DESCRIPTOR_HEADER_SIZE + DESCRIPTOR_MAC_SIZE + (1 + 1) + (2 + 1) + 32 + (2 + 1) + 4 + 4 + (1 + 1) + 4 + 4 + 4 + (1 + 1) + 4 + 2 + 8 + 4 + 2;

/**
 * The total length a descriptor says it has, from its first 12 bytes: for a reader of a byte
 * stream, to know how much to wait for. Checks the header as far as it goes.
 * @throws DescriptorError ERR_DESCRIPTOR_MAGIC / _VERSION / _FIELD / _TOO_LARGE, or
 *   _TRUNCATED when fewer than 12 bytes are given.
 */
export function descriptorLength(header: Uint8Array): number {
  const b = Buffer.isBuffer(header) ? header : Buffer.from(header.buffer, header.byteOffset, header.byteLength);
  const have = b.length;
  const fail = (code: DescriptorErrorCode, field: string, at: number, what: string) =>
    new DescriptorError(code, `descriptor ${field} at offset ${at}: ${what}`, field, at);
  for (let i = 0; i < Math.min(have, 4); i++)
    if (b[i] !== MAGIC_BYTES[i]) {
      const shown = [...b.subarray(0, Math.min(have, 4))].map((x) => x.toString(16).padStart(2, '0')).join(' ');
      throw fail('ERR_DESCRIPTOR_MAGIC', 'magic', 0, `bytes ${shown} are not a descriptor's magic "SFDS" (53 46 44 53)`);
    }
  if (have > 4 && b[4] !== DESCRIPTOR_VERSION)
    throw fail('ERR_DESCRIPTOR_VERSION', 'version', 4, `version ${b[4]}, this host reads version ${DESCRIPTOR_VERSION} only`);
  if (have > 5 && b[5] !== 0) throw fail('ERR_DESCRIPTOR_FIELD', 'flags', 5, `flags 0x${b[5].toString(16).padStart(2, '0')}: no flag is defined`);
  for (let i = 6; i < Math.min(have, 8); i++)
    if (b[i] !== 0) throw fail('ERR_DESCRIPTOR_FIELD', 'reserved', i, `reserved byte is ${b[i]}, not 0`);
  if (have < DESCRIPTOR_HEADER_SIZE)
    throw fail('ERR_DESCRIPTOR_TRUNCATED', 'header', have, `truncated: ${have} bytes, shorter than the ${DESCRIPTOR_HEADER_SIZE}-byte header`);
  const total = b.readUInt32BE(8);
  if (total > LIMITS.total) throw fail('ERR_DESCRIPTOR_TOO_LARGE', 'length', 8, `${total} bytes is over the limit of ${LIMITS.total}`);
  if (total < MIN_TOTAL) throw fail('ERR_DESCRIPTOR_FIELD', 'length', 8, `${total} bytes is shorter than the smallest descriptor (${MIN_TOTAL})`);
  return total;
}

/**
 * Checks and decodes a descriptor: header, length, MAC under the job secret, then every field
 * (see the header comment), then what the seed expects of it (`expect`). Allocates no more than
 * the descriptor's own size.
 * @throws DescriptorError with a stable code and a message naming the field and the offset:
 *   ERR_DESCRIPTOR_MAGIC, _VERSION, _TRUNCATED, _TRAILING, _TOO_LARGE, _FORGED, _FIELD, and for
 *   `expect` _PROGRAM, _JOB, _CLONES.
 * @throws RangeError for a secret that is not 32 bytes.
 */
export function decodeDescriptor(bytes: Uint8Array, secret: Buffer, expect: DescriptorExpectation = {}): Descriptor {
  checkSecret(secret);
  const buf = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const total = descriptorLength(buf);
  if (buf.length < total)
    throw new DescriptorError('ERR_DESCRIPTOR_TRUNCATED', `descriptor truncated at offset ${buf.length}: ${buf.length} of ${total} bytes`, 'length', buf.length);
  if (buf.length > total)
    throw new DescriptorError('ERR_DESCRIPTOR_TRAILING', `descriptor at offset ${total}: ${buf.length - total} bytes after its end (its length says ${total})`, 'length', total);
  const macAt = total - DESCRIPTOR_MAC_SIZE;
  const want = mac(secret, buf.subarray(0, macAt));
  if (!timingSafeEqual(want, buf.subarray(macAt)))
    throw new DescriptorError(
      'ERR_DESCRIPTOR_FORGED',
      `descriptor MAC at offset ${macAt} does not match: it was forged or altered, or made with another job's secret`,
      'mac',
      macAt,
    );

  const r = new Reader(buf, DESCRIPTOR_HEADER_SIZE, macAt);
  const jobId = r.str('jobId', 1, LIMITS.jobId);
  const pathAt = r.pos;
  const programPath = r.str('program.path', 2, LIMITS.path);
  if (!path.isAbsolute(programPath)) throw r.fail('ERR_DESCRIPTOR_FIELD', 'program.path', pathAt, `${programPath} is not absolute`);
  const sha256 = r.bytes('program.sha256', 32).toString('hex');
  const cwdAt = r.pos;
  const cwd = r.str('program.cwd', 2, LIMITS.path);
  if (!path.isAbsolute(cwd)) throw r.fail('ERR_DESCRIPTOR_FIELD', 'program.cwd', cwdAt, `${cwd} is not absolute`);
  const argc = r.count('program.args', 4, 0, LIMITS.argCount, 4);
  const args: string[] = [];
  let argBytes = 0;
  for (let i = 0; i < argc; i++) {
    const at = r.pos;
    args.push(r.str(`program.args[${i}]`, 4, LIMITS.arg, 0));
    argBytes += r.pos - at - 4;
    if (argBytes > LIMITS.args)
      throw r.fail('ERR_DESCRIPTOR_TOO_LARGE', `program.args[${i}]`, at, `arguments reach ${argBytes} bytes in all, over the limit of ${LIMITS.args}`);
  }
  const sequence = r.u32('forkPoint.sequence');
  const label = r.str('forkPoint.label', 1, LIMITS.label);
  const worldSize = r.int('worldSize', 4, 2, LIMITS.worldSize);
  const cloneCount = r.count('cloneIds', 4, 1, Math.min(LIMITS.clones, worldSize - 1), 4);
  const cloneIds: number[] = [];
  for (let i = 0; i < cloneCount; i++) {
    const at = r.pos;
    const id = r.u32(`cloneIds[${i}]`);
    if (id < 1 || id >= worldSize) throw r.fail('ERR_DESCRIPTOR_FIELD', `cloneIds[${i}]`, at, `clone id ${id} out of range 1..${worldSize - 1}`);
    if (i > 0 && id <= cloneIds[i - 1])
      throw r.fail('ERR_DESCRIPTOR_FIELD', `cloneIds[${i}]`, at, `clone id ${id} is not above the one before (${cloneIds[i - 1]})`);
    cloneIds.push(id);
  }
  const host = r.str('memoryServer.host', 1, LIMITS.host);
  const address = r.ipv4('memoryServer.address', 'unicast');
  const port = r.int('memoryServer.port', 2, 1, 65535);
  const mcAt = r.pos;
  const mcFlag = r.u8('multicast');
  let multicast: MulticastGroup | undefined;
  if (mcFlag === 0) r.zero('multicast', 7);
  else if (mcFlag === 1) {
    r.zero('multicast.reserved', 1);
    const group = r.ipv4('multicast.group', 'multicast');
    multicast = { group, port: r.int('multicast.port', 2, 1, 65535) };
  } else throw r.fail('ERR_DESCRIPTOR_FIELD', 'multicast', mcAt, `flag ${mcFlag}: must be 0 (none) or 1 (a group follows)`);
  const stateAt = r.pos;
  const stateLength = r.u32('state');
  if (stateLength > LIMITS.state)
    throw r.fail('ERR_DESCRIPTOR_TOO_LARGE', 'state', stateAt, `length ${stateLength} is over the limit of ${LIMITS.state} bytes`);
  const state = Uint8Array.from(r.bytes('state', stateLength));
  const regionCount = r.count('regions', 2, 0, LIMITS.regions, REGION_FIXED + 2 + 1 + 4);
  const regions: DescriptorRegion[] = [];
  const ids = new Set<number>();
  const slots = new Set<number>();
  for (let i = 0; i < regionCount; i++) {
    const f = `regions[${i}]`;
    const idAt = r.pos;
    const id = r.int(`${f}.id`, 4, 1, 0xffffffff);
    if (ids.has(id)) throw r.fail('ERR_DESCRIPTOR_FIELD', `${f}.id`, idAt, `region id ${id} is the id of an earlier region`);
    ids.add(id);
    const slotAt = r.pos;
    const slot = r.u32(`${f}.slot`);
    if (slot >= regionCount) throw r.fail('ERR_DESCRIPTOR_FIELD', `${f}.slot`, slotAt, `slot ${slot} out of range 0..${regionCount - 1}`);
    if (slots.has(slot)) throw r.fail('ERR_DESCRIPTOR_FIELD', `${f}.slot`, slotAt, `slot ${slot} is the slot of an earlier region`);
    slots.add(slot);
    const lengthAt = r.pos;
    const byteLength = r.u64(`${f}.byteLength`, LIMITS.regionBytes);
    if (byteLength < 1) throw r.fail('ERR_DESCRIPTOR_FIELD', `${f}.byteLength`, lengthAt, 'a region of 0 bytes');
    const pageAt = r.pos;
    const pageSize = r.int(`${f}.pageSize`, 4, LIMITS.minPageSize, LIMITS.maxPageSize);
    if ((pageSize & (pageSize - 1)) !== 0) throw r.fail('ERR_DESCRIPTOR_FIELD', `${f}.pageSize`, pageAt, `${pageSize} is not a power of two`);
    const flagsAt = r.pos;
    const flags = r.u8(`${f}.flags`);
    if (flags & ~1) throw r.fail('ERR_DESCRIPTOR_FIELD', `${f}.flags`, flagsAt, `flags 0x${flags.toString(16).padStart(2, '0')}: only bit 0 (huge pages) is defined`);
    const type = r.u8(`${f}.elementType`);
    if (type >= ELEMENT_TYPES.length)
      throw r.fail('ERR_DESCRIPTOR_FIELD', `${f}.elementType`, flagsAt + 1, `element type ${type} is not one of 0..${ELEMENT_TYPES.length - 1}`);
    const enc = r.u8(`${f}.zeroMap`);
    if (enc >= ZERO_ENCODINGS.length)
      throw r.fail('ERR_DESCRIPTOR_FIELD', `${f}.zeroMap`, flagsAt + 2, `zero map encoding ${enc} is not one of 0..${ZERO_ENCODINGS.length - 1}`);
    r.zero(`${f}.reserved`, 1);
    const regionPath = r.str(`${f}.path`, 2, LIMITS.regionPath);
    const mapAt = r.pos;
    const mapLength = r.u32(`${f}.zeroMap`);
    const pages = pageCountOf(byteLength, pageSize);
    const bitmapBytes = Math.ceil(pages / 8);
    if (mapLength > bitmapBytes)
      throw r.fail('ERR_DESCRIPTOR_TOO_LARGE', `${f}.zeroMap`, mapAt, `length ${mapLength} is over the ${bitmapBytes} bytes of a bitmap of ${pages} pages`);
    const mapBytes = r.bytes(`${f}.zeroMap`, mapLength);
    const zeroMap = ZeroMap.decode(ZERO_ENCODINGS[enc], mapBytes, pages, `${f}.zeroMap`, mapAt + 4);
    regions.push({ id, slot, path: regionPath, byteLength, pageSize, hugePages: (flags & 1) !== 0, elementType: ELEMENT_TYPES[type], zeroMap });
  }
  if (r.pos !== macAt)
    throw r.fail('ERR_DESCRIPTOR_FIELD', 'regions', r.pos, `${macAt - r.pos} bytes after the last field, before the MAC`);

  const d: Descriptor = {
    jobId,
    program: { path: programPath, sha256, args, cwd },
    forkPoint: { sequence, label },
    worldSize,
    cloneIds,
    state,
    regions,
    memoryServer: { host, address, port },
    ...(multicast ? { multicast } : {}),
  };
  if (expect.jobId !== undefined && expect.jobId !== jobId)
    throw new DescriptorError('ERR_DESCRIPTOR_JOB', `descriptor is for job ${jobId}, this seed belongs to job ${expect.jobId}`, 'jobId', DESCRIPTOR_HEADER_SIZE);
  if (expect.program) checkProgram(d.program, expect.program);
  if (expect.cloneIds && (expect.cloneIds.length !== cloneIds.length || expect.cloneIds.some((id, i) => id !== cloneIds[i])))
    throw new DescriptorError(
      'ERR_DESCRIPTOR_CLONES',
      `descriptor makes clones ${showIds(cloneIds)} of this host, but its dom0 started seeds for clones ${showIds(expect.cloneIds)}`,
      'cloneIds',
    );
  return d;
}

function showIds(ids: readonly number[]): string {
  return ids.length > 16 ? `${ids.slice(0, 16).join(', ')}, ... (${ids.length} ids)` : ids.join(', ');
}
