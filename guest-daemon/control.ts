/**
 * The launcher's control lines (docs/launcher-protocol.md), as the launcher and dom0 read them.
 * Ranks and their parents write them with the one encoder of native/control (sf_control.h, also
 * what the Node binding calls): one JSON object per line, one write(2) of at most 4000 bytes,
 *
 *   {"v":1,"ev":"fork","host":"th1","rank":3,"pid":4242,"ms":1.250}
 *   {"v":1,"ev":"exit","host":"th1","rank":3,"code":0}
 *   {"v":1,"ev":"fail","host":"th1","rank":3,"code":139,"signal":11,"cause":"was killed by ..."}
 *
 * This decoder is the other end: its types are what the encoder writes.
 */

/** The version of the lines this decoder reads (SF_CTL_VERSION). */
export const CONTROL_VERSION = 1;

/** Fields every line carries. */
interface Line {
  /** The host the line was written on. */
  host: string;
  /** The world rank it is about. */
  rank: number;
}

/** One control line. */
export type ControlMessage =
  | (Line & { ev: 'fork'; pid: number; ms: number })
  | (Line & { ev: 'fail'; code: number; signal: number; cause: string })
  | (Line & { ev: 'exit'; code: number });

const isInt = (v: unknown): v is number => Number.isInteger(v);

/** Parses one line; null for a malformed one or another version (the caller reports it). */
export function decodeControl(line: string): ControlMessage | null {
  let m: unknown;
  try {
    m = JSON.parse(line);
  } catch {
    return null;
  }
  if (!m || typeof m !== 'object') return null;
  const o = m as Record<string, unknown>;
  if (o.v !== CONTROL_VERSION || typeof o.host !== 'string' || !isInt(o.rank) || o.rank < 0) return null;
  const base = { host: o.host, rank: o.rank };
  switch (o.ev) {
    case 'fork':
      return isInt(o.pid) && typeof o.ms === 'number' ? { ...base, ev: 'fork', pid: o.pid, ms: o.ms } : null;
    case 'fail':
      if (!isInt(o.code) || !isInt(o.signal) || o.signal < 0) return null;
      return { ...base, ev: 'fail', code: o.code, signal: o.signal, cause: typeof o.cause === 'string' ? o.cause : 'failed' };
    case 'exit':
      return isInt(o.code) ? { ...base, ev: 'exit', code: o.code } : null;
    default:
      return null;
  }
}
