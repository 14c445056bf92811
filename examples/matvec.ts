/**
 * Matrix-vector product with mathjs: rank 0 scatters row blocks of A, broadcasts x, each rank
 * multiplies its block, and gather puts y back together. Checked against a serial product.
 *
 *     npx sfmpirun -n 4 examples/matvec.ts [n]
 */
import * as math from 'mathjs';
import { MPI } from 'sfmpi/mpi';

const n = Number(process.argv[2] ?? 200);

// Loaded before the fork point: every rank has mathjs already.
const comm = MPI.init({ mathjs: math });
const { rank, size } = comm;

let blocks: math.Matrix[] | undefined;
let x: math.Matrix | undefined;
let A: math.Matrix | undefined;
if (rank === 0) {
  A = math.matrix(math.map(math.zeros(n, n) as math.Matrix, (_v: number, idx: number[]) => ((idx[0] * 7 + idx[1] * 3) % 11) - 5) as math.Matrix);
  x = math.matrix(Array.from({ length: n }, (_, i) => Math.sin(i)));
  blocks = [];
  for (let r = 0, start = 0; r < size; r++) {
    const rows = Math.floor(n / size) + (r < n % size ? 1 : 0);
    blocks.push(math.subset(A, math.index(math.range(start, start + rows), math.range(0, n))) as math.Matrix);
    start += rows;
  }
}

const block = comm.scatter(blocks, 0);
const xv = comm.bcast(x, 0)!;
const yPart = math.multiply(block, xv) as math.Matrix;
const parts = comm.gather(yPart, 0);

if (rank === 0) {
  const y = math.concat(...(parts as math.Matrix[])) as math.Matrix;
  const serial = math.multiply(A!, x!) as math.Matrix;
  const err = math.norm(math.subtract(y, serial) as math.Matrix) as number;
  console.log(`matvec ${n}x${n} on ${size} ranks: |y - A x| = ${err.toExponential(2)}, y[0..3] = ${(y.toArray() as number[]).slice(0, 3).map((v) => v.toFixed(4)).join(', ')}`);
}

// A reduction through mathjs: the sum of every rank's block, as a Matrix.
const ones = math.ones(2, 2) as math.Matrix;
const s = comm.allreduce(math.multiply(ones, rank + 1) as math.Matrix, MPI.SUM);
if (rank === 0) console.log(`allreduce of matrices: ${math.format(s)}`);
MPI.finalize();
