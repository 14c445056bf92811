// Property: a seed (a separate node process) that maps an origin's regions lazily over real
// loopback TCP, authenticated by the real handshake, sees them byte for byte as they were at the
// origin's fork point, never its later writes; fetches no zero page and no page it overwrites
// whole (the server's own counters say so); clones forked from a half-fetched seed see every
// page right; a dead or silent server ends the seed within seconds with an error naming the
// region, the page and the server; and no process is left. Real fork, real userfaultfd.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { lazyAvailable } from '../../xen/lazy.js';
import { alive, processesMatching, until } from '../helpers.js';
import { dataPagesA, PAGE } from './fixtures/pattern.js';
import { fixtures, Origin, seed } from './helpers.js';

const uffd = lazyAvailable();
if (!uffd.ok) console.log(`SKIP lazy-region tests: ${uffd.reason}`);
const it = uffd.ok ? test : test.skip;
const MIB = 128;
const PAGES = (MIB << 20) / PAGE;

let origin: Origin;
test.before(async () => {
  if (uffd.ok) origin = await Origin.start(MIB);
});
test.after(async () => {
  if (!origin) return;
  const server = origin.info.serverPid;
  assert.is(await origin.close(), 0);
  assert.is(alive(server), false, 'the memory server ended with its origin');
  assert.equal(processesMatching(fixtures), [], 'no origin, seed or clone left');
});

it('a seed sees the snapshot byte for byte, never the origin\'s later writes; zero and overwritten pages are never fetched', async () => {
  const before = await origin.counters();
  const ran = await seed('verify', origin.config());
  assert.is(ran.code, 0, ran.stderr);
  const r = ran.result;
  assert.equal(r.check, { bad: 0, first: [] }, 'region 1 page by page');
  for (const [i, id] of [1, 2, 3].entries()) {
    const o = origin.region(id);
    assert.is(r.shas[i], o.sha, `region ${id} is the snapshot`);
    assert.is.not(o.liveSha, o.sha, `region ${id} was overwritten after the snapshot (so this test can fail)`);
  }
  const after = await origin.counters();
  const sent = (id: number) => after.regions.find((x) => x.id === id)!.sent - before.regions.find((x) => x.id === id)!.sent;
  const hinted = dataPagesA(r.h0, r.h1);
  assert.ok(hinted > 1000, 'the hint covers many data pages');
  assert.is(r.avoided, hinted, 'every hinted data page was installed without a fetch');
  assert.is(sent(1), dataPagesA(0, PAGES) - hinted, 'region 1: each data page sent once; no zero page, no overwritten page');
  assert.is(sent(2), 2048, 'region 2: its half of data, not its never-touched half');
  assert.is(sent(3), 1536, 'region 3: its 6 MiB of data, not its zeros');
  const c1 = r.counters['1'];
  assert.is(c1.fetched, sent(1), "the seed's count agrees with the server's");
  assert.is(c1.zeroFilled, PAGES - dataPagesA(0, PAGES), 'every zero page filled locally (hinted ones too, known zero: on their write)');
  assert.ok(c1.requests < c1.fetched / 8, `read-ahead batches a sequential scan (${c1.requests} requests for ${c1.fetched} pages)`);
});

it('without a zero map, over one shared connection: the same contents, and zero pages still cost no bytes', async () => {
  const before = await origin.counters();
  const ran = await seed('verify', origin.config({ useZeroMap: false, share: true }));
  assert.is(ran.code, 0, ran.stderr);
  assert.equal(ran.result.check, { bad: 0, first: [] });
  assert.equal(ran.result.shas, [1, 2, 3].map((id) => origin.region(id).sha));
  const after = await origin.counters();
  assert.is(after.connections - before.connections, 1, 'one connection for three regions');
  const d = (id: number, k: 'sent' | 'zeroPages') => after.regions.find((x) => x.id === id)![k] - before.regions.find((x) => x.id === id)![k];
  assert.is(d(2, 'sent'), 2048);
  assert.ok(d(2, 'zeroPages') > 0, 'zero pages answered by a bit');
  assert.is(ran.result.avoided, ran.result.h1 - ran.result.h0, 'no zero map: every hinted page is avoided');
  assert.is(d(1, 'sent'), dataPagesA(0, PAGES) - dataPagesA(ran.result.h0, ran.result.h1), 'and none of them is fetched');
});

it('clones forked from a half-fetched seed see every page right, and their writes stay their own', async () => {
  const ran = await seed('fork', origin.config());
  assert.is(ran.code, 0, ran.stderr);
  const r = ran.result;
  assert.equal(r.half, { bad: 0, first: [] });
  assert.ok(r.before.cached > 0 && r.before.cached < r.before.pages, 'the seed held part of the region when it forked');
  assert.equal(r.first.map((o: any) => [o.ok, o.value]), [[true, { own: true, avoided: dataPagesA(PAGES / 2 + 100, PAGES / 2 + 200), bad: 0 }]], 'clone 1 sees its writes and the snapshot elsewhere; its hint avoided every missing data page');
  assert.equal(r.second.map((o: any) => [o.ok, o.value.bad]), [[true, 0], [true, 0]], 'clones forked later see the snapshot, not clone 1\'s writes');
  assert.equal(r.seed, { bad: 0, first: [] }, 'and so does the seed');
  assert.is(r.after.clones, 3);
  assert.ok(r.after.cloneFaults > 0, 'the clones were served by the seed\'s handler');
  assert.is(r.after.fetched, dataPagesA(0, PAGES), 'each page fetched once for the host, whoever touched it first');
});

it('read-ahead adapts to a scattered touch; a working-set list makes a later seed fetch ahead and not fault', async () => {
  const one = await seed('sparse', origin.config());
  assert.is(one.code, 0, one.stderr);
  const s = one.result;
  assert.is(s.bad, 0);
  assert.ok(s.counters.fetched <= s.data * 1.15, `scattered 10 %: ${s.counters.fetched} pages fetched for ${s.data} data pages touched`);
  const two = await seed('replay', origin.config({ list: s.list }));
  assert.is(two.code, 0, two.stderr);
  const r = two.result;
  assert.is(r.bad, 0);
  assert.is(r.pending, 0, 'the list was fetched in full');
  assert.is(r.ahead.prefetched, s.counters.fetched, 'the working set came ahead of the touches');
  assert.is(r.counters.fetched, 0, 'no touch had to wait for a fetch');
  assert.is(r.counters.faults, 0, 'no touch faulted at all: the zero pages came ahead too');
  assert.is(r.counters.prefetched + r.counters.fetched, s.counters.fetched, 'nothing fetched twice');
});

it('pages installed as if received by multicast are there without a fault, once', async () => {
  const ran = await seed('install', origin.config());
  assert.is(ran.code, 0, ran.stderr);
  const r = ran.result;
  assert.is(r.installed, 16);
  assert.is(r.again, 0, 'already present: nothing installed');
  assert.equal(r.check, { bad: 0, first: [] });
  assert.is(r.counters.multicast, 16);
  assert.is(r.counters.faults, 0);
  assert.is(r.error, 'installPages: region 99 is not mapped here');
});

it('a lazy region\'s mapping and page cache go when its buffer is collected, or when it is closed', async () => {
  const ran = await seed('gc', origin.config());
  assert.is(ran.code, 0, ran.stderr);
  const r = ran.result;
  assert.equal(r.mapped, [1, 1], 'mapped: one view of one memfd');
  assert.equal(r.collected, [0, 0], 'collected: unmapped and closed');
  assert.equal(r.reopened, [1, 1]);
  assert.equal(r.closed, [0, 0], 'closed explicitly');
});

it('bad specs are refused with messages that name the problem', async () => {
  const ran = await seed('errors', origin.config());
  assert.is(ran.code, 0, ran.stderr);
  const e = ran.result;
  const len = origin.region(1).length;
  assert.match(e.pageSize, /lazy region 1: page size 16384 differs from this host's 4096/);
  assert.match(e.zeroMap, new RegExp(`lazy region 1: zero map of 3 bytes, ${PAGES / 8} expected for ${PAGES} pages`));
  assert.match(e.length, new RegExp(`lazy region 1: the memory server 127\\.0\\.0\\.1:\\d+ has ${len} bytes in pages of 4096, the descriptor says 4096`));
  assert.match(e.region, /lazy region 77: the memory server 127\.0\.0\.1:\d+ refused: no such region/);
  assert.match(e.notSocket, /fd \d+ is not a connected stream socket/);
  assert.match(e.twice, /lazy region 1 is mapped already/);
  assert.match(e.hintOutside, /RangeError: LazyRegion.hintOverwrite: bytes \d+\+20 lie outside the region's/);
  assert.match(e.hintForeign, /the view is not over lazy region 1/);
  assert.match(e.inClone, /a clone forked from it cannot map lazy regions of its own/);
  assert.is(e.closed, 'true 0', 'close detaches the buffer');
  assert.match(e.afterClose, /lazy region 1 was closed/);
});

it('a memory server killed mid-run ends the seed within seconds, naming region, page and server', async () => {
  const t = await failingSeed('kill-server', {});
  assert.is(t.ran.code, 75, t.ran.stderr);
  assert.match(t.ran.stderr, unavailable('(the server closed the connection|Connection reset by peer)'));
  assert.ok(t.ms < 5000, `ended ${Math.round(t.ms)} ms after the kill`);
  origin = await restart();
});

it('a server that stops answering ends the seed after the fetch deadline, never a hang', async () => {
  const t = await failingSeed('stop-server', { timeoutMs: 1000 });
  assert.is(t.ran.code, 75, t.ran.stderr);
  assert.match(t.ran.stderr, unavailable('no reply within 1000 ms \\(connection timed out\\)'));
  assert.ok(t.ms < 5000, `ended ${Math.round(t.ms)} ms after the server stopped`);
  await origin.command('cont-server', 'OK');
});

it('the memory server dies with its origin', async () => {
  const o = await Origin.start(8);
  const server = o.info.serverPid;
  assert.ok(alive(server));
  process.kill(o.pid, 'SIGKILL');
  assert.ok(await until(() => !alive(server), 3000), 'PR_SET_PDEATHSIG ended the server');
  await o.close();
});

/** The line of a process that touched a page nobody could serve, with `cause`. */
const unavailable = (cause: string) =>
  new RegExp(`sfmpi: lazy region 1: page \\d+ of ${PAGES} could not be fetched from the memory server 127\\.0\\.0\\.1:\\d+: ${cause}; process \\d+ cannot continue \\(exit 75\\)`);

/** Runs a slow seed; once it has touched 1024 pages, sends `cmd` to the origin. */
async function failingSeed(cmd: string, extra: Record<string, unknown>) {
  let sentAt = 0;
  let sending: Promise<unknown> = Promise.resolve();
  const ran = await seed('slow', origin.config({ readAhead: 1, ...extra }), {
    timeoutMs: 60_000,
    onSpawn: (_pid, stdout) => {
      const timer = setInterval(() => {
        const m = [...stdout().matchAll(/PROGRESS (\d+)/g)].pop();
        if (m && Number(m[1]) >= 1024) {
          clearInterval(timer);
          sentAt = performance.now();
          sending = origin.command(cmd, 'OK');
        }
      }, 10);
    },
  });
  const endedAt = performance.now();
  await sending;
  assert.ok(sentAt > 0, `the seed never got going: ${ran.stderr}`);
  assert.ok(ran.result === undefined, 'the seed did not finish its touch');
  return { ran, ms: endedAt - sentAt };
}

/** A fresh origin after its server was killed (the old one closes cleanly regardless). */
async function restart(): Promise<Origin> {
  const old = origin;
  const server = old.info.serverPid;
  assert.is(await old.close(), 0);
  assert.ok(await until(() => !alive(server), 2000));
  return Origin.start(MIB);
}

test.run();
