// Property: the Node launcher of jobs across hosts decides a job's status and failure line by
// the same policy as the native launcher (native/control/outcome.c, through the addon): a lost
// host outranks a signal, which outranks an exit code, within the settle time of the first.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Outcome, rankList } from '../../mpi-compat/launcher/outcome.js';

const fail = (rank: number, code: number, signal: number, cause: string) => ({ ev: 'fail' as const, host: 'th2', rank, code, signal, cause });

test('every rank exiting 0 is status 0 with no failure line', () => {
  const o = new Outcome(2);
  o.event({ ev: 'exit', host: 'th1', rank: 0, code: 0 });
  o.event({ ev: 'exit', host: 'th2', rank: 1, code: 0 });
  assert.not.ok(o.failed);
  assert.equal(o.result(), { status: 0 });
});

test('a non-zero exit code is the status, naming the lowest such rank', () => {
  const o = new Outcome(4);
  o.event({ ev: 'exit', host: 'th1', rank: 3, code: 9 });
  o.event({ ev: 'exit', host: 'th1', rank: 2, code: 4 });
  assert.equal(o.result(), { status: 4, failure: 'rank 2 exited with code 4' });
});

test('a lost host outranks a signal, which outranks an exit code; the first failure is announced once', () => {
  const o = new Outcome(8);
  let first = 0;
  o.onFirstFailure = () => first++;
  o.event(fail(5, 1, 0, 'exited with code 1 (MPI_ERR_OTHER)'));
  o.event(fail(6, 139, 11, 'was killed by signal 11 (SIGSEGV)'));
  assert.ok(o.failed);
  assert.equal(o.result(), { status: 139, failure: 'rank 6 was killed by signal 11 (SIGSEGV)' });
  o.lost('th3', [4, 5, 6, 7], 'lost its dom0');
  assert.is(first, 1);
  assert.equal(o.result(), { status: 255, failure: 'host th3 (ranks 4-7) lost its dom0' });
});

test('a timeout names the ranks still running', () => {
  const o = new Outcome(3);
  o.event({ ev: 'exit', host: 'th1', rank: 1, code: 0 });
  o.timeout(2.5);
  assert.equal(o.result(), { status: 124, failure: 'job timed out after 2.5 s; ranks still running: 0, 2' });
});

test('rank lists read as the failure lines write them; bad arguments are TypeErrors', () => {
  assert.is(rankList([3]), 'rank 3');
  assert.is(rankList([4, 5, 6, 7]), 'ranks 4-7');
  assert.is(rankList([1, 3, 5]), 'ranks 1, 3, 5');
  assert.throws(() => rankList('1' as unknown as number[]), /rankList: ranks must be an array of integers/);
  assert.throws(() => new Outcome(-1), /JobOutcome: size must be a number of ranks >= 0/);
});

test.run();
