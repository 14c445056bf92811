/**
 * @internal The binding's functions for schedules (native/addon/mpi/sched.cc) and one-sided
 * windows (native/addon/mpi/win.cc), typed; the rest of the binding is typed in native.ts.
 */
import { mpi } from './native.js';

type Buf = ArrayBufferView | null;

/** The binding's functions of this layer's newer parts. */
export interface NativeExt {
  /**
   * Starts a schedule on context `ctx` with tag base `tag`; once done it sends a 4-byte message
   * (0, or 1: failed) to this rank on (doorCtx, doorTag). `ops`: 8 numbers per op
   * [kind (0 round end, 1 send, 2 recv, 3 copy, 4 combine), peer (world rank), part, a, aoff, b,
   * boff, len]; buffer ids >= 0 index `bufs`, ids < 0 the temporaries (-1 - i has temps[i] bytes).
   * `combine`: a data-plane op code on element type `dtype`, or (in, inout) => void.
   */
  schedStart(ctx: number, tag: number, doorCtx: number, doorTag: number, bufs: Buf[], temps: Float64Array, ops: Float64Array,
    combine: number | ((a: any, b: any) => void), dtype: number, label: string): void;
  /** The failure of the schedule with doorbell `doorTag` ([code, message], taken once), or null. */
  schedError(doorTag: number): [string, string] | null;
  /** What a pending schedule waits for ("round 2 of 3: a message from rank 1"), or null. */
  schedWhat(doorTag: number): string | null;
}

/** The binding, with this layer's newer functions. */
export const ext = mpi as unknown as NativeExt;
