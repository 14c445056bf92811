/*
 * rma.c: the operations (put, get, accumulate, get-accumulate, compare-and-swap), the direct
 * path, the locks and accumulate mutex of the control block, and the message path's engines:
 * the origin's requests in flight and the target side.
 *
 * Direct: a contiguous copy to a member this rank can reach (sf_win_direct), complete when the
 * call returns. Accumulates take the target's accumulate mutex (a futex word in the host's
 * control block) around their read-modify-write, so they are atomic against every other
 * accumulate, applied here or by the target's engine.
 *
 * Message: a request message per operation on ctx + 0 (internal.h has the header), applied by
 * the target's engine in the order sent, one at a time; a payload beyond SF_WIN_HBUF follows on
 * ctx + 1 with the op id as tag and lands straight in the window for a put; replies come back
 * on ctx + 1 with the same tag.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "internal.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>
#include <linux/futex.h>

static long sfw_futex(_Atomic uint32_t *addr, int op, uint32_t val, const struct timespec *ts) {
  return syscall(SYS_futex, (uint32_t *)addr, op, val, ts, NULL, 0);
}

/* ---- the control block ------------------------------------------------------------------------- */

_Atomic uint32_t *sfw_lockword(sf_win *w, int target) {
  if (w->slots) return &w->slots[target].lock;
  return (_Atomic uint32_t *)&w->private_lock; /* no control block: only this rank's engine locks it */
}

/* Take the lock for `holder` if it is free for `type`: 1 taken, 0 not. */
int sfw_try_lock(_Atomic uint32_t *word, int type, int holder) {
  uint32_t v = atomic_load(word);
  for (;;) {
    uint32_t want;
    if (type == SF_LOCK_EXCLUSIVE) {
      if (v != 0) return 0;
      want = SFW_EXCL | ((uint32_t)holder << SFW_HOLDER_SHIFT);
    } else {
      if ((v & SFW_EXCL) || (v & SFW_SHARED_MASK) == SFW_SHARED_MASK) return 0;
      want = v + 1;
    }
    if (atomic_compare_exchange_weak(word, &v, want)) return 1;
  }
}

/* Release `holder`'s lock of `type` on target and wake whoever waits for it: a WAKE request to
 * each waiter (their engine takes it; their wait then re-checks the lock). */
void sfw_release(sf_win *w, int target, int type, int holder) {
  _Atomic uint32_t *word = sfw_lockword(w, target);
  (void)holder;
  if (type == SF_LOCK_EXCLUSIVE)
    atomic_store(word, 0);
  else
    atomic_fetch_sub(word, 1);
  if (w->slots == NULL) return;
  for (int k = 0; k < SF_MAX_RANKS / 32; k++) {
    uint32_t m = atomic_load(&w->slots[target].waiters[k]);
    while (m) {
      int r = k * 32 + __builtin_ctz(m);
      m &= m - 1;
      if (r < w->size) sfw_send_ctl(w, r, SF_RMA_WAKE, 0, 0, "window unlock");
    }
  }
}

/* The accumulate mutex of target: spin briefly, then sleep on it (a tick at a time, checking
 * that its holder is alive and the job is not aborted). */
static int sfw_acc_lock(sf_win *w, int target, const char *fn) {
  _Atomic uint32_t *m;
  uint32_t me = (uint32_t)w->rank + 1, v = 0;
  double t0;
  if (w->slots == NULL) return 0; /* no control block: nobody but this thread applies accumulates here */
  m = &w->slots[target].acc;
  for (int i = 0; i < 200; i++) {
    v = 0;
    if (atomic_compare_exchange_weak(m, &v, me)) return 0;
    sched_yield();
  }
  t0 = sf_now();
  for (;;) {
    struct timespec ts = {0, SF_TICK_MS * 1000000L};
    v = atomic_load(m);
    if (v == 0) {
      if (atomic_compare_exchange_weak(m, &v, me | SFW_ACC_SLEEP)) return 0; /* others may sleep: wake them at release */
      continue;
    }
    if (!(v & SFW_ACC_SLEEP) && !atomic_compare_exchange_weak(m, &v, v | SFW_ACC_SLEEP)) continue;
    sfw_futex(m, FUTEX_WAIT, v | SFW_ACC_SLEEP, &ts);
    {
      int holder = (int)((atomic_load(m) & ~SFW_ACC_SLEEP) - 1), ar;
      char why[160];
      if (sf_job_aborted(w->job, &ar, NULL, NULL, 0)) return sfw_err(SF_EABORTED, "%s: the job was aborted by rank %d", fn, ar);
      if (holder >= 0 && holder < w->size && sf_job_peer_death(w->job, w->world[holder], why, sizeof why))
        return sfw_err(SF_EPEERDIED, "%s: window rank %d (world rank %d) %s while applying an accumulate to window rank %d", fn, holder,
                       w->world[holder], why, target);
    }
    if (sf_now() - t0 > 60.0)
      return sfw_err(SF_ETIMEDOUT, "%s: waited 60 s for the accumulate mutex of window rank %d", fn, target);
  }
}

static void sfw_acc_unlock(sf_win *w, int target) {
  if (w->slots == NULL) return;
  if (atomic_exchange(&w->slots[target].acc, 0) & SFW_ACC_SLEEP) sfw_futex(&w->slots[target].acc, FUTEX_WAKE, INT_MAX, NULL);
}

/* ---- applying an operation to memory (both paths) ---------------------------------------------- */

/* result = old; mem op= src (REPLACE: mem = src; NO_OP: unchanged). */
static void sfw_apply(void *mem, const void *src, void *result, size_t len, sf_dtype t, sf_op op) {
  if (result) memcpy(result, mem, len);
  if (op == SF_OP_NO_OP) return;
  if (op == SF_OP_REPLACE)
    memcpy(mem, src, len);
  else
    sf_op_apply(op, t, src, mem, len / sf_dtype_size(t));
}

/* ---- the direct path --------------------------------------------------------------------------- */

/* Where target's window is mapped here, or NULL (then process_vm reaches it). */
static char *sfw_mapped(sf_win *w, int target) {
  if (target == w->rank) return w->mem;
  if (w->shm && w->flavor != SF_WIN_CREATE) return w->shm + w->seg[target];
  return NULL;
}

/* Copies between `local` and target's window at byte offset off (put: to the target). Returns 1
 * when done, 0 when the kernel refused process_vm (the caller takes the message path), or a
 * negative code. */
static int sfw_copy(sf_win *w, int target, int put, void *local, size_t off, size_t len, const char *fn) {
  char *mem = sfw_mapped(w, target);
  pid_t pid;
  size_t done = 0;
  if (len == 0) return 1;
  if (mem) {
    if (put)
      memcpy(mem + off, local, len);
    else
      memcpy(local, mem + off, len);
    return 1;
  }
  pid = w->pid[target];
  while (done < len) {
    struct iovec l = {(char *)local + done, len - done};
    struct iovec r = {(void *)(uintptr_t)(w->base[target] + off + done), len - done};
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
    return sfw_err(SF_ESYS, "%s: %s of %zu bytes at window rank %d (pid %d): %s", fn, put ? "process_vm_writev" : "process_vm_readv", len,
                   target, (int)pid, strerror(n < 0 ? errno : EIO));
  }
  return 1;
}

/* An accumulate-like operation applied here, under the target's mutex. 1 done, 0 refused
 * (message path), negative on failure. */
static int sfw_direct_acc(sf_win *w, int target, const void *src, const void *cmp, void *result, size_t len, sf_dtype t,
                          sf_op op, size_t off, int cas, const char *fn) {
  char *mem = sfw_mapped(w, target);
  unsigned char stackbuf[256], *tmp = NULL;
  int rc;
  if (mem == NULL && (tmp = len <= sizeof stackbuf ? stackbuf : malloc(len)) == NULL) return sfw_err(SF_ENOMEM, "%s: out of memory", fn);
  rc = sfw_acc_lock(w, target, fn);
  if (rc < 0) goto out;
  if (mem == NULL && (rc = sfw_copy(w, target, 0, tmp, off, len, fn)) <= 0) {
    sfw_acc_unlock(w, target);
    goto out;
  }
  {
    unsigned char *at = mem ? (unsigned char *)mem + off : tmp;
    if (cas) {
      if (result) memcpy(result, at, len);
      if (memcmp(at, cmp, len) == 0) memcpy(at, src, len);
    } else {
      sfw_apply(at, src, result, len, t, op);
    }
  }
  atomic_thread_fence(memory_order_seq_cst);
  rc = mem ? 1 : sfw_copy(w, target, 1, tmp, off, len, fn);
  sfw_acc_unlock(w, target);
out:
  if (tmp && tmp != stackbuf) free(tmp);
  return rc;
}

/* ---- the origin's requests in flight ------------------------------------------------------------ */

static int sfw_pend_add(sf_win *w, sf_req *req, int target, void *tmp, int *flag) {
  sfw_pend *p = calloc(1, sizeof *p);
  if (p == NULL) return -1;
  p->req = req;
  p->target = target;
  p->tmp = tmp;
  p->flag = flag;
  p->next = w->pend;
  w->pend = p;
  return 0;
}

static void sfw_set_err(sf_win *w, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void sfw_set_err(sf_win *w, int code, const char *fmt, ...) {
  va_list ap;
  if (w->err) return;
  w->err = code;
  va_start(ap, fmt);
  vsnprintf(w->errmsg, sizeof w->errmsg, fmt, ap);
  va_end(ap);
}

static void sfw_poll_origin(sf_win *w) {
  sfw_pend **pp = &w->pend;
  while (*pp) {
    sfw_pend *p = *pp;
    sf_status st;
    if (!sf_req_done(p->req)) {
      pp = &p->next;
      continue;
    }
    if (sf_test(w->job, p->req, &st) < 0)
      sfw_set_err(w, SF_ETRUNCATE, "a one-sided answer from window rank %d did not fit (%zu bytes): %s", p->target, st.size, sf_last_error());
    if (p->flag) *p->flag = 1;
    sf_req_free(w->job, p->req);
    free(p->tmp);
    *pp = p->next;
    free(p);
  }
}

int sfw_local_done(sf_win *w, int target) {
  for (sfw_pend *p = w->pend; p; p = p->next)
    if (target < 0 || p->target == target) return 0;
  return 1;
}

typedef struct {
  int target;
  int *flag;
} sfw_local_arg;

static int sfw_cond_local(sf_win *w, void *arg) {
  sfw_local_arg *a = arg;
  sfw_poll_origin(w);
  return sfw_local_done(w, a->target) && (a->flag == NULL || *a->flag);
}

static const char *sfw_what_answer(sf_win *w, void *arg) {
  static _Thread_local char buf[128];
  sfw_local_arg *a = arg;
  if (a->target >= 0)
    snprintf(buf, sizeof buf, "window rank %d (world rank %d) to answer", a->target, w->world[a->target]);
  else
    snprintf(buf, sizeof buf, "the window's members to take this rank's operations");
  return buf;
}

int sfw_wait_local(sf_win *w, int target, const char *fn) {
  sfw_local_arg a = {target, NULL};
  sfw_poll_origin(w);
  if (sfw_local_done(w, target)) return 0;
  return sfw_wait_until(w, sfw_cond_local, sfw_what_answer, &a, fn);
}

/* A header-only request of `kind` to target; with wait_answer, waits for its answer. */
int sfw_send_ctl(sf_win *w, int target, int kind, int arg, int wait_answer, const char *fn) {
  sfw_hdr *h = calloc(1, sizeof *h);
  sf_req *sreq = NULL, *rreq = NULL;
  int rc, done = 0;
  if (h == NULL) return sfw_err(SF_ENOMEM, "%s: out of memory", fn);
  h->kind = (uint8_t)kind;
  h->basic = -1;
  h->op = arg;
  h->seq = w->seq++;
  h->tcount = 1;
  if (wait_answer) {
    rc = sf_irecv(w->job, NULL, 0, w->world[target], w->ctx + 1, (int)(h->seq & SF_TAG_MAX), &rreq);
    if (rc < 0) {
      free(h);
      return sfw_dp(rc, fn);
    }
  }
  rc = sf_isend(w->job, h, sizeof *h, w->world[target], w->ctx, 0, 0, &sreq);
  if (rc < 0) {
    if (rreq) sf_req_free(w->job, rreq);
    free(h);
    return sfw_dp(rc, fn);
  }
  if (sfw_pend_add(w, sreq, target, h, NULL) < 0 || (rreq && sfw_pend_add(w, rreq, target, NULL, &done) < 0))
    return sfw_err(SF_ENOMEM, "%s: out of memory", fn);
  if (!wait_answer) return 0;
  {
    sfw_local_arg a = {target, &done};
    rc = sfw_wait_until(w, sfw_cond_local, sfw_what_answer, &a, fn);
    /* the entry must not point to this frame once we return */
    for (sfw_pend *p = w->pend; p; p = p->next)
      if (p->flag == &done) p->flag = NULL;
  }
  return rc;
}

/* ---- the target side ---------------------------------------------------------------------------- */

static int sfw_rank_of(const sf_win *w, int world) {
  for (int i = 0; i < w->size; i++)
    if (w->world[i] == world) return i;
  return -1;
}

void sfw_start_target(sf_win *w) {
  if (sf_irecv(w->job, w->hbuf, SF_WIN_HBUF, SF_ANY_SOURCE, w->ctx, SF_ANY_TAG, &w->hreq) < 0) w->hreq = NULL;
}

void sfw_stop_target(sf_win *w) {
  if (w->hreq) sf_req_free(w->job, w->hreq);
  w->hreq = NULL;
  if (w->cur.active) {
    sf_req_free(w->job, w->cur.req);
    free(w->cur.data);
    w->cur.active = 0;
  }
  while (w->pend) {
    sfw_pend *p = w->pend;
    w->pend = p->next;
    sf_req_free(w->job, p->req);
    free(p->tmp);
    free(p);
  }
  while (w->outq) {
    sfw_out *o = w->outq;
    w->outq = o->next;
    sf_req_free(w->job, o->req); /* detached: it completes by itself; its buffer may leak then */
    if (sf_req_done(o->req)) free(o->buf);
    free(o);
  }
}

static void sfw_poll_out(sf_win *w) {
  sfw_out **pp = &w->outq;
  while (*pp) {
    sfw_out *o = *pp;
    if (sf_req_done(o->req)) {
      sf_req_free(w->job, o->req);
      free(o->buf);
      *pp = o->next;
      free(o);
    } else {
      pp = &o->next;
    }
  }
}

/* Answer origin's request `seq` with len bytes (buf: owned when `owned`, freed once sent). */
static void sfw_reply(sf_win *w, int origin, uint32_t seq, void *buf, size_t len, int owned) {
  sf_req *r;
  sfw_out *o;
  if (sf_isend(w->job, buf, len, w->world[origin], w->ctx + 1, (int)(seq & SF_TAG_MAX), 0, &r) < 0) {
    sfw_set_err(w, SF_ESYS, "answering window rank %d: %s", origin, sf_last_error());
    if (owned) free(buf);
    return;
  }
  if (!owned) {
    sf_req_free(w->job, r); /* from the window's memory, or empty: detached, it completes by itself */
    return;
  }
  o = malloc(sizeof *o);
  if (o == NULL) { /* cannot track it: let it finish and leak the buffer rather than free it early */
    sf_req_free(w->job, r);
    return;
  }
  o->req = r;
  o->buf = buf;
  o->next = w->outq;
  w->outq = o;
}

static void sfw_bad(sf_win *w, int origin, const char *what) {
  sfw_set_err(w, SF_EPROTO, "a one-sided request from window rank %d was dropped: %s", origin, what);
}

/* Grant queued lock requests while they can be granted (in order). */
static void sfw_grant(sf_win *w) {
  while (w->lockq) {
    sfw_lockq *q = w->lockq;
    if (!sfw_try_lock(sfw_lockword(w, w->rank), q->type, q->origin)) {
      /* a direct holder releases it without telling the engine: wait for its WAKE */
      if (w->slots) atomic_fetch_or(&w->slots[w->rank].waiters[w->rank / 32], 1u << (w->rank % 32));
      if (!sfw_try_lock(sfw_lockword(w, w->rank), q->type, q->origin)) return;
    }
    sfw_reply(w, q->origin, q->seq, NULL, 0, 0);
    w->lockq = q->next;
    free(q);
  }
  if (w->slots) atomic_fetch_and(&w->slots[w->rank].waiters[w->rank / 32], ~(1u << (w->rank % 32)));
}

static size_t sfw_payload(const sfw_hdr *h) {
  if (h->kind == SF_RMA_GET || (h->kind == SF_RMA_GACC && h->op == SF_OP_NO_OP)) return 0;
  if (h->kind == SF_RMA_CAS) return 2 * (size_t)h->bytes;
  if (h->kind == SF_RMA_PUT || h->kind == SF_RMA_ACC || h->kind == SF_RMA_GACC) return (size_t)h->bytes;
  return 0;
}

/* Apply a complete data request (payload in `data`) for origin. */
static void sfw_apply_req(sf_win *w, int origin, const sfw_hdr *h, unsigned char *data) {
  char *mem = (char *)w->mem + h->disp;
  size_t len = (size_t)h->bytes;
  switch (h->kind) {
  case SF_RMA_PUT: memcpy(mem, data, len); break;
  case SF_RMA_GET: sfw_reply(w, origin, h->seq, mem, len, 0); break; /* straight from the window */
  case SF_RMA_ACC:
  case SF_RMA_GACC:
  case SF_RMA_CAS: {
    unsigned char *old = h->kind == SF_RMA_ACC ? NULL : malloc(len ? len : 1);
    int rc;
    if (h->kind != SF_RMA_ACC && old == NULL) {
      sfw_bad(w, origin, "out of memory for the answer");
      return;
    }
    rc = sfw_acc_lock(w, w->rank, "window accumulate");
    if (rc < 0) {
      sfw_set_err(w, rc, "%s", sf_win_last_error());
      free(old);
      return;
    }
    if (h->kind == SF_RMA_CAS) {
      memcpy(old, mem, len);
      if (memcmp(mem, data + len, len) == 0) memcpy(mem, data, len);
    } else {
      sfw_apply(mem, data, old, len, (sf_dtype)h->basic, (sf_op)h->op);
    }
    sfw_acc_unlock(w, w->rank);
    if (old) sfw_reply(w, origin, h->seq, old, len, 1);
    break;
  }
  default: break;
  }
  w->done_total++;
}

/* Take one request of n bytes from origin, out of w->hbuf. */
static void sfw_take(sf_win *w, int origin, size_t n) {
  sfw_hdr h;
  size_t pay;
  if (n < sizeof h) {
    sfw_bad(w, origin, "shorter than its header");
    return;
  }
  memcpy(&h, w->hbuf, sizeof h);
  switch (h.kind) {
  case SF_RMA_LOCK: {
    sfw_lockq *q = malloc(sizeof *q), **tail = &w->lockq;
    if (q == NULL) {
      sfw_bad(w, origin, "out of memory for a lock request");
      return;
    }
    q->origin = origin;
    q->type = h.op == SF_LOCK_EXCLUSIVE ? SF_LOCK_EXCLUSIVE : SF_LOCK_SHARED;
    q->seq = h.seq;
    q->next = NULL;
    while (*tail) tail = &(*tail)->next;
    *tail = q;
    sfw_grant(w);
    return;
  }
  case SF_RMA_UNLOCK:
    sfw_release(w, w->rank, h.op == SF_LOCK_EXCLUSIVE ? SF_LOCK_EXCLUSIVE : SF_LOCK_SHARED, origin);
    sfw_reply(w, origin, h.seq, NULL, 0, 0);
    sfw_grant(w);
    return;
  case SF_RMA_FLUSH: sfw_reply(w, origin, h.seq, NULL, 0, 0); return;
  case SF_RMA_POST: w->posts[origin]++; return;
  case SF_RMA_COMPLETE: w->completes[origin]++; return;
  case SF_RMA_WAKE: sfw_grant(w); return; /* a lock was released: queued requests may go, and waits re-check */
  case SF_RMA_PUT:
  case SF_RMA_GET:
  case SF_RMA_ACC:
  case SF_RMA_GACC:
  case SF_RMA_CAS: break;
  default: sfw_bad(w, origin, "unknown kind"); return;
  }
  if (h.nblocks != 0 || h.bytes > w->bytes[w->rank] || h.disp > w->bytes[w->rank] - h.bytes ||
      (h.kind != SF_RMA_PUT && h.kind != SF_RMA_GET && (h.basic < 0 || h.basic >= SF_DTYPE_COUNT || h.bytes % sf_dtype_size((sf_dtype)h.basic))) ||
      ((h.kind == SF_RMA_ACC || h.kind == SF_RMA_GACC) && (h.op < 0 || h.op >= SF_OP_COUNT))) {
    sfw_bad(w, origin, "outside the window or bad header fields");
    return;
  }
  pay = sfw_payload(&h);
  if (h.flags & SFW_INLINE) {
    if (n != sizeof h + pay) {
      sfw_bad(w, origin, "its payload is not the size its header says");
      return;
    }
    sfw_apply_req(w, origin, &h, w->hbuf + sizeof h);
    return;
  }
  /* the payload follows on ctx + 1: into the window for a put, else into a temporary */
  w->cur.active = 1;
  w->cur.origin = origin;
  w->cur.h = h;
  w->cur.data = h.kind == SF_RMA_PUT ? NULL : malloc(pay ? pay : 1);
  if (h.kind != SF_RMA_PUT && w->cur.data == NULL) {
    w->cur.active = 0;
    sfw_bad(w, origin, "out of memory for its payload");
    return;
  }
  if (sf_irecv(w->job, w->cur.data ? w->cur.data : (char *)w->mem + h.disp, pay, w->world[origin], w->ctx + 1, (int)(h.seq & SF_TAG_MAX),
               &w->cur.req) < 0) {
    free(w->cur.data);
    w->cur.active = 0;
    sfw_bad(w, origin, "cannot receive its payload");
  }
}

static void sfw_finish_cur(sf_win *w) {
  sf_status st;
  int rc = sf_test(w->job, w->cur.req, &st);
  sf_req_free(w->job, w->cur.req);
  w->cur.active = 0;
  if (rc < 0 || st.count != sfw_payload(&w->cur.h))
    sfw_bad(w, w->cur.origin, "its payload is not the size its header says");
  else if (w->cur.data == NULL)
    w->done_total++; /* a put received in place */
  else
    sfw_apply_req(w, w->cur.origin, &w->cur.h, w->cur.data);
  free(w->cur.data);
  w->cur.data = NULL;
}

void sfw_poll(sf_win *w) {
  sfw_poll_origin(w);
  for (;;) {
    sf_status st;
    int rc, origin;
    if (w->cur.active) {
      if (!sf_req_done(w->cur.req)) break;
      sfw_finish_cur(w);
    }
    if (w->hreq == NULL) sfw_start_target(w);
    if (w->hreq == NULL || !sf_req_done(w->hreq)) break;
    rc = sf_test(w->job, w->hreq, &st);
    sf_req_free(w->job, w->hreq);
    w->hreq = NULL;
    origin = sfw_rank_of(w, st.source);
    if (rc < 0 || origin < 0)
      sfw_bad(w, origin, rc < 0 ? "longer than a request message may be" : "from a rank outside the window");
    else
      sfw_take(w, origin, st.count);
  }
  if (w->lockq) sfw_grant(w);
  sfw_poll_out(w);
}

/* ---- issuing operations -------------------------------------------------------------------------- */

static int sfw_access_ok(const sf_win *w, int target) {
  if (w->fence_open || w->lock_all || w->locks[target]) return 1;
  for (int i = 0; i < w->naccess; i++)
    if (w->access[i] == target) return 1;
  return 0;
}

/* The checks of every operation; the target range in bytes. */
static int sfw_op_check(sf_win *w, const char *fn, int target, size_t disp, size_t len, size_t *off) {
  int rc = sfw_pending_err(w);
  if (rc < 0) return rc;
  if ((rc = sfw_check_target(w, fn, target)) < 0) return rc;
  if (!sfw_access_ok(w, target))
    return sfw_err(SF_ESTATE, "%s: no access epoch to window rank %d (fence, lock, lock_all or start first)", fn, target);
  if (disp > w->bytes[target] / w->unit[target] + 1 || disp * w->unit[target] > w->bytes[target] ||
      len > w->bytes[target] - disp * w->unit[target])
    return sfw_err(SF_ERANGE, "%s: %zu bytes at displacement %zu (unit %zu) are outside window rank %d's %zu bytes", fn, len, disp,
                   w->unit[target], target, w->bytes[target]);
  *off = disp * w->unit[target];
  return 0;
}

/* The message path: a request to target (payload: pay bytes of pay1 then pay2), the answer
 * (ans bytes) into `result`. */
static int sfw_send_op(sf_win *w, const char *fn, int kind, int target, size_t off, size_t bytes, sf_dtype t, sf_op op,
                       const void *pay1, const void *pay2, size_t paylen, void *result) {
  size_t msglen = sizeof(sfw_hdr) + paylen, each = pay2 ? paylen / 2 : paylen;
  int inl = msglen <= SF_WIN_HBUF, rc;
  unsigned char *msg = malloc(inl ? msglen : sizeof(sfw_hdr)), *data = NULL;
  sfw_hdr *h = (sfw_hdr *)msg;
  sf_req *r;
  uint32_t seq = w->seq++;
  if (msg == NULL) return sfw_err(SF_ENOMEM, "%s: out of memory", fn);
  memset(h, 0, sizeof *h);
  h->kind = (uint8_t)kind;
  h->flags = inl ? SFW_INLINE : 0;
  h->basic = kind == SF_RMA_PUT || kind == SF_RMA_GET ? -1 : (int16_t)t;
  h->op = kind == SF_RMA_ACC || kind == SF_RMA_GACC ? (int32_t)op : -1;
  h->seq = seq;
  h->disp = off;
  h->bytes = bytes;
  h->textent = (int64_t)bytes;
  h->tcount = 1;
  if (paylen && inl) {
    memcpy(msg + sizeof *h, pay1, each);
    if (pay2) memcpy(msg + sizeof *h + each, pay2, each);
  } else if (paylen) {
    /* The payload travels alone, from a copy: the caller may reuse its buffer at once (and a
     * JavaScript caller's array may move on), which MPI allows only after a flush. */
    data = malloc(paylen);
    if (data == NULL) {
      free(msg);
      return sfw_err(SF_ENOMEM, "%s: out of memory", fn);
    }
    memcpy(data, pay1, each);
    if (pay2) memcpy(data + each, pay2, each);
  }
  if (result) { /* the answer's receive first, so that it can match at once */
    rc = sf_irecv(w->job, result, bytes, w->world[target], w->ctx + 1, (int)(seq & SF_TAG_MAX), &r);
    if (rc < 0 || sfw_pend_add(w, r, target, NULL, NULL) < 0) goto dperr;
  }
  rc = sf_isend(w->job, msg, inl ? msglen : sizeof *h, w->world[target], w->ctx, 0, 0, &r);
  if (rc < 0) goto dperr;
  if (sfw_pend_add(w, r, target, msg, NULL) < 0) goto nomem;
  msg = NULL;
  if (data) {
    rc = sf_isend(w->job, data, paylen, w->world[target], w->ctx + 1, (int)(seq & SF_TAG_MAX), 0, &r);
    if (rc < 0) goto dperr;
    if (sfw_pend_add(w, r, target, data, NULL) < 0) goto nomem;
  }
  w->epoch_ops[target]++;
  w->dirty[target] = 1;
  return 0;
nomem:
  free(msg);
  free(data);
  return sfw_err(SF_ENOMEM, "%s: out of memory", fn);
dperr:
  free(msg);
  free(data);
  return sfw_dp(rc < 0 ? rc : SF_ENOMEM, fn);
}

int sf_win_put(sf_win *w, const void *src, size_t len, int target, size_t disp) {
  size_t off;
  int rc;
  if (target == SF_PROC_NULL) return 0;
  if ((rc = sfw_op_check(w, "put", target, disp, len, &off)) < 0) return rc;
  if (len == 0) return 0;
  if (sf_win_direct(w, target)) {
    rc = sfw_copy(w, target, 1, (void *)src, off, len, "put");
    if (rc != 0) return rc < 0 ? rc : 0;
  }
  return sfw_send_op(w, "put", SF_RMA_PUT, target, off, len, SF_BYTE, SF_OP_REPLACE, src, NULL, len, NULL);
}

int sf_win_get(sf_win *w, void *dst, size_t len, int target, size_t disp) {
  size_t off;
  int rc;
  if (target == SF_PROC_NULL) return 0;
  if ((rc = sfw_op_check(w, "get", target, disp, len, &off)) < 0) return rc;
  if (len == 0) return 0;
  if (sf_win_direct(w, target)) {
    rc = sfw_copy(w, target, 0, dst, off, len, "get");
    if (rc != 0) return rc < 0 ? rc : 0;
  }
  return sfw_send_op(w, "get", SF_RMA_GET, target, off, len, SF_BYTE, SF_OP_NO_OP, NULL, NULL, 0, dst);
}

static int sfw_acc_check(const char *fn, size_t len, sf_dtype t, sf_op op) {
  if (t < 0 || t >= SF_DTYPE_COUNT) return sfw_err(SF_EINVAL, "%s: unknown element type %d", fn, (int)t);
  if (len % sf_dtype_size(t)) return sfw_err(SF_EINVAL, "%s: %zu bytes are not whole elements of %zu bytes", fn, len, sf_dtype_size(t));
  if (op != SF_OP_REPLACE && op != SF_OP_NO_OP && (op < 0 || op >= SF_OP_REPLACE || !sf_op_valid(op, t)))
    return sfw_err(SF_EINVAL, "%s: op %d is not defined for this element type", fn, (int)op);
  return 0;
}

int sf_win_get_accumulate(sf_win *w, const void *src, void *result, size_t len, sf_dtype t, sf_op op, int target, size_t disp) {
  const char *fn = result ? "get_accumulate" : "accumulate";
  size_t off;
  int rc;
  if (target == SF_PROC_NULL) return 0;
  if ((rc = sfw_acc_check(fn, len, t, op)) < 0) return rc;
  if ((rc = sfw_op_check(w, fn, target, disp, len, &off)) < 0) return rc;
  if (len == 0) return 0;
  if (sf_win_direct(w, target)) {
    rc = sfw_direct_acc(w, target, src, NULL, result, len, t, op, off, 0, fn);
    if (rc != 0) return rc < 0 ? rc : 0;
  }
  return sfw_send_op(w, fn, result ? SF_RMA_GACC : SF_RMA_ACC, target, off, len, t, op, src, NULL, op == SF_OP_NO_OP && result ? 0 : len,
                     result);
}

int sf_win_accumulate(sf_win *w, const void *src, size_t len, sf_dtype t, sf_op op, int target, size_t disp) {
  return sf_win_get_accumulate(w, src, NULL, len, t, op, target, disp);
}

int sf_win_compare_and_swap(sf_win *w, const void *src, const void *compare, void *result, sf_dtype t, int target, size_t disp) {
  size_t off, len;
  int rc;
  if (target == SF_PROC_NULL) return 0;
  if (t < 0 || t >= SF_DTYPE_COUNT) return sfw_err(SF_EINVAL, "compare_and_swap: unknown element type %d", (int)t);
  len = sf_dtype_size(t);
  if ((rc = sfw_op_check(w, "compare_and_swap", target, disp, len, &off)) < 0) return rc;
  if (sf_win_direct(w, target)) {
    rc = sfw_direct_acc(w, target, src, compare, result, len, t, SF_OP_NO_OP, off, 1, "compare_and_swap");
    if (rc != 0) return rc < 0 ? rc : 0;
  }
  return sfw_send_op(w, "compare_and_swap", SF_RMA_CAS, target, off, len, t, SF_OP_NO_OP, src, compare, 2 * len, result);
}
