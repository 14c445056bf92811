/**
 * The drivers of the clone benchmark: each starts n workers over a Float64Array state, each
 * worker acknowledges that it runs with the state ("ready"), sums its share and reports it
 * ("done"). Each peer uses its best idiom for a large read-only state:
 *   clone-*      clone() of the live process; the state is simply there
 *   wt-atomics   worker_threads on a SharedArrayBuffer; acks and sums through Atomics.notify /
 *                Atomics.wait on a shared control array
 *   wt-message   worker_threads on a SharedArrayBuffer; acks and sums by postMessage
 *   wtp          node-worker-threads-pool StaticPool on a SharedArrayBuffer (workerData); one task
 *                per share, acks through Atomics, sums as task results
 *   cp-fork      child_process.fork; each child is sent its share (a copy: processes share no
 *                memory) with advanced serialization, acks and sums by IPC
 * t0 is taken before the first worker is asked for (requestTicket, new Worker, new StaticPool,
 * fork); what is made before it (the state, the control arrays, the ack FIFO) is set-up.
 */
import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { StaticPool } from 'node-worker-threads-pool';
import { clone, exit, join, requestTicket } from '../../index.js';
import { Ack } from './ack.js';

const here = path.dirname(fileURLToPath(import.meta.url));

/** Give up on a driver's acknowledgements or results after this long. */
export const TIMEOUT_MS = 120_000;

/** verbose: each clone run prints where its time went on stderr. */
export const settings = { verbose: false };

/** One run of a driver: ms from t0 to the last acknowledgement and to the last result. */
export interface Timing {
  readyMs: number;
  doneMs: number;
  total: number;
}

function sumShare(data: Float64Array, k: number, n: number): number {
  const share = data.length / n;
  let s = 0;
  for (let i = k * share; i < (k + 1) * share; i++) s += data[i];
  return s;
}

/** clone(): every clone acknowledges on the FIFO, sums its share and exit()s with it. */
export async function viaClones(state: Float64Array, n: number): Promise<Timing> {
  const ack = Ack.open();
  const t0 = performance.now();
  const ticket = requestTicket(n);
  const id = clone(ticket);
  if (id > 0) {
    ack.send();
    exit(sumShare(state, id - 1, n));
  }
  const returnedAt = performance.now();
  const readyAt = ack.collect(n, TIMEOUT_MS);
  const outcomes = await join(ticket);
  const doneAt = performance.now();
  if (settings.verbose)
    process.stderr.write(
      `    clone(): forks done at ${ticket.totalForkMs.toFixed(1)} ms, clone() returned at ${(returnedAt - t0).toFixed(1)}, ` +
        `last ack at ${(readyAt - t0).toFixed(1)}, joined at ${(doneAt - t0).toFixed(1)}\n`,
    );
  let total = 0;
  for (const o of outcomes) {
    if (!o.ok) throw new Error(`clone ${o.id}: ${o.reason}`);
    total += o.value as number;
  }
  return { readyMs: readyAt - t0, doneMs: doneAt - t0, total };
}

/** Blocks until ctl[i] >= n; returns performance.now() then. */
function waitCount(ctl: Int32Array, i: number, n: number, deadline: number, what: string): number {
  for (;;) {
    const v = Atomics.load(ctl, i);
    if (v >= n) return performance.now();
    const left = deadline - performance.now();
    if (left <= 0) throw new Error(`only ${v} of ${n} workers ${what} within ${TIMEOUT_MS} ms`);
    Atomics.wait(ctl, i, v, left);
  }
}

const atomicsWorker = `
const { workerData: w } = require('node:worker_threads');
const data = new Float64Array(w.sab);
const ctl = new Int32Array(w.ctl);
Atomics.add(ctl, 0, 1);
Atomics.notify(ctl, 0);
const share = data.length / w.n;
let s = 0;
for (let i = w.id * share; i < (w.id + 1) * share; i++) s += data[i];
new Float64Array(w.out)[w.id] = s;
Atomics.add(ctl, 1, 1);
Atomics.notify(ctl, 1);
`;

/** worker_threads + SharedArrayBuffer + Atomics.wait: the origin blocks until all have acked. */
export async function viaAtomics(sab: SharedArrayBuffer, n: number): Promise<Timing> {
  const ctl = new Int32Array(new SharedArrayBuffer(8));
  const out = new Float64Array(new SharedArrayBuffer(8 * n));
  const t0 = performance.now();
  const deadline = t0 + TIMEOUT_MS;
  const workers = Array.from(
    { length: n },
    (_, id) => new Worker(atomicsWorker, { eval: true, workerData: { sab, ctl: ctl.buffer, out: out.buffer, id, n } }),
  );
  const failed: Error[] = [];
  for (const w of workers) w.on('error', (e) => failed.push(e));
  try {
    const readyAt = waitCount(ctl, 0, n, deadline, 'acknowledged');
    const doneAt = waitCount(ctl, 1, n, deadline, 'reported');
    return { readyMs: readyAt - t0, doneMs: doneAt - t0, total: out.reduce((a, b) => a + b, 0) };
  } catch (e) {
    throw failed[0] ?? e;
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
}

const messageWorker = `
const { parentPort, workerData: w } = require('node:worker_threads');
const data = new Float64Array(w.sab);
parentPort.postMessage('ready');
const share = data.length / w.n;
let s = 0;
for (let i = w.id * share; i < (w.id + 1) * share; i++) s += data[i];
parentPort.postMessage(s);
`;

/** Rejects with "<what>: no result within TIMEOUT_MS" unless `p` settles first. */
function bounded<T>(p: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no result within ${TIMEOUT_MS} ms`)), TIMEOUT_MS);
  });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

/** worker_threads + SharedArrayBuffer + postMessage. */
export async function viaMessages(sab: SharedArrayBuffer, n: number): Promise<Timing> {
  const t0 = performance.now();
  let readyAt = 0;
  let ready = 0;
  const workers: Worker[] = [];
  try {
    const sums = await bounded(
      Promise.all(
        Array.from(
          { length: n },
          (_, id) =>
            new Promise<number>((resolve, reject) => {
              const w = new Worker(messageWorker, { eval: true, workerData: { sab, id, n } });
              workers.push(w);
              w.on('message', (m) => {
                if (m !== 'ready') return resolve(m as number);
                if (++ready === n) readyAt = performance.now();
              });
              w.on('error', reject);
            }),
        ),
      ),
      'worker_threads (postMessage)',
    );
    return { readyMs: readyAt - t0, doneMs: performance.now() - t0, total: sums.reduce((a, b) => a + b, 0) };
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
}

/** Resolves with performance.now() once ctl[i] >= n, without blocking the event loop. */
async function waitCountAsync(ctl: Int32Array, i: number, n: number, deadline: number): Promise<number> {
  const waitAsync = (Atomics as unknown as {
    waitAsync(a: Int32Array, i: number, v: number, t: number): { async: boolean; value: Promise<string> | string };
  }).waitAsync;
  for (;;) {
    const v = Atomics.load(ctl, i);
    if (v >= n) return performance.now();
    const left = deadline - performance.now();
    if (left <= 0) throw new Error(`only ${v} of ${n} pool tasks started within ${TIMEOUT_MS} ms`);
    const r = waitAsync(ctl, i, v, left);
    if (r.async) await r.value;
  }
}

interface PoolData {
  sab: SharedArrayBuffer;
  ctl: SharedArrayBuffer;
  n: number;
}

/** node-worker-threads-pool: the state goes to every worker as workerData (shared, not copied). */
export async function viaPool(sab: SharedArrayBuffer, n: number): Promise<Timing> {
  const ctl = new Int32Array(new SharedArrayBuffer(4));
  const t0 = performance.now();
  const pool = new StaticPool({
    size: n,
    workerData: { sab, ctl: ctl.buffer, n } satisfies PoolData,
    // Stringified into the worker: it may use nothing from this module.
    task: function (this: { workerData: PoolData }, id: number): number {
      const w = this.workerData;
      const data = new Float64Array(w.sab);
      const started = new Int32Array(w.ctl);
      Atomics.add(started, 0, 1);
      Atomics.notify(started, 0);
      const share = data.length / w.n;
      let s = 0;
      for (let i = id * share; i < (id + 1) * share; i++) s += data[i];
      return s;
    },
  });
  try {
    const sums = Promise.all(Array.from({ length: n }, (_, id) => pool.exec(id) as Promise<number>));
    const readyAt = await waitCountAsync(ctl, 0, n, t0 + TIMEOUT_MS);
    const total = (await sums).reduce((a, b) => a + b, 0);
    return { readyMs: readyAt - t0, doneMs: performance.now() - t0, total };
  } finally {
    await pool.destroy();
  }
}

/** child_process.fork: each child gets a copy of its share over IPC. */
export async function viaChildProcesses(state: Float64Array, n: number): Promise<Timing> {
  const t0 = performance.now();
  let readyAt = 0;
  let ready = 0;
  const children: ChildProcess[] = [];
  const exits: Promise<unknown>[] = [];
  let reported = false;
  try {
    const share = state.length / n;
    const sums = await bounded(
      Promise.all(
        Array.from(
          { length: n },
          (_, id) =>
            new Promise<number>((resolve, reject) => {
              const child = fork(path.join(here, 'cp-child.js'), [], { serialization: 'advanced' });
              children.push(child);
              exits.push(new Promise((r) => child.once('exit', r)));
              child.on('message', (m) => {
                if (m !== 'ready') return resolve(m as number);
                if (++ready === n) readyAt = performance.now();
              });
              child.on('error', reject);
              child.once('exit', (code, signal) => reject(new Error(`child ${id} left with ${signal ?? code} before reporting`)));
              child.send(state.subarray(id * share, (id + 1) * share));
            }),
        ),
      ),
      'child_process.fork',
    );
    reported = true;
    return { readyMs: readyAt - t0, doneMs: performance.now() - t0, total: sums.reduce((a, b) => a + b, 0) };
  } finally {
    // Children that reported leave by themselves; after a failure none is left behind.
    if (!reported) for (const c of children) c.kill('SIGKILL');
    await Promise.all(exits);
  }
}
