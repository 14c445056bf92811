/*
 * init.c: MPI_Init is the fork point; finalize, abort, failure reports, error codes.
 *
 * Flow (docs/launcher-protocol.md):
 *   1. MPI_Init reads SFMPI_SIZE (absent: 1 rank), creates the shared job region, flushes stdio
 *      and forks SFMPI_SIZE-1 clones of this process (clone id = rank).
 *   2. Every rank: clones take /dev/null as stdin; each rank makes its SFMPI_STDIO_FDS pair its
 *      stdout/stderr and closes the others; each sends `fork` on SFMPI_CONTROL_FD.
 *   3. The origin runs a watcher thread that notices a clone's death at once (pidfd), reports
 *      `fail` with the signal or code, and ends the job when another rank aborted it.
 *   4. MPI_Finalize: final barrier, then the rank is marked finished; it keeps running.
 *   5. At exit the origin reaps every clone (killing them first if it exits without
 *      MPI_Finalize), sends `exit` (and `fail` for failures) for each, then for itself.
 */
#include "sfmpi.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
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

sfm_state sfm = {0};

static pthread_t sfm_watcher;
static int sfm_watcher_on;
static atomic_int sfm_watcher_stop;
static atomic_int sfm_terminating;
static int sfm_thread_level = MPI_THREAD_SINGLE;

/* ---- error codes with detail -------------------------------------------------------------- */

#define SFM_NSLOTS 64
static char sfm_msgs[SFM_NSLOTS][MPI_MAX_ERROR_STRING];
static int sfm_msg_next;

static const char *sfm_class_name(int cls) {
  switch (cls) {
  case MPI_SUCCESS: return "MPI_SUCCESS: no error";
  case MPI_ERR_BUFFER: return "MPI_ERR_BUFFER: invalid buffer";
  case MPI_ERR_COUNT: return "MPI_ERR_COUNT: invalid count";
  case MPI_ERR_TYPE: return "MPI_ERR_TYPE: invalid datatype";
  case MPI_ERR_TAG: return "MPI_ERR_TAG: invalid tag";
  case MPI_ERR_COMM: return "MPI_ERR_COMM: invalid communicator";
  case MPI_ERR_RANK: return "MPI_ERR_RANK: invalid rank";
  case MPI_ERR_REQUEST: return "MPI_ERR_REQUEST: invalid request";
  case MPI_ERR_ROOT: return "MPI_ERR_ROOT: invalid root";
  case MPI_ERR_GROUP: return "MPI_ERR_GROUP: invalid group";
  case MPI_ERR_OP: return "MPI_ERR_OP: invalid operation";
  case MPI_ERR_ARG: return "MPI_ERR_ARG: invalid argument";
  case MPI_ERR_UNKNOWN: return "MPI_ERR_UNKNOWN: unknown error";
  case MPI_ERR_TRUNCATE: return "MPI_ERR_TRUNCATE: message truncated";
  case MPI_ERR_OTHER: return "MPI_ERR_OTHER: other error";
  case MPI_ERR_INTERN: return "MPI_ERR_INTERN: internal error";
  case MPI_ERR_IN_STATUS: return "MPI_ERR_IN_STATUS: error code in status";
  case MPI_ERR_PENDING: return "MPI_ERR_PENDING: pending request";
  case MPI_ERR_NO_MEM: return "MPI_ERR_NO_MEM: out of memory";
  case MPI_ERR_UNSUPPORTED_OPERATION: return "MPI_ERR_UNSUPPORTED_OPERATION: not supported by sfmpi";
  case MPI_ERR_PROC_FAILED: return "MPI_ERR_PROC_FAILED: a peer rank died";
  case MPI_ERR_TIMEOUT: return "MPI_ERR_TIMEOUT: wait timed out";
  case MPI_ERR_ABORTED: return "MPI_ERR_ABORTED: the job was aborted";
  default: return NULL;
  }
}

int MPI_Error_class(int code, int *cls) {
  if (cls == NULL) return MPI_ERR_ARG;
  *cls = code <= 0 ? code : (code & 0xff);
  return MPI_SUCCESS;
}

int MPI_Error_string(int code, char *s, int *len) {
  int cls = code <= 0 ? code : (code & 0xff), slot = code > 0 ? (code >> 8) - 1 : -1;
  const char *name = sfm_class_name(cls);
  if (s == NULL || len == NULL) return MPI_ERR_ARG;
  if (name == NULL) {
    *len = snprintf(s, MPI_MAX_ERROR_STRING, "unknown error code %d", code);
    return MPI_ERR_ARG;
  }
  if (slot >= 0 && slot < SFM_NSLOTS && sfm_msgs[slot][0])
    *len = snprintf(s, MPI_MAX_ERROR_STRING, "%s (%s)", name, sfm_msgs[slot]);
  else
    *len = snprintf(s, MPI_MAX_ERROR_STRING, "%s", name);
  if (*len >= MPI_MAX_ERROR_STRING) *len = MPI_MAX_ERROR_STRING - 1;
  return MPI_SUCCESS;
}

static int sfm_store(int cls, const char *msg) {
  int slot = sfm_msg_next;
  sfm_msg_next = (sfm_msg_next + 1) % SFM_NSLOTS;
  snprintf(sfm_msgs[slot], sizeof sfm_msgs[slot], "%s", msg);
  return cls | ((slot + 1) << 8);
}

static int sfm_apply_errh(MPI_Comm comm, int code, const char *msg) {
  sfm_comm *c = sfm_comm_get(comm);
  MPI_Errhandler eh;
  if (c == NULL) c = sfm_comm_get(MPI_COMM_WORLD);
  eh = c ? c->errh : MPI_ERRORS_ARE_FATAL;
  if (eh == MPI_ERRORS_RETURN) return code;
  if (eh > MPI_ERRORS_ABORT && eh < sfm.nerrhs && sfm.errhs[eh].used) {
    MPI_Comm cc = c ? comm : MPI_COMM_WORLD;
    sfm.errhs[eh].fn(&cc, &code);
    return code;
  }
  sfm_fatal(code, msg);
}

int sfm_error(MPI_Comm comm, const char *fn, int cls, const char *fmt, ...) {
  char body[MPI_MAX_ERROR_STRING - 64], msg[MPI_MAX_ERROR_STRING];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(body, sizeof body, fmt, ap);
  va_end(ap);
  snprintf(msg, sizeof msg, "%s: %s", fn, body);
  return sfm_apply_errh(comm, sfm_store(cls, msg), msg);
}

int sfm_class_of(int rc) {
  switch (rc) {
  case SF_ETIMEDOUT: return MPI_ERR_TIMEOUT;
  case SF_EPEERDIED: return MPI_ERR_PROC_FAILED;
  case SF_EABORTED: return MPI_ERR_ABORTED;
  case SF_ETRUNCATE: return MPI_ERR_TRUNCATE;
  case SF_ENOMEM: return MPI_ERR_NO_MEM;
  case SF_EPROTO: return MPI_ERR_INTERN;
  case SF_ERANGE: case SF_EINVAL: return MPI_ERR_ARG;
  case SF_EMISMATCH: return MPI_ERR_OTHER;
  default: return MPI_ERR_OTHER;
  }
}

int sfm_dp_code(const char *fn, int rc) {
  const char *m = sf_last_error();
  char msg[MPI_MAX_ERROR_STRING];
  if (strncmp(m, fn, strlen(fn)) == 0)
    snprintf(msg, sizeof msg, "%s", m);
  else
    snprintf(msg, sizeof msg, "%s: %s", fn, m);
  return sfm_store(sfm_class_of(rc), msg);
}

int sfm_raise(MPI_Comm comm, int code) {
  int slot = code > 0 ? (code >> 8) - 1 : -1;
  const char *msg = slot >= 0 && slot < SFM_NSLOTS ? sfm_msgs[slot] : "error";
  if (code == MPI_SUCCESS) return code;
  return sfm_apply_errh(comm, code, msg);
}

int sfm_dp_error(MPI_Comm comm, const char *fn, int rc) { return sfm_raise(comm, sfm_dp_code(fn, rc)); }

int sfm_code(int cls, const char *fmt, ...) {
  char msg[MPI_MAX_ERROR_STRING];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return sfm_store(cls, msg);
}

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

/* ---- init / finalize ---------------------------------------------------------------------- */

static void sfm_init_fail(const char *what) __attribute__((noreturn));
static void sfm_init_fail(const char *what) {
  fprintf(stderr, "sfmpi: MPI_Init: %s\n", what);
  sf_ctl_fail(sfm.ctl_fd, sfm.rank, 1, 0, what);
  if (sfm.rank == 0 && sfm.job) sfm_reap_clones(1);
  _exit(1);
}

static int sfm_parse_int(const char *s, long lo, long hi, long *out) {
  char *end;
  long v;
  if (s == NULL || *s == '\0') return -1;
  errno = 0;
  v = strtol(s, &end, 10);
  if (errno || *end || v < lo || v > hi) return -1;
  *out = v;
  return 0;
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

int MPI_Init_thread(int *argc, char ***argv, int required, int *provided) {
  long size = 1, fd = -1;
  const char *s;
  sf_job_options o;
  int rc;
  (void)argc;
  (void)argv;
  if (sfm.initialized) return sfm_error(MPI_COMM_WORLD, "MPI_Init", MPI_ERR_OTHER, "MPI_Init called twice");
  sfm.ctl_fd = -1;
  s = getenv("SFMPI_CONTROL_FD");
  if (s && *s) {
    if (sfm_parse_int(s, 0, 1 << 20, &fd) < 0 || fcntl((int)fd, F_GETFD) < 0) {
      fprintf(stderr, "sfmpi: MPI_Init: SFMPI_CONTROL_FD=%s is not an open fd\n", s);
      _exit(1);
    }
    sfm.ctl_fd = (int)fd;
  }
  s = getenv("SFMPI_SIZE");
  if (s && *s && sfm_parse_int(s, 1, SF_MAX_RANKS, &size) < 0) {
    char msg[128];
    snprintf(msg, sizeof msg, "SFMPI_SIZE=%.20s is not a number of ranks in 1..%d", s, SF_MAX_RANKS);
    sfm_init_fail(msg);
  }
  memset(&o, 0, sizeof o);
  o.size = (int)size;
  if (sf_job_create(&sfm.job, &o) < 0) sfm_init_fail(sf_last_error());
  sfm.size = (int)size;
  sfm.t_fork = sf_now();
  rc = sf_job_fork(sfm.job);
  if (rc < 0) sfm_init_fail(sf_last_error());
  sfm.rank = rc;
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
  sfm.next_ctx = 4;
  if (sfm_comms_init() < 0 || sfm_types_init() < 0 || sfm_ops_init() < 0) sfm_init_fail("out of memory");
  sfm.initialized = 1;
  sfm_thread_level = required > MPI_THREAD_SERIALIZED ? MPI_THREAD_SERIALIZED : required;
  if (provided) *provided = sfm_thread_level;
  return MPI_SUCCESS;
}

int MPI_Init(int *argc, char ***argv) { return MPI_Init_thread(argc, argv, MPI_THREAD_SINGLE, NULL); }

int MPI_Initialized(int *flag) {
  if (flag) *flag = sfm.initialized;
  return MPI_SUCCESS;
}

int MPI_Finalized(int *flag) {
  if (flag) *flag = sfm.finalized;
  return MPI_SUCCESS;
}

int MPI_Query_thread(int *provided) {
  if (provided) *provided = sfm_thread_level;
  return MPI_SUCCESS;
}

int MPI_Is_thread_main(int *flag) {
  if (flag) *flag = 1;
  return MPI_SUCCESS;
}

int MPI_Finalize(void) {
  sfm_comm *w;
  sf_group g;
  int rc;
  SFM_INIT_CHECK("MPI_Finalize");
  rc = sfm_drain_detached("MPI_Finalize");
  if (rc != MPI_SUCCESS) return rc;
  w = sfm_comm_get(MPI_COMM_WORLD);
  g = sfm_coll_group(w);
  sf_job_set_label(sfm.job, "MPI_Finalize");
  rc = sf_barrier(sfm.job, &g);
  sf_job_set_label(sfm.job, NULL);
  if (rc < 0) return sfm_dp_error(MPI_COMM_WORLD, "MPI_Finalize", rc);
  sf_job_mark_finished(sfm.job);
  sfm.finalized = 1;
  atomic_store(&sfm_finalized_flag, 1);
  fflush(stdout);
  return MPI_SUCCESS;
}

double MPI_Wtime(void) { return sf_now(); }
double MPI_Wtick(void) { return 1e-9; }

int MPI_Get_processor_name(char *name, int *len) {
  if (name == NULL || len == NULL) return sfm_error(MPI_COMM_WORLD, "MPI_Get_processor_name", MPI_ERR_ARG, "NULL argument");
  if (gethostname(name, MPI_MAX_PROCESSOR_NAME) != 0) snprintf(name, MPI_MAX_PROCESSOR_NAME, "localhost");
  name[MPI_MAX_PROCESSOR_NAME - 1] = '\0';
  *len = (int)strlen(name);
  return MPI_SUCCESS;
}

int MPI_Get_version(int *version, int *subversion) {
  if (version) *version = MPI_VERSION;
  if (subversion) *subversion = MPI_SUBVERSION;
  return MPI_SUCCESS;
}

int MPI_Get_library_version(char *version, int *len) {
  if (version == NULL || len == NULL) return MPI_ERR_ARG;
  *len = snprintf(version, MPI_MAX_LIBRARY_VERSION_STRING, "sfmpi libsfmpi %d (fork-at-MPI_Init, shared-memory data plane v%d)",
                  1, SF_DATAPLANE_VERSION);
  return MPI_SUCCESS;
}

int MPI_Alloc_mem(MPI_Aint size, MPI_Info info, void *baseptr) {
  void *p;
  (void)info;
  if (size < 0 || baseptr == NULL) return sfm_error(MPI_COMM_WORLD, "MPI_Alloc_mem", MPI_ERR_ARG, "bad size or pointer");
  p = malloc(size ? (size_t)size : 1);
  if (p == NULL) return sfm_error(MPI_COMM_WORLD, "MPI_Alloc_mem", MPI_ERR_NO_MEM, "cannot allocate %ld bytes", (long)size);
  *(void **)baseptr = p;
  return MPI_SUCCESS;
}

int MPI_Free_mem(void *base) {
  free(base);
  return MPI_SUCCESS;
}
