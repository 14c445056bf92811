/*
 * jobctl.c: the job's processes and the launcher (docs/launcher-protocol.md).
 *
 *   - after the fork: clones take /dev/null as stdin; each rank makes its SFMPI_STDIO_FDS pair
 *     its stdout/stderr and sends `fork` on SFMPI_CONTROL_FD (sfm_jobctl_started);
 *   - the origin runs a watcher thread that notices a clone's death at once (pidfd), reports
 *     `fail` with the signal or code, and ends the job when another rank aborted it;
 *   - ending the job: sfm_fatal (an error under MPI_ERRORS_ARE_FATAL), MPI_Abort, a failed
 *     MPI_Init (sfm_init_fail), and at exit the origin reaps every clone (killing them first if
 *     it exits without MPI_Finalize), sending `exit` (and `fail` for failures) for each, then
 *     for itself.
 *
 * Its interface to the rest of libsfmpi is the five functions declared under "Job control" in
 * sfmpi.h (and MPI_Abort): the rest is private, so a shared native process-management module
 * can replace the inside without touching the MPI layer.
 */
#include "sfmpi.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

static pthread_t sfm_watcher;
static int sfm_watcher_on;
static atomic_int sfm_watcher_stop;
static atomic_int sfm_terminating;

/* ---- ending the job ----------------------------------------------------------------------- */

static int sfm_status_code(int status) {
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  return 1;
}

static void sfm_describe(int status, int finished, char *buf, size_t len) {
  if (WIFSIGNALED(status)) {
    const char *ab = sigabbrev_np(WTERMSIG(status));
    snprintf(buf, len, "was killed by signal %d (SIG%s)", WTERMSIG(status), ab ? ab : "?");
  } else {
    snprintf(buf, len, "exited with code %d%s", WEXITSTATUS(status), finished ? "" : " before MPI_Finalize");
  }
}

static int sfm_abnormal(int status) { return WIFSIGNALED(status) || (WIFEXITED(status) && WEXITSTATUS(status) != 0); }

/* Origin only. Reaping happens in two threads (the watcher reaps clones that end after
 * MPI_Finalize, so no zombie lingers; the main thread reaps the rest at exit): one lock and a
 * reaped flag per clone make sure a pid is never waited for, or killed, once it was reaped. */
static pthread_mutex_t sfm_reap_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned char sfm_reaped[SF_MAX_RANKS];
static atomic_int sfm_finalized_flag;

/* Reap clone r (blocking or not) and report `exit` (and `fail` when it failed and nobody
 * reported it yet). `kill_first`: it cannot finish anyway; its death is our doing, not a cause. */
static void sfm_reap_one(int r, int kill_first, int block) {
  pid_t pid = sf_job_pid(sfm.job, r), w;
  int status = 0;
  if (pid <= 0) return;
  pthread_mutex_lock(&sfm_reap_lock);
  if (!sfm_reaped[r]) {
    if (kill_first) kill(pid, SIGKILL); /* ESRCH: it ended by itself; waitpid tells how */
    do {
      w = waitpid(pid, &status, block ? 0 : WNOHANG);
    } while (w < 0 && errno == EINTR);
    if (w == pid) {
      sfm_reaped[r] = 1;
      if (sfm_abnormal(status) && !kill_first && sf_job_claim_fail_report(sfm.job, r)) {
        char how[128];
        sfm_describe(status, 1, how, sizeof how);
        sf_ctl_fail(sfm.ctl_fd, r, sfm_status_code(status), WIFSIGNALED(status) ? WTERMSIG(status) : 0, how);
      }
      sf_ctl_exit(sfm.ctl_fd, r, sfm_status_code(status));
    }
  }
  pthread_mutex_unlock(&sfm_reap_lock);
}

static void sfm_reap_clones(int kill_first) {
  for (int r = 1; r < sfm.size; r++) sfm_reap_one(r, kill_first, 1);
}

static void sfm_kill_clones(void) {
  for (int r = 1; r < sfm.size; r++) {
    pid_t pid = sf_job_pid(sfm.job, r);
    if (r == sfm.rank || pid <= 0) continue;
    if (sfm.rank == 0) pthread_mutex_lock(&sfm_reap_lock); /* never kill a reaped (reused) pid */
    if (sfm.rank != 0 || !sfm_reaped[r]) kill(pid, SIGKILL); /* ESRCH: already gone */
    if (sfm.rank == 0) pthread_mutex_unlock(&sfm_reap_lock);
  }
}

/* Origin: report clones that already died abnormally and nobody reported yet (the root cause
 * of a failure must reach the launcher before the clones we kill now). */
static void sfm_report_dead_clones(void) {
  for (int r = 1; r < sfm.size; r++) {
    siginfo_t si;
    pid_t pid = sf_job_pid(sfm.job, r);
    int status;
    memset(&si, 0, sizeof si);
    if (pid <= 0 || waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) != 0 || si.si_pid != pid) continue;
    status = si.si_code == CLD_EXITED ? (si.si_status & 0xff) << 8 : (si.si_status & 0x7f);
    if (sfm_abnormal(status) && sf_job_claim_fail_report(sfm.job, r)) {
      char how[160];
      if (!sf_job_peer_death(sfm.job, r, how, sizeof how)) sfm_describe(status, 0, how, sizeof how);
      sf_ctl_fail(sfm.ctl_fd, r, sfm_status_code(status), WIFSIGNALED(status) ? WTERMSIG(status) : 0, how);
    }
  }
}

/* End this rank (and, from the origin, the job) with `code` after a failure already reported. */
static void sfm_terminate(int code) __attribute__((noreturn));
static void sfm_terminate(int code) {
  if (atomic_exchange(&sfm_terminating, 1)) {
    /* Another thread of this process is already ending it. */
    for (;;) pause();
  }
  int ar = -1;
  /* Main thread of the origin only: the watcher thread ends the job only after an abort by
   * another rank, and then what died is the aborter's doing. */
  if (sfm.rank == 0 && !(sf_job_aborted(sfm.job, &ar, NULL, NULL, 0) && ar != 0)) sfm_report_dead_clones();
  sfm_kill_clones();
  if (sfm.rank == 0) {
    sfm_reap_clones(1);
    sf_ctl_exit(sfm.ctl_fd, 0, code);
  }
  fflush(stdout);
  fflush(stderr);
  _exit(code);
}

/* Did another rank already fail in a way that is (or will be) reported as the root cause? */
static int sfm_other_failed_first(void) {
  for (int r = 0; r < sfm.size; r++) {
    int st;
    if (r != sfm.rank && sf_job_peer_status(sfm.job, r, &st) && (st < 0 || sfm_abnormal(st))) return 1;
  }
  return 0;
}

void sfm_fatal(int code, const char *msg) {
  int ar = -1, acode = 1;
  char cause[256];
  if (sfm.job && sf_job_aborted(sfm.job, &ar, &acode, cause, sizeof cause) && ar != sfm.rank) {
    /* Another rank aborted the job and reported it: leave quietly with its code. */
    sf_job_claim_fail_report(sfm.job, sfm.rank);
    sfm_terminate(acode ? acode : 1);
  }
  fprintf(stderr, "sfmpi: rank %d: %s\n", sfm.rank, msg);
  if (sfm.job && (code & 0xff) == MPI_ERR_PROC_FAILED && sfm_other_failed_first()) {
    /* Failing because a peer died is not the cause: the dead peer is reported (by the origin,
     * which reaps it). This rank leaves without a report of its own, without aborting the job
     * and without killing anyone, so the root cause stays the first failure the launcher sees;
     * the other ranks notice the dead peer by themselves. */
    sf_job_claim_fail_report(sfm.job, sfm.rank);
    if (sfm.rank == 0) sfm_terminate(1);
    fflush(stdout);
    fflush(stderr);
    _exit(1);
  }
  if (sfm.job) {
    /* Report before raising the abort word: the origin, woken by the word, may kill this rank
     * before it has written its cause, and the launcher would name the origin instead. */
    if (sf_job_claim_fail_report(sfm.job, sfm.rank)) sf_ctl_fail(sfm.ctl_fd, sfm.rank, 1, 0, msg);
    sf_job_abort(sfm.job, 1, msg);
  }
  sfm_terminate(1);
}

int MPI_Abort(MPI_Comm comm, int errorcode) {
  char cause[64];
  (void)comm;
  snprintf(cause, sizeof cause, "MPI_Abort(%d)", errorcode);
  fflush(stdout);
  fprintf(stderr, "sfmpi: rank %d: MPI_Abort(comm, %d) called\n", sfm.rank, errorcode);
  if (sfm.job) {
    /* Cause first, then the word that wakes (and lets the origin kill) the others. */
    if (sf_job_claim_fail_report(sfm.job, sfm.rank)) sf_ctl_fail(sfm.ctl_fd, sfm.rank, errorcode, 0, cause);
    sf_job_abort(sfm.job, errorcode, cause);
  }
  sfm_terminate(errorcode);
}

/* Origin's watcher: a clone's death is reported the moment it happens, not at the next MPI call. */
static void *sfm_watch(void *arg) {
  int n = sfm.size, *fds = calloc((size_t)n, sizeof *fds);
  struct pollfd *pfds = calloc((size_t)n, sizeof *pfds);
  int *seen = calloc((size_t)n, sizeof *seen);
  (void)arg;
  if (fds == NULL || pfds == NULL || seen == NULL) goto out;
  for (int r = 1; r < n; r++) fds[r] = (int)syscall(SYS_pidfd_open, sf_job_pid(sfm.job, r), 0);
  while (!atomic_load(&sfm_watcher_stop)) {
    int np = 0, ar, acode;
    for (int r = 1; r < n; r++)
      if (!seen[r] && fds[r] >= 0) {
        pfds[np].fd = fds[r];
        pfds[np].events = POLLIN;
        pfds[np].revents = 0;
        np++;
      }
    /* Errors (EINTR) just shorten the tick: every clone is checked with waitid below anyway. */
    poll(pfds, (nfds_t)np, SF_TICK_MS);
    if (atomic_load(&sfm_watcher_stop)) break;
    for (int r = 1; r < n; r++) {
      siginfo_t si;
      int status;
      if (seen[r] || fds[r] < 0) continue;
      memset(&si, 0, sizeof si);
      if (waitid(P_PID, (id_t)sf_job_pid(sfm.job, r), &si, WEXITED | WNOHANG | WNOWAIT) != 0 || si.si_pid == 0) continue;
      seen[r] = 1;
      status = si.si_code == CLD_EXITED ? (si.si_status & 0xff) << 8 : (si.si_status & 0x7f);
      if (atomic_load(&sfm_finalized_flag)) {
        sfm_reap_one(r, 0, 0); /* past MPI_Finalize: reap and report it now, no zombie lingers */
        continue;
      }
      /* Once the job was aborted, deaths are its consequence (ranks killed by the aborter). */
      if (sfm_abnormal(status) && !sf_job_aborted(sfm.job, NULL, NULL, NULL, 0) && sf_job_claim_fail_report(sfm.job, r)) {
        char how[128];
        sfm_describe(status, 0, how, sizeof how);
        sf_ctl_fail(sfm.ctl_fd, r, sfm_status_code(status), WIFSIGNALED(status) ? WTERMSIG(status) : 0, how);
      }
    }
    if (sf_job_aborted(sfm.job, &ar, &acode, NULL, 0) && ar != 0) sfm_terminate(acode ? acode : 1);
  }
out:
  if (fds)
    for (int r = 1; r < n; r++)
      if (fds[r] >= 0) close(fds[r]);
  free(fds);
  free(pfds);
  free(seen);
  return NULL;
}

static void sfm_on_exit(int status, void *arg) {
  (void)arg;
  if (sfm.job == NULL || atomic_load(&sfm_terminating)) return;
  if (sfm.rank != 0) return; /* the origin reports clones */
  if (sfm_watcher_on) {
    atomic_store(&sfm_watcher_stop, 1);
    pthread_join(sfm_watcher, NULL);
    sfm_watcher_on = 0;
  }
  fflush(NULL);
  sfm_reap_clones(!sfm.finalized);
  if (status != 0 && sf_job_claim_fail_report(sfm.job, 0)) {
    char how[96];
    snprintf(how, sizeof how, "exited with code %d%s", status, sfm.finalized ? "" : " before MPI_Finalize");
    sf_ctl_fail(sfm.ctl_fd, 0, status, 0, how);
  }
  sf_ctl_exit(sfm.ctl_fd, 0, status);
}

/* ---- start-up ------------------------------------------------------------------------------ */

void sfm_init_fail(const char *what) {
  fprintf(stderr, "sfmpi: MPI_Init: %s\n", what);
  sf_ctl_fail(sfm.ctl_fd, sfm.rank, 1, 0, what);
  if (sfm.rank == 0 && sfm.job) sfm_reap_clones(1);
  _exit(1);
}

static void sfm_apply_stdio(void) {
  const char *s = getenv("SFMPI_STDIO_FDS");
  int fds[2 * SF_MAX_RANKS], n = 0;
  char buf[64];
  if (s == NULL || *s == '\0') return;
  while (*s && n < 2 * SF_MAX_RANKS) {
    char *end;
    long v = strtol(s, &end, 10);
    if (end == s || v < 0 || v > 1 << 20) sfm_init_fail("SFMPI_STDIO_FDS is not a comma list of fds");
    fds[n++] = (int)v;
    s = *end == ',' ? end + 1 : end;
    if (*end != ',' && *end != '\0') sfm_init_fail("SFMPI_STDIO_FDS is not a comma list of fds");
  }
  if (n != 2 * sfm.size) {
    snprintf(buf, sizeof buf, "SFMPI_STDIO_FDS has %d fds, expected %d", n, 2 * sfm.size);
    sfm_init_fail(buf);
  }
  fflush(stdout);
  fflush(stderr);
  if (dup2(fds[2 * sfm.rank], 1) < 0 || dup2(fds[2 * sfm.rank + 1], 2) < 0) sfm_init_fail("dup2 of the stdio fds failed");
  for (int i = 0; i < n; i++)
    if (fds[i] > 2 && fds[i] != sfm.ctl_fd) close(fds[i]);
}

/* After the fork, in every rank: stdio, the `fork` report, the origin's watcher, the exit hook. */
void sfm_jobctl_started(void) {
  if (sfm.rank != 0) {
    int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (null < 0 || dup2(null, 0) < 0) sfm_init_fail("cannot give the clone /dev/null as stdin");
    close(null);
  }
  sfm_apply_stdio();
  sf_ctl_fork(sfm.ctl_fd, sfm.rank, getpid(), (sf_now() - sfm.t_fork) * 1e3);
  if (sfm.rank == 0 && sfm.size > 1) {
    if (pthread_create(&sfm_watcher, NULL, sfm_watch, NULL) != 0) sfm_init_fail("cannot start the watcher thread");
    sfm_watcher_on = 1;
  }
  on_exit(sfm_on_exit, NULL);
}

/* Past MPI_Finalize: the watcher reaps clones as they end, so no zombie lingers. */
void sfm_jobctl_finalized(void) { atomic_store(&sfm_finalized_flag, 1); }
