/**
 * A job's outcome as the launcher decides it, from the ranks' control lines (and, for a job
 * across hosts, the hosts it lost): exit status 0 when every rank exited 0; otherwise the code
 * of the failure that caused the others (128+N for signal N, 124 for a timeout), with one line
 * naming the rank (or host) and the cause. One owner for single-host (job.ts) and multi-host
 * (cluster.ts) jobs.
 *
 * The root cause: within one host the ranks' claim-once (native/control) reports only the first
 * failure. Across hosts the news races: when a host dies, the ranks elsewhere see their links
 * close and exit with an MPI error, and their dom0's report may reach the launcher before the
 * lost connection does. So the failures of the first SETTLE_MS are weighed: a lost host outranks
 * a rank killed by a signal, which outranks a rank's exit code; ties go to the earliest.
 */
import type { ControlMessage } from '../../guest-daemon/control.js';

type Fail = Extract<ControlMessage, { ev: 'fail' }>;

/** How long after the first failure a more fundamental one may still be its cause (ms). */
export const SETTLE_MS = 1000;

interface Failure {
  status: number;
  line: string;
  /** 3 a lost host, 2 a signal, 1 an exit code. */
  weight: number;
  at: number;
}

/** What runCluster returns. */
export interface JobResult {
  status: number;
  /** The line printed for a failure, if any. */
  failure?: string;
}

/** Collects what happened; decides the status at the end. */
export class Outcome {
  readonly #failures: Failure[] = [];
  readonly #exits = new Map<number, number>();
  #timedOut: number | null = null;
  readonly #size: number;
  /** Called once, at the first failure (the launcher then gives the others a grace period). */
  onFirstFailure: (() => void) | null = null;

  constructor(size: number) {
    this.#size = size;
  }

  /** True once some rank or host failed. */
  get failed(): boolean {
    return this.#failures.length > 0;
  }

  #fail(status: number, line: string, weight: number): void {
    const at = performance.now();
    if (this.#failures.length && at - this.#failures[0].at > SETTLE_MS) return;
    this.#failures.push({ status, line, weight, at });
    if (this.#failures.length === 1) this.onFirstFailure?.();
  }

  /** The failure that stands for the job. */
  #cause(): Failure | undefined {
    return this.#failures.reduce<Failure | undefined>((best, f) => (!best || f.weight > best.weight ? f : best), undefined);
  }

  /** A control line of a rank. */
  event(msg: ControlMessage): void {
    if (msg.ev === 'fail') this.#fail(statusOf(msg), `rank ${msg.rank} ${msg.cause}`, msg.signal ? 2 : 1);
    if (msg.ev === 'exit') this.#exits.set(msg.rank, msg.code);
  }

  /** A host gone (its dom0 died, or its connection fell silent), with its ranks. */
  lost(host: string, ranks: readonly number[], why: string): void {
    this.#fail(255, `host ${host} (${rankList(ranks)}) ${why}`, 3);
  }

  /** The job's --timeout ran out. */
  timeout(seconds: number): void {
    this.#timedOut = seconds;
  }

  /** The status, with `origin` the exit of the process the launcher started (single host). */
  result(origin?: { code: number | null; signal: NodeJS.Signals | null; signalNumber: number }): JobResult {
    if (this.#timedOut !== null) {
      const running = [...Array(this.#size).keys()].filter((r) => !this.#exits.has(r));
      return { status: 124, failure: `job timed out after ${this.#timedOut} s` + (running.length ? `; ranks still running: ${running.join(', ')}` : '') };
    }
    const cause = this.#cause();
    if (cause) return { status: cause.status, failure: cause.line };
    if (origin?.signal) return { status: 128 + origin.signalNumber, failure: `rank 0 killed by signal ${origin.signal}` };
    if (origin && origin.code !== 0) return { status: origin.code ?? 1, failure: `rank 0 exited with code ${origin.code}` };
    for (const [rank, code] of [...this.#exits].sort((a, b) => a[0] - b[0]))
      if (code !== 0) return { status: code, failure: `rank ${rank} exited with code ${code}` };
    return { status: 0 };
  }
}

function statusOf(f: Fail): number {
  if (f.signal) return 128 + f.signal;
  return f.code > 0 ? f.code : 1;
}

/** "rank 3", "ranks 4-7", "ranks 1, 3, 5". */
export function rankList(ranks: readonly number[]): string {
  if (ranks.length === 1) return `rank ${ranks[0]}`;
  const contiguous = ranks.every((r, i) => i === 0 || r === ranks[i - 1] + 1);
  return contiguous ? `ranks ${ranks[0]}-${ranks[ranks.length - 1]}` : `ranks ${ranks.join(', ')}`;
}
