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
import { native } from '../native/addon.js';

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

/** Parses one line; null for a malformed one or another version (the caller reports it). The
 * reading is native/control/decode.c's, the native launcher's own (JSON.parse's grammar, then
 * the fields of the line's `ev`), so both launchers accept and refuse the same lines. */
export function decodeControl(line: string): ControlMessage | null {
  return native.decodeControl(line);
}
