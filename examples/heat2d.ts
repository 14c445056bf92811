/**
 * 2-D heat equation, Jacobi iteration on a Float64Array grid split into horizontal strips, with
 * halo rows exchanged by Sendrecv each step and the residual reduced by Allreduce.
 *
 *     npx sfmpirun -n 4 examples/heat2d.ts [n] [steps]
 *
 * The plate is n x n, held at 100 on its top edge and 0 on the others.
 */
import { MPI } from 'sfmpi/mpi';

const n = Number(process.argv[2] ?? 256);
const steps = Number(process.argv[3] ?? 500);

const comm = MPI.init();
const { rank, size } = comm;
if (size > n) throw new RangeError(`heat2d: ${size} ranks for ${n} rows: use at most ${n} ranks`);

// Rows [first, first + rows) are ours; rows 0 and rows + 1 of the strip are halos.
const rows = Math.floor(n / size) + (rank < n % size ? 1 : 0);
const first = rank * Math.floor(n / size) + Math.min(rank, n % size);
let u = new Float64Array((rows + 2) * n);
let v = new Float64Array((rows + 2) * n);
const up = rank > 0 ? rank - 1 : MPI.PROC_NULL;
const down = rank < size - 1 ? rank + 1 : MPI.PROC_NULL;
const row = (a: Float64Array, i: number) => a.subarray(i * n, (i + 1) * n);

// The top edge of the plate is the halo above the first strip.
if (rank === 0) row(u, 0).fill(100), row(v, 0).fill(100);

const t0 = MPI.wtime();
const local = new Float64Array(1), global = new Float64Array(1);
for (let step = 0; step < steps; step++) {
  // Halo exchange: my first row goes up while the row below mine comes up from `down`, and back.
  comm.Sendrecv(row(u, 1), up, 0, row(u, rows + 1), down, 0);
  comm.Sendrecv(row(u, rows), down, 1, row(u, 0), up, 1);
  let diff = 0;
  for (let i = 1; i <= rows; i++) {
    const g = first + i - 1;
    for (let j = 0; j < n; j++) {
      if (j === 0 || j === n - 1 || g === n - 1) { v[i * n + j] = 0; continue; }
      const x = 0.25 * (u[(i - 1) * n + j] + u[(i + 1) * n + j] + u[i * n + j - 1] + u[i * n + j + 1]);
      diff += (x - u[i * n + j]) ** 2;
      v[i * n + j] = x;
    }
  }
  [u, v] = [v, u];
  if (step % 50 === 49 || step === steps - 1) {
    local[0] = diff;
    comm.Allreduce(local, global, MPI.SUM);
    if (rank === 0 && step === steps - 1) {
      console.log(`heat2d ${n}x${n}, ${steps} steps on ${size} ranks: residual ${Math.sqrt(global[0]).toExponential(3)}, ${((MPI.wtime() - t0) * 1e3).toFixed(0)} ms`);
    }
  }
}

// The mean temperature, as a check that every rank agrees with a serial run.
let sum = 0;
for (let i = 1; i <= rows; i++) for (let j = 0; j < n; j++) sum += u[i * n + j];
const total = comm.allreduce(sum, MPI.SUM);
if (rank === 0) console.log(`mean temperature ${(total / (n * n)).toFixed(6)}`);
MPI.finalize();
