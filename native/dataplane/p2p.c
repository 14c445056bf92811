/*
 * p2p.c: rings, frames, matching, eager and rendezvous paths, waiting.
 *
 * Each ordered pair (src, dst) has one single-producer/single-consumer byte ring; only src
 * writes head, only dst writes tail. A receiver drains every incoming ring in order into its
 * posted receives (matched in post order) or its unexpected queue (process-local memory), which
 * keeps MPI's non-overtaking order per (sender, context).
 *
 * Sends never block inside sf_isend: a frame that does not fit waits in outq[dst] (FIFO, so order
 * is kept) and is pushed by later progress. Every wait drains incoming rings too, so two ranks
 * sending to each other with full rings cannot deadlock on eager messages.
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
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>
#include <linux/futex.h>

static inline void sf__relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  __asm__ __volatile__("yield");
#endif
}

static inline size_t sf__align(size_t n) { return (n + SF__FRAME_ALIGN - 1) & ~(size_t)(SF__FRAME_ALIGN - 1); }

/* ---- requests ---------------------------------------------------------------------------- */

static struct sf_req *sf__req_new(sf_job *job, int kind) {
  struct sf_req *r = job->freelist;
  if (r) {
    job->freelist = r->next;
  } else {
    r = malloc(sizeof *r);
    if (r == NULL) return NULL;
  }
  memset(r, 0, sizeof *r);
  r->kind = kind;
  return r;
}

void sf__req_release(sf_job *job, struct sf_req *req) {
  req->next = job->freelist;
  job->freelist = req;
}

static void sf__complete(sf_job *job, struct sf_req *req, int err) {
  req->phase = SF__P_DONE;
  req->err = err;
  if (req->freed) sf__req_release(job, req);
}

static int sf__list_remove(struct sf_req **head, struct sf_req *req) {
  for (struct sf_req **p = head; *p; p = &(*p)->next)
    if (*p == req) {
      *p = req->next;
      return 1;
    }
  return 0;
}

static struct sf_req *sf__list_take_id(struct sf_req **head, uint64_t id, int by_my_id) {
  for (struct sf_req **p = head; *p; p = &(*p)->next) {
    struct sf_req *r = *p;
    if ((by_my_id ? r->my_id : r->id) == id) {
      *p = r->next;
      return r;
    }
  }
  return NULL;
}

/* ---- rings ------------------------------------------------------------------------------- */

static void sf__copy_in(unsigned char *data, size_t cap, uint64_t pos, const void *src, size_t n) {
  size_t off = (size_t)(pos & (cap - 1)), first = cap - off;
  if (n <= first) {
    memcpy(data + off, src, n);
  } else {
    memcpy(data + off, src, first);
    memcpy(data, (const unsigned char *)src + first, n - first);
  }
}

static void sf__copy_out(const unsigned char *data, size_t cap, uint64_t pos, void *dst, size_t n) {
  size_t off = (size_t)(pos & (cap - 1)), first = cap - off;
  if (n <= first) {
    memcpy(dst, data + off, n);
  } else {
    memcpy(dst, data + off, first);
    memcpy((unsigned char *)dst + first, data, n - first);
  }
}

/* Write one frame to ring[me][dst]: returns 1 when written, 0 when it does not fit now. */
static int sf__ring_put(sf_job *job, int dst, uint8_t type, uint32_t ctx, int tag, uint64_t aux,
                        const void *p1, size_t n1, const void *p2, size_t n2) {
  sf__ring_hdr *r = sf__ring(job, job->rank, dst);
  unsigned char *data = (unsigned char *)(r + 1);
  size_t cap = job->ring_bytes, total = sf__align(sizeof(sf__frame) + n1 + n2);
  uint64_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
  uint64_t tail = job->out_tail_cache[dst];
  sf__frame f;

  if (head + total - tail > cap) {
    tail = atomic_load_explicit(&r->tail, memory_order_acquire);
    job->out_tail_cache[dst] = tail;
    if (head + total - tail > cap) return 0;
  }
  f.magic = SF__FRAME_MAGIC;
  f.version = SF__FRAME_VERSION;
  f.type = type;
  f.src = job->rank;
  f.dst = dst;
  f.ctx = ctx;
  f.tag = tag;
  f.len = (uint32_t)(n1 + n2);
  f.aux = aux;
  memcpy(data + (head & (cap - 1)), &f, sizeof f); /* 32-aligned: never wraps */
  if (n1) sf__copy_in(data, cap, head + sizeof f, p1, n1);
  if (n2) sf__copy_in(data, cap, head + sizeof f + n1, p2, n2);
  atomic_store_explicit(&r->head, head + total, memory_order_release);
  /* Pairs with the receiver's fence between announcing sleep and re-checking its rings. */
  atomic_thread_fence(memory_order_seq_cst);
  if (atomic_load_explicit(&sf__slot_of(job, dst)->sleeping, memory_order_relaxed)) sf__wake(job, dst);
  return 1;
}

static void sf__outq_append(sf_job *job, int dst, sf__out *o) {
  o->next = NULL;
  if (job->outq_tail[dst])
    job->outq_tail[dst]->next = o;
  else
    job->outq_head[dst] = o;
  job->outq_tail[dst] = o;
  job->outq_count++;
}

static void sf__outq_pop(sf_job *job, int dst) {
  sf__out *o = job->outq_head[dst];
  job->outq_head[dst] = o->next;
  if (job->outq_head[dst] == NULL) job->outq_tail[dst] = NULL;
  job->outq_count--;
}

/* Send a small control frame now, or queue it behind what is already queued for dst. */
static int sf__send_ctl(sf_job *job, int dst, uint8_t type, uint64_t aux, const uint64_t *payload) {
  sf__out *o;
  if (job->outq_head[dst] == NULL &&
      sf__ring_put(job, dst, type, 0, 0, aux, payload, payload ? 8 : 0, NULL, 0))
    return 0;
  o = calloc(1, sizeof *o);
  if (o == NULL) return sf__err(SF_ENOMEM, "out of memory queueing a control frame");
  o->f.type = type;
  o->f.aux = aux;
  o->f.len = payload ? 8 : 0;
  if (payload) o->payload = *payload;
  sf__outq_append(job, dst, o);
  return 0;
}

/* Try to make progress on one queued send item; 1 = item finished (pop it), 0 = blocked. */
static int sf__push_item(sf_job *job, int dst, sf__out *o) {
  struct sf_req *s = o->req;
  if (s == NULL)
    return sf__ring_put(job, dst, o->f.type, 0, 0, o->f.aux, &o->payload, o->f.len, NULL, 0);
  if (s->phase == SF__P_QUEUED) {
    if (!s->sync && s->len <= job->eager_limit) {
      if (!sf__ring_put(job, dst, SF__F_EAGER, s->ctx, s->tag, 0, s->sbuf, s->len, NULL, 0)) return 0;
      sf__complete(job, s, 0);
      return 1;
    } else {
      sf__rts rts = {s->id, (uint64_t)(uintptr_t)s->sbuf, (uint64_t)s->len};
      if (!sf__ring_put(job, dst, SF__F_RTS, s->ctx, s->tag, 0, &rts, sizeof rts, NULL, 0)) return 0;
      s->phase = SF__P_WAITFIN;
      s->next = job->waitfin;
      job->waitfin = s;
      return 1;
    }
  }
  /* SF__P_STREAM: pipelined copy through the ring. */
  while (s->sent < s->len) {
    size_t chunk = s->len - s->sent;
    if (chunk > job->eager_limit) chunk = job->eager_limit;
    if (!sf__ring_put(job, dst, SF__F_DATA, 0, 0, s->rid, (const unsigned char *)s->sbuf + s->sent, chunk, NULL, 0))
      return 0;
    s->sent += chunk;
  }
  sf__complete(job, s, 0);
  return 1;
}

static void sf__push_out(sf_job *job) {
  if (job->outq_count == 0) return;
  for (int d = 0; d < job->size; d++) {
    sf__out *o;
    while ((o = job->outq_head[d]) != NULL) {
      if (!sf__push_item(job, d, o)) break;
      sf__outq_pop(job, d);
      if (o->req == NULL) free(o);
    }
  }
}

/* ---- matching and delivery --------------------------------------------------------------- */

static inline int sf__match(const struct sf_req *r, int src, uint32_t ctx, int tag) {
  return r->ctx == ctx && (r->src == SF_ANY_SOURCE || r->src == src) && (r->tag == SF_ANY_TAG || r->tag == tag);
}

static struct sf_req *sf__take_posted(sf_job *job, int src, uint32_t ctx, int tag) {
  struct sf_req *prev = NULL;
  for (struct sf_req *r = job->posted_head; r; prev = r, r = r->next) {
    if (!sf__match(r, src, ctx, tag)) continue;
    if (prev)
      prev->next = r->next;
    else
      job->posted_head = r->next;
    if (job->posted_tail == r) job->posted_tail = prev;
    return r;
  }
  return NULL;
}

static void sf__set_status(struct sf_req *r, int src, int tag, size_t size) {
  r->st.source = src;
  r->st.tag = tag;
  r->st.size = size;
  r->st.count = size < r->cap ? size : r->cap;
  r->st.error = size > r->cap ? SF_ETRUNCATE : 0;
}

/* Start receiving a rendezvous message matched by `r`. */
static int sf__rdv_start(sf_job *job, struct sf_req *r, int src, const sf__rts *rts) {
  size_t n;
  sf__set_status(r, src, r->st.tag, (size_t)rts->size);
  n = r->st.count;
  if (n == 0 || src == job->rank) {
    if (n) memcpy(r->buf, (const void *)(uintptr_t)rts->addr, n);
    sf__complete(job, r, r->st.error);
    return sf__send_ctl(job, src, SF__F_FIN, rts->id, NULL);
  }
  if (job->cma > 0 && n > job->cma_min) {
    pid_t pid = sf_job_pid(job, src);
    size_t done = 0;
    while (done < n) {
      struct iovec l = {(char *)r->buf + done, n - done};
      struct iovec rv = {(void *)(uintptr_t)(rts->addr + done), n - done};
      ssize_t got = process_vm_readv(pid, &l, 1, &rv, 1, 0);
      if (got > 0) {
        done += (size_t)got;
        continue;
      }
      if (got < 0 && errno == EINTR) continue;
      if (got < 0 && (errno == EPERM || errno == ENOSYS) && done == 0) {
        job->cma = -1; /* refused here: stream through the ring from now on */
        break;
      }
      {
        int rc = sf__errno("process_vm_readv of a rendezvous message");
        sf__complete(job, r, rc);
        return rc;
      }
    }
    if (done == n) {
      sf__complete(job, r, r->st.error);
      return sf__send_ctl(job, src, SF__F_FIN, rts->id, NULL);
    }
  }
  /* Pipelined: ask the sender to stream it. */
  r->my_id = job->next_id++;
  r->got = 0;
  r->phase = SF__P_PIPE;
  r->next = job->pipes;
  job->pipes = r;
  return sf__send_ctl(job, src, SF__F_CTS, rts->id, &r->my_id);
}

static int sf__proto(sf_job *job, int src, const char *what, unsigned long long v) {
  job->broken[src] = 1;
  job->proto_err = 1;
  return sf__err(SF_EPROTO, "malformed frame from rank %d to rank %d: %s (%llu); the ring is closed",
                 src, job->rank, what, v);
}

/* Drain ring[src][me]. */
static int sf__drain(sf_job *job, int src) {
  sf__ring_hdr *ring = sf__ring(job, src, job->rank);
  const unsigned char *data = (const unsigned char *)(ring + 1);
  size_t cap = job->ring_bytes;
  uint64_t tail = atomic_load_explicit(&ring->tail, memory_order_relaxed);
  uint64_t head = atomic_load_explicit(&ring->head, memory_order_acquire);
  int rc = 0;

  if (job->broken[src]) return SF_EPROTO;
  while (tail != head) {
    sf__frame f;
    uint64_t pos;
    size_t total;
    if (head - tail > cap || (head & (SF__FRAME_ALIGN - 1)) != 0) return sf__proto(job, src, "bad ring head", head);
    memcpy(&f, data + (tail & (cap - 1)), sizeof f);
    if (f.magic != SF__FRAME_MAGIC) return sf__proto(job, src, "bad magic", f.magic);
    if (f.version != SF__FRAME_VERSION) return sf__proto(job, src, "bad version", f.version);
    if (f.src != src || f.dst != job->rank) return sf__proto(job, src, "wrong source/destination", (unsigned)f.src);
    total = sf__align(sizeof f + (size_t)f.len);
    if ((size_t)f.len > cap - sizeof f || total > head - tail) return sf__proto(job, src, "bad length", f.len);
    pos = tail + sizeof f;

    switch (f.type) {
    case SF__F_EAGER: {
      struct sf_req *r = sf__take_posted(job, src, f.ctx, f.tag);
      if (r) {
        sf__set_status(r, src, f.tag, f.len);
        if (r->st.count) sf__copy_out(data, cap, pos, r->buf, r->st.count);
        sf__complete(job, r, r->st.error);
      } else {
        sf__unexp *u = malloc(sizeof *u);
        unsigned char *copy = malloc(f.len ? f.len : 1);
        if (u == NULL || copy == NULL) {
          free(u);
          free(copy);
          return sf__err(SF_ENOMEM, "out of memory queueing an unexpected message of %u bytes", f.len);
        }
        sf__copy_out(data, cap, pos, copy, f.len);
        u->next = NULL;
        u->src = src;
        u->ctx = f.ctx;
        u->tag = f.tag;
        u->rdv = 0;
        u->size = f.len;
        u->data = copy;
        if (job->unexp_tail)
          job->unexp_tail->next = u;
        else
          job->unexp_head = u;
        job->unexp_tail = u;
      }
      break;
    }
    case SF__F_RTS: {
      sf__rts rts;
      struct sf_req *r;
      if (f.len != sizeof rts) return sf__proto(job, src, "bad RTS length", f.len);
      sf__copy_out(data, cap, pos, &rts, sizeof rts);
      r = sf__take_posted(job, src, f.ctx, f.tag);
      if (r) {
        r->st.tag = f.tag;
        rc = sf__rdv_start(job, r, src, &rts);
      } else {
        sf__unexp *u = calloc(1, sizeof *u);
        if (u == NULL) return sf__err(SF_ENOMEM, "out of memory queueing an unexpected message");
        u->src = src;
        u->ctx = f.ctx;
        u->tag = f.tag;
        u->rdv = 1;
        u->size = (size_t)rts.size;
        u->rts = rts;
        if (job->unexp_tail)
          job->unexp_tail->next = u;
        else
          job->unexp_head = u;
        job->unexp_tail = u;
      }
      break;
    }
    case SF__F_FIN: {
      struct sf_req *s = sf__list_take_id(&job->waitfin, f.aux, 0);
      if (s == NULL) return sf__proto(job, src, "FIN for an unknown send", f.aux);
      sf__complete(job, s, 0);
      break;
    }
    case SF__F_CTS: {
      uint64_t rid;
      struct sf_req *s;
      if (f.len != 8) return sf__proto(job, src, "bad CTS length", f.len);
      sf__copy_out(data, cap, pos, &rid, 8);
      s = sf__list_take_id(&job->waitfin, f.aux, 0);
      if (s == NULL) return sf__proto(job, src, "CTS for an unknown send", f.aux);
      s->phase = SF__P_STREAM;
      s->rid = rid;
      s->sent = 0;
      s->out.req = s;
      sf__outq_append(job, src, &s->out);
      break;
    }
    case SF__F_DATA: {
      struct sf_req *r = NULL;
      for (struct sf_req *p = job->pipes; p; p = p->next)
        if (p->my_id == f.aux) r = p;
      if (r == NULL) return sf__proto(job, src, "DATA for an unknown receive", f.aux);
      if (f.len > r->st.size - r->got) return sf__proto(job, src, "DATA beyond the message size", f.len);
      if (r->got < r->cap) {
        size_t n = r->cap - r->got;
        if (n > f.len) n = f.len;
        sf__copy_out(data, cap, pos, (unsigned char *)r->buf + r->got, n);
      }
      r->got += f.len;
      if (r->got == r->st.size) {
        sf__list_remove(&job->pipes, r);
        sf__complete(job, r, r->st.error);
      }
      break;
    }
    default:
      return sf__proto(job, src, "unknown frame type", f.type);
    }

    tail += total;
    atomic_store_explicit(&ring->tail, tail, memory_order_release);
    atomic_thread_fence(memory_order_seq_cst);
    if (atomic_load_explicit(&sf__slot_of(job, src)->sleeping, memory_order_relaxed)) sf__wake(job, src);
    if (rc < 0) return rc;
    if (tail == head) head = atomic_load_explicit(&ring->head, memory_order_acquire);
  }
  return 0;
}

int sf_progress(sf_job *job) {
  int rc;
  if (job == NULL || job->rank < 0) return sf__err(SF_ESTATE, "sf_progress: job not attached");
  sf__push_out(job);
  for (int s = 0; s < job->size; s++) {
    sf__ring_hdr *r = sf__ring(job, s, job->rank);
    if (atomic_load_explicit(&r->head, memory_order_relaxed) == atomic_load_explicit(&r->tail, memory_order_relaxed))
      continue;
    rc = sf__drain(job, s);
    if (rc < 0) return rc;
  }
  sf__push_out(job);
  if (job->hook && !job->in_hook) {
    job->in_hook = 1;
    rc = job->hook(job, job->hook_arg);
    job->in_hook = 0;
    if (rc < 0) return rc;
  }
  return 0;
}

void sf_job_set_progress_hook(sf_job *job, sf_progress_hook_fn fn, void *arg) {
  if (job == NULL) return;
  job->hook = fn;
  job->hook_arg = arg;
}

/* ---- public point-to-point --------------------------------------------------------------- */

static int sf__isend(sf_job *job, const void *buf, size_t len, int dst, uint32_t ctx, int tag, int sync,
                     sf_req **out) {
  struct sf_req *s = sf__req_new(job, SF__REQ_SEND);
  if (s == NULL) return sf__err(SF_ENOMEM, "out of memory for a send request");
  s->sbuf = buf;
  s->len = len;
  s->dst = dst;
  s->ctx = ctx;
  s->tag = tag;
  s->sync = sync;
  s->id = job->next_id++;
  s->st.source = dst;
  s->st.tag = tag;
  s->st.size = s->st.count = len;
  *out = s;
  if (dst == SF_PROC_NULL) {
    s->phase = SF__P_DONE;
    return 0;
  }
  s->phase = SF__P_QUEUED;
  s->out.req = s;
  if (job->outq_head[dst] == NULL && sf__push_item(job, dst, &s->out)) return 0;
  sf__outq_append(job, dst, &s->out);
  return 0;
}

int sf_isend(sf_job *job, const void *buf, size_t len, int dst, uint32_t ctx, int tag, int sync, sf_req **req) {
  if (job == NULL || req == NULL) return sf__err(SF_EINVAL, "sf_isend: job and req are required");
  if (job->rank < 0) return sf__err(SF_ESTATE, "sf_isend: job not attached");
  if (dst != SF_PROC_NULL && (dst < 0 || dst >= job->size))
    return sf__err(SF_ERANGE, "dest %d out of range for a job of size %d", dst, job->size);
  if (tag < 0) return sf__err(SF_ERANGE, "tag %d out of range 0..%d", tag, SF_TAG_MAX);
  if (buf == NULL && len > 0) return sf__err(SF_EINVAL, "sf_isend: buffer is NULL for %zu bytes", len);
  if (dst != SF_PROC_NULL && job->broken[dst])
    return sf__err(SF_EPROTO, "send to rank %d: the connection from rank %d carried a malformed frame and is closed", dst, dst);
  return sf__isend(job, buf, len, dst, ctx, tag, sync, req);
}

static void sf__deliver_unexp(sf_job *job, struct sf_req *r, sf__unexp *u, int *rc) {
  if (u->rdv) {
    r->st.tag = u->tag;
    *rc = sf__rdv_start(job, r, u->src, &u->rts);
  } else {
    sf__set_status(r, u->src, u->tag, u->size);
    if (r->st.count) memcpy(r->buf, u->data, r->st.count);
    sf__complete(job, r, r->st.error);
  }
  free(u->data);
  free(u);
}

static sf__unexp *sf__take_unexp(sf_job *job, int src, uint32_t ctx, int tag, int remove) {
  sf__unexp *prev = NULL;
  for (sf__unexp *u = job->unexp_head; u; prev = u, u = u->next) {
    if (u->ctx != ctx || (src != SF_ANY_SOURCE && u->src != src) || (tag != SF_ANY_TAG && u->tag != tag)) continue;
    if (remove) {
      if (prev)
        prev->next = u->next;
      else
        job->unexp_head = u->next;
      if (job->unexp_tail == u) job->unexp_tail = prev;
    }
    return u;
  }
  return NULL;
}

int sf_irecv(sf_job *job, void *buf, size_t cap, int src, uint32_t ctx, int tag, sf_req **req) {
  struct sf_req *r;
  sf__unexp *u;
  int rc = 0;
  if (job == NULL || req == NULL) return sf__err(SF_EINVAL, "sf_irecv: job and req are required");
  if (job->rank < 0) return sf__err(SF_ESTATE, "sf_irecv: job not attached");
  if (src != SF_PROC_NULL && src != SF_ANY_SOURCE && (src < 0 || src >= job->size))
    return sf__err(SF_ERANGE, "source %d out of range for a job of size %d", src, job->size);
  if (tag < 0 && tag != SF_ANY_TAG) return sf__err(SF_ERANGE, "tag %d out of range 0..%d", tag, SF_TAG_MAX);
  if (buf == NULL && cap > 0) return sf__err(SF_EINVAL, "sf_irecv: buffer is NULL for %zu bytes", cap);
  r = sf__req_new(job, SF__REQ_RECV);
  if (r == NULL) return sf__err(SF_ENOMEM, "out of memory for a receive request");
  r->buf = buf;
  r->cap = cap;
  r->src = src;
  r->ctx = ctx;
  r->tag = tag;
  *req = r;
  if (src == SF_PROC_NULL) {
    r->st.source = SF_PROC_NULL;
    r->st.tag = SF_ANY_TAG;
    r->phase = SF__P_DONE;
    return 0;
  }
  u = sf__take_unexp(job, src, ctx, tag, 1);
  if (u) {
    sf__deliver_unexp(job, r, u, &rc);
    return rc < 0 ? rc : 0;
  }
  r->phase = SF__P_POSTED;
  r->next = NULL;
  if (job->posted_tail)
    job->posted_tail->next = r;
  else
    job->posted_head = r;
  job->posted_tail = r;
  return 0;
}

/* ---- waiting ----------------------------------------------------------------------------- */

static long sf__futex_wait(_Atomic uint32_t *addr, uint32_t val, int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  return syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAIT, val, &ts, NULL, 0);
}

static int sf__timeout_err(sf_job *job, double waited, const char *dflt) {
  const char *label = sf__label(job, dflt);
  char peer[64];
  if (job->wait_peer == SF_ANY_SOURCE)
    snprintf(peer, sizeof peer, "any rank");
  else if (job->wait_peer >= 0)
    snprintf(peer, sizeof peer, "rank %d", job->wait_peer);
  else if (job->wait_peer == -3) /* the whole-job barrier: say how many never arrived */
    snprintf(peer, sizeof peer, "%d of %d ranks to arrive",
             job->size - (int)atomic_load(&job->ctl->bar_count), job->size);
  else
    snprintf(peer, sizeof peer, "several ranks");
  if (job->wait_tag >= 0)
    return sf__err(SF_ETIMEDOUT, "%s on rank %d timed out after %.0f ms waiting for %s (tag %d)", label, job->rank,
                   waited * 1e3, peer, job->wait_tag);
  return sf__err(SF_ETIMEDOUT, "%s on rank %d timed out after %.0f ms waiting for %s", label, job->rank,
                 waited * 1e3, peer);
}

/* Block until cond() returns non-zero (returns it if > 0 -> 0, or its negative code). */
int sf__block(sf_job *job, sf__cond_fn cond, void *arg, const char *dflt_label) {
  sf__slot *me = sf__slot_of(job, job->rank);
  double t0 = sf_now(), now, last_check, spin = job->spin_us * 1e-6;
  int rc, i = 0;

  for (;;) { /* spin */
    rc = sf_progress(job);
    if (rc < 0) return rc;
    rc = cond(job, arg);
    if (rc) return rc < 0 ? rc : 0;
    sf__relax();
    if ((++i & 63) == 0 && sf_now() - t0 > spin) break;
  }
  last_check = sf_now();
  rc = sf__check_health(job, sf__label(job, dflt_label));
  if (rc < 0) return rc;
  for (;;) { /* sleep on the doorbell */
    uint32_t bell;
    atomic_store(&me->sleeping, 1);
    atomic_thread_fence(memory_order_seq_cst);
    bell = atomic_load(&me->bell);
    rc = sf_progress(job);
    if (rc >= 0) rc = cond(job, arg);
    if (rc) {
      atomic_store(&me->sleeping, 0);
      return rc < 0 ? rc : 0;
    }
    /* EAGAIN (rung meanwhile), ETIMEDOUT (the tick) and EINTR all mean: look again. */
    sf__futex_wait(&me->bell, bell, SF_TICK_MS);
    atomic_store(&me->sleeping, 0);
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
      rc = sf__check_health(job, sf__label(job, dflt_label));
      if (rc < 0) return rc;
      if (job->timeout_ms >= 0 && (now - t0) * 1e3 > job->timeout_ms) return sf__timeout_err(job, now - t0, dflt_label);
    }
  }
}

static int sf__cond_req(sf_job *job, void *arg) {
  (void)job;
  return ((struct sf_req *)arg)->phase == SF__P_DONE;
}

static int sf__finish(sf_job *job, struct sf_req *req, sf_status *st) {
  if (st) *st = req->st;
  if (req->err == SF_ETRUNCATE)
    return sf__err(SF_ETRUNCATE, "message of %zu bytes from rank %d (tag %d) truncated: the receive buffer holds %zu bytes",
                   req->st.size, req->st.source, req->st.tag, req->cap);
  if (req->err < 0) return req->err;
  (void)job;
  return 0;
}

int sf__wait_req(sf_job *job, struct sf_req *req, sf_status *st) {
  int rc;
  if (req->phase != SF__P_DONE) {
    job->wait_peer = req->kind == SF__REQ_SEND ? req->dst : req->src;
    job->wait_tag = req->tag;
    rc = sf__block(job, sf__cond_req, req, req->kind == SF__REQ_SEND ? "send" : "receive");
    if (rc < 0) return rc;
  }
  return sf__finish(job, req, st);
}

int sf_wait(sf_job *job, sf_req *req, sf_status *st) {
  if (job == NULL || req == NULL) return sf__err(SF_EINVAL, "sf_wait: job and req are required");
  return sf__wait_req(job, req, st);
}

int sf_test(sf_job *job, sf_req *req, sf_status *st) {
  int rc;
  if (job == NULL || req == NULL) return sf__err(SF_EINVAL, "sf_test: job and req are required");
  if (req->phase != SF__P_DONE) {
    rc = sf_progress(job);
    if (rc < 0) return rc;
    if (req->phase != SF__P_DONE) return 0;
  }
  rc = sf__finish(job, req, st);
  return rc < 0 ? rc : 1;
}

typedef struct {
  sf_req *const *reqs;
  int n;
} sf__any_arg;

static int sf__cond_any(sf_job *job, void *arg) {
  sf__any_arg *a = arg;
  (void)job;
  for (int i = 0; i < a->n; i++)
    if (a->reqs[i] && a->reqs[i]->phase == SF__P_DONE) return 1;
  return 0;
}

int sf_wait_any(sf_job *job, sf_req *const *reqs, int n, int *index) {
  sf__any_arg a = {reqs, n};
  int rc, any = 0;
  if (job == NULL || index == NULL || (n > 0 && reqs == NULL)) return sf__err(SF_EINVAL, "sf_wait_any: bad arguments");
  *index = -1;
  for (int i = 0; i < n; i++)
    if (reqs[i]) {
      if (!any) {
        job->wait_peer = reqs[i]->kind == SF__REQ_SEND ? reqs[i]->dst : reqs[i]->src;
        job->wait_tag = reqs[i]->tag;
      } else {
        job->wait_peer = -2;
        job->wait_tag = -1;
      }
      any = 1;
    }
  if (!any) return 0;
  rc = sf__block(job, sf__cond_any, &a, "wait-any");
  if (rc < 0) return rc;
  for (int i = 0; i < n; i++)
    if (reqs[i] && reqs[i]->phase == SF__P_DONE) {
      *index = i;
      return 0;
    }
  return 0;
}

/* Withdraw a receive that is still only posted (its wait failed): it must not write into a
 * buffer its caller gave up on. Returns 1 when withdrawn. */
static int sf__unpost(sf_job *job, struct sf_req *r) {
  struct sf_req *prev = NULL;
  if (r->phase != SF__P_POSTED) return 0;
  for (struct sf_req *p = job->posted_head; p; prev = p, p = p->next) {
    if (p != r) continue;
    if (prev)
      prev->next = p->next;
    else
      job->posted_head = p->next;
    if (job->posted_tail == p) job->posted_tail = prev;
    return 1;
  }
  return 0;
}

void sf_req_free(sf_job *job, sf_req *req) {
  if (job == NULL || req == NULL) return;
  if (req->phase == SF__P_DONE || sf__unpost(job, req))
    sf__req_release(job, req);
  else
    req->freed = 1;
}

int sf_req_done(const sf_req *req) { return req && req->phase == SF__P_DONE; }

int sf_send(sf_job *job, const void *buf, size_t len, int dst, uint32_t ctx, int tag, int sync) {
  sf_req *r;
  int rc = sf_isend(job, buf, len, dst, ctx, tag, sync, &r);
  if (rc < 0) return rc;
  rc = sf__wait_req(job, r, NULL);
  if (rc == SF_ETIMEDOUT || rc == SF_EPEERDIED || rc == SF_EABORTED)
    sf_req_free(job, r); /* left pending: detached */
  else
    sf__req_release(job, r);
  return rc;
}

int sf_recv(sf_job *job, void *buf, size_t cap, int src, uint32_t ctx, int tag, sf_status *st) {
  sf_req *r;
  int rc = sf_irecv(job, buf, cap, src, ctx, tag, &r);
  if (rc < 0) return rc;
  rc = sf__wait_req(job, r, st);
  if (r->phase == SF__P_DONE || sf__unpost(job, r))
    sf__req_release(job, r);
  else
    sf_req_free(job, r);
  return rc;
}

typedef struct {
  int src;
  uint32_t ctx;
  int tag;
  sf_status *st;
} sf__probe_arg;

static int sf__cond_probe(sf_job *job, void *arg) {
  sf__probe_arg *a = arg;
  sf__unexp *u = sf__take_unexp(job, a->src, a->ctx, a->tag, 0);
  if (u == NULL) return 0;
  if (a->st) {
    a->st->source = u->src;
    a->st->tag = u->tag;
    a->st->size = a->st->count = u->size;
    a->st->error = 0;
  }
  return 1;
}

int sf_iprobe(sf_job *job, int src, uint32_t ctx, int tag, sf_status *st) {
  sf__probe_arg a = {src, ctx, tag, st};
  int rc;
  if (job == NULL || job->rank < 0) return sf__err(SF_ESTATE, "sf_iprobe: job not attached");
  if (src == SF_PROC_NULL) {
    if (st) {
      memset(st, 0, sizeof *st);
      st->source = SF_PROC_NULL;
      st->tag = SF_ANY_TAG;
    }
    return 1;
  }
  rc = sf_progress(job);
  if (rc < 0) return rc;
  return sf__cond_probe(job, &a);
}

int sf_probe(sf_job *job, int src, uint32_t ctx, int tag, sf_status *st) {
  sf__probe_arg a = {src, ctx, tag, st};
  if (job == NULL || job->rank < 0) return sf__err(SF_ESTATE, "sf_probe: job not attached");
  if (src == SF_PROC_NULL) return sf_iprobe(job, src, ctx, tag, st) < 0 ? -1 : 0;
  job->wait_peer = src;
  job->wait_tag = tag;
  return sf__block(job, sf__cond_probe, &a, "probe");
}
