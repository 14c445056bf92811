/**
 * Pingpong: half round-trip latency and bandwidth between two ranks on this host, our
 * TypeScript ranks beside each peer in its own idiom, in one run, the drivers interleaved:
 *   sfmpi        comm.Send/comm.Recv of Uint8Arrays (sfmpirun -n 2)
 *   MPICH C      pingpong.c with MPI_Send/MPI_Recv (mpicc.mpich, mpirun.mpich -n 2)
 *   workers      worker_threads postMessage main thread <-> one worker (structured clone)
 *   sfmpi obj    comm.send/comm.recv of a small object and of 1 KiB bytes
 *   mpi4py       lower-case comm.send/comm.recv of the same (Debian's python3-mpi4py, Open MPI)
 * Bandwidth is size / half round trip, the same definition for every driver. Cells are
 * "median (minimum)" over BENCH_ROUNDS rounds; ratios compare medians.
 * Run: npm run bench:pingpong
 */
import { buildC, cell, ensureMpi4py, ensureMpich, human, interleave, machine, ratio, ROUNDS, runMpi4py, runMpich, runNode, runSfmpi, table, type Stat } from '../mpi-peers.js';

const lat = [8, 1024, 8192, 65536, 1 << 20];
const bw = [65536, 1 << 20, 4 << 20];
const sizes = [...new Set([...lat, ...bw])].sort((a, b) => a - b).map(String);

ensureMpich();
ensureMpi4py();
const exe = buildC('pingpong', 'pingpong');
const r = interleave({
  sfmpi: () => runSfmpi('pingpong/ranks.js', 2, sizes),
  mpich: () => runMpich(exe, 2, sizes),
  workers: () => runNode('pingpong/workers.js', sizes),
  sfmpiObj: () => runSfmpi('pingpong/ranks.js', 2, ['--obj']),
  mpi4py: () => runMpi4py('pingpong/pingpong_mpi4py.py', 2, []),
});

const mbs = (s: number, t: Stat | undefined): Stat | undefined => (t ? { median: s / t.median, min: s / t.min, n: t.n } : undefined);
const rows: string[][] = [];
for (const s of lat) {
  const k = String(s);
  rows.push([`latency ${human(s)} (us)`, cell(r.sfmpi.get(k)), cell(r.mpich.get(k)), cell(r.workers.get(k)), ratio(r.sfmpi.get(k), r.mpich.get(k)), ratio(r.workers.get(k), r.sfmpi.get(k))]);
}
for (const s of bw) {
  const k = String(s);
  const [a, m, w] = [r.sfmpi, r.mpich, r.workers].map((d) => mbs(s, d.get(k)));
  rows.push([`bandwidth ${human(s)} (MB/s)`, cell(a, 0), cell(m, 0), cell(w, 0), ratio(a, m), ratio(a, w)]);
}
console.log(`pingpong, 2 ranks, ${machine()}, ${ROUNDS} rounds interleaved`);
console.log(table(['buffers', 'sfmpi TS', 'MPICH C', 'workers', 'sfmpi/MPICH', 'workers/sfmpi'], rows));
console.log('latency: sfmpi/MPICH is our time over theirs (lower is better); bandwidth: our MB/s over theirs (higher is better).\n');
const orows = [['small', 'small object'], ['bytes1k', '1 KiB bytes']].map(([k, name]) => [`${name} latency (us)`, cell(r.sfmpiObj.get(k)), cell(r.mpi4py.get(k)), ratio(r.sfmpiObj.get(k), r.mpi4py.get(k))]);
console.log(table(['objects (send/recv)', 'sfmpi obj', 'mpi4py', 'sfmpi/mpi4py'], orows));
console.log('sfmpi/mpi4py is our time over theirs (lower is better).');
