// Property: every way a clone can end reaches the origin's join() as what it was (value, exit
// code, signal, uncaught error), and the clone never hangs or crashes on the way out.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { scenario } from '../helpers.js';

test('process.exit(code) in a clone runs exit listeners and reports the code', async () => {
  const r = await scenario('processExit');
  assert.is(r.code, 0, r.stderr);
  assert.match(r.stdout, 'exit listener saw 7');
  assert.equal(r.result[0], { ok: false, id: 1, code: 7, signal: null, reason: 'clone 1 exited with code 7' });
});

test('a clone whose loop runs empty leaves with process.exitCode after beforeExit', async () => {
  const r = await scenario('emptyLoop');
  assert.is(r.timedOut, false, 'the clone hung at the end of its loop');
  assert.match(r.stdout, 'last timer\nbeforeExit ran\n');
  assert.is(r.result[0].code, 5);
});

test('an uncaught exception: exit code 1, the stack on stderr, reported by join', async () => {
  const r = await scenario('uncaught');
  assert.is(r.code, 0, 'the origin itself must not fail');
  assert.match(r.stderr, /Error: thrown in a clone\n\s+at /);
  assert.is(r.result[0].code, 1);
  assert.is(r.result[0].error, 'thrown in a clone');
  assert.match(r.result[0].reason, 'clone 1 exited with code 1: uncaught Error: thrown in a clone');
});

test('an unhandled rejection ends the clone like an uncaught exception', async () => {
  const r = await scenario('rejection');
  assert.match(r.stderr, 'RangeError: rejected in a clone');
  assert.is(r.result[0].code, 1);
  assert.is(r.result[0].error, 'rejected in a clone');
});

test('a clone killed by a signal is reported by join, its sibling unaffected', async () => {
  const r = await scenario('killed');
  assert.equal(r.result[0], { ok: false, id: 1, code: null, signal: 'SIGTERM', reason: 'clone 1 killed by signal SIGTERM' });
  assert.equal(r.result[1], { ok: true, id: 2, value: 'survivor' });
});

test('output written before the fork appears once', async () => {
  const r = await scenario('printOnce');
  assert.is(r.stdout.split('before the fork').length - 1, 1, r.stdout);
  assert.is(r.result.length, 3);
});

test('a 64 MiB exit value arrives whole, through join and through joinSync', async () => {
  const r = await scenario('bigValue', [], { timeoutMs: 60_000 });
  assert.is(r.timedOut, false, 'deadlock between a writing clone and a waiting origin');
  assert.is(r.code, 0, r.stderr);
  assert.equal(r.result, { async: [true, true], sync: [true, true] });
});

test.run();
