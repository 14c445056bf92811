// Property: classic MPI C programs the team did not design (cpi, ring, hello, MPICH-test-suite
// and OSU-benchmark styles, a Jacobi solver) build unchanged with `make CC=sfmpicc` and give the
// same answers at any rank count, with every rank's output intact.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { buildLib, csrc, describe, mpirun, root, tempDir } from './helpers.js';

const exec = promisify(execFile);
const dir = tempDir('c-realworld');
const bin = (p: string) => path.join(dir, p);

test.before(async () => {
  await buildLib();
  // A build script that defaults to CC=mpicc, driven with CC=sfmpicc found on PATH.
  const PATH = `${path.join(root, 'mpi-compat', 'c')}:${process.env.PATH}`;
  await exec('make', ['-s', '-j2', '-C', path.join(csrc, 'realworld'), 'CC=sfmpicc', `OUT=${dir}`, 'CFLAGS=-O2 -Wall -Werror'], {
    env: { ...process.env, PATH },
    maxBuffer: 1 << 24,
  });
});

test.after(() => fs.rmSync(dir, { recursive: true, force: true }));

test('cpi computes pi to 1e-8 at 1, 4 and 8 ranks', async () => {
  for (const n of [1, 4, 8]) {
    const j = await mpirun(n, bin('cpi'));
    assert.is(j.code, 0, describe(j));
    const m = j.stdout.match(/pi is approximately (\S+), Error is (\S+)/);
    assert.ok(m && Math.abs(Number(m[1]) - Math.PI) < 1e-8, describe(j));
    assert.is(j.stdout.match(/^Process \d+ of \d+ is on /gm)?.length, n);
    assert.equal(j.leftovers, []);
  }
});

test('ring_c passes the message round until zero; every rank exits', async () => {
  const j = await mpirun(5, bin('ring_c'));
  assert.is(j.code, 0, describe(j));
  assert.match(j.stdout, 'Process 0 sending 10 to 1, tag 201 (5 processes in ring)');
  assert.match(j.stdout, 'Process 0 decremented value: 0');
  for (let r = 0; r < 5; r++) assert.match(j.stdout, `Process ${r} exiting`);
});

test('hello_c at 8 ranks: every greeting and every 6000-byte line arrives whole', async () => {
  const j = await mpirun(8, bin('hello_c'));
  assert.is(j.code, 0, describe(j));
  assert.is(j.stderr, '');
  for (let r = 0; r < 8; r++) {
    assert.match(j.stdout, `Hello, world, I am ${r} of 8, (sfmpi`);
    const ch = String.fromCharCode(97 + r);
    assert.ok(j.stdout.split('\n').includes(`long ${r} ${ch.repeat(6000)} end`), `rank ${r}'s long line was broken`);
  }
});

for (const prog of ['allred', 'anyall', 'scantst']) {
  test(`${prog} (MPICH test-suite style) reports No Errors at 2, 3 and 8 ranks`, async () => {
    for (const n of [2, 3, 8]) {
      const j = await mpirun(n, bin(prog));
      assert.is(j.code, 0, describe(j));
      assert.is(j.stdout.trim(), 'No Errors', describe(j));
    }
  });
}

test('jacobi converges to the same answer at 1, 3 and 4 ranks', async () => {
  const lines = new Set<string>();
  for (const n of [1, 3, 4]) {
    const j = await mpirun(n, bin('jacobi'));
    assert.is(j.code, 0, describe(j));
    lines.add(j.stdout.trim());
  }
  assert.is(lines.size, 1, [...lines].join('\n'));
  assert.match([...lines][0], /converged after \d+ iterations/);
});

test('osu_latency and osu_bw (OSU style) run and print a row per size', async () => {
  const l = await mpirun(2, bin('osu_latency'), ['-m', '65536', '-i', '200', '-x', '20']);
  assert.is(l.code, 0, describe(l));
  assert.match(l.stdout, /^65536\s+\d+\.\d\d$/m);
  const b = await mpirun(2, bin('osu_bw'), ['-m', '1048576', '-i', '5']);
  assert.is(b.code, 0, describe(b));
  assert.match(b.stdout, /^1048576\s+\d+\.\d\d$/m);
  // OSU programs refuse one rank with a message, as the originals do.
  const one = await mpirun(1, bin('osu_latency'));
  assert.is.not(one.code, 0);
  assert.match(one.stderr, 'This test requires at least two processes');
});

test.run();
