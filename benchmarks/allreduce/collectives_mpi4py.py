"""mpi4py peer of benchmarks/allreduce: the object idiom (lower-case calls), time per collective
on every rank, one JSON line {key, us} per measurement: allreduce of a number (MPI.SUM), bcast
of a small dict, gather of a number to rank 0, allgather of a number. Same iterations and warm-up
as ranks.ts."""
import json
from mpi4py import MPI

comm = MPI.COMM_WORLD
rank = comm.Get_rank()


def time(key, iters, once):
    warm = iters // 10 + min(iters, 5000)
    t0 = 0.0
    for i in range(-warm, iters):
        if i == 0:
            comm.Barrier()
            t0 = MPI.Wtime()
        once()
    us = (MPI.Wtime() - t0) * 1e6 / iters
    if rank == 0:
        print(json.dumps({'key': key, 'us': us, 'iters': iters}), flush=True)


time('allreduce', 20000, lambda: comm.allreduce(rank + 1, op=MPI.SUM))
time('bcast', 20000, lambda: comm.bcast({'i': 1, 'name': 'x'} if rank == 0 else None, root=0))
time('gather', 20000, lambda: comm.gather(rank, root=0))
time('allgather', 20000, lambda: comm.allgather(rank))
