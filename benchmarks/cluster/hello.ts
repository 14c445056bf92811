// hello.ts: the TypeScript twin of benchmarks/c/hello.c, for whole-job wall time across hosts.
import { MPI } from '../../mpi-compat/ts/index.js';

const world = MPI.init();
console.log(`Hello from ${world.rank} of ${world.size}`);
MPI.finalize();
