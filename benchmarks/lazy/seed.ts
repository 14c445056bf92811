/**
 * One run of the lazy-memory benchmark, in a fresh process (a seed): maps the origin's region
 * lazily, or reads its bytes from a file (the peer), touches it in one pattern, and prints
 * `RESULT <json>` with the time of the touch and the region's counters.
 *
 *   node seed.js <json: { driver, pattern, port, length, zeroMap, file, list, pages[] }>
 *
 * Patterns: seq (every page in order), sparse (a fixed scattered 10 % of the pages). A touch
 * reads one double of the page, as a scan of the data would.
 */
import fs from 'node:fs';
import { connectAuthenticated, secretFromEnv } from '../../dom0/handshake.js';
import { mapLazyRegion, prefetch, prefetchPending, workingSet } from '../../xen/lazy.js';

interface Run {
  driver: 'file' | 'memcpy' | 'k1' | 'k1-zmap' | 'adaptive' | 'adaptive-prefetch' | 'prefetch-first';
  pattern: 'seq' | 'sparse';
  port: number;
  length: number;
  zeroMap: string;
  file: string;
  list?: string;
  pages: number[];
}

const PAGE = 4096;
const cfg = JSON.parse(process.argv[2]) as Run;
const pages = cfg.pattern === 'seq' ? null : cfg.pages;
const npages = cfg.length / PAGE;
const out = (v: unknown) => process.stdout.write(`RESULT ${JSON.stringify(v)}\n`);

/** Touches the pattern in `a`; returns the sum (so nothing is optimized away) and the ms. */
function touch(a: Float64Array): { sum: number; ms: number } {
  let sum = 0;
  const t0 = performance.now();
  if (pages === null) for (let p = 0; p < npages; p++) sum += a[p * 512];
  else for (const p of pages) sum += a[p * 512];
  return { sum, ms: performance.now() - t0 };
}

const touched = (pages?.length ?? npages) * PAGE;

if (cfg.driver === 'file') {
  // The peer: the same bytes read from a file in the page cache (what ranks do that each load
  // their input), into fresh memory.
  const fd = fs.openSync(cfg.file, 'r');
  const buf = Buffer.allocUnsafeSlow(cfg.length);
  const t0 = performance.now();
  if (pages === null) {
    for (let off = 0; off < cfg.length; off += 1 << 20) fs.readSync(fd, buf, off, Math.min(1 << 20, cfg.length - off), off);
  } else {
    for (const p of pages) fs.readSync(fd, buf, p * PAGE, PAGE, p * PAGE);
  }
  const ms = performance.now() - t0;
  fs.closeSync(fd);
  out({ ms, touched, sum: buf[0] });
} else if (cfg.driver === 'memcpy') {
  // A floor on this host: copying resident bytes into fresh memory (the least any way of
  // getting the bytes into this process costs).
  const src = fs.readFileSync(cfg.file);
  const d = new Uint8Array(new ArrayBuffer(cfg.length));
  const t0 = performance.now();
  if (pages === null) d.set(src);
  else for (const p of pages) d.set(src.subarray(p * PAGE, (p + 1) * PAGE), p * PAGE);
  out({ ms: performance.now() - t0, touched });
} else {
  const secret = secretFromEnv();
  const socket = await connectAuthenticated({ host: '127.0.0.1', port: cfg.port, secret, role: 'rank', accept: ['dom0'] });
  const region = mapLazyRegion({
    id: 1,
    length: cfg.length,
    pageSize: PAGE,
    zeroMap: cfg.driver === 'k1' ? undefined : new Uint8Array(Buffer.from(cfg.zeroMap, 'base64')),
    connection: socket,
    server: `127.0.0.1:${cfg.port}`,
    readAhead: cfg.driver.startsWith('k1') ? 1 : undefined,
  });
  let aheadMs = 0;
  if (cfg.driver === 'adaptive-prefetch' && cfg.list) {
    // The list is pushed as soon as the region is mapped; the program starts at once and finds
    // what has arrived. Measured: the touch, as for the others (the prefetch overlaps it).
    const t0 = performance.now();
    prefetch(new Uint8Array(Buffer.from(cfg.list, 'base64')));
    const r = touch(new Float64Array(region.buffer));
    aheadMs = performance.now() - t0;
    while (prefetchPending() > 0) await new Promise((res) => setTimeout(res, 1));
    out({ ms: r.ms, touched, counters: region.counters(), aheadMs });
  } else if (cfg.driver === 'prefetch-first' && cfg.list) {
    // REAP's case: the list is fetched while the seed still starts up; the touch comes after.
    const t0 = performance.now();
    prefetch(new Uint8Array(Buffer.from(cfg.list, 'base64')));
    while (prefetchPending() > 0) await new Promise((res) => setImmediate(res));
    aheadMs = performance.now() - t0;
    const r = touch(new Float64Array(region.buffer));
    out({ ms: r.ms, touched, counters: region.counters(), aheadMs });
  } else {
    const r = touch(new Float64Array(region.buffer));
    out({ ms: r.ms, touched, counters: region.counters(), list: Buffer.from(workingSet()).toString('base64') });
  }
}
