/**
 * A large data set loaded once per cluster: the origin builds (or reads) it, every rank on every
 * host computes over its share. Across hosts, MPI.loadOnce hands the origin's value to the
 * other hosts instead of running the loader there: its big arrays arrive page by page, on first
 * touch, from the origin's memory server (only the pages a rank reads cross the network).
 *
 *     npx sfmpirun -n 4 examples/dataset.ts [megabytes]
 *     npx sfmpirun --hostfile hosts -n 16 examples/dataset.ts 1024
 */
import { MPI } from 'sfmpi/mpi';

const mb = Number(process.argv[2] ?? 256);
const t0 = performance.now();

// The expensive part: here a synthetic series; in real life, reading and parsing files.
const data = MPI.loadOnce(
  () => {
    const values = new Float64Array((mb << 20) / 8);
    for (let i = 0; i < values.length; i++) values[i] = Math.sin(i * 1e-6);
    return { values, source: `synthetic, ${mb} MiB` };
  },
  { label: 'series' },
);
const loaded = performance.now() - t0;

const comm = MPI.init();
const { values } = data;
const per = Math.ceil(values.length / comm.size);
const from = comm.rank * per, to = Math.min(values.length, from + per);
let sum = 0, max = -Infinity;
for (let i = from; i < to; i++) {
  sum += values[i];
  if (values[i] > max) max = values[i];
}
const total = comm.allreduce(sum, MPI.SUM);
const peak = comm.allreduce(max, MPI.MAX);
const slowest = comm.allreduce(loaded, MPI.MAX);
if (comm.rank === 0) {
  console.log(`${data.source}: mean ${(total / values.length).toFixed(6)}, max ${peak.toFixed(6)}`);
  console.log(`${comm.size} ranks; state ready after at most ${slowest.toFixed(0)} ms on any host`);
}
MPI.finalize();
