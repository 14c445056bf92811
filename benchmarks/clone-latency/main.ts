/**
 * Clone latency: an origin holding 256 MiB or 1 GiB of Float64Array state starts N workers that
 * each acknowledge ("ready": every worker running with the state, counted when the last
 * acknowledgement reaches the origin), sum their share and report it ("done"). Drivers are in
 * drivers.ts; they run interleaved (A B C ... A B C ...), and the table gives the median and the
 * minimum of each, and the ratio of each driver's median "ready" to clone() of a plain array.
 *
 * Run: npm run bench:clone [-- --quick]     (node --single-threaded, as sfmpirun starts an origin)
 *      node dist/benchmarks/clone-latency/main.js --quick     (plain node)
 * Options: --quick (1 GiB, N = 8, 3 rounds), --sizes 256,1024 (MiB), --n 1,8, --rounds 5,
 *          --drivers clone-plain,wt-atomics,..., --verbose (each run, and where a clone's time went)
 * Prints the README's markdown table on stdout and a line per goal; progress on stderr.
 */
import os from 'node:os';
import { parseArgs } from 'node:util';
import v8 from 'node:v8';
import vm from 'node:vm';
import { region } from '../../index.js';
import { native } from '../../native/addon.js';
import { settings, viaAtomics, viaChildProcesses, viaClones, viaMessages, viaPool, type Timing } from './drivers.js';

const MiB = 1024 * 1024;

const { values: opts } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    sizes: { type: 'string' },
    n: { type: 'string' },
    rounds: { type: 'string' },
    drivers: { type: 'string' },
    verbose: { type: 'boolean', default: false },
  },
});
settings.verbose = opts.verbose ?? false;

function list(flag: string, raw: string | undefined, fallback: number[]): number[] {
  if (raw === undefined) return fallback;
  const xs = raw.split(',').map(Number);
  if (xs.some((x) => !Number.isSafeInteger(x) || x < 1)) throw new RangeError(`--${flag} must be positive integers separated by commas, got "${raw}"`);
  return xs;
}

const sizes = list('sizes', opts.sizes, opts.quick ? [1024] : [256, 1024]);
const counts = list('n', opts.n, opts.quick ? [8] : [1, 8]);
const rounds = list('rounds', opts.rounds, [opts.quick ? 3 : 5])[0];

/** A driver and the state it runs on, made before each of its runs (untimed) and dropped after:
 * while an origin holds memory, every fork copies its page tables, so no driver's origin holds
 * another driver's state. */
interface Driver<S = unknown> {
  key: string;
  label: string;
  make(len: number): S;
  run(state: S, n: number): Promise<Timing>;
}

function fill(a: Float64Array): Float64Array {
  for (let i = 0; i < a.length; i++) a[i] = (i % 1024) * 0.5;
  return a;
}

function expected(len: number): number {
  return (len / 1024) * ((1023 * 1024) / 2) * 0.5;
}

function makeShared(len: number): SharedArrayBuffer {
  const sab = new SharedArrayBuffer(len * 8);
  fill(new Float64Array(sab));
  return sab;
}

const driver = <S>(d: Driver<S>) => d as Driver;
const allDrivers: Driver[] = [
  driver({ key: 'clone-plain', label: 'clone(), plain Float64Array', make: (len) => fill(new Float64Array(len)), run: viaClones }),
  driver({ key: 'clone-region', label: 'clone(), region', make: (len) => fill(region(Float64Array, len)), run: viaClones }),
  // What a plain array cost before huge pages (and still costs where THP is off).
  driver({
    key: 'clone-4k',
    label: 'clone(), 4 KiB pages',
    make: (len) => fill(region(Float64Array, len, { hugePages: false })),
    run: viaClones,
  }),
  driver({ key: 'wt-atomics', label: 'worker_threads, SAB + Atomics.wait', make: makeShared, run: viaAtomics }),
  driver({ key: 'wt-message', label: 'worker_threads, SAB + postMessage', make: makeShared, run: viaMessages }),
  driver({ key: 'wtp', label: 'node-worker-threads-pool, SAB', make: makeShared, run: viaPool }),
  driver({ key: 'cp-fork', label: 'child_process.fork, share copied', make: (len) => fill(new Float64Array(len)), run: viaChildProcesses }),
];

const wanted = opts.drivers?.split(',');
const unknown = wanted?.filter((k) => !allDrivers.some((d) => d.key === k));
if (unknown?.length) throw new RangeError(`--drivers: unknown driver ${unknown.join(', ')}; known: ${allDrivers.map((d) => d.key).join(', ')}`);
const drivers = wanted ? allDrivers.filter((d) => wanted.includes(d.key)) : allDrivers;

// gc() between runs, so that no driver pays for its predecessor's garbage; plain node has no
// --expose-gc, so the function is fetched as V8 documents it.
const gc: () => void =
  (globalThis as { gc?: () => void }).gc ??
  (() => {
    v8.setFlagsFromString('--expose-gc');
    return vm.runInNewContext('gc') as () => void;
  })();

async function settle(): Promise<void> {
  gc();
  await new Promise((r) => setTimeout(r, 20));
  gc();
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

const f = (x: number) => (Number.isNaN(x) ? '—' : x < 10 ? x.toFixed(2) : x < 1000 ? x.toFixed(1) : x.toFixed(0));
const sizeLabel = (mib: number) => (mib >= 1024 ? `${mib / 1024} GiB` : `${mib} MiB`);

/** What share of a plain Float64Array of `len` elements the kernel puts on huge pages. */
function hugeShare(len: number): number {
  return native.hugePageBytes(fill(new Float64Array(len))) / (len * 8);
}

/** One run of a driver on a state of its own. In a function of its own, so that no reference to
 * the state outlives the run (a top-level await keeps the module's locals alive). */
async function runOnce(d: Driver, len: number, n: number): Promise<Timing> {
  const state = d.make(len);
  await settle();
  return d.run(state, n);
}

interface Cell {
  ready: number[];
  done: number[];
}
const rows: string[] = [];
const goals: string[] = [];
const coverage: string[] = [];

for (const mib of sizes) {
  const len = (mib * MiB) / 8;
  const want = expected(len);
  coverage.push(`${sizeLabel(mib)} plain Float64Array ${(hugeShare(len) * 100).toFixed(0)}% on huge pages`);
  for (const n of counts) {
    const cells = new Map<string, Cell>(drivers.map((d) => [d.key, { ready: [], done: [] }]));
    for (let round = 0; round < rounds; round++) {
      for (const d of drivers) {
        const t = await runOnce(d, len, n);
        await settle();
        if (settings.verbose) process.stderr.write(`    ${d.key}: ready ${f(t.readyMs)}, done ${f(t.doneMs)}; origin rss after ${(process.memoryUsage.rss() / MiB).toFixed(0)} MiB\n`);
        if (Math.abs(t.total - want) > 1e-9 * want) throw new Error(`${d.key}, ${mib} MiB, N=${n}: total ${t.total}, expected ${want}`);
        cells.get(d.key)!.ready.push(t.readyMs);
        cells.get(d.key)!.done.push(t.doneMs);
      }
      process.stderr.write(`  ${sizeLabel(mib)} N=${n}: round ${round + 1} of ${rounds}\n`);
    }
    const ours = cells.get('clone-plain');
    const base = ours ? median(ours.ready) : NaN;
    for (const d of drivers) {
      const c = cells.get(d.key)!;
      const ratio = Number.isNaN(base) ? '—' : `${f(median(c.ready) / base)}x`;
      rows.push(
        `| ${sizeLabel(mib)} | ${n} | ${d.label} | ${f(median(c.ready))} | ${f(Math.min(...c.ready))} | ` +
          `${f(median(c.done))} | ${f(Math.min(...c.done))} | ${ratio} |`,
      );
    }
    if (ours && mib === 1024 && n === 8) {
      const reg = cells.get('clone-region');
      const wt = ['wt-atomics', 'wt-message'].filter((k) => cells.has(k)).map((k) => median(cells.get(k)!.ready));
      if (reg) {
        const r = base / median(reg.ready);
        goals.push(`goal 1 (1 GiB, N=8): plain ready ${f(base)} ms <= 2x region ${f(median(reg.ready))} ms: ${f(r)}x, ${r <= 2 ? 'met' : 'NOT met'}`);
      }
      if (wt.length) {
        const r = Math.min(...wt) / base;
        goals.push(`goal 2 (1 GiB, N=8): >= 5x faster than the faster worker_threads on a SAB (${f(Math.min(...wt))} ms): ${f(r)}x, ${r >= 5 ? 'met' : 'NOT met'}`);
      }
    }
  }
}

const hp = native.hugePages();
const flags = process.execArgv.length ? process.execArgv.join(' ') : '(none)';
console.log(
  `clone latency, ms from the request to the last acknowledgement ("ready") and the last result ("done"); ` +
    `${rounds} interleaved rounds; node ${process.version} ${flags}; ${os.availableParallelism()} cores; ` +
    `THP ${hp.mode}, ArrayBuffer hook ${hp.hooked ? 'on' : `off (${hp.reason})`}; ${coverage.join(', ')}; ${new Date().toISOString()}`,
);
console.log('');
console.log('| state | N | driver | ready median | ready min | done median | done min | ready vs clone() plain |');
console.log('| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: |');
for (const r of rows) console.log(r);
if (goals.length) console.log('');
for (const g of goals) console.log(g);
