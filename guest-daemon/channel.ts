/**
 * The clone → parent channel: one socketpair per clone, made before the fork. The clone writes
 * at most one frame, just before it leaves; end-of-file ends it.
 *
 *   +------+---------------------------------------------+
 *   | kind | payload (v8.serialize)                      |
 *   | 1 B  | up to the clone's memory; EOF-delimited     |
 *   +------+---------------------------------------------+
 *   kind 'V' (0x56): the value given to exit(value)
 *   kind 'E' (0x45): { name, message, stack } of the uncaught error that ended the clone
 *
 * No frame at all means the clone left without exit(value): by process.exit, an empty loop or a
 * signal. A malformed frame is reported in the outcome, never thrown at the parent's program.
 */
import fs from 'node:fs';
import v8 from 'node:v8';

export const VALUE = 0x56;
export const ERROR = 0x45;

/** An error as it crosses the channel. */
export interface ErrorInfo {
  name: string;
  message: string;
  stack?: string;
}

/** Encodes one frame; throws the DataCloneError of a value V8 cannot serialize. */
export function encodeFrame(kind: number, payload: unknown): Buffer {
  const body = v8.serialize(payload);
  const frame = Buffer.allocUnsafe(1 + body.length);
  frame[0] = kind;
  body.copy(frame, 1);
  return frame;
}

/** Writes a frame on a blocking fd (the clone's end), all of it. */
export function writeFrame(fd: number, frame: Buffer): void {
  let off = 0;
  while (off < frame.length) off += fs.writeSync(fd, frame, off, frame.length - off);
}

/** What the parent made of a channel's bytes. */
export type Decoded =
  | { kind: 'none' }
  | { kind: 'value'; value: unknown }
  | { kind: 'error'; error: ErrorInfo }
  | { kind: 'malformed'; reason: string };

export function decodeFrame(data: Buffer): Decoded {
  if (data.length === 0) return { kind: 'none' };
  const kind = data[0];
  if (kind !== VALUE && kind !== ERROR)
    return { kind: 'malformed', reason: `unknown frame kind 0x${kind.toString(16)} (${data.length} bytes)` };
  let payload: unknown;
  try {
    payload = v8.deserialize(data.subarray(1));
  } catch (e) {
    return { kind: 'malformed', reason: `undecodable ${data.length}-byte frame: ${(e as Error).message}` };
  }
  if (kind === VALUE) return { kind: 'value', value: payload };
  const p = payload as Partial<ErrorInfo> | null;
  if (!p || typeof p.message !== 'string')
    return { kind: 'malformed', reason: 'error frame without a message' };
  return { kind: 'error', error: { name: String(p.name ?? 'Error'), message: p.message, stack: p.stack } };
}
