/**
 * Lazy memory: what a seed pays to touch an origin's region through the memory server,
 * against reading the same bytes from a file (the peer: ranks that each load their input) and
 * two local floors (memcpy of resident bytes, first-touch faults of fresh memory).
 *
 * This process is the origin: it holds the region (a quarter of its pages never written, the
 * rest data), starts the memory server over it and serves authenticated connections on
 * loopback; the same bytes go to a file in /dev/shm for the peer. Each run is a fresh seed
 * process (benchmarks/lazy/seed.ts) that maps the region and touches one double per page,
 * either every page in order (seq) or a fixed scattered 10 % (sparse). Drivers run interleaved
 * (A B C ... A B C ...); the table gives the median and minimum of each.
 *
 * Run: npm run bench:lazy [-- --mib 256 --rounds 5 --quick]
 * Prints a markdown table on stdout; progress on stderr.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { encodeSecret, handshakeSocket, newSecret } from '../../dom0/handshake.js';
import { region } from '../../runtime/index.js';
import { lazyAvailable, startMemoryServer } from '../../xen/lazy.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const { values: opts } = parseArgs({
  options: {
    mib: { type: 'string', default: '256' },
    rounds: { type: 'string', default: '5' },
    quick: { type: 'boolean', default: false },
    drivers: { type: 'string' },
  },
});
const mib = Number(opts.mib);
const rounds = opts.quick ? 3 : Number(opts.rounds);
if (!Number.isSafeInteger(mib) || mib < 1) throw new RangeError(`--mib must be a positive integer, got ${opts.mib}`);
if (!Number.isSafeInteger(rounds) || rounds < 1) throw new RangeError(`--rounds must be a positive integer, got ${opts.rounds}`);
const avail = lazyAvailable();
if (!avail.ok) {
  console.log(`bench:lazy skipped: ${avail.reason}`);
  process.exit(0);
}

const PAGE = 4096;
const length = mib << 20;
const npages = length / PAGE;

// The origin's state: page p holds doubles, except every fourth page, never written.
const a = region(Float64Array, length / 8, { hugePages: false });
for (let p = 0; p < npages; p++) if (p % 4 !== 1) for (let j = 0; j < 512; j++) a[p * 512 + j] = p + j / 512 + 1;
const file = path.join(fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir(), `sfmpi-bench-lazy-${process.pid}`);
fs.writeFileSync(file, new Uint8Array(a.buffer, 0, length));
let seed = 12345;
const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 4294967296);
const sparse = new Set<number>();
while (sparse.size < npages / 10) sparse.add(Math.floor(rnd() * npages));
const sparsePages = [...sparse];

const secret = newSecret();
const t0 = performance.now();
const server = startMemoryServer([{ id: 1, view: a }]); // the origin's stall at its fork point
const startMs = performance.now() - t0;
const zeroMap = Buffer.from(server.zeroMap(1)).toString('base64');
const zmapMs = performance.now() - t0;
const listener = net.createServer((socket) => {
  socket.on('error', () => {});
  handshakeSocket(socket, { secret, role: 'dom0', side: 'server', accept: ['rank'] })
    .then((s) => server.addConnection(s))
    .catch((e: Error) => process.stderr.write(`bench:lazy: ${e.message}\n`));
});
await new Promise<void>((r) => listener.listen(0, '127.0.0.1', r));
const port = (listener.address() as net.AddressInfo).port;

interface Result {
  ms: number;
  touched: number;
  aheadMs?: number;
  counters?: { faults: number; fetched: number; prefetched: number; requests: number; zeroFilled: number; fetchMs: number; bytes: number };
  list?: string;
}

function runSeed(key: string, pattern: string, list?: string): Promise<Result> {
  const [driver, spin] = key.split('@');
  const cfg = { driver, pattern, port, length, zeroMap, file, list, pages: pattern === 'sparse' ? sparsePages : [] };
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(here, 'seed.js'), JSON.stringify(cfg)], {
      env: { ...process.env, SFMPI_JOB_SECRET: encodeSecret(secret), ...(spin === undefined ? {} : { SFMPI_LAZY_SPIN_US: spin }) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      const line = out.split('\n').find((l) => l.startsWith('RESULT '));
      if (code !== 0 || !line) reject(new Error(`seed ${driver}/${pattern} failed (${code}): ${err}`));
      else resolve(JSON.parse(line.slice(7)) as Result);
    });
  });
}

const allDrivers = [
  { key: 'file', label: 'peer: read(2) from a file in the page cache' },
  { key: 'memcpy', label: 'floor: memcpy of resident bytes into fresh memory' },
  { key: 'k1', label: 'lazy, one page per fault, no zero map' },
  { key: 'k1-zmap', label: 'lazy, one page per fault, zero map' },
  { key: 'k1-zmap@20', label: 'lazy, one page per fault, zero map, handler spins 20 µs' },
  { key: 'adaptive', label: 'lazy, adaptive read-ahead (≤ 64), zero map' },
  { key: 'adaptive-prefetch', label: 'lazy, adaptive + working-set prefetch (from the touch on)' },
  { key: 'prefetch-first', label: 'lazy, working set fetched first, then the touch' },
];
const wanted = opts.drivers?.split(',');
for (const w of wanted ?? []) if (!allDrivers.some((d) => d.key === w)) throw new RangeError(`--drivers: unknown driver ${w} (${allDrivers.map((d) => d.key).join(', ')})`);
const drivers = allDrivers.filter((d) => !wanted || wanted.includes(d.key));
const patterns = ['seq', 'sparse'];

// The working-set lists come from one untimed run per pattern (the "first seed").
const lists: Record<string, string> = {};
for (const p of patterns) lists[p] = (await runSeed('adaptive', p)).list!;

const results = new Map<string, Result[]>();
for (let round = 0; round < rounds; round++) {
  for (const p of patterns)
    for (const d of drivers) {
      // A B C ... A B C ...: a slow phase of the machine hits every driver alike.
      const r = await runSeed(d.key, p, d.key.includes('prefetch') ? lists[p] : undefined);
      const k = `${d.key}/${p}`;
      results.set(k, [...(results.get(k) ?? []), r]);
      process.stderr.write(`round ${round + 1}/${rounds} ${k}: ${r.ms.toFixed(1)} ms\n`);
    }
}

const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)];
const min = (xs: number[]) => Math.min(...xs);
const MB = (bytes: number, ms: number) => bytes / 1e6 / (ms / 1e3);

console.log(`\nLazy memory, ${mib} MiB region (${npages} pages, 1/4 never written), ${rounds} rounds, ${os.cpus().length} CPUs, loopback TCP`);
console.log(`touch = one double read per page; sparse = ${sparsePages.length} scattered pages (10 %)`);
console.log(`memory server: started (fork) in ${startMs.toFixed(1)} ms; zero map ready ${zmapMs.toFixed(1)} ms after the call\n`);
console.log('| pattern | driver | touch ms median (min) | MB/s median (max) | µs per fault | faults | requests | pages fetched / touched |');
console.log('|---|---|---|---|---|---|---|---|');
for (const p of patterns)
  for (const d of drivers) {
    const rs = results.get(`${d.key}/${p}`)!;
    const ms = rs.map((r) => r.ms);
    const touched = rs[0].touched;
    const c = rs[Math.floor(rs.length / 2)].counters;
    const touchedPages = touched / PAGE;
    const perFault = c && c.faults > 0 ? (median(ms) * 1000) / c.faults : NaN;
    const fetched = c ? `${((c.fetched + c.prefetched) / touchedPages).toFixed(2)}` : '–';
    console.log(
      `| ${p} | ${d.label} | ${median(ms).toFixed(1)} (${min(ms).toFixed(1)}) | ${MB(touched, median(ms)).toFixed(0)} (${MB(touched, min(ms)).toFixed(0)}) | ` +
        `${Number.isNaN(perFault) ? '–' : perFault.toFixed(1)} | ${c ? c.faults : '–'} | ${c ? c.requests : '–'} | ${fetched} |`,
    );
  }

for (const p of patterns) {
  const rs = results.get(`prefetch-first/${p}`);
  if (rs) console.log(`\nprefetch-first/${p}: the working set (${rs[0].counters!.prefetched} pages) arrived in ${median(rs.map((r) => r.aheadMs!)).toFixed(1)} ms (median), before the touch`);
}

listener.close();
server.close();
fs.rmSync(file, { force: true });
