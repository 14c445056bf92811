// Property: the data plane's core is transport-neutral. A job whose ranks sit on several
// "hosts" (process trees with a shared region each, on one machine) runs point-to-point and
// every collective over shared-memory links within a host and TCP links between hosts, with
// the same answers as on one host; a rank that dies on one host fails the wait of a rank on
// another, naming it. Uses only the public API (sf_dataplane.h) and real loopback TCP.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { run } from '../helpers.js';
import { buildLib, csrc, describe, root, tempDir } from './helpers.js';

let dir = '';
let bin = '';

test.before(async () => {
  await buildLib();
  dir = tempDir('hosts');
  bin = path.join(dir, 'dataplane_hosts');
  await promisify(execFile)('cc', [
    '-O2', '-Wall', '-Wextra', '-Werror', `-I${path.join(root, 'native', 'include')}`,
    path.join(csrc, 'dataplane_hosts.c'), path.join(root, 'build', 'c', 'libsfmpi.a'), '-lpthread', '-o', bin,
  ]);
});

test.after(() => fs.rmSync(dir, { recursive: true, force: true }));

for (const [shape, mode] of [['2,2', ''], ['3,2,1', ''], ['1,1', ''], ['2,2', 'rr'], ['1,3,2,2', '']]) {
  test(`ranks per host ${shape}${mode ? ' (round robin)' : ''}: p2p and collectives over shm + TCP links`, async () => {
    const j = await run(bin, mode ? [shape, mode] : [shape], { timeoutMs: 60_000 });
    assert.is(j.stdout.trim(), 'VERDICT hosts PASS', describe({ ...j, leftovers: [] }));
    assert.is(j.code, 0, describe({ ...j, leftovers: [] }));
  });
}

test.run();
