/*
 * errors.c: the data plane's error messages (per thread), names, and the one table of MPI
 * error classes that libsfmpi and the Node binding both use.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "internal.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* The last failure's message, per thread: the data plane keeps no process-global state. */
static _Thread_local char sf__errbuf[512];

const char *sf_last_error(void) { return sf__errbuf; }

int sf__err(int code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(sf__errbuf, sizeof sf__errbuf, fmt, ap);
  va_end(ap);
  return code;
}

int sf__errno(const char *what) {
  int e = errno;
  return sf__err(SF_ESYS, "%s: %s", what, strerror(e));
}

static const struct {
  int code;
  const char *name;
  const char *mpi_class; /* MPI_ERR_<this> */
} sf__errors[] = {
    {SF_OK, "SF_OK", "SUCCESS"},
    {SF_EINVAL, "SF_EINVAL", "ERR_ARG"},
    {SF_ENOMEM, "SF_ENOMEM", "ERR_NO_MEM"},
    {SF_ESYS, "SF_ESYS", "ERR_OTHER"},
    {SF_ETIMEDOUT, "SF_ETIMEDOUT", "ERR_TIMEOUT"},
    {SF_EPEERDIED, "SF_EPEERDIED", "ERR_PROC_FAILED"},
    {SF_EABORTED, "SF_EABORTED", "ERR_ABORTED"},
    {SF_ETRUNCATE, "SF_ETRUNCATE", "ERR_TRUNCATE"},
    {SF_EPROTO, "SF_EPROTO", "ERR_INTERN"},
    {SF_ERANGE, "SF_ERANGE", "ERR_ARG"},
    {SF_ESTATE, "SF_ESTATE", "ERR_OTHER"},
    {SF_EMISMATCH, "SF_EMISMATCH", "ERR_OTHER"},
    {SF_ETYPE, "SF_ETYPE", "ERR_TYPE"},
};

const char *sf_error_name(int code) {
  for (size_t i = 0; i < sizeof sf__errors / sizeof sf__errors[0]; i++)
    if (sf__errors[i].code == code) return sf__errors[i].name;
  return "SF_E?";
}

const char *sf_error_class(int code) {
  for (size_t i = 0; i < sizeof sf__errors / sizeof sf__errors[0]; i++)
    if (sf__errors[i].code == code) return sf__errors[i].mpi_class;
  return "ERR_INTERN";
}

double sf_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}
