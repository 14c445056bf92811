// Property: SnowFlock's API across hosts, outside MPI (`sfnode --hostfile ...`, or inside a
// Slurm allocation): requestTicket(n) places clones on the hosts' slots, each host admitting its
// part, and grants m <= n when the hosts have fewer (saying so); clone(ticket, state) returns each
// clone's id on its host, and a clone on another host (forked from a seed that re-ran the program
// to the clone point) sees the origin's state byte for byte, not the seed's own (a lazy region,
// a small typed array, nested values); join reports a remote clone's exit(value), exit code and
// signal as on one host; kill reaches remote clones; a crashed host's clones come back from join
// as lost, naming the host; and after every run nothing is left on any host. Real sshd, real
// Slurm, real TCP, on test hosts (test/hosts).
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { root, run as runHere, testDir, until } from '../helpers.js';
import { hostsAvailable, upHosts, type TestHosts } from '../hosts/testhosts.js';
import { lazyAvailable } from '../../xen/lazy.js';
import { nothingLeft, show } from './helpers.js';

const avail = hostsAvailable({ ssh: true, slurm: true });
const lazy = lazyAvailable();
const sfnode = path.join(root, 'dist', 'mpi-compat', 'launcher', 'sfnode.js');
const fixture = path.join(testDir, 'cluster', 'fixtures', 'sfnode.js');
let c: TestHosts | undefined;

function hosts(): TestHosts {
  if (!c) throw new Error('the test hosts are not up');
  return c;
}

/** sfnode typed on the first host; `slurm`: inside `salloc -N 3 -n 6` instead of --hostfile. */
function run(mode: string, n: number, opts: { slurm?: boolean; onSpawn?: (pid: number) => void; gone?: string; verbose?: boolean } = {}) {
  const h = hosts();
  const args = [sfnode, ...(opts.verbose ? ['-v'] : []), ...(opts.slurm ? [] : ['--hostfile', h.hostfile]), fixture, mode, String(n), ...(opts.gone ? [opts.gone] : [])];
  const env = { SFMPI_PREFETCH: '0' };
  if (opts.slurm) return h.exec(h.hosts[0], 'salloc', ['-N', '3', '-n', '6', '--quiet', process.execPath, ...args], { timeoutMs: 90_000, env });
  return h.exec(h.hosts[0], process.execPath, args, { timeoutMs: 90_000, env, onSpawn: opts.onSpawn });
}

const outcomes = (stdout: string) => [...stdout.matchAll(/^outcome (\{.*\})$/gm)].map((m) => JSON.parse(m[1]));
const placement = (stdout: string) => JSON.parse(/^placement (.*)$/m.exec(stdout)?.[1] ?? '[]') as { host: string; ids: number[] }[];

test('sfnode: bad options and host lists are refused with a message naming them, exit 2', async () => {
  for (const [args, msg] of [
    [['--launch', 'rsh', fixture], 'sfnode: --launch rsh: ssh or slurm'],
    [['--host', 'a:x', fixture], 'sfnode: --host: "a:x": slots must be a positive integer'],
    [['--timeout', '-1', fixture], 'sfnode: --timeout -1: a positive number of seconds'],
    [['--bogus', fixture], 'sfnode: unknown option --bogus'],
    [['--host', 'a:2'], 'sfnode: no program given'],
  ] as const) {
    const r = await runHere(process.execPath, [sfnode, ...args]);
    assert.is(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.is(r.stderr.trim(), msg);
  }
});

if (!avail.ok || !lazy.ok) {
  console.log(`  skipped: ${!avail.ok ? `test hosts unavailable: ${avail.reason}` : `lazy regions unavailable: ${lazy.reason}`}`);
  test.skip('SnowFlock API across hosts');
} else {
  test.before(async () => {
    c = await upHosts({ count: 3, ssh: true, slurm: true, cpus: 2 });
  });
  test.after(async () => {
    await c?.down();
  });

  for (const slurm of [false, true]) {
    test(`requestTicket(5) on 3 hosts of 2 slots (${slurm ? 'inside salloc, srun' : 'hostfile + ssh'}): placed on every host, each remote clone sees the origin's state byte for byte`, async () => {
      const h = hosts();
      const j = await run('values', 5, { slurm });
      assert.is(j.code, 0, show(j));
      assert.match(j.stdout, /^grant 5 of 5$/m, show(j));
      // The origin's host keeps one slot for the origin: 1 clone there, 2 on each other host.
      assert.equal(placement(j.stdout), [{ host: h.hosts[0], ids: [1] }, { host: h.hosts[1], ids: [2, 3] }, { host: h.hosts[2], ids: [4, 5] }], show(j));
      const where = ['', h.hosts[0], h.hosts[1], h.hosts[1], h.hosts[2], h.hosts[2]];
      for (let id = 1; id <= 5; id++) assert.match(j.stdout, new RegExp(`^clone ${id} on ${where[id]} state ok$`, 'm'), show(j));
      assert.match(j.stdout, /^joinSync refused ERR_REMOTE_CLONES$/m, show(j));
      assert.match(j.stdout, /^done$/m);
      await nothingLeft(h);
    });
  }

  test('requestTicket(9) where 5 slots are free: a grant of 5, said so, and all 5 clones run', async () => {
    const j = await run('values', 9);
    assert.is(j.code, 0, show(j));
    assert.match(j.stdout, /^grant 5 of 9$/m, show(j));
    for (let id = 1; id <= 5; id++) assert.match(j.stdout, new RegExp(`^clone ${id} on \\S+ state ok$`, 'm'), show(j));
    await nothingLeft(hosts());
  });

  test('a host whose seed ended before the ticket gives no slot: the grant is smaller and says where', async () => {
    const h = hosts();
    const j = await run('values', 5, { gone: h.hosts[2] });
    assert.is(j.code, 0, show(j));
    assert.match(j.stdout, /^grant 3 of 5$/m, show(j));
    assert.equal(placement(j.stdout), [{ host: h.hosts[0], ids: [1] }, { host: h.hosts[1], ids: [2, 3] }], show(j));
    for (let id = 1; id <= 3; id++) assert.match(j.stdout, new RegExp(`^clone ${id} on \\S+ state ok$`, 'm'), show(j));
    await nothingLeft(h);
  });

  test('requestTicket(2): only the hosts it needs; the third host\'s seed ends without a clone; -v lines are sfnode\'s', async () => {
    const h = hosts();
    const j = await run('values', 2, { verbose: true });
    assert.is(j.code, 0, show(j));
    assert.match(j.stderr, /^sfnode: job of \d+ ranks on 3 hosts ended after /m, show(j));
    assert.not.match(j.stderr, /^sfmpirun:/m, show(j));
    assert.equal(placement(j.stdout), [{ host: h.hosts[0], ids: [1] }, { host: h.hosts[1], ids: [2] }], show(j));
    await nothingLeft(h);
  });

  test("join: a remote clone's exit code and signal, and exit(value)s, as on one host", async () => {
    const h = hosts();
    const j = await run('ends', 5);
    assert.is(j.code, 0, show(j));
    const o = outcomes(j.stdout);
    assert.is(o.length, 5, show(j));
    assert.equal(o[4], { id: 5, ok: false, code: 7, signal: null, reason: 'clone 5 exited with code 7' });
    assert.equal(o[3], { id: 4, ok: false, code: null, signal: 'SIGSEGV', reason: 'clone 4 killed by signal SIGSEGV' });
    for (const [i, host] of [[0, h.hosts[0]], [1, h.hosts[1]], [2, h.hosts[1]]] as const)
      assert.equal(o[i], { id: i + 1, ok: true, code: 0, signal: null, value: { host } }, show(j));
    await nothingLeft(h);
  });

  test('kill: SIGKILL and SIGTERM reach clones on other hosts; join reports them', async () => {
    const j = await run('kill', 5);
    assert.is(j.code, 0, show(j));
    assert.match(j.stdout, /^sent 5$/m, show(j));
    const o = outcomes(j.stdout);
    assert.equal(o[4], { id: 5, ok: false, code: null, signal: 'SIGKILL', reason: 'clone 5 killed by signal SIGKILL' }, show(j));
    // SIGTERM runs each clone's handler, which exits 0, or (if it came before the handler was
    // installed) ends the clone by SIGTERM: either way it arrived (else join would never end).
    for (let i = 0; i < 4; i++) {
      const term = { id: i + 1, ok: false, code: null, signal: 'SIGTERM', reason: `clone ${i + 1} killed by signal SIGTERM` };
      assert.ok(o[i].ok ? o[i].code === 0 && o[i].signal === null : JSON.stringify(o[i]) === JSON.stringify(term), `${JSON.stringify(o[i])}\n${show(j)}`);
    }
    await nothingLeft(hosts());
  });

  // Last: the crashed host stays down.
  test("a crashed host: join reports its clones as lost, naming the host; the run ends; nothing left", async () => {
    const h = hosts();
    const job = run('lost', 5);
    // The seed and its two clones are up on the last host.
    const up = await until(() => h.processes(h.hosts[2]).filter((p) => p.cmdline.includes('sfnode.js lost')).length >= 3, 30_000);
    assert.ok(up, 'the clones on the last host did not start');
    await h.kill(h.hosts[2]);
    const j = await job;
    const o = outcomes(j.stdout);
    assert.is(o.length, 5, show(j));
    for (const id of [4, 5]) {
      assert.is(o[id - 1].ok, false, show(j));
      assert.match(o[id - 1].reason, new RegExp(`^clone ${id} was lost with host ${h.hosts[2]}: `), show(j));
    }
    for (let i = 0; i < 3; i++) assert.is(o[i].ok, true, show(j));
    assert.match(j.stderr, new RegExp(`^sfnode: host ${h.hosts[2]} [a-z]`, 'm'), show(j));
    assert.is(j.code, 255, show(j));
    await nothingLeft(h); // the crashed host has no process at all
  });
}

test.run();
