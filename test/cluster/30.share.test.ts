// Property: state loaded once per cluster (loadOnce) is loaded once, in the origin, and every
// rank on every host sees the origin's value byte for byte: small values from the descriptor,
// the large array as a lazy region over userfaultfd whose pages come from the origin's memory
// server, including ranks forked from a seed that had fetched only part of it; the origin's
// writes after the hand-over are never seen on other hosts; zero pages are never fetched and a
// receive into the region avoids fetching what it overwrites; a seed running another program
// (its file differs on its host) is refused naming both hashes; a memory server killed mid-run
// fails the job within seconds naming the region and the page; nothing is left on any host.
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { testDir, until } from '../helpers.js';
import { hostsAvailable, upHosts, type TestHosts } from '../hosts/testhosts.js';
import { tempDir } from '../mpi-c/helpers.js';
import { lazyAvailable } from '../../xen/lazy.js';
import { mpirun as runIn, nothingLeft, show, type MpirunOptions } from './helpers.js';

const avail = hostsAvailable({ ssh: true });
const lazy = lazyAvailable();
const fixture = path.join(testDir, 'cluster', 'fixtures', 'share.js');
let c: TestHosts | undefined;
let dir = '';

function hosts(): TestHosts {
  if (!c) throw new Error('the test hosts are not up');
  return c;
}
// Working sets go to the test's folder (not the user's cache), and only where a test asks for them.
const mpirun = (args: string[], opts: MpirunOptions = {}) =>
  runIn(hosts(), ['--hostfile', hosts().hostfile, '-n', '8', ...args], { timeoutMs: 120_000, ...opts, env: { SFMPI_PREFETCH: '0', SFMPI_WORKING_SETS: path.join(dir, 'ws'), ...opts.env } });
const counters = (stdout: string, what: 'lazy' | 'server') =>
  [...stdout.matchAll(new RegExp(`^${what} (?:(\\d+) )?(\\{.*\\})$`, 'gm'))].map((m) => ({ rank: Number(m[1] ?? -1), c: JSON.parse(m[2]) }));

if (!avail.ok || !lazy.ok) {
  console.log(`  skipped: ${!avail.ok ? `test hosts unavailable: ${avail.reason}` : `lazy regions unavailable: ${lazy.reason}`}`);
  test.skip('state loaded once across hosts');
} else {
  test.before(async () => {
    dir = tempDir('share');
    c = await upHosts({ count: 3, ssh: true, cpus: 3 });
  });
  test.after(async () => {
    await c?.down();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  test('loaded once in the origin, the same value in all 8 ranks on 3 hosts; zero pages never fetched, overwritten pages avoided', async () => {
    const log = path.join(dir, 'loads');
    const j = await mpirun([fixture, log, 'half', 'recv']);
    assert.is(j.code, 0, show(j));
    for (let r = 0; r < 8; r++) assert.match(j.stdout, new RegExp(`^check ${r} ok$`, 'm'), show(j));
    assert.equal(fs.readFileSync(log, 'utf8').trim().split('\n'), [`loaded on ${hosts().hosts[0]}`], 'the loader ran elsewhere than in the origin');
    const [server] = counters(j.stdout, 'server');
    assert.ok(server, show(j));
    const region = server.c.regions[0];
    assert.is(region.zeroPages, 0, 'zero pages were asked for: they are in the zero map');
    // Each of the 2 seed hosts fetches each of the 4096 data pages at most once (a page cache per host).
    assert.ok(region.sent > 0 && region.sent <= 2 * 4096, `pages sent: ${region.sent}`);
    const lazyCounters = counters(j.stdout, 'lazy');
    assert.equal(lazyCounters.map((x) => x.rank).sort(), [3, 6], show(j));
    assert.ok(lazyCounters.find((x) => x.rank === 3)!.c.avoided >= 64, `rank 3 avoided ${JSON.stringify(lazyCounters)}`);
    for (const x of lazyCounters) assert.ok(x.c.fetched + x.c.prefetched + x.c.zeroFilled + x.c.avoided >= 8192 - 64, JSON.stringify(x));
    await nothingLeft(hosts());
  });

  test('a second run of the same job gets the working set the first recorded, fetched ahead of its faults', async () => {
    const env = { SFMPI_PREFETCH: '1' };
    const first = await mpirun([fixture, path.join(dir, 'loads-ws')], { env });
    assert.is(first.code, 0, show(first));
    assert.is(fs.readdirSync(path.join(dir, 'ws')).filter((f) => f.endsWith('.ws')).length, 2, 'one working set per seed host');
    const again = await mpirun([fixture, path.join(dir, 'loads-ws')], { env });
    assert.is(again.code, 0, show(again));
    for (let r = 0; r < 8; r++) assert.match(again.stdout, new RegExp(`^check ${r} ok$`, 'm'), show(again));
    const lazyCounters = counters(again.stdout, 'lazy');
    assert.is(lazyCounters.length, 2, show(again));
    for (const x of lazyCounters) assert.ok(x.c.prefetched > 1000, `nothing prefetched on rank ${x.rank}'s host: ${JSON.stringify(x.c)}`);
    await nothingLeft(hosts());
  });

  test('a seed whose program differs from the origin\'s is refused naming both hashes', async () => {
    const h = hosts();
    const other = path.join(dir, 'share-other.js');
    fs.writeFileSync(other, `${fs.readFileSync(fixture, 'utf8')}\n// another build\n`);
    const mount = await h.exec(h.hosts[2], 'mount', ['--bind', other, fixture]);
    assert.is(mount.code, 0, mount.stderr);
    try {
      const j = await mpirun([fixture, path.join(dir, 'loads2')]);
      assert.is.not(j.code, 0, show(j));
      assert.match(j.stderr, /loadOnce \(grid\): state 1 from the origin's host was refused: .*sha256/, show(j));
      assert.match(j.stderr, fixture, show(j));
    } finally {
      await h.exec(h.hosts[2], 'umount', [fixture]);
    }
    await nothingLeft(h);
  });

  test('the memory server killed mid-run ends the job within seconds, naming the region and the page', async () => {
    const h = hosts();
    let killed = 0;
    const run = mpirun([fixture, path.join(dir, 'loads3'), 'slow'], { timeoutMs: 60_000 });
    await until(() => {
      const server = h.processes(h.hosts[0]).find((p) => p.comm === 'sfmpi-memsrv');
      const ranks = h.processes(h.hosts[2]).filter((p) => p.cmdline.includes('share.js'));
      if (server && ranks.length === 2) {
        killed = Date.now();
        process.kill(server.pid, 'SIGKILL');
      }
      return killed > 0;
    }, 30_000);
    assert.ok(killed, 'no memory server seen');
    const j = await run;
    assert.is.not(j.code, 0, show(j));
    assert.match(j.stderr, /region \d+.*page \d+/, show(j));
    assert.ok(Date.now() - killed < 20_000, `took ${Date.now() - killed} ms`);
    await nothingLeft(h);
  });
}

test.run();
