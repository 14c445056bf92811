/*
 * sync.c: synchronisation: fences, locks (passive target), flushes, post/start/complete/wait
 * (general active target).
 *
 * Completion at the target rests on one property of the engine (rma.c): a target applies the
 * requests of one origin in the order sent, one at a time. So an answered FLUSH or UNLOCK means
 * every earlier request of that origin is applied, and a COMPLETE that the target has taken
 * means the whole access epoch is. Direct operations are complete when they return.
 *
 * Fence: (1) this rank's requests in flight complete locally; (2) an allreduce of the message
 * requests each member sent to each target since the last fence tells every target how many it
 * must have applied (and is the barrier the direct operations need); (3) it waits for them;
 * (4) a barrier keeps anyone from starting the next epoch's requests before every target is
 * done, needed only when some requests were sent. NOPRECEDE skips (1)-(3).
 *
 * Locks: a member of this host takes the target's lock word itself (a CAS in the control
 * block; while it is taken, it registers in the word's waiters and waits for a WAKE); every
 * other origin sends LOCK, and the target's engine takes the same word for it, answering once
 * it has it. Unlock releases the word the same way, after a FLUSH when message operations went
 * to the target.
 */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  long long want;
} sfw_applied_arg;

static int sfw_cond_applied(sf_win *w, void *arg) { return w->done_total >= ((sfw_applied_arg *)arg)->want; }

static const char *sfw_what_applied(sf_win *w, void *arg) {
  static _Thread_local char buf[128];
  snprintf(buf, sizeof buf, "%lld more one-sided operations from the window's members", ((sfw_applied_arg *)arg)->want - w->done_total);
  return buf;
}

int sf_win_fence(sf_win *w, int assert) {
  int rc, any = 0;
  if ((rc = sfw_pending_err(w)) < 0) return rc;
  if (!(assert & SF_MODE_NOPRECEDE)) {
    sf_group g;
    sf_builtin_arg a = {SF_OP_SUM, SF_LLONG};
    long long *tot = malloc((size_t)w->size * sizeof *tot);
    sfw_applied_arg want;
    if (tot == NULL) return sfw_err(SF_ENOMEM, "fence: out of memory");
    if ((rc = sfw_wait_local(w, -1, "fence")) < 0) {
      free(tot);
      return rc;
    }
    g.size = w->size;
    g.rank = w->rank;
    g.ranks = w->world;
    g.ctx = w->ctx + 2;
    atomic_thread_fence(memory_order_seq_cst);
    sf_job_set_label(w->job, "fence");
    rc = sf_allreduce(w->job, &g, w->epoch_ops, tot, (size_t)w->size * sizeof *tot, sf_builtin_combine, &a);
    sf_job_set_label(w->job, NULL);
    if (rc < 0) {
      free(tot);
      return sfw_dp(rc, "fence");
    }
    memset(w->epoch_ops, 0, (size_t)w->size * sizeof *w->epoch_ops);
    for (int i = 0; i < w->size; i++) any |= tot[i] != 0;
    w->fence_base += tot[w->rank];
    free(tot);
    want.want = w->fence_base;
    if (w->done_total < want.want && (rc = sfw_wait_until(w, sfw_cond_applied, sfw_what_applied, &want, "fence")) < 0) return rc;
    if (any && (rc = sfw_barrier(w, "fence")) < 0) return rc;
    memset(w->dirty, 0, (size_t)w->size);
  } else if ((rc = sfw_barrier(w, "fence")) < 0) {
    return rc;
  }
  atomic_thread_fence(memory_order_seq_cst);
  w->fence_open = !(assert & SF_MODE_NOSUCCEED);
  return sfw_pending_err(w);
}

/* ---- locks ------------------------------------------------------------------------------------- */

typedef struct {
  int target, type;
} sfw_lock_arg;

static _Atomic uint32_t *sfw_waiters(sf_win *w, int target) { return &w->slots[target].waiters[w->rank / 32]; }

/* Take the lock word, or register as its waiter (cleared once taken). */
static int sfw_cond_lock(sf_win *w, void *arg) {
  sfw_lock_arg *a = arg;
  uint32_t bit = 1u << (w->rank % 32);
  if (sfw_try_lock(sfw_lockword(w, a->target), a->type, w->rank)) {
    atomic_fetch_and(sfw_waiters(w, a->target), ~bit);
    return 1;
  }
  atomic_fetch_or(sfw_waiters(w, a->target), bit);
  /* a release between the failed try and the registration sent no WAKE: try once more */
  if (sfw_try_lock(sfw_lockword(w, a->target), a->type, w->rank)) {
    atomic_fetch_and(sfw_waiters(w, a->target), ~bit);
    return 1;
  }
  return 0;
}

static const char *sfw_what_lock(sf_win *w, void *arg) {
  static _Thread_local char buf[160];
  sfw_lock_arg *a = arg;
  uint32_t v = atomic_load(sfw_lockword(w, a->target));
  if (v & SFW_EXCL)
    snprintf(buf, sizeof buf, "the lock of window rank %d, held exclusively by window rank %u", a->target, (v & ~SFW_EXCL) >> SFW_HOLDER_SHIFT);
  else
    snprintf(buf, sizeof buf, "the lock of window rank %d, held shared by %u ranks", a->target, v & SFW_SHARED_MASK);
  return buf;
}

/* Does this rank take target's lock itself? (a member of this host, with the control block) */
static int sfw_local_lock(const sf_win *w, int target) {
  return w->slots != NULL && w->direct && w->host[target] == w->host[w->rank];
}

static int sfw_lock1(sf_win *w, int type, int target, int assert, const char *fn) {
  int rc;
  if (assert & SF_MODE_NOCHECK) { /* the program promises no conflicting lock: take none */
    w->locks[target] = type;
    w->nocheck[target] = 1;
    return 0;
  }
  if (sfw_local_lock(w, target)) {
    sfw_lock_arg a = {target, type};
    if (!sfw_cond_lock(w, &a) && (rc = sfw_wait_until(w, sfw_cond_lock, sfw_what_lock, &a, fn)) < 0) {
      atomic_fetch_and(sfw_waiters(w, target), ~(1u << (w->rank % 32)));
      return rc;
    }
  } else if ((rc = sfw_send_ctl(w, target, SF_RMA_LOCK, type, 1, fn)) < 0) {
    return rc;
  }
  w->locks[target] = type;
  w->nocheck[target] = 0;
  atomic_thread_fence(memory_order_seq_cst);
  return 0;
}

/* End the access epoch to target: operations complete locally, then at the target. */
static int sfw_unlock1(sf_win *w, int target, const char *fn) {
  int rc = sfw_wait_local(w, target, fn);
  if (rc < 0) return rc;
  if (!w->nocheck[target] && !sfw_local_lock(w, target)) {
    rc = sfw_send_ctl(w, target, SF_RMA_UNLOCK, w->locks[target], 1, fn); /* answered once everything before it is applied */
  } else {
    if (w->dirty[target]) rc = sfw_send_ctl(w, target, SF_RMA_FLUSH, 0, 1, fn);
    atomic_thread_fence(memory_order_seq_cst);
    if (rc == 0 && !w->nocheck[target]) sfw_release(w, target, w->locks[target], w->rank);
  }
  if (rc < 0) return rc;
  w->locks[target] = 0;
  w->nocheck[target] = 0;
  w->dirty[target] = 0;
  atomic_thread_fence(memory_order_seq_cst);
  return 0;
}

int sf_win_lock(sf_win *w, int type, int target, int assert) {
  int rc;
  if ((rc = sfw_check_target(w, "lock", target)) < 0) return rc;
  if (type != SF_LOCK_SHARED && type != SF_LOCK_EXCLUSIVE) return sfw_err(SF_EINVAL, "lock: lock type %d is neither shared nor exclusive", type);
  if (w->locks[target] || w->lock_all) return sfw_err(SF_ESTATE, "lock: window rank %d is already locked by this rank", target);
  if ((rc = sfw_lock1(w, type, target, assert, "lock")) < 0) return rc;
  return sfw_pending_err(w);
}

int sf_win_unlock(sf_win *w, int target) {
  int rc;
  if ((rc = sfw_check_target(w, "unlock", target)) < 0) return rc;
  if (!w->locks[target] || w->lock_all) return sfw_err(SF_ESTATE, "unlock: window rank %d is not locked by lock", target);
  if ((rc = sfw_unlock1(w, target, "unlock")) < 0) return rc;
  return sfw_pending_err(w);
}

int sf_win_lock_all(sf_win *w, int assert) {
  if (w->lock_all) return sfw_err(SF_ESTATE, "lock_all: the window is already locked with lock_all");
  for (int r = 0; r < w->size; r++)
    if (w->locks[r]) return sfw_err(SF_ESTATE, "lock_all: window rank %d is locked by lock", r);
  for (int r = 0; r < w->size; r++) {
    int rc = sfw_lock1(w, SF_LOCK_SHARED, r, assert, "lock_all");
    if (rc < 0) {
      for (int k = 0; k < r; k++) sfw_unlock1(w, k, "lock_all");
      return rc;
    }
  }
  w->lock_all = 1;
  return sfw_pending_err(w);
}

int sf_win_unlock_all(sf_win *w) {
  int first = 0;
  if (!w->lock_all) return sfw_err(SF_ESTATE, "unlock_all: the window is not locked with lock_all");
  for (int r = 0; r < w->size; r++) {
    int rc = sfw_unlock1(w, r, "unlock_all");
    if (rc < 0 && first == 0) first = rc;
  }
  w->lock_all = 0;
  return first < 0 ? first : sfw_pending_err(w);
}

int sf_win_flush(sf_win *w, int target, int local_only) {
  const char *fn = local_only ? "flush_local" : "flush";
  int any = 0, rc;
  if (target >= 0 && (rc = sfw_check_target(w, fn, target)) < 0) return rc;
  for (int r = 0; r < w->size; r++) any |= w->locks[r] != 0;
  if (target >= 0 ? !w->locks[target] : !any) return sfw_err(SF_ESTATE, "%s: outside a passive-target epoch (lock or lock_all first)", fn);
  for (int r = target >= 0 ? target : 0; r < (target >= 0 ? target + 1 : w->size); r++) {
    if (!w->locks[r]) continue;
    if ((rc = sfw_wait_local(w, r, fn)) < 0) return rc;
    if (!local_only && w->dirty[r]) {
      if ((rc = sfw_send_ctl(w, r, SF_RMA_FLUSH, 0, 1, fn)) < 0) return rc;
      w->dirty[r] = 0;
    }
  }
  atomic_thread_fence(memory_order_seq_cst);
  return sfw_pending_err(w);
}

/* ---- post / start / complete / wait ------------------------------------------------------------ */

static int *sfw_ranks_copy(sf_win *w, const int *ranks, int n, const char *fn, int *rc) {
  int *r = malloc((size_t)(n > 0 ? n : 1) * sizeof *r);
  *rc = 0;
  if (r == NULL) {
    *rc = sfw_err(SF_ENOMEM, "%s: out of memory", fn);
    return NULL;
  }
  for (int i = 0; i < n; i++) {
    if (ranks[i] < 0 || ranks[i] >= w->size) {
      free(r);
      *rc = sfw_err(SF_ERANGE, "%s: group member %d is window rank %d, out of range for a window of %d ranks", fn, i, ranks[i], w->size);
      return NULL;
    }
    r[i] = ranks[i];
  }
  return r;
}

typedef struct {
  const int *ranks;
  int n;
  long long *have, *used;
  const char *whose;
} sfw_pscw_arg;

static int sfw_cond_pscw(sf_win *w, void *arg) {
  sfw_pscw_arg *a = arg;
  (void)w;
  for (int i = 0; i < a->n; i++)
    if (a->have[a->ranks[i]] <= a->used[a->ranks[i]]) return 0;
  return 1;
}

static const char *sfw_what_pscw(sf_win *w, void *arg) {
  static _Thread_local char buf[128];
  sfw_pscw_arg *a = arg;
  (void)w;
  for (int i = 0; i < a->n; i++)
    if (a->have[a->ranks[i]] <= a->used[a->ranks[i]]) {
      snprintf(buf, sizeof buf, "window rank %d's %s", a->ranks[i], a->whose);
      return buf;
    }
  return "the window's members";
}

int sf_win_post(sf_win *w, const int *ranks, int n, int assert) {
  int rc, *r;
  (void)assert;
  if (w->exposure) return sfw_err(SF_ESTATE, "post: an exposure epoch is already open (wait first)");
  if ((r = sfw_ranks_copy(w, ranks, n, "post", &rc)) == NULL) return rc;
  atomic_thread_fence(memory_order_seq_cst);
  for (int i = 0; i < n; i++)
    if ((rc = sfw_send_ctl(w, r[i], SF_RMA_POST, 0, 0, "post")) < 0) {
      free(r);
      return rc;
    }
  w->exposure = r;
  w->nexposure = n;
  return 0;
}

int sf_win_start(sf_win *w, const int *ranks, int n, int assert) {
  int rc, *r;
  sfw_pscw_arg a;
  (void)assert;
  if (w->access) return sfw_err(SF_ESTATE, "start: an access epoch is already open (complete first)");
  if ((r = sfw_ranks_copy(w, ranks, n, "start", &rc)) == NULL) return rc;
  /* wait for every target's post: from then on its memory may be accessed, also directly */
  a.ranks = r;
  a.n = n;
  a.have = w->posts;
  a.used = w->posts_used;
  a.whose = "post";
  if (!sfw_cond_pscw(w, &a) && (rc = sfw_wait_until(w, sfw_cond_pscw, sfw_what_pscw, &a, "start")) < 0) {
    free(r);
    return rc;
  }
  for (int i = 0; i < n; i++) w->posts_used[r[i]]++;
  atomic_thread_fence(memory_order_seq_cst);
  w->access = r;
  w->naccess = n;
  return sfw_pending_err(w);
}

int sf_win_complete(sf_win *w) {
  int rc;
  if (w->access == NULL) return sfw_err(SF_ESTATE, "complete: no access epoch (start first)");
  rc = sfw_wait_local(w, -1, "complete");
  atomic_thread_fence(memory_order_seq_cst);
  for (int i = 0; i < w->naccess && rc == 0; i++) {
    rc = sfw_send_ctl(w, w->access[i], SF_RMA_COMPLETE, 0, 0, "complete");
    w->dirty[w->access[i]] = 0;
  }
  free(w->access);
  w->access = NULL;
  w->naccess = 0;
  if (rc < 0) return rc;
  return sfw_pending_err(w);
}

int sf_win_wait(sf_win *w, int block) {
  sfw_pscw_arg a;
  int rc;
  if (w->exposure == NULL) return sfw_err(SF_ESTATE, "%s: no exposure epoch (post first)", block ? "wait" : "test");
  a.ranks = w->exposure;
  a.n = w->nexposure;
  a.have = w->completes;
  a.used = w->completes_used;
  a.whose = "complete";
  if (!block) {
    rc = sf_progress(w->job);
    if (rc < 0) return sfw_dp(rc, "test");
    if (!sfw_cond_pscw(w, &a)) return 0;
  } else if (!sfw_cond_pscw(w, &a) && (rc = sfw_wait_until(w, sfw_cond_pscw, sfw_what_pscw, &a, "wait")) < 0) {
    return rc;
  }
  for (int i = 0; i < a.n; i++) w->completes_used[a.ranks[i]]++;
  atomic_thread_fence(memory_order_seq_cst);
  free(w->exposure);
  w->exposure = NULL;
  w->nexposure = 0;
  rc = sfw_pending_err(w);
  return rc < 0 ? rc : 1;
}
