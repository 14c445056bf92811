// Property: the command lines that start a dom0 deliver every argument, environment value and
// directory byte for byte, however hostile (spaces, quotes, $, backticks, newlines), and never
// put the job secret on a command line. The ssh line's remote part is run through real shells
// exactly as sshd runs it (`$SHELL -c STRING`, with the secret on stdin); the srun line's
// command is exec'd as slurmstepd does; the installed ssh and srun parse our options.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { encodeSecret, newSecret, SECRET_ENV } from '../../dom0/handshake.js';
import { defaultDom0Main, remoteShellCommand, shellQuote, srunCommand, sshCommand, type Dom0Command } from '../../mpi-compat/launcher/remote.js';
import { deadline, root } from '../helpers.js';

const hostile = [
  'plain',
  'with space',
  "it's",
  'double"quote',
  '$HOME',
  '${PATH}',
  '`id`',
  '$(id -u)',
  'line1\nline2',
  '\n',
  '',
  ' ',
  '\t tab',
  '*',
  '?',
  '[a-z]',
  '~',
  '~root',
  '-n',
  '--',
  ';echo pwned',
  '&& echo pwned',
  '| cat',
  '> pwned',
  '$(touch pwned2)',
  '\\',
  "'\\''",
  '"\'"\'"',
  '!',
  '!!',
  '#not a comment',
  'a=b',
  '=',
  'ü€ 日本',
  '%s%n',
  '\x01\x7f',
];

const secret = newSecret();
const encoded = encodeSecret(secret);

/** A directory and a dom0 stand-in with hostile names; the stand-in prints what it got. */
function fixture(): { dir: string; cwd: string; main: string; cleanup: () => void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sfmpi-remote-'));
  const cwd = path.join(dir, `job dir 'q' "dq" $HOME \`x\` \n; & | *`);
  fs.mkdirSync(cwd);
  const sub = path.join(dir, `pkg it's $(x)`);
  fs.mkdirSync(sub);
  const main = path.join(sub, 'main.mjs');
  fs.writeFileSync(
    main,
    `import fs from 'node:fs';
let input = '';
try { input = fs.readFileSync(0, 'latin1').split('\\n')[0]; } catch {}
const env = {};
for (const [k, v] of Object.entries(process.env)) if (k.startsWith('SFMPI_T_') || k === '${SECRET_ENV}') env[k] = v;
process.stdout.write(JSON.stringify({ argv: process.argv.slice(2), execArgv: process.execArgv, cwd: process.cwd(), env, input }));
`,
  );
  return { dir, cwd, main, cleanup: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

function run(command: string, args: string[], opts: { input?: string | null; env?: NodeJS.ProcessEnv; cwd?: string } = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env: opts.env ?? process.env, cwd: opts.cwd, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    const timer = setTimeout(() => child.kill('SIGKILL'), deadline(20_000));
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.on('error', () => {}); // a child that never reads its stdin
    child.stdin.end(opts.input ?? undefined);
  });
}

const env = Object.fromEntries(hostile.map((v, i) => [`SFMPI_T_${i}`, v]));

function shells(): string[] {
  return ['/bin/sh', '/bin/bash', '/bin/dash', '/usr/bin/zsh', '/bin/ksh'].filter((s) => fs.existsSync(s));
}

test('shellQuote leaves plain words alone and quotes the rest so that sh reads them back', async () => {
  assert.is(shellQuote('abc-1.2/x_y:z@h,k=v%+'), 'abc-1.2/x_y:z@h,k=v%+');
  assert.is(shellQuote(''), "''");
  assert.is(shellQuote("it's"), `'it'\\''s'`);
  assert.is(shellQuote('a b'), "'a b'");
  assert.is(shellQuote('~'), "'~'");
  assert.throws(() => shellQuote('a\0b'), /a shell word cannot hold a NUL byte/);
  const r = await run('/bin/sh', ['-c', `printf '%s\\0' ${hostile.map(shellQuote).join(' ')}`]);
  assert.is(r.code, 0, r.stderr);
  assert.equal(r.stdout.split('\0').slice(0, -1), hostile);
});

test('ssh: the remote command runs in every local POSIX shell as sshd would run it', async () => {
  const fx = fixture();
  try {
    const cmd = sshCommand({ host: 'th2', secret, cwd: fx.cwd, env, args: hostile, nodeArgs: ['--no-warnings'], dom0Main: fx.main });
    assert.is(cmd.command, 'ssh');
    assert.equal(cmd.args.slice(0, -3), ['-T', '-x', '-o', 'BatchMode=yes', '-o', 'ConnectTimeout=5', '-o', 'ServerAliveInterval=5', '-o', 'ServerAliveCountMax=3']);
    assert.equal(cmd.args.slice(-3, -1), ['--', 'th2']);
    assert.not.ok(cmd.args.includes('-n'), 'ssh -n would cut the secret line off');
    assert.is(cmd.stdin, `${encoded}\n`);
    assert.equal(cmd.env, {});
    for (const a of cmd.args) assert.not.ok(a.includes(encoded), 'the secret is on the command line');
    const remote = cmd.args[cmd.args.length - 1];
    assert.is(remote, remoteShellCommand({ secret, cwd: fx.cwd, env, args: hostile, nodeArgs: ['--no-warnings'], dom0Main: fx.main }));
    assert.ok(remote.startsWith('cd -- '), remote);
    for (const sh of shells()) {
      // sshd: `$SHELL -c "<the command words joined>"`, the secret arriving on stdin; run from
      // elsewhere, so that the cd is what puts dom0 in its directory.
      const r = await run(sh, ['-c', remote], { input: cmd.stdin, cwd: os.tmpdir(), env: { PATH: process.env.PATH, HOME: '/nonexistent' } });
      assert.is(r.code, 0, `${sh}: ${r.stderr}`);
      assert.is(r.stderr, '', sh);
      const got = JSON.parse(r.stdout);
      assert.equal(got.argv, hostile, `${sh}: arguments`);
      assert.equal(got.execArgv, ['--no-warnings'], `${sh}: node flags`);
      assert.is(got.cwd, fx.cwd, `${sh}: directory`);
      assert.equal(got.env, env, `${sh}: environment (and no secret in it)`);
      assert.is(got.input, encoded, `${sh}: the secret line on stdin`);
    }
    assert.equal(fs.readdirSync(fx.cwd), [], 'a hostile argument ran as a command (it left a file behind)');
  } finally {
    fx.cleanup();
  }
});

test('ssh: no environment, user and port, extra options; the installed ssh parses the line', () => {
  const cmd = sshCommand({ host: '10.77.0.2', secret, cwd: '/work', args: ['--job', 'j1'], user: 'root', port: 2222, connectTimeoutSec: 3, aliveIntervalSec: 0, sshOptions: ['-F', '/tmp/x.conf'], ssh: '/usr/bin/ssh', node: '/opt/node/bin/node', dom0Main: '/opt/sfmpi/dist/dom0/main.js' });
  assert.equal(cmd, {
    command: '/usr/bin/ssh',
    args: ['-T', '-x', '-o', 'BatchMode=yes', '-o', 'ConnectTimeout=3', '-l', 'root', '-p', '2222', '-F', '/tmp/x.conf', '--', '10.77.0.2', 'cd -- /work && exec /opt/node/bin/node /opt/sfmpi/dist/dom0/main.js --job j1'],
    env: {},
    stdin: `${encoded}\n`,
  });
  const ssh = spawnSync('ssh', ['-G', ...sshCommand({ host: 'th2', secret, cwd: '/work', port: 2222, user: 'me' }).args], { encoding: 'utf8' });
  if (ssh.error) {
    console.log('  skip: ssh is not installed (apt-get install openssh-client)');
    return;
  }
  assert.is(ssh.status, 0, ssh.stderr);
  for (const line of ['hostname th2', 'user me', 'port 2222', 'batchmode yes', 'connecttimeout 5', 'serveraliveinterval 5', 'serveralivecountmax 3', 'forwardx11 no', 'requesttty false'])
    assert.ok(ssh.stdout.split('\n').includes(line), `ssh -G does not show "${line}"`);
});

test('ssh: bad input is refused before anything runs', () => {
  const base = { host: 'th2', secret, cwd: '/work' };
  const cases: [Parameters<typeof sshCommand>[0], string][] = [
    [{ ...base, host: '-oProxyCommand=sh' }, 'cannot start dom0 on "-oProxyCommand=sh": "-oProxyCommand=sh" is not a host name or an IPv4 address'],
    [{ ...base, host: 'a b' }, 'cannot start dom0 on "a b": "a b" is not a host name or an IPv4 address'],
    [{ ...base, host: 'me@th2' }, 'cannot start dom0 on "me@th2": "me@th2": user@host is not supported (set User in ~/.ssh/config)'],
    [{ ...base, cwd: 'relative/dir' }, 'cwd must be an absolute path, got "relative/dir"'],
    [{ ...base, env: { 'BAD-NAME': 'x' } }, 'environment variable name "BAD-NAME" is not a valid name'],
    [{ ...base, env: { '1X': 'x' } }, 'environment variable name "1X" is not a valid name'],
    [{ ...base, env: { A: 'x\0y' } }, 'environment variable A holds a NUL byte'],
    [{ ...base, env: { [SECRET_ENV]: encoded } }, `${SECRET_ENV} must not be passed in env: the builder places the secret itself`],
    [{ ...base, env: { OTHER: `x${encoded}` } }, 'the job secret must not be on a command line'],
    [{ ...base, args: ['--secret', encoded] }, 'the job secret must not be on a command line'],
    [{ ...base, args: ['a\0b'] }, 'an argument holds a NUL byte'],
    [{ ...base, env: { A: '1' }, node: '/opt/a=b/node' }, 'node\'s path "/opt/a=b/node" contains "=", which env(1) would take for a variable'],
    [{ ...base, user: '-oX' }, 'ssh user "-oX" is not a valid login name'],
    [{ ...base, port: 0 }, 'ssh port must be 1..65535, got 0'],
    [{ ...base, connectTimeoutSec: 0 }, 'connectTimeoutSec must be a positive integer, got 0'],
    [{ ...base, secret: Buffer.alloc(8) }, 'the job secret must be 32 bytes, got 8'],
  ];
  for (const [o, message] of cases)
    assert.throws(
      () => sshCommand(o),
      (e: Error) => e instanceof RangeError && e.message === message,
      message,
    );
  // Without env, a "=" in node's path is harmless: no env(1) in the line.
  assert.match(sshCommand({ ...base, node: '/opt/a=b/node' }).args.at(-1) as string, /^cd -- \/work && exec \/opt\/a=b\/node /);
});

test('srun: one dom0 per node, the secret in the environment, the command exec\'d as given', async () => {
  const fx = fixture();
  try {
    const cmd: Dom0Command = srunCommand({ hosts: ['th2', 'th3', 'node01'], secret, cwd: fx.cwd, env, args: hostile, nodeArgs: ['--no-warnings'], dom0Main: fx.main });
    assert.is(cmd.command, 'srun');
    const options = [
      '--nodes=3',
      '--ntasks=3',
      '--ntasks-per-node=1',
      '--nodelist=th2,th3,node01',
      '--kill-on-bad-exit',
      '--mpi=none',
      '--input=none',
      '--export=ALL',
      `--chdir=${fx.cwd}`,
      '--quiet',
      '--cpu-bind=none',
      '--overlap',
    ];
    assert.equal(cmd.args.slice(0, options.length), options);
    assert.equal(cmd.args.slice(options.length), [process.execPath, '--no-warnings', fx.main, ...hostile]);
    assert.is(cmd.stdin, null);
    assert.equal(cmd.env, { ...env, [SECRET_ENV]: encoded });
    for (const a of cmd.args) assert.not.ok(a.includes(encoded), 'the secret is on the command line');
    // slurmstepd execs the task's argv in --chdir with the exported environment: do the same.
    const [prog, ...rest] = cmd.args.slice(options.length);
    const r = await run(prog, rest, { env: { PATH: process.env.PATH, ...cmd.env }, cwd: fx.cwd });
    assert.is(r.code, 0, r.stderr);
    const got = JSON.parse(r.stdout);
    assert.equal(got.argv, hostile);
    assert.is(got.cwd, fx.cwd);
    assert.equal(got.env, { ...env, [SECRET_ENV]: encoded });
  } finally {
    fx.cleanup();
  }
});

test('srun: options can be turned off or added; the installed srun knows every option', () => {
  const cmd = srunCommand({ hosts: ['a1'], secret, cwd: '/w', cpuBindNone: false, overlap: false, srunOptions: ['--job-name=sfmpi'], srun: '/usr/bin/srun', node: '/n', dom0Main: '/m.js', args: ['x'] });
  assert.equal(cmd.args, [
    '--nodes=1',
    '--ntasks=1',
    '--ntasks-per-node=1',
    '--nodelist=a1',
    '--kill-on-bad-exit',
    '--mpi=none',
    '--input=none',
    '--export=ALL',
    '--chdir=/w',
    '--quiet',
    '--job-name=sfmpi',
    '/n',
    '/m.js',
    'x',
  ]);
  assert.is(cmd.command, '/usr/bin/srun');
  assert.throws(() => srunCommand({ hosts: [], secret, cwd: '/w' }), /srun needs at least one host/);
  assert.throws(() => srunCommand({ hosts: ['th[1-2]'], secret, cwd: '/w' }), /cannot start dom0 on "th\[1-2\]": "th\[1-2\]" is not a host name or an IPv4 address/);
  assert.throws(() => srunCommand({ hosts: ['a'], secret, cwd: '/w', args: [encoded] }), /the job secret must not be on a command line/);

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sfmpi-srunconf-'));
  try {
    // A slurm.conf of our own, so srun never falls back to DNS SRV lookups; `--help` after our
    // options makes srun parse them all (an unknown one is reported) and then stop.
    fs.writeFileSync(path.join(dir, 'slurm.conf'), 'ClusterName=sfmpitest\nSlurmctldHost=localhost\nNodeName=localhost CPUs=1 State=UNKNOWN\nPartitionName=p Nodes=ALL Default=YES\n');
    const full = srunCommand({ hosts: ['th2', 'th3'], secret, cwd: '/work' });
    const optionArgs = full.args.slice(0, full.args.indexOf(process.execPath));
    const r = spawnSync('srun', [...optionArgs, '--bogus-probe', '--help'], { encoding: 'utf8', env: { ...process.env, SLURM_CONF: path.join(dir, 'slurm.conf') }, timeout: deadline(10_000) });
    if (r.error) {
      console.log('  skip: srun is not installed (apt-get install slurm-client)');
      return;
    }
    // The probe proves unknown options are reported; nothing else may be.
    const unknown = (r.stdout + r.stderr).split('\n').filter((l) => /unrecognized option|invalid option/.test(l));
    assert.equal(unknown, ["srun: unrecognized option '--bogus-probe'"]);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('the default dom0 entry point is this package\'s dist/dom0/main.js', () => {
  assert.is(defaultDom0Main(), path.join(root, 'dist', 'dom0', 'main.js'));
  assert.match(sshCommand({ host: 'h', secret, cwd: '/' }).args.at(-1) as string, `exec ${process.execPath} ${path.join(root, 'dist', 'dom0', 'main.js')}`);
});

test.run();
