// Property: sfmpicc behaves like mpicc for build scripts: -show, -c then link, -o, -O, -I, -L,
// -l, other flags passed to cc, cc's failures passed through, and it works through a symlink
// (as npm installs it in node_modules/.bin).
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { buildLib, csrc, describe, mpirun, root, sfmpicc, tempDir } from './helpers.js';

const exec = promisify(execFile);
const dir = tempDir('sfmpicc');
const lib = path.join(root, 'build', 'c');

test.before(buildLib);
test.after(() => fs.rmSync(dir, { recursive: true, force: true }));

test('-show prints the compile and link line without running it', async () => {
  const { stdout } = await exec(sfmpicc, ['-show', '-O2', 'x.c', '-o', 'x']);
  assert.is(stdout.trim(), `cc -I${lib}/include -O2 x.c -o x ${lib}/libsfmpi.a -lpthread`);
  const c = await exec(sfmpicc, ['-show', '-c', 'x.c']);
  assert.is(c.stdout.trim(), `cc -I${lib}/include -c x.c`, 'no link flags with -c');
});

test('--version and -dumpversion reach cc without linking anything', async () => {
  const v = await exec(sfmpicc, ['--version']);
  assert.match(v.stdout, /(gcc|cc|clang)/i);
  const d = await exec(sfmpicc, ['-dumpversion']);
  assert.match(d.stdout.trim(), /^\d+/);
});

test('-c, then link objects with -L/-l/-I/-D; the program runs', async () => {
  const inc = path.join(dir, 'inc');
  fs.mkdirSync(inc, { recursive: true });
  fs.writeFileSync(path.join(inc, 'answer.h'), '#define ANSWER 42\n');
  fs.writeFileSync(path.join(dir, 'part.c'), '#include "answer.h"\nint part(void) { return ANSWER + EXTRA; }\n');
  fs.writeFileSync(
    path.join(dir, 'main.c'),
    '#include <mpi.h>\n#include <stdio.h>\n#include <math.h>\nint part(void);\nint main(int c, char **v) { int r; MPI_Init(&c, &v); MPI_Comm_rank(MPI_COMM_WORLD, &r); printf("r%d %d %.0f\\n", r, part(), sqrt(16.0)); MPI_Finalize(); return 0; }\n',
  );
  await exec(sfmpicc, ['-c', '-O1', `-I${inc}`, '-DEXTRA=1', path.join(dir, 'part.c'), '-o', path.join(dir, 'part.o')]);
  await exec(sfmpicc, ['-c', '-O2', '-g', path.join(dir, 'main.c'), '-o', path.join(dir, 'main.o')]);
  await exec(sfmpicc, [path.join(dir, 'main.o'), path.join(dir, 'part.o'), '-L/usr/lib', '-lm', '-o', path.join(dir, 'prog')]);
  const j = await mpirun(2, path.join(dir, 'prog'));
  assert.is(j.code, 0, describe(j));
  assert.match(j.stdout, 'r0 43 4');
  assert.match(j.stdout, 'r1 43 4');
});

test('a compile error is passed through with cc\'s status', async () => {
  fs.writeFileSync(path.join(dir, 'bad.c'), 'int main(void) { return nope; }\n');
  const e: any = await exec(sfmpicc, [path.join(dir, 'bad.c'), '-o', path.join(dir, 'bad')]).catch((x) => x);
  assert.is.not(e.code, 0);
  assert.match(e.stderr, /nope.* undeclared/);
});

test('works through a symlink (node_modules/.bin) and with SFMPI_LINK=shared', async () => {
  const link = path.join(dir, 'bin-sfmpicc');
  fs.symlinkSync(sfmpicc, link);
  const out = path.join(dir, 'cpi-shared');
  await exec(link, ['-O2', path.join(csrc, 'realworld', 'cpi.c'), '-o', out, '-lm'], {
    env: { ...process.env, SFMPI_LINK: 'shared' },
  });
  const j = await mpirun(3, out);
  assert.is(j.code, 0, describe(j));
  assert.match(j.stdout, 'pi is approximately 3.14159265');
});

test('calls outside the subset fail to link, never silently misbehave', async () => {
  fs.writeFileSync(
    path.join(dir, 'outside.c'),
    '#include <mpi.h>\nint MPI_Intercomm_create(int, int, int, int, int, int *);\nint main(int c, char **v) { int x; MPI_Init(&c, &v); MPI_Intercomm_create(0, 0, 0, 0, 0, &x); MPI_Finalize(); return 0; }\n',
  );
  const e: any = await exec(sfmpicc, [path.join(dir, 'outside.c'), '-o', path.join(dir, 'outside')]).catch((x) => x);
  assert.is.not(e.code, 0);
  assert.match(e.stderr, "undefined reference to `MPI_Intercomm_create'");
});

test('every call mpi.h declares is defined in libsfmpi, and nothing else is', async () => {
  const tool = path.join(root, 'mpi-compat', 'c', 'tools', 'calls-table.sh');
  const { stdout } = await exec(tool, ['--check-lib', path.join(lib, 'libsfmpi.a')]).catch((e) => {
    throw new Error(`${e.stdout}${e.stderr}`);
  });
  assert.match(stdout, /^\d+ calls declared, all defined/);
});

test('docs/c-mpi.md carries the calls table generated from mpi.h', async () => {
  const tool = path.join(root, 'mpi-compat', 'c', 'tools', 'calls-table.sh');
  await exec(tool, ['--check-doc', path.join(root, 'docs', 'c-mpi.md')]).catch((e) => {
    throw new Error(`${e.stdout}${e.stderr}`);
  });
});

test.run();
