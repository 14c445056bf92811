/*
 * wait.c: blocking. One wait source per rank: a futex doorbell while every peer is on this host,
 * an epoll set (this rank's eventfd, rung by local peers, plus its TCP sockets) once a peer is
 * not, or while the rank is armed for an event loop (sf_job_arm_wakeup).
 *
 * A waiter spins for spin_us (peers' frames often arrive within microseconds), then announces
 * its sleeping mode in its slot, re-checks, and sleeps; whoever puts a frame for it reads the
 * mode and rings the futex or the eventfd. The announce/re-check/sleep sequence pairs with the
 * producer's fence after publishing (link_shm.c), so a wake-up is never lost. Every tick the
 * waiter asks its links for their health (a death, a hang-up, an abort arrive as link events
 * and usually wake it at once; the tick is the safety net) and checks the wait timeout.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "internal.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <linux/futex.h>
#include <linux/membarrier.h>

#define SF__EV_SELF UINT64_MAX /* epoll data of this rank's own eventfd */

static inline void sf__relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  __asm__ __volatile__("yield");
#endif
}

static long sf__futex(_Atomic uint32_t *addr, int op, uint32_t val, const struct timespec *ts) {
  return syscall(SYS_futex, (uint32_t *)addr, op, val, ts, NULL, 0);
}

void sf__wake_local(sf_job *job, int local) {
  sf__slot *s = sf__slot_of(job, local);
  uint32_t mode = atomic_load_explicit(&s->sleeping, memory_order_relaxed);
  if (mode == SF__SLEEP_EVENT) {
    uint64_t one = 1;
    /* EAGAIN (the counter is saturated) still leaves it readable: the waiter wakes. */
    if (write(job->evfd[local], &one, sizeof one) < 0) {}
    return;
  }
  atomic_fetch_add(&s->bell, 1);
  /* Cannot fail on a valid shared word; a waiter that missed it wakes at its next tick. */
  sf__futex(&s->bell, FUTEX_WAKE, INT_MAX, NULL);
}

/* ---- membarrier: the sleeper's side of the wake-up handshake -------------------------------- */

#ifndef SYS_membarrier
#define SYS_membarrier 324
#endif

static long sf__membarrier(int cmd) { return syscall(SYS_membarrier, cmd, 0, 0); }

int sf__asym_available(void) {
  const char *v = getenv("SFMPI_MEMBARRIER");
  long q;
  if (v && strcmp(v, "0") == 0) return 0;
  q = sf__membarrier(MEMBARRIER_CMD_QUERY);
  return q > 0 && (q & MEMBARRIER_CMD_GLOBAL_EXPEDITED) && (q & MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED);
}

int sf__asym_register(void) { return sf__membarrier(MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED) == 0; }

/* After announcing sleep and fencing: every registered producer of this host has now run a full
 * barrier (or was switched out, which is one), so a frame it published before reading our
 * sleeping word as 0 is visible to our re-check. 0, or -1 when the call failed: the caller
 * then sleeps only briefly, since a producer may have skipped our doorbell. */
static int sf__sleep_barrier(sf_job *job) {
  if (!job->ctl->asym) return 0;
  return sf__membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED) == 0 ? 0 : -1;
}

void sf__wake(sf_job *job, int rank) {
  if (rank >= 0 && rank < job->size && sf__is_local(job, rank)) sf__wake_local(job, job->local_of[rank]);
}

/* ---- the epoll set -------------------------------------------------------------------------- */

static int sf__epoll_open(sf_job *job) {
  struct epoll_event ev;
  if (job->epfd >= 0) return 0;
  /* Made after the fork, in this process: an epoll instance inherited across fork would be
   * shared with the parent. */
  job->epfd = epoll_create1(EPOLL_CLOEXEC);
  if (job->epfd < 0) return sf__errno("epoll_create1 for the rank's wait set");
  memset(&ev, 0, sizeof ev);
  ev.events = EPOLLIN;
  ev.data.u64 = SF__EV_SELF;
  if (epoll_ctl(job->epfd, EPOLL_CTL_ADD, job->evfd[job->me], &ev) != 0) {
    int rc = sf__errno("epoll_ctl of the rank's eventfd");
    close(job->epfd);
    job->epfd = -1;
    return rc;
  }
  return 0;
}

int sf__epoll_add(sf_job *job, int fd, uint64_t data) {
  struct epoll_event ev;
  int rc = sf__epoll_open(job);
  if (rc < 0) return rc;
  memset(&ev, 0, sizeof ev);
  ev.events = EPOLLIN | EPOLLRDHUP;
  ev.data.u64 = data;
  if (epoll_ctl(job->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) return sf__errno("epoll_ctl of a link's socket");
  return 0;
}

void sf_job_wakeup_drain(sf_job *job) {
  uint64_t v;
  if (job == NULL || job->me < 0) return;
  /* Non-blocking: EAGAIN when nothing rang. */
  if (read(job->evfd[job->me], &v, sizeof v) < 0) {}
}

/* Collects readiness from the epoll set (waiting up to timeout_ms): marks links ready. */
static void sf__events(sf_job *job, int timeout_ms) {
  struct epoll_event evs[32];
  int n = epoll_wait(job->epfd, evs, 32, timeout_ms);
  for (int i = 0; i < n; i++) {
    uint64_t d = evs[i].data.u64;
    if (d == SF__EV_SELF) {
      sf_job_wakeup_drain(job);
    } else if (d < (uint64_t)job->size && job->links[d]) {
      job->links[d]->ready = 1;
    }
  }
  /* n < 0 (EINTR) just shortens the wait: the caller looks again. */
}

void sf__events_poll(sf_job *job) {
  if (job->epfd >= 0 && job->nremote > 0) sf__events(job, 0);
}

int sf_job_wakeup_fd(sf_job *job) {
  if (job == NULL || job->me < 0) return -1;
  if (sf__epoll_open(job) < 0) return -1;
  return job->epfd;
}

void sf_job_arm_wakeup(sf_job *job, int on) {
  if (job == NULL || job->me < 0) return;
  int was = job->armed;
  job->armed = on ? 1 : 0;
  atomic_store(&sf__slot_of(job, job->me)->sleeping, on ? SF__SLEEP_EVENT : SF__AWAKE);
  /* Armed, this rank may sleep in its event loop: the announcement must reach producers that
   * skip the fence (sf__wake_fence) before the loop re-checks the links. */
  if (on && !was) (void)sf__sleep_barrier(job);
}

/* ---- health and timeouts -------------------------------------------------------------------- */

int sf__check_health(sf_job *job, const char *why, int deep) {
  int ar, code;
  char cause[SF__ABORT_CAUSE_MAX + 8];
  if (sf_job_aborted(job, &ar, &code, cause, sizeof cause) && ar != job->rank)
    return sf__err(SF_EABORTED, "%s on rank %d: job aborted by rank %d: %s", why, job->rank, ar, cause);
  for (int r = 0; r < job->size; r++) {
    sf__link *l = job->links[r];
    if (l == NULL || r == job->rank) continue;
    l->ops->health(l, deep);
    if (l->state != SF__LINK_DOWN) continue;
    if (l->broken)
      return sf__err(SF_EPROTO, "%s on rank %d: the %s link to rank %d is closed: it %s", why, job->rank, l->ops->kind, r, l->why);
    return sf__err(SF_EPEERDIED, "%s on rank %d: rank %d %s", why, job->rank, r, l->why);
  }
  return 0;
}

static int sf__timeout_err(sf_job *job, double waited, const char *dflt) {
  const char *label = sf__label(job, dflt);
  char peer[64];
  if (job->wait_peer == SF_ANY_SOURCE)
    snprintf(peer, sizeof peer, "any rank");
  else if (job->wait_peer >= 0)
    snprintf(peer, sizeof peer, "rank %d", job->wait_peer);
  else if (job->wait_peer == -3) /* the whole-host barrier: say how many never arrived */
    snprintf(peer, sizeof peer, "%d of %d ranks to arrive", job->nlocal - (int)atomic_load(&job->ctl->bar_count),
             job->nlocal);
  else
    snprintf(peer, sizeof peer, "several ranks");
  if (job->wait_tag >= 0)
    return sf__err(SF_ETIMEDOUT, "%s on rank %d timed out after %.0f ms waiting for %s (tag %d)", label, job->rank,
                   waited * 1e3, peer, job->wait_tag);
  return sf__err(SF_ETIMEDOUT, "%s on rank %d timed out after %.0f ms waiting for %s", label, job->rank, waited * 1e3,
                 peer);
}

/* ---- blocking ------------------------------------------------------------------------------- */

int sf__block(sf_job *job, sf__cond_fn cond, void *arg, const char *dflt_label) {
  sf__slot *me = sf__slot_of(job, job->me);
  double t0 = sf_now(), now, last_check, spin = job->spin_us * 1e-6;
  uint32_t awake;
  int rc, i = 0, brief;

  for (;;) { /* spin */
    rc = sf_progress(job);
    if (rc < 0) return rc;
    rc = cond(job, arg);
    if (rc) return rc < 0 ? rc : 0;
    sf__relax();
    if ((++i & 63) == 0 && sf_now() - t0 > spin) break;
  }
  last_check = sf_now();
  rc = sf__check_health(job, sf__label(job, dflt_label), 1);
  if (rc < 0) return rc;
  for (;;) { /* sleep */
    int event = job->nremote > 0 || job->armed;
    uint32_t bell = 0;
    awake = job->armed ? SF__SLEEP_EVENT : SF__AWAKE;
    if (event && job->epfd < 0 && (rc = sf__epoll_open(job)) < 0) return rc;
    atomic_store(&me->sleeping, event ? SF__SLEEP_EVENT : SF__SLEEP_FUTEX);
    atomic_thread_fence(memory_order_seq_cst);
    brief = sf__sleep_barrier(job) < 0;
    if (!event) bell = atomic_load(&me->bell);
    rc = sf_progress(job);
    if (rc >= 0) rc = cond(job, arg);
    if (rc) {
      atomic_store(&me->sleeping, awake);
      return rc < 0 ? rc : 0;
    }
    if (event) {
      sf__events(job, job->nclaims || brief ? 1 : SF_TICK_MS);
    } else {
      struct timespec ts = {SF_TICK_MS / 1000, (long)(SF_TICK_MS % 1000) * 1000000L};
      /* A send that may be taken back (core.c) must not sleep through its moment. */
      if (job->nclaims || brief) ts.tv_sec = 0, ts.tv_nsec = 100000;
      /* EAGAIN (rung meanwhile), ETIMEDOUT (the tick) and EINTR all mean: look again. */
      sf__futex(&me->bell, FUTEX_WAIT, bell, &ts);
    }
    atomic_store(&me->sleeping, awake);
    /* Deaths and aborts ring the doorbell too: look at them now, cheaply. */
    rc = sf__check_health(job, sf__label(job, dflt_label), 0);
    if (rc < 0) return rc;
    /* Woken: spin a little again, the next frame often follows. */
    for (i = 0; i < 64; i++) {
      rc = sf_progress(job);
      if (rc < 0) return rc;
      rc = cond(job, arg);
      if (rc) return rc < 0 ? rc : 0;
      sf__relax();
    }
    now = sf_now();
    if (now - last_check >= SF_TICK_MS * 1e-3) {
      last_check = now;
      rc = sf__check_health(job, sf__label(job, dflt_label), 1);
      if (rc < 0) return rc;
      if (job->timeout_ms >= 0 && (now - t0) * 1e3 > job->timeout_ms) return sf__timeout_err(job, now - t0, dflt_label);
    }
  }
}
