// Property: an unmodified C program sees the streams mpiexec gives: stdin reaches rank 0 only
// (clones read end-of-file), each rank's stdout and stderr lines arrive whole, the launcher adds
// nothing when all is well, and a non-zero return from main after MPI_Finalize, in any rank,
// makes the job's status non-zero with that rank named.
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { buildLib, compile, csrc, describe, mpirun, tempDir } from './helpers.js';
import { run } from '../helpers.js';
import { sfmpirun } from './helpers.js';

const dir = tempDir('c-stdio');
let bin = '';

test.before(async () => {
  await buildLib();
  bin = (await compile([path.join(csrc, 'stdio.c')], dir)).stdio;
});
test.after(() => fs.rmSync(dir, { recursive: true, force: true }));

test('stdin goes to rank 0, clones read EOF; 3000-byte lines arrive whole on both streams', async () => {
  const j = await run(process.execPath, [sfmpirun, '-n', '4', bin], { input: 'hello input\n', timeoutMs: 60_000 });
  assert.is(j.code, 0, j.stderr);
  const out = j.stdout.split('\n');
  const err = j.stderr.split('\n');
  assert.ok(out.includes('rank 0 stdin: hello input'), j.stdout);
  for (let r = 0; r < 4; r++) {
    if (r > 0) assert.ok(out.includes(`rank ${r} stdin: <eof>`), `rank ${r} read stdin`);
    const digits = String(r).repeat(3000);
    assert.ok(out.includes(`rank ${r} big ${digits}`), `rank ${r}'s stdout line was broken`);
    assert.ok(err.includes(`rank ${r} err ${digits}`), `rank ${r}'s stderr line was broken`);
  }
  assert.is(err.filter((l) => l && !/^rank \d err /.test(l)).length, 0, 'the launcher added to the output');
});

for (const who of [0, 2]) {
  test(`rank ${who} returning 3 from main after MPI_Finalize makes the job's status 3`, async () => {
    const j = await mpirun(4, bin, ['exit', String(who), '3']);
    assert.is(j.code, 3, describe(j));
    assert.match(j.stderr, `sfmpirun: rank ${who} exited with code 3`);
    assert.equal(j.leftovers, []);
  });
}

test.run();
