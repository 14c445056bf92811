"""mpi4py peer of benchmarks/pingpong: the object idiom, lower-case comm.send/comm.recv, half
round-trip time between ranks 0 and 1, one JSON line {key, us} per measurement: `small` a small
dict ({'i', 'name'}), `bytes1k` a 1 KiB bytes object. Same iterations and warm-up as ranks.ts."""
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
    us = (MPI.Wtime() - t0) * 1e6 / (2 * iters)
    if rank == 0:
        print(json.dumps({'key': key, 'us': us, 'iters': iters}), flush=True)


def pingpong(value):
    state = {'v': value}

    def once():
        if rank == 0:
            comm.send(state['v'], dest=1, tag=0)
            state['v'] = comm.recv(source=1, tag=0)
        elif rank == 1:
            state['v'] = comm.recv(source=0, tag=0)
            comm.send(state['v'], dest=0, tag=0)
    return once


time('small', 20000, pingpong({'i': 0, 'name': 'ping'}))
time('bytes1k', 20000, pingpong(bytes([rank + 1]) * 1024))
