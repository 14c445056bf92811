// Property: with a dom0 service running on every host (sfmpi-dom0 serve), `sfmpirun --launch
// service` runs jobs across hosts without ssh: right placement, output and exit codes, one job
// after another and after a failed one; the services refuse a launcher with the wrong cluster
// key and garbage on their port, and go on serving; a key file others can read is refused by
// both ends with a message naming it; a host without a service is named; sfmpirun killed takes
// the job's ranks with it while the services stay; nothing of a job is left on any host.
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { root, run, testDir, until, type Ran } from '../helpers.js';
import { hostsAvailable, upHosts, type TestHosts } from '../hosts/testhosts.js';
import { buildLib, compile, csrc, tempDir } from '../mpi-c/helpers.js';
import { mpirun as runIn, nothingLeft, placement, show, type MpirunOptions } from './helpers.js';

const avail = hostsAvailable({ ssh: false, slurm: false });
const service = path.join(root, 'dist', 'dom0', 'service.js');
const tsHello = path.join(testDir, 'cluster', 'fixtures', 'hello.js');
let c: TestHosts | undefined;
let dir = '';
let key = '';
let bins: Record<string, string> = {};
const services: Promise<Ran>[] = [];

function hosts(): TestHosts {
  if (!c) throw new Error('the test hosts are not up');
  return c;
}
const isService = (cmdline: string) => cmdline.includes('dom0/service.js serve');
const left = () => nothingLeft(hosts(), isService);
const mpirun = (args: string[], opts: MpirunOptions = {}) =>
  runIn(hosts(), ['--launch', 'service', ...args], { ...opts, env: { SFMPI_CLUSTER_KEY: key, ...opts.env } });

/** Starts a service in `host`; resolves once it listens (its run is in `services`). */
async function startService(host: string, index: number, keyFile = key): Promise<void> {
  const h = hosts();
  const ran = h.exec(host, process.execPath, [service, 'serve', '--listen', h.addrs[index], '--key', keyFile], { timeoutMs: 600_000 });
  services.push(ran);
  for (let i = 0; i < 100; i++) {
    const ss = await h.exec(host, 'ss', ['-ltnH', 'sport = :7519']);
    if (ss.stdout.includes(':7519')) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`the service on ${host} did not listen within 5 s`);
}

function stopServices(): void {
  const h = hosts();
  for (const x of h.hosts) for (const p of h.processes(x)) if (isService(p.cmdline)) process.kill(p.pid, 'SIGTERM');
}

if (!avail.ok) {
  console.log(`  skipped: test hosts unavailable: ${avail.reason}`);
  test.skip('dom0 services');
} else {
  test.before(async () => {
    await buildLib();
    dir = tempDir('service');
    bins = await compile([path.join(csrc, 'cluster_hello.c'), path.join(csrc, 'failures.c')], dir);
    key = path.join(dir, 'cluster.key');
    const k = await run(process.execPath, [service, 'keygen', '--key', key]);
    assert.is(k.code, 0, k.stderr);
    c = await upHosts({ count: 3, cpus: 3 });
    await Promise.all(hosts().hosts.map((x, i) => startService(x, i)));
  });
  test.after(async () => {
    if (c) stopServices();
    await Promise.all(services);
    await c?.down();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  test('keygen makes a 0600 key; a key others can read is refused by the service and the launcher, naming the file', async () => {
    assert.is(fs.statSync(key).mode & 0o777, 0o600);
    const again = await run(process.execPath, [service, 'keygen', '--key', key]);
    assert.is.not(again.code, 0);
    assert.match(again.stderr, `cluster key ${key} exists already`);
    const loose = path.join(dir, 'loose.key');
    fs.copyFileSync(key, loose);
    fs.chmodSync(loose, 0o644);
    const s = await run(process.execPath, [service, 'serve', '--listen', '127.0.0.1', '--port', '1', '--key', loose]);
    assert.is(s.code, 1, s.stderr);
    assert.match(s.stderr, `cluster key ${loose}: readable by others (mode 0644); chmod 600 ${loose}`);
    const j = await mpirun(['--hostfile', hosts().hostfile, '-n', '4', bins.cluster_hello], { env: { SFMPI_CLUSTER_KEY: loose } });
    assert.is(j.code, 2, show(j));
    assert.match(j.stderr, `sfmpirun: --launch service: cluster key ${loose}: readable by others`);
    const missing = await mpirun(['--hostfile', hosts().hostfile, '-n', '4', bins.cluster_hello], { env: { SFMPI_CLUSTER_KEY: path.join(dir, 'nope') } });
    assert.is(missing.code, 2);
    assert.match(missing.stderr, 'no such file (make one with `sfmpi-dom0 keygen`)');
  });

  for (const [kind, prog] of [['C', () => bins.cluster_hello], ['TypeScript', () => tsHello]] as const) {
    test(`${kind} -n 8 on 3 hosts through the services: placement, stdin to rank 0, output, exit code`, async () => {
      const h = hosts();
      const j = await mpirun(['--hostfile', h.hostfile, '-n', '8', prog(), 'exit', '3'], { input: 'to rank zero\n' });
      assert.is(j.code, 3, show(j));
      const where = placement(j.stdout);
      assert.is(where.size, 8, show(j));
      for (const [r, host] of where) assert.is(host, h.hosts[Math.floor(r / 3)], `rank ${r}`);
      assert.match(j.stdout, /^stdin: to rank zero$/m);
      for (let r = 0; r < 8; r++) assert.match(j.stdout, new RegExp(`^check ${r} ok$`, 'm'), show(j));
      await left();
    });
  }

  test('a failed job (a rank killed by a signal) is reported, and the next job runs', async () => {
    const h = hosts();
    const bad = await mpirun(['--hostfile', h.hostfile, '-n', '8', bins.failures, 'segv', '7']);
    assert.is(bad.code, 139, show(bad));
    assert.match(bad.stderr, 'sfmpirun: rank 7 was killed by signal 11 (SIGSEGV)');
    await left();
    const good = await mpirun(['--hostfile', h.hostfile, '-n', '8', bins.cluster_hello]);
    assert.is(good.code, 0, show(good));
  });

  test('a launcher with the wrong cluster key is refused by every service; garbage on the port too; they go on serving', async () => {
    const h = hosts();
    const wrong = path.join(dir, 'wrong.key');
    fs.rmSync(wrong, { force: true });
    assert.is((await run(process.execPath, [service, 'keygen', '--key', wrong])).code, 0);
    const j = await mpirun(['--hostfile', h.hostfile, '-n', '8', bins.cluster_hello], { env: { SFMPI_CLUSTER_KEY: wrong } });
    assert.is(j.code, 255, show(j));
    assert.match(j.stderr, /sfmpirun: host \w+ \(ranks \d-\d\) could not be reached: dom0 service at [\d.]+:7519: .*the same cluster key on that host\?/, show(j));
    const junk = await h.exec(h.hosts[2], process.execPath, ['-e', `
      const s = require('node:net').connect(7519, '${h.addrs[1]}', () => s.write(Buffer.alloc(4096, 0x41)));
      s.resume(); s.on('close', () => console.log('closed')); s.on('error', () => {}); setTimeout(() => { console.log('still open'); process.exit(); }, 6000);`]);
    assert.match(junk.stdout, /closed/);
    const good = await mpirun(['--hostfile', h.hostfile, '-n', '8', bins.cluster_hello]);
    assert.is(good.code, 0, show(good));
    await left();
  });

  test('sfmpirun killed with SIGKILL: the ranks on every host go, the services stay', async () => {
    const h = hosts();
    const job = mpirun(['--hostfile', h.hostfile, '-n', '8', bins.failures, 'hang'], { timeoutMs: 40_000 });
    const ranks = () => h.hosts.flatMap((x) => h.processes(x).filter((p) => p.comm === 'failures'));
    await until(() => ranks().length === 8, 20_000);
    assert.is(ranks().length, 8);
    const launcher = h.processes(h.hosts[0]).find((p) => p.cmdline.includes('sfmpirun.js'));
    assert.ok(launcher);
    process.kill(launcher.pid, 'SIGKILL');
    await until(() => ranks().length === 0, 15_000);
    assert.equal(ranks().map((p) => p.cmdline), []);
    await job;
    assert.is(h.hosts.filter((x) => h.processes(x).some((p) => isService(p.cmdline))).length, 3, 'a service died with the job');
    await left();
  });

  test('a host without a service is named, and the job ends at once', async () => {
    const h = hosts();
    for (const p of h.processes(h.hosts[2])) if (isService(p.cmdline)) process.kill(p.pid, 'SIGTERM');
    await until(() => !h.processes(h.hosts[2]).some((p) => isService(p.cmdline)), 5000);
    const t0 = Date.now();
    const j = await mpirun(['--hostfile', h.hostfile, '-n', '8', bins.cluster_hello]);
    assert.is(j.code, 255, show(j));
    assert.match(j.stderr, `host ${h.hosts[2]} (ranks 6-7) could not be reached: dom0 service at ${h.addrs[2]}:7519: no dom0 service listens there`, show(j));
    assert.ok(Date.now() - t0 < 10_000);
    await left();
    await startService(h.hosts[2], 2);
  });
}

test.run();
