/*
 * link_shm.c: the shared-memory link to a rank of this host (link.h).
 *
 * Each ordered pair (src, dst) of local ranks has one single-producer/single-consumer byte ring
 * in the host's region; only src writes records, only dst writes tail. Records (a frame: header
 * and payload) start 32-aligned so that a header never wraps (payloads may):
 *
 *   ... | hdr[0..8) hdr[8..32) payload pad | 0 (next start) | ...   0 = nothing written yet
 *
 * The consumer polls only the first 8 bytes of the record at its tail (magic, version, type,
 * source: never 0 in a frame), so a small message costs it one cache line, the record's own,
 * where a published head index cost a second line moved between the cores on every message
 * (8-byte OSU latency 0.40 us -> 0.17 us here). The producer writes the record's first word
 * last (release); the start of the record after it must read 0 by then, so the producer clears
 * record starts ahead of its head in consumed space (one 32-byte slot always stays free for
 * that). After writing, the producer rings the consumer's doorbell if it sleeps; after
 * consuming, the consumer rings the producer's if it sleeps (it may wait for room).
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
  uint64_t out_head;       /* producer: bytes ever written (published as out->head too) */
  uint64_t out_tail_cache; /* producer: the consumer's tail as last read */
  uint64_t out_zero;       /* producer: every record start in [out_head, out_zero) reads 0 */
  uint64_t in_tail;        /* consumer: bytes ever consumed (published as in->tail) */
  uint64_t claim_free;     /* producer: bit i set = claim word i of the out ring unused */
  uint32_t claim_gen;      /* producer: generation of the last claim armed */
  int pidfd; /* -1 until opened (fallback health check) */
} sf__shm_link;

/* How far ahead of its head a producer clears record starts after each frame (see put). */
#define SF__ZERO_AHEAD 2048

static inline size_t sf__align(size_t n) { return (n + SF__FRAME_ALIGN - 1) & ~(size_t)(SF__FRAME_ALIGN - 1); }

/* The first 8 bytes of the record at ring position `pos`: the header's magic, version, type and
 * source, never 0 in a frame; 0 where no frame has been written yet (see put). */
static inline _Atomic uint64_t *sf__word(unsigned char *data, size_t cap, uint64_t pos) {
  return (_Atomic uint64_t *)(void *)(data + (pos & (cap - 1)));
}

static void sf__copy_in(unsigned char *data, size_t cap, uint64_t pos, const void *src, size_t n) {
  size_t off = (size_t)(pos & (cap - 1)), first = cap - off;
  if (n <= first) {
    memcpy(data + off, src, n);
  } else {
    memcpy(data + off, src, first);
    memcpy(data, (const unsigned char *)src + first, n - first);
  }
}

/* Clears the record starts in [s->out_zero, upto) (upto never beyond the consumer's tail + cap:
 * only consumed bytes are touched). */
static void sf__zero_to(sf__shm_link *s, size_t cap, uint64_t upto) {
  uint64_t z = s->out_zero;
  for (; z < upto; z += SF__FRAME_ALIGN) atomic_store_explicit(sf__word(s->out_data, cap, z), 0, memory_order_relaxed);
  if (z > s->out_zero) s->out_zero = z;
}

/* The producer: the record, then its first word (release): the consumer, which reads only that
 * word until it turns non-zero, then sees the whole frame. The start of the next record must
 * read 0 by then: cleared now if it was not already, and the starts up to SF__ZERO_AHEAD beyond
 * are cleared after publishing, off the path to the consumer (taking ownership of those lines
 * early, as a prefetch would). One slot beyond every record stays free for that zero. */
static int shm_put(sf__link *base, const sf__frame *f, const void *p1, size_t n1, const void *p2, size_t n2) {
  sf__shm_link *s = (sf__shm_link *)base;
  sf_job *job = base->job;
  size_t cap = job->ring_bytes, total = sf__align(sizeof *f + n1 + n2);
  uint64_t head = s->out_head, tail = s->out_tail_cache, word, next;

  if (head + total + SF__FRAME_ALIGN - tail > cap) {
    tail = atomic_load_explicit(&s->out->tail, memory_order_acquire);
    s->out_tail_cache = tail;
    if (head + total + SF__FRAME_ALIGN - tail > cap) return 0;
  }
  next = head + total;
  if (s->out_zero <= next) {
    atomic_store_explicit(sf__word(s->out_data, cap, next), 0, memory_order_relaxed);
    s->out_zero = next + SF__FRAME_ALIGN;
  }
  /* 32-aligned: the header never wraps. */
  memcpy(s->out_data + (head & (cap - 1)) + sizeof word, (const unsigned char *)f + sizeof word, sizeof *f - sizeof word);
  if (n1) sf__copy_in(s->out_data, cap, head + sizeof *f, p1, n1);
  if (n2) sf__copy_in(s->out_data, cap, head + sizeof *f + n1, p2, n2);
  memcpy(&word, f, sizeof word);
  atomic_store_explicit(sf__word(s->out_data, cap, head), word, memory_order_release);
  s->out_head = next;
  atomic_store_explicit(&s->out->head, next, memory_order_relaxed); /* for inspection only */
  /* Pairs with the receiver's fence (or membarrier) between announcing sleep and re-checking
   * its links. */
  sf__wake_fence(job);
  if (atomic_load_explicit(&sf__slot_of(job, s->peer_local)->sleeping, memory_order_relaxed)) sf__wake_local(job, s->peer_local);
  {
    uint64_t upto = next + SF__ZERO_AHEAD, limit = s->out_tail_cache + cap - SF__FRAME_ALIGN;
    sf__zero_to(s, cap, upto < limit ? upto : limit);
  }
  return 1;
}

static int shm_readable(sf__link *base) {
  sf__shm_link *s = (sf__shm_link *)base;
  return atomic_load_explicit(sf__word(s->in_data, base->job->ring_bytes, s->in_tail), memory_order_relaxed) != 0;
}

static int shm_poll(sf__link *base) {
  sf__shm_link *s = (sf__shm_link *)base;
  sf_job *job = base->job;
  size_t cap = job->ring_bytes;
  uint64_t tail = s->in_tail;
  int rc = 0, any = 0;

  if (base->broken) return SF_EPROTO;
  while (atomic_load_explicit(sf__word(s->in_data, cap, tail), memory_order_acquire) != 0) {
    sf__frame f;
    sf__payload p;
    const char *bad;
    unsigned long long v = 0;
    size_t total;
    memcpy(&f, s->in_data + (tail & (cap - 1)), sizeof f);
    bad = sf__frame_check(&f, base->peer, job->rank, base->max_frame, &v);
    if (bad) return sf__link_proto(base, bad, v);
    total = sf__align(sizeof f + (size_t)f.len);
    p.base = s->in_data;
    p.cap = cap;
    p.pos = tail + sizeof f;
    rc = sf__deliver(job, base, &f, &p);
    tail += total;
    s->in_tail = tail;
    atomic_store_explicit(&s->in->tail, tail, memory_order_release);
    any = 1;
    if (rc < 0) break;
  }
  if (any) {
    /* The producer may wait for room: ring it if it sleeps. */
    sf__wake_fence(job);
    if (atomic_load_explicit(&sf__slot_of(job, s->peer_local)->sleeping, memory_order_relaxed)) sf__wake_local(job, s->peer_local);
  }
  return rc < 0 ? rc : 0;
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

/* Claims (frame.h): our sends' words live in the out ring's header, the peer's in the in ring's. */
_Static_assert(SF__CLAIMS <= 64, "claim_free is a 64-bit map");

static uint32_t shm_claim_arm(sf__link *base, uint32_t *gen) {
  sf__shm_link *s = (sf__shm_link *)base;
  int i;
  if (s->claim_free == 0) return 0;
  i = __builtin_ctzll(s->claim_free);
  s->claim_free &= ~(1ull << i);
  if (++s->claim_gen == 0) s->claim_gen = 1;
  *gen = s->claim_gen;
  /* Published by the RTS that names it (the record's release store). */
  atomic_store_explicit(&s->out->claim[i], (uint64_t)*gen << 2 | SF__CLAIM_ARMED, memory_order_relaxed);
  return (uint32_t)i + 1;
}

static int shm_claim_resolve(sf__link *base, uint32_t c, uint32_t gen, int take_back) {
  sf__shm_link *s = (sf__shm_link *)base;
  uint64_t want = (uint64_t)gen << 2 | SF__CLAIM_ARMED, seen;
  _Atomic uint64_t *w;
  if (c == 0 || c > SF__CLAIMS) return -1;
  w = take_back ? &s->out->claim[c - 1] : &s->in->claim[c - 1];
  seen = want;
  if (atomic_compare_exchange_strong(w, &seen, (uint64_t)gen << 2 | (take_back ? SF__CLAIM_CONVERTED : SF__CLAIM_TAKEN)))
    return 1;
  /* Lost: the other side's move is in the word, or (taking) the sender took it back and has
   * armed the word again for a later message since. */
  if (seen == ((uint64_t)gen << 2 | (take_back ? SF__CLAIM_TAKEN : SF__CLAIM_CONVERTED))) return 0;
  return !take_back && (uint32_t)(seen >> 2) != gen ? 0 : -1;
}

static void shm_claim_release(sf__link *base, uint32_t c) {
  sf__shm_link *s = (sf__shm_link *)base;
  if (c >= 1 && c <= SF__CLAIMS) s->claim_free |= 1ull << (c - 1);
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
    .claim_arm = shm_claim_arm,
    .claim_resolve = shm_claim_resolve,
    .claim_release = shm_claim_release,
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
  s->l.max_frame = job->ring_bytes - SF__FRAME_BYTES - SF__FRAME_ALIGN; /* a record and the zero after it */
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
  s->out_zero = job->ring_bytes; /* a fresh ring reads 0 everywhere */
  s->claim_free = SF__CLAIMS == 64 ? ~0ull : (1ull << SF__CLAIMS) - 1;
  s->pidfd = -1;
  return &s->l;
}
