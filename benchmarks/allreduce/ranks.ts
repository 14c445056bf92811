/**
 * sfmpi peer of benchmarks/allreduce: time per comm.Allreduce (MPI.SUM of a Float64Array) on
 * every rank of sfmpirun, one JSON line per element count; with --obj, comm.allreduce of a
 * Float64Array object (serialized, reduced in JavaScript).
 */
import { MPI } from '../../mpi-compat/ts/index.js';

const obj = process.argv.includes('--obj');
const counts = process.argv.slice(2).filter((a) => !a.startsWith('--')).map(Number);
const itersFor = (bytes: number) => Math.max(20, Math.min(20000, Math.floor(5e8 / Math.max(bytes, 25000))));

const comm = MPI.init();
for (const count of counts) {
  const input = new Float64Array(count).map((_, i) => comm.rank + i);
  let out = new Float64Array(count);
  const iters = itersFor(count * 8), warm = Math.floor(iters / 10) + Math.min(iters, 5000); // long enough for the JIT to settle
  let t0 = 0;
  for (let i = -warm; i < iters; i++) {
    if (i === 0) { comm.barrier(); t0 = MPI.wtime(); }
    if (obj) out = comm.allreduce(input, MPI.SUM);
    else comm.Allreduce(input, out, MPI.SUM);
  }
  const us = ((MPI.wtime() - t0) * 1e6) / iters;
  if (comm.rank === 0) console.log(JSON.stringify({ count, us, iters, check: out[count - 1] }));
}
MPI.finalize();
