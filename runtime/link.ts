/**
 * A link between two hosts' processes of one program that sfnode runs across hosts: the
 * authenticated TCP connection dom0 made (dom0/links.ts) and handed over by the join, carrying
 * frames of runtime/hosts.ts's protocol. Synchronous at first (requestTicket and clone are
 * synchronous calls, and a seed never returns to its event loop), then, in the origin, read by
 * the event loop (join's outcomes arrive while the program runs).
 *
 * Every frame on a link, little-endian:
 *
 *      0               4               6               8              12
 *     +---------------+---------------+---------------+---------------+---------------------+
 *     | magic "SFTK"  | version (1)   | type          | length (u32)  | payload (length)    |
 *     |   (u32)       |  (u16)        |  (u16)        |               | v8.serialize(body)  |
 *     +---------------+---------------+---------------+---------------+---------------------+
 *
 * Both ends are the same installed package (every host runs the same one), so the payload is
 * v8's serialization; a frame of another magic or version, an unknown type, or one over
 * MAX_LINK_FRAME closes the link with an error naming it.
 */
import fs from 'node:fs';
import net from 'node:net';
import v8 from 'node:v8';
import { native } from '../native/addon.js';

const MAGIC = 0x4b544653; // "SFTK" little-endian
const VERSION = 1;
const HEADER = 12;
/** The largest frame: an exit(value) of up to 64 MiB. */
export const MAX_LINK_FRAME = 64 << 20;
/** The frame types (runtime/hosts.ts tells what each carries). */
export const TYPES = { offer: 1, granted: 2, clone: 3, running: 4, failed: 5, outcome: 6, kill: 7, ticket: 8 } as const;
/** A frame type's name. */
export type LinkType = keyof typeof TYPES;
const NAMES = new Map<number, LinkType>(Object.entries(TYPES).map(([k, v]) => [v, k as LinkType]));
/** One frame: its type and body. */
export interface Frame {
  type: LinkType;
  body: Record<string, unknown>;
}

function encode(type: LinkType, body: Record<string, unknown>): Buffer {
  const payload = v8.serialize(body);
  if (payload.length > MAX_LINK_FRAME) throw new RangeError(`a ${type} of ${payload.length} bytes is over the ${MAX_LINK_FRAME}-byte limit of a link frame`);
  const h = Buffer.alloc(HEADER);
  h.writeUInt32LE(MAGIC, 0);
  h.writeUInt16LE(VERSION, 4);
  h.writeUInt16LE(TYPES[type], 6);
  h.writeUInt32LE(payload.length, 8);
  return Buffer.concat([h, payload]);
}

/** One end of a link to another host: synchronous first, then (the origin) asynchronous. */
export class Link {
  #buf: Buffer = Buffer.alloc(0);
  readonly #ready: Frame[] = [];
  #socket: net.Socket | null = null;
  closed = false;

  /** @param fd the connected socket @param host the other end's host name (for messages) */
  constructor(
    readonly fd: number,
    readonly host: string,
  ) {}

  #push(chunk: Buffer): void {
    this.#buf = this.#buf.length ? Buffer.concat([this.#buf, chunk]) : chunk;
    while (this.#buf.length >= HEADER) {
      const magic = this.#buf.readUInt32LE(0), version = this.#buf.readUInt16LE(4), code = this.#buf.readUInt16LE(6), length = this.#buf.readUInt32LE(8);
      if (magic !== MAGIC) throw new Error(`the link to ${this.host}: bad magic 0x${magic.toString(16)}`);
      if (version !== VERSION) throw new Error(`the link to ${this.host}: version ${version}, this end speaks ${VERSION}`);
      const type = NAMES.get(code);
      if (!type) throw new Error(`the link to ${this.host}: unknown frame type ${code}`);
      if (length > MAX_LINK_FRAME) throw new Error(`the link to ${this.host}: a ${type} of ${length} bytes, over the ${MAX_LINK_FRAME}-byte limit`);
      if (this.#buf.length < HEADER + length) break;
      const body = v8.deserialize(this.#buf.subarray(HEADER, HEADER + length)) as Record<string, unknown>;
      if (!body || typeof body !== 'object') throw new Error(`the link to ${this.host}: a malformed ${type}`);
      this.#buf = this.#buf.subarray(HEADER + length);
      this.#ready.push({ type, body });
    }
  }

  /** Sends a frame (blocking; the socket may be non-blocking, so EAGAIN waits). */
  send(type: LinkType, body: Record<string, unknown>): void {
    const b = encode(type, body);
    if (this.#socket) {
      this.#socket.write(b);
      return;
    }
    for (let off = 0; off < b.length; ) {
      try {
        off += fs.writeSync(this.fd, b, off, b.length - off);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EAGAIN') throw e;
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1);
      }
    }
  }

  /** The next frame within `timeoutMs` (-1: no bound); null at the other end's close; throws ETIMEDOUT. */
  receive(timeoutMs: number): Frame | null {
    const end = timeoutMs < 0 ? Infinity : Date.now() + timeoutMs;
    while (this.#ready.length === 0) {
      if (this.closed) return null;
      const left = end === Infinity ? -1 : Math.max(0, Math.round(end - Date.now()));
      let data: Buffer;
      try {
        data = native.recvMsg(this.fd, 1 << 20, left).data;
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'EAGAIN') continue;
        if (code === 'ECONNRESET') data = Buffer.alloc(0);
        else throw e;
      }
      if (data.length === 0) {
        this.closed = true;
        return null;
      }
      this.#push(data);
    }
    return this.#ready.shift()!;
  }

  /** From now on frames arrive asynchronously: `onFrame` for each, `onClose` once. */
  adopt(onFrame: (f: Frame) => void, onClose: (why: string) => void): void {
    for (const f of this.#ready.splice(0)) onFrame(f);
    if (this.closed) return onClose('its connection closed');
    const s = new net.Socket({ fd: this.fd, readable: true, writable: true });
    this.#socket = s;
    let why = 'its connection closed';
    s.on('data', (d: Buffer) => {
      try {
        this.#push(d);
      } catch (e) {
        why = (e as Error).message;
        s.destroy();
        return;
      }
      for (const f of this.#ready.splice(0)) onFrame(f);
    });
    s.on('error', (e) => (why = `its connection failed (${e.message})`));
    s.on('close', () => {
      this.closed = true;
      onClose(why);
    });
  }

  /** Lets the process end while this link is open (nothing more is expected on it). */
  unref(): void {
    this.#socket?.unref();
  }

  close(): void {
    this.closed = true;
    if (this.#socket) this.#socket.destroy();
    else native.closeFd(this.fd);
  }
}
