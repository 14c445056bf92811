// Property: every C test program (one per MPI area) prints a PASS verdict, exits 0 and leaves no
// process behind at every rank count, under sfmpirun, without a launcher, and with the
// single-copy path (process_vm_readv) turned off.
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { buildLib, compile, csrc, describe, mpirun, SIZES, tempDir } from './helpers.js';

const AREAS: Record<string, string> = {
  p2p: 'p2p',
  protocol: 'protocol',
  ordering: 'ordering',
  wildcards: 'wildcards',
  nonblocking: 'nonblocking',
  coll: 'collectives',
  datatypes: 'datatypes',
  userops: 'userops',
  comms: 'communicators',
  errhandlers: 'errhandlers',
  topo: 'topologies',
  nbc: 'nonblocking collectives',
  persist: 'persistent requests',
  groups: 'groups',
  types2: 'datatypes2',
  rma: 'one-sided',
  mpiio: 'mpi-io',
};
/** errhandlers waits for receives that never match: keep its wait timeout short. */
const ENV: Record<string, NodeJS.ProcessEnv> = { errhandlers: { SFMPI_WAIT_TIMEOUT_MS: '1500' } };

const dir = tempDir('c-verdicts');
let bins: Record<string, string> = {};

test.before(async () => {
  await buildLib();
  bins = await compile(Object.keys(AREAS).map((f) => path.join(csrc, `${f}.c`)), dir);
});

test.after(() => fs.rmSync(dir, { recursive: true, force: true }));

function verdict(area: string, n: number, j: Awaited<ReturnType<typeof mpirun>>) {
  assert.is(j.timedOut, false, `timed out\n${describe(j)}`);
  assert.ok(j.stdout.includes(`VERDICT ${area} PASS (${n} ranks)`), `no PASS verdict\n${describe(j)}`);
  assert.is(j.code, 0, describe(j));
  assert.is(j.stderr, '', `nothing on stderr when all is well\n${describe(j)}`);
  assert.equal(j.leftovers, [], 'processes left behind');
}

for (const [file, area] of Object.entries(AREAS)) {
  for (const n of SIZES) {
    test(`${file}: sfmpirun -n ${n}`, async () => {
      verdict(area, n, await mpirun(n, bins[file], [], { env: ENV[file] }));
    });
  }
}

for (const n of [5, 6, 7]) {
  for (const file of ['coll', 'topo', 'nbc', 'rma']) {
    test(`${file}: sfmpirun -n ${n} (every group size 1..8)`, async () => {
      verdict(AREAS[file], n, await mpirun(n, bins[file]));
    });
  }
}

for (const file of ['p2p', 'protocol', 'coll', 'nonblocking', 'nbc', 'persist', 'rma']) {
  test(`${file}: without a launcher (SFMPI_SIZE=3, shared stdout)`, async () => {
    verdict(AREAS[file], 3, await mpirun(3, bins[file], [], { launcher: false }));
  });
  test(`${file}: pipelined copy through the ring (SFMPI_CMA=0)`, async () => {
    verdict(AREAS[file], 3, await mpirun(3, bins[file], [], { env: { SFMPI_CMA: '0' } }));
  });
}

test('a verdict program fails when a check fails (the checks can fail)', async () => {
  // Truncation with MPI_ERRORS_ARE_FATAL: a program that ignores the error handler's job is
  // caught; here we just make sure a FAIL verdict is reported as a failure by exit status.
  const src = path.join(dir, 'fails.c');
  fs.writeFileSync(src, `#include "sft.h"\nint main(int c, char **v) { sft_init(&c, &v); CHECK(sft_rank != 1, "rank 1 says no"); return sft_finish("selfcheck"); }\n`);
  const b = await compile([src], dir, ['-O2', `-I${csrc}`]);
  const j = await mpirun(2, b.fails);
  assert.ok(j.stdout.includes('VERDICT selfcheck FAIL 1 failed checks'), describe(j));
  assert.is.not(j.code, 0, describe(j));
  assert.equal(j.leftovers, []);
});

test.run();
