// init: MPI.init forks under sfmpirun, under plain node with SFMPI_SIZE or options.size, and as a
// singleton; a program that never calls finalize still ends cleanly with status 0.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { deadline, fixtures, mpirun, show } from './helpers.js';

const fixture = path.join(fixtures, 'no-finalize.js');
const lines = (out: string) => out.split('\n').filter(Boolean).sort();

test('no finalize under sfmpirun -n 3: exit 0, quickly, no orphans', async () => {
  const j = await mpirun(3, 'no-finalize');
  assert.equal(j.code, 0, show(j));
  assert.equal(lines(j.stdout), ['rank 0/3 ok (sum 3)', 'rank 1/3 ok (sum 3)', 'rank 2/3 ok (sum 3)']);
  assert.ok(j.ms < deadline(5000), `took ${j.ms.toFixed(0)} ms`);
  assert.equal(j.orphans, []);
});

test('plain node with SFMPI_SIZE=2 (no launcher)', () => {
  const r = spawnSync(process.execPath, [fixture], { env: { ...process.env, SFMPI_SIZE: '2' }, encoding: 'utf8', timeout: deadline(20_000) });
  assert.is(r.status, 0, r.stderr);
  assert.equal(lines(r.stdout), ['rank 0/2 ok (sum 1)', 'rank 1/2 ok (sum 1)']);
});

test('plain node with MPI.init({ size: 4 })', () => {
  const env = { ...process.env };
  delete env.SFMPI_SIZE;
  const r = spawnSync(process.execPath, [fixture, '4'], { env, encoding: 'utf8', timeout: deadline(20_000) });
  assert.is(r.status, 0, r.stderr);
  assert.equal(lines(r.stdout), [0, 1, 2, 3].map((i) => `rank ${i}/4 ok (sum 6)`));
});

test('plain node without SFMPI_SIZE is a singleton', () => {
  const env = { ...process.env };
  delete env.SFMPI_SIZE;
  const r = spawnSync(process.execPath, [fixture], { env, encoding: 'utf8', timeout: deadline(20_000) });
  assert.is(r.status, 0, r.stderr);
  assert.equal(lines(r.stdout), ['rank 0/1 ok (sum 0)']);
});

test('a rank count beyond admission is refused before anything forks', () => {
  const r = spawnSync(process.execPath, [fixture], { env: { ...process.env, SFMPI_SIZE: '5', SFMPI_MAX_CLONES: '2' }, encoding: 'utf8', timeout: deadline(20_000) });
  assert.is(r.status, 1);
  assert.ok(/RangeError: MPI.init: cannot start 5 ranks: admission refused: 4 clones requested/.test(r.stderr), r.stderr);
  assert.is(r.stdout, '');
});

test.run();
