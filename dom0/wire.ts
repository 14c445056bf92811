/**
 * Frames on the cluster network's control connections (launcher <-> dom0, dom0 <-> dom0), sent
 * after the handshake (dom0/handshake.ts) has authenticated the socket. Every frame:
 *
 *      0                   1                   2                   3
 *      0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 *     +---------------------------------------------------------------+
 *   0 |                   magic 0x5346434E ("SFCN")                   |
 *     +---------------+---------------+---------------+---------------+
 *   4 |  version (1)  |     type      |     flags     | reserved (0)  |
 *     +---------------+---------------+---------------+---------------+
 *   8 |              payload length in bytes (u32, big-endian)        |
 *     +---------------------------------------------------------------+
 *  12 |                  payload (length bytes) ...                   |
 *     +---------------------------------------------------------------+
 *
 * - magic on every frame: a desynchronised or foreign stream (an HTTP probe, a port scanner, a
 *   peer of another program) is caught on its first byte, not misread as a length.
 * - version: both ends must have the same; every host runs the same installed package (the
 *   same path everywhere, as MPI requires of its own installs), so there is nothing to negotiate.
 * - flags: bit 0 END marks the last frame of a stream (`output`, `stdin`); other bits must be 0.
 * - length at most MAX_PAYLOAD = 4 MiB. The decoder holds a frame whole before handing it on, so
 *   the cap bounds what one connection can make a dom0 allocate; 4 MiB is above anything a
 *   process can be started with (Linux caps argv + environment at 1/4 of the 8 MiB stack), so a
 *   `start` always fits, and streams (`output`, `stdin`) go in pieces of at most 64 KiB.
 *
 * Payloads: JSON (UTF-8) for control messages: rare, small, read by people when debugging, and
 * checked field by field here; raw bytes for the streams, since program output is not always
 * UTF-8 and JSON would escape it and copy it twice. The message set is {@link Message}; a type
 * this version does not know is a protocol error, not something to skip.
 *
 * Errors: a bad frame is a {@link FrameError} with a stable code and the stream offset where it
 * went wrong; the decoder reports it rather than throwing it. {@link FrameChannel} turns every error (bad frame, socket error, a throwing
 * handler) into one `onClose(error)` and a destroyed socket: nothing throws out of the socket's
 * data handler, nothing reaches the process's uncaught-exception path.
 */
import net from 'node:net';
import { CONTROL_VERSION, decodeControl, type ControlMessage } from '../guest-daemon/control.js';

/** "SFCN": sfmpi cluster network. */
export const MAGIC = 0x5346434e;
/** The frame format's version; a frame of any other version is refused. */
export const VERSION = 1;
/** Bytes before the payload. */
export const HEADER_SIZE = 12;
/** Largest payload accepted or sent (see the header comment for why 4 MiB). */
export const MAX_PAYLOAD = 4 * 1024 * 1024;
/** Largest piece of a stream a sender puts in one frame (longer output goes as several). */
export const STREAM_CHUNK = 64 * 1024;
/** Flag bit: last frame of its stream. */
export const FLAG_END = 0x01;
const KNOWN_FLAGS = FLAG_END;
const MAGIC_BYTES = [0x53, 0x46, 0x43, 0x4e];

/** Frame type codes. */
export const FrameType = {
  /** launcher -> dom0: start this host's ranks (JSON {@link StartMessage}). */
  start: 0x01,
  /** dom0 -> launcher: a rank's fork/fail/exit event (JSON, guest-daemon/control.ts). */
  event: 0x02,
  /** dom0 -> launcher: a piece of a rank's stdout or stderr (binary, see {@link OutputMessage}). */
  output: 0x03,
  /** launcher -> dom0: a piece of rank 0's standard input (raw bytes). */
  stdin: 0x04,
  /** launcher -> dom0: signal this host's ranks (JSON {signal}). */
  signal: 0x05,
  /** launcher <-> dom0, dom0 <-> dom0: where a rank's data port is (JSON {rank, address, port}). */
  endpoint: 0x06,
  /** either way: the sender's last word before it closes (JSON {message}). */
  error: 0x07,
  /** either way: liveness probe, answered by pong (empty). */
  ping: 0x08,
  pong: 0x09,
  /** dom0 -> launcher, first: which host it is and where its data port listens (JSON). */
  hello: 0x0a,
  /** launcher -> dom0: every host's data endpoint and every rank's host (JSON). */
  hosts: 0x0b,
  /** dom0 -> launcher: its host's links are made and in its first rank's hands (empty JSON). */
  linked: 0x0c,
  /** launcher -> dom0: every host is linked, the ranks may run (empty JSON). */
  go: 0x0d,
  /** dom0 -> launcher: every rank of its host has ended; the first rank's exit code (JSON). */
  done: 0x0e,
  /** launcher -> dom0 service, first: which job, its hosts and their addresses, and this host's index (JSON). */
  job: 0x0f,
  /** origin's dom0 -> launcher -> a seed's dom0: a descriptor (binary: seq u32, host u32, bytes; xen/descriptor.ts). */
  descriptor: 0x10,
} as const;

/** One of the {@link FrameType} names. */
export type FrameTypeName = keyof typeof FrameType;
const TYPE_NAMES = new Map<number, FrameTypeName>(Object.entries(FrameType).map(([k, v]) => [v, k as FrameTypeName]));

/** Stable codes of {@link FrameError}. */
export type FrameErrorCode =
  | 'ERR_FRAME_MAGIC'
  | 'ERR_FRAME_VERSION'
  | 'ERR_FRAME_RESERVED'
  | 'ERR_FRAME_FLAGS'
  | 'ERR_FRAME_TOO_LARGE'
  | 'ERR_FRAME_TRUNCATED'
  | 'ERR_FRAME_TYPE'
  | 'ERR_FRAME_PAYLOAD'
  | 'ERR_FRAME_HANDLER'
  | 'ERR_FRAME_SOCKET';

/** A frame or stream that breaks the format; the connection it came on is to be closed. */
export class FrameError extends Error {
  /** What broke. */
  readonly code: FrameErrorCode;
  /** Byte offset in the stream where the bad frame starts (-1 when not about a position). */
  readonly offset: number;
  /** @param code what broke; @param message one line; @param offset where in the stream. */
  constructor(code: FrameErrorCode, message: string, offset = -1) {
    super(message);
    this.name = 'FrameError';
    this.code = code;
    this.offset = offset;
  }
}

/** A decoded frame: its header fields and its payload. */
export interface Frame {
  /** The type byte (a {@link FrameType} code for frames of this version). */
  type: number;
  /** The flags byte ({@link FLAG_END}). */
  flags: number;
  /** The payload, `length` bytes. */
  payload: Buffer;
}

/** Builds one frame (header and payload in one buffer). Throws RangeError for a payload over
 * `maxPayload`, an unknown flag bit or a type outside 0..255: those are the sender's bugs. */
export function encodeFrame(type: number, payload: Uint8Array = Buffer.alloc(0), flags = 0, maxPayload = MAX_PAYLOAD): Buffer {
  if (!Number.isInteger(type) || type < 0 || type > 255) throw new RangeError(`frame type must be 0..255, got ${type}`);
  if ((flags & ~KNOWN_FLAGS) !== 0) throw new RangeError(`unknown frame flags 0x${flags.toString(16)}`);
  if (payload.length > maxPayload) throw new RangeError(`frame payload of ${payload.length} bytes is over the limit of ${maxPayload}`);
  const frame = Buffer.allocUnsafe(HEADER_SIZE + payload.length);
  frame.writeUInt32BE(MAGIC, 0);
  frame[4] = VERSION;
  frame[5] = type;
  frame[6] = flags;
  frame[7] = 0;
  frame.writeUInt32BE(payload.length, 8);
  frame.set(payload, HEADER_SIZE);
  return frame;
}

function show(bytes: Buffer): string {
  const hex = [...bytes].map((b) => b.toString(16).padStart(2, '0')).join(' ');
  const text = bytes.toString('latin1').replace(/[^\x20-\x7e]/g, '.');
  return `${hex} "${text}"`;
}

/**
 * Turns a byte stream, split anywhere, into frames. Never throws: `push` returns the frames a
 * chunk completed, and sets {@link FrameDecoder.error} as soon as the bytes seen prove the
 * stream bad (a wrong magic byte, a wrong version, an oversized length: before the payload is
 * waited for); frames completed before the bad bytes are still returned. `end` reports a
 * stream that stopped inside a frame. Once failed, the decoder takes nothing more.
 */
export class FrameDecoder {
  readonly #maxPayload: number;
  #chunks: Buffer[] = [];
  #buffered = 0;
  /** Stream offset of the first buffered byte. */
  #offset = 0;
  #need = 0;
  #error: FrameError | null = null;

  /** @param maxPayload the largest payload accepted (default {@link MAX_PAYLOAD}). */
  constructor(maxPayload = MAX_PAYLOAD) {
    this.#maxPayload = maxPayload;
  }

  /** Bytes held that do not make a whole frame yet. */
  get buffered(): number {
    return this.#buffered;
  }

  /** Why the stream is bad, once it is; null while it is fine. */
  get error(): FrameError | null {
    return this.#error;
  }

  #fail(e: FrameError): null {
    this.#error = e;
    this.#chunks = [];
    this.#buffered = 0;
    return null;
  }

  /** The first n buffered bytes, as one buffer (copied only when they span chunks). */
  #peek(n: number): Buffer {
    const first = this.#chunks[0];
    if (first.length >= n) return first.subarray(0, n);
    const merged = Buffer.concat(this.#chunks, this.#buffered);
    this.#chunks = [merged];
    return merged.subarray(0, n);
  }

  #consume(n: number): Buffer {
    const out = Buffer.from(this.#peek(n));
    const first = this.#chunks[0];
    if (first.length === n) this.#chunks.shift();
    else this.#chunks[0] = first.subarray(n);
    this.#buffered -= n;
    this.#offset += n;
    return out;
  }

  /** Checks whatever of the header has arrived; returns the payload length once all of it is
   * there, null while it is not (or when it is bad: then error is set). */
  #checkHeader(): number | null {
    const have = Math.min(this.#buffered, HEADER_SIZE);
    const head = this.#peek(have);
    const at = this.#offset;
    for (let i = 0; i < Math.min(have, 4); i++)
      if (head[i] !== MAGIC_BYTES[i])
        return this.#fail(new FrameError('ERR_FRAME_MAGIC', `bad frame magic at byte ${at}: ${show(head.subarray(0, Math.min(have, 8)))} is not an sfmpi frame`, at));
    if (have > 4 && head[4] !== VERSION)
      return this.#fail(new FrameError('ERR_FRAME_VERSION', `frame version ${head[4]} at byte ${at}, this end speaks version ${VERSION}`, at));
    if (have > 6 && (head[6] & ~KNOWN_FLAGS) !== 0)
      return this.#fail(new FrameError('ERR_FRAME_FLAGS', `unknown frame flags 0x${head[6].toString(16).padStart(2, '0')} at byte ${at}`, at));
    if (have > 7 && head[7] !== 0)
      return this.#fail(new FrameError('ERR_FRAME_RESERVED', `reserved frame byte is ${head[7]}, not 0, at byte ${at}`, at));
    if (have < HEADER_SIZE) return null;
    const length = head.readUInt32BE(8);
    if (length > this.#maxPayload)
      return this.#fail(new FrameError('ERR_FRAME_TOO_LARGE', `frame of ${length} bytes at byte ${at} is over the limit of ${this.#maxPayload}`, at));
    return length;
  }

  /** Feeds a chunk; returns the frames it completed (possibly none). Check `error` after. */
  push(chunk: Uint8Array): Frame[] {
    const frames: Frame[] = [];
    if (this.#error || chunk.length === 0) return frames;
    this.#chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length));
    this.#buffered += chunk.length;
    while (this.#buffered > 0) {
      if (this.#need === 0) {
        const length = this.#checkHeader();
        if (length === null) break;
        this.#need = HEADER_SIZE + length;
      }
      if (this.#buffered < this.#need) break;
      const bytes = this.#consume(this.#need);
      this.#need = 0;
      frames.push({ type: bytes[5], flags: bytes[6], payload: bytes.subarray(HEADER_SIZE) });
    }
    return frames;
  }

  /** The stream ended: returns (and keeps as `error`) ERR_FRAME_TRUNCATED if it stopped
   * inside a frame, the earlier error if there was one, else null. */
  end(): FrameError | null {
    if (this.#error || this.#buffered === 0) return this.#error;
    const got = this.#buffered;
    const at = this.#offset;
    if (this.#need === 0) {
      this.#fail(new FrameError('ERR_FRAME_TRUNCATED', `stream ended ${got} byte${got === 1 ? '' : 's'} into a ${HEADER_SIZE}-byte frame header at byte ${at}`, at));
    } else {
      const want = this.#need - HEADER_SIZE;
      this.#fail(new FrameError('ERR_FRAME_TRUNCATED', `stream ended ${got - HEADER_SIZE} bytes into a ${want}-byte frame payload at byte ${at}`, at));
    }
    return this.#error;
  }
}

/** launcher -> dom0: run ranks `ranks` of a job of `size` ranks on this host. */
export interface StartMessage {
  type: 'start';
  /** The job's id (the same on every host). */
  job: string;
  /** World size. */
  size: number;
  /** This host's world ranks, ascending; the first is the seed. */
  ranks: number[];
  /** argv[0] and the rest, as the launcher prepared them. */
  command: string;
  args: string[];
  cwd: string;
  env: Record<string, string>;
}
/** dom0 -> launcher: a rank's stdout (stream 1) or stderr (stream 2) bytes; `end` when closed. */
export interface OutputMessage {
  type: 'output';
  rank: number;
  stream: 1 | 2;
  data: Buffer;
  end: boolean;
}
/** The messages of this protocol version. */
export type Message =
  | StartMessage
  | { type: 'event'; event: ControlMessage }
  | OutputMessage
  | { type: 'stdin'; data: Buffer; end: boolean }
  | { type: 'signal'; signal: string }
  | { type: 'endpoint'; rank: number; address: string; port: number }
  | { type: 'error'; message: string }
  | { type: 'ping' }
  | { type: 'pong' }
  | { type: 'hello'; index: number; port: number; pid: number; hostname: string }
  | { type: 'hosts'; endpoints: { address: string; port: number }[]; hostOf: number[] }
  | { type: 'linked' }
  | { type: 'go' }
  | { type: 'done'; code: number }
  | { type: 'job'; job: string; hosts: string[]; binds: string[]; index: number }
  | { type: 'descriptor'; seq: number; host: number; bytes: Buffer };

const isRank = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;
const isPort = (v: unknown): v is number => Number.isInteger(v) && (v as number) >= 1 && (v as number) <= 65535;

function payloadError(type: string, why: string): FrameError {
  return new FrameError('ERR_FRAME_PAYLOAD', `${type} frame: ${why}`);
}

function json(type: string, payload: Buffer): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(payload.toString('utf8'));
  } catch {
    throw payloadError(type, 'payload is not valid JSON');
  }
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw payloadError(type, 'payload is not a JSON object');
  return v as Record<string, unknown>;
}

function field<T>(type: string, o: Record<string, unknown>, key: string, ok: (v: unknown) => boolean, what: string): T {
  if (!ok(o[key])) throw payloadError(type, `"${key}" must be ${what}`);
  return o[key] as T;
}

const isString = (v: unknown) => typeof v === 'string';
const isStringRecord = (v: unknown) =>
  !!v && typeof v === 'object' && !Array.isArray(v) && Object.values(v as object).every((x) => typeof x === 'string');

/** Encodes a message as one frame. Throws RangeError when it is over the size limit. */
export function encodeMessage(msg: Message): Buffer {
  const code = FrameType[msg.type];
  switch (msg.type) {
    case 'output': {
      const body = Buffer.allocUnsafe(5 + msg.data.length);
      body.writeUInt32BE(msg.rank, 0);
      body[4] = msg.stream;
      body.set(msg.data, 5);
      return encodeFrame(code, body, msg.end ? FLAG_END : 0);
    }
    case 'stdin':
      return encodeFrame(code, msg.data, msg.end ? FLAG_END : 0);
    case 'descriptor': {
      const body = Buffer.allocUnsafe(8 + msg.bytes.length);
      body.writeUInt32BE(msg.seq, 0);
      body.writeUInt32BE(msg.host, 4);
      body.set(msg.bytes, 8);
      return encodeFrame(code, body);
    }
    case 'ping':
    case 'pong':
      return encodeFrame(code);
    case 'event':
      return encodeFrame(code, Buffer.from(JSON.stringify({ v: CONTROL_VERSION, ...msg.event })));
    default: {
      const { type: _type, ...body } = msg;
      return encodeFrame(code, Buffer.from(JSON.stringify(body)));
    }
  }
}

/** Reads a frame as a message, checking every field. Throws FrameError (ERR_FRAME_TYPE for a
 * type this version does not know, ERR_FRAME_PAYLOAD naming the field that is wrong). */
export function decodeMessage(frame: Frame): Message {
  const type = TYPE_NAMES.get(frame.type);
  if (!type) throw new FrameError('ERR_FRAME_TYPE', `unknown frame type 0x${frame.type.toString(16).padStart(2, '0')}`);
  const p = frame.payload;
  const end = (frame.flags & FLAG_END) !== 0;
  switch (type) {
    case 'output': {
      if (p.length < 5) throw payloadError(type, `payload of ${p.length} bytes is shorter than its 5-byte rank and stream`);
      const stream = p[4];
      if (stream !== 1 && stream !== 2) throw payloadError(type, `stream ${stream} is neither 1 (stdout) nor 2 (stderr)`);
      return { type, rank: p.readUInt32BE(0), stream, data: p.subarray(5), end };
    }
    case 'stdin':
      return { type, data: p, end };
    case 'descriptor':
      if (p.length < 8 + 12) throw payloadError(type, `payload of ${p.length} bytes is shorter than its seq, host and a descriptor header`);
      return { type, seq: p.readUInt32BE(0), host: p.readUInt32BE(4), bytes: p.subarray(8) };
    case 'ping':
    case 'pong':
      if (p.length !== 0) throw payloadError(type, `payload must be empty, got ${p.length} bytes`);
      return { type };
    case 'event': {
      const event = decodeControl(p.toString('utf8'));
      if (!event) throw payloadError(type, 'payload is not a control event (fork, fail or exit with a rank)');
      return { type, event };
    }
    case 'start': {
      const o = json(type, p);
      return {
        type,
        job: field(type, o, 'job', isString, 'a string'),
        size: field(type, o, 'size', (v) => Number.isSafeInteger(v) && (v as number) >= 1, 'a positive integer'),
        ranks: field(type, o, 'ranks', (v) => Array.isArray(v) && v.length > 0 && v.every(isRank), 'a non-empty array of ranks'),
        command: field(type, o, 'command', (v) => isString(v) && v !== '', 'a non-empty string'),
        args: field(type, o, 'args', (v) => Array.isArray(v) && v.every(isString), 'an array of strings'),
        cwd: field(type, o, 'cwd', isString, 'a string'),
        env: field(type, o, 'env', isStringRecord, 'an object of strings'),
      };
    }
    case 'signal': {
      const o = json(type, p);
      return { type, signal: field(type, o, 'signal', (v) => isString(v) && /^SIG[A-Z0-9]+$/.test(v as string), 'a signal name like "SIGTERM"') };
    }
    case 'endpoint': {
      const o = json(type, p);
      return {
        type,
        rank: field(type, o, 'rank', isRank, 'a rank (a non-negative integer)'),
        address: field(type, o, 'address', (v) => isString(v) && v !== '', 'a non-empty string'),
        port: field(type, o, 'port', (v) => Number.isInteger(v) && (v as number) >= 1 && (v as number) <= 65535, 'a port 1..65535'),
      };
    }
    case 'error': {
      const o = json(type, p);
      return { type, message: field(type, o, 'message', isString, 'a string') };
    }
    case 'hello': {
      const o = json(type, p);
      return {
        type,
        index: field(type, o, 'index', isRank, 'a host index (a non-negative integer)'),
        port: field(type, o, 'port', isPort, 'a port 1..65535'),
        pid: field(type, o, 'pid', isRank, 'a pid'),
        hostname: field(type, o, 'hostname', isString, 'a string'),
      };
    }
    case 'hosts': {
      const o = json(type, p);
      const isEndpoint = (v: unknown) => !!v && typeof v === 'object' && isString((v as Record<string, unknown>).address) && isPort((v as Record<string, unknown>).port);
      return {
        type,
        endpoints: field(type, o, 'endpoints', (v) => Array.isArray(v) && v.length > 0 && v.every(isEndpoint), 'a non-empty array of {address, port}'),
        hostOf: field(type, o, 'hostOf', (v) => Array.isArray(v) && v.length > 0 && v.every(isRank), 'a non-empty array of host indexes'),
      };
    }
    case 'linked':
    case 'go':
      json(type, p);
      return { type };
    case 'done': {
      const o = json(type, p);
      return { type, code: field(type, o, 'code', (v) => Number.isInteger(v) && (v as number) >= 0 && (v as number) <= 255, 'an exit code 0..255') };
    }
    case 'job': {
      const o = json(type, p);
      const names = (v: unknown) => Array.isArray(v) && v.length > 0 && v.length <= 4096 && v.every((x) => isString(x) && x !== '');
      const msg = {
        type,
        job: field<string>(type, o, 'job', (v) => isString(v) && /^[0-9a-f-]{1,64}$/.test(v as string), 'a job id (hex digits and dashes)'),
        hosts: field<string[]>(type, o, 'hosts', names, 'a non-empty array of host names'),
        binds: field<string[]>(type, o, 'binds', (v) => names(v) && (v as string[]).every((x) => net.isIPv4(x)), 'a non-empty array of IPv4 addresses'),
        index: field<number>(type, o, 'index', isRank, 'a host index (a non-negative integer)'),
      };
      if (msg.binds.length !== msg.hosts.length) throw payloadError(type, `${msg.hosts.length} hosts but ${msg.binds.length} addresses`);
      if (msg.index >= msg.hosts.length) throw payloadError(type, `index ${msg.index} is out of range for ${msg.hosts.length} hosts`);
      return msg;
    }
  }
}

/** Callbacks of a {@link FrameChannel}. */
export interface ChannelHandlers {
  /** A message arrived. A throw here closes the channel with ERR_FRAME_HANDLER. */
  onMessage(msg: Message): void;
  /** Called once when the channel is done: null after a clean end, else what went wrong. */
  onClose(error: Error | null): void;
}

/**
 * Messages over an authenticated socket (one returned by handshakeSocket, which leaves it
 * paused: the channel resumes it). Any bad frame, socket error or throwing handler closes the
 * socket and is reported once through onClose; nothing is thrown to the event loop.
 */
export class FrameChannel {
  readonly #socket: net.Socket;
  readonly #handlers: ChannelHandlers;
  readonly #decoder: FrameDecoder;
  #closed = false;
  #error: Error | null = null;

  /** @param socket authenticated; @param handlers see ChannelHandlers; @param maxPayload limit. */
  constructor(socket: net.Socket, handlers: ChannelHandlers, maxPayload = MAX_PAYLOAD) {
    this.#socket = socket;
    this.#handlers = handlers;
    this.#decoder = new FrameDecoder(maxPayload);
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('end', () => {
      const truncated = this.#decoder.end();
      if (truncated) this.#abort(truncated);
      else socket.end();
    });
    socket.on('error', (e: NodeJS.ErrnoException) => {
      this.#error ??= new FrameError('ERR_FRAME_SOCKET', `connection error: ${e.code ?? e.message}`);
    });
    socket.on('close', () => this.#finish());
    socket.resume();
  }

  /** False once the channel has closed or failed. */
  get open(): boolean {
    return !this.#closed && !this.#socket.destroyed;
  }

  #onData(chunk: Buffer): void {
    if (this.#closed) return;
    const frames = this.#decoder.push(chunk);
    for (const frame of frames) {
      let msg: Message;
      try {
        msg = decodeMessage(frame);
      } catch (e) {
        this.#abort(e as Error);
        return;
      }
      try {
        this.#handlers.onMessage(msg);
      } catch (e) {
        this.#abort(new FrameError('ERR_FRAME_HANDLER', `message handler threw on a ${msg.type} frame: ${(e as Error)?.message ?? String(e)}`));
        return;
      }
      if (this.#closed || this.#socket.destroyed) return;
    }
    if (this.#decoder.error) this.#abort(this.#decoder.error);
  }

  #abort(e: Error): void {
    this.#error ??= e;
    this.#socket.destroy();
  }

  #finish(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#handlers.onClose(this.#error);
    } catch {
      /* nothing is left to tell: the connection is already gone */
    }
  }

  /** Sends a message; false once closed (the message is dropped) or when the socket's buffer
   * is full (it is queued; wait for the socket's 'drain'). Throws RangeError for an oversized one. */
  send(msg: Message): boolean {
    if (!this.open) return false;
    return this.#socket.write(encodeMessage(msg));
  }

  /** Ends the connection after what was sent; onClose follows. */
  close(): void {
    if (this.open) this.#socket.end();
  }

  /** Closes at once, reporting `error` (if given) through onClose. */
  destroy(error?: Error): void {
    if (error) this.#error ??= error;
    this.#socket.destroy();
  }
}
