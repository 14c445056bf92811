/*
 * osu_bw.c: in the style of the OSU Micro-Benchmarks' osu_bw (mpi/pt2pt): rank 0 posts a
 * window of non-blocking sends, rank 1 a window of receives, then a 4-byte ack; reports
 * MB/s per size. Options: -m max_size, -i iterations, -w window size.
 */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_REQ_NUM 1000

int main(int argc, char *argv[])
{
    int myid, numprocs, i, j, c;
    int size, max_size = 1 << 22, loop = 100, skip = 10, window_size = 64;
    char *s_buf = NULL, *r_buf = NULL;
    double t_start = 0.0, t_end = 0.0, t = 0.0;
    MPI_Request request[MAX_REQ_NUM];
    MPI_Status reqstat[MAX_REQ_NUM];

    MPI_Init(&argc, &argv);
    MPI_Comm_size(MPI_COMM_WORLD, &numprocs);
    MPI_Comm_rank(MPI_COMM_WORLD, &myid);
    while ((c = getopt(argc, argv, "m:i:w:")) != -1) {
        if (c == 'm') max_size = atoi(optarg);
        else if (c == 'i') loop = atoi(optarg);
        else if (c == 'w') window_size = atoi(optarg);
    }
    if (numprocs < 2 || window_size > MAX_REQ_NUM) {
        if (myid == 0) fprintf(stderr, "This test requires at least two processes and a window <= %d\n", MAX_REQ_NUM);
        MPI_Finalize();
        return EXIT_FAILURE;
    }
    if (posix_memalign((void **) &s_buf, 4096, (size_t) max_size) ||
        posix_memalign((void **) &r_buf, 4096, (size_t) max_size))
        MPI_Abort(MPI_COMM_WORLD, 1);

    if (myid == 0) {
        fprintf(stdout, "# OSU MPI Bandwidth Test (sfmpi test-suite version)\n");
        fprintf(stdout, "%-*s%*s\n", 10, "# Size", 20, "Bandwidth (MB/s)");
        fflush(stdout);
    }

    for (size = 1; size <= max_size; size *= 2) {
        memset(s_buf, 's', (size_t) size);
        memset(r_buf, 'r', (size_t) size);
        MPI_Barrier(MPI_COMM_WORLD);
        if (myid == 0) {
            for (i = 0; i < loop + skip; i++) {
                if (i == skip) t_start = MPI_Wtime();
                for (j = 0; j < window_size; j++)
                    MPI_Isend(s_buf, size, MPI_CHAR, 1, 100, MPI_COMM_WORLD, request + j);
                MPI_Waitall(window_size, request, reqstat);
                MPI_Recv(r_buf, 4, MPI_CHAR, 1, 101, MPI_COMM_WORLD, &reqstat[0]);
            }
            t_end = MPI_Wtime();
            t = t_end - t_start;
        } else if (myid == 1) {
            for (i = 0; i < loop + skip; i++) {
                for (j = 0; j < window_size; j++)
                    MPI_Irecv(r_buf, size, MPI_CHAR, 0, 100, MPI_COMM_WORLD, request + j);
                MPI_Waitall(window_size, request, reqstat);
                MPI_Send(s_buf, 4, MPI_CHAR, 0, 101, MPI_COMM_WORLD);
            }
            if (r_buf[0] != 's' || r_buf[size - 1] != 's') {
                fprintf(stderr, "osu_bw: received data is wrong at size %d\n", size);
                MPI_Abort(MPI_COMM_WORLD, 2);
            }
        }
        if (myid == 0) {
            double tmp = (double) size / 1e6 * loop * window_size;
            fprintf(stdout, "%-*d%*.*f\n", 10, size, 20, 2, tmp / t);
            fflush(stdout);
        }
    }
    free(s_buf);
    free(r_buf);
    MPI_Finalize();
    return EXIT_SUCCESS;
}
