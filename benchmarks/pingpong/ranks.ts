/**
 * sfmpi peer of benchmarks/pingpong: half round-trip time of comm.Send/comm.Recv on Uint8Arrays
 * between ranks 0 and 1 (run under sfmpirun -n 2), one JSON line per size; with --obj, the object
 * path (comm.send/comm.recv of a Uint8Array, serialized) instead.
 */
import { MPI } from '../../mpi-compat/ts/index.js';

const obj = process.argv.includes('--obj');
const sizes = process.argv.slice(2).filter((a) => !a.startsWith('--')).map(Number);
const itersFor = (bytes: number) => Math.max(20, Math.min(20000, Math.floor(5e8 / Math.max(bytes, 25000))));

const comm = MPI.init();
const { rank } = comm;
for (const bytes of sizes) {
  let buf = new Uint8Array(bytes).fill(rank + 1);
  const iters = itersFor(bytes), warm = Math.floor(iters / 10) + Math.min(iters, 5000); // long enough for the JIT to settle
  let t0 = 0;
  for (let i = -warm; i < iters; i++) {
    if (i === 0) { comm.barrier(); t0 = MPI.wtime(); }
    if (obj) {
      if (rank === 0) { comm.send(buf, 1, 0); buf = comm.recv(1, 0); }
      else if (rank === 1) { buf = comm.recv(0, 0); comm.send(buf, 0, 0); }
    } else if (rank === 0) {
      comm.Send(buf, 1, 0);
      comm.Recv(buf, 1, 0);
    } else if (rank === 1) {
      comm.Recv(buf, 0, 0);
      comm.Send(buf, 0, 0);
    }
  }
  const us = ((MPI.wtime() - t0) * 1e6) / (2 * iters);
  if (rank === 0) console.log(JSON.stringify({ size: bytes, us, iters }));
}
MPI.finalize();
