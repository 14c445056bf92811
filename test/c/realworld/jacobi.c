/*
 * jacobi.c: the textbook 1-D domain-decomposed Jacobi solver (Gropp, Lusk & Skjellum, "Using
 * MPI", ch. 4 style): each rank owns a block of rows, exchanges ghost rows with MPI_Sendrecv,
 * iterates until the global residual (MPI_Allreduce) is small, and rank 0 prints the
 * iteration count and the residual. The answer does not depend on the number of ranks.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include "mpi.h"

#define N 64 /* global grid N x N, boundary fixed */

int main(int argc, char **argv)
{
    int rank, size, i, j, it, lo, hi, rows, up, down;
    double *x, *xnew, diffnorm, gdiffnorm = 1.0;

    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);

    /* rows [lo, hi) of the interior 1..N-2 belong to this rank */
    lo = 1 + (N - 2) * rank / size;
    hi = 1 + (N - 2) * (rank + 1) / size;
    rows = hi - lo;
    x = calloc((size_t) (rows + 2) * N, sizeof(double));
    xnew = calloc((size_t) (rows + 2) * N, sizeof(double));
    for (i = 0; i < rows + 2; i++)
        for (j = 0; j < N; j++) {
            int gi = lo - 1 + i;
            x[i * N + j] = (gi == 0 || j == 0 || j == N - 1) ? 1.0 : (gi == N - 1 ? 2.0 : 0.0);
        }
    up = rank > 0 ? rank - 1 : MPI_PROC_NULL;
    down = rank < size - 1 ? rank + 1 : MPI_PROC_NULL;

    for (it = 0; it < 100000 && gdiffnorm > 1e-6; it++) {
        MPI_Sendrecv(&x[rows * N], N, MPI_DOUBLE, down, 0, &x[0], N, MPI_DOUBLE, up, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        MPI_Sendrecv(&x[1 * N], N, MPI_DOUBLE, up, 1, &x[(rows + 1) * N], N, MPI_DOUBLE, down, 1, MPI_COMM_WORLD,
                     MPI_STATUS_IGNORE);
        diffnorm = 0.0;
        for (i = 1; i <= rows; i++)
            for (j = 1; j < N - 1; j++) {
                xnew[i * N + j] = (x[i * N + j + 1] + x[i * N + j - 1] + x[(i + 1) * N + j] + x[(i - 1) * N + j]) / 4.0;
                diffnorm += (xnew[i * N + j] - x[i * N + j]) * (xnew[i * N + j] - x[i * N + j]);
            }
        for (i = 1; i <= rows; i++)
            for (j = 1; j < N - 1; j++)
                x[i * N + j] = xnew[i * N + j];
        MPI_Allreduce(&diffnorm, &gdiffnorm, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
        gdiffnorm = sqrt(gdiffnorm);
    }
    if (rank == 0)
        printf("jacobi: converged after %d iterations, residual %.3e\n", it, gdiffnorm);
    free(x);
    free(xnew);
    MPI_Finalize();
    return 0;
}
