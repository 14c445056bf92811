/* failures.c: a fixture that fails on purpose; the runner checks the job ends with the rank and
 * cause named, a non-zero status, and no process left behind.
 *   failures segv R       rank R dereferences NULL while the others wait in a receive from it
 *   failures abort R C    rank R calls MPI_Abort(MPI_COMM_WORLD, C) while the others compute
 *   failures exit R C     rank R calls exit(C) before MPI_Finalize; the others wait in a barrier
 *   failures hang         rank 0 waits for a message nobody sends (needs a short wait timeout)
 *   failures mismatch     rank 0 calls MPI_Allreduce while the others call MPI_Barrier
 * Each rank prints "pid <rank> <pid>" first so the runner can look for leftovers. */
#include "mpi.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv) {
  int r, n, who = argc > 2 ? atoi(argv[2]) : 1, code = argc > 3 ? atoi(argv[3]) : 3, x = 0;
  const char *mode = argc > 1 ? argv[1] : "segv";
  MPI_Init(&argc, &argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &r);
  MPI_Comm_size(MPI_COMM_WORLD, &n);
  printf("pid %d %d\n", r, (int)getpid());
  fflush(stdout);
  MPI_Barrier(MPI_COMM_WORLD);
  if (strcmp(mode, "segv") == 0) {
    if (r == who) {
      volatile int *p = NULL;
      *p = 1;
    }
    MPI_Recv(&x, 1, MPI_INT, who, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
  } else if (strcmp(mode, "abort") == 0) {
    if (r == who) MPI_Abort(MPI_COMM_WORLD, code);
    for (;;) { /* compute forever: must be stopped by the abort */
      x++;
      if (x % 100000000 == 0) usleep(1000);
    }
  } else if (strcmp(mode, "exit") == 0) {
    if (r == who) exit(code);
    MPI_Barrier(MPI_COMM_WORLD);
  } else if (strcmp(mode, "mismatch") == 0) {
    int v = 1, w = 0;
    if (r == 0)
      MPI_Allreduce(&v, &w, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    else
      MPI_Barrier(MPI_COMM_WORLD);
  } else if (strcmp(mode, "hang") == 0) {
    if (r == 0) MPI_Recv(&x, 1, MPI_INT, n - 1, 5, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    MPI_Barrier(MPI_COMM_WORLD);
  }
  printf("rank %d finished\n", r);
  MPI_Finalize();
  return 0;
}
