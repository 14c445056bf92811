// Property: with multicast distribution (SFMPI_DISTRIBUTION=multicast), state loaded once and
// read whole by three seeds on one segment costs about what one seed costs: the memory server
// sends by unicast, to all seeds together, at most 1.3x the region's data pages (the rest reach
// each seed by multicast and are installed into its host's page cache, or are answered "on
// their way" when seeds fault in lockstep); every rank still reads the origin's bytes; datagrams
// under a key other than the job's are dropped and counted by every receiver, and install
// nothing; a seed behind a lossy link (its bridge port limited to 25 MB/s, so most datagrams to
// it are dropped) still reads every byte right: pages answered "on their way" that never come
// are fetched by unicast after a short wait; unicast (the default) on the same job sends the
// region once per seed. Nothing is left on any host. Four test hosts: the origin's and three
// seeds', one rank each.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { testDir } from '../helpers.js';
import { hostsAvailable, upHosts, type TestHosts } from '../hosts/testhosts.js';
import { tempDir } from '../mpi-c/helpers.js';
import { lazyAvailable } from '../../xen/lazy.js';
import { mpirun as runIn, nothingLeft, show, type MpirunOptions } from './helpers.js';

const avail = hostsAvailable({ ssh: true });
const lazy = lazyAvailable();
const fixture = path.join(testDir, 'cluster', 'fixtures', 'mcast-share.js');
const PAGES = 16384; // 64 MiB, every page data
let c: TestHosts | undefined;
let dir = '';

function hosts(): TestHosts {
  if (!c) throw new Error('the test hosts are not up');
  return c;
}
const mpirun = (args: string[], opts: MpirunOptions = {}) =>
  runIn(hosts(), ['--hostfile', hosts().hostfile, '-n', '4', ...args], { timeoutMs: 60_000, ...opts, env: { SFMPI_PREFETCH: '0', ...opts.env } });
const lines = (stdout: string, what: 'lazy' | 'mcast' | 'server') =>
  [...stdout.matchAll(new RegExp(`^${what} (?:(\\d+) )?(\\{.*\\}|null)$`, 'gm'))].map((m) => ({ rank: Number(m[1] ?? -1), c: JSON.parse(m[2]) }));

if (!avail.ok || !lazy.ok) {
  console.log(`  skipped: ${!avail.ok ? `test hosts unavailable: ${avail.reason}` : `lazy regions unavailable: ${lazy.reason}`}`);
  test.skip('multicast distribution of lazy regions');
} else {
  test.before(async () => {
    dir = tempDir('mcast-share');
    c = await upHosts({ count: 4, ssh: true, cpus: 1 });
  });
  test.after(async () => {
    await c?.down();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  test('three seeds reading 64 MiB whole: unicast at most 1.3x the data pages, the rest by multicast; forged datagrams dropped and counted', async () => {
    const log = path.join(dir, 'loads');
    const j = await mpirun([fixture, log, 'forge'], { env: { SFMPI_DISTRIBUTION: 'multicast' } });
    assert.is(j.code, 0, show(j));
    for (let r = 0; r < 4; r++) assert.match(j.stdout, new RegExp(`^check ${r} ok$`, 'm'), show(j));
    assert.equal(fs.readFileSync(log, 'utf8').trim().split('\n'), [`loaded on ${hosts().hosts[0]}`], 'the loader ran elsewhere than in the origin');
    const [server] = lines(j.stdout, 'server');
    assert.ok(server, show(j));
    assert.is(server.c.multicast.state, 'on', JSON.stringify(server.c.multicast));
    const region = server.c.regions[0];
    assert.ok(region.sent <= 1.3 * PAGES, `pages sent by unicast to 3 seeds: ${region.sent}, more than 1.3 x ${PAGES} (${JSON.stringify(region)})`);
    assert.ok(region.multicast > 0, JSON.stringify(region));
    const seeds = lines(j.stdout, 'lazy');
    assert.equal(seeds.map((x) => x.rank).sort(), [1, 2, 3], show(j));
    let byMulticast = 0;
    for (const x of seeds) {
      // Every page reached every seed one way or the other, and nothing twice into its page cache.
      assert.ok(x.c.fetched + x.c.multicast >= PAGES, `rank ${x.rank}: ${JSON.stringify(x.c)}`);
      assert.is(x.c.cached, PAGES, `rank ${x.rank}: ${JSON.stringify(x.c)}`);
      byMulticast += x.c.multicast;
    }
    assert.ok(byMulticast >= 3 * PAGES - 1.3 * PAGES, `pages installed from multicast on the 3 seeds: ${byMulticast}`);
    const rx = lines(j.stdout, 'mcast');
    assert.is(rx.length, 3, show(j));
    for (const x of rx) {
      assert.is(x.c.error, '', `rank ${x.rank}'s receiver stopped: ${x.c.error}`);
      // Three forged datagrams from each of the two other seeds at least (its own may loop back too).
      assert.ok(x.c.forged >= 6, `rank ${x.rank} counted ${x.c.forged} forged datagrams: ${JSON.stringify(x.c)}`);
      assert.ok(x.c.dropped >= x.c.forged, JSON.stringify(x.c));
    }
    await nothingLeft(hosts());
  });

  test('a seed behind a lossy link still gets every page: what multicast loses comes by unicast', async () => {
    const h = hosts();
    // This kernel has no netem; tbf drops what it cannot queue: multicast at up to 400 MB/s
    // overflows it, TCP slows down to it.
    const port = `${h.prefix}v4`;
    const tc = spawnSync('tc', ['qdisc', 'add', 'dev', port, 'root', 'tbf', 'rate', '200mbit', 'burst', '32kb', 'limit', '128kb'], { encoding: 'utf8' });
    assert.is(tc.status, 0, `tc qdisc add dev ${port}: ${tc.stderr}`);
    try {
      const j = await mpirun([fixture, path.join(dir, 'loads-l')], { env: { SFMPI_DISTRIBUTION: 'multicast' } });
      assert.is(j.code, 0, show(j));
      for (let r = 0; r < 4; r++) assert.match(j.stdout, new RegExp(`^check ${r} ok$`, 'm'), show(j));
      const rank = Number(new RegExp(`^host (\\d+) ${h.hosts[3]}$`, 'm').exec(j.stdout)?.[1]);
      const lossy = lines(j.stdout, 'mcast').find((x) => x.rank === rank)!;
      const seed = lines(j.stdout, 'lazy').find((x) => x.rank === rank)!;
      assert.ok(lossy && seed, `no counters of ${h.hosts[3]}'s seed: ${show(j)}`);
      assert.ok(lossy.c.gaps + lossy.c.overflow > 0, `the seed behind the slow port lost nothing, so this test cannot fail: ${JSON.stringify(lossy.c)}`);
      assert.is(seed.c.cached, PAGES, JSON.stringify(seed.c));
      assert.ok(seed.c.fetched + seed.c.multicast >= PAGES, JSON.stringify(seed.c));
    } finally {
      spawnSync('tc', ['qdisc', 'del', 'dev', port, 'root']);
    }
    await nothingLeft(h);
  });

  test('unicast, the default: the same job sends the region once per seed, nothing to the group', async () => {
    const j = await mpirun([fixture, path.join(dir, 'loads-u')]);
    assert.is(j.code, 0, show(j));
    for (let r = 0; r < 4; r++) assert.match(j.stdout, new RegExp(`^check ${r} ok$`, 'm'), show(j));
    const [server] = lines(j.stdout, 'server');
    assert.is(server.c.multicast.state, 'off', JSON.stringify(server.c.multicast));
    assert.is(server.c.regions[0].sent, 3 * PAGES, JSON.stringify(server.c.regions[0]));
    assert.is(server.c.regions[0].multicast, 0);
    for (const x of lines(j.stdout, 'mcast')) assert.is(x.c, null, `rank ${x.rank} has a receiver`);
    await nothingLeft(hosts());
  });
}

test.run();
