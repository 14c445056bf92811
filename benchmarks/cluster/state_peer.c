/* state_peer.c: the Open MPI peers of bench:cluster's state rows. The origin's state is SIZE
 * MiB of doubles (the first half data, the second zero); 8 ranks on several hosts get it:
 *   file PATH   each rank reads its eighth (or all: PATTERN all) from a file on its host
 *   bcast       rank 0 builds it, MPI_Bcast sends all of it to every rank over TCP
 * then each touches its pattern as state-ranks.ts does. Rank 0 prints JSON lines: "past" (ms
 * from rank 0's start of the hand-over to every rank holding its part) and "done".
 *   argv: SIZE_MIB PATTERN (eighth|all) MODE (file PATH | bcast) */
#include <fcntl.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  int rank, size;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  if (argc < 4) MPI_Abort(MPI_COMM_WORLD, 2);
  size_t n = ((size_t)atol(argv[1]) << 20) / sizeof(double);
  int all = strcmp(argv[2], "all") == 0, file = strcmp(argv[3], "file") == 0;
  size_t per = n / (size_t)size, from = all ? 0 : (size_t)rank * per, to = all ? n : from + per;
  double *a = malloc(n * sizeof(double));
  if (!a) MPI_Abort(MPI_COMM_WORLD, 3);
  MPI_Barrier(MPI_COMM_WORLD);
  double t0 = MPI_Wtime();
  if (file) {
    int fd = open(argv[4], O_RDONLY);
    if (fd < 0) MPI_Abort(MPI_COMM_WORLD, 4);
    size_t off = from * sizeof(double), len = (to - from) * sizeof(double);
    while (len > 0) {
      ssize_t r = pread(fd, (char *)a + off, len, (off_t)off);
      if (r <= 0) MPI_Abort(MPI_COMM_WORLD, 5);
      off += (size_t)r, len -= (size_t)r;
    }
    close(fd);
  } else {
    if (rank == 0)
      for (size_t i = 0; i < n; i++) a[i] = i < n / 2 ? (double)(i + 1) : 0;
    for (size_t off = 0; off < n; off += (size_t)1 << 27) /* counts fit an int */
      MPI_Bcast(a + off, (int)(n - off < ((size_t)1 << 27) ? n - off : ((size_t)1 << 27)), MPI_DOUBLE, 0, MPI_COMM_WORLD);
  }
  double past = MPI_Wtime() - t0, sum = 0;
  for (size_t i = from; i < to; i += 512) sum += a[i];
  double done = MPI_Wtime() - t0, lastPast, lastDone;
  MPI_Reduce(&past, &lastPast, 1, MPI_DOUBLE, MPI_MAX, 0, MPI_COMM_WORLD);
  MPI_Reduce(&done, &lastDone, 1, MPI_DOUBLE, MPI_MAX, 0, MPI_COMM_WORLD);
  if (rank == 0) {
    printf("{\"key\":\"past\",\"us\":%.1f}\n{\"key\":\"done\",\"us\":%.1f}\n", lastPast * 1e6, lastDone * 1e6);
    fflush(stdout);
  }
  if (sum < 0) puts("impossible");
  free(a);
  MPI_Finalize();
  return 0;
}
