/*
 * C peer of benchmarks/onesided (built with mpicc.mpich and with sfmpicc): OSU-style one-sided
 * figures between ranks 0 and 1 of a 2-rank job, one JSON line {key, us} per figure:
 *   put8 / get8       MPI_Put (MPI_Get) of 8 bytes + MPI_Win_flush under a shared lock, mean
 *                     per operation (osu_put_latency / osu_get_latency)
 *   putbw / getbw     64 operations of 1 MiB, then a flush; microseconds per 1 MiB (osu_put_bw)
 * The window is 4 MiB per rank from MPI_Win_allocate (OSU's allocate option); rank 1 waits in
 * a barrier meanwhile, as in OSU.
 */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WINDOW 64

int main(int argc, char **argv) {
  int rank;
  char *base, *buf;
  MPI_Win win;
  MPI_Init(&argc, &argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  buf = malloc(1 << 20);
  memset(buf, 1, 1 << 20);
  MPI_Win_allocate(4 << 20, 1, MPI_INFO_NULL, MPI_COMM_WORLD, &base, &win);
  memset(base, 2, 4 << 20);
  for (int k = 0; k < 4; k++) {
    int get = k & 1, bw = k >= 2, size = bw ? 1 << 20 : 8;
    int iters = bw ? 40 : 20000, skip = bw ? 3 : 2000, per = bw ? WINDOW : 1;
    double t0 = 0;
    MPI_Barrier(MPI_COMM_WORLD);
    if (rank == 0) {
      MPI_Win_lock(MPI_LOCK_SHARED, 1, 0, win);
      for (int i = 0; i < iters + skip; i++) {
        if (i == skip) t0 = MPI_Wtime();
        for (int w = 0; w < per; w++) {
          if (get)
            MPI_Get(buf, size, MPI_CHAR, 1, 0, size, MPI_CHAR, win);
          else
            MPI_Put(buf, size, MPI_CHAR, 1, 0, size, MPI_CHAR, win);
        }
        MPI_Win_flush(1, win);
      }
      double us = (MPI_Wtime() - t0) * 1e6 / ((double)iters * per);
      MPI_Win_unlock(1, win);
      printf("{\"key\":\"%s%s\",\"us\":%.4f}\n", get ? "get" : "put", bw ? "bw" : "8", us);
      fflush(stdout);
    }
    MPI_Barrier(MPI_COMM_WORLD);
  }
  MPI_Win_free(&win);
  free(buf);
  MPI_Finalize();
  return 0;
}
