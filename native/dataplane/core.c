/*
 * core.c: the transport-neutral protocol core: requests, MPI matching, the eager and
 * rendezvous protocols, progress. Peers are reached only through their links (link.h).
 *
 * Matching: incoming frames are matched against posted receives in post order, else queued as
 * unexpected (process-local memory); links deliver in order, which keeps MPI's non-overtaking
 * order per (sender, context).
 *
 * Sending: a message up to the link's eager limit goes in one EAGER frame (copied into the
 * link). A larger one (and every synchronous send) goes by rendezvous: an RTS frame; the
 * receiver, once matched, reads it directly from the sender's memory where the link can (FIN
 * completes the send), else asks for it with CTS and the sender streams DATA frames. A link
 * that reads directly has a low eager limit (a single copy is cheaper from 4 KiB up), but its
 * messages up to the job's eager limit stay buffered: their RTS carries a claim, and a sender
 * whose RTS waited SF__TAKE_BACK_S takes it back and sends it as CONV (frame.h).
 *
 * Sends never block inside sf_isend: a frame that does not fit now waits in its link's queue
 * (FIFO, so order is kept) and is pushed by later progress. Every wait makes progress on every
 * link, so two ranks sending to each other with full links cannot deadlock.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- requests ------------------------------------------------------------------------------- */

/* A request as new. Field by field, not memset: a constant-size memset compiles to rep stos,
 * whose stores the fields read right after wait for (most of sf_isend's samples went there). A
 * field added to sf_req is cleared here too. */
static inline void sf__req_clear(struct sf_req *r, int kind) {
  static const sf_status st0;
  r->kind = kind;
  r->phase = SF__P_NONE;
  r->freed = 0;
  r->err = 0;
  r->st = st0;
  r->next = NULL;
  r->out.next = NULL;
  r->out.req = NULL;
  r->buf = NULL;
  r->cap = 0;
  r->src = 0;
  r->ctx = 0;
  r->tag = 0;
  r->expect = 0;
  r->flags = 0;
  r->got = 0;
  r->my_id = 0;
  r->conv = 0;
  r->nomem = 0;
  r->conv_id = 0;
  r->sbuf = NULL;
  r->len = 0;
  r->dst = 0;
  r->sync = 0;
  r->dtype = 0;
  r->id = 0;
  r->sent = 0;
  r->rid = 0;
  r->claim = 0;
  r->gen = 0;
  r->rts_t = 0;
}

static struct sf_req *sf__req_new(sf_job *job, int kind) {
  struct sf_req *r = job->freelist;
  if (r) {
    job->freelist = r->next;
  } else {
    r = malloc(sizeof *r);
    if (r == NULL) return NULL;
  }
  sf__req_clear(r, kind);
  return r;
}

void sf__req_release(sf_job *job, struct sf_req *req) {
  if (req->kind == SF__REQ_RECV && (req->flags & SF__RECV_ALLOC)) free(req->buf);
  req->next = job->freelist;
  job->freelist = req;
}

static void sf__complete(sf_job *job, struct sf_req *req, int err) {
  req->phase = SF__P_DONE;
  req->err = err;
  if (req->freed) sf__req_release(job, req);
}

static uint32_t sf__new_id(sf_job *job) {
  uint32_t id = job->next_id++;
  if (job->next_id == 0) job->next_id = 1; /* 0 is never a request id */
  return id;
}

static struct sf_req *sf__list_take(struct sf_req **head, uint32_t id, int by_my_id) {
  for (struct sf_req **p = head; *p; p = &(*p)->next) {
    struct sf_req *r = *p;
    if ((by_my_id ? r->my_id : r->id) == id) {
      *p = r->next;
      return r;
    }
  }
  return NULL;
}

/* ---- links: frames out ---------------------------------------------------------------------- */

static void sf__frame_init(sf__frame *f, const sf_job *job, int dst, uint8_t type, uint32_t ctx, int tag,
                           uint32_t len, uint32_t dtype, uint32_t aux) {
  f->magic = SF__FRAME_MAGIC;
  f->version = SF__FRAME_VERSION;
  f->type = type;
  f->src = job->rank;
  f->dst = dst;
  f->ctx = ctx;
  f->tag = tag;
  f->len = len;
  f->dtype = dtype;
  f->aux = aux;
}

static void sf__outq_append(sf_job *job, sf__link *l, sf__out *o) {
  o->next = NULL;
  if (l->outq_tail)
    l->outq_tail->next = o;
  else
    l->outq_head = o;
  l->outq_tail = o;
  job->outq_count++;
}

static void sf__outq_pop(sf_job *job, sf__link *l) {
  sf__out *o = l->outq_head;
  l->outq_head = o->next;
  if (l->outq_head == NULL) l->outq_tail = NULL;
  job->outq_count--;
}

/* Puts one frame now; 1 written, 0 no room, <0 link failure (the link is marked down). */
static int sf__put(sf__link *l, const sf__frame *f, const void *p1, size_t n1, const void *p2, size_t n2) {
  int rc;
  if (l->state == SF__LINK_DOWN) return SF_EPEERDIED;
  rc = l->ops->put(l, f, p1, n1, p2, n2);
  return rc;
}

int sf__put_ctl(sf_job *job, sf__link *l, uint8_t type, uint32_t aux, const void *payload, size_t n) {
  sf__ctl_out *o;
  if (l->outq_head == NULL) {
    sf__frame f;
    int rc;
    sf__frame_init(&f, job, l->peer, type, 0, 0, (uint32_t)n, 0, aux);
    rc = sf__put(l, &f, payload, n, NULL, 0);
    if (rc != 0) return rc < 0 ? rc : 0;
  }
  o = calloc(1, sizeof *o);
  if (o == NULL) return sf__err(SF_ENOMEM, "out of memory queueing a control frame");
  sf__frame_init(&o->f, job, l->peer, type, 0, 0, (uint32_t)n, 0, aux);
  if (n) memcpy(o->p, payload, n);
  sf__outq_append(job, l, &o->o);
  return 0;
}

/* Makes progress on one queued item: 1 = item finished (pop it), 0 = blocked, <0 = link failed. */
static int sf__push_item(sf_job *job, sf__link *l, sf__out *o) {
  struct sf_req *s = o->req;
  sf__frame f;
  int rc;
  if (s == NULL) {
    const sf__ctl_out *c = (const sf__ctl_out *)o;
    return sf__put(l, &c->f, c->p, c->f.len, NULL, 0);
  }
  if (s->phase == SF__P_QUEUED) {
    uint32_t claim = 0, gen = 0;
    /* Up to the eager limit a message stays buffered: by rendezvous only with a claim that
     * lets us take it back (frame.h), eagerly when none is free. Behind a rendezvous still
     * waiting for its receiver, a message up to pipe_eager goes eagerly too: a stream of them
     * then moves at the rate of copies through the ring, where each rendezvous would add a
     * round trip and a process_vm_readv (a window of 8 KiB messages: 0.8x MPICH's bandwidth,
     * 1.1x eagerly), while a lone message (a ping-pong) keeps the single copy. */
    if (!s->sync && s->len > l->eager_limit && s->len <= job->eager_limit && l->ops->claim_arm &&
        !(s->len <= job->pipe_eager && l->rdv_waiting > 0))
      claim = l->ops->claim_arm(l, &gen);
    if (!s->sync && (s->len <= l->eager_limit || (s->len <= job->eager_limit && claim == 0 && l->ops->claim_arm) ||
                     (s->len <= job->pipe_eager && l->rdv_waiting > 0))) {
      sf__frame_init(&f, job, s->dst, SF__F_EAGER, s->ctx, s->tag, (uint32_t)s->len, s->dtype, 0);
      rc = sf__put(l, &f, s->sbuf, s->len, NULL, 0);
      if (rc <= 0) return rc;
      sf__complete(job, s, 0);
      return 1;
    } else {
      sf__rts rts = {(uint64_t)(uintptr_t)s->sbuf, (uint64_t)s->len, claim, gen};
      sf__frame_init(&f, job, s->dst, SF__F_RTS, s->ctx, s->tag, sizeof rts, s->dtype, s->id);
      rc = sf__put(l, &f, &rts, sizeof rts, NULL, 0);
      if (rc <= 0) {
        if (claim) l->ops->claim_release(l, claim);
        return rc;
      }
      if (claim) {
        s->claim = claim;
        s->gen = gen;
        s->rts_t = sf_now();
        job->nclaims++;
      }
      s->phase = SF__P_WAITFIN;
      s->next = job->waitfin;
      job->waitfin = s;
      l->rdv_waiting++;
      return 1;
    }
  }
  if (s->phase == SF__P_CONV) {
    sf__frame_init(&f, job, s->dst, SF__F_CONV, s->ctx, s->tag, (uint32_t)s->len, s->dtype, s->id);
    rc = sf__put(l, &f, s->sbuf, s->len, NULL, 0);
    if (rc <= 0) return rc;
    sf__complete(job, s, 0);
    return 1;
  }
  /* SF__P_STREAM: the message in DATA frames. */
  while (s->sent < s->len) {
    size_t chunk = s->len - s->sent;
    if (chunk > l->chunk) chunk = l->chunk;
    sf__frame_init(&f, job, s->dst, SF__F_DATA, 0, 0, (uint32_t)chunk, 0, s->rid);
    rc = sf__put(l, &f, (const unsigned char *)s->sbuf + s->sent, chunk, NULL, 0);
    if (rc <= 0) return rc;
    s->sent += chunk;
  }
  sf__complete(job, s, 0);
  return 1;
}

/* A link went down with items queued: the sends fail, control frames are dropped. */
static void sf__outq_fail(sf_job *job, sf__link *l) {
  sf__out *o;
  while ((o = l->outq_head) != NULL) {
    sf__outq_pop(job, l);
    if (o->req == NULL) {
      free(o);
      continue;
    }
    sf__complete(job, o->req, SF_EPEERDIED);
  }
}

void sf__push_out(sf_job *job) {
  for (int d = 0; d < job->size; d++) {
    sf__link *l = job->links[d];
    sf__out *o;
    if (l == NULL) continue;
    if (l->ops->flush && l->ops->flush(l) < 0) {
      sf__outq_fail(job, l);
      continue;
    }
    if (job->outq_count == 0) continue;
    while ((o = l->outq_head) != NULL) {
      int rc = sf__push_item(job, l, o);
      if (rc == 0) break;
      if (rc < 0) {
        sf__outq_fail(job, l);
        break;
      }
      sf__outq_pop(job, l);
      if (o->req == NULL) free(o);
    }
  }
}

/* ---- matching and delivery ------------------------------------------------------------------ */

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

/* Fills the status of matched receive `r`; allocates an ALLOC receive's buffer (unless `alloc`
 * is 0: the caller hands it one). Returns 0,
 * SF_ETYPE (datatype refused: deliver nothing) or SF_ENOMEM. */
static int sf__on_match(struct sf_req *r, int src, int tag, size_t size, uint32_t dtype, int alloc) {
  r->st.source = src;
  r->st.tag = tag;
  r->st.size = size;
  r->st.dtype = dtype;
  if (r->expect != SF_ANY_DTYPE && (uint32_t)r->expect != dtype) {
    r->st.count = 0;
    r->st.error = SF_ETYPE;
    return SF_ETYPE;
  }
  if (r->flags & SF__RECV_ALLOC) {
    if (alloc) {
      r->buf = malloc(size ? size : 1);
      if (r->buf == NULL) return sf__err(SF_ENOMEM, "out of memory for a received message of %zu bytes", size);
    }
    r->cap = size;
  }
  r->st.count = size < r->cap ? size : r->cap;
  r->st.error = size > r->cap ? SF_ETRUNCATE : 0;
  return 0;
}

/* ---- claims (frame.h) ----------------------------------------------------------------------- */

/* A send's claim is settled (its RTS was taken, or taken back): it may no longer be taken back. */
static void sf__claim_done(sf_job *job, sf__link *l, struct sf_req *s) {
  if (s->claim == 0) return;
  l->ops->claim_release(l, s->claim);
  s->claim = 0;
  job->nclaims--;
}

/* How long an RTS with a claim may wait for its receive before its sender takes it back. A
 * receive that is waiting matches within microseconds; one that is not may never come before
 * this send completes (two ranks sending to each other first), which eager buffering allows. */
#define SF__TAKE_BACK_S 50e-6

/* Takes back every claimed RTS older than SF__TAKE_BACK_S: its message goes as CONV. */
static void sf__claims_age(sf_job *job) {
  double now = sf_now();
  struct sf_req **p = &job->waitfin;
  while (*p) {
    struct sf_req *s = *p;
    sf__link *l = job->links[s->dst];
    int won;
    if (s->claim == 0 || now - s->rts_t < SF__TAKE_BACK_S) {
      p = &s->next;
      continue;
    }
    won = l->ops->claim_resolve(l, s->claim, s->gen, 1) == 1;
    sf__claim_done(job, l, s);
    if (!won) { /* taken: FIN or CTS follows */
      p = &s->next;
      continue;
    }
    *p = s->next;
    l->rdv_waiting--;
    s->phase = SF__P_CONV;
    s->out.req = s;
    sf__outq_append(job, l, &s->out);
  }
}

/* The receiver's side of a claimed RTS `rts` (sender request `id`) matched by `r`: 1 = taken,
 * read it; 0 = its sender took it back: `r` now waits for the CONV frame; <0 = no such claim. */
static int sf__claim_take(sf_job *job, sf__link *l, struct sf_req *r, uint32_t id, const sf__rts *rts) {
  int rc;
  if (rts->claim == 0) return 1;
  rc = l->ops->claim_resolve ? l->ops->claim_resolve(l, rts->claim, rts->gen, 0) : -1;
  if (rc < 0) return sf__link_proto(l, "RTS with an unknown claim", rts->claim);
  if (rc == 0) {
    r->conv = 1;
    r->conv_id = id;
    r->phase = SF__P_PIPE;
    r->next = job->pipes;
    job->pipes = r;
  }
  return rc;
}

/* Starts receiving a rendezvous message (RTS `rts`, sender request `id`) matched by `r`. */
static int sf__rdv_start(sf_job *job, sf__link *l, struct sf_req *r, uint32_t id, const sf__rts *rts) {
  size_t n = r->st.count;
  int rc = sf__claim_take(job, l, r, id, rts);
  if (rc <= 0) return rc;
  if (r->st.error == SF_ETYPE || n == 0 || l->peer == job->rank) {
    if (n) memcpy(r->buf, (const void *)(uintptr_t)rts->addr, n);
    sf__complete(job, r, r->st.error);
    return sf__put_ctl(job, l, SF__F_FIN, id, NULL, 0);
  }
  if ((l->caps & SF__LINK_DIRECT) && job->cma > 0 && rts->size > job->cma_min) {
    size_t done = 0;
    while (done < n) {
      long got = l->ops->direct_read(l, (char *)r->buf + done, rts->addr + done, n - done);
      if (got > 0) {
        done += (size_t)got;
        continue;
      }
      if (got == -EINTR) continue;
      if ((got == -EPERM || got == -ENOSYS) && done == 0) {
        job->cma = -1; /* refused here: stream through the link from now on */
        break;
      }
      errno = got < 0 ? (int)-got : EIO;
      rc = sf__errno("process_vm_readv of a rendezvous message");
      sf__complete(job, r, rc);
      return rc;
    }
    if (done == n) {
      sf__complete(job, r, r->st.error);
      return sf__put_ctl(job, l, SF__F_FIN, id, NULL, 0);
    }
  }
  /* Streamed: ask the sender for DATA frames. */
  r->my_id = sf__new_id(job);
  r->got = 0;
  r->phase = SF__P_PIPE;
  r->next = job->pipes;
  job->pipes = r;
  return sf__put_ctl(job, l, SF__F_CTS, id, &r->my_id, 4);
}

int sf__link_proto(sf__link *l, const char *what, unsigned long long v) {
  l->broken = 1;
  l->job->proto_err = 1;
  sf__link_down(l, "sent a malformed frame");
  return sf__err(SF_EPROTO, "malformed frame from rank %d to rank %d: %s (%llu); the %s link is closed", l->peer,
                 l->job->rank, what, v, l->ops->kind);
}

void sf__link_down(sf__link *l, const char *fmt, ...) {
  va_list ap;
  if (l->state == SF__LINK_DOWN) return;
  l->state = SF__LINK_DOWN;
  va_start(ap, fmt);
  vsnprintf(l->why, sizeof l->why, fmt, ap);
  va_end(ap);
}

/* A rendezvous receive that could not get its buffer: it fails with SF_ENOMEM, the sender is
 * released (FIN), or, when it took its message back, the CONV frame is awaited and dropped. */
static int sf__rdv_nomem(sf_job *job, sf__link *l, struct sf_req *r, uint32_t id, const sf__rts *rts) {
  int rc;
  r->cap = r->st.count = 0;
  r->nomem = 1;
  rc = sf__claim_take(job, l, r, id, rts);
  if (rc <= 0) return rc;
  sf__complete(job, r, SF_ENOMEM);
  return sf__put_ctl(job, l, SF__F_FIN, id, NULL, 0);
}

static int sf__queue_unexp(sf_job *job, sf__unexp *u) {
  u->next = NULL;
  if (job->unexp_tail)
    job->unexp_tail->next = u;
  else
    job->unexp_head = u;
  job->unexp_tail = u;
  return 0;
}

int sf__deliver(sf_job *job, sf__link *l, const sf__frame *f, const sf__payload *p) {
  int src = l->peer;
  switch (f->type) {
  case SF__F_EAGER: {
    struct sf_req *r = sf__take_posted(job, src, f->ctx, f->tag);
    if (r) {
      int rc = sf__on_match(r, src, f->tag, f->len, f->dtype, 1);
      if (rc == SF_ENOMEM) {
        sf__complete(job, r, rc);
        return 0;
      }
      if (rc == 0 && r->st.count) sf__payload_copy(p, 0, r->buf, r->st.count);
      sf__complete(job, r, r->st.error);
    } else {
      sf__unexp *u = calloc(1, sizeof *u);
      unsigned char *copy = malloc(f->len ? f->len : 1);
      if (u == NULL || copy == NULL) {
        free(u);
        free(copy);
        return sf__err(SF_ENOMEM, "out of memory queueing an unexpected message of %u bytes", f->len);
      }
      sf__payload_copy(p, 0, copy, f->len);
      u->src = src;
      u->ctx = f->ctx;
      u->tag = f->tag;
      u->dtype = f->dtype;
      u->size = f->len;
      u->data = copy;
      sf__queue_unexp(job, u);
    }
    return 0;
  }
  case SF__F_RTS: {
    sf__rts rts;
    struct sf_req *r;
    sf__payload_copy(p, 0, &rts, sizeof rts);
    r = sf__take_posted(job, src, f->ctx, f->tag);
    if (r) {
      int rc = sf__on_match(r, src, f->tag, (size_t)rts.size, f->dtype, 1);
      if (rc == SF_ENOMEM) return sf__rdv_nomem(job, l, r, f->aux, &rts);
      return sf__rdv_start(job, l, r, f->aux, &rts);
    } else {
      sf__unexp *u = calloc(1, sizeof *u);
      if (u == NULL) return sf__err(SF_ENOMEM, "out of memory queueing an unexpected message");
      u->src = src;
      u->ctx = f->ctx;
      u->tag = f->tag;
      u->dtype = f->dtype;
      u->rdv = 1;
      u->id = f->aux;
      u->size = (size_t)rts.size;
      u->rts = rts;
      sf__queue_unexp(job, u);
    }
    return 0;
  }
  case SF__F_FIN: {
    struct sf_req *s = sf__list_take(&job->waitfin, f->aux, 0);
    if (s == NULL) return sf__link_proto(l, "FIN for an unknown send", f->aux);
    l->rdv_waiting--;
    sf__claim_done(job, l, s);
    sf__complete(job, s, 0);
    return 0;
  }
  case SF__F_CTS: {
    uint32_t rid;
    struct sf_req *s;
    sf__payload_copy(p, 0, &rid, 4);
    s = sf__list_take(&job->waitfin, f->aux, 0);
    if (s == NULL) return sf__link_proto(l, "CTS for an unknown send", f->aux);
    l->rdv_waiting--;
    sf__claim_done(job, l, s);
    /* The peer streams instead of reading us directly (it may not, or not this size): from
     * now on, messages it would have read go eagerly, which is then one round trip less. */
    if ((l->caps & SF__LINK_DIRECT) && l->eager_limit < job->eager_limit) l->eager_limit = job->eager_limit;
    s->phase = SF__P_STREAM;
    s->rid = rid;
    s->sent = 0;
    s->out.req = s;
    sf__outq_append(job, l, &s->out);
    return 0;
  }
  case SF__F_DATA: {
    struct sf_req *r = NULL;
    for (struct sf_req *q = job->pipes; q; q = q->next)
      if (q->my_id == f->aux) r = q;
    if (r == NULL) return sf__link_proto(l, "DATA for an unknown receive", f->aux);
    if (f->len > r->st.size - r->got) return sf__link_proto(l, "DATA beyond the message size", f->len);
    if (r->got < r->cap) {
      size_t n = r->cap - r->got;
      if (n > f->len) n = f->len;
      sf__payload_copy(p, 0, (unsigned char *)r->buf + r->got, n);
    }
    r->got += f->len;
    if (r->got == r->st.size) {
      sf__list_take(&job->pipes, r->my_id, 1);
      sf__complete(job, r, r->st.error);
    }
    return 0;
  }
  case SF__F_CONV: {
    struct sf_req **pr;
    sf__unexp *u;
    for (pr = &job->pipes; *pr; pr = &(*pr)->next)
      if ((*pr)->conv && (*pr)->conv_id == f->aux && (*pr)->st.source == src) break;
    if (*pr) { /* matched already: its receive waits for this */
      struct sf_req *r = *pr;
      if (f->len != r->st.size) return sf__link_proto(l, "CONV of another size than its RTS", f->len);
      *pr = r->next;
      r->conv = 0;
      if (r->nomem) {
        sf__complete(job, r, SF_ENOMEM);
        return 0;
      }
      if (r->st.error != SF_ETYPE && r->st.count) sf__payload_copy(p, 0, r->buf, r->st.count);
      sf__complete(job, r, r->st.error);
      return 0;
    }
    for (u = job->unexp_head; u; u = u->next)
      if (u->rdv && u->src == src && u->id == f->aux) break;
    if (u == NULL) return sf__link_proto(l, "CONV for an unknown message", f->aux);
    if (f->len != u->size) return sf__link_proto(l, "CONV of another size than its RTS", f->len);
    u->data = malloc(f->len ? f->len : 1);
    if (u->data == NULL) return sf__err(SF_ENOMEM, "out of memory queueing an unexpected message of %u bytes", f->len);
    sf__payload_copy(p, 0, u->data, f->len);
    u->rdv = 0; /* an eager message now, in its place in the queue */
    return 0;
  }
  case SF__F_BYE:
    if (l->state == SF__LINK_UP) l->state = SF__LINK_FINISHED;
    return 0;
  case SF__F_ABORT: {
    int32_t code;
    char cause[SF__ABORT_CAUSE_MAX + 1];
    size_t n = f->len - 4;
    sf__payload_copy(p, 0, &code, 4);
    sf__payload_copy(p, 4, cause, n);
    cause[n] = '\0';
    sf__note_abort(job, src, code, cause);
    return 0;
  }
  default:
    return sf__link_proto(l, "unknown frame type", f->type);
  }
}

int sf_progress(sf_job *job) {
  int rc = 0;
  if (job == NULL || job->rank < 0) return sf__err(SF_ESTATE, "sf_progress: job not attached");
  if (job->nclaims > 0 && (++job->claim_tick & 63) == 0) sf__claims_age(job);
  sf__push_out(job);
  sf__events_poll(job);
  for (int r = 0; r < job->size; r++) {
    sf__link *l = job->links[r];
    if (l == NULL || l->broken || !l->ops->readable(l)) continue;
    rc = l->ops->poll(l);
    if (rc < 0) {
      if (l->broken) return rc; /* reported once; the link stays closed */
      rc = 0; /* hung up: health tells waiters */
    }
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

/* ---- public point-to-point ------------------------------------------------------------------ */

int sf_isend_typed(sf_job *job, const void *buf, size_t len, uint32_t dtype, int dst, uint32_t ctx, int tag,
                   int sync, sf_req **out) {
  struct sf_req *s;
  sf__link *l;
  if (job == NULL || out == NULL) return sf__err(SF_EINVAL, "sf_isend: job and req are required");
  if (job->rank < 0) return sf__err(SF_ESTATE, "sf_isend: job not attached");
  if (dst != SF_PROC_NULL && (dst < 0 || dst >= job->size))
    return sf__err(SF_ERANGE, "dest %d out of range for a job of size %d", dst, job->size);
  if (tag < 0) return sf__err(SF_ERANGE, "tag %d out of range 0..%d", tag, SF_TAG_MAX);
  if (buf == NULL && len > 0) return sf__err(SF_EINVAL, "sf_isend: buffer is NULL for %zu bytes", len);
  l = dst == SF_PROC_NULL ? NULL : job->links[dst];
  if (dst != SF_PROC_NULL && l == NULL)
    return sf__err(SF_ESTATE, "send to rank %d: no link to it (host %d) was added", dst, job->host_of[dst]);
  if (l && l->broken)
    return sf__err(SF_EPROTO, "send to rank %d: the connection from rank %d carried a malformed frame and is closed", dst, dst);
  s = sf__req_new(job, SF__REQ_SEND);
  if (s == NULL) return sf__err(SF_ENOMEM, "out of memory for a send request");
  s->sbuf = buf;
  s->len = len;
  s->dst = dst;
  s->ctx = ctx;
  s->tag = tag;
  s->sync = sync;
  s->dtype = dtype;
  s->id = sf__new_id(job);
  s->st.source = dst;
  s->st.tag = tag;
  s->st.size = s->st.count = len;
  s->st.dtype = dtype;
  *out = s;
  if (dst == SF_PROC_NULL) {
    s->phase = SF__P_DONE;
    return 0;
  }
  s->phase = SF__P_QUEUED;
  s->out.req = s;
  if (l->outq_head == NULL) {
    int rc = sf__push_item(job, l, &s->out);
    if (rc > 0) return 0;
    if (rc < 0) {
      /* The link is down: the send fails when waited for (health names the peer). */
      sf__complete(job, s, rc);
      return 0;
    }
  }
  sf__outq_append(job, l, &s->out);
  return 0;
}

int sf_isend(sf_job *job, const void *buf, size_t len, int dst, uint32_t ctx, int tag, int sync, sf_req **req) {
  return sf_isend_typed(job, buf, len, 0, dst, ctx, tag, sync, req);
}

static void sf__deliver_unexp(sf_job *job, struct sf_req *r, sf__unexp *u, int *rc) {
  int m = sf__on_match(r, u->src, u->tag, u->size, u->dtype, u->rdv);
  if (m == SF_ENOMEM && u->rdv) {
    *rc = sf__rdv_nomem(job, job->links[u->src], r, u->id, &u->rts);
  } else if (m == SF_ENOMEM) {
    sf__complete(job, r, m);
  } else if (u->rdv) {
    *rc = sf__rdv_start(job, job->links[u->src], r, u->id, &u->rts);
  } else {
    if (m == 0 && (r->flags & SF__RECV_ALLOC)) {
      /* Hand the unexpected copy over instead of copying it again. */
      r->buf = u->data;
      u->data = NULL;
    } else if (m == 0 && r->st.count) {
      memcpy(r->buf, u->data, r->st.count);
    }
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

static int sf__irecv(sf_job *job, void *buf, size_t cap, int32_t expect, unsigned flags, int src, uint32_t ctx,
                     int tag, sf_req **req) {
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
  r->expect = expect;
  r->flags = flags;
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

int sf_irecv(sf_job *job, void *buf, size_t cap, int src, uint32_t ctx, int tag, sf_req **req) {
  return sf__irecv(job, buf, cap, SF_ANY_DTYPE, 0, src, ctx, tag, req);
}

int sf_irecv_typed(sf_job *job, void *buf, size_t cap, int32_t expect, int src, uint32_t ctx, int tag, sf_req **req) {
  return sf__irecv(job, buf, cap, expect, 0, src, ctx, tag, req);
}

int sf_irecv_alloc(sf_job *job, int src, uint32_t ctx, int tag, sf_req **req) {
  return sf__irecv(job, NULL, 0, SF_ANY_DTYPE, SF__RECV_ALLOC, src, ctx, tag, req);
}

void *sf_req_take_buffer(sf_req *req, size_t *len) {
  void *p;
  if (req == NULL || req->kind != SF__REQ_RECV || !(req->flags & SF__RECV_ALLOC) || req->phase != SF__P_DONE) {
    if (len) *len = 0;
    return NULL;
  }
  p = req->buf;
  if (len) *len = req->st.count;
  req->buf = NULL;
  return p;
}

const sf_status *sf_req_status(const sf_req *req) { return req ? &req->st : NULL; }

/* ---- completion ----------------------------------------------------------------------------- */

static int sf__cond_req(sf_job *job, void *arg) {
  (void)job;
  return ((struct sf_req *)arg)->phase == SF__P_DONE;
}

static int sf__finish(sf_job *job, struct sf_req *req, sf_status *st) {
  (void)job;
  if (st) *st = req->st;
  if (req->err == SF_ETRUNCATE)
    return sf__err(SF_ETRUNCATE, "message of %zu bytes from rank %d (tag %d) truncated: the receive buffer holds %zu bytes",
                   req->st.size, req->st.source, req->st.tag, req->cap);
  if (req->err == SF_ETYPE)
    return sf__err(SF_ETYPE, "message from rank %d (tag %d) has datatype %u, the receive accepts datatype %d",
                   req->st.source, req->st.tag, req->st.dtype, (int)req->expect);
  if (req->err == SF_EPEERDIED)
    return sf__err(SF_EPEERDIED, "%s rank %d: the link to it is down (%s)", req->kind == SF__REQ_SEND ? "send to" : "receive from",
                   req->kind == SF__REQ_SEND ? req->dst : req->src,
                   job->links[req->kind == SF__REQ_SEND ? req->dst : req->src] ? job->links[req->kind == SF__REQ_SEND ? req->dst : req->src]->why : "");
  if (req->err < 0) return req->err;
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

/* Withdraws a receive that is still only posted: it must not write into a buffer its caller
 * gave up on. Returns 1 when withdrawn. */
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
  if (r->phase != SF__P_DONE)
    sf_req_free(job, r); /* left pending (timeout, peer death, abort): detached */
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

/* ---- probes --------------------------------------------------------------------------------- */

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
    a->st->dtype = u->dtype;
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
