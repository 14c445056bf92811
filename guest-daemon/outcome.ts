/**
 * How a clone ended, as join() reports it: the guest daemon turns the raw exit status and the
 * channel's frame into one of these.
 */
import os from 'node:os';
import type { RawOutcome } from '../xen/domain.js';
import { decodeFrame, type ErrorInfo } from './channel.js';

/** A clone that exited with code 0; `value` is what it passed to exit(value), if anything. */
export interface CloneSuccess {
  ok: true;
  id: number;
  pid: number;
  code: 0;
  signal: null;
  value: unknown;
}

/** A clone that failed: non-zero exit code, a signal, or an uncaught error (code 1). */
export interface CloneFailure {
  ok: false;
  id: number;
  pid: number;
  code: number | null;
  signal: NodeJS.Signals | null;
  /** The uncaught exception or unhandled rejection that ended it, if that is how it ended. */
  error?: ErrorInfo;
  /** One line for people: "clone 3 killed by signal SIGKILL". */
  reason: string;
}

/** How one clone ended, as join() reports it: success with its value, or failure with its cause. */
export type CloneOutcome = CloneSuccess | CloneFailure;

function signalName(signo: number): NodeJS.Signals | null {
  for (const [name, n] of Object.entries(os.constants.signals)) if (n === signo) return name as NodeJS.Signals;
  return null;
}

export function toOutcome(id: number, raw: RawOutcome): CloneOutcome {
  const frame = decodeFrame(raw.data);
  const signal = raw.signal !== null ? signalName(raw.signal) ?? (`SIG${raw.signal}` as NodeJS.Signals) : null;
  if (raw.code === 0 && frame.kind !== 'malformed' && frame.kind !== 'error')
    return { ok: true, id, pid: raw.pid, code: 0, signal: null, value: frame.kind === 'value' ? frame.value : undefined };
  let reason: string;
  if (signal) reason = `clone ${id} killed by signal ${signal}`;
  else if (raw.code === null) reason = `clone ${id} was reaped by someone else; its exit status is unknown`;
  else reason = `clone ${id} exited with code ${raw.code}`;
  const failure: CloneFailure = { ok: false, id, pid: raw.pid, code: raw.code, signal, reason };
  if (frame.kind === 'error') {
    failure.error = frame.error;
    failure.reason += `: uncaught ${frame.error.name}: ${frame.error.message}`;
  } else if (frame.kind === 'malformed') {
    failure.reason += ` (its channel carried a malformed frame: ${frame.reason})`;
  }
  return failure;
}
