/*
 * link_shm.c: the shared-memory link to a rank of this host (link.h).
 *
 * Each ordered pair (src, dst) of local ranks has one single-producer/single-consumer byte ring
 * in the host's region; only src writes head, only dst writes tail. Frames start 32-aligned so
 * that a header never wraps (payloads may). After writing, the producer rings the consumer's
 * doorbell if it sleeps; after consuming, the consumer rings the producer's if it sleeps (it may
 * wait for room).
 *
 * Health: the peer's parent (the host's first rank) watches it and reports its death into its
 * slot (sf_job_note_death), which wakes every waiter at once; as a fallback for parents that do
 * not watch, health() also checks a pidfd of the peer. A peer that marked itself FINISHED may
 * exit without alarm.
 *
 * Capability DIRECT: a rendezvous message is read straight from the peer's memory with
 * process_vm_readv (one copy), where the kernel allows it.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "internal.h"
#include "sf_proc.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

typedef struct sf__shm_link {
  sf__link l;
  int peer_local;
  sf__ring_hdr *out, *in; /* ring[me][peer], ring[peer][me] */
  unsigned char *out_data, *in_data;
  uint64_t out_tail_cache;
  int pidfd; /* -1 until opened (fallback health check) */
} sf__shm_link;

static inline size_t sf__align(size_t n) { return (n + SF__FRAME_ALIGN - 1) & ~(size_t)(SF__FRAME_ALIGN - 1); }

static void sf__copy_in(unsigned char *data, size_t cap, uint64_t pos, const void *src, size_t n) {
  size_t off = (size_t)(pos & (cap - 1)), first = cap - off;
  if (n <= first) {
    memcpy(data + off, src, n);
  } else {
    memcpy(data + off, src, first);
    memcpy(data, (const unsigned char *)src + first, n - first);
  }
}

static int shm_put(sf__link *base, const sf__frame *f, const void *p1, size_t n1, const void *p2, size_t n2) {
  sf__shm_link *s = (sf__shm_link *)base;
  sf_job *job = base->job;
  size_t cap = job->ring_bytes, total = sf__align(sizeof *f + n1 + n2);
  uint64_t head = atomic_load_explicit(&s->out->head, memory_order_relaxed);
  uint64_t tail = s->out_tail_cache;

  if (head + total - tail > cap) {
    tail = atomic_load_explicit(&s->out->tail, memory_order_acquire);
    s->out_tail_cache = tail;
    if (head + total - tail > cap) return 0;
  }
  memcpy(s->out_data + (head & (cap - 1)), f, sizeof *f); /* 32-aligned: never wraps */
  if (n1) sf__copy_in(s->out_data, cap, head + sizeof *f, p1, n1);
  if (n2) sf__copy_in(s->out_data, cap, head + sizeof *f + n1, p2, n2);
  atomic_store_explicit(&s->out->head, head + total, memory_order_release);
  /* Pairs with the receiver's fence between announcing sleep and re-checking its links. */
  atomic_thread_fence(memory_order_seq_cst);
  if (atomic_load_explicit(&sf__slot_of(job, s->peer_local)->sleeping, memory_order_relaxed)) sf__wake_local(job, s->peer_local);
  return 1;
}

static int shm_readable(sf__link *base) {
  sf__shm_link *s = (sf__shm_link *)base;
  return atomic_load_explicit(&s->in->head, memory_order_relaxed) != atomic_load_explicit(&s->in->tail, memory_order_relaxed);
}

static int shm_poll(sf__link *base) {
  sf__shm_link *s = (sf__shm_link *)base;
  sf_job *job = base->job;
  size_t cap = job->ring_bytes;
  uint64_t tail = atomic_load_explicit(&s->in->tail, memory_order_relaxed);
  uint64_t head = atomic_load_explicit(&s->in->head, memory_order_acquire);
  int rc = 0;

  if (base->broken) return SF_EPROTO;
  while (tail != head) {
    sf__frame f;
    sf__payload p;
    const char *bad;
    unsigned long long v = 0;
    size_t total;
    if (head - tail > cap || (head & (SF__FRAME_ALIGN - 1)) != 0) return sf__link_proto(base, "bad ring head", head);
    memcpy(&f, s->in_data + (tail & (cap - 1)), sizeof f);
    bad = sf__frame_check(&f, base->peer, job->rank, base->max_frame, &v);
    if (bad) return sf__link_proto(base, bad, v);
    total = sf__align(sizeof f + (size_t)f.len);
    if (total > head - tail) return sf__link_proto(base, "frame beyond the ring's head", f.len);
    p.base = s->in_data;
    p.cap = cap;
    p.pos = tail + sizeof f;
    rc = sf__deliver(job, base, &f, &p);
    tail += total;
    atomic_store_explicit(&s->in->tail, tail, memory_order_release);
    atomic_thread_fence(memory_order_seq_cst);
    if (atomic_load_explicit(&sf__slot_of(job, s->peer_local)->sleeping, memory_order_relaxed)) sf__wake_local(job, s->peer_local);
    if (rc < 0) return rc;
    if (tail == head) head = atomic_load_explicit(&s->in->head, memory_order_acquire);
  }
  return 0;
}

static long shm_direct_read(sf__link *base, void *dst, uint64_t addr, size_t n) {
  sf__shm_link *s = (sf__shm_link *)base;
  pid_t pid = (pid_t)atomic_load(&sf__slot_of(base->job, s->peer_local)->pid);
  struct iovec l = {dst, n};
  struct iovec r = {(void *)(uintptr_t)addr, n};
  ssize_t got = process_vm_readv(pid, &l, 1, &r, 1, 0);
  return got < 0 ? -(long)errno : (long)got;
}

static void shm_health(sf__link *base, int deep) {
  sf__shm_link *s = (sf__shm_link *)base;
  sf_job *job = base->job;
  sf__slot *slot = sf__slot_of(job, s->peer_local);
  uint32_t st;
  int wstatus = -1;
  if (base->state != SF__LINK_UP || s->peer_local == job->me) return;
  st = atomic_load(&slot->state);
  if (st == SF__RANK_FINISHED) {
    base->state = SF__LINK_FINISHED;
    return;
  }
  if (st != SF__RANK_DEAD) {
    if (!deep) return;
    /* Fallback for parents that do not watch their children: a pidfd of the peer. */
    struct pollfd pfd;
    pid_t pid = (pid_t)atomic_load(&slot->pid);
    if (pid <= 0) return; /* not started yet */
    if (s->pidfd < 0) {
      s->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
      if (s->pidfd < 0 && errno != ESRCH) return; /* cannot watch: rely on the parent */
    }
    if (s->pidfd >= 0) {
      pfd.fd = s->pidfd;
      pfd.events = POLLIN;
      pfd.revents = 0;
      if (poll(&pfd, 1, 0) <= 0 || !(pfd.revents & (POLLIN | POLLHUP | POLLERR))) return;
    }
    /* Ended (or already gone when we looked): its status, if it can still be read. */
    if (atomic_load(&slot->state) == SF__RANK_FINISHED) {
      base->state = SF__LINK_FINISHED;
      return;
    }
    if (sf_proc_peek_status(pid, &wstatus) != 0) wstatus = atomic_load(&slot->wstatus);
  } else {
    wstatus = atomic_load(&slot->wstatus);
  }
  {
    char how[160];
    sf_proc_describe(wstatus, 0, "MPI_Finalize", how, sizeof how);
    base->wstatus = wstatus;
    sf__link_down(base, "%s", how);
  }
}

static void shm_close(sf__link *base) {
  sf__shm_link *s = (sf__shm_link *)base;
  if (s->pidfd >= 0) close(s->pidfd);
  free(s);
}

static const sf__link_ops sf__shm_ops = {
    .kind = "shared memory",
    .put = shm_put,
    .poll = shm_poll,
    .readable = shm_readable,
    .flush = NULL,
    .direct_read = shm_direct_read,
    .health = shm_health,
    .close = shm_close,
};

sf__link *sf__shm_link_new(sf_job *job, int peer) {
  sf__shm_link *s = calloc(1, sizeof *s);
  int pl = job->local_of[peer];
  if (s == NULL) return NULL;
  s->l.ops = &sf__shm_ops;
  s->l.job = job;
  s->l.peer = peer;
  s->l.caps = job->cma > 0 && peer != job->rank ? SF__LINK_DIRECT : 0;
  s->l.max_frame = job->ring_bytes - SF__FRAME_BYTES;
  /* A link that reads directly sends eagerly only what is cheaper to copy twice than to read
   * once (cma_min); the others, and a link whose peer turned out unable to read us (a CTS
   * answered an RTS: sf__deliver raises the limit back), up to the eager limit. */
  s->l.eager_limit = s->l.caps & SF__LINK_DIRECT && job->cma_min < job->eager_limit ? job->cma_min : job->eager_limit;
  s->l.chunk = job->eager_limit;
  s->l.wstatus = -1;
  s->peer_local = pl;
  s->out = sf__ring(job, job->me, pl);
  s->in = sf__ring(job, pl, job->me);
  s->out_data = (unsigned char *)(s->out + 1);
  s->in_data = (unsigned char *)(s->in + 1);
  s->pidfd = -1;
  return &s->l;
}
