/**
 * The sfmpi driver of bench:cluster's state rows: an origin holding SIZE MiB of Float64Array
 * state (the first half data, the second zero) hands it to 8 ranks on several hosts with
 * MPI.loadOnce; each rank touches a pattern; rank 0 prints JSON lines (ms from the origin's
 * loader returning): "handover" (to every rank past its fork point), "past" (the same, from the
 * origin reaching its fork point), "done" (every rank through its pattern), and the MB fetched
 * from the memory server against the MB of data touched (distinct pages, per host).
 *   argv: SIZE_MIB PATTERN (eighth: each rank its eighth; all: every rank all of it)
 */
import os from 'node:os';
import { MPI } from '../../mpi-compat/ts/index.js';
import { lazyRegionsOfThisProcess } from '../../runtime/share.js';

const mib = Number(process.argv[2] ?? 1024);
const pattern = process.argv[3] ?? 'eighth';
let t0 = 0; // when the origin's loader is done: the hand-over starts (the loading itself is the program's)
const state = MPI.loadOnce(() => {
  const a = new Float64Array((mib << 20) / 8);
  for (let i = 0; i < a.length / 2; i++) a[i] = i + 1;
  t0 = Date.now();
  return a;
}, { label: 'state' });
const firstPid = process.pid;
const tFork = Date.now();
const world = MPI.init();
const past = Date.now();
const [loaded, forked] = world.bcast([t0, tFork], 0);
const per = state.length / world.size;
const [from, to] = pattern === 'all' ? [0, state.length] : [world.rank * per, (world.rank + 1) * per];
let sum = 0;
for (let i = from; i < to; i += 512) sum += state[i]; // one read per 4 KiB page
const done = Date.now();
const lastPast = world.allreduce(past, MPI.MAX), lastDone = world.allreduce(done, MPI.MAX);
// Fetched bytes: each host's first process holds its host's counters.
let fetched = 0;
if (process.pid === firstPid) for (const r of lazyRegionsOfThisProcess()) { const c = r.counters(); fetched += (c.fetched + c.prefetched) * 4096; }
const totalFetched = world.allreduce(fetched, MPI.SUM);
// Distinct data pages touched on each host other than the origin's (the zero half needs no fetch).
const ranges = world.allgather([os.hostname(), from, to] as [string, number, number]);
const originHost = world.bcast(os.hostname(), 0);
let touched = 0;
for (const host of new Set(ranges.map((r) => r[0]))) {
  if (host === originHost) continue;
  const mine = ranges.filter((r) => r[0] === host).map(([, a, b]) => [a, Math.min(b, state.length / 2)] as const).filter(([a, b]) => b > a).sort((x, y) => x[0] - y[0]);
  let end = 0;
  for (const [a, b] of mine) {
    touched += Math.max(0, b - Math.max(a, end)) * 8;
    end = Math.max(end, b);
  }
}
const check = world.allreduce(sum > 0 || pattern === 'eighth' ? 1 : 0, MPI.MIN);
if (world.rank === 0) {
  console.log(JSON.stringify({ key: 'handover', us: (lastPast - loaded) * 1000 }));
  console.log(JSON.stringify({ key: 'past', us: (lastPast - forked) * 1000 }));
  console.log(JSON.stringify({ key: 'done', us: (lastDone - loaded) * 1000 }));
  console.log(JSON.stringify({ key: 'fetchedMB', us: totalFetched / 1e6 }));
  console.log(JSON.stringify({ key: 'touchedMB', us: touched / 1e6 }));
  if (!check) console.error('state-ranks: a rank read nothing');
}
MPI.finalize();
