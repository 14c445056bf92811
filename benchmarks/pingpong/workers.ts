/**
 * worker_threads peer of benchmarks/pingpong: half round-trip time of postMessage of a Uint8Array
 * (structured clone, i.e. a copy each way) between the main thread and one worker, awaiting each
 * reply as a program would. One JSON line per size.
 */
import { Worker, isMainThread, parentPort } from 'node:worker_threads';

const itersFor = (bytes: number) => Math.max(20, Math.min(20000, Math.floor(5e8 / Math.max(bytes, 25000))));

if (isMainThread) {
  const sizes = process.argv.slice(2).map(Number);
  const w = new Worker(new URL(import.meta.url));
  const reply = () => new Promise<Uint8Array>((resolve) => w.once('message', resolve));
  for (const bytes of sizes) {
    let buf: Uint8Array = new Uint8Array(bytes).fill(1);
    const iters = itersFor(bytes), warm = Math.floor(iters / 10) + Math.min(iters, 5000); // long enough for the JIT to settle
    let t0 = 0;
    for (let i = -warm; i < iters; i++) {
      if (i === 0) t0 = performance.now();
      const r = reply();
      w.postMessage(buf);
      buf = await r;
    }
    const us = ((performance.now() - t0) * 1e3) / (2 * iters);
    console.log(JSON.stringify({ key: String(bytes), us, iters }));
  }
  await w.terminate();
} else {
  parentPort!.on('message', (m: Uint8Array) => parentPort!.postMessage(m));
}
