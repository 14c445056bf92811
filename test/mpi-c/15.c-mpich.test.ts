// Property: the verdict programs check MPI's semantics, not ours: built unchanged with MPICH's
// mpicc and run under its mpiexec, every one of them passes too (where MPICH is installed;
// otherwise each test says why it was skipped). errhandlers checks sfmpi's own timeout class,
// and failures/stdio the launcher's reports, so they are not run here.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { run } from '../helpers.js';
import { csrc, tempDir } from './helpers.js';

const exec = promisify(execFile);
const dir = tempDir('c-mpich');
const PROGRAMS = [
  'p2p', 'ordering', 'wildcards', 'nonblocking', 'coll', 'datatypes', 'userops', 'comms',
  'topo', 'nbc', 'persist', 'groups', 'types2', 'rma', 'mpiio',
];
const AREA: Record<string, string> = {
  p2p: 'p2p', ordering: 'ordering', wildcards: 'wildcards', nonblocking: 'nonblocking', coll: 'collectives',
  datatypes: 'datatypes', userops: 'userops', comms: 'communicators', topo: 'topologies', nbc: 'nonblocking collectives',
  persist: 'persistent requests', groups: 'groups', types2: 'datatypes2', rma: 'one-sided', mpiio: 'mpi-io',
};
/** MPICH busy-polls: 8 ranks on 2 shared cores are slow, so it runs at fewer sizes than sfmpi. */
const SIZES = [1, 2, 3, 4];

async function which(cmd: string): Promise<string | null> {
  try {
    return (await exec('sh', ['-c', `command -v ${cmd}`])).stdout.trim() || null;
  } catch {
    return null;
  }
}

let skip = '';
const bins: Record<string, string> = {};

test.before(async () => {
  const cc = await which('mpicc.mpich');
  const run = await which('mpiexec.mpich');
  if (!cc || !run) {
    skip = `MPICH is not installed (no ${!cc ? 'mpicc.mpich' : 'mpiexec.mpich'} on PATH; apt-get install mpich)`;
    console.log(`  skipped: ${skip}`);
    return;
  }
  for (const p of PROGRAMS) {
    const bin = path.join(dir, p);
    // -w: MPICH's own header trips gcc's -Wstringop-overflow on MPI_STATUSES_IGNORE
    await exec('mpicc.mpich', ['-O2', '-w', `-I${csrc}`, path.join(csrc, `${p}.c`), '-o', bin, '-lm'], { maxBuffer: 1 << 24 });
    bins[p] = bin;
  }
});

test.after(() => fs.rmSync(dir, { recursive: true, force: true }));

for (const p of PROGRAMS) {
  test(`${p} passes under MPICH at ${SIZES.join(', ')} ranks`, async () => {
    if (skip) {
      console.log(`  ${p}: skipped, ${skip}`);
      return;
    }
    for (const n of SIZES) {
      const j = await run('mpiexec.mpich', ['-n', String(n), bins[p]], { timeoutMs: 90_000 });
      const out = `code ${j.code} timedOut ${j.timedOut}\n${j.stdout.slice(-1500)}\n${j.stderr.slice(-1500)}`;
      assert.is(j.timedOut, false, `MPICH run of ${p} at ${n} ranks timed out\n${out}`);
      assert.ok(j.stdout.includes(`VERDICT ${AREA[p]} PASS (${n} ranks)`), `${p} at ${n} ranks under MPICH\n${out}`);
      assert.is(j.code, 0, out);
    }
  });
}

test.run();
