/*
 * winsync.c: one-sided synchronisation: fences, locks (passive target), flushes, and
 * post/start/complete/wait (general active target).
 *
 * Completion at the target rests on one property of the engine (rma.c): a target applies the
 * requests of one origin in the order sent, one at a time. So an answered FLUSH or UNLOCK
 * means every earlier request of that origin is applied, and a COMPLETE that the target has
 * taken means the whole access epoch is. Direct copies (rma.c) are complete when they return.
 *
 * MPI_Win_fence: (1) this rank's requests in flight complete locally; (2) an allreduce of the
 * requests each member sent to each target since the last fence tells every target how many
 * it must have applied; (3) it waits for them; (4) a barrier keeps anyone from starting the
 * next epoch's requests before every target is done (needed only when some requests were
 * sent: direct copies are complete, and the allreduce already waited for every member).
 * MPI_MODE_NOPRECEDE skips (1)-(4) but the barrier's role is then the allreduce's; the other
 * assertions are accepted and not needed.
 *
 * Progress: a target applies requests while it is inside any MPI call (as MPICH without an
 * asynchronous progress thread): a passive-target lock or accumulate waits until the target
 * next calls MPI. Direct puts and gets need nothing from the target.
 */
#include "win.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  sfm_win *w;
  long long want;
} sfm_applied_arg;

static int sfm_cond_applied(void *arg) {
  sfm_applied_arg *a = arg;
  return a->w->done_total >= a->want;
}

static const char *sfm_what_applied(void *arg) {
  static char buf[128];
  sfm_applied_arg *a = arg;
  snprintf(buf, sizeof buf, "%lld more one-sided operations from the window's members", a->want - a->w->done_total);
  return buf;
}

/* An error the engine met while this rank was elsewhere, raised now. */
static int sfm_win_pending_err(sfm_win *w) {
  int e = w->err;
  if (e == MPI_SUCCESS) return MPI_SUCCESS;
  w->err = MPI_SUCCESS;
  return sfm_raise_on(SFM_OBJ_WIN, w->handle, e);
}

#define SFM_WRET(w, code) return sfm_raise_on(SFM_OBJ_WIN, (w)->handle, (code))

int MPI_Win_fence(int assert, MPI_Win win) {
  long long *tot = NULL;
  int rc, any = 0;
  SFM_WIN("MPI_Win_fence", win, w);
  if ((rc = sfm_win_pending_err(w)) != MPI_SUCCESS) return rc;
  if (!(assert & MPI_MODE_NOPRECEDE)) {
    sfm_applied_arg a;
    rc = sfm_rma_wait_local(w, -1, "MPI_Win_fence");
    if (rc != MPI_SUCCESS) SFM_WRET(w, rc);
    tot = malloc((size_t)w->size * sizeof *tot);
    if (tot == NULL) return sfm_werror(w, "MPI_Win_fence", MPI_ERR_NO_MEM, "out of memory");
    rc = sfm_win_allreduce_ll(w, w->epoch_ops, tot, w->size, SF_OP_SUM, "MPI_Win_fence");
    if (rc != MPI_SUCCESS) {
      free(tot);
      SFM_WRET(w, rc);
    }
    memset(w->epoch_ops, 0, (size_t)w->size * sizeof *w->epoch_ops);
    for (int i = 0; i < w->size; i++) any |= tot[i] != 0;
    w->fence_base += tot[w->rank];
    free(tot);
    a.w = w;
    a.want = w->fence_base;
    if (w->done_total < a.want) {
      rc = sfm_wait_until(sfm_cond_applied, sfm_what_applied, &a, "MPI_Win_fence");
      if (rc != MPI_SUCCESS) SFM_WRET(w, rc);
    }
    if (any && (rc = sfm_win_barrier(w, "MPI_Win_fence")) != MPI_SUCCESS) SFM_WRET(w, rc);
    memset(w->dirty, 0, (size_t)w->size);
  } else if ((rc = sfm_win_barrier(w, "MPI_Win_fence")) != MPI_SUCCESS) {
    SFM_WRET(w, rc);
  }
  atomic_thread_fence(memory_order_seq_cst);
  w->fence_open = !(assert & MPI_MODE_NOSUCCEED);
  return sfm_win_pending_err(w);
}

static int sfm_check_target(sfm_win *w, const char *fn, int rank) {
  if (rank < 0 || rank >= w->size)
    return sfm_werror(w, fn, MPI_ERR_RANK, "rank %d out of range for a window of %d ranks", rank, w->size);
  return MPI_SUCCESS;
}

static int sfm_lock1(sfm_win *w, int type, int rank, int assert, const char *fn) {
  int granted = 0, rc;
  if (assert & MPI_MODE_NOCHECK) { /* the program promises no conflicting lock: take none */
    w->locks[rank] = type;
    w->nocheck[rank] = 1;
    return MPI_SUCCESS;
  }
  rc = sfm_rma_send_ctl(w, rank, SFM_RMA_LOCK, type, &granted, fn);
  if (rc != MPI_SUCCESS) return rc;
  w->locks[rank] = type;
  w->nocheck[rank] = 0;
  atomic_thread_fence(memory_order_seq_cst);
  return MPI_SUCCESS;
}

/* End the access epoch to rank: operations complete locally, then at the target. */
static int sfm_unlock1(sfm_win *w, int rank, const char *fn) {
  int acked = 0, rc = sfm_rma_wait_local(w, rank, fn);
  if (rc != MPI_SUCCESS) return rc;
  if (!w->nocheck[rank])
    rc = sfm_rma_send_ctl(w, rank, SFM_RMA_UNLOCK, 0, &acked, fn);
  else if (w->dirty[rank])
    rc = sfm_rma_send_ctl(w, rank, SFM_RMA_FLUSH, 0, &acked, fn);
  if (rc != MPI_SUCCESS) return rc;
  w->locks[rank] = 0;
  w->nocheck[rank] = 0;
  w->dirty[rank] = 0;
  atomic_thread_fence(memory_order_seq_cst);
  return MPI_SUCCESS;
}

int MPI_Win_lock(int lock_type, int rank, int assert, MPI_Win win) {
  int rc;
  SFM_WIN("MPI_Win_lock", win, w);
  if ((rc = sfm_check_target(w, "MPI_Win_lock", rank)) != MPI_SUCCESS) return rc;
  if (lock_type != MPI_LOCK_SHARED && lock_type != MPI_LOCK_EXCLUSIVE)
    return sfm_werror(w, "MPI_Win_lock", MPI_ERR_LOCKTYPE, "lock_type %d is neither MPI_LOCK_SHARED nor MPI_LOCK_EXCLUSIVE", lock_type);
  if (w->locks[rank] || w->lock_all)
    return sfm_werror(w, "MPI_Win_lock", MPI_ERR_RMA_SYNC, "window rank %d is already locked by this rank", rank);
  rc = sfm_lock1(w, lock_type, rank, assert, "MPI_Win_lock");
  if (rc != MPI_SUCCESS) SFM_WRET(w, rc);
  return sfm_win_pending_err(w);
}

int MPI_Win_unlock(int rank, MPI_Win win) {
  int rc;
  SFM_WIN("MPI_Win_unlock", win, w);
  if ((rc = sfm_check_target(w, "MPI_Win_unlock", rank)) != MPI_SUCCESS) return rc;
  if (!w->locks[rank] || w->lock_all)
    return sfm_werror(w, "MPI_Win_unlock", MPI_ERR_RMA_SYNC, "window rank %d is not locked by MPI_Win_lock", rank);
  rc = sfm_unlock1(w, rank, "MPI_Win_unlock");
  if (rc != MPI_SUCCESS) SFM_WRET(w, rc);
  return sfm_win_pending_err(w);
}

int MPI_Win_lock_all(int assert, MPI_Win win) {
  SFM_WIN("MPI_Win_lock_all", win, w);
  if (w->lock_all) return sfm_werror(w, "MPI_Win_lock_all", MPI_ERR_RMA_SYNC, "the window is already locked with MPI_Win_lock_all");
  for (int r = 0; r < w->size; r++)
    if (w->locks[r]) return sfm_werror(w, "MPI_Win_lock_all", MPI_ERR_RMA_SYNC, "window rank %d is locked by MPI_Win_lock", r);
  for (int r = 0; r < w->size; r++) {
    int rc = sfm_lock1(w, MPI_LOCK_SHARED, r, assert, "MPI_Win_lock_all");
    if (rc != MPI_SUCCESS) SFM_WRET(w, rc);
  }
  w->lock_all = 1;
  return sfm_win_pending_err(w);
}

int MPI_Win_unlock_all(MPI_Win win) {
  SFM_WIN("MPI_Win_unlock_all", win, w);
  if (!w->lock_all) return sfm_werror(w, "MPI_Win_unlock_all", MPI_ERR_RMA_SYNC, "the window is not locked with MPI_Win_lock_all");
  for (int r = 0; r < w->size; r++) {
    int rc = sfm_unlock1(w, r, "MPI_Win_unlock_all");
    if (rc != MPI_SUCCESS) SFM_WRET(w, rc);
  }
  w->lock_all = 0;
  return sfm_win_pending_err(w);
}

/* Flush to rank: complete locally; then, unless only direct copies went there, ask the target. */
static int sfm_flush1(sfm_win *w, int rank, int local_only, const char *fn) {
  int acked = 0, rc = sfm_rma_wait_local(w, rank, fn);
  if (rc != MPI_SUCCESS || local_only) return rc;
  if (w->dirty[rank]) {
    rc = sfm_rma_send_ctl(w, rank, SFM_RMA_FLUSH, 0, &acked, fn);
    if (rc != MPI_SUCCESS) return rc;
    w->dirty[rank] = 0;
  }
  atomic_thread_fence(memory_order_seq_cst);
  return MPI_SUCCESS;
}

static int sfm_flush_call(MPI_Win win, int rank, int all, int local_only, const char *fn) {
  int rc;
  SFM_WIN(fn, win, w);
  if (!all && (rc = sfm_check_target(w, fn, rank)) != MPI_SUCCESS) return rc;
  if (!w->lock_all && (all ? 0 : !w->locks[rank])) {
    int any = 0;
    for (int r = 0; r < w->size; r++) any |= w->locks[r] != 0;
    if (!all || !any) return sfm_werror(w, fn, MPI_ERR_RMA_SYNC, "flush outside a passive-target epoch (MPI_Win_lock/lock_all)");
  }
  for (int r = all ? 0 : rank; r < (all ? w->size : rank + 1); r++) {
    if (all && !w->locks[r]) continue;
    rc = sfm_flush1(w, r, local_only, fn);
    if (rc != MPI_SUCCESS) SFM_WRET(w, rc);
  }
  return sfm_win_pending_err(w);
}

int MPI_Win_flush(int rank, MPI_Win win) { return sfm_flush_call(win, rank, 0, 0, "MPI_Win_flush"); }
int MPI_Win_flush_all(MPI_Win win) { return sfm_flush_call(win, 0, 1, 0, "MPI_Win_flush_all"); }
int MPI_Win_flush_local(int rank, MPI_Win win) { return sfm_flush_call(win, rank, 0, 1, "MPI_Win_flush_local"); }
int MPI_Win_flush_local_all(MPI_Win win) { return sfm_flush_call(win, 0, 1, 1, "MPI_Win_flush_local_all"); }

/* One copy of memory (MPI_WIN_UNIFIED): a memory barrier orders this rank's loads and stores
 * against the others' in a shared window. */
int MPI_Win_sync(MPI_Win win) {
  SFM_WIN("MPI_Win_sync", win, w);
  (void)w;
  atomic_thread_fence(memory_order_seq_cst);
  return MPI_SUCCESS;
}

/* ---- post / start / complete / wait ------------------------------------------------------------ */

/* The window ranks of a group's members; -1 in *bad when one is not in the window. */
static int *sfm_group_in_win(sfm_win *w, MPI_Group group, int *n, int *bad) {
  sfm_group *g = group == MPI_GROUP_EMPTY ? &sfm.groups[MPI_GROUP_EMPTY] : sfm_group_get(group);
  int *r;
  *bad = -2;
  if (g == NULL) return NULL;
  r = malloc((size_t)(g->size + 1) * sizeof *r);
  if (r == NULL) return NULL;
  *bad = -1;
  for (int i = 0; i < g->size; i++) {
    r[i] = -1;
    for (int k = 0; k < w->size; k++)
      if (w->world[k] == g->world[i]) r[i] = k;
    if (r[i] < 0) *bad = i;
  }
  *n = g->size;
  return r;
}

int MPI_Win_post(MPI_Group group, int assert, MPI_Win win) {
  int n, bad, *ranks, rc;
  (void)assert;
  SFM_WIN("MPI_Win_post", win, w);
  if (w->exposure) return sfm_werror(w, "MPI_Win_post", MPI_ERR_RMA_SYNC, "an exposure epoch is already open (MPI_Win_wait first)");
  ranks = sfm_group_in_win(w, group, &n, &bad);
  if (ranks == NULL) return sfm_werror(w, "MPI_Win_post", bad == -2 ? MPI_ERR_GROUP : MPI_ERR_NO_MEM, "invalid group %d", group);
  if (bad >= 0) {
    free(ranks);
    return sfm_werror(w, "MPI_Win_post", MPI_ERR_GROUP, "member %d of the group is not in the window", bad);
  }
  atomic_thread_fence(memory_order_seq_cst);
  for (int i = 0; i < n; i++) {
    rc = sfm_rma_send_ctl(w, ranks[i], SFM_RMA_POST, 0, NULL, "MPI_Win_post");
    if (rc != MPI_SUCCESS) {
      free(ranks);
      SFM_WRET(w, rc);
    }
  }
  w->exposure = ranks;
  w->nexposure = n;
  return MPI_SUCCESS;
}

typedef struct {
  sfm_win *w;
  const int *ranks;
  int n;
  long long *have, *used;
} sfm_pscw_arg;

static int sfm_cond_pscw(void *arg) {
  sfm_pscw_arg *a = arg;
  for (int i = 0; i < a->n; i++)
    if (a->have[a->ranks[i]] <= a->used[a->ranks[i]]) return 0;
  return 1;
}

static const char *sfm_what_pscw(void *arg) {
  static char buf[128];
  sfm_pscw_arg *a = arg;
  for (int i = 0; i < a->n; i++)
    if (a->have[a->ranks[i]] <= a->used[a->ranks[i]]) {
      snprintf(buf, sizeof buf, "window rank %d's %s", a->ranks[i], a->have == a->w->posts ? "MPI_Win_post" : "MPI_Win_complete");
      return buf;
    }
  return "the window's members";
}

static int sfm_pscw_wait(sfm_win *w, const int *ranks, int n, long long *have, long long *used, int block, int *flag,
                         const char *fn) {
  sfm_pscw_arg a = {w, ranks, n, have, used};
  int rc;
  if (!block) {
    rc = sf_progress(sfm.job);
    if (rc < 0) return sfm_dp_code(fn, rc);
    *flag = sfm_cond_pscw(&a);
    if (!*flag) return MPI_SUCCESS;
  } else if (!sfm_cond_pscw(&a)) {
    rc = sfm_wait_until(sfm_cond_pscw, sfm_what_pscw, &a, fn);
    if (rc != MPI_SUCCESS) return rc;
  }
  for (int i = 0; i < n; i++) used[ranks[i]]++;
  if (flag) *flag = 1;
  atomic_thread_fence(memory_order_seq_cst);
  return MPI_SUCCESS;
}

int MPI_Win_start(MPI_Group group, int assert, MPI_Win win) {
  int n, bad, *ranks, rc;
  (void)assert;
  SFM_WIN("MPI_Win_start", win, w);
  if (w->access) return sfm_werror(w, "MPI_Win_start", MPI_ERR_RMA_SYNC, "an access epoch is already open (MPI_Win_complete first)");
  ranks = sfm_group_in_win(w, group, &n, &bad);
  if (ranks == NULL) return sfm_werror(w, "MPI_Win_start", bad == -2 ? MPI_ERR_GROUP : MPI_ERR_NO_MEM, "invalid group %d", group);
  if (bad >= 0) {
    free(ranks);
    return sfm_werror(w, "MPI_Win_start", MPI_ERR_GROUP, "member %d of the group is not in the window", bad);
  }
  /* wait for every target's post: from then on its memory may be accessed, also directly */
  rc = sfm_pscw_wait(w, ranks, n, w->posts, w->posts_used, 1, NULL, "MPI_Win_start");
  if (rc != MPI_SUCCESS) {
    free(ranks);
    SFM_WRET(w, rc);
  }
  w->access = ranks;
  w->naccess = n;
  return sfm_win_pending_err(w);
}

int MPI_Win_complete(MPI_Win win) {
  int rc;
  SFM_WIN("MPI_Win_complete", win, w);
  if (w->access == NULL) return sfm_werror(w, "MPI_Win_complete", MPI_ERR_RMA_SYNC, "no access epoch (MPI_Win_start first)");
  rc = sfm_rma_wait_local(w, -1, "MPI_Win_complete");
  atomic_thread_fence(memory_order_seq_cst);
  for (int i = 0; i < w->naccess && rc == MPI_SUCCESS; i++) {
    rc = sfm_rma_send_ctl(w, w->access[i], SFM_RMA_COMPLETE, 0, NULL, "MPI_Win_complete");
    w->dirty[w->access[i]] = 0;
  }
  free(w->access);
  w->access = NULL;
  w->naccess = 0;
  if (rc != MPI_SUCCESS) SFM_WRET(w, rc);
  return sfm_win_pending_err(w);
}

static int sfm_win_wait_or_test(MPI_Win win, int block, int *flag, const char *fn) {
  int rc, f = 0;
  SFM_WIN(fn, win, w);
  if (w->exposure == NULL) return sfm_werror(w, fn, MPI_ERR_RMA_SYNC, "no exposure epoch (MPI_Win_post first)");
  rc = sfm_pscw_wait(w, w->exposure, w->nexposure, w->completes, w->completes_used, block, &f, fn);
  if (rc != MPI_SUCCESS) SFM_WRET(w, rc);
  if (flag) *flag = f;
  if (f) {
    free(w->exposure);
    w->exposure = NULL;
    w->nexposure = 0;
  }
  return sfm_win_pending_err(w);
}

int MPI_Win_wait(MPI_Win win) { return sfm_win_wait_or_test(win, 1, NULL, "MPI_Win_wait"); }

int MPI_Win_test(MPI_Win win, int *flag) {
  if (flag == NULL) return sfm_error(MPI_COMM_WORLD, "MPI_Win_test", MPI_ERR_ARG, "flag is NULL");
  return sfm_win_wait_or_test(win, 0, flag, "MPI_Win_test");
}
