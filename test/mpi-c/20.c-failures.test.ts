// Property: a rank that crashes, calls MPI_Abort, exits early or waits forever ends the whole
// job with the rank and cause named, a non-zero status, and no process left behind.
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { alive } from '../helpers.js';
import { buildLib, compile, csrc, describe, mpirun, tempDir } from './helpers.js';

const dir = tempDir('c-failures');
let bins: Record<string, string> = {};

test.before(async () => {
  await buildLib();
  bins = await compile([path.join(csrc, 'failures.c'), path.join(csrc, 'errhandlers.c')], dir);
});

test.after(() => fs.rmSync(dir, { recursive: true, force: true }));

/** pids the ranks printed ("pid R PID"): none may still be alive. */
function rankPids(stdout: string): number[] {
  return [...stdout.matchAll(/^pid \d+ (\d+)$/gm)].map((m) => Number(m[1]));
}

function noOrphans(j: Awaited<ReturnType<typeof mpirun>>, n: number) {
  const pids = rankPids(j.stdout);
  assert.is(pids.length, n, `every rank started\n${describe(j)}`);
  assert.equal(pids.filter(alive), [], 'a rank outlived the job');
  assert.equal(j.leftovers, [], 'processes left behind');
  assert.is(j.timedOut, false, `the job ended by itself\n${describe(j)}`);
}

test('a clone killed by SIGSEGV ends the job: status 139, rank and signal named', async () => {
  const j = await mpirun(4, bins.failures, ['segv', '2']);
  assert.is(j.code, 139, describe(j));
  assert.match(j.stderr, 'sfmpirun: rank 2 was killed by signal 11 (SIGSEGV)');
  noOrphans(j, 4);
});

test('the origin (rank 0) crashing takes its clones with it', async () => {
  const j = await mpirun(4, bins.failures, ['segv', '0']);
  assert.is(j.code, 139, describe(j));
  assert.match(j.stderr, /rank 0 .*SIGSEGV|signal 11/);
  noOrphans(j, 4);
});

test('MPI_Abort(comm, 7) in a clone: status 7, rank and cause named, busy ranks stopped', async () => {
  const j = await mpirun(4, bins.failures, ['abort', '1', '7']);
  assert.is(j.code, 7, describe(j));
  assert.match(j.stderr, 'sfmpirun: rank 1 MPI_Abort(7)');
  noOrphans(j, 4);
});

test('MPI_Abort in the origin stops computing clones', async () => {
  const j = await mpirun(3, bins.failures, ['abort', '0', '5']);
  assert.is(j.code, 5, describe(j));
  assert.match(j.stderr, 'sfmpirun: rank 0 MPI_Abort(5)');
  noOrphans(j, 3);
});

test('exit(4) before MPI_Finalize: status 4, the waiting ranks name the dead rank', async () => {
  const j = await mpirun(4, bins.failures, ['exit', '2', '4']);
  assert.is(j.code, 4, describe(j));
  assert.match(j.stderr, 'sfmpirun: rank 2 exited with code 4 before MPI_Finalize');
  noOrphans(j, 4);
});

test('a receive that never matches ends with a timeout naming operation, rank, peer and tag', async () => {
  const j = await mpirun(4, bins.failures, ['hang'], { env: { SFMPI_WAIT_TIMEOUT_MS: '1500' } });
  assert.is.not(j.code, 0, describe(j));
  // Every rank waits (rank 0 for the message, the others at the barrier); whichever times out
  // first ends the job, naming its operation, itself and whom it waited for.
  const named =
    /sfmpirun: rank \d (MPI_Recv on rank 0 timed out after \d{4,} ms waiting for rank 3 \(tag 5\)|MPI_Barrier on rank \d timed out after \d{4,} ms waiting for \d of 4 ranks to arrive)/;
  assert.ok(named.test(j.stderr), describe(j));
  noOrphans(j, 4);
});

test('mismatched collectives end at once with both calls named, not a hang or a wrong answer', async () => {
  const j = await mpirun(3, bins.failures, ['mismatch']);
  assert.is(j.code, 1, describe(j));
  const named =
    /sfmpirun: rank \d (MPI_Barrier on rank \d: rank 0 called a different collective \(allreduce|MPI_Allreduce on rank 0: rank \d called a different collective \(barrier)/;
  assert.ok(named.test(j.stderr), describe(j));
  assert.match(j.stderr, 'collectives must be called in the same order on every rank');
  assert.not.match(j.stdout, 'finished');
  noOrphans(j, 3);
});

test('MPI_ERRORS_ARE_FATAL: a bad argument ends the job with the call and argument named', async () => {
  const j = await mpirun(3, bins.errhandlers, ['fatal']);
  assert.is(j.code, 1, describe(j));
  assert.match(j.stderr, 'sfmpi: rank 2: MPI_Send: dest 8 out of range for a communicator of size 3');
  assert.not.match(j.stdout, 'not reached');
  assert.equal(j.leftovers, []);
});

test('without a launcher the failure is still named and nothing is left', async () => {
  const j = await mpirun(4, bins.failures, ['segv', '3'], { launcher: false });
  assert.is.not(j.code, 0, describe(j));
  assert.match(j.stderr, 'rank 3 was killed by signal 11 (SIGSEGV)');
  noOrphans(j, 4);
});

test.run();
