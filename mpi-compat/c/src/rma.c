/*
 * rma.c: one-sided operations (MPI_Put, MPI_Get, MPI_Accumulate, MPI_Get_accumulate,
 * MPI_Fetch_and_op, MPI_Compare_and_swap and their request forms) and the protocol engine:
 * the origin's requests in flight and the target side, both run by the progress hook. The wire
 * format and the contexts are drawn in win.h.
 *
 * Two paths:
 *   - direct: a put or get of contiguous data to a member whose memory this rank can reach
 *     (a shared mapping, itself, or process_vm_writev/readv on the same host) is copied at
 *     once, complete when the call returns, without the target's participation. That
 *     capability belongs to the same host only; it lives in one function, sfm_win_direct, so a
 *     job across hosts simply takes the message path to remote members.
 *   - message: everything else (accumulates always, for their atomicity) is a request message
 *     applied by the target's engine in order; replies come back tagged with the op id.
 */
#include "win.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

/* ---- the direct path --------------------------------------------------------------------------- */

/* Copy len bytes between `local` and target's window at byte offset `off` (put: local ->
 * target). Returns 1 when done, 0 when the target cannot be reached directly (send a message
 * instead), or an MPI code (< 0 never: codes are positive; errors return the code). */
static int sfm_win_direct(sfm_win *w, int target, int put, void *local, MPI_Aint off, size_t len, int *code) {
  *code = MPI_SUCCESS;
  if (len == 0) return 1;
  if (w->shm || target == w->rank) {
    char *mem = w->shm ? w->shm + w->shm_off[target] + off : (char *)w->base + off;
    if (put)
      memcpy(mem, local, len);
    else
      memcpy(local, mem, len);
    atomic_thread_fence(memory_order_seq_cst);
    return 1;
  }
  if (!w->cma) return 0;
  {
    pid_t pid = sf_job_pid(sfm.job, w->world[target]);
    size_t done = 0;
    while (done < len) {
      struct iovec l = {(char *)local + done, len - done};
      struct iovec r = {(void *)(uintptr_t)(w->bases[target] + (uint64_t)off + done), len - done};
      ssize_t n = put ? process_vm_writev(pid, &l, 1, &r, 1, 0) : process_vm_readv(pid, &l, 1, &r, 1, 0);
      if (n > 0) {
        done += (size_t)n;
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EPERM || errno == ENOSYS) && done == 0) {
        w->cma = 0; /* refused here: messages from now on */
        return 0;
      }
      *code = sfm_code(MPI_ERR_OTHER, "%s of %zu bytes to window rank %d: %s", put ? "process_vm_writev" : "process_vm_readv",
                       len, target, strerror(n < 0 ? errno : EIO));
      return 1;
    }
  }
  return 1;
}

/* ---- the origin's requests in flight ------------------------------------------------------------ */

static int sfm_rma_pend_add(sfm_win *w, sf_req *req, int target, void *tmp, sfm_rreq *rr) {
  sfm_rma_pend *p = calloc(1, sizeof *p);
  if (p == NULL) return -1;
  p->req = req;
  p->target = target;
  p->tmp = tmp;
  p->rreq = rr;
  if (rr) rr->parts++;
  p->next = w->pend;
  w->pend = p;
  return 0;
}

static void sfm_rreq_part_done(sfm_rreq *rr) {
  if (rr && --rr->parts <= 0 && rr->orphan) free(rr);
}

static void sfm_rma_poll_origin(sfm_win *w) {
  sfm_rma_pend **pp = &w->pend;
  while (*pp) {
    sfm_rma_pend *p = *pp;
    if (!sf_req_done(p->req)) {
      pp = &p->next;
      continue;
    }
    if (sf_test(sfm.job, p->req, NULL) < 0 && w->err == MPI_SUCCESS)
      w->err = sfm_code(MPI_ERR_TRUNCATE, "a one-sided reply from window rank %d did not fit: %s", p->target, sf_last_error());
    if (p->ubuf) {
      sfm_type *t = sfm_type_get(p->utype);
      if (t) sfm_unpack(t, p->tmp, t->size * (size_t)p->ucount, p->ubuf, p->ucount);
      sfm_type_unref(p->utype);
    }
    if (p->flag) *p->flag = 1;
    sf_req_free(sfm.job, p->req);
    free(p->tmp);
    sfm_rreq_part_done(p->rreq);
    *pp = p->next;
    free(p);
  }
}

int sfm_rma_local_done(sfm_win *w, int target) {
  for (sfm_rma_pend *p = w->pend; p; p = p->next)
    if (target < 0 || p->target == target) return 0;
  return 1;
}

typedef struct {
  sfm_win *w;
  int target;
  int *flag;
} sfm_rma_wait_arg;

static int sfm_rma_cond_local(void *arg) {
  sfm_rma_wait_arg *a = arg;
  sfm_rma_poll_origin(a->w);
  return sfm_rma_local_done(a->w, a->target) && (a->flag == NULL || *a->flag);
}

static const char *sfm_rma_what(void *arg) {
  static char buf[128];
  sfm_rma_wait_arg *a = arg;
  if (a->target >= 0)
    snprintf(buf, sizeof buf, "window rank %d (world rank %d) to answer", a->target, a->w->world[a->target]);
  else
    snprintf(buf, sizeof buf, "the window's members to answer");
  return buf;
}

/* Block until nothing this rank sent to target (-1: anyone) is in flight. MPI code, not raised. */
int sfm_rma_wait_local(sfm_win *w, int target, const char *fn) {
  sfm_rma_wait_arg a = {w, target, NULL};
  sfm_rma_poll_origin(w);
  if (sfm_rma_local_done(w, target)) return MPI_SUCCESS;
  return sfm_wait_until(sfm_rma_cond_local, sfm_rma_what, &a, fn);
}

/* A synchronisation request (LOCK, UNLOCK, FLUSH: answered; POST, COMPLETE: not) to target;
 * with `flag`, waits for the answer. MPI code, not raised. */
int sfm_rma_send_ctl(sfm_win *w, int target, int kind, int arg, int *flag, const char *fn) {
  sfm_rma_hdr *h = calloc(1, sizeof *h);
  sf_req *sreq = NULL, *rreq = NULL;
  int rc, done = 0;
  if (h == NULL) return sfm_code(MPI_ERR_NO_MEM, "%s: out of memory", fn);
  h->kind = (uint8_t)kind;
  h->basic = -1;
  h->op = arg;
  h->seq = w->seq++;
  if (flag) {
    rc = sf_irecv(sfm.job, NULL, 0, w->world[target], w->ctx + 1, (int)(h->seq & SF_TAG_MAX), &rreq);
    if (rc < 0) {
      free(h);
      return sfm_dp_code(fn, rc);
    }
  }
  rc = sf_isend(sfm.job, h, sizeof *h, w->world[target], w->ctx, 0, 0, &sreq);
  if (rc < 0) {
    if (rreq) sf_req_free(sfm.job, rreq);
    free(h);
    return sfm_dp_code(fn, rc);
  }
  if (sfm_rma_pend_add(w, sreq, target, h, NULL) < 0 || (rreq && sfm_rma_pend_add(w, rreq, target, NULL, NULL) < 0))
    return sfm_code(MPI_ERR_NO_MEM, "%s: out of memory", fn);
  if (rreq) w->pend->flag = &done; /* the reply's entry is the newest one */
  if (flag == NULL) return MPI_SUCCESS;
  {
    sfm_rma_wait_arg a = {w, target, &done};
    rc = sfm_wait_until(sfm_rma_cond_local, sfm_rma_what, &a, fn);
    /* the entry must not point to this frame once we return */
    for (sfm_rma_pend *p = w->pend; p; p = p->next)
      if (p->flag == &done) p->flag = NULL;
  }
  *flag = done;
  return rc;
}

/* ---- the target side ----------------------------------------------------------------------------- */

static int sfm_win_rank_of(const sfm_win *w, int world) {
  for (int i = 0; i < w->size; i++)
    if (w->world[i] == world) return i;
  return -1;
}

void sfm_rma_start_target(sfm_win *w) {
  if (sf_irecv(sfm.job, w->hbuf, SFM_RMA_HBUF, SF_ANY_SOURCE, w->ctx, SF_ANY_TAG, &w->hreq) < 0) w->hreq = NULL;
}

void sfm_rma_stop_target(sfm_win *w) {
  if (w->hreq) sf_req_free(sfm.job, w->hreq);
  w->hreq = NULL;
  if (w->cur.active) {
    sf_req_free(sfm.job, w->cur.req);
    free(w->cur.data);
    free(w->cur.blocks);
    w->cur.active = 0;
  }
  while (w->pend) {
    sfm_rma_pend *p = w->pend;
    w->pend = p->next;
    sf_req_free(sfm.job, p->req);
    free(p->tmp);
    if (p->ubuf) sfm_type_unref(p->utype);
    sfm_rreq_part_done(p->rreq);
    free(p);
  }
}

/* Replies sent from temporary buffers: freed once sent (they may outlive their window). */
typedef struct sfm_rma_out { struct sfm_rma_out *next; sf_req *req; void *buf; } sfm_rma_out;
static sfm_rma_out *sfm_rma_outq;

static void sfm_rma_poll_out(void) {
  sfm_rma_out **pp = &sfm_rma_outq;
  while (*pp) {
    sfm_rma_out *o = *pp;
    if (sf_req_done(o->req)) {
      sf_req_free(sfm.job, o->req);
      free(o->buf);
      *pp = o->next;
      free(o);
    } else {
      pp = &o->next;
    }
  }
}

/* Answer origin's request `seq` with len bytes (buf: owned when `owned`, freed once sent). */
static void sfm_rma_reply(sfm_win *w, int origin, uint32_t seq, void *buf, size_t len, int owned) {
  sf_req *r;
  if (sf_isend(sfm.job, buf, len, w->world[origin], w->ctx + 1, (int)(seq & SF_TAG_MAX), 0, &r) < 0) {
    if (w->err == MPI_SUCCESS) w->err = sfm_code(MPI_ERR_OTHER, "reply to window rank %d: %s", origin, sf_last_error());
    if (owned) free(buf);
    return;
  }
  if (!owned) {
    sf_req_free(sfm.job, r); /* from the window's memory: detached, it completes by itself */
    return;
  }
  sfm_rma_out *o = malloc(sizeof *o);
  if (o == NULL) { /* cannot track it: let it finish and leak the buffer rather than free it early */
    sf_req_free(sfm.job, r);
    return;
  }
  o->req = r;
  o->buf = buf;
  o->next = sfm_rma_outq;
  sfm_rma_outq = o;
}

static void sfm_rma_bad(sfm_win *w, int origin, const char *what) {
  if (w->err == MPI_SUCCESS)
    w->err = sfm_code(MPI_ERR_INTERN, "a one-sided request from window rank %d was dropped: %s", origin, what);
}

/* Bytes of payload a request carries: the target data for puts and accumulates, the new and
 * the compare value for compare-and-swap, nothing for gets and fetches without an update. */
static size_t sfm_rma_payload(int kind, int op, uint64_t bytes) {
  if (kind == SFM_RMA_GET || (kind == SFM_RMA_GACC && op == SF_OP_NO_OP)) return 0;
  return kind == SFM_RMA_CAS ? 2 * (size_t)bytes : (size_t)bytes;
}

/* The pieces of target memory a request covers: item k, block b at disp + k*textent + b.disp.
 * Checks each against the window; returns 0, or -1 (nothing may be touched). */
static int sfm_rma_check_range(const sfm_win *w, const sfm_rma_hdr *h, const sfm_rma_blk *blk) {
  uint64_t total = 0;
  for (int k = 0; k < h->tcount; k++) {
    int nb = h->nblocks ? h->nblocks : 1;
    for (int b = 0; b < nb; b++) {
      int64_t at = (int64_t)h->disp + (int64_t)k * h->textent + (h->nblocks ? blk[b].disp : 0);
      int64_t len = h->nblocks ? blk[b].len : h->textent;
      if (len < 0 || at < 0 || at + len > (int64_t)w->bytes) return -1;
      total += (uint64_t)len;
    }
  }
  return total == h->bytes ? 0 : -1;
}

/* Copy between packed data and the target pieces (to_mem: data -> memory), or apply op. */
static void sfm_rma_walk(sfm_win *w, const sfm_rma_hdr *h, const sfm_rma_blk *blk, unsigned char *data, int mode) {
  size_t off = 0, es = h->basic >= 0 ? sf_dtype_size((sf_dtype)h->basic) : 1;
  for (int k = 0; k < h->tcount; k++) {
    int nb = h->nblocks ? h->nblocks : 1;
    for (int b = 0; b < nb; b++) {
      char *mem = (char *)w->base + (int64_t)h->disp + (int64_t)k * h->textent + (h->nblocks ? blk[b].disp : 0);
      size_t len = (size_t)(h->nblocks ? blk[b].len : h->textent);
      if (mode == 0)
        memcpy(mem, data + off, len); /* put */
      else if (mode == 1)
        memcpy(data + off, mem, len); /* get */
      else if (h->op == SF_OP_REPLACE) /* one-sided REPLACE stores the origin's value (the data
                                        * plane's REPLACE keeps the later rank's, for reductions) */
        memcpy(mem, data + off, len);
      else if (h->op != SF_OP_NO_OP)
        sf_op_apply((sf_op)h->op, (sf_dtype)h->basic, data + off, mem, len / es); /* accumulate */
      off += len;
    }
  }
}

/* Apply a complete request (payload in `data`, bytes long) for origin. */
static void sfm_rma_apply(sfm_win *w, int origin, const sfm_rma_hdr *h, const sfm_rma_blk *blk, unsigned char *data) {
  switch (h->kind) {
  case SFM_RMA_PUT: sfm_rma_walk(w, h, blk, data, 0); break;
  case SFM_RMA_ACC: sfm_rma_walk(w, h, blk, data, 2); break;
  case SFM_RMA_GET:
  case SFM_RMA_GACC: {
    if (h->kind == SFM_RMA_GET && h->nblocks == 0 && h->tcount > 0 && (uint64_t)h->textent * (uint64_t)h->tcount == h->bytes) {
      sfm_rma_reply(w, origin, h->seq, (char *)w->base + h->disp, h->bytes, 0); /* straight from the window */
      break;
    }
    unsigned char *old = malloc(h->bytes ? h->bytes : 1);
    if (old == NULL) {
      sfm_rma_bad(w, origin, "out of memory for the reply");
      return;
    }
    sfm_rma_walk(w, h, blk, old, 1); /* the values before the update are the reply */
    if (h->kind == SFM_RMA_GACC && h->op != SF_OP_NO_OP) sfm_rma_walk(w, h, blk, data, 2);
    sfm_rma_reply(w, origin, h->seq, old, h->bytes, 1);
    break;
  }
  case SFM_RMA_CAS: {
    size_t es = (size_t)h->bytes;
    char *mem = (char *)w->base + h->disp;
    unsigned char *old = malloc(es ? es : 1);
    if (old == NULL) {
      sfm_rma_bad(w, origin, "out of memory for the reply");
      return;
    }
    memcpy(old, mem, es);
    if (memcmp(old, data + es, es) == 0) memcpy(mem, data, es);
    sfm_rma_reply(w, origin, h->seq, old, es, 1);
    break;
  }
  default: break;
  }
  w->done_total++;
}

static void sfm_rma_grant(sfm_win *w) {
  while (w->lockq) {
    sfm_lockwait *q = w->lockq;
    if (q->type == MPI_LOCK_EXCLUSIVE ? (w->excl_holder >= 0 || w->shared_holders > 0) : w->excl_holder >= 0) return;
    if (q->type == MPI_LOCK_EXCLUSIVE)
      w->excl_holder = q->origin;
    else
      w->shared_holders++;
    sfm_rma_reply(w, q->origin, q->seq, NULL, 0, 0);
    w->lockq = q->next;
    free(q);
  }
}

/* Take one request message of n bytes from origin, out of w->hbuf. */
static void sfm_rma_take(sfm_win *w, int origin, size_t n) {
  sfm_rma_hdr h;
  sfm_rma_blk *blk = NULL;
  size_t nb_bytes, need;
  unsigned char *after;
  if (n < sizeof h) {
    sfm_rma_bad(w, origin, "shorter than its header");
    return;
  }
  memcpy(&h, w->hbuf, sizeof h);
  if (h.kind < SFM_RMA_PUT || h.kind >= SFM_RMA_KINDS) {
    sfm_rma_bad(w, origin, "unknown kind");
    return;
  }
  switch (h.kind) {
  case SFM_RMA_LOCK: {
    sfm_lockwait *q = malloc(sizeof *q), **tail = &w->lockq;
    if (q == NULL) {
      sfm_rma_bad(w, origin, "out of memory for a lock request");
      return;
    }
    q->origin = origin;
    q->type = h.op;
    q->seq = h.seq;
    q->next = NULL;
    while (*tail) tail = &(*tail)->next;
    *tail = q;
    sfm_rma_grant(w);
    return;
  }
  case SFM_RMA_UNLOCK:
    if (w->excl_holder == origin)
      w->excl_holder = -1;
    else if (w->shared_holders > 0)
      w->shared_holders--;
    sfm_rma_reply(w, origin, h.seq, NULL, 0, 0);
    sfm_rma_grant(w);
    return;
  case SFM_RMA_FLUSH: sfm_rma_reply(w, origin, h.seq, NULL, 0, 0); return;
  case SFM_RMA_POST: w->posts[origin]++; return;
  case SFM_RMA_COMPLETE: w->completes[origin]++; return;
  default: break;
  }
  if (h.nblocks < 0 || h.tcount < 0 || h.textent < 0 || h.bytes > (uint64_t)1 << 46 ||
      ((h.kind == SFM_RMA_ACC || h.kind == SFM_RMA_GACC || h.kind == SFM_RMA_CAS) && (h.basic < 0 || h.basic >= SF_DTYPE_COUNT)) ||
      ((h.kind == SFM_RMA_ACC || h.kind == SFM_RMA_GACC) && (h.op < 0 || h.op >= SF_OP_COUNT))) {
    sfm_rma_bad(w, origin, "bad header fields");
    return;
  }
  nb_bytes = (size_t)h.nblocks * sizeof *blk;
  need = sizeof h + ((h.flags & SFM_RF_MAP_IN_DATA) ? 0 : nb_bytes) +
         ((h.flags & SFM_RF_INLINE) ? sfm_rma_payload(h.kind, h.op, h.bytes) : 0);
  if (n != need) {
    sfm_rma_bad(w, origin, "its length does not match its header");
    return;
  }
  if (h.nblocks) {
    blk = malloc(nb_bytes);
    if (blk == NULL) {
      sfm_rma_bad(w, origin, "out of memory for the block list");
      return;
    }
    if (!(h.flags & SFM_RF_MAP_IN_DATA)) memcpy(blk, w->hbuf + sizeof h, nb_bytes);
  }
  after = w->hbuf + sizeof h + ((h.flags & SFM_RF_MAP_IN_DATA) ? 0 : nb_bytes);
  if (h.flags & SFM_RF_INLINE) {
    if (sfm_rma_check_range(w, &h, blk) < 0)
      sfm_rma_bad(w, origin, "outside the window or lengths that do not add up");
    else
      sfm_rma_apply(w, origin, &h, blk, after);
    free(blk);
    return;
  }
  /* The rest (block list and/or payload) comes as one data message: receive it, then apply.
   * A contiguous put lands straight in the window, once its range was checked. */
  {
    size_t dlen = ((h.flags & SFM_RF_MAP_IN_DATA) ? nb_bytes : 0) + sfm_rma_payload(h.kind, h.op, h.bytes);
    void *dst = NULL;
    int rc;
    if (h.kind == SFM_RMA_PUT && h.nblocks == 0 && sfm_rma_check_range(w, &h, NULL) == 0) {
      dst = (char *)w->base + h.disp;
      w->cur.data = NULL;
    } else {
      w->cur.data = malloc(dlen ? dlen : 1);
      if (w->cur.data == NULL) {
        free(blk);
        sfm_rma_bad(w, origin, "out of memory for its data");
        return;
      }
      dst = w->cur.data;
    }
    rc = sf_irecv(sfm.job, dst, dlen, w->world[origin], w->ctx + 1, (int)(h.seq & SF_TAG_MAX), &w->cur.req);
    if (rc < 0) {
      free(w->cur.data);
      free(blk);
      sfm_rma_bad(w, origin, sf_last_error());
      return;
    }
    w->cur.active = 1;
    w->cur.dlen = dlen;
    w->cur.origin = origin;
    w->cur.h = h;
    w->cur.blocks = blk;
  }
}

/* The data message of the current request arrived: check and apply it. */
static void sfm_rma_finish_cur(sfm_win *w) {
  sfm_rma_hdr *h = &w->cur.h;
  unsigned char *data = w->cur.data;
  sf_status st;
  int bad = sf_test(sfm.job, w->cur.req, &st) < 0 || st.count != w->cur.dlen;
  sf_req_free(sfm.job, w->cur.req);
  w->cur.active = 0;
  if (!bad && data && (h->flags & SFM_RF_MAP_IN_DATA)) {
    memcpy(w->cur.blocks, data, (size_t)h->nblocks * sizeof *w->cur.blocks);
    data += (size_t)h->nblocks * sizeof *w->cur.blocks;
  }
  if (bad)
    sfm_rma_bad(w, w->cur.origin, "its data message was not as long as announced");
  else if (w->cur.data == NULL)
    w->done_total++; /* a contiguous put received in place */
  else if (sfm_rma_check_range(w, h, w->cur.blocks) < 0)
    sfm_rma_bad(w, w->cur.origin, "outside the window or lengths that do not add up");
  else
    sfm_rma_apply(w, w->cur.origin, h, w->cur.blocks, data);
  free(w->cur.data);
  free(w->cur.blocks);
  w->cur.data = NULL;
  w->cur.blocks = NULL;
}

void sfm_rma_poll(sfm_win *w) {
  sfm_rma_poll_origin(w);
  for (;;) {
    sf_status st;
    int rc, origin;
    if (w->cur.active) {
      if (!sf_req_done(w->cur.req)) break;
      sfm_rma_finish_cur(w);
    }
    if (w->hreq == NULL) sfm_rma_start_target(w);
    if (w->hreq == NULL || !sf_req_done(w->hreq)) break;
    rc = sf_test(sfm.job, w->hreq, &st);
    sf_req_free(sfm.job, w->hreq);
    w->hreq = NULL;
    origin = sfm_win_rank_of(w, st.source);
    if (rc < 0 || origin < 0)
      sfm_rma_bad(w, origin, rc < 0 ? "longer than a request message may be" : "from a rank outside the window");
    else
      sfm_rma_take(w, origin, st.count);
  }
  sfm_rma_poll_out();
}

/* ---- issuing operations -------------------------------------------------------------------------- */

typedef struct {
  int kind;
  const void *obuf;      /* origin data (put, accumulates, compare-and-swap's new value) */
  int ocount;
  MPI_Datatype otype;
  const void *cbuf;      /* compare-and-swap: the value to compare with */
  void *rbuf;            /* result: a get's data, the old values of a fetch */
  int rcount;
  MPI_Datatype rtype;
  int target;
  MPI_Aint tdisp;
  int tcount;
  MPI_Datatype ttype;
  MPI_Op op;
} sfm_rma_op;

static int sfm_rma_access_ok(const sfm_win *w, int target) {
  if (w->fence_open || w->lock_all || w->locks[target]) return 1;
  for (int i = 0; i < w->naccess; i++)
    if (w->access[i] == target) return 1;
  return 0;
}

/* MPI code (raised through the window's handler). */
static int sfm_rma_issue(sfm_win *w, const char *fn, const sfm_rma_op *o, sfm_rreq *rr, int *direct) {
  sfm_type *tt, *ot = NULL, *rt = NULL;
  size_t tbytes, payload = 0, es = 0;
  MPI_Aint off;
  int rc, t = o->target, need_reply = o->kind != SFM_RMA_PUT && o->kind != SFM_RMA_ACC;
  sfm_rma_hdr *h = NULL;
  unsigned char *msg = NULL, *data = NULL;
  size_t msglen, dlen = 0, nb_bytes;
  uint32_t seq;
  sf_req *r;
  *direct = 0;
  if (t == MPI_PROC_NULL) {
    *direct = 1;
    return MPI_SUCCESS;
  }
  if (t < 0 || t >= w->size) return sfm_werror(w, fn, MPI_ERR_RANK, "target_rank %d out of range for a window of %d ranks", t, w->size);
  if (w->err != MPI_SUCCESS) {
    int e = w->err;
    w->err = MPI_SUCCESS;
    return sfm_raise_on(SFM_OBJ_WIN, w->handle, e);
  }
  if (!sfm_rma_access_ok(w, t))
    return sfm_werror(w, fn, MPI_ERR_RMA_SYNC,
                      "no access epoch to target %d (MPI_Win_fence, MPI_Win_lock/lock_all or MPI_Win_start first)", t);
  if ((rc = sfm_type_check(MPI_COMM_WORLD, fn, o->ttype, o->tcount)) != MPI_SUCCESS) return rc;
  tt = sfm_type_get(o->ttype);
  tbytes = tt->size * (size_t)o->tcount;
  if (o->obuf || o->kind == SFM_RMA_PUT || o->kind == SFM_RMA_ACC) {
    if ((rc = sfm_type_check(MPI_COMM_WORLD, fn, o->otype, o->ocount)) != MPI_SUCCESS) return rc;
    ot = sfm_type_get(o->otype);
    if (o->kind != SFM_RMA_CAS && ot->size * (size_t)o->ocount != tbytes)
      return sfm_werror(w, fn, MPI_ERR_ARG, "the origin data has %zu bytes, the target data %zu", ot->size * (size_t)o->ocount, tbytes);
  }
  if (need_reply) {
    if ((rc = sfm_type_check(MPI_COMM_WORLD, fn, o->rtype, o->rcount)) != MPI_SUCCESS) return rc;
    rt = sfm_type_get(o->rtype);
    if (rt->size * (size_t)o->rcount != tbytes)
      return sfm_werror(w, fn, MPI_ERR_ARG, "the result buffer holds %zu bytes, the target data %zu", rt->size * (size_t)o->rcount, tbytes);
  }
  if (o->kind == SFM_RMA_ACC || o->kind == SFM_RMA_GACC || o->kind == SFM_RMA_CAS) {
    int basic = tt->homog;
    if (o->kind != SFM_RMA_CAS && (o->op <= 0 || o->op > MPI_NO_OP))
      return sfm_werror(w, fn, MPI_ERR_OP, "op %d: one-sided accumulates take predefined ops only", o->op);
    if (basic < 0 || (ot && ot->homog != basic && o->op != MPI_NO_OP))
      return sfm_werror(w, fn, MPI_ERR_TYPE, "accumulate data must be of one predefined type on both sides (origin %s, target %s)",
                        ot ? sfm_type_name(o->otype) : "none", sfm_type_name(o->ttype));
    if (o->kind != SFM_RMA_CAS && o->op != MPI_REPLACE && o->op != MPI_NO_OP && !sf_op_valid((sf_op)(o->op - 1), (sf_dtype)basic))
      return sfm_werror(w, fn, MPI_ERR_OP, "%s is not defined for %s", sfm_op_name(o->op), sfm_type_name(o->ttype));
    es = sf_dtype_size((sf_dtype)basic);
  }
  /* the target range, in the target's disp_unit, within its window */
  off = o->tdisp * (MPI_Aint)w->units[t];
  if (o->tcount > 0 && (off + tt->true_lb < 0 || off + (MPI_Aint)(o->tcount - 1) * tt->extent + tt->true_ub > w->sizes[t]))
    return sfm_werror(w, fn, MPI_ERR_RMA_RANGE, "target_disp %ld, %d items of %s: outside window rank %d's %ld bytes",
                      (long)o->tdisp, o->tcount, sfm_type_name(o->ttype), t, (long)w->sizes[t]);
  if (tbytes == 0) {
    *direct = 1;
    return MPI_SUCCESS;
  }
  /* direct: contiguous on both sides */
  if ((o->kind == SFM_RMA_PUT || o->kind == SFM_RMA_GET) && tt->contig) {
    sfm_type *lt = o->kind == SFM_RMA_PUT ? ot : rt;
    void *local = o->kind == SFM_RMA_PUT ? (void *)o->obuf : o->rbuf;
    int code;
    if (lt->contig && sfm_win_direct(w, t, o->kind == SFM_RMA_PUT, local, off, tbytes, &code)) {
      *direct = 1;
      return code == MPI_SUCCESS ? MPI_SUCCESS : sfm_raise_on(SFM_OBJ_WIN, w->handle, code);
    }
  }
  /* the message path */
  nb_bytes = tt->contig ? 0 : (size_t)tt->nblocks * sizeof(sfm_rma_blk);
  h = calloc(1, sizeof *h);
  if (h == NULL) goto nomem;
  h->kind = (uint8_t)o->kind;
  h->basic = (int16_t)(es ? tt->homog : -1);
  h->op = o->op > 0 && o->op <= MPI_NO_OP ? o->op - 1 : -1;
  h->seq = seq = w->seq++;
  h->nblocks = tt->contig ? 0 : tt->nblocks;
  h->disp = (uint64_t)off;
  h->bytes = o->kind == SFM_RMA_CAS ? es : tbytes;
  payload = sfm_rma_payload(h->kind, h->op, h->bytes);
  h->textent = tt->contig ? (int64_t)tt->size : (int64_t)tt->extent;
  h->tcount = o->tcount;
  if (sizeof *h + nb_bytes + payload <= SFM_RMA_HBUF) {
    h->flags = SFM_RF_INLINE;
    msglen = sizeof *h + nb_bytes + payload;
  } else if (sizeof *h + nb_bytes <= SFM_RMA_HBUF) {
    msglen = sizeof *h + nb_bytes;
    dlen = payload;
  } else {
    h->flags = SFM_RF_MAP_IN_DATA;
    msglen = sizeof *h;
    dlen = nb_bytes + payload;
  }
  msg = malloc(msglen);
  if (msg == NULL) goto nomem;
  memcpy(msg, h, sizeof *h);
  {
    unsigned char *p = msg + sizeof *h, *pay;
    if (dlen) {
      data = NULL;
      /* a contiguous origin put whose data goes alone travels from the caller's buffer */
      if (!(o->kind == SFM_RMA_PUT && ot->contig && !(h->flags & SFM_RF_MAP_IN_DATA))) {
        data = malloc(dlen);
        if (data == NULL) goto nomem;
      }
    }
    if (nb_bytes) {
      unsigned char *bp = (h->flags & SFM_RF_MAP_IN_DATA) ? data : p;
      for (int b = 0; b < tt->nblocks; b++) { /* offsets from the start of each item, as in memory */
        sfm_rma_blk blk = {(int64_t)tt->blocks[b].disp, (int64_t)tt->blocks[b].len};
        memcpy(bp + (size_t)b * sizeof blk, &blk, sizeof blk);
      }
      if (!(h->flags & SFM_RF_MAP_IN_DATA)) p += nb_bytes;
    }
    pay = (h->flags & SFM_RF_INLINE) ? p : data ? data + ((h->flags & SFM_RF_MAP_IN_DATA) ? nb_bytes : 0) : NULL;
    if (pay && payload) {
      if (o->kind == SFM_RMA_CAS) {
        /* the new value, then the value to compare with */
        memcpy(pay, o->obuf, es);
        memcpy(pay + es, o->cbuf, es);
      } else {
        sfm_pack(ot, o->obuf, o->ocount, pay);
      }
    }
  }
  free(h);
  h = NULL;
  /* the reply's receive first, so that it can match at once */
  if (need_reply) {
    size_t rbytes = o->kind == SFM_RMA_CAS ? es : tbytes;
    void *dst = o->rbuf, *tmp = NULL;
    if (!rt->contig) {
      tmp = malloc(rbytes);
      if (tmp == NULL) goto nomem;
      dst = tmp;
    }
    rc = sf_irecv(sfm.job, dst, rbytes, w->world[t], w->ctx + 1, (int)(seq & SF_TAG_MAX), &r);
    if (rc < 0 || sfm_rma_pend_add(w, r, t, tmp, rr) < 0) {
      free(tmp);
      goto dperr;
    }
    if (tmp) {
      w->pend->ubuf = o->rbuf;
      w->pend->ucount = o->rcount;
      w->pend->utype = o->rtype;
      sfm_type_ref(o->rtype);
    }
  }
  rc = sf_isend(sfm.job, msg, msglen, w->world[t], w->ctx, 0, 0, &r);
  if (rc < 0) goto dperr;
  if (sfm_rma_pend_add(w, r, t, msg, rr) < 0) goto nomem;
  msg = NULL;
  if (dlen) {
    const void *src = data ? data : o->obuf;
    rc = sf_isend(sfm.job, src, dlen, w->world[t], w->ctx + 1, (int)(seq & SF_TAG_MAX), 0, &r);
    if (rc < 0) goto dperr;
    if (sfm_rma_pend_add(w, r, t, data, rr) < 0) goto nomem;
    data = NULL;
  }
  w->epoch_ops[t]++;
  w->dirty[t] = 1;
  return MPI_SUCCESS;
nomem:
  free(h);
  free(msg);
  free(data);
  return sfm_werror(w, fn, MPI_ERR_NO_MEM, "out of memory");
dperr:
  free(msg);
  free(data);
  return sfm_raise_on(SFM_OBJ_WIN, w->handle, sfm_dp_code(fn, rc < 0 ? rc : SF_ENOMEM));
}

static int sfm_rma_call(MPI_Win win, const char *fn, const sfm_rma_op *o, MPI_Request *request) {
  sfm_rreq *rr = NULL;
  int rc, direct;
  SFM_WIN(fn, win, w);
  if (request) {
    if (!w->lock_all && (o->target < 0 || o->target >= w->size || !w->locks[o->target]) && o->target != MPI_PROC_NULL)
      return sfm_werror(w, fn, MPI_ERR_RMA_SYNC, "request-based operations need a passive-target epoch (MPI_Win_lock/lock_all)");
    rr = calloc(1, sizeof *rr);
    if (rr == NULL) return sfm_werror(w, fn, MPI_ERR_NO_MEM, "out of memory");
    rr->win = win;
  }
  rc = sfm_rma_issue(w, fn, o, rr, &direct);
  if (request == NULL) return rc;
  if (rc != MPI_SUCCESS) {
    free(rr);
    return rc;
  }
  return sfm_rreq_start(rr, request, fn);
}

int MPI_Put(const void *obuf, int ocount, MPI_Datatype otype, int target, MPI_Aint tdisp, int tcount, MPI_Datatype ttype,
            MPI_Win win) {
  sfm_rma_op o = {SFM_RMA_PUT, obuf, ocount, otype, NULL, NULL, 0, 0, target, tdisp, tcount, ttype, MPI_OP_NULL};
  return sfm_rma_call(win, "MPI_Put", &o, NULL);
}

int MPI_Get(void *obuf, int ocount, MPI_Datatype otype, int target, MPI_Aint tdisp, int tcount, MPI_Datatype ttype,
            MPI_Win win) {
  sfm_rma_op o = {SFM_RMA_GET, NULL, 0, 0, NULL, obuf, ocount, otype, target, tdisp, tcount, ttype, MPI_OP_NULL};
  return sfm_rma_call(win, "MPI_Get", &o, NULL);
}

int MPI_Accumulate(const void *obuf, int ocount, MPI_Datatype otype, int target, MPI_Aint tdisp, int tcount,
                   MPI_Datatype ttype, MPI_Op op, MPI_Win win) {
  sfm_rma_op o = {SFM_RMA_ACC, obuf, ocount, otype, NULL, NULL, 0, 0, target, tdisp, tcount, ttype, op};
  return sfm_rma_call(win, "MPI_Accumulate", &o, NULL);
}

int MPI_Get_accumulate(const void *obuf, int ocount, MPI_Datatype otype, void *rbuf, int rcount, MPI_Datatype rtype,
                       int target, MPI_Aint tdisp, int tcount, MPI_Datatype ttype, MPI_Op op, MPI_Win win) {
  sfm_rma_op o = {SFM_RMA_GACC, op == MPI_NO_OP ? NULL : obuf, ocount, otype, NULL, rbuf, rcount, rtype, target, tdisp, tcount, ttype, op};
  return sfm_rma_call(win, "MPI_Get_accumulate", &o, NULL);
}

int MPI_Fetch_and_op(const void *obuf, void *rbuf, MPI_Datatype dt, int target, MPI_Aint tdisp, MPI_Op op, MPI_Win win) {
  sfm_rma_op o = {SFM_RMA_GACC, op == MPI_NO_OP ? NULL : obuf, 1, dt, NULL, rbuf, 1, dt, target, tdisp, 1, dt, op};
  return sfm_rma_call(win, "MPI_Fetch_and_op", &o, NULL);
}

int MPI_Compare_and_swap(const void *obuf, const void *cbuf, void *rbuf, MPI_Datatype dt, int target, MPI_Aint tdisp,
                         MPI_Win win) {
  sfm_rma_op o = {SFM_RMA_CAS, obuf, 1, dt, cbuf, rbuf, 1, dt, target, tdisp, 1, dt, MPI_OP_NULL};
  return sfm_rma_call(win, "MPI_Compare_and_swap", &o, NULL);
}

int MPI_Rput(const void *obuf, int ocount, MPI_Datatype otype, int target, MPI_Aint tdisp, int tcount, MPI_Datatype ttype,
             MPI_Win win, MPI_Request *request) {
  sfm_rma_op o = {SFM_RMA_PUT, obuf, ocount, otype, NULL, NULL, 0, 0, target, tdisp, tcount, ttype, MPI_OP_NULL};
  if (request == NULL) return sfm_error(MPI_COMM_WORLD, "MPI_Rput", MPI_ERR_ARG, "request is NULL");
  return sfm_rma_call(win, "MPI_Rput", &o, request);
}

int MPI_Rget(void *obuf, int ocount, MPI_Datatype otype, int target, MPI_Aint tdisp, int tcount, MPI_Datatype ttype,
             MPI_Win win, MPI_Request *request) {
  sfm_rma_op o = {SFM_RMA_GET, NULL, 0, 0, NULL, obuf, ocount, otype, target, tdisp, tcount, ttype, MPI_OP_NULL};
  if (request == NULL) return sfm_error(MPI_COMM_WORLD, "MPI_Rget", MPI_ERR_ARG, "request is NULL");
  return sfm_rma_call(win, "MPI_Rget", &o, request);
}

int MPI_Raccumulate(const void *obuf, int ocount, MPI_Datatype otype, int target, MPI_Aint tdisp, int tcount,
                    MPI_Datatype ttype, MPI_Op op, MPI_Win win, MPI_Request *request) {
  sfm_rma_op o = {SFM_RMA_ACC, obuf, ocount, otype, NULL, NULL, 0, 0, target, tdisp, tcount, ttype, op};
  if (request == NULL) return sfm_error(MPI_COMM_WORLD, "MPI_Raccumulate", MPI_ERR_ARG, "request is NULL");
  return sfm_rma_call(win, "MPI_Raccumulate", &o, request);
}

int MPI_Rget_accumulate(const void *obuf, int ocount, MPI_Datatype otype, void *rbuf, int rcount, MPI_Datatype rtype,
                        int target, MPI_Aint tdisp, int tcount, MPI_Datatype ttype, MPI_Op op, MPI_Win win,
                        MPI_Request *request) {
  sfm_rma_op o = {SFM_RMA_GACC, op == MPI_NO_OP ? NULL : obuf, ocount, otype, NULL, rbuf, rcount, rtype, target, tdisp, tcount, ttype, op};
  if (request == NULL) return sfm_error(MPI_COMM_WORLD, "MPI_Rget_accumulate", MPI_ERR_ARG, "request is NULL");
  return sfm_rma_call(win, "MPI_Rget_accumulate", &o, request);
}

/* ---- request-based operations as MPI requests ---------------------------------------------------- */

static int sfm_rreq_done(void *obj) { return ((sfm_rreq *)obj)->parts <= 0; }
static int sfm_rreq_finish(void *obj, MPI_Status *st) {
  (void)obj;
  sfm_empty_status(st);
  return MPI_SUCCESS;
}
static void sfm_rreq_release(void *obj) { free(obj); }
static void sfm_rreq_orphan(void *obj) {
  sfm_rreq *rr = obj;
  if (rr->parts <= 0)
    free(rr);
  else
    rr->orphan = 1;
}
static const sfm_req_ops sfm_rreq_ops = {sfm_rreq_done, sfm_rreq_finish, sfm_rreq_release, sfm_rreq_orphan};

int sfm_rreq_start(sfm_rreq *rr, MPI_Request *request, const char *fn) {
  sfm_req *rq;
  if (sfm_req_new(request, &rq) < 0) {
    /* the operation is under way; its parts still point to rr: let them free it */
    rr->orphan = 1;
    if (rr->parts <= 0) free(rr);
    return sfm_error(MPI_COMM_WORLD, fn, MPI_ERR_NO_MEM, "out of memory");
  }
  rq->kind = SFM_RQ_OBJ;
  rq->comm = MPI_COMM_WORLD;
  rq->obj = rr;
  rq->ops = &sfm_rreq_ops;
  return MPI_SUCCESS;
}
