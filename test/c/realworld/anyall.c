/*
 * anyall.c: in the style of the MPICH test suite (test/mpi/pt2pt/anyall.c): post a batch of
 * receives, complete them with a mix of MPI_Waitany and MPI_Waitall, and check each buffer.
 */
#include "mpi.h"
#include <stdio.h>
#include <stdlib.h>

#define MAX_MSGS 30

int main(int argc, char *argv[])
{
    int errs = 0, toterrs;
    int rank, size, partner, i, j, k, idx;
    int *buf[MAX_MSGS];
    MPI_Request r[MAX_MSGS];
    MPI_Status s[MAX_MSGS];

    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);

    for (i = 0; i < MAX_MSGS; i++)
        buf[i] = (int *) malloc(sizeof(int) * 10 * (i + 1));

    if (size >= 2 && rank < 2) {
        partner = 1 - rank;
        for (k = 0; k < 3; k++) {
            if (rank == 0) {
                for (i = 0; i < MAX_MSGS; i++) {
                    for (j = 0; j < 10 * (i + 1); j++)
                        buf[i][j] = i * 1000 + j + k;
                    MPI_Send(buf[i], 10 * (i + 1), MPI_INT, partner, i, MPI_COMM_WORLD);
                }
            } else {
                for (i = 0; i < MAX_MSGS; i++) {
                    for (j = 0; j < 10 * (i + 1); j++)
                        buf[i][j] = -1;
                    MPI_Irecv(buf[i], 10 * (i + 1), MPI_INT, partner, i, MPI_COMM_WORLD, &r[i]);
                }
                /* complete half with Waitany, the rest with Waitall */
                for (i = 0; i < MAX_MSGS / 2; i++) {
                    MPI_Waitany(MAX_MSGS, r, &idx, &s[0]);
                    if (idx == MPI_UNDEFINED || s[0].MPI_TAG != idx) {
                        errs++;
                        fprintf(stderr, "Waitany returned index %d with tag %d\n", idx, s[0].MPI_TAG);
                    }
                }
                MPI_Waitall(MAX_MSGS, r, s);
                for (i = 0; i < MAX_MSGS; i++)
                    for (j = 0; j < 10 * (i + 1); j++)
                        if (buf[i][j] != i * 1000 + j + k) {
                            errs++;
                            if (errs < 10)
                                fprintf(stderr, "buf[%d][%d] = %d\n", i, j, buf[i][j]);
                        }
            }
        }
    }

    MPI_Allreduce(&errs, &toterrs, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    if (rank == 0) {
        if (toterrs == 0)
            printf(" No Errors\n");
        else
            printf(" Found %d errors\n", toterrs);
    }
    for (i = 0; i < MAX_MSGS; i++)
        free(buf[i]);
    MPI_Finalize();
    return 0;
}
