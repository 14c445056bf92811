/*
 * progress.c: libsfmpi's one progress hook, and the wait that blocks on any condition.
 *
 * The data plane runs one hook per job at the end of every sf_progress, including the progress
 * made inside every blocking wait (sf_job_set_progress_hook). libsfmpi registers one dispatcher
 * that drives everything of its own that must move while the rank is blocked in an unrelated
 * call: the schedules of non-blocking collectives (sched.c) and the target side of one-sided
 * windows (rma.c). Both use only the data plane's public point-to-point API in contexts of
 * their own, so they work over any transport.
 *
 * sfm_wait_until(cond) waits until cond() holds, for conditions no single data-plane request stands
 * for (a schedule finished, every operation to a window target completed). It posts a receive
 * on a loopback context (SFM_CTX_WAKE) and waits for it with sf_wait, so the data plane's
 * waiting applies unchanged: spin, then sleep on the doorbell, health checks, the wait timeout.
 * The hook evaluates cond after driving the engines and, once it holds, sends the 0-byte
 * message that completes the receive. A stale doorbell message (left by a wait that failed
 * after it was rung) only wakes the next wait early: it re-checks cond and waits again.
 *
 * Contract for the engines: the hook never blocks, never frees a data-plane request that some
 * caller passed to sf_wait/sf_wait_any, and an MPI call leaves the engines' state consistent
 * before it calls anything that can make progress (sf_progress, sf_test, sf_wait..., sf_iprobe).
 */
#include "sfmpi.h"

#include <stdio.h>
#include <string.h>

static struct {
  int (*cond)(void *arg);
  void *arg;
  int rung;
  sf_req *bell;
} sfm_blk;

static int sfm_hook(sf_job *job, void *arg) {
  (void)arg;
  if (sfm.in_hook) return 0;
  sfm.in_hook = 1;
  sfm_sched_progress();
  sfm_rma_progress();
  if (sfm_blk.cond && !sfm_blk.rung && sfm_blk.cond(sfm_blk.arg)) {
    /* An eager 0-byte message to ourselves: it lands in the loopback ring now and completes the
     * doorbell receive at the next drain. Failing to send only delays the wake-up to the next
     * evaluation, so the error is not the hook's. */
    if (sf_isend(job, NULL, 0, sf_job_rank(job), SFM_CTX_WAKE, 0, 0, &sfm_blk.bell) == 0) sfm_blk.rung = 1;
  }
  sfm.in_hook = 0;
  return 0;
}

void sfm_progress_init(void) { sf_job_set_progress_hook(sfm.job, sfm_hook, NULL); }

int sfm_wait_until(int (*cond)(void *arg), const char *(*what)(void *arg), void *arg, const char *fn) {
  int rc = sf_progress(sfm.job);
  if (rc < 0) return sfm_dp_code(fn, rc);
  if (cond(arg)) return MPI_SUCCESS;
  for (;;) {
    sf_req *door = NULL;
    rc = sf_irecv(sfm.job, NULL, 0, SF_ANY_SOURCE, SFM_CTX_WAKE, SF_ANY_TAG, &door);
    if (rc < 0) return sfm_dp_code(fn, rc);
    sfm_blk.cond = cond;
    sfm_blk.arg = arg;
    sfm_blk.rung = 0;
    sfm_blk.bell = NULL;
    sf_job_set_label(sfm.job, fn);
    rc = sf_wait(sfm.job, door, NULL);
    sf_job_set_label(sfm.job, NULL);
    sfm_blk.cond = NULL;
    sf_req_free(sfm.job, door); /* withdrawn if the wait failed before the doorbell rang */
    if (sfm_blk.bell) sf_req_free(sfm.job, sfm_blk.bell);
    sfm_blk.bell = NULL;
    if (rc < 0) {
      /* The data plane names the wait as "... waiting for any rank" (the doorbell's source):
       * say what the caller was really waiting for. */
      const char *m = sf_last_error(), *w = strstr(m, " waiting for ");
      if (rc == SF_ETIMEDOUT && w && what)
        return sfm_code(MPI_ERR_TIMEOUT, "%.*s waiting for %s", (int)(w - m), m, what(arg));
      return sfm_dp_code(fn, rc);
    }
    if (cond(arg)) return MPI_SUCCESS;
  }
}
