/**
 * sfmpi peer of benchmarks/allreduce: time per collective on every rank of sfmpirun, one JSON
 * line {key, us} per measurement:
 *   <count>   comm.Allreduce (MPI.SUM) of a Float64Array of that many elements (the buffer idiom)
 *   --obj     the object idiom: `allreduce` of a number (MPI.SUM), `bcast` of a small object,
 *             `gather` of a number to rank 0, `allgather` of a number
 */
import { MPI } from '../../mpi-compat/ts/index.js';

const obj = process.argv.includes('--obj');
const counts = process.argv.slice(2).filter((a) => !a.startsWith('--')).map(Number);
const itersFor = (bytes: number) => Math.max(20, Math.min(20000, Math.floor(5e8 / Math.max(bytes, 25000))));

const comm = MPI.init();

function time(key: string, iters: number, once: () => void): void {
  const warm = Math.floor(iters / 10) + Math.min(iters, 5000); // long enough for the JIT to settle
  let t0 = 0;
  for (let i = -warm; i < iters; i++) {
    if (i === 0) {
      comm.barrier();
      t0 = MPI.wtime();
    }
    once();
  }
  const us = ((MPI.wtime() - t0) * 1e6) / iters;
  if (comm.rank === 0) console.log(JSON.stringify({ key, us, iters }));
}

if (obj) {
  let sink: unknown;
  time('allreduce', 20000, () => { sink = comm.allreduce(comm.rank + 1, MPI.SUM); });
  time('bcast', 20000, () => { sink = comm.bcast(comm.rank === 0 ? { i: 1, name: 'x' } : null, 0); });
  time('gather', 20000, () => { sink = comm.gather(comm.rank, 0); });
  time('allgather', 20000, () => { sink = comm.allgather(comm.rank); });
  if (sink === Symbol.for('never')) console.log(sink);
} else {
  for (const count of counts) {
    const input = new Float64Array(count).map((_, i) => comm.rank + i);
    const out = new Float64Array(count);
    time(String(count), itersFor(count * 8), () => comm.Allreduce(input, out, MPI.SUM));
  }
}
MPI.finalize();
