/*
 * win.c: window objects (creation, the host's shared mapping, free), this module's errors, and
 * the wait that blocks on any condition.
 *
 * Sharing (why a memfd opened through /proc): windows are made after the fork, so nothing made
 * before it can hold them. The host's first window member creates a memfd (memfd_create, sized
 * with ftruncate) and tells the others its pid and fd number; they open /proc/<pid>/fd/<fd>,
 * which needs only what ptrace's read mode needs (the same user), and every member maps it
 * MAP_SHARED. Once all have mapped it the fds are closed: the mappings keep the memory, and the
 * kernel frees it when the last member unmaps it or exits, so nothing is ever left in /dev/shm.
 * Where sharing fails on some host, no member maps anything: the window works by messages (and
 * SF_WIN_SHARED fails, naming the step that failed).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static _Thread_local char sfw_errbuf[512];

const char *sf_win_last_error(void) { return sfw_errbuf; }

int sfw_err(int code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(sfw_errbuf, sizeof sfw_errbuf, fmt, ap);
  va_end(ap);
  return code;
}

int sfw_dp(int rc, const char *what) { return sfw_err(rc, "%s: %s", what, sf_last_error()); }

/* An error the engine met while this rank was elsewhere, raised now (once). */
int sfw_pending_err(sf_win *w) {
  int e = w->err;
  if (e == 0) return 0;
  w->err = 0;
  return sfw_err(e, "%s", w->errmsg);
}

int sfw_check_target(const sf_win *w, const char *fn, int target) {
  if (target < 0 || target >= w->size) return sfw_err(SF_ERANGE, "%s: rank %d out of range for a window of %d ranks", fn, target, w->size);
  return 0;
}

/* ---- collectives of the window (ctx + 2) ----------------------------------------------------- */

static sf_group sfw_group(const sf_win *w) {
  sf_group g;
  g.size = w->size;
  g.rank = w->rank;
  g.ranks = w->world;
  g.ctx = w->ctx + 2;
  return g;
}

int sfw_barrier(sf_win *w, const char *fn) {
  sf_group g = sfw_group(w);
  int rc;
  sf_job_set_label(w->job, fn);
  rc = sf_barrier(w->job, &g);
  sf_job_set_label(w->job, NULL);
  return rc < 0 ? sfw_dp(rc, fn) : 0;
}

static int sfw_allgather(sf_win *w, const void *mine, void *all, size_t each, const char *fn) {
  sf_group g = sfw_group(w);
  size_t *lens = malloc((size_t)w->size * sizeof *lens), *displs = malloc((size_t)w->size * sizeof *displs);
  int rc;
  if (lens == NULL || displs == NULL) {
    free(lens);
    free(displs);
    return sfw_err(SF_ENOMEM, "%s: out of memory", fn);
  }
  for (int i = 0; i < w->size; i++) {
    lens[i] = each;
    displs[i] = (size_t)i * each;
  }
  sf_job_set_label(w->job, fn);
  rc = sf_allgatherv(w->job, &g, mine, each, all, lens, displs);
  sf_job_set_label(w->job, NULL);
  free(lens);
  free(displs);
  return rc < 0 ? sfw_dp(rc, fn) : 0;
}

/* Every member's 0/1 ANDed. */
static int sfw_all(sf_win *w, int mine, int *all, const char *fn) {
  sf_group g = sfw_group(w);
  long long in = mine, out = 0;
  sf_builtin_arg a = {SF_OP_LAND, SF_LLONG};
  int rc;
  sf_job_set_label(w->job, fn);
  rc = sf_allreduce(w->job, &g, &in, &out, sizeof in, sf_builtin_combine, &a);
  sf_job_set_label(w->job, NULL);
  if (rc < 0) return sfw_dp(rc, fn);
  *all = out != 0;
  return 0;
}

/* ---- the wait ---------------------------------------------------------------------------------- */

/*
 * Waits until cond(w, arg) holds, for conditions no single data-plane request stands for (an
 * answer arrived, a lock became free, enough operations were applied). It posts a receive on
 * the window's doorbell context (ctx + 3) and waits for it with sf_wait, so the data plane's
 * waiting applies unchanged: spin, then sleep, health checks, the wait timeout.
 * sf_win_progress evaluates cond after the engines ran and, once it holds, sends the 0-byte
 * message that completes the receive. cond may act (take a lock word): once it returned true
 * it is not asked again. A stale doorbell (left by a wait that failed after it rang) only wakes
 * the next wait early: it re-checks cond and waits again.
 */
int sfw_wait_until(sf_win *w, int (*cond)(sf_win *, void *), const char *(*what)(sf_win *, void *), void *arg, const char *fn) {
  int rc = sf_progress(w->job);
  if (rc < 0) return sfw_dp(rc, fn);
  if (cond(w, arg)) return 0;
  for (;;) {
    sf_req *door = NULL;
    rc = sf_irecv(w->job, NULL, 0, sf_job_rank(w->job), w->ctx + 3, SF_ANY_TAG, &door);
    if (rc < 0) return sfw_dp(rc, fn);
    w->blk.cond = cond;
    w->blk.arg = arg;
    w->blk.held = 0;
    w->blk.rung = 0;
    w->blk.bell = NULL;
    sf_job_set_label(w->job, fn);
    rc = sf_wait(w->job, door, NULL);
    sf_job_set_label(w->job, NULL);
    w->blk.cond = NULL;
    sf_req_free(w->job, door); /* withdrawn if the wait failed before the doorbell rang */
    if (w->blk.bell) sf_req_free(w->job, w->blk.bell);
    w->blk.bell = NULL;
    if (rc < 0) {
      /* The data plane names the wait as "... waiting for rank <this rank>" (the doorbell's
       * source): say what the caller was really waiting for. */
      const char *m = sf_last_error(), *at = strstr(m, " waiting for ");
      if (rc == SF_ETIMEDOUT && at && what) return sfw_err(rc, "%.*s waiting for %s", (int)(at - m), m, what(w, arg));
      return sfw_dp(rc, fn);
    }
    if (w->blk.held || cond(w, arg)) return 0;
  }
}

/* ---- creation ---------------------------------------------------------------------------------- */

static void sfw_release_mem(sf_win *w) {
  if (w == NULL) return;
  sfw_stop_target(w);
  if (w->shm) munmap(w->shm, w->shm_bytes);
  free(w->own);
  free(w->world);
  free(w->host);
  free(w->pid);
  free(w->base);
  free(w->bytes);
  free(w->unit);
  free(w->seg);
  free(w->epoch_ops);
  free(w->dirty);
  free(w->locks);
  free(w->nocheck);
  free(w->access);
  free(w->posts);
  free(w->posts_used);
  free(w->exposure);
  free(w->completes);
  free(w->completes_used);
  free(w->hbuf);
  while (w->lockq) {
    sfw_lockq *q = w->lockq;
    w->lockq = q->next;
    free(q);
  }
  free(w);
}

static size_t sfw_round(size_t n, size_t to) { return (n + to - 1) / to * to; }

/* What each member tells the others when a window is made. */
typedef struct {
  int64_t host, pid, bytes, unit, base;
} sfw_info;

/*
 * The host's shared mapping: the control block, then (allocate flavors) the segments of the
 * host's members. Every member learns whether every host managed; 0 then, or the step that
 * failed in *why with a negative return only for a failed collective.
 */
static int sfw_share(sf_win *w, int with_memory, char *why, size_t whylen, int *ok_all) {
  size_t page = (size_t)sysconf(_SC_PAGESIZE), total;
  int leader = -1, fd = -1, rc, ok = 1;
  int64_t mine[2] = {-1, -1}, *all = NULL;
  why[0] = 0;
  for (int i = 0; i < w->size; i++)
    if (w->host[i] == w->host[w->rank]) {
      leader = i;
      break;
    }
  total = sfw_round((size_t)w->size * sizeof(sfw_slot), page);
  for (int i = 0; i < w->size; i++) {
    if (w->host[i] != w->host[w->rank]) continue;
    if (with_memory) {
      w->seg[i] = total;
      total += w->flavor == SF_WIN_SHARED ? w->bytes[i] : sfw_round(w->bytes[i], page);
    }
  }
  total = sfw_round(total, page);
  if (w->rank == leader) {
    fd = memfd_create("sfmpi-window", MFD_CLOEXEC);
    if (fd < 0)
      snprintf(why, whylen, "memfd_create: %s", strerror(errno));
    else if (ftruncate(fd, (off_t)total) != 0)
      snprintf(why, whylen, "ftruncate of the window's memfd to %zu bytes: %s", total, strerror(errno));
    mine[0] = getpid();
    mine[1] = why[0] ? -1 : fd;
  }
  all = malloc((size_t)w->size * sizeof mine);
  if (all == NULL) {
    if (fd >= 0) close(fd);
    return sfw_err(SF_ENOMEM, "window: out of memory");
  }
  rc = sfw_allgather(w, mine, all, sizeof mine, "window creation");
  if (rc < 0) {
    if (fd >= 0) close(fd);
    free(all);
    return rc;
  }
  if (all[2 * leader + 1] < 0) {
    if (!why[0]) snprintf(why, whylen, "window rank %d could not make the shared memory", leader);
    ok = 0;
  } else {
    int mfd = fd;
    if (w->rank != leader) {
      char path[64];
      snprintf(path, sizeof path, "/proc/%lld/fd/%lld", (long long)all[2 * leader], (long long)all[2 * leader + 1]);
      mfd = open(path, O_RDWR | O_CLOEXEC);
      if (mfd < 0) {
        snprintf(why, whylen, "open %s (window rank %d's memfd): %s", path, leader, strerror(errno));
        ok = 0;
      }
    }
    if (mfd >= 0) {
      void *p = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
      if (p == MAP_FAILED) {
        snprintf(why, whylen, "mmap of the window's %zu-byte memfd: %s", total, strerror(errno));
        ok = 0;
      } else {
        w->shm = p;
        w->shm_bytes = total;
      }
      if (w->rank != leader) close(mfd);
    }
  }
  free(all);
  /* the leader closes its fd only once every member of its host has mapped it */
  rc = sfw_all(w, ok, ok_all, "window creation");
  if (fd >= 0) close(fd);
  if (rc < 0) return rc;
  if (!*ok_all) {
    if (w->shm) munmap(w->shm, w->shm_bytes);
    w->shm = NULL;
    w->shm_bytes = 0;
    if (ok) snprintf(why, whylen, "another member could not map the shared memory");
    return 0;
  }
  w->slots = (sfw_slot *)w->shm;
  return 0;
}

int sf_win_create(sf_job *job, const sf_win_options *o, sf_win **out) {
  sf_win *w = NULL;
  sfw_info mine, *all = NULL;
  char why[200] = "";
  int rc, i, ok_all = 0;
  const char *env;
  if (job == NULL || o == NULL || out == NULL) return sfw_err(SF_EINVAL, "window: NULL argument");
  *out = NULL;
  if (o->flavor < SF_WIN_CREATE || o->flavor > SF_WIN_SHARED) return sfw_err(SF_EINVAL, "window: unknown flavor %d", o->flavor);
  if (o->disp_unit == 0) return sfw_err(SF_EINVAL, "window: disp_unit must be positive");
  if (o->flavor == SF_WIN_CREATE && o->base == NULL && o->bytes > 0) return sfw_err(SF_EINVAL, "window: base is NULL for %zu bytes", o->bytes);
  if (o->group.size < 1 || o->group.size > SF_MAX_RANKS || o->group.rank < 0 || o->group.rank >= o->group.size)
    return sfw_err(SF_EINVAL, "window: a group of %d members with this rank at %d", o->group.size, o->group.rank);
  w = calloc(1, sizeof *w);
  if (w == NULL) return sfw_err(SF_ENOMEM, "window: out of memory");
  w->job = job;
  w->size = o->group.size;
  w->rank = o->group.rank;
  w->flavor = o->flavor;
  w->ctx = o->group.ctx;
  env = getenv("SFMPI_RMA_DIRECT");
  w->direct = o->direct && !(env && env[0] == '0');
  env = getenv("SFMPI_CMA");
  w->cma = w->direct && !(env && env[0] == '0');
  w->world = malloc((size_t)w->size * sizeof *w->world);
  w->host = malloc((size_t)w->size * sizeof *w->host);
  w->pid = calloc((size_t)w->size, sizeof *w->pid);
  w->base = calloc((size_t)w->size, sizeof *w->base);
  w->bytes = calloc((size_t)w->size, sizeof *w->bytes);
  w->unit = calloc((size_t)w->size, sizeof *w->unit);
  w->seg = calloc((size_t)w->size, sizeof *w->seg);
  w->epoch_ops = calloc((size_t)w->size, sizeof *w->epoch_ops);
  w->dirty = calloc((size_t)w->size, 1);
  w->locks = calloc((size_t)w->size, sizeof *w->locks);
  w->nocheck = calloc((size_t)w->size, 1);
  w->posts = calloc((size_t)w->size, sizeof *w->posts);
  w->posts_used = calloc((size_t)w->size, sizeof *w->posts_used);
  w->completes = calloc((size_t)w->size, sizeof *w->completes);
  w->completes_used = calloc((size_t)w->size, sizeof *w->completes_used);
  w->hbuf = malloc(SF_WIN_HBUF);
  all = malloc((size_t)w->size * sizeof *all);
  if (!w->world || !w->host || !w->pid || !w->base || !w->bytes || !w->unit || !w->seg || !w->epoch_ops || !w->dirty ||
      !w->locks || !w->nocheck || !w->posts || !w->posts_used || !w->completes || !w->completes_used || !w->hbuf || !all) {
    rc = sfw_err(SF_ENOMEM, "window: out of memory");
    goto fail;
  }
  for (i = 0; i < w->size; i++) {
    w->world[i] = o->group.ranks ? o->group.ranks[i] : i;
    if (w->world[i] < 0 || w->world[i] >= sf_job_size(job)) {
      rc = sfw_err(SF_EINVAL, "window: member %d is world rank %d, not a rank of the job", i, w->world[i]);
      goto fail;
    }
  }
  mine.host = sf_job_host(job);
  mine.pid = getpid();
  mine.bytes = (int64_t)o->bytes;
  mine.unit = (int64_t)o->disp_unit;
  mine.base = (int64_t)(uintptr_t)(o->flavor == SF_WIN_CREATE ? o->base : NULL);
  rc = sfw_allgather(w, &mine, all, sizeof mine, "window creation");
  if (rc < 0) goto fail;
  for (i = 0; i < w->size; i++) {
    w->host[i] = (int)all[i].host;
    w->pid[i] = (pid_t)all[i].pid;
    w->bytes[i] = (size_t)all[i].bytes;
    w->unit[i] = (size_t)all[i].unit;
    w->base[i] = (uint64_t)all[i].base;
  }
  if (o->flavor == SF_WIN_SHARED)
    for (i = 0; i < w->size; i++)
      if (w->host[i] != w->host[w->rank]) {
        rc = sfw_err(SF_EINVAL, "shared window: window rank %d (world rank %d) is on another host; every member of a shared window must be on one host",
                     i, w->world[i]);
        goto fail;
      }
  if (w->direct || o->flavor == SF_WIN_SHARED) {
    rc = sfw_share(w, o->flavor != SF_WIN_CREATE, why, sizeof why, &ok_all);
    if (rc < 0) goto fail;
    if (!ok_all && o->flavor == SF_WIN_SHARED) {
      rc = sfw_err(SF_ESYS, "shared window: cannot share the memory between the ranks: %s", why[0] ? why : "another rank failed");
      goto fail;
    }
  }
  if (o->flavor == SF_WIN_CREATE) {
    w->mem = o->base;
  } else if (w->shm && (w->direct || o->flavor == SF_WIN_SHARED)) {
    w->mem = w->shm + w->seg[w->rank];
  } else {
    w->own = calloc(1, o->bytes ? o->bytes : 1);
    if (w->own == NULL) {
      rc = sfw_err(SF_ENOMEM, "window: out of memory for %zu bytes", o->bytes);
      goto fail;
    }
    w->mem = w->own;
  }
  if (!w->direct && o->flavor == SF_WIN_SHARED) w->slots = NULL; /* shared memory, but every operation by message */
  w->fence_open = 0;
  sfw_start_target(w);
  free(all);
  *out = w;
  return 0;
fail:
  free(all);
  sfw_release_mem(w);
  return rc;
}

int sf_win_free(sf_win *w) {
  int rc;
  if (w == NULL) return sfw_err(SF_EINVAL, "window free: NULL window");
  rc = sfw_wait_local(w, -1, "window free");
  if (rc == 0) rc = sfw_barrier(w, "window free");
  sfw_release_mem(w);
  return rc;
}

void *sf_win_memory(const sf_win *w, int rank, size_t *bytes) {
  if (rank < 0 || rank >= w->size) return NULL;
  if (bytes) *bytes = w->bytes[rank];
  if (rank == w->rank) return w->mem;
  if (w->flavor == SF_WIN_SHARED && w->shm) return w->shm + w->seg[rank];
  return NULL;
}

size_t sf_win_bytes(const sf_win *w, int rank) { return rank >= 0 && rank < w->size ? w->bytes[rank] : 0; }
size_t sf_win_disp_unit(const sf_win *w, int rank) { return rank >= 0 && rank < w->size ? w->unit[rank] : 0; }

int sf_win_direct(const sf_win *w, int target) {
  if (target < 0 || target >= w->size) return 0;
  if (target == w->rank) return 1;
  if (!w->direct || w->host[target] != w->host[w->rank]) return 0;
  if (w->shm && w->flavor != SF_WIN_CREATE) return 1;
  return w->cma && w->slots != NULL;
}

void sf_win_sync(sf_win *w) {
  (void)w;
  atomic_thread_fence(memory_order_seq_cst);
}

int sf_win_progress(sf_win *w) {
  sfw_poll(w);
  if (w->blk.cond && !w->blk.held && w->blk.cond(w, w->blk.arg)) w->blk.held = 1;
  if (w->blk.cond && w->blk.held && !w->blk.rung) {
    /* An eager 0-byte message to ourselves completes the doorbell receive at the next drain.
     * Failing to send only delays the wake-up to the next progress. */
    if (sf_isend(w->job, NULL, 0, sf_job_rank(w->job), w->ctx + 3, 0, 0, &w->blk.bell) == 0) {
      w->blk.rung = 1;
      return 1;
    }
  }
  return 0;
}
