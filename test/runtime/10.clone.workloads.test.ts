// Property: a clone runs any Node.js workload to completion (GC, JIT, I/O, timers, sockets,
// child processes, late imports) and its value reaches the origin's join().
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { scenario } from '../helpers.js';

function okValue(r: Awaited<ReturnType<typeof scenario>>): unknown {
  assert.is(r.timedOut, false, `timed out; stderr: ${r.stderr}`);
  assert.is(r.code, 0, `origin exit code; stderr: ${r.stderr}`);
  assert.is(r.signal, null);
  assert.ok(r.result, `no RESULT line; stdout: ${r.stdout} stderr: ${r.stderr}`);
  assert.is(r.result.length, 1);
  assert.is(r.result[0].ok, true, JSON.stringify(r.result[0]));
  return r.result[0].value;
}

test('GC-heavy: over 2 GB of allocation churn in a clone', async () => {
  const v = okValue(await scenario('gc')) as { allocatedMB: number };
  assert.ok(v.allocatedMB >= 2000, `allocated ${v.allocatedMB} MB`);
});

test('JIT-heavy hot loop in a clone gets optimized code', async () => {
  const v = okValue(await scenario('jit')) as { s: number; ms: number };
  assert.is(v.s, 1799999994);
  // 3e8 iterations: optimized code does it in well under a second; the interpreter takes ~10x.
  assert.ok(v.ms < 5000, `hot loop took ${v.ms} ms`);
});

test('async fs in a clone', async () => {
  assert.is(okValue(await scenario('fs')), 'written by a clone');
});

test('timers and immediates in a clone fire in order', async () => {
  assert.equal(okValue(await scenario('timers')), ['immediate', 'interval', 'interval', 'timeout50', 'timeout100']);
});

test('a TCP server and client on loopback in a clone', async () => {
  assert.is(okValue(await scenario('tcp')), 'ping from clone');
});

test('child_process.spawn from a clone', async () => {
  assert.equal(okValue(await scenario('spawn')), { out: 'spawned from-clone', code: 0 });
});

test('import() of a module first loaded after the fork', async () => {
  assert.equal(okValue(await scenario('import')), { late: 'loaded after the fork', sq: 144 });
});

test.run();
