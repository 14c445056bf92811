/**
 * A job's outcome as the launcher decides it, from the ranks' control lines (and, for a job
 * across hosts, the hosts it lost): exit status 0 when every rank exited 0; otherwise the code
 * of the failure that caused the others (128+N for signal N, 124 for a timeout), with one line
 * naming the rank (or host) and the cause.
 *
 * The policy and its words have one owner, native/control/outcome.c (sf_control.h states it),
 * which the native launcher of single-host jobs links and this class reaches through the addon:
 * within one host the ranks' claim-once reports only the first failure; across hosts the news
 * races (when a host dies, ranks elsewhere see their links close and exit with an MPI error,
 * and their dom0's report may reach the launcher before the lost connection does), so the
 * failures of the first SETTLE_MS are weighed: a lost host outranks a rank killed by a signal,
 * which outranks a rank's exit code; ties go to the earliest.
 */
import type { ControlMessage } from '../../guest-daemon/control.js';
import { native, type NativeJobOutcome } from '../../native/addon.js';

/** How long after the first failure a more fundamental one may still be its cause (ms);
 * SF_OUTCOME_SETTLE_MS. */
export const SETTLE_MS = 1000;

/** What runCluster returns. */
export interface JobResult {
  status: number;
  /** The line printed for a failure, if any. */
  failure?: string;
}

/** Collects what happened; decides the status at the end. */
export class Outcome {
  readonly #o: NativeJobOutcome;
  /** Called once, at the first failure (the launcher then gives the others a grace period). */
  onFirstFailure: (() => void) | null = null;

  constructor(size: number) {
    this.#o = new native.JobOutcome(size);
  }

  /** True once some rank or host failed. */
  get failed(): boolean {
    return this.#o.failed();
  }

  /** A control line of a rank. */
  event(msg: ControlMessage): void {
    if (this.#o.event(msg)) this.onFirstFailure?.();
  }

  /** A host gone (its dom0 died, or its connection fell silent), with its ranks. */
  lost(host: string, ranks: readonly number[], why: string): void {
    if (this.#o.lost(host, ranks, why)) this.onFirstFailure?.();
  }

  /** The job's --timeout ran out. */
  timeout(seconds: number): void {
    this.#o.timeout(seconds);
  }

  /** The status and the failure's line. */
  result(): JobResult {
    return this.#o.result();
  }
}

/** "rank 3", "ranks 4-7", "ranks 1, 3, 5". */
export function rankList(ranks: readonly number[]): string {
  return native.rankList(ranks);
}
