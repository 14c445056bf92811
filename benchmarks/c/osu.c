/*
 * osu.c: OSU-style micro-benchmarks in one program, built unchanged against libsfmpi, MPICH
 * and Open MPI (benchmarks/c/run.sh). Two ranks; rank 0 prints one line per figure:
 *   lat <bytes> <us>          half round-trip of blocking Send/Recv ping-pong (osu_latency)
 *   bw <bytes> <MB/s>         window of 64 Isend / Irecv + ack (osu_bw)
 *   allreduce <bytes> <us>    MPI_Allreduce of doubles, MPI_SUM, mean per call (osu_allreduce)
 * Usage: osu latency|bw|allreduce
 */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WINDOW 64

static char *sbuf, *rbuf;
static int rank;

static void latency(void) {
  for (int size = 8; size <= (1 << 20); size *= 2) {
    /* Small sizes warm up for 10000 round trips (OSU uses 1000): the first ring wrap-around and
     * the spin/sleep state settle over more than that, for every implementation alike. */
    int iters = size <= 8192 ? 20000 : size <= 131072 ? 2000 : 300, skip = size <= 8192 ? 10000 : iters / 10;
    double t0 = 0;
    MPI_Barrier(MPI_COMM_WORLD);
    for (int i = 0; i < iters + skip; i++) {
      if (i == skip) t0 = MPI_Wtime();
      if (rank == 0) {
        MPI_Send(sbuf, size, MPI_CHAR, 1, 1, MPI_COMM_WORLD);
        MPI_Recv(rbuf, size, MPI_CHAR, 1, 1, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
      } else if (rank == 1) {
        MPI_Recv(rbuf, size, MPI_CHAR, 0, 1, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        MPI_Send(sbuf, size, MPI_CHAR, 0, 1, MPI_COMM_WORLD);
      }
    }
    if (rank == 0) printf("lat %d %.3f\n", size, (MPI_Wtime() - t0) * 1e6 / (2.0 * iters));
  }
}

static void bandwidth(void) {
  MPI_Request req[WINDOW];
  for (int size = 65536; size <= (4 << 20); size *= 2) {
    int loops = size <= (1 << 20) ? 40 : 15, skip = 3;
    double t0 = 0;
    MPI_Barrier(MPI_COMM_WORLD);
    for (int i = 0; i < loops + skip; i++) {
      if (i == skip) t0 = MPI_Wtime();
      if (rank == 0) {
        for (int w = 0; w < WINDOW; w++) MPI_Isend(sbuf, size, MPI_CHAR, 1, 100, MPI_COMM_WORLD, &req[w]);
        MPI_Waitall(WINDOW, req, MPI_STATUSES_IGNORE);
        MPI_Recv(rbuf, 4, MPI_CHAR, 1, 101, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
      } else if (rank == 1) {
        for (int w = 0; w < WINDOW; w++) MPI_Irecv(rbuf, size, MPI_CHAR, 0, 100, MPI_COMM_WORLD, &req[w]);
        MPI_Waitall(WINDOW, req, MPI_STATUSES_IGNORE);
        MPI_Send(sbuf, 4, MPI_CHAR, 0, 101, MPI_COMM_WORLD);
      }
    }
    if (rank == 0) printf("bw %d %.1f\n", size, (double)size * WINDOW * loops / 1e6 / (MPI_Wtime() - t0));
  }
}

static void allreduce(void) {
  int sizes[2] = {8, 1 << 20};
  for (int k = 0; k < 2; k++) {
    int n = sizes[k] / 8, iters = k == 0 ? 20000 : 300, skip = iters / 10;
    double t0 = 0, *in = (double *)sbuf, *out = (double *)rbuf;
    for (int i = 0; i < n; i++) in[i] = rank + i;
    MPI_Barrier(MPI_COMM_WORLD);
    for (int i = 0; i < iters + skip; i++) {
      if (i == skip) t0 = MPI_Wtime();
      MPI_Allreduce(in, out, n, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
    }
    if (out[n - 1] != 2.0 * (n - 1) + 1) {
      fprintf(stderr, "allreduce gave a wrong answer\n");
      MPI_Abort(MPI_COMM_WORLD, 2);
    }
    if (rank == 0) printf("allreduce %d %.3f\n", sizes[k], (MPI_Wtime() - t0) * 1e6 / iters);
  }
}

int main(int argc, char **argv) {
  int size;
  const char *what = argc > 1 ? argv[1] : "latency";
  MPI_Init(&argc, &argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  if (size != 2) {
    if (rank == 0) fprintf(stderr, "osu: run with exactly 2 ranks\n");
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
  sbuf = aligned_alloc(4096, 4 << 20);
  rbuf = aligned_alloc(4096, 4 << 20);
  memset(sbuf, 1, 4 << 20);
  memset(rbuf, 0, 4 << 20);
  if (strcmp(what, "latency") == 0) latency();
  else if (strcmp(what, "bw") == 0) bandwidth();
  else allreduce();
  fflush(stdout);
  MPI_Finalize();
  return 0;
}
