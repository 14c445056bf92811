/* MPICH peer of benchmarks/allreduce: time per MPI_Allreduce (MPI_SUM of doubles) for each
 * element count, one JSON line per count ({"count":..,"us":..}); same iterations as ranks.ts. */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

static int iters_for(long bytes) {
  long n = 500000000L / (bytes > 25000 ? bytes : 25000);
  return (int)(n < 20 ? 20 : n > 20000 ? 20000 : n);
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  int rank;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  for (int a = 1; a < argc; a++) {
    long count = atol(argv[a]);
    double *in = malloc(count * sizeof(double)), *out = malloc(count * sizeof(double));
    for (long i = 0; i < count; i++) in[i] = rank + i;
    int iters = iters_for(count * 8), warm = iters / 10 + (iters < 5000 ? iters : 5000); /* as ranks.ts (JIT warm-up) */
    double t0 = 0;
    for (int i = -warm; i < iters; i++) {
      if (i == 0) { MPI_Barrier(MPI_COMM_WORLD); t0 = MPI_Wtime(); }
      MPI_Allreduce(in, out, (int)count, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
    }
    double us = (MPI_Wtime() - t0) * 1e6 / iters;
    if (rank == 0) printf("{\"key\":\"%ld\",\"us\":%.4f,\"iters\":%d,\"check\":%g}\n", count, us, iters, out[count - 1]);
    fflush(stdout);
    free(in);
    free(out);
  }
  MPI_Finalize();
  return 0;
}
