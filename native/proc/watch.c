/*
 * watch.c: a parent's watch over the job's processes it forked (sf_proc.h).
 *
 * Reaping happens in two threads (the watcher reaps children that end after the parent
 * finished, so no zombie lingers; the caller reaps the rest at the end): one lock and a reaped
 * flag per child make sure a pid is never waited for, or killed, once it was reaped.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "sf_dataplane.h"
#include "sf_proc.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

int sf__err(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

typedef struct sf__child {
  int rank;
  pid_t pid;
  int pidfd;
  int seen;     /* the watcher saw it end (not reaped) */
  int reaped;
  int ours;     /* we killed it: its death is no failure of its own */
} sf__child;

struct sf_watch {
  sf_job *job;
  int ctl_fd;
  int n;
  sf__child *c;
  const char *finalize;
  sf_watch_abort_fn on_abort;
  void *arg;
  pthread_t thread;
  int running;
  atomic_int stop;
  atomic_int finished;
  pthread_mutex_t lock;
  int failed;
};

/* Reports an abnormal end once: unless somebody (the rank itself) already did. */
static void sf__report_fail(sf_watch *w, sf__child *c, int status) {
  char how[160];
  if (!sf_proc_failed(status) || c->ours) return;
  w->failed++;
  /* The sentence its peers read too: "exited with code 3 before MPI_Finalize". Only
   * thread-safe calls here (the job's shared slots): the caller's thread uses the job. */
  sf_proc_describe(status, sf_job_finished(w->job, c->rank), w->finalize, how, sizeof how);
  sf_ctl_fail_once(w->job, w->ctl_fd, c->rank, sf_proc_code(status), WIFSIGNALED(status) ? WTERMSIG(status) : 0, how);
}

/* Reaps child c (blocking or not); reports its end. Under w->lock. */
static void sf__reap_one(sf_watch *w, sf__child *c, int block) {
  int status = 0;
  pid_t got;
  if (c->reaped || c->pid <= 0) return;
  do {
    got = waitpid(c->pid, &status, block ? 0 : WNOHANG);
  } while (got < 0 && errno == EINTR);
  if (got != c->pid) {
    if (got < 0 && errno == ECHILD) c->reaped = 1; /* somebody else reaped it: nothing to say */
    return;
  }
  c->reaped = 1;
  if (!c->seen) {
    c->seen = 1;
    if (!c->ours) sf_job_note_death(w->job, c->rank, status);
  }
  sf__report_fail(w, c, status);
  sf_ctl_exit(w->ctl_fd, c->rank, sf_proc_code(status));
}

static void *sf__watch_main(void *arg) {
  sf_watch *w = arg;
  struct pollfd *pfds = calloc((size_t)w->n, sizeof *pfds);
  if (pfds == NULL) return NULL; /* the end-of-job reap still reports every child */
  while (!atomic_load(&w->stop)) {
    int np = 0, ar = -1, acode = 1;
    for (int i = 0; i < w->n; i++)
      if (!w->c[i].seen && w->c[i].pidfd >= 0) {
        pfds[np].fd = w->c[i].pidfd;
        pfds[np].events = POLLIN;
        pfds[np].revents = 0;
        np++;
      }
    /* Errors (EINTR) just shorten the tick: every child is looked at below anyway. */
    poll(pfds, (nfds_t)np, SF_TICK_MS);
    if (atomic_load(&w->stop)) break;
    pthread_mutex_lock(&w->lock);
    for (int i = 0; i < w->n; i++) {
      sf__child *c = &w->c[i];
      siginfo_t si;
      int status;
      if (c->seen || c->reaped) continue;
      memset(&si, 0, sizeof si);
      if (waitid(P_PID, (id_t)c->pid, &si, WEXITED | WNOHANG | WNOWAIT) != 0 || si.si_pid == 0) continue;
      status = si.si_code == CLD_EXITED ? (si.si_status & 0xff) << 8 : (si.si_status & 0x7f);
      c->seen = 1;
      if (!c->ours) sf_job_note_death(w->job, c->rank, status);
      if (atomic_load(&w->finished)) {
        sf__reap_one(w, c, 0); /* past the end: reap and report it now */
        continue;
      }
      /* Once the job was aborted, deaths are its consequence (ranks killed by the aborter). */
      if (!sf_job_aborted(w->job, NULL, NULL, NULL, 0)) sf__report_fail(w, c, status);
    }
    pthread_mutex_unlock(&w->lock);
    if (w->on_abort && sf_job_aborted(w->job, &ar, &acode, NULL, 0) && ar != sf_job_rank(w->job)) {
      w->on_abort(acode ? acode : 1, w->arg);
      break;
    }
  }
  free(pfds);
  return NULL;
}

int sf_watch_start(sf_watch **out, sf_job *job, int ctl_fd, const int *ranks, const pid_t *pids, int n,
                   const char *finalize, sf_watch_abort_fn on_abort, void *arg) {
  sf_watch *w;
  if (out == NULL || job == NULL || n < 0) return sf__err(SF_EINVAL, "sf_watch_start: bad arguments");
  w = calloc(1, sizeof *w);
  if (w == NULL) return sf__err(SF_ENOMEM, "sf_watch_start: out of memory");
  w->c = calloc((size_t)(n ? n : 1), sizeof *w->c);
  if (w->c == NULL) {
    free(w);
    return sf__err(SF_ENOMEM, "sf_watch_start: out of memory");
  }
  w->job = job;
  w->ctl_fd = ctl_fd;
  w->n = n;
  w->finalize = finalize;
  w->on_abort = on_abort;
  w->arg = arg;
  pthread_mutex_init(&w->lock, NULL);
  for (int i = 0; i < n; i++) {
    w->c[i].rank = ranks[i];
    w->c[i].pid = pids[i];
    /* Without a pidfd (ESRCH: gone already) the tick's waitid still finds its end. */
    w->c[i].pidfd = (int)syscall(SYS_pidfd_open, pids[i], 0);
  }
  if (n > 0) {
    if (pthread_create(&w->thread, NULL, sf__watch_main, w) != 0) {
      int e = errno;
      for (int i = 0; i < n; i++)
        if (w->c[i].pidfd >= 0) close(w->c[i].pidfd);
      pthread_mutex_destroy(&w->lock);
      free(w->c);
      free(w);
      return sf__err(SF_ESYS, "sf_watch_start: cannot start the watcher thread: %s", strerror(e));
    }
    w->running = 1;
  }
  *out = w;
  return 0;
}

void sf_watch_finished(sf_watch *w) {
  if (w) atomic_store(&w->finished, 1);
}

void sf_watch_report_dead(sf_watch *w) {
  if (w == NULL) return;
  pthread_mutex_lock(&w->lock);
  for (int i = 0; i < w->n; i++) {
    sf__child *c = &w->c[i];
    int status;
    if (c->reaped || c->ours || sf_proc_peek_status(c->pid, &status) != 0) continue;
    sf__report_fail(w, c, status);
  }
  pthread_mutex_unlock(&w->lock);
}

void sf_watch_kill(sf_watch *w) {
  if (w == NULL) return;
  pthread_mutex_lock(&w->lock);
  for (int i = 0; i < w->n; i++) {
    sf__child *c = &w->c[i];
    int status;
    if (c->reaped || c->pid <= 0) continue;
    /* One that ended by itself keeps its own cause; the rest die of our kill. */
    if (sf_proc_peek_status(c->pid, &status) != 0) c->ours = 1;
    kill(c->pid, SIGKILL); /* ESRCH: it ended by itself; waitpid tells how */
  }
  pthread_mutex_unlock(&w->lock);
}

int sf_watch_reap(sf_watch *w, int grace_ms) {
  double deadline;
  if (w == NULL) return 0;
  if (w->running) {
    atomic_store(&w->stop, 1);
    if (!pthread_equal(pthread_self(), w->thread)) pthread_join(w->thread, NULL);
    else pthread_detach(w->thread); /* the watcher itself ends the job (on_abort) */
    w->running = 0;
  }
  deadline = grace_ms < 0 ? -1 : sf_now() + grace_ms * 1e-3;
  for (;;) {
    int left = 0;
    pthread_mutex_lock(&w->lock);
    for (int i = 0; i < w->n; i++) {
      sf__reap_one(w, &w->c[i], 0);
      if (!w->c[i].reaped) left++;
    }
    pthread_mutex_unlock(&w->lock);
    if (left == 0) break;
    if (deadline >= 0 && sf_now() >= deadline) {
      sf_watch_kill(w);
      pthread_mutex_lock(&w->lock);
      for (int i = 0; i < w->n; i++) sf__reap_one(w, &w->c[i], 1);
      pthread_mutex_unlock(&w->lock);
      break;
    }
    {
      /* Sleep until a child ends (any pidfd readable) or the next look. */
      struct pollfd pfds[64];
      int np = 0;
      for (int i = 0; i < w->n && np < 64; i++)
        if (!w->c[i].reaped && w->c[i].pidfd >= 0) pfds[np++] = (struct pollfd){w->c[i].pidfd, POLLIN, 0};
      poll(pfds, (nfds_t)np, np ? SF_TICK_MS : 1);
    }
  }
  return w->failed;
}

void sf_watch_free(sf_watch *w) {
  if (w == NULL) return;
  for (int i = 0; i < w->n; i++)
    if (w->c[i].pidfd >= 0) close(w->c[i].pidfd);
  pthread_mutex_destroy(&w->lock);
  free(w->c);
  free(w);
}
