// Property: the native launcher (build/c/sfmpirun, behind npm's sfmpirun bin) runs a job of an
// executable by itself, with no Node process in between, hands JavaScript and TypeScript to the
// Node launcher (which hands the job on one host back to it), speaks the same words as before
// from every entry point, reads hostile control lines without harm, forwards signals, and
// leaves no process behind when it is killed, times out, or the origin leaves a child running.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { alive, root, run, sfmpirun, until, type RunOptions } from '../helpers.js';
import { buildLib, compile, csrc, tempDir } from '../mpi-c/helpers.js';

const bin = path.join(root, 'mpi-compat', 'launcher', 'sfmpirun.sh');
const native = path.join(root, 'build', 'c', 'sfmpirun');
const lineage = path.join(root, 'test', 'launcher', 'fixtures', 'lineage.ts');
const viaBin = (args: string[], opts: RunOptions = {}) => run(bin, args, opts);
const viaNode = (args: string[], opts: RunOptions = {}) => run(process.execPath, [sfmpirun, ...args], opts);
const dir = tempDir('native-launcher');
let failures = '';

test.before(async () => {
  await buildLib();
  failures = (await compile([path.join(csrc, 'failures.c')], dir)).failures;
});
test.after(() => fs.rmSync(dir, { recursive: true, force: true }));

/** A job that waits (failures hang: every rank prints "pid R PID" first), started by `command`. */
function startWaiting(command: string, args: string[]) {
  const child = spawn(command, args, { env: { ...process.env, SFMPI_WAIT_TIMEOUT_MS: '60000' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (err += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('close', (code, signal) => resolve({ code, signal })),
  );
  const pids = () => [...out.matchAll(/^pid \d+ (\d+)$/gm)].map((m) => Number(m[1]));
  return { child, pids, exited, output: () => out + err, stderr: () => err };
}

test('an executable runs in the native launcher: the origin\'s parent is the process the bin started', async () => {
  let started = 0;
  const r = await viaBin(['-n', '1', '/bin/sh', '-c', 'echo $PPID; readlink /proc/$PPID/exe'], { onSpawn: (pid) => (started = pid) });
  assert.is(r.code, 0, r.stderr);
  const [ppid, exe] = r.stdout.trim().split('\n');
  assert.is(Number(ppid), started, 'the bin script exec\'d the launcher: no process in between');
  assert.is(exe, fs.realpathSync(native));
});

test('node sfmpirun.js runs an executable\'s job in the native launcher too', async () => {
  let started = 0;
  const r = await viaNode(['-n', '1', '/bin/sh', '-c', 'readlink /proc/$PPID/exe; cut -d" " -f4 /proc/$PPID/stat'], { onSpawn: (pid) => (started = pid) });
  assert.is(r.code, 0, r.stderr);
  const [exe, grand] = r.stdout.trim().split('\n');
  assert.is(exe, fs.realpathSync(native));
  assert.is(Number(grand), started, 'the native launcher is the Node launcher\'s child');
});

test('TypeScript goes to the Node launcher, which hands its job on this host back to the native one', async () => {
  let started = 0;
  const r = await viaBin(['-n', '2', lineage], { onSpawn: (pid) => (started = pid), timeoutMs: 60_000 });
  assert.is(r.code, 0, r.stderr);
  const lines = r.stdout.trim().split('\n');
  assert.is(lines.length, 1, 'only the origin prints (it runs before MPI.init)');
  const { parent, grandparent } = JSON.parse(lines[0]);
  assert.is(parent.exe, fs.realpathSync(native), 'the job runs in the native launcher');
  assert.is(grandparent.pid, started, 'the front door exec\'d node');
  assert.is(grandparent.exe, fs.realpathSync(process.execPath));
  assert.ok(grandparent.cmdline.some((a: string) => a.endsWith(path.join('launcher', 'sfmpirun.js'))), grandparent.cmdline.join(' '));
});

test('bad command lines get the same words from the bin and from node sfmpirun.js', async () => {
  const usage = '\n(run sfmpirun --help for usage)\n';
  const cases: [string[], number, string][] = [
    [['--bogus', 'x'], 1, `error: unknown option '--bogus'${usage}`],
    [['--hostfle', 'h', 'x'], 1, `error: unknown option '--hostfle'\n(Did you mean --hostfile?)${usage}`],
    [['--verbose=1', 'x'], 1, `error: unknown option '--verbose=1'\n(Did you mean --verbose?)${usage}`],
    [['-vx', 'x'], 1, `error: unknown option '-x'${usage}`],
    [['-n'], 1, `error: option '-n, --np <ranks>' argument missing${usage}`],
    [['--np=2x', 'x'], 1, `error: option '-n, --np <ranks>' argument '2x' is invalid. -n must be a positive integer, got "2x"${usage}`],
    [['--timeout', 'abc', 'x'], 1, `error: option '--timeout <seconds>' argument 'abc' is invalid. --timeout must be a positive number of seconds, got "abc"${usage}`],
    [['--timeout', '-1', 'x'], 1, `error: option '--timeout <seconds>' argument '-1' is invalid. --timeout must be a positive number of seconds, got "-1"${usage}`],
    [[], 1, `error: missing required argument 'program'${usage}`],
    [['-n', '2'], 1, `error: missing required argument 'program'${usage}`],
    [['--', '-n'], 2, 'sfmpirun: program not found: -n\n'],
    [['-n', '1', dir], 2, `sfmpirun: program is a directory: ${dir}\n`],
    [['-n', '1', path.join(root, 'README.md')], 2, `sfmpirun: program is neither JavaScript, TypeScript nor executable: ${path.join(root, 'README.md')}\n`],
  ];
  for (const [args, code, stderr] of cases) {
    for (const [how, go] of [['bin', viaBin], ['node', viaNode]] as const) {
      const r = await go(args);
      assert.is(r.stderr, stderr, `${how} ${args.join(' ')}`);
      assert.is(r.code, code, `${how} ${args.join(' ')}`);
      assert.is(r.stdout, '', `${how} ${args.join(' ')}`);
    }
  }
  const help = await viaBin(['-n', '2', '--help', '/bin/true']);
  assert.is(help.code, 0);
  assert.is(help.stdout, (await viaNode(['-h'])).stdout);
  assert.match(help.stdout, 'Usage: sfmpirun -n <ranks> [options] <program> [args...]');
});

test('options after the program are the program\'s, -np included', async () => {
  const r = await viaBin(['-n', '1', '/bin/echo', '-np', '3', '--bogus']);
  assert.is(r.code, 0, r.stderr);
  assert.is(r.stdout, '-np 3 --bogus\n');
});

test('control lines: a malformed one is named and ignored, a fail line decides the status and the words', async () => {
  const fail = JSON.stringify({ v: 1, ev: 'fail', host: 'h', rank: 0, code: 9, signal: 0, cause: 'broke \u00e9 "here"' });
  const script = [
    'printf "garbage\\n" >&3',
    `printf '%s\\n' '{"v":2,"ev":"exit","host":"h","rank":0,"code":0}' >&3`,
    `head -c 9000 /dev/zero | tr '\\0' x >&3; printf '\\n' >&3`,
    `printf '%s\\n' '${fail}' >&3`,
    'exit 9',
  ].join('; ');
  const r = await viaBin(['-n', '1', '/bin/sh', '-c', script]);
  assert.is(r.code, 9, r.stderr);
  const lines = r.stderr.trim().split('\n');
  assert.is(lines[0], 'sfmpirun: ignored a malformed control message: "garbage"');
  assert.is(lines[1], 'sfmpirun: ignored a malformed control message: "{\\"v\\":2,\\"ev\\":\\"exit\\",\\"host\\":\\"h\\",\\"rank\\":0,\\"code\\":0}"');
  assert.is(lines[2], `sfmpirun: ignored a malformed control message: "${'x'.repeat(200)}"`, 'an overlong line is named once, by its start');
  assert.is(lines[3], 'sfmpirun: rank 0 broke \u00e9 "here"');
  assert.is(lines.length, 4, r.stderr);
});

test('output: a line written in pieces arrives whole, a last line without newline arrives, a 200 KiB line arrives complete', async () => {
  const r = await viaBin(['-n', '1', '/bin/sh', '-c', 'printf "first "; sleep 0.1; printf "half\\n"; head -c 204800 /dev/zero | tr "\\0" y; printf "\\nno newline"']);
  assert.is(r.code, 0, r.stderr);
  assert.is(r.stdout, `first half\n${'y'.repeat(204800)}\nno newline`);
});

test('an origin that leaves a child running: the job\'s group goes with it', async () => {
  const r = await viaBin(['-n', '1', '/bin/sh', '-c', 'sleep 100 & echo $!']);
  assert.is(r.code, 0, r.stderr);
  const pid = Number(r.stdout.trim());
  assert.ok(pid > 0);
  assert.ok(await until(() => !alive(pid), 2000), 'the background child outlived the job');
});

test('SIGTERM to the native launcher reaches every rank; the status names the signal; nothing is left', async () => {
  const job = startWaiting(bin, ['-n', '4', failures, 'hang']);
  assert.ok(await until(() => job.pids().length === 4, 20_000), `the ranks did not start:\n${job.output()}`);
  const ranks = job.pids();
  job.child.kill('SIGTERM');
  const end = await job.exited;
  assert.is(end.code, 143, job.output());
  assert.match(job.stderr(), /^sfmpirun: rank \d was killed by signal 15 \(SIGTERM\)$/m);
  assert.ok(await until(() => ranks.every((p) => !alive(p)), 2000), `ranks still alive: ${ranks.filter(alive).join(', ')}`);
});

test('kill -9 of the native launcher leaves no rank running within 2 s', async () => {
  const job = startWaiting(bin, ['-n', '4', failures, 'hang']);
  assert.ok(await until(() => job.pids().length === 4, 20_000), `the ranks did not start:\n${job.output()}`);
  const ranks = job.pids();
  assert.is(fs.readlinkSync(`/proc/${job.child.pid}/exe`), fs.realpathSync(native));
  job.child.kill('SIGKILL');
  assert.ok(await until(() => ranks.every((p) => !alive(p)), 2000), `ranks still alive: ${ranks.filter(alive).join(', ')}`);
});

test('--timeout of a C job in the native launcher: 124, every rank named, none left', async () => {
  // abort 99: no rank aborts, every rank computes outside MPI (no wait of theirs times out first)
  const job = startWaiting(bin, ['-n', '3', '--timeout', '1', failures, 'abort', '99', '0']);
  const end = await job.exited;
  assert.is(end.code, 124, job.output());
  assert.match(job.stderr(), 'sfmpirun: job timed out after 1 s; ranks still running: 0, 1, 2\n');
  assert.is(job.pids().length, 3, job.output());
  assert.ok(await until(() => job.pids().every((p) => !alive(p)), 2000), 'a rank outlived the timeout');
});

test.run();
