/**
 * Monte Carlo estimate of pi: every rank throws its share of darts, MPI.SUM reduces the hits.
 *
 *     npx sfmpirun -n 4 examples/pi.ts [darts]
 */
import { MPI } from 'sfmpi/mpi';

const darts = Number(process.argv[2] ?? 4_000_000);

const comm = MPI.init();
const t0 = MPI.wtime();

// A small xorshift generator per rank: Math.random's state is inherited by every clone, so the
// ranks would throw the same darts (docs/mpi-ts.md, "State clones must not share").
let s = (0x9e3779b9 ^ (comm.rank + 1) * 0x85ebca6b) >>> 0;
const rand = (): number => {
  s ^= s << 13; s >>>= 0;
  s ^= s >>> 17;
  s ^= s << 5; s >>>= 0;
  return s / 4294967296;
};

const mine = Math.floor(darts / comm.size) + (comm.rank < darts % comm.size ? 1 : 0);
let hits = 0;
for (let i = 0; i < mine; i++) {
  const x = rand(), y = rand();
  if (x * x + y * y <= 1) hits++;
}

const total = comm.reduce(hits, MPI.SUM, 0);
if (comm.rank === 0) {
  const pi = (4 * total!) / darts;
  console.log(`pi ~ ${pi.toFixed(6)} (error ${Math.abs(pi - Math.PI).toExponential(2)}) from ${darts} darts on ${comm.size} ranks in ${((MPI.wtime() - t0) * 1e3).toFixed(1)} ms`);
}
MPI.finalize();
