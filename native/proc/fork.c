/*
 * fork.c: the C fork path of a job (sf_job_fork, declared in sf_dataplane.h): the host's first
 * rank forks the others at the fork point. Node forks by itself (native/addon/fork.cc: V8 needs
 * preparation) and uses the same attach steps.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "sf_dataplane.h"
#include "sf_proc.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

int sf__err(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

int sf_job_fork(sf_job *job) {
  pid_t origin = getpid(), pid;
  int r, rc, n = sf_job_local_count(job);

  if (job == NULL) return sf__err(SF_EINVAL, "sf_job_fork: job is NULL");
  if (sf_job_rank(job) >= 0) return sf__err(SF_ESTATE, "sf_job_fork: already attached");
  fflush(NULL); /* nothing buffered may be printed twice */
  for (r = 1; r < n; r++) {
    pid = fork();
    if (pid < 0) {
      rc = sf__err(SF_ESYS, "fork of rank %d: %s", sf_job_local_world(job, r), strerror(errno));
      goto fail;
    }
    if (pid == 0) {
      /* A clone must not outlive its origin: die with it, and close the race where the origin
       * died before prctl took effect. Nothing of the caller's code has run here yet. */
      if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != origin) _exit(127);
      rc = sf_job_attach(job, sf_job_local_world(job, r));
      if (rc < 0) _exit(127);
      return sf_job_local_world(job, r);
    }
    sf_job_set_pid(job, sf_job_local_world(job, r), pid);
  }
  rc = sf_job_attach(job, sf_job_local_world(job, 0));
  if (rc < 0) goto fail;
  return sf_job_local_world(job, 0);

fail:
  /* Leave no clone behind: kill and reap those already forked. */
  for (int k = 1; k < r && k < n; k++) {
    pid_t p = sf_job_pid(job, sf_job_local_world(job, k));
    if (p > 0) {
      kill(p, SIGKILL); /* ESRCH: already gone, reaped below either way */
      while (waitpid(p, NULL, 0) < 0 && errno == EINTR) {}
    }
  }
  return rc;
}
