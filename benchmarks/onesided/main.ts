/**
 * One-sided: MPI_Put/MPI_Get latency (8 B) and bandwidth (1 MiB) between two ranks on this
 * host, our TypeScript windows beside libsfmpi and MPICH running the same OSU-style loop
 * (onesided.c), in one run, the drivers interleaved:
 *   TS allocate   Win.allocate (the two ranks share the window's memory: a memcpy per Put)
 *   TS create     Win.create over a region (process_vm_writev/readv into the target)
 *   TS messages   Win.allocate({ direct: false }): request messages, the cross-host path
 *   libsfmpi C    onesided.c built with sfmpicc
 *   MPICH C       onesided.c built with mpicc.mpich
 * Cells are "median (best)" over BENCH_ROUNDS rounds; ratios compare medians.
 * Run: npm run build && node dist/benchmarks/onesided/main.js
 */
import path from 'node:path';
import { buildC, cell, ensureMpich, interleave, jsonLines, machine, ratio, root, ROUNDS, runMpich, runSfmpi, table, type Stat } from '../mpi-peers.js';

ensureMpich();
const mpich = buildC('onesided', 'onesided');
const sfexe = buildC('onesided', 'onesided', path.join(root, 'mpi-compat', 'c', 'sfmpicc'));
const sfmpirun = path.join(root, 'dist', 'mpi-compat', 'launcher', 'sfmpirun.js');

const r = interleave({
  allocate: () => runSfmpi('onesided/ranks.js', 2, ['allocate']),
  create: () => runSfmpi('onesided/ranks.js', 2, ['create']),
  messages: () => runSfmpi('onesided/ranks.js', 2, ['messages']),
  libsfmpi: () => jsonLines(process.execPath, [sfmpirun, '-n', '2', sfexe]),
  mpich: () => runMpich(mpich, 2, []),
});

const MiB = 1 << 20;
const mbs = (t: Stat | undefined): Stat | undefined => (t ? { median: MiB / t.median, min: MiB / t.min, n: t.n } : undefined);
const drivers = [r.allocate, r.create, r.messages, r.libsfmpi, r.mpich];
const rows: string[][] = [];
for (const [key, name] of [['put8', 'MPI_Put latency 8 B (us)'], ['get8', 'MPI_Get latency 8 B (us)']]) {
  const s = drivers.map((d) => d.get(key));
  rows.push([name, ...s.map((x) => cell(x)), ratio(s[0], s[4]), ratio(s[3], s[4])]);
}
for (const [key, name] of [['putbw', 'MPI_Put bandwidth 1 MiB (MB/s)'], ['getbw', 'MPI_Get bandwidth 1 MiB (MB/s)']]) {
  const s = drivers.map((d) => mbs(d.get(key)));
  rows.push([name, ...s.map((x) => cell(x, 0)), ratio(s[0], s[4]), ratio(s[3], s[4])]);
}
console.log(`one-sided, 2 ranks, ${machine()}, ${ROUNDS} rounds interleaved`);
console.log(table(['measurement', 'TS allocate', 'TS create', 'TS messages', 'libsfmpi C', 'MPICH C', 'TS/MPICH', 'libsfmpi/MPICH'], rows));
console.log('latency: ratio is time over MPICH\'s (lower is better); bandwidth: MB/s over MPICH\'s (higher is better).');
