/**
 * Collectives on N ranks of this host (BENCH_RANKS, default 2), our TypeScript ranks beside each
 * peer in its own idiom, in one run, the drivers interleaved:
 *   sfmpi        comm.Allreduce (MPI.SUM) of Float64Arrays: 8 B and 1 MiB
 *   MPICH C      allreduce.c, MPI_Allreduce of the same (mpicc.mpich, mpirun.mpich)
 *   workers      main thread + workers exchanging the arrays by postMessage and adding them
 *   sfmpi obj    comm.allreduce of a number, bcast of a small object, gather and allgather
 *                of a number (the object idiom)
 *   mpi4py       the same lower-case calls (Debian's python3-mpi4py on Open MPI)
 * Cells are "median (minimum)" in microseconds over BENCH_ROUNDS rounds; ratios compare medians.
 * Run: npm run bench:allreduce
 */
import { buildC, cell, ensureMpi4py, ensureMpich, human, interleave, machine, ratio, ROUNDS, runMpi4py, runMpich, runNode, runSfmpi, table } from '../mpi-peers.js';

const n = Number(process.env.BENCH_RANKS ?? 2);
const counts = ['1', '131072'];
ensureMpich();
ensureMpi4py();
const exe = buildC('allreduce', 'allreduce');
const r = interleave({
  sfmpi: () => runSfmpi('allreduce/ranks.js', n, counts),
  mpich: () => runMpich(exe, n, counts),
  workers: () => (n === 2 ? runNode('allreduce/workers.js', counts) : []),
  sfmpiObj: () => runSfmpi('allreduce/ranks.js', n, ['--obj']),
  mpi4py: () => runMpi4py('allreduce/collectives_mpi4py.py', n, []),
});
const rows = counts.map((k) => [`Allreduce ${human(Number(k) * 8)} (us)`, cell(r.sfmpi.get(k)), cell(r.mpich.get(k)), cell(r.workers.get(k)),
  ratio(r.sfmpi.get(k), r.mpich.get(k)), ratio(r.workers.get(k), r.sfmpi.get(k))]);
console.log(`collectives, ${n} ranks, ${machine()}, ${ROUNDS} rounds interleaved`);
console.log(table(['buffers', 'sfmpi TS', 'MPICH C', 'workers', 'sfmpi/MPICH', 'workers/sfmpi'], rows));
console.log('sfmpi/MPICH is our time over theirs (lower is better); workers/sfmpi theirs over ours.\n');
const what: Record<string, string> = { allreduce: 'allreduce of a number', bcast: 'bcast of a small object', gather: 'gather of a number', allgather: 'allgather of a number' };
const orows = Object.entries(what).map(([k, name]) => [`${name} (us)`, cell(r.sfmpiObj.get(k)), cell(r.mpi4py.get(k)), ratio(r.sfmpiObj.get(k), r.mpi4py.get(k))]);
console.log(table(['objects', 'sfmpi obj', 'mpi4py', 'sfmpi/mpi4py'], orows));
console.log('sfmpi/mpi4py is our time over theirs (lower is better).');
