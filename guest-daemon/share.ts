/**
 * The share channel: a Unix stream socket between a host's first rank and its dom0, over which
 * state loaded once in the origin reaches the seeds of other hosts (runtime/share.ts's
 * loadOnce, dom0/share.ts). The rank's end is synchronous (it waits in loadOnce, as it would
 * in the loader it skips); dom0's end is asynchronous. Descriptors travel between hosts, not
 * here: dom0 turns what it gets into one (xen/descriptor.ts) and back.
 *
 * Every message:
 *
 *      0               4               6               8              12
 *     +---------------+---------------+---------------+---------------+---------------------+
 *     | magic "SFSH"  | version (1)   | type          | length (u32)  | payload (length)    |
 *     |   (u32 LE)    |  (u16 LE)     |  (u16 LE)     |   LE          | v8.serialize(body)  |
 *     +---------------+---------------+---------------+---------------+---------------------+
 *
 * Descriptors (SCM_RIGHTS) ride on the message's first byte. Both ends are the same installed
 * package on one host, so the payload is v8's serialization (typed arrays travel as bytes);
 * every field is still checked on receipt, and a message over MAX_SHARE_MESSAGE, of another
 * version or of an unknown type ends the channel with an error naming it.
 *
 * Messages (seq numbers the loadOnce calls of a run, 1, 2, ...; the origin and its seeds call
 * loadOnce in the same order):
 *
 *   open       origin -> dom0   {seq}                     a channel for this state's memory server
 *   opened     dom0 -> origin   {seq} + fd                the memory server takes connections from fd
 *   publish    origin -> dom0   {seq, label, blob, regions}  the state: blob and region table
 *   published  dom0 -> origin   {seq}                     its descriptors are on their way
 *   want       seed -> dom0     {seq, label}              the seed waits for state seq
 *   state      dom0 -> seed     {seq, blob, regions, server, prefetch, multicast?} + fd   the state, a connection to its memory
 *                                                         server, the working set this host recorded last time (or empty),
 *                                                         and the job's multicast group when the job multicasts (docs/multicast.md)
 *   error      dom0 -> rank     {seq, message}            the state cannot be had; message says why
 *   record     seed -> dom0     {list}                    at its end: the pages it faulted, in order (xen/lazy.ts workingSet)
 */
import fs from 'node:fs';
import v8 from 'node:v8';
import { native } from '../native/addon.js';
import type { DescriptorRegion } from '../xen/descriptor.js';
import type { MulticastReceiverConfig } from '../xen/lazy.js';

const MAGIC = 0x48534653; // "SFSH" little-endian
const VERSION = 1;
const HEADER = 12;
/** The largest payload: a state blob is at most 2 MiB (xen/descriptor.ts), zero maps 32 KiB per GiB. */
export const MAX_SHARE_MESSAGE = 64 << 20;

/** Message type codes. */
export const ShareType = { open: 1, opened: 2, publish: 3, published: 4, want: 5, state: 6, error: 7, record: 8 } as const;
/** One of the {@link ShareType} names. */
export type ShareTypeName = keyof typeof ShareType;
const NAMES = new Map<number, ShareTypeName>(Object.entries(ShareType).map(([k, v]) => [v, k as ShareTypeName]));

/** One region of a state, as it travels here: a descriptor's region (xen/descriptor.ts) with its
 * zero map as a bitmap (bit i = page i is zero). */
export type ShareRegion = Omit<DescriptorRegion, 'zeroMap'> & { zeroBitmap: Uint8Array };

/** The messages, by type. */
export interface ShareBodies {
  open: { seq: number };
  opened: { seq: number };
  publish: { seq: number; label: string; blob: Uint8Array; regions: ShareRegion[] };
  published: { seq: number };
  want: { seq: number; label: string };
  state: { seq: number; blob: Uint8Array; regions: ShareRegion[]; server: string; prefetch: Uint8Array; multicast?: MulticastReceiverConfig };
  error: { seq: number; message: string };
  record: { list: Uint8Array };
}

/** A message and the descriptors that came with it. */
export type ShareMessage = { [K in ShareTypeName]: { type: K; body: ShareBodies[K]; fds: number[] } }[ShareTypeName];

/** A malformed message or a broken channel. */
export class ShareError extends Error {
  readonly code = 'ERR_SHARE_CHANNEL';
}

/** Encodes a message (header and payload). */
export function encodeShare<K extends ShareTypeName>(type: K, body: ShareBodies[K]): Buffer {
  const payload = v8.serialize(body);
  if (payload.length > MAX_SHARE_MESSAGE) throw new RangeError(`share ${type}: ${payload.length} bytes, over the ${MAX_SHARE_MESSAGE}-byte limit`);
  const h = Buffer.alloc(HEADER);
  h.writeUInt32LE(MAGIC, 0);
  h.writeUInt16LE(VERSION, 4);
  h.writeUInt16LE(ShareType[type], 6);
  h.writeUInt32LE(payload.length, 8);
  return Buffer.concat([h, payload]);
}

const isInt = (v: unknown) => Number.isSafeInteger(v) && (v as number) >= 0;
const isBytes = (v: unknown) => v instanceof Uint8Array;
const isRegion = (r: unknown) => {
  const o = r as Record<string, unknown>;
  return !!o && typeof o === 'object' && isInt(o.id) && isInt(o.slot) && typeof o.path === 'string' && isInt(o.byteLength) && isInt(o.pageSize) &&
    typeof o.hugePages === 'boolean' && typeof o.elementType === 'string' && isBytes(o.zeroBitmap);
};
const isMulticast = (m: unknown) => {
  if (m === undefined) return true;
  const o = m as Record<string, unknown>;
  return !!o && typeof o === 'object' && typeof o.group === 'string' && isInt(o.port) && typeof o.iface === 'string' && isBytes(o.key) &&
    (o.key as Uint8Array).length === 32 && typeof o.job === 'bigint' && isInt(o.session) && isInt(o.reportPort) && typeof o.reportAddr === 'string' && isInt(o.waitMs);
};
const CHECKS: { [K in ShareTypeName]: (o: Record<string, unknown>) => boolean } = {
  open: (o) => isInt(o.seq),
  opened: (o) => isInt(o.seq),
  publish: (o) => isInt(o.seq) && typeof o.label === 'string' && isBytes(o.blob) && Array.isArray(o.regions) && o.regions.every(isRegion),
  published: (o) => isInt(o.seq),
  want: (o) => isInt(o.seq) && typeof o.label === 'string',
  state: (o) => isInt(o.seq) && isBytes(o.blob) && Array.isArray(o.regions) && o.regions.every(isRegion) && typeof o.server === 'string' && isBytes(o.prefetch) && isMulticast(o.multicast),
  error: (o) => isInt(o.seq) && typeof o.message === 'string',
  record: (o) => isBytes(o.list),
};

/** Reads messages out of a byte stream, checking each (both ends use it). */
export class ShareDecoder {
  #buf: Buffer = Buffer.alloc(0);
  #fds: number[] = [];

  /** Adds bytes (and the fds that came with them); returns the messages now complete. */
  push(chunk: Buffer, fds: number[] = []): ShareMessage[] {
    this.#buf = this.#buf.length ? Buffer.concat([this.#buf, chunk]) : chunk;
    this.#fds.push(...fds);
    const out: ShareMessage[] = [];
    while (this.#buf.length >= HEADER) {
      const magic = this.#buf.readUInt32LE(0), version = this.#buf.readUInt16LE(4), code = this.#buf.readUInt16LE(6), length = this.#buf.readUInt32LE(8);
      if (magic !== MAGIC) throw new ShareError(`share channel: bad magic 0x${magic.toString(16)}`);
      if (version !== VERSION) throw new ShareError(`share channel: version ${version}, this end speaks ${VERSION}`);
      const type = NAMES.get(code);
      if (!type) throw new ShareError(`share channel: unknown message type ${code}`);
      if (length > MAX_SHARE_MESSAGE) throw new ShareError(`share channel: a ${type} of ${length} bytes, over the ${MAX_SHARE_MESSAGE}-byte limit`);
      if (this.#buf.length < HEADER + length) break;
      let body: unknown;
      try {
        body = v8.deserialize(this.#buf.subarray(HEADER, HEADER + length));
      } catch (e) {
        throw new ShareError(`share channel: a ${type} whose payload does not deserialize: ${(e as Error).message}`);
      }
      if (!body || typeof body !== 'object' || !CHECKS[type](body as Record<string, unknown>)) throw new ShareError(`share channel: a malformed ${type}`);
      this.#buf = this.#buf.subarray(HEADER + length);
      // Descriptors arrive with the first byte of their message: all of them belong to it.
      out.push({ type, body, fds: this.#fds.splice(0) } as ShareMessage);
    }
    return out;
  }
}

/** The rank's end: synchronous sends and waits (fd from SFMPI_SHARE_FD). */
export class RankShareChannel {
  readonly #fd: number;
  readonly #decoder = new ShareDecoder();
  readonly #ready: ShareMessage[] = [];

  constructor(fd: number) {
    this.#fd = fd;
  }

  /** Sends a message. */
  send<K extends ShareTypeName>(type: K, body: ShareBodies[K]): void {
    const b = encodeShare(type, body);
    for (let off = 0; off < b.length; ) off += fs.writeSync(this.#fd, b, off, b.length - off);
  }

  /** Waits up to `timeoutMs` for the next message; `what` names the wait in the error. */
  receive(timeoutMs: number, what: string): ShareMessage {
    const end = Date.now() + timeoutMs;
    while (this.#ready.length === 0) {
      const left = Math.max(0, end - Date.now());
      let got: { data: Buffer; fds: number[] };
      try {
        got = native.recvMsg(this.#fd, 1 << 20, left);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ETIMEDOUT') throw new ShareError(`${what}: nothing within ${timeoutMs} ms`);
        throw e;
      }
      if (got.data.length === 0) throw new ShareError(`${what}: dom0 closed the share channel`);
      this.#ready.push(...this.#decoder.push(got.data, got.fds));
    }
    return this.#ready.shift()!;
  }
}
