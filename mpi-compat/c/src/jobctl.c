/*
 * jobctl.c: the job's processes and the launcher (docs/launcher-protocol.md), on the native
 * process module shared with the Node binding (native/proc: the watcher, reaping, the sentence;
 * native/control: the control lines and their claim-once failure policy).
 *
 *   - the origin is tied to its launcher from the moment the program starts (a constructor:
 *     SFMPI_LAUNCHER_PID), so killing sfmpirun ends a C job as it ends a TypeScript one;
 *   - after the fork: clones take /dev/null as stdin; each rank makes its SFMPI_STDIO_FDS pair
 *     its stdout/stderr and sends `fork` on SFMPI_CONTROL_FD (sfm_jobctl_started);
 *   - the origin's watcher (sf_watch) notices a clone's death at once, takes its link down in
 *     the data plane, reports `fail` once, and ends the job when another rank aborted it;
 *   - ending the job: sfm_fatal (an error under MPI_ERRORS_ARE_FATAL), MPI_Abort, a failed
 *     MPI_Init (sfm_init_fail), and at exit the origin reaps every clone (killing them first if
 *     it exits without MPI_Finalize), with an `exit` line for each, then for itself.
 *
 * Its interface to the rest of libsfmpi is the functions declared under "Job control" in
 * sfmpi.h (and MPI_Abort).
 */
#include "sfmpi.h"
#include "sf_proc.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static sf_watch *sfm_watch;   /* the host's first rank: its clones */
static long sfm_reservation = -1;
static atomic_int sfm_terminating;
static sf_join sfm_join;      /* a job that spans hosts: what dom0 said */
static int sfm_dom0_fd = -1;

/* The host's first rank: the origin (rank 0's host) or a seed: the parent of its host's ranks,
 * which watches, reaps and reports them. */
static int sfm_local_root(void) { return sfm.job != NULL && sf_job_local_world(sfm.job, 0) == sfm.rank; }

/* This rank's place among its host's ranks. */
static int sfm_local_index(void) {
  for (int l = 0; l < sf_job_local_count(sfm.job); l++)
    if (sf_job_local_world(sfm.job, l) == sfm.rank) return l;
  return 0;
}

/* A C origin started by sfmpirun dies with it, whatever it is doing (before MPI_Init too). A
 * process whose parent is not the launcher (a program that a rank started) is not tied, unless
 * the launcher is gone already (the race where it died before this ran). The variable is taken
 * out of the environment so that programs this one starts do not inherit the tie. */
__attribute__((constructor)) static void sfm_tie_to_launcher(void) {
  const char *s = getenv("SFMPI_LAUNCHER_PID");
  long pid = s && *s ? strtol(s, NULL, 10) : 0;
  if (pid <= 0) return;
  unsetenv("SFMPI_LAUNCHER_PID");
  if (getppid() == (pid_t)pid)
    sf_proc_die_with((pid_t)pid);
  else if (kill((pid_t)pid, 0) != 0 && errno == ESRCH)
    kill(getpid(), SIGKILL);
}

/* ---- ending the job ----------------------------------------------------------------------- */

/* End this rank (and, from the origin, the job) with `code` after a failure already reported. */
static void sfm_terminate(int code) __attribute__((noreturn));
static void sfm_terminate(int code) {
  if (atomic_exchange(&sfm_terminating, 1)) {
    /* Another thread of this process is already ending it. */
    for (;;) pause();
  }
  if (sfm_local_root() && sfm_watch) {
    int ar = -1;
    /* The root cause first; after an abort by another rank, what died is the aborter's doing. */
    if (!(sf_job_aborted(sfm.job, &ar, NULL, NULL, 0) && ar != sfm.rank)) sf_watch_report_dead(sfm_watch);
    sf_watch_reap(sfm_watch, 0);
    sf_ctl_exit(sfm.ctl_fd, sfm.rank, code);
  }
  fflush(stdout);
  fflush(stderr);
  _exit(code);
}

/* The watcher's call when another rank aborted the job: the origin ends it. */
static void sfm_on_abort(int code, void *arg) {
  (void)arg;
  sfm_terminate(code);
}

/* Did another rank already fail in a way that is (or will be) reported as the root cause? */
static int sfm_other_failed_first(void) {
  for (int r = 0; r < sfm.size; r++) {
    int st;
    if (r != sfm.rank && sf_job_peer_status(sfm.job, r, &st) && sf_proc_failed(st)) return 1;
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
    if (sfm_local_root()) sfm_terminate(1);
    fflush(stdout);
    fflush(stderr);
    _exit(1);
  }
  if (sfm.job) {
    /* Report before raising the abort word: the origin, woken by the word, may kill this rank
     * before it has written its cause, and the launcher would name the origin instead. */
    sf_ctl_fail_once(sfm.job, sfm.ctl_fd, sfm.rank, 1, 0, msg);
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
    sf_ctl_fail_once(sfm.job, sfm.ctl_fd, sfm.rank, errorcode, 0, cause);
    sf_job_abort(sfm.job, errorcode, cause);
  }
  sfm_terminate(errorcode);
}

static void sfm_on_exit(int status, void *arg) {
  (void)arg;
  if (sfm.job == NULL || atomic_load(&sfm_terminating)) return;
  if (!sfm_local_root()) return; /* the host's first rank reports its clones */
  fflush(NULL);
  if (sfm_watch) sf_watch_reap(sfm_watch, sfm.finalized ? -1 : 0);
  if (status != 0) {
    char how[96];
    sf_proc_describe((status & 0xff) << 8, sfm.finalized, "MPI_Finalize", how, sizeof how);
    sf_ctl_fail_once(sfm.job, sfm.ctl_fd, sfm.rank, status, 0, how);
  }
  sf_ctl_exit(sfm.ctl_fd, sfm.rank, status);
  sf_admission_release(sfm_reservation);
}

/* ---- start-up ------------------------------------------------------------------------------ */

void sfm_init_fail(const char *what) {
  fprintf(stderr, "sfmpi: MPI_Init: %s\n", what);
  sf_ctl_fail_once(sfm.job, sfm.ctl_fd, sfm.rank, 1, 0, what);
  if (sfm_local_root() && sfm_watch) sf_watch_reap(sfm_watch, 0);
  _exit(1);
}

void sfm_jobctl_admit(int size) {
  char err[300], msg[360];
  if (size <= 1) return;
  sfm_reservation = sf_admission_reserve(size - 1, -1, err, sizeof err);
  if (sfm_reservation < 0) {
    /* The words of MPI.init's refusal, so C and TypeScript jobs read alike. */
    snprintf(msg, sizeof msg, "cannot start %d ranks: %s", size, err);
    sfm_init_fail(msg);
  }
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
  if (n != 2 * sf_job_local_count(sfm.job)) {
    snprintf(buf, sizeof buf, "SFMPI_STDIO_FDS has %d fds, expected %d", n, 2 * sf_job_local_count(sfm.job));
    sfm_init_fail(buf);
  }
  fflush(stdout);
  fflush(stderr);
  {
    int l = sfm_local_index(); /* the fds are by local rank: this host's ranks */
    if (dup2(fds[2 * l], 1) < 0 || dup2(fds[2 * l + 1], 2) < 0) sfm_init_fail("dup2 of the stdio fds failed");
  }
  for (int i = 0; i < n; i++)
    if (fds[i] > 2 && fds[i] != sfm.ctl_fd) close(fds[i]);
}

/* After the fork, in every rank: the origin's watcher, stdio, the `fork` report, the exit hook. */
void sfm_jobctl_started(void) {
  if (sfm_local_root() && sf_job_local_count(sfm.job) > 1) {
    int n = sf_job_local_count(sfm.job) - 1, ranks[SF_MAX_RANKS];
    pid_t pids[SF_MAX_RANKS];
    for (int i = 0; i < n; i++) {
      ranks[i] = sf_job_local_world(sfm.job, i + 1);
      pids[i] = sf_job_pid(sfm.job, ranks[i]);
    }
    if (sf_watch_start(&sfm_watch, sfm.job, sfm.ctl_fd, ranks, pids, n, "MPI_Finalize", sfm_on_abort, NULL) < 0)
      sfm_init_fail(sf_last_error());
  }
  if (sfm.rank != 0) {
    int null = open("/dev/null", O_RDONLY | O_CLOEXEC); /* stdin goes to rank 0 only */
    if (null < 0 || dup2(null, 0) < 0) sfm_init_fail("cannot give the clone /dev/null as stdin");
    close(null);
  }
  sfm_apply_stdio();
  sf_ctl_fork(sfm.ctl_fd, sfm.rank, getpid(), (sf_now() - sfm.t_fork) * 1e3);
  on_exit(sfm_on_exit, NULL);
}

/* Past MPI_Finalize: the watcher reaps clones as they end, so no zombie lingers. */
void sfm_jobctl_finalized(void) { sf_watch_finished(sfm_watch); }

/* ---- a job that spans hosts ----------------------------------------------------------------- */

/* Before the fork: when dom0 started this process (SFMPI_DOM0_FD), where every rank lives. */
void sfm_jobctl_join(sf_job_options *o) {
  const char *s = getenv("SFMPI_DOM0_FD");
  char *end;
  long fd;
  int rc;
  if (s == NULL || *s == '\0') return;
  fd = strtol(s, &end, 10);
  if (*end || fd < 0 || fcntl((int)fd, F_GETFD) < 0) sfm_init_fail("SFMPI_DOM0_FD is not an open fd");
  sfm_dom0_fd = (int)fd;
  rc = sf_join_read(sfm_dom0_fd, -1, &sfm_join); /* dom0 bounds the wait: it kills us on failure */
  if (rc < 0) sfm_init_fail(sf_last_error());
  if (o->size > 1 && o->size != sfm_join.size) {
    char msg[120];
    snprintf(msg, sizeof msg, "SFMPI_SIZE says %d ranks, dom0 says %d", o->size, sfm_join.size);
    sfm_init_fail(msg);
  }
  o->size = sfm_join.size;
  o->host_of = sfm_join.host_of;
  o->host = sfm_join.host;
}

int sfm_jobctl_local_count(const sf_job_options *o) {
  int n = 0;
  for (int r = 0; r < o->size; r++) n += o->host_of[r] == o->host;
  return n;
}

/* After the fork, in every rank: its own links to ranks on other hosts; the others' fds go. */
void sfm_jobctl_links(void) {
  int me;
  if (sfm_dom0_fd < 0) return;
  me = sfm_local_index();
  for (int i = 0; i < sfm_join.nlinks; i++) {
    sf_join_link *l = &sfm_join.links[i];
    if (l->local != me) {
      close(l->fd);
    } else if (sf_job_add_link_fd(sfm.job, l->peer, l->fd) < 0) {
      sfm_init_fail(sf_last_error());
    }
  }
  close(sfm_dom0_fd);
  sfm_dom0_fd = -1;
  sf_join_free(&sfm_join);
}
