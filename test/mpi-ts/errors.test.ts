// errors: a rank that throws, rejects, is killed, exits early or aborts ends the whole job within
// seconds, with that rank and cause named by sfmpirun and its exit status; a mismatched
// collective ends with a timeout naming the rank that never came; no process is left behind.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { deadline, mpirun, show } from './helpers.js';
import { MPI } from '../../mpi-compat/ts/index.js';

const cases: { args: string[]; n: number; code: number; line: RegExp; within: number }[] = [
  { args: ['throw', '1'], n: 4, code: 1, line: /^sfmpirun: rank 1 threw Error: boom from rank 1$/m, within: 5000 },
  { args: ['throw', '0'], n: 3, code: 1, line: /^sfmpirun: rank 0 threw Error: boom from rank 0$/m, within: 5000 },
  { args: ['throw', '7'], n: 8, code: 1, line: /^sfmpirun: rank 7 threw Error: boom from rank 7$/m, within: 8000 },
  { args: ['reject', '2'], n: 4, code: 1, line: /^sfmpirun: rank 2 threw Error: rejected in rank 2$/m, within: 6000 },
  { args: ['kill', '2'], n: 4, code: 137, line: /^sfmpirun: rank 2 was killed by signal 9 \(SIGKILL\)$/m, within: 5000 },
  { args: ['exit', '1', '3'], n: 3, code: 3, line: /^sfmpirun: rank 1 exited with code 3$/m, within: 5000 },
  { args: ['abort', '2', '7'], n: 4, code: 7, line: /^sfmpirun: rank 2 called MPI.abort\(7\)$/m, within: 5000 },
  { args: ['kill-await', '1'], n: 3, code: 137, line: /^sfmpirun: rank 1 was killed by signal 9 \(SIGKILL\)$/m, within: 5000 },
  { args: ['throw-await', '2'], n: 3, code: 1, line: /^sfmpirun: rank 2 threw Error: boom from rank 2$/m, within: 5000 },
  { args: ['abort', '0', '5'], n: 2, code: 5, line: /^sfmpirun: rank 0 called MPI.abort\(5\)$/m, within: 5000 },
];

for (const c of cases) {
  test(`fail ${c.args.join(' ')} at -n ${c.n}`, async () => {
    const j = await mpirun(c.n, 'fail', c.args, { timeoutMs: 30_000, env: { SFMPI_TIMEOUT_MS: '20000' } });
    assert.equal(j.code, c.code, show(j));
    assert.ok(c.line.test(j.stderr), `no line ${c.line} in\n${show(j)}`);
    assert.ok(j.ms < deadline(c.within), `took ${j.ms.toFixed(0)} ms (limit ${c.within})`);
    assert.equal(j.orphans, [], `orphans left: ${j.orphans.join(', ')}`);
  });
}

// A rank that skips a barrier: the ranks in the barrier time out (SFMPI_TIMEOUT_MS = 1.5 s)
// with an error naming the rank that never entered it; the job ends, nothing hangs.
test('skip a barrier at -n 4: the timeout names the rank that never came', async () => {
  const j = await mpirun(4, 'fail', ['skip', '1'], { timeoutMs: 30_000, env: { SFMPI_TIMEOUT_MS: '1500' } });
  assert.equal(j.code, 1, show(j));
  assert.ok(/^sfmpirun: rank \d threw MPIError: /m.test(j.stderr), show(j));
  assert.ok(/barrier: barrier on rank [023] timed out after \d+ ms .*; never entered it: rank 1$/m.test(j.stderr), show(j));
  assert.ok(j.ms < deadline(8000), `took ${j.ms.toFixed(0)} ms`);
  assert.equal(j.orphans, []);
});

// Validation at the boundary, before anything is forked (pinned messages).
test('MPI.init validates its options', () => {
  assert.throws(() => MPI.init({ size: 0 }), (e: Error) => e instanceof RangeError && e.message === 'MPI.init: size 0 out of range 1..256');
  assert.throws(() => MPI.init({ size: 2.5 }), (e: Error) => e instanceof TypeError && e.message === 'MPI.init: options.size must be an integer, got number 2.5');
  assert.throws(() => MPI.init({ size: 2, timeoutMs: -5 }), (e: Error) => e instanceof RangeError && /options.timeoutMs must be an integer >= -1, got -5/.test(e.message));
  assert.throws(() => MPI.COMM_WORLD, (e: Error) => e instanceof MPI.MPIError && (e as InstanceType<typeof MPI.MPIError>).code === 'ERR_NOT_INITIALIZED');
  assert.throws(() => MPI.finalize(), /MPI.finalize: MPI.init\(\) has not been called/);
});

test.run();
