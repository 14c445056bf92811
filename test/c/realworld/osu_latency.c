/*
 * osu_latency.c: in the style of the OSU Micro-Benchmarks' osu_latency (mpi/pt2pt): ping-pong
 * between ranks 0 and 1 with blocking MPI_Send/MPI_Recv on page-aligned buffers, skipping
 * warm-up iterations, printing "# Size  Latency (us)". Options: -m max_size, -i iterations,
 * -x warm-up iterations. Extra ranks wait at the final barrier, as in OMB.
 */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_MSG_SIZE (1 << 22)
#define FIELD_WIDTH 20
#define FLOAT_PRECISION 2

int main(int argc, char *argv[])
{
    int myid, numprocs, i, c;
    int size, max_size = MAX_MSG_SIZE, iterations = 1000, skip = 100;
    char *s_buf = NULL, *r_buf = NULL;
    double t_start = 0.0, t_end = 0.0;
    MPI_Status reqstat;

    MPI_Init(&argc, &argv);
    MPI_Comm_size(MPI_COMM_WORLD, &numprocs);
    MPI_Comm_rank(MPI_COMM_WORLD, &myid);

    while ((c = getopt(argc, argv, "m:i:x:")) != -1) {
        switch (c) {
        case 'm': max_size = atoi(optarg); break;
        case 'i': iterations = atoi(optarg); break;
        case 'x': skip = atoi(optarg); break;
        default:
            if (myid == 0) fprintf(stderr, "usage: osu_latency [-m max_size] [-i iters] [-x skip]\n");
            MPI_Finalize();
            return EXIT_FAILURE;
        }
    }

    if (numprocs < 2) {
        if (myid == 0) fprintf(stderr, "This test requires at least two processes\n");
        MPI_Finalize();
        return EXIT_FAILURE;
    }

    if (posix_memalign((void **) &s_buf, (size_t) sysconf(_SC_PAGESIZE), (size_t) max_size) ||
        posix_memalign((void **) &r_buf, (size_t) sysconf(_SC_PAGESIZE), (size_t) max_size)) {
        fprintf(stderr, "Error allocating host memory\n");
        MPI_Abort(MPI_COMM_WORLD, EXIT_FAILURE);
    }

    if (myid == 0) {
        fprintf(stdout, "# OSU MPI Latency Test (sfmpi test-suite version)\n");
        fprintf(stdout, "%-*s%*s\n", 10, "# Size", FIELD_WIDTH, "Latency (us)");
        fflush(stdout);
    }

    for (size = 0; size <= max_size; size = (size ? size * 2 : 1)) {
        memset(s_buf, 'a', (size_t) size);
        memset(r_buf, 'b', (size_t) size);
        if (size > 8192) {
            iterations = iterations > 100 ? 100 : iterations;
            skip = skip > 10 ? 10 : skip;
        }

        MPI_Barrier(MPI_COMM_WORLD);

        if (myid == 0) {
            for (i = 0; i < iterations + skip; i++) {
                if (i == skip) t_start = MPI_Wtime();
                MPI_Send(s_buf, size, MPI_CHAR, 1, 1, MPI_COMM_WORLD);
                MPI_Recv(r_buf, size, MPI_CHAR, 1, 1, MPI_COMM_WORLD, &reqstat);
            }
            t_end = MPI_Wtime();
        } else if (myid == 1) {
            for (i = 0; i < iterations + skip; i++) {
                MPI_Recv(r_buf, size, MPI_CHAR, 0, 1, MPI_COMM_WORLD, &reqstat);
                MPI_Send(s_buf, size, MPI_CHAR, 0, 1, MPI_COMM_WORLD);
            }
        }

        if (myid == 0) {
            double latency = (t_end - t_start) * 1e6 / (2.0 * iterations);
            fprintf(stdout, "%-*d%*.*f\n", 10, size, FIELD_WIDTH, FLOAT_PRECISION, latency);
            fflush(stdout);
        }
    }

    free(s_buf);
    free(r_buf);
    MPI_Barrier(MPI_COMM_WORLD);
    MPI_Finalize();
    return EXIT_SUCCESS;
}
