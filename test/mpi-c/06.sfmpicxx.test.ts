// Property: sfmpicxx (and sfmpic++) behave like mpicxx: -show, the C++ compiler for compiling and
// linking, CXX=sfmpicxx in a Makefile and as CMake's C++ compiler; and mpi.h compiles as C and as
// C++ (extern "C", no C++ bindings) without a warning at -Wall -Wextra -pedantic.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { buildLib, csrc, describe, mpirun, root, tempDir } from './helpers.js';

const exec = promisify(execFile);
const dir = tempDir('sfmpicxx');
const lib = path.join(root, 'build', 'c');
const bin = path.join(root, 'mpi-compat', 'c');
const sfmpicxx = path.join(bin, 'sfmpicxx');
const cxxsrc = path.join(csrc, 'cxx');
const PATH = `${bin}:${process.env.PATH}`;

test.before(buildLib);
test.after(() => fs.rmSync(dir, { recursive: true, force: true }));

test('-show prints the c++ compile and link line; sfmpic++ is the same command', async () => {
  const { stdout } = await exec(sfmpicxx, ['-show', '-O2', 'x.cc', '-o', 'x']);
  assert.is(stdout.trim(), `c++ -I${lib}/include -O2 x.cc -o x ${lib}/libsfmpi.a -lpthread`);
  const plus = await exec(path.join(bin, 'sfmpic++'), ['-show', '-c', 'x.cpp']);
  assert.is(plus.stdout.trim(), `c++ -I${lib}/include -c x.cpp`);
  const picked = await exec(sfmpicxx, ['-show', 'x.cc'], { env: { ...process.env, SFMPI_CXX: 'clang++' } });
  assert.match(picked.stdout, /^clang\+\+ /);
});

test('mpi.h compiles as C11 and as C++11/C++17 with -Wall -Wextra -pedantic -Werror', async () => {
  const probe = path.join(dir, 'probe.c');
  fs.writeFileSync(probe, '#include <mpi.h>\nint main(void) { MPI_Comm c = MPI_COMM_WORLD; (void)c; return 0; }\n');
  const strict = ['-Wall', '-Wextra', '-pedantic', '-Werror', '-fsyntax-only'];
  await exec(path.join(bin, 'sfmpicc'), ['-std=c11', ...strict, probe]);
  fs.copyFileSync(probe, path.join(dir, 'probe.cc'));
  for (const std of ['c++11', 'c++17']) {
    await exec(sfmpicxx, [`-std=${std}`, ...strict, path.join(dir, 'probe.cc')]).catch((e) => {
      throw new Error(`mpi.h as ${std}:\n${e.stderr}`);
    });
  }
});

test('make CXX=sfmpicxx builds a C++ program whose ranks agree (1, 3 ranks)', async () => {
  const out = path.join(dir, 'make');
  fs.mkdirSync(out);
  await exec('make', ['-s', '-C', cxxsrc, 'CXX=sfmpicxx', `OUT=${out}`, 'CXXFLAGS=-O2 -Wall -Wextra -Werror'], {
    env: { ...process.env, PATH },
  });
  for (const n of [1, 3]) {
    const j = await mpirun(n, path.join(out, 'allreduce'));
    assert.is(j.code, 0, describe(j));
    assert.match(j.stdout, `cxx sum ${(100 * n * (100 * n - 1)) / 2} of ${n} ranks ok`);
    assert.equal(j.leftovers, []);
  }
});

test('CMake with CMAKE_CXX_COMPILER=sfmpic++ builds and links it', async () => {
  const build = path.join(dir, 'cmake');
  await exec('cmake', ['-S', cxxsrc, '-B', build, `-DCMAKE_CXX_COMPILER=${path.join(bin, 'sfmpic++')}`], {
    env: { ...process.env, PATH },
  }).catch((e) => {
    throw new Error(`cmake configure:\n${e.stdout}\n${e.stderr}`);
  });
  await exec('cmake', ['--build', build], { env: { ...process.env, PATH } });
  const j = await mpirun(2, path.join(build, 'allreduce'));
  assert.is(j.code, 0, describe(j));
  assert.match(j.stdout, 'cxx sum 19900 of 2 ranks ok');
});

test.run();
