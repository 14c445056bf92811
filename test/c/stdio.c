/* stdio.c: standard streams as mpiexec gives them. Rank 0 reads its standard input and every
 * other rank finds end-of-file at once; each rank writes a long line to stdout and one to
 * stderr; with argument "exit R C" rank R returns C from main after MPI_Finalize (the job's
 * status must then be non-zero). */
#include "mpi.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
  int r, n, who = argc > 2 ? atoi(argv[2]) : -1, code = argc > 3 ? atoi(argv[3]) : 0;
  char line[256] = "", big[3001];
  MPI_Init(&argc, &argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &r);
  MPI_Comm_size(MPI_COMM_WORLD, &n);
  if (fgets(line, sizeof line, stdin) == NULL) strcpy(line, "<eof>\n");
  printf("rank %d stdin: %s", r, line);
  memset(big, '0' + r % 10, sizeof big - 1);
  big[sizeof big - 1] = '\0';
  printf("rank %d big %s\n", r, big);
  fprintf(stderr, "rank %d err %s\n", r, big);
  MPI_Finalize();
  if (argc > 1 && strcmp(argv[1], "exit") == 0 && r == who) return code;
  return 0;
}
