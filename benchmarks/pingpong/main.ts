/**
 * Pingpong: half round-trip latency (8 B, 1 KiB, 64 KiB, 1 MiB) and bandwidth (64 KiB-4 MiB)
 * between two ranks, measured in one run for
 *   sfmpi       our TypeScript ranks (sfmpirun -n 2): comm.Send/comm.Recv on Uint8Arrays
 *   sfmpi obj   the object path: comm.send/comm.recv of the same Uint8Array (serialized)
 *   MPICH C     pingpong.c built with Debian's mpicc.mpich, run with mpirun.mpich -n 2
 *   workers     worker_threads postMessage (structured clone) main thread <-> one worker
 * Bandwidth is size / half round trip, the same definition for every driver.
 * Every figure is the best of BENCH_REPEAT (default 3) runs of its driver.
 * Run: npm run build && node dist/benchmarks/pingpong/main.js
 */
import { best, buildC, ensureMpich, human, machine, ratio, runMpich, runNode, runSfmpi, table } from '../mpi-peers.js';

const lat = [8, 1024, 65536, 1 << 20];
const bw = [65536, 262144, 1 << 20, 4 << 20];
const sizes = [...new Set([...lat, ...bw])].sort((a, b) => a - b).map(String);

ensureMpich();
const exe = buildC('pingpong', 'pingpong');
const c = best('size', () => runMpich(exe, 2, sizes));
const ts = best('size', () => runSfmpi('pingpong/ranks.js', 2, sizes));
const obj = best('size', () => runSfmpi('pingpong/ranks.js', 2, [...sizes, '--obj']));
const wt = best('size', () => runNode('pingpong/workers.js', sizes));

const rows: string[][] = [];
for (const s of lat) {
  rows.push([`latency ${human(s)} (us)`, ts.get(s)!.toFixed(2), obj.get(s)!.toFixed(2), c.get(s)!.toFixed(2), wt.get(s)!.toFixed(2),
    ratio(ts.get(s)!, c.get(s)!), ratio(wt.get(s)!, ts.get(s)!)]);
}
const mbs = (s: number, us: number) => s / us; // bytes per us = MB/s
for (const s of bw) {
  const [a, o, m, w] = [ts, obj, c, wt].map((t) => mbs(s, t.get(s)!));
  rows.push([`bandwidth ${human(s)} (MB/s)`, a.toFixed(0), o.toFixed(0), m.toFixed(0), w.toFixed(0), ratio(a, m), ratio(a, w)]);
}
console.log(`pingpong, 2 ranks, ${machine()}`);
console.log(table(['measurement', 'sfmpi TS', 'sfmpi obj', 'MPICH C', 'workers', 'sfmpi vs MPICH', 'sfmpi vs workers'], rows));
console.log('latency: "sfmpi vs MPICH" is our time / theirs (lower is better), "vs workers" is their time / ours;');
console.log('bandwidth: both columns are our MB/s / theirs (higher is better).');
