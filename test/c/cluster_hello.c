/* cluster_hello.c: a C job across hosts. Every rank prints "rank R of N on HOST pid P"; rank 0
 * echoes its standard input ("stdin: LINE"); an allreduce and a 1 MiB ring exchange (rendezvous
 * over TCP between hosts) are checked ("check R ok" or FAIL). Arguments: [exit CODE] makes the
 * last rank exit with CODE after MPI_Finalize; [sleep MS] makes every rank sleep before it. */
#include "mpi.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv) {
  int r, n, len, code = 0, sleep_ms = 0, bad = 0;
  char name[MPI_MAX_PROCESSOR_NAME];
  for (int i = 1; i + 1 < argc; i += 2) {
    if (strcmp(argv[i], "exit") == 0) code = atoi(argv[i + 1]);
    if (strcmp(argv[i], "sleep") == 0) sleep_ms = atoi(argv[i + 1]);
  }
  MPI_Init(&argc, &argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &r);
  MPI_Comm_size(MPI_COMM_WORLD, &n);
  MPI_Get_processor_name(name, &len);
  printf("rank %d of %d on %s pid %d\n", r, n, name, (int)getpid());
  fflush(stdout);
  if (r == 0) {
    char line[256];
    while (fgets(line, sizeof line, stdin)) printf("stdin: %s", line);
    fflush(stdout);
  }
  {
    int x = r + 1, y = 0;
    MPI_Allreduce(&x, &y, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    if (y != n * (n + 1) / 2) bad++;
  }
  {
    int count = 1 << 18, next = (r + 1) % n, prev = (r + n - 1) % n;
    int *out = malloc(sizeof(int) * count), *in = malloc(sizeof(int) * count);
    for (int i = 0; i < count; i++) out[i] = r * 1000 + i;
    MPI_Sendrecv(out, count, MPI_INT, next, 7, in, count, MPI_INT, prev, 7, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    for (int i = 0; i < count; i += 997)
      if (in[i] != prev * 1000 + i) { bad++; break; }
    free(out);
    free(in);
  }
  printf(bad ? "check %d FAIL\n" : "check %d ok\n", r);
  if (sleep_ms) usleep((useconds_t)sleep_ms * 1000);
  MPI_Finalize();
  return r == n - 1 ? code : 0;
}
