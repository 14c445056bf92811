/*
 * sft.h: tiny check helpers for the C MPI test programs. Each program checks its answers on
 * every rank; rank 0 prints one verdict line the runner reads:
 *   VERDICT <area> PASS            or    VERDICT <area> FAIL <n> failed checks (first: ...)
 * and every rank exits non-zero when any check failed anywhere.
 */
#ifndef SFT_H
#define SFT_H

#include "mpi.h"
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Our error messages name the arguments; other MPIs (used to validate these tests) differ. */
#ifdef SFMPI
#define SFMPI_DETAIL 1
#else
#define SFMPI_DETAIL 0
#endif

static int sft_fails;
static char sft_first[256];
static int sft_rank, sft_size;

static void sft_fail(const char *file, int line, const char *fmt, ...) {
  char msg[200];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (sft_fails++ == 0) snprintf(sft_first, sizeof sft_first, "rank %d %s:%d: %s", sft_rank, file, line, msg);
  if (sft_fails <= 10) fprintf(stderr, "rank %d: FAIL %s:%d: %s\n", sft_rank, file, line, msg);
}

#define CHECK(cond, ...)                                  \
  do {                                                    \
    if (!(cond)) sft_fail(__FILE__, __LINE__, __VA_ARGS__); \
  } while (0)

/* Check an MPI call returned MPI_SUCCESS (use with MPI_ERRORS_RETURN). */
#define CHECK_MPI(call)                                                         \
  do {                                                                          \
    int rc_ = (call);                                                           \
    if (rc_ != MPI_SUCCESS) {                                                   \
      char es_[MPI_MAX_ERROR_STRING];                                           \
      int el_;                                                                  \
      MPI_Error_string(rc_, es_, &el_);                                         \
      sft_fail(__FILE__, __LINE__, "%s returned %d: %s", #call, rc_, es_);       \
    }                                                                           \
  } while (0)

static void sft_init(int *argc, char ***argv) {
  MPI_Init(argc, argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &sft_rank);
  MPI_Comm_size(MPI_COMM_WORLD, &sft_size);
}

/* Gather the verdict, finalize, and return the exit code for main. */
static int sft_finish(const char *area) {
  int total = 0, rc;
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  rc = MPI_Allreduce(&sft_fails, &total, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
  if (rc != MPI_SUCCESS) {
    char es[MPI_MAX_ERROR_STRING];
    int el;
    MPI_Error_string(rc, es, &el);
    printf("VERDICT %s FAIL rank %d could not collect the verdict: %s\n", area, sft_rank, es);
    fflush(stdout);
    return 1;
  }
  if (sft_rank == 0) {
    if (total == 0) {
      printf("VERDICT %s PASS (%d ranks)\n", area, sft_size);
    } else if (sft_fails > 0) {
      printf("VERDICT %s FAIL %d failed checks (first: %s)\n", area, total, sft_first);
    } else {
      printf("VERDICT %s FAIL %d failed checks on other ranks (see stderr)\n", area, total);
    }
    fflush(stdout);
  }
  MPI_Finalize();
  return total == 0 ? 0 : 1;
}

#endif
