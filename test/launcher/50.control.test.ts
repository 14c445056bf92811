// Property: dom0 and the Node launcher of jobs across hosts read control lines and decide a
// job's status and failure line as the native launcher does (native/control/decode.c and
// outcome.c, through the addon): the lines the encoder writes are read back typed, anything
// else is null; a lost host outranks a signal, which outranks an exit code.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { decodeControl } from '../../guest-daemon/control.js';
import { Outcome, rankList } from '../../mpi-compat/launcher/outcome.js';

const fail = (rank: number, code: number, signal: number, cause: string) => ({ ev: 'fail' as const, host: 'th2', rank, code, signal, cause });

test('the three lines the encoder writes are read back with their types', () => {
  assert.equal(decodeControl('{"v":1,"ev":"fork","host":"th1","rank":3,"pid":4242,"ms":1.25}'), { host: 'th1', rank: 3, ev: 'fork', pid: 4242, ms: 1.25 });
  assert.equal(decodeControl('{"v":1,"ev":"exit","host":"th1","rank":0,"code":-1}'), { host: 'th1', rank: 0, ev: 'exit', code: -1 });
  assert.equal(
    decodeControl(JSON.stringify({ v: 1, ev: 'fail', host: 'hé', rank: 2, code: 139, signal: 11, cause: 'was "killed"\n' })),
    { host: 'hé', rank: 2, ev: 'fail', code: 139, signal: 11, cause: 'was "killed"\n' },
  );
  assert.is(decodeControl('{"v":1,"ev":"fail","host":"a","rank":1,"code":1,"signal":0}')?.ev, 'fail');
  assert.equal((decodeControl('{"v":1,"ev":"fail","host":"a","rank":1,"code":1,"signal":0}') as { cause: string }).cause, 'failed');
});

test('malformed lines, other versions and wrong field types are null, never a throw', () => {
  for (const line of [
    '', 'garbage', '[]', '{"v":1}', '{"v":2,"ev":"exit","host":"a","rank":0,"code":0}',
    '{"v":1,"ev":"exit","host":"a","rank":-1,"code":0}', '{"v":1,"ev":"exit","host":"a","rank":1.5,"code":0}',
    '{"v":1,"ev":"exit","host":7,"rank":0,"code":0}', '{"v":1,"ev":"exit","host":"a","rank":0}',
    '{"v":1,"ev":"fail","host":"a","rank":0,"code":1,"signal":-3}', '{"v":1,"ev":"fork","host":"a","rank":0,"pid":1}',
    '{"v":1,"ev":"boom","host":"a","rank":0}', '{"v":1,"ev":"exit","host":"a","rank":0,"code":0} trailing',
    '{"v":1,"ev":"exit","host":"a","rank":0,"code":0', '{"v":1,"ev":"fail","host":"a","rank":0,"code":1,"signal":0,"cause":"a\nb"}', '{"v":1,"ev":"exit","host":"\ud800","rank":0,"code":0,}',
  ])
    assert.is(decodeControl(line), null, line);
  assert.throws(() => decodeControl(3 as unknown as string), /decodeControl: line must be a string/);
});

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
