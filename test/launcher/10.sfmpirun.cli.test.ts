// Property: sfmpirun behaves as MPI users expect of mpiexec at its edges: usage, bad input,
// exit status, timeouts, stdin to rank 0, and nothing left running when it is killed.
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { alive, root, run, sfmpirun, sfnode, until, type RunOptions } from '../helpers.js';

const fx = (f: string) => path.join(root, 'test', 'fixtures', 'launcher', f);
const mpirun = (args: string[], opts: RunOptions = {}) => run(process.execPath, [sfmpirun, ...args], opts);

test('--help shows usage and examples', async () => {
  const r = await mpirun(['--help']);
  assert.is(r.code, 0);
  assert.match(r.stdout, 'Usage: sfmpirun -n <ranks> [options] <program> [args...]');
  assert.match(r.stdout, 'Examples:');
  assert.match(r.stdout, '--timeout <seconds>');
});

test('a missing program is named', async () => {
  const r = await mpirun(['-n', '2', 'no-such-program.ts']);
  assert.is(r.code, 2);
  assert.is(r.stderr, 'sfmpirun: program not found: no-such-program.ts\n');
});

test('a bad -n is named', async () => {
  for (const bad of ['0', '-3', 'x', '2.5']) {
    const r = await mpirun(['-n', bad, fx('echo-args.ts')]);
    assert.is.not(r.code, 0, `-n ${bad} accepted`);
    assert.match(r.stderr, `-n must be a positive integer, got "${bad}"`);
  }
});

test('a rank count beyond admission is refused before anything starts', async () => {
  const r = await mpirun(['-n', '9', fx('echo-args.ts')], { env: { SFMPI_MAX_CLONES: '4' } });
  assert.is(r.code, 2);
  assert.match(r.stderr, "sfmpirun: -n 9 needs 8 clones, beyond this host's admission limit of 4");
  assert.is(r.stdout, '');
});

test('a TypeScript compile error names the file and line', async () => {
  const r = await mpirun(['-n', '1', fx('broken.ts')]);
  assert.is(r.code, 2);
  assert.match(r.stderr, /sfmpirun: cannot compile .*broken\.ts: .*broken\.ts:1:\d+: /);
});

test('TypeScript runs without a build step; -np, arguments and stdin reach rank 0', async () => {
  const r = await mpirun(['-np', '1', fx('echo-args.ts'), 'a', '--flag', 'b'], { input: 'from stdin' });
  assert.is(r.code, 0, r.stderr);
  assert.is(r.stderr, '', 'the launcher adds nothing to the output unless asked');
  assert.equal(JSON.parse(r.stdout), { args: ['a', '--flag', 'b'], typed: ['A', '--FLAG', 'B'], input: 'from stdin' });
});

test('a program importing the runtime by a relative source path still finds the addon', async () => {
  const r = await run(process.execPath, [sfnode, fx('relative-import.ts')]);
  assert.is(r.code, 0, r.stderr);
  assert.is(r.stdout, '[10,20]\n');
});

test('the exit status is the failing rank\'s code, with a line naming it', async () => {
  const r = await mpirun(['-n', '1', fx('echo-args.ts'), '--exit', '3']);
  assert.is(r.code, 3);
  assert.match(r.stderr, 'sfmpirun: rank 0 exited with code 3\n');
});

test('--timeout ends a job that runs too long, names the ranks, exits 124', async () => {
  const r = await mpirun(['-n', '1', '--timeout', '0.5', fx('sleep.mjs')], { timeoutMs: 20_000 });
  assert.is(r.code, 124);
  assert.match(r.stderr, 'sfmpirun: job timed out after 0.5 s; ranks still running: 0');
  const pid = Number(/pid (\d+)/.exec(r.stdout)?.[1]);
  assert.ok(await until(() => !alive(pid), 2000), 'the origin outlived the timeout');
});

test('killing sfmpirun takes the job down', async () => {
  let origin = 0;
  await mpirun(['-n', '1', fx('sleep.mjs')], {
    timeoutMs: 20_000,
    onSpawn: (pid, stdout) => {
      const poll = setInterval(() => {
        const m = /pid (\d+)/.exec(stdout());
        if (!m) return;
        clearInterval(poll);
        origin = Number(m[1]);
        process.kill(pid, 'SIGKILL');
      }, 10);
    },
  });
  assert.ok(origin > 0);
  assert.ok(await until(() => !alive(origin), 2000), 'the origin outlived its launcher');
});

test.run();
