/**
 * Allreduce: MPI.SUM of 8 B (1 double) and 1 MiB (131072 doubles) on 2 ranks, time per
 * operation, measured in one run for
 *   sfmpi       comm.Allreduce on Float64Arrays (the data plane's reduction, in C)
 *   sfmpi obj   comm.allreduce of the Float64Array as an object (serialized, reduced in JS)
 *   MPICH C     allreduce.c built with mpicc.mpich, mpirun.mpich -n 2
 *   workers     main thread + one worker exchanging arrays by postMessage and adding them
 * Every figure is the best of BENCH_REPEAT (default 3) runs of its driver.
 * Run: npm run build && node dist/benchmarks/allreduce/main.js
 */
import { best, buildC, ensureMpich, human, machine, ratio, runMpich, runNode, runSfmpi, table } from '../mpi-peers.js';

const counts = ['1', '131072'];
ensureMpich();
const exe = buildC('allreduce', 'allreduce');
const c = best('count', () => runMpich(exe, 2, counts));
const ts = best('count', () => runSfmpi('allreduce/ranks.js', 2, counts));
const obj = best('count', () => runSfmpi('allreduce/ranks.js', 2, [...counts, '--obj']));
const wt = best('count', () => runNode('allreduce/workers.js', counts));
const rows = counts.map(Number).map((n) => [`allreduce ${human(n * 8)} (us)`, ts.get(n)!.toFixed(2), obj.get(n)!.toFixed(2), c.get(n)!.toFixed(2), wt.get(n)!.toFixed(2),
  ratio(ts.get(n)!, c.get(n)!), ratio(wt.get(n)!, ts.get(n)!)]);
console.log(`allreduce (SUM of doubles), 2 ranks, ${machine()}`);
console.log(table(['measurement', 'sfmpi TS', 'sfmpi obj', 'MPICH C', 'workers', 'sfmpi vs MPICH', 'sfmpi vs workers'], rows));
console.log('"sfmpi vs MPICH" is our time / theirs (lower is better), "vs workers" is their time / ours.');
