/**
 * sfmpi peer of benchmarks/onesided: the figures of onesided.c (same keys, same counts) from
 * TypeScript ranks under sfmpirun -n 2, one JSON line {key, us} per figure. argv[2] picks the
 * window: `allocate` (Win.allocate: memory the two ranks share), `create` (Win.create over a
 * region: process_vm_writev/readv), `messages` (Win.allocate with { direct: false }: the path
 * that ranks on other hosts take, here over shared memory).
 */
import { region } from '../../runtime/index.js';
import { MPI, Win } from '../../mpi-compat/ts/index.js';

const how = process.argv[2] ?? 'allocate';
const comm = MPI.init();
const { rank } = comm;
const W = 4 << 20;
const win = how === 'create' ? Win.create(region(Uint8Array, W), comm) : Win.allocate(W, comm, { direct: how !== 'messages' });
win.memory.fill(2);
const buf = new Uint8Array(1 << 20).fill(1);
for (let k = 0; k < 4; k++) {
  const get = (k & 1) === 1, bw = k >= 2, size = bw ? 1 << 20 : 8;
  const iters = bw ? 40 : 20000, skip = bw ? 3 : 2000, per = bw ? 64 : 1;
  const b = buf.subarray(0, size);
  let t0 = 0;
  comm.Barrier();
  if (rank === 0) {
    win.Lock(1, MPI.LOCK_SHARED);
    for (let i = 0; i < iters + skip; i++) {
      if (i === skip) t0 = MPI.wtime();
      for (let w = 0; w < per; w++) {
        if (get) win.Get(b, 1, 0);
        else win.Put(b, 1, 0);
      }
      win.Flush(1);
    }
    const us = ((MPI.wtime() - t0) * 1e6) / (iters * per);
    win.Unlock(1);
    console.log(JSON.stringify({ key: `${get ? 'get' : 'put'}${bw ? 'bw' : '8'}`, us }));
  }
  comm.Barrier();
}
// Rank 1's window: the puts' 1s in its first MiB, its own 2s after it.
if (rank === 1 && (win.memory[0] !== 1 || win.memory[1 << 20] !== 2)) throw new Error('the puts did not land in the window');
win.free();
MPI.finalize();
