/**
 * @internal Context ids of communicators. Each communicator owns two data-plane contexts (ctx
 * for point-to-point, ctx + 1 for collectives). A new communicator (dup, split) agrees on its
 * context with a MAX-allreduce of every member's next free one, so disjoint sub-communicators
 * never collide and every member picks the same.
 */
import type { CommCore } from './core.js';
import { mpi, SF_OP } from './native.js';

/** COMM_WORLD's context. */
export const WORLD_CTX = 16;
/** COMM_SELF's context. */
export const SELF_CTX = 4;

let nextCtx = WORLD_CTX + 2;

/** Agrees on a fresh context id with every member of `c` (collective). */
export function agreeCtx(c: CommCore): number {
  const v = new Float64Array([nextCtx]);
  mpi.reduce(...c.g(), null, v, SF_OP.MAX, 9, 0, 1);
  const ctx = v[0];
  nextCtx = ctx + 2;
  return ctx;
}
