// Property: a C job keeps the launcher's promises as a TypeScript job does. Killing sfmpirun
// (SIGKILL: it cannot clean up) leaves no rank running; a C job beyond the host's admission
// is refused with the same words as a TypeScript one, and forks nothing.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { alive, run, sfmpirun, testDir, until } from '../helpers.js';
import { buildLib, compile, csrc, describe, mpirun, tempDir } from './helpers.js';

const dir = tempDir('c-launcher');
let bins: Record<string, string> = {};

test.before(async () => {
  await buildLib();
  bins = await compile([path.join(csrc, 'failures.c')], dir);
});

test.after(() => fs.rmSync(dir, { recursive: true, force: true }));

/** Starts a job that waits (every rank prints "pid R PID" first); resolves with the launcher and the rank pids. */
function startWaiting(n: number, program: string, args: string[], env: NodeJS.ProcessEnv = {}) {
  const child = spawn(process.execPath, [sfmpirun, '-n', String(n), program, ...args], {
    env: { ...process.env, SFMPI_WAIT_TIMEOUT_MS: '60000', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  const pids = () => [...out.matchAll(/^pid \d+ (\d+)$/gm)].map((m) => Number(m[1]));
  return { child, pids, output: () => out };
}

test('kill -9 of sfmpirun running a C job leaves no process within 2 s', async () => {
  const job = startWaiting(4, bins.failures, ['hang']);
  assert.ok(await until(() => job.pids().length === 4, 20_000), `the ranks did not start:\n${job.output()}`);
  const ranks = job.pids();
  job.child.kill('SIGKILL');
  assert.ok(await until(() => ranks.every((p) => !alive(p)), 2000), `ranks still alive: ${ranks.filter(alive).join(', ')}`);
});

test('a C job beyond admission is refused with the words of a TypeScript one, forking nothing', async () => {
  // Another job holds 3 clones of 4; the host is this test's own (other jobs on the machine
  // do not count).
  const limit = 4;
  const env = { SFMPI_MAX_CLONES: String(limit), SFMPI_ADMISSION_DIR: path.join(dir, 'admission') };
  const holder = startWaiting(4, bins.failures, ['hang'], env);
  try {
    assert.ok(await until(() => holder.pids().length === 4, 20_000), `the holder did not start:\n${holder.output()}`);
    const refusal = `cannot start 3 ranks: admission refused: 2 clones requested, ${limit - 1} of this host's ${limit} slots in use (set SFMPI_MAX_CLONES to change the limit)`;
    const c = await mpirun(3, bins.failures, ['segv', '9'], { env });
    assert.is(c.code, 1, describe(c));
    assert.match(c.stderr, `sfmpi: MPI_Init: ${refusal}`);
    assert.match(c.stderr, `sfmpirun: rank 0 ${refusal}`);
    assert.not.match(c.stdout, /^pid /m, 'no rank started');
    assert.equal(c.leftovers, []);
    const ts = await run(process.execPath, [sfmpirun, '-n', '3', path.join(testDir, 'mpi-ts', 'fixtures', 'p2p-obj.js')], { env });
    assert.is(ts.code, 1, ts.stderr);
    assert.match(ts.stderr, `MPI.init: ${refusal}`);
  } finally {
    holder.child.kill('SIGKILL');
    await until(() => holder.pids().every((p) => !alive(p)), 2000);
  }
});

test.run();
