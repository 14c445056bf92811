/**
 * Multicast distribution against N unicast TCP streams, on test hosts made on this machine
 * (test/hosts: network namespaces on a bridge, MTU 1500). Host 1 holds a region (256 MiB by
 * default); every other host is a seed that wants all of it:
 *
 *   multicast  the sfmcast sender pushes the region once to the group (paced, UDP GSO, flow
 *              control from the receivers' loss reports), each receiver installs it into an
 *              ArrayBuffer and fetches what it missed by unicast TCP (the end game); timed from
 *              the first datagram to the last receiver holding every page
 *   unicast    each seed fetches the whole region over its own TCP connection from the same
 *              host, all at once; timed from the common start to the last one done
 *
 * on 2 and 4 hosts (1 and 3 seeds). Drivers interleave (A B A B ...) for BENCH_ROUNDS rounds
 * (5 by default); cells are "median (minimum)" of this run. Every receiver's region is checked
 * against the origin's SHA-256. Loss is the share of pages a receiver still missed after the
 * multicast pass (the worst receiver of a run), and what the end game fetched. The last lines
 * say what chooseDistribution (xen/mcast.ts) picks for these jobs, with the defaults and with
 * the rates measured here.
 *
 * Run under the heavy-work lock: flock -w 900 /tmp/sfmpi-heavy.lock timeout 900 npm run bench:mcast
 * Settings: BENCH_MCAST_MIB (256; up to 1024), BENCH_ROUNDS (5), BENCH_MCAST_HOSTS ("2,4").
 */
import crypto from 'node:crypto';
import path from 'node:path';
import { hostsAvailable, upHosts, type TestHosts } from '../../test/hosts/testhosts.js';
import { contents, type RecvArgs, type SendArgs } from '../../test/mcast/fixtures/mcnode.js';
import { chooseDistribution, groupOfJob, newJobId } from '../../xen/mcast.js';
import { cell, machine, root, ROUNDS, table, type Stat } from '../mpi-peers.js';

const avail = hostsAvailable({ ssh: false, slurm: false });
if (!avail.ok) {
  console.error(`bench:mcast: test hosts unavailable here: ${avail.reason}`);
  process.exit(1);
}
const MIB = Number(process.env.BENCH_MCAST_MIB ?? 256);
if (!Number.isInteger(MIB) || MIB < 16 || MIB > 1024) {
  console.error(`bench:mcast: BENCH_MCAST_MIB must be an integer 16..1024, got ${process.env.BENCH_MCAST_MIB}`);
  process.exit(2);
}
const HOSTS = (process.env.BENCH_MCAST_HOSTS ?? '2,4').split(',').map(Number);
if (HOSTS.some((h) => !Number.isInteger(h) || h < 2 || h > 8)) {
  console.error(`bench:mcast: BENCH_MCAST_HOSTS must list host counts 2..8, got ${process.env.BENCH_MCAST_HOSTS}`);
  process.exit(2);
}
const PAGE = 4096;
const pages = (MIB << 20) / PAGE;
const bytes = pages * PAGE;
const mcnode = path.join(root, 'dist', 'test', 'mcast', 'fixtures', 'mcnode.js');
const secret = crypto.randomBytes(32);
const seed = `bench-${Date.now()}`;
process.stderr.write(`bench:mcast: making the ${MIB} MiB region's checksum\n`);
const sha = crypto.createHash('sha256').update(contents(seed, pages)).digest('hex');

/** One mcnode role inside `host`; resolves with its RESULT once it exits. */
function role(c: TestHosts, host: string, name: string, args: object): { ready: Promise<void>; result: Promise<any> } {
  let out: () => string = () => '';
  let ended = false;
  const ran = c.exec(host, process.execPath, [mcnode, name, JSON.stringify(args)], {
    timeoutMs: 300_000,
    env: { SFMPI_MCAST_SECRET: secret.toString('base64url') },
    onSpawn: (_pid, stdout) => (out = stdout),
  });
  const result = ran.then((r) => {
    ended = true;
    const line = r.stdout.split('\n').find((l) => l.startsWith('RESULT '));
    if (r.code !== 0 || !line) throw new Error(`bench:mcast: ${name} on ${host} failed (code ${r.code}, signal ${r.signal}):\n${r.stderr.slice(-2000)}`);
    return JSON.parse(line.slice(7));
  });
  const ready = (async () => {
    const t = Date.now();
    while (!out().includes('READY\n')) {
      if (ended || Date.now() - t > 120_000) {
        await result;
        throw new Error(`bench:mcast: ${name} on ${host} never got ready`);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  result.catch(() => undefined);
  ready.catch(() => undefined);
  return { ready, result };
}

/** One run's figures. */
interface Run {
  ms: number;
  loss: number;
  endGamePages: number;
  /** The sender's flow control: rate cuts, and the pace at the end (MB/s). */
  cuts: number;
  pace: number;
}

function endpoints(c: TestHosts) {
  const job = newJobId();
  const { group, port } = groupOfJob(job);
  return { job: job.toString(), group, port, unicastPort: 18000 + (port % 1000), reportPort: 19000 + (port % 1000), sender: c.addrs[0] };
}

function check(r: any, where: string): void {
  if (r.mismatched !== 0 || r.sha256 !== sha || (r.left ?? 0) !== 0) {
    throw new Error(`bench:mcast: ${where}: region differs from the origin's (${r.mismatched} pages, ${r.left ?? 0} missing)`);
  }
}

async function multicast(c: TestHosts): Promise<Run> {
  const e = endpoints(c);
  const seeds = c.hosts.slice(1);
  const rx = seeds.map((h, i) => {
    const a: RecvArgs = { iface: c.addrs[i + 1], group: e.group, port: e.port, job: e.job, pages, seed, unicastAddr: e.sender, unicastPort: e.unicastPort, reportAddr: e.sender, reportPort: e.reportPort, expectSha: sha, timeoutMs: 120_000 };
    return role(c, h, 'recv', a);
  });
  await Promise.all(rx.map((r) => r.ready));
  const s: SendArgs = { iface: e.sender, group: e.group, port: e.port, job: e.job, pages, seed, unicastPort: e.unicastPort, fetchers: seeds.length, reportPort: e.reportPort, timeoutMs: 120_000 };
  const tx = role(c, c.hosts[0], 'send', s);
  const [sr, ...rs] = await Promise.all([tx.result, ...rx.map((r) => r.result)]);
  rs.forEach((r, i) => check(r, `multicast receiver on ${seeds[i]}`));
  return {
    ms: Math.max(...rs.map((r) => r.tDone)) - sr.t0,
    loss: Math.max(...rs.map((r) => r.missingAfterMulticast / pages)),
    endGamePages: rs.reduce((n, r) => n + r.final.endInstalled, 0),
    cuts: sr.stats.cuts,
    pace: sr.stats.rate / 1e6,
  };
}

async function unicast(c: TestHosts): Promise<Run> {
  const e = endpoints(c);
  const seeds = c.hosts.slice(1);
  const s: SendArgs = { iface: e.sender, group: e.group, port: e.port, job: e.job, pages, seed, unicastPort: e.unicastPort, fetchers: seeds.length, noPush: true, timeoutMs: 120_000 };
  const tx = role(c, c.hosts[0], 'send', s);
  await tx.ready;
  // Every fetcher starts at the same moment, well after its process is up.
  const startAt = Date.now() + 1500 + 300 * seeds.length;
  const fx = seeds.map((h, i) => {
    const a: RecvArgs = { iface: c.addrs[i + 1], group: e.group, port: e.port, job: e.job, pages, seed, unicastAddr: e.sender, unicastPort: e.unicastPort, startAt, expectSha: sha };
    return role(c, h, 'fetch', a);
  });
  const [, ...rs] = await Promise.all([tx.result, ...fx.map((r) => r.result)]);
  rs.forEach((r, i) => {
    check(r, `unicast fetcher on ${seeds[i]}`);
    if (r.tReady > startAt) throw new Error(`bench:mcast: the fetcher on ${seeds[i]} was not ready at the start; raise the start delay`);
  });
  return { ms: Math.max(...rs.map((r) => r.tDone)) - startAt, loss: 0, endGamePages: 0, cuts: 0, pace: 0 };
}

function stat(v: number[]): Stat {
  const s = [...v].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return { median: s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2, min: s[0], n: s.length };
}

const rows: string[][] = [];
const choices: string[] = [];
for (const count of HOSTS) {
  const c = await upHosts({ count });
  const seeds = count - 1;
  try {
    const runs: Record<'multicast' | 'unicast', Run[]> = { multicast: [], unicast: [] };
    for (let i = 0; i < ROUNDS; i++) {
      // A B, B A, ...: neither driver always goes first on a machine that warms up.
      const order = i % 2 ? (['unicast', 'multicast'] as const) : (['multicast', 'unicast'] as const);
      for (const d of order) runs[d].push(await (d === 'multicast' ? multicast(c) : unicast(c)));
      process.stderr.write(`bench:mcast: ${count} hosts, round ${i + 1}/${ROUNDS} done\n`);
    }
    const med: Record<string, number> = {};
    for (const d of ['multicast', 'unicast'] as const) {
      const ms = stat(runs[d].map((r) => r.ms));
      // Rates from the times: the median run's, and (in parentheses) the fastest run's.
      const rate = (b: number): Stat => ({ median: b / 1e6 / (ms.median / 1e3), min: b / 1e6 / (ms.min / 1e3), n: ms.n });
      const perSeed = rate(bytes);
      const total = rate(seeds * bytes);
      const loss = stat(runs[d].map((r) => r.loss * 100));
      const eg = stat(runs[d].map((r) => r.endGamePages));
      const cuts = stat(runs[d].map((r) => r.cuts));
      const pace = stat(runs[d].map((r) => r.pace));
      med[d] = ms.median;
      rows.push([`${count} hosts, ${seeds} seed${seeds > 1 ? 's' : ''}`, d === 'multicast' ? 'multicast + end game' : `${seeds} unicast TCP stream${seeds > 1 ? 's' : ''}`,
        cell(ms, 0), cell(perSeed, 0), cell(total, 0), ...(d === 'multicast' ? [cell(loss, 2), cell(eg, 0), `${cell(cuts, 0)}, ${cell(pace, 0)}`] : ['-', '-', '-'])]);
    }
    // What the decision function picks: with its one-machine defaults, and with this run's rates.
    const dflt = chooseDistribution({ seeds, bytesPerSeed: bytes, oneMachine: true });
    const measured = chooseDistribution({ seeds, bytesPerSeed: bytes, oneMachine: true, unicastRate: (seeds * bytes) / (med.unicast / 1e3), multicastRate: bytes / (med.multicast / 1e3) });
    const faster = med.multicast < med.unicast ? 'multicast' : 'unicast';
    choices.push(`${count} hosts: measured faster: ${faster}; chooseDistribution picks ${dflt.method} with its defaults (${dflt.reason}), ${measured.method} with this run's rates`);
  } finally {
    await c.down();
  }
}

console.log(`\nbench:mcast, ${MIB} MiB to every seed, ${ROUNDS} rounds interleaved, median (minimum; for MB/s: of the fastest run); ${machine()}; test hosts on one bridge, MTU 1500\n`);
console.log(table(['hosts', 'driver', 'ms until every seed has it', 'MB/s per seed', 'MB/s in all', 'pages lost by multicast %', 'end-game pages', 'rate cuts, final pace MB/s'], rows));
console.log('');
for (const line of choices) console.log(line);
