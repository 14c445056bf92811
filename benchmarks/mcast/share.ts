/**
 * Multicast distribution wired into lazy memory, end to end: a job whose origin loads 64 MiB of
 * data pages once (loadOnce) and whose ranks on other hosts each read it whole, on test hosts
 * made on this machine (test/hosts: network namespaces on one bridge, MTU 1500), one rank a
 * host. Four jobs: 1 seed (2 hosts) and 3 seeds (4 hosts), each with SFMPI_DISTRIBUTION=unicast
 * (every seed fetches every page from the memory server over its TCP connection) and
 * =multicast (pages a reply carries also go to the group; lockstep faults are answered "on its
 * way"). Jobs interleave (A B C D A B C D ...) for BENCH_ROUNDS rounds (3 by default); cells are
 * "median (minimum)" of this run. Time: the slowest seed's read of the whole region, from a
 * barrier that all ranks pass together. Bytes: what the memory server wrote by unicast (headers
 * included) and what went on the wire by multicast (IP, UDP and our headers included).
 *
 * Fixture: test/cluster/fixtures/mcast-share.ts (it checks every value). Run under the heavy
 * lock: flock -w 900 /tmp/sfmpi-heavy.lock timeout 900 node dist/benchmarks/mcast/share.js
 */
import path from 'node:path';
import { hostsAvailable, upHosts } from '../../test/hosts/testhosts.js';
import { sfmpirun } from '../../test/helpers.js';
import { machine, root, table } from '../mpi-peers.js';

const avail = hostsAvailable({ ssh: true });
if (!avail.ok) {
  console.error(`bench:mcast-share: test hosts unavailable here: ${avail.reason}`);
  process.exit(1);
}
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const PAGES = 16384;
const fixture = path.join(root, 'dist', 'test', 'cluster', 'fixtures', 'mcast-share.js');
const c = await upHosts({ count: 4, ssh: true, cpus: 1 });
type Run = { ms: number; unicast: number; sent: number; wire: number; deferred: number };
const jobs = [
  { seeds: 1, how: 'unicast' },
  { seeds: 1, how: 'multicast' },
  { seeds: 3, how: 'unicast' },
  { seeds: 3, how: 'multicast' },
] as const;
const runs = new Map<string, Run[]>();
try {
  for (let round = 0; round < ROUNDS; round++) {
    for (const j of jobs) {
      const r = await c.exec(c.hosts[0], process.execPath, [sfmpirun, '--hostfile', c.hostfile, '-n', String(j.seeds + 1), fixture, '/dev/null'], {
        timeoutMs: 120_000,
        env: { SFMPI_PREFETCH: '0', SFMPI_DISTRIBUTION: j.how },
      });
      const oks = (r.stdout.match(/^check \d+ ok$/gm) ?? []).length;
      if (r.code !== 0 || oks !== j.seeds + 1) throw new Error(`${j.seeds} seeds ${j.how}: code ${r.code}\n${r.stdout.slice(-2000)}\n${r.stderr.slice(-2000)}`);
      const times = [...r.stdout.matchAll(/^time (\d+) ([\d.]+)$/gm)].filter((m) => m[1] !== '0').map((m) => Number(m[2]));
      const server = JSON.parse(/^server (\{.*\})$/m.exec(r.stdout)![1]);
      const reg = server.regions[0];
      const key = `${j.seeds} ${j.how}`;
      runs.set(key, [...(runs.get(key) ?? []), { ms: Math.max(...times), unicast: reg.bytes, sent: reg.sent, wire: server.multicast.wireBytes, deferred: reg.deferred }]);
    }
    process.stderr.write(`bench:mcast-share: round ${round + 1}/${ROUNDS} done\n`);
  }
} finally {
  await c.down();
}
const stat = (v: number[]) => {
  const s = [...v].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return { median: s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2, min: s[0] };
};
const cellOf = (v: number[], d = 0) => {
  const s = stat(v);
  return `${s.median.toFixed(d)} (${s.min.toFixed(d)})`;
};
const mb = (b: number) => b / 1e6;
const rows = jobs.map((j) => {
  const r = runs.get(`${j.seeds} ${j.how}`)!;
  return [
    `${j.seeds} seed${j.seeds > 1 ? 's' : ''}, ${j.how}`,
    cellOf(r.map((x) => x.ms)),
    cellOf(r.map((x) => x.sent / PAGES), 2),
    cellOf(r.map((x) => mb(x.unicast)), 1),
    cellOf(r.map((x) => mb(x.wire)), 1),
    cellOf(r.map((x) => x.deferred)),
  ];
});
console.log(`bench:mcast-share: 64 MiB (${PAGES} data pages) read whole by every seed, one rank a host; ${ROUNDS} rounds interleaved, median (minimum); ${machine()}`);
console.log(table(['job', 'ms until every seed read it', 'unicast pages / region pages', 'MB by unicast', 'MB on the wire by multicast', 'pages answered "on its way"'], rows));
