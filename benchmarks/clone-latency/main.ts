/**
 * Clone latency: an origin holding 256 MiB or 1 GiB of Float64Array state starts N workers that
 * each sum their share and report back. Drivers, all measured in this one run:
 *   clones        clone() of the live process; state in a region (huge pages)
 *   clones-4k     the same with the state in a plain Float64Array (4 KiB pages)
 *   wtp-copy      node-worker-threads-pool StaticPool; each worker is sent its share by copy
 *   wt-shared     worker_threads, state in a SharedArrayBuffer (no copy)
 *   cp-fork       child_process.fork; each child is sent its share over IPC (advanced serialization)
 * The copying peers get only their share, the least copying they can do (the whole state to each
 * of 8 workers would be 8 GiB of copies at 1 GiB): the ratios are in the peers' favour.
 * "ready" = every worker running with the state; "done" = every share summed and reported.
 * Run: npm run bench:clone   (node --single-threaded dist/benchmarks/clone-latency/main.js)
 */
import { fork } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { StaticPool } from 'node-worker-threads-pool';
import { clone, exit, join, region, requestTicket } from '../../index.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const MiB = 1024 * 1024;
const sizes = (process.env.BENCH_SIZES_MIB ?? '256,1024').split(',').map(Number);
const counts = (process.env.BENCH_N ?? '1,2,4,8').split(',').map(Number);
const budgetMs = Number(process.env.BENCH_BUDGET_MS ?? 15_000);

interface Timing {
  readyMs: number;
  doneMs: number;
  total: number;
}

function fill(a: Float64Array): void {
  for (let i = 0; i < a.length; i++) a[i] = (i % 1024) * 0.5;
}

function expected(len: number): number {
  return (len / 1024) * ((1023 * 1024) / 2) * 0.5;
}

async function viaClones(state: Float64Array, n: number): Promise<Timing> {
  const t0 = performance.now();
  const ticket = requestTicket(n);
  const id = clone(ticket);
  if (id > 0) {
    const share = state.length / n;
    let s = 0;
    for (let i = (id - 1) * share; i < id * share; i++) s += state[i];
    exit(s);
  }
  const readyMs = ticket.readyAt - t0;
  if (process.env.BENCH_DEBUG) process.stderr.write(`fork ${ticket.totalForkMs.toFixed(2)} ms: ${ticket.forkMs.map((x) => x.toFixed(1))}\n`);
  const outcomes = await join(ticket);
  const doneMs = performance.now() - t0;
  let total = 0;
  for (const o of outcomes) {
    if (!o.ok) throw new Error(o.reason);
    total += o.value as number;
  }
  return { readyMs, doneMs, total };
}

/** Copying peers: "ready" is a run whose workers only acknowledge their share. */
async function viaPool(state: Float64Array, n: number, sum = true): Promise<Timing> {
  const t0 = performance.now();
  const pool = new StaticPool({
    size: n,
    task: (job: { share: Float64Array; sum: boolean }) => {
      if (!job.sum) return job.share.length;
      let s = 0;
      for (let i = 0; i < job.share.length; i++) s += job.share[i];
      return s;
    },
  });
  const share = state.length / n;
  // Each worker's share is copied: postMessage clones the sliced array.
  const sums = await Promise.all(
    Array.from({ length: n }, (_, i) => pool.exec({ share: state.slice(i * share, (i + 1) * share), sum })),
  );
  const ms = performance.now() - t0;
  await pool.destroy();
  const total = sum ? sums.reduce((a: number, b: number) => a + b, 0) : NaN;
  return { readyMs: ms, doneMs: ms, total };
}

const sharedWorker = `
const { parentPort, workerData } = require('node:worker_threads');
const data = new Float64Array(workerData.sab);
parentPort.postMessage('ready');
const share = data.length / workerData.n;
let s = 0;
for (let i = workerData.id * share; i < (workerData.id + 1) * share; i++) s += data[i];
parentPort.postMessage(s);
`;

async function viaShared(sab: SharedArrayBuffer, n: number): Promise<Timing> {
  const t0 = performance.now();
  let readyMs = 0;
  let ready = 0;
  const sums = await Promise.all(
    Array.from(
      { length: n },
      (_, id) =>
        new Promise<number>((resolve, reject) => {
          const w = new Worker(sharedWorker, { eval: true, workerData: { sab, id, n } });
          w.on('message', (m) => {
            if (m === 'ready') {
              if (++ready === n) readyMs = performance.now() - t0;
              return;
            }
            resolve(m as number);
            void w.terminate();
          });
          w.on('error', reject);
        }),
    ),
  );
  return { readyMs, doneMs: performance.now() - t0, total: sums.reduce((a, b) => a + b, 0) };
}

async function viaChildProcess(state: Float64Array, n: number, sum = true): Promise<Timing> {
  const t0 = performance.now();
  const sums = await Promise.all(
    Array.from(
      { length: n },
      (_, id) =>
        new Promise<number>((resolve, reject) => {
          const child = fork(path.join(here, 'cp-child.js'), [], { serialization: 'advanced' });
          child.on('message', (s) => resolve(s as number));
          child.on('error', reject);
          const share = state.length / n;
          child.send({ data: state.slice(id * share, (id + 1) * share), sum });
        }),
    ),
  );
  const ms = performance.now() - t0;
  return { readyMs: ms, doneMs: ms, total: sum ? sums.reduce((a, b) => a + b, 0) : NaN };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s[Math.floor((s.length - 1) / 2)];
}

/** Runs a driver at least once, up to `reps` times while within the time budget. */
async function measure(run: () => Promise<Timing>, want: number, reps: number): Promise<{ ready: number; done: number }> {
  const ready: number[] = [];
  const done: number[] = [];
  const start = performance.now();
  for (let i = 0; i < reps; i++) {
    const t = await run();
    if (!Number.isNaN(t.total) && Math.abs(t.total - want) > 1e-6 * want) throw new Error(`wrong total ${t.total}, expected ${want}`);
    ready.push(t.readyMs);
    done.push(t.doneMs);
    if (performance.now() - start > budgetMs) break;
  }
  return { ready: median(ready), done: median(done) };
}

const f = (x: number) => (Number.isNaN(x) ? '—' : x < 10 ? x.toFixed(2) : x.toFixed(1));
const rows: string[][] = [];
let goal: { ready: number; pool: number } | null = null;

const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with --expose-gc (npm run bench:clone does)');

/** Each driver's origin holds only its own state: fork cost grows with every mapped page. */
async function withState<T>(make: () => T, body: (state: T) => Promise<void>): Promise<void> {
  let state: T | null = make();
  await body(state);
  state = null;
  gc?.();
  await new Promise((r) => setTimeout(r, 100));
  gc?.();
}

for (const mib of sizes) {
  const len = (mib * MiB) / 8;
  const want = expected(len);
  const results = new Map<number, Record<string, { ready: number; done: number }>>();
  for (const n of counts) results.set(n, {});
  const makeRegion = () => {
    const a = region(Float64Array, len);
    fill(a);
    return a;
  };
  const makePlain = () => {
    const a = new Float64Array(len);
    fill(a);
    return a;
  };
  await withState(makeRegion, async (state) => {
    for (const n of counts) results.get(n)!.clones = await measure(() => viaClones(state, n), want, 7);
  });
  await withState(makePlain, async (state) => {
    for (const n of counts) {
      const r = results.get(n)!;
      r.clones4k = await measure(() => viaClones(state, n), want, 7);
      r.pool = await measure(() => viaPool(state, n), want, 3);
      r.pool.ready = (await measure(() => viaPool(state, n, false), want, 3)).ready;
      r.cp = await measure(() => viaChildProcess(state, n), want, 3);
      r.cp.ready = (await measure(() => viaChildProcess(state, n, false), want, 3)).ready;
    }
  });
  await withState(
    () => {
      const sab = new SharedArrayBuffer(len * 8);
      fill(new Float64Array(sab));
      return sab;
    },
    async (sab) => {
      for (const n of counts) results.get(n)!.shared = await measure(() => viaShared(sab, n), want, 5);
    },
  );
  for (const n of counts) {
    const { clones: c, clones4k: c4k, pool, shared, cp } = results.get(n)!;
    const peer = (p: { ready: number; done: number }) =>
      `${f(p.ready)} / ${f(p.done)} (${f(p.ready / c.ready)}x / ${f(p.done / c.done)}x)`;
    rows.push([`${mib} MiB`, String(n), `${f(c.ready)} / ${f(c.done)}`, peer(c4k), peer(pool), peer(shared), peer(cp)]);
    if (mib === 1024 && n === 8) goal = { ready: c.ready, pool: pool.ready / c.ready };
  }
  process.stderr.write(`  measured ${mib} MiB\n`);
}

const head = ['state', 'N', 'clones', 'clones-4k', 'wtp-copy', 'wt-shared', 'cp-fork'];
const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
const line = (r: string[]) => r.map((c, i) => c.padStart(widths[i])).join('  ');
console.log(`clone latency: ready / done, medians in ms; (ratio to clones: ready / done); node ${process.version}, ${new Date().toISOString()}`);
console.log(line(head));
for (const r of rows) console.log(line(r));
if (goal)
  console.log(
    `goal: 8 clones of a 1 GiB origin ready in < 40 ms: ${f(goal.ready)} ms; ` +
      `>= 50x faster than the copying pool: ${f(goal.pool)}x`,
  );
