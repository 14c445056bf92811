/**
 * sfmpi peer of benchmarks/pingpong: half round-trip time between ranks 0 and 1 (run under
 * sfmpirun -n 2), one JSON line {key, us} per measurement:
 *   <size>      comm.Send/comm.Recv of a Uint8Array of that many bytes (the buffer idiom)
 *   --obj       the object idiom, comm.send/comm.recv: `small` a small plain object
 *               ({ i, name }), `bytes1k` a 1 KiB Uint8Array sent as an object
 */
import { MPI } from '../../mpi-compat/ts/index.js';

const obj = process.argv.includes('--obj');
const sizes = process.argv.slice(2).filter((a) => !a.startsWith('--')).map(Number);
const itersFor = (bytes: number) => Math.max(20, Math.min(20000, Math.floor(5e8 / Math.max(bytes, 25000))));

const comm = MPI.init();
const { rank } = comm;

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
  const us = ((MPI.wtime() - t0) * 1e6) / (2 * iters);
  if (rank === 0) console.log(JSON.stringify({ key, us, iters }));
}

if (obj) {
  let small: unknown = { i: 0, name: 'ping' };
  time('small', 20000, () => {
    if (rank === 0) { comm.send(small, 1, 0); small = comm.recv(1, 0); }
    else if (rank === 1) { small = comm.recv(0, 0); comm.send(small, 0, 0); }
  });
  let bytes: unknown = new Uint8Array(1024).fill(rank + 1);
  time('bytes1k', 20000, () => {
    if (rank === 0) { comm.send(bytes, 1, 0); bytes = comm.recv(1, 0); }
    else if (rank === 1) { bytes = comm.recv(0, 0); comm.send(bytes, 0, 0); }
  });
} else {
  for (const size of sizes) {
    const buf = new Uint8Array(size).fill(rank + 1);
    time(String(size), itersFor(size), () => {
      if (rank === 0) { comm.Send(buf, 1, 0); comm.Recv(buf, 1, 0); }
      else if (rank === 1) { comm.Recv(buf, 0, 0); comm.Send(buf, 0, 0); }
    });
  }
}
MPI.finalize();
