/**
 * worker_threads peer of benchmarks/allreduce: an allreduce of a Float64Array between the main
 * thread and one worker: each posts its array to the other (a copy) and adds what it receives.
 * Time per operation, one JSON line per element count.
 */
import { Worker, isMainThread, parentPort } from 'node:worker_threads';

const itersFor = (bytes: number) => Math.max(20, Math.min(20000, Math.floor(5e8 / Math.max(bytes, 25000))));
const add = (a: Float64Array, b: Float64Array) => {
  const out = new Float64Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i] + b[i];
  return out;
};

if (isMainThread) {
  const counts = process.argv.slice(2).map(Number);
  const w = new Worker(new URL(import.meta.url));
  const reply = () => new Promise<Float64Array>((resolve) => w.once('message', resolve));
  for (const count of counts) {
    const input = new Float64Array(count).map((_, i) => i);
    w.postMessage({ count });
    await reply();
    const iters = itersFor(count * 8), warm = Math.floor(iters / 10) + Math.min(iters, 5000); // long enough for the JIT to settle
    let t0 = 0, out = input;
    for (let i = -warm; i < iters; i++) {
      if (i === 0) t0 = performance.now();
      const r = reply();
      w.postMessage(input);
      out = add(input, await r);
    }
    const us = ((performance.now() - t0) * 1e3) / iters;
    console.log(JSON.stringify({ key: String(count), us, iters, check: out[count - 1] }));
  }
  await w.terminate();
} else {
  let mine = new Float64Array(0);
  parentPort!.on('message', (m: Float64Array | { count: number }) => {
    if (!(m instanceof Float64Array)) {
      mine = new Float64Array(m.count).map((_, i) => 1 + i);
      parentPort!.postMessage(mine);
      return;
    }
    parentPort!.postMessage(mine);
    add(mine, m); // the worker's half of the reduction
  });
}
