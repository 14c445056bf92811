/*
 * osu.c: OSU-style micro-benchmarks in one program, built unchanged against libsfmpi, MPICH
 * and Open MPI (benchmarks/c/run.sh). Two ranks; rank 0 prints one line per figure:
 *   lat <bytes> <us>          half round-trip of blocking Send/Recv ping-pong (osu_latency),
 *                             8 B..4 MiB
 *   bw <bytes> <MB/s>         window of 64 Isend / Irecv + ack (osu_bw), 8 B..4 MiB
 *   allreduce <bytes> <us>    MPI_Allreduce of doubles, MPI_SUM, mean per call (osu_allreduce)
 *   put <bytes> <us>          MPI_Put + MPI_Win_flush under a shared lock, rank 1 waiting in a
 *                             barrier, mean per put (osu_put_latency, MPI_Win_allocate, flush)
 *   get <bytes> <us>          the same with MPI_Get (osu_get_latency)
 *   putbw <bytes> <MB/s>      window of 64 puts, then a flush (osu_put_bw)
 *   getbw <bytes> <MB/s>      window of 64 gets, then a flush (osu_get_bw)
 *   iallreduce <bytes> <us>   MPI_Iallreduce + MPI_Wait, mean per call (osu_iallreduce "pure")
 *   overlap <bytes> <%>       share of that time hidden behind computation between start and
 *                             wait (osu_iallreduce's overlap: 100 - 100 (total - compute) / pure)
 * Usage: osu latency|bw|allreduce|put|get|putbw|getbw|iallreduce [min-bytes [max-bytes]]
 * (the sizes bound latency and bw only).
 */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WINDOW 64

static char *sbuf, *rbuf;
static int rank;

static int lo = 8, hi = 4 << 20; /* sizes measured (latency, bw): from argv[2], argv[3] */

static void latency(void) {
  for (int size = lo; size <= hi; size *= 2) {
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
  for (int size = lo; size <= hi; size *= 2) {
    /* Small windows take microseconds: more of them, so a figure is not one scheduler tick. */
    int loops = size <= 1024 ? 2000 : size <= 16384 ? 400 : size <= (1 << 20) ? 40 : 15, skip = loops / 10;
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

/* One-sided: a window of 4 MiB on each rank (MPI_Win_allocate, OSU's allocate option); rank 0
 * issues, rank 1 waits in a barrier (its window must answer while it is there). */
static void rma(int get, int bw) {
  MPI_Win win;
  char *base;
  MPI_Win_allocate(4 << 20, 1, MPI_INFO_NULL, MPI_COMM_WORLD, &base, &win);
  memset(base, 2, 4 << 20);
  for (int size = bw ? 65536 : 8; size <= (bw ? (4 << 20) : (1 << 20)); size *= bw ? 4 : 2) {
    int iters = bw ? (size <= (1 << 20) ? 40 : 15) : size <= 8192 ? 20000 : size <= 131072 ? 2000 : 300;
    int skip = bw ? 3 : iters / 10, per = bw ? WINDOW : 1;
    double t0 = 0;
    MPI_Barrier(MPI_COMM_WORLD);
    if (rank == 0) {
      MPI_Win_lock(MPI_LOCK_SHARED, 1, 0, win);
      for (int i = 0; i < iters + skip; i++) {
        if (i == skip) t0 = MPI_Wtime();
        for (int w = 0; w < per; w++) {
          if (get)
            MPI_Get(rbuf, size, MPI_CHAR, 1, 0, size, MPI_CHAR, win);
          else
            MPI_Put(sbuf, size, MPI_CHAR, 1, 0, size, MPI_CHAR, win);
        }
        MPI_Win_flush(1, win);
      }
      double t = MPI_Wtime() - t0;
      MPI_Win_unlock(1, win);
      if (bw)
        printf("%s %d %.1f\n", get ? "getbw" : "putbw", size, (double)size * per * iters / 1e6 / t);
      else
        printf("%s %d %.3f\n", get ? "get" : "put", size, t * 1e6 / iters);
    }
    MPI_Barrier(MPI_COMM_WORLD);
  }
  if (get && rank == 0 && rbuf[0] != 2) {
    fprintf(stderr, "get gave a wrong answer\n");
    MPI_Abort(MPI_COMM_WORLD, 2);
  }
  MPI_Win_free(&win);
}

/* Busy computation of about `us` microseconds that touches no MPI state. */
static volatile double sink;
static void compute(double us) {
  double t0 = MPI_Wtime(), x = 1.0;
  while ((MPI_Wtime() - t0) * 1e6 < us)
    for (int i = 0; i < 100; i++) x = x * 1.0000001 + 1e-9;
  sink = x;
}

static void iallreduce(void) {
  int sizes[2] = {8, 1 << 20};
  for (int k = 0; k < 2; k++) {
    int n = sizes[k] / 8, iters = k == 0 ? 5000 : 200, skip = iters / 10;
    double *in = (double *)sbuf, *out = (double *)rbuf, t0 = 0, pure, total, comp = 0;
    MPI_Request q;
    for (int i = 0; i < n; i++) in[i] = rank + i;
    MPI_Barrier(MPI_COMM_WORLD);
    for (int i = 0; i < iters + skip; i++) {
      if (i == skip) t0 = MPI_Wtime();
      MPI_Iallreduce(in, out, n, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD, &q);
      MPI_Wait(&q, MPI_STATUS_IGNORE);
    }
    pure = (MPI_Wtime() - t0) * 1e6 / iters;
    MPI_Allreduce(MPI_IN_PLACE, &pure, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    MPI_Barrier(MPI_COMM_WORLD);
    for (int i = 0; i < iters + skip; i++) {
      double c0;
      if (i == skip) t0 = MPI_Wtime();
      MPI_Iallreduce(in, out, n, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD, &q);
      c0 = MPI_Wtime();
      compute(pure);
      if (i >= skip) comp += MPI_Wtime() - c0;
      MPI_Wait(&q, MPI_STATUS_IGNORE);
    }
    total = (MPI_Wtime() - t0) * 1e6 / iters;
    comp = comp * 1e6 / iters;
    if (out[n - 1] != 2.0 * (n - 1) + 1) {
      fprintf(stderr, "iallreduce gave a wrong answer\n");
      MPI_Abort(MPI_COMM_WORLD, 2);
    }
    if (rank == 0) {
      double ov = 100.0 - 100.0 * (total - comp) / pure;
      printf("iallreduce %d %.3f\n", sizes[k], pure);
      printf("overlap %d %.1f\n", sizes[k], ov < 0 ? 0 : ov > 100 ? 100 : ov);
    }
  }
}

int main(int argc, char **argv) {
  int size;
  const char *what = argc > 1 ? argv[1] : "latency";
  MPI_Init(&argc, &argv);
  if (argc > 2) lo = atoi(argv[2]);
  if (argc > 3) hi = atoi(argv[3]);
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
  else if (strcmp(what, "put") == 0) rma(0, 0);
  else if (strcmp(what, "get") == 0) rma(1, 0);
  else if (strcmp(what, "putbw") == 0) rma(0, 1);
  else if (strcmp(what, "getbw") == 0) rma(1, 1);
  else if (strcmp(what, "iallreduce") == 0) iallreduce();
  else allreduce();
  fflush(stdout);
  MPI_Finalize();
  return 0;
}
