/*
 * hello_c.c: the classic "hello world" (Open MPI examples/hello_c.c), plus a long line per
 * rank so a runner can check that every rank's output arrives whole.
 */
#include <stdio.h>
#include <string.h>
#include "mpi.h"

int main(int argc, char* argv[])
{
    int rank, size, len;
    char version[MPI_MAX_LIBRARY_VERSION_STRING];
    char line[6001];

    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    MPI_Get_library_version(version, &len);
    printf("Hello, world, I am %d of %d, (%s, %d)\n",
           rank, size, version, len);
    memset(line, 'a' + rank % 26, sizeof line - 1);
    line[sizeof line - 1] = '\0';
    printf("long %d %s end\n", rank, line);
    MPI_Finalize();

    return 0;
}
