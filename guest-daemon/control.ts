/**
 * The launcher's control socket (docs/launcher-protocol.md): one JSON object per line, each line
 * one write(2) of at most 4000 bytes so that lines from different ranks never interleave.
 * Ranks send; the launcher (mpi-compat/launcher) receives.
 */
import fs from 'node:fs';

export type ControlMessage =
  | { ev: 'fork'; rank: number; pid: number; ms: number }
  | { ev: 'fail'; rank: number; code: number | null; signal: string | null; cause: string }
  | { ev: 'exit'; rank: number; code: number };

/** Longest line a rank may send; longer causes are cut. */
export const MAX_LINE = 4000;

/** The control fd given by the launcher, or -1 when the program runs without one. */
export function controlFd(): number {
  const raw = process.env.SFMPI_CONTROL_FD;
  if (!raw) return -1;
  const fd = Number(raw);
  return Number.isInteger(fd) && fd >= 0 ? fd : -1;
}

/** Encodes a message as one line, cutting an over-long cause so the line stays atomic. */
export function encodeControl(msg: ControlMessage): string {
  let line = JSON.stringify(msg) + '\n';
  if (Buffer.byteLength(line) > MAX_LINE && msg.ev === 'fail') {
    const cut = { ...msg, cause: msg.cause.slice(0, MAX_LINE / 2) + '…' };
    line = JSON.stringify(cut) + '\n';
  }
  return line;
}

/** Sends to the launcher if there is one; never throws (the launcher may be gone). */
export function sendControl(msg: ControlMessage): void {
  const fd = controlFd();
  if (fd < 0) return;
  try {
    fs.writeSync(fd, encodeControl(msg));
  } catch {
    /* launcher gone: nothing to tell */
  }
}

/** Parses one received line; null for a malformed one (the caller reports it). */
export function decodeControl(line: string): ControlMessage | null {
  let m: unknown;
  try {
    m = JSON.parse(line);
  } catch {
    return null;
  }
  if (!m || typeof m !== 'object') return null;
  const o = m as Record<string, unknown>;
  if (!Number.isInteger(o.rank) || (o.rank as number) < 0) return null;
  switch (o.ev) {
    case 'fork':
      return { ev: 'fork', rank: o.rank as number, pid: Number(o.pid), ms: Number(o.ms) };
    case 'fail':
      return {
        ev: 'fail',
        rank: o.rank as number,
        code: typeof o.code === 'number' ? o.code : null,
        signal: typeof o.signal === 'string' ? o.signal : null,
        cause: typeof o.cause === 'string' ? o.cause : 'failed',
      };
    case 'exit':
      return { ev: 'exit', rank: o.rank as number, code: Number(o.code) };
    default:
      return null;
  }
}
