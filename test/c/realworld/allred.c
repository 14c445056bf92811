/*
 * allred.c: in the style of the MPICH test suite (test/mpi/coll/allred.c): MPI_Allreduce of
 * every predefined arithmetic op over several C types; rank 0 prints " No Errors" when all
 * answers are right (the suite's convention), else the error count.
 */
#include "mpi.h"
#include <stdio.h>
#include <stdlib.h>

unsigned count;
int size, rank;
int cerrcnt;

#define ALLRED_TEST(type, mpi_type, op, expr_in, expr_out)                   \
    {                                                                         \
        type *in = (type *) malloc((size_t) count * sizeof(type));            \
        type *out = (type *) malloc((size_t) count * sizeof(type));           \
        int i;                                                                \
        for (i = 0; i < (int) count; i++) {                                         \
            in[i] = (type) (expr_in);                                         \
            out[i] = 0;                                                       \
        }                                                                     \
        MPI_Allreduce(in, out, (int) count, mpi_type, op, MPI_COMM_WORLD);    \
        for (i = 0; i < (int) count; i++) {                                   \
            if (out[i] != (type) (expr_out)) {                                \
                cerrcnt++;                                                    \
                if (cerrcnt < 10)                                             \
                    fprintf(stderr, "%s %s [%d]: got %g want %g\n", #mpi_type, \
                            #op, i, (double) out[i], (double) (expr_out));    \
            }                                                                 \
        }                                                                     \
        free(in);                                                             \
        free(out);                                                            \
    }

#define TEST_ALL(type, mpi_type)                                                   \
    ALLRED_TEST(type, mpi_type, MPI_SUM, i % 8, (i % 8) * size)                    \
    ALLRED_TEST(type, mpi_type, MPI_PROD, (rank < 4 ? 2 : 1), (size < 4 ? (1 << size) : 16)) \
    ALLRED_TEST(type, mpi_type, MPI_MAX, rank + i % 8, size - 1 + i % 8)           \
    ALLRED_TEST(type, mpi_type, MPI_MIN, rank + i % 8, i % 8)

int main(int argc, char **argv)
{
    int toterr;

    MPI_Init(&argc, &argv);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);

    for (count = 1; count < 65000; count = count * 2) {
        TEST_ALL(char, MPI_CHAR)
        TEST_ALL(signed char, MPI_SIGNED_CHAR)
        TEST_ALL(unsigned char, MPI_UNSIGNED_CHAR)
        TEST_ALL(short, MPI_SHORT)
        TEST_ALL(unsigned short, MPI_UNSIGNED_SHORT)
        TEST_ALL(int, MPI_INT)
        TEST_ALL(unsigned, MPI_UNSIGNED)
        TEST_ALL(long, MPI_LONG)
        TEST_ALL(unsigned long, MPI_UNSIGNED_LONG)
        TEST_ALL(long long, MPI_LONG_LONG)
        TEST_ALL(float, MPI_FLOAT)
        TEST_ALL(double, MPI_DOUBLE)
    }

    MPI_Allreduce(&cerrcnt, &toterr, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    if (rank == 0) {
        if (toterr == 0)
            printf(" No Errors\n");
        else
            printf(" Found %d errors\n", toterr);
    }
    MPI_Finalize();
    return toterr != 0;
}
