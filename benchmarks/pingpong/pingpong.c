/* MPICH peer of benchmarks/pingpong: half round-trip time of MPI_Send/MPI_Recv between ranks 0
 * and 1 for each size, printed as one JSON line per size ({"size":..,"us":..}). The same sizes,
 * iteration counts and warm-up as ranks.ts, so the figures compare like for like. */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int iters_for(long bytes) {
  long n = 500000000L / (bytes > 25000 ? bytes : 25000);
  return (int)(n < 20 ? 20 : n > 20000 ? 20000 : n);
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  int rank;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  long sizes[16];
  int nsizes = 0;
  for (int i = 1; i < argc && nsizes < 16; i++) sizes[nsizes++] = atol(argv[i]);
  for (int s = 0; s < nsizes; s++) {
    long bytes = sizes[s];
    char *buf = malloc(bytes > 0 ? bytes : 1);
    memset(buf, rank + 1, bytes);
    int iters = iters_for(bytes), warm = iters / 10 + (iters < 5000 ? iters : 5000); /* as ranks.ts (JIT warm-up) */
    double t0 = 0;
    for (int i = -warm; i < iters; i++) {
      if (i == 0) { MPI_Barrier(MPI_COMM_WORLD); t0 = MPI_Wtime(); }
      if (rank == 0) {
        MPI_Send(buf, (int)bytes, MPI_BYTE, 1, 0, MPI_COMM_WORLD);
        MPI_Recv(buf, (int)bytes, MPI_BYTE, 1, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
      } else if (rank == 1) {
        MPI_Recv(buf, (int)bytes, MPI_BYTE, 0, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        MPI_Send(buf, (int)bytes, MPI_BYTE, 0, 0, MPI_COMM_WORLD);
      }
    }
    double us = (MPI_Wtime() - t0) * 1e6 / (2.0 * iters);
    if (rank == 0) printf("{\"key\":\"%ld\",\"us\":%.4f,\"iters\":%d}\n", bytes, us, iters);
    fflush(stdout);
    free(buf);
  }
  MPI_Finalize();
  return 0;
}
