/*
 * win.c: one-sided window objects: MPI_Win_create / allocate / allocate_shared / free,
 * MPI_Win_shared_query, groups, names, info, attributes, the window table.
 *
 * Memory shared between forked ranks (MPI_Win_allocate_shared, and MPI_Win_allocate, whose
 * memory every member may then copy to and from directly): the window's rank 0 creates a memfd
 * (memfd_create, sized with ftruncate) after the fork and broadcasts its pid and fd number; the
 * others open /proc/<pid>/fd/<fd>, which needs only what ptrace's read mode needs (the same
 * user), and every member maps the whole file MAP_SHARED. Once all have mapped it, the fds are
 * closed: the mapping keeps the memory, and the kernel frees it when the last member unmaps it
 * (MPI_Win_free) or exits, so nothing can be left behind in /dev/shm. Where sharing fails,
 * MPI_Win_allocate falls back to private memory (reached by messages or process_vm_*) and
 * MPI_Win_allocate_shared fails with MPI_ERR_RMA_SHARED naming the failing step.
 */
#include "win.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

sfm_win *sfm_win_get(MPI_Win w) {
  if (w <= 0 || w >= sfm.nwins) return NULL;
  return sfm.wins[w];
}

MPI_Errhandler *sfm_win_errh(MPI_Win win) {
  sfm_win *w = sfm_win_get(win);
  return w ? &w->errh : NULL;
}

sfm_attrs *sfm_win_attrs(MPI_Win win) {
  sfm_win *w = sfm_win_get(win);
  return w ? &w->attrs : NULL;
}

/* The window's collectives: its members, in its own context. */
static sf_group sfm_win_group(const sfm_win *w) {
  sf_group g;
  g.size = w->size;
  g.rank = w->rank;
  g.ranks = w->world;
  g.ctx = w->ctx + 2;
  return g;
}

int sfm_win_barrier(sfm_win *w, const char *fn) {
  sf_group g = sfm_win_group(w);
  int rc;
  sf_job_set_label(sfm.job, fn);
  rc = sf_barrier(sfm.job, &g);
  sf_job_set_label(sfm.job, NULL);
  return rc < 0 ? sfm_dp_code(fn, rc) : MPI_SUCCESS;
}

int sfm_win_allreduce_ll(sfm_win *w, const long long *in, long long *out, int n, sf_op op, const char *fn) {
  sf_group g = sfm_win_group(w);
  sf_builtin_arg a;
  int rc;
  a.op = op;
  a.type = SF_LLONG;
  sf_job_set_label(sfm.job, fn);
  rc = sf_allreduce(sfm.job, &g, in, out, (size_t)n * sizeof *in, sf_builtin_combine, &a);
  sf_job_set_label(sfm.job, NULL);
  return rc < 0 ? sfm_dp_code(fn, rc) : MPI_SUCCESS;
}

static void sfm_win_release(sfm_win *w) {
  if (w == NULL) return;
  sfm_rma_stop_target(w);
  if (w->shm) munmap(w->shm, w->shm_bytes);
  free(w->own_mem);
  if (w->info != MPI_INFO_NULL) MPI_Info_free(&w->info);
  free(w->world);
  free(w->bases);
  free(w->sizes);
  free(w->units);
  free(w->shm_off);
  free(w->epoch_ops);
  free(w->dirty);
  free(w->locks);
  free(w->nocheck);
  free(w->access);
  free(w->posts);
  free(w->posts_used);
  free(w->hbuf);
  free(w->exposure);
  free(w->completes);
  free(w->completes_used);
  while (w->lockq) {
    sfm_lockwait *q = w->lockq;
    w->lockq = q->next;
    free(q);
  }
  free(w);
}

/* Map the members' memory in one memfd shared by all: member i at shm_off[i] (page-aligned
 * for Win_allocate, back to back for Win_allocate_shared, as MPI's contiguous default says).
 * Returns MPI_SUCCESS, or a code saying which step failed (every member returns the same
 * outcome: they agree on it). */
static int sfm_win_share(sfm_win *w, int contiguous, const char *fn) {
  sf_group g = sfm_win_group(w);
  long long info[3] = {0, -1, 0}; /* pid, fd, failed */
  char why[160] = "";
  size_t total = 0, page = (size_t)sysconf(_SC_PAGESIZE);
  int fd = -1, rc, ok, all_ok;
  long long mine, agreed;
  for (int i = 0; i < w->size; i++) {
    w->shm_off[i] = (MPI_Aint)total;
    total += contiguous ? (size_t)w->sizes[i] : ((size_t)w->sizes[i] + page - 1) / page * page;
  }
  if (total == 0) return MPI_SUCCESS;
  if (w->rank == 0) {
    fd = memfd_create("sfmpi-window", MFD_CLOEXEC);
    if (fd < 0)
      snprintf(why, sizeof why, "memfd_create: %s", strerror(errno));
    else if (ftruncate(fd, (off_t)total) != 0)
      snprintf(why, sizeof why, "ftruncate of the memfd to %zu bytes: %s", total, strerror(errno));
    info[0] = getpid();
    info[1] = fd;
    info[2] = why[0] != 0;
  }
  rc = sf_bcast(sfm.job, &g, info, sizeof info, 0);
  if (rc < 0) {
    if (fd >= 0) close(fd);
    return sfm_dp_code(fn, rc);
  }
  if (!info[2]) {
    int mfd = fd;
    if (w->rank != 0) {
      char path[64];
      snprintf(path, sizeof path, "/proc/%lld/fd/%lld", info[0], info[1]);
      mfd = open(path, O_RDWR | O_CLOEXEC);
      if (mfd < 0) snprintf(why, sizeof why, "open %s (rank 0's memfd): %s", path, strerror(errno));
    }
    if (mfd >= 0) {
      void *p = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
      if (p == MAP_FAILED)
        snprintf(why, sizeof why, "mmap of the %zu-byte memfd: %s", total, strerror(errno));
      else {
        w->shm = p;
        w->shm_bytes = total;
      }
      if (w->rank != 0) close(mfd);
    }
  }
  /* every member learns whether all of them mapped it; rank 0 closes its fd only then */
  ok = why[0] == 0;
  mine = ok;
  {
    sf_builtin_arg a = {SF_OP_LAND, SF_LLONG};
    rc = sf_allreduce(sfm.job, &g, &mine, &agreed, sizeof mine, sf_builtin_combine, &a);
  }
  all_ok = rc >= 0 && agreed;
  if (fd >= 0) close(fd);
  if (rc < 0) return sfm_dp_code(fn, rc);
  if (!all_ok) {
    if (w->shm) munmap(w->shm, w->shm_bytes);
    w->shm = NULL;
    w->shm_bytes = 0;
    return sfm_code(MPI_ERR_RMA_SHARED, "%s: cannot share the window's memory between the ranks%s%s", fn, why[0] ? ": " : "",
                    why[0] ? why : " (another rank failed)");
  }
  return MPI_SUCCESS;
}

/* Make a window over comm: agree on a context block, exchange every member's size, unit and
 * base, map shared memory when asked (share: 0 no, 1 if possible, 2 required), start the
 * target side. mem: the memory for MPI_Win_create (share 0). */
static int sfm_win_new(MPI_Comm comm, void *mem, MPI_Aint size, int disp_unit, MPI_Info info, int flavor, int share,
                       MPI_Win *out, const char *fn) {
  sfm_win *w = NULL;
  sf_group g;
  uint32_t ctx;
  size_t *lens = NULL, *displs = NULL;
  long long mine[3], *all = NULL;
  int rc, i;
  SFM_COMM(fn, comm, c);
  if (size < 0) return sfm_error(comm, fn, MPI_ERR_SIZE, "size %ld is negative", (long)size);
  if (disp_unit <= 0) return sfm_error(comm, fn, MPI_ERR_DISP, "disp_unit %d must be positive", disp_unit);
  if (out == NULL) return sfm_error(comm, fn, MPI_ERR_ARG, "win is NULL");
  if (mem == NULL && size > 0 && share == 0) return sfm_error(comm, fn, MPI_ERR_BASE, "base is NULL for %ld bytes", (long)size);
  sf_job_set_label(sfm.job, fn);
  rc = sfm_agree_ctx(comm, &ctx);
  sf_job_set_label(sfm.job, NULL);
  if (rc < 0) return sfm_dp_error(comm, fn, rc);
  c = sfm_comm_get(comm);
  w = calloc(1, sizeof *w);
  if (w == NULL) goto nomem;
  w->size = c->size;
  w->rank = c->rank;
  w->ctx = ctx;
  w->errh = MPI_ERRORS_ARE_FATAL;
  w->flavor = flavor;
  w->model = MPI_WIN_UNIFIED; /* one copy of the memory: loads and stores see the operations */
  w->disp_unit = disp_unit;
  w->bytes = size;
  w->excl_holder = -1;
  w->info = MPI_INFO_NULL;
  {
    const char *e = getenv("SFMPI_CMA");
    w->cma = !(e && e[0] == '0');
  }
  w->world = malloc((size_t)c->size * sizeof *w->world);
  w->bases = calloc((size_t)c->size, sizeof *w->bases);
  w->sizes = calloc((size_t)c->size, sizeof *w->sizes);
  w->units = calloc((size_t)c->size, sizeof *w->units);
  w->shm_off = calloc((size_t)c->size, sizeof *w->shm_off);
  w->epoch_ops = calloc((size_t)c->size, sizeof *w->epoch_ops);
  w->dirty = calloc((size_t)c->size, 1);
  w->locks = calloc((size_t)c->size, sizeof *w->locks);
  w->nocheck = calloc((size_t)c->size, 1);
  w->posts = calloc((size_t)c->size, sizeof *w->posts);
  w->posts_used = calloc((size_t)c->size, sizeof *w->posts_used);
  w->completes = calloc((size_t)c->size, sizeof *w->completes);
  w->completes_used = calloc((size_t)c->size, sizeof *w->completes_used);
  w->hbuf = malloc(SFM_RMA_HBUF);
  all = malloc((size_t)c->size * sizeof mine);
  lens = malloc((size_t)c->size * sizeof *lens);
  displs = malloc((size_t)c->size * sizeof *displs);
  if (!w->world || !w->bases || !w->sizes || !w->units || !w->shm_off || !w->epoch_ops || !w->dirty || !w->locks ||
      !w->nocheck || !w->posts || !w->posts_used || !w->completes || !w->completes_used || !w->hbuf || !all || !lens ||
      !displs)
    goto nomem;
  memcpy(w->world, c->world, (size_t)c->size * sizeof *w->world);
  if (info != MPI_INFO_NULL && MPI_Info_dup(info, &w->info) != MPI_SUCCESS) goto nomem;
  g = sfm_win_group(w);
  mine[0] = size;
  mine[1] = disp_unit;
  mine[2] = (long long)(uintptr_t)mem;
  for (i = 0; i < c->size; i++) {
    lens[i] = sizeof mine;
    displs[i] = (size_t)i * sizeof mine;
  }
  sf_job_set_label(sfm.job, fn);
  rc = sf_allgatherv(sfm.job, &g, mine, sizeof mine, all, lens, displs);
  sf_job_set_label(sfm.job, NULL);
  if (rc < 0) {
    rc = sfm_dp_error(comm, fn, rc);
    goto fail;
  }
  for (i = 0; i < w->size; i++) {
    w->sizes[i] = (MPI_Aint)all[3 * i];
    w->units[i] = (int)all[3 * i + 1];
    w->bases[i] = (uint64_t)all[3 * i + 2];
  }
  if (share) {
    rc = sfm_win_share(w, flavor == MPI_WIN_FLAVOR_SHARED, fn);
    if (rc != MPI_SUCCESS && share == 2) {
      rc = sfm_raise(comm, rc);
      goto fail;
    }
    if (w->shm) {
      mem = w->shm + w->shm_off[w->rank];
    } else if (size > 0) { /* private memory after all (sharing failed, or nothing to share) */
      w->own_mem = calloc(1, (size_t)size);
      if (w->own_mem == NULL) goto nomem;
      mem = w->own_mem;
    }
    /* everyone learns the others' addresses in their own mappings (for process_vm_*) */
    mine[2] = (long long)(uintptr_t)mem;
    rc = sf_allgatherv(sfm.job, &g, mine, sizeof mine, all, lens, displs);
    if (rc < 0) {
      rc = sfm_dp_error(comm, fn, rc);
      goto fail;
    }
    for (i = 0; i < w->size; i++) w->bases[i] = (uint64_t)all[3 * i + 2];
  }
  w->base = mem;
  for (i = 1; i < sfm.nwins; i++)
    if (sfm.wins[i] == NULL) break;
  if (i >= sfm.nwins && sfm_grow((void **)&sfm.wins, &sfm.nwins, sizeof *sfm.wins) < 0) goto nomem;
  if (i == 0) i = 1;
  w->handle = i;
  sfm.wins[i] = w;
  sfm_rma_start_target(w);
  *out = i;
  free(all);
  free(lens);
  free(displs);
  return MPI_SUCCESS;
nomem:
  rc = sfm_error(comm, fn, MPI_ERR_NO_MEM, "out of memory");
fail:
  sfm_win_release(w);
  free(all);
  free(lens);
  free(displs);
  return rc;
}

int MPI_Win_create(void *base, MPI_Aint size, int disp_unit, MPI_Info info, MPI_Comm comm, MPI_Win *win) {
  return sfm_win_new(comm, base, size, disp_unit, info, MPI_WIN_FLAVOR_CREATE, 0, win, "MPI_Win_create");
}

int MPI_Win_allocate(MPI_Aint size, int disp_unit, MPI_Info info, MPI_Comm comm, void *baseptr, MPI_Win *win) {
  int rc;
  if (baseptr == NULL) return sfm_error(comm, "MPI_Win_allocate", MPI_ERR_ARG, "baseptr is NULL");
  rc = sfm_win_new(comm, NULL, size, disp_unit, info, MPI_WIN_FLAVOR_ALLOCATE, 1, win, "MPI_Win_allocate");
  if (rc == MPI_SUCCESS) *(void **)baseptr = sfm_win_get(*win)->base;
  return rc;
}

int MPI_Win_allocate_shared(MPI_Aint size, int disp_unit, MPI_Info info, MPI_Comm comm, void *baseptr, MPI_Win *win) {
  int rc;
  if (baseptr == NULL) return sfm_error(comm, "MPI_Win_allocate_shared", MPI_ERR_ARG, "baseptr is NULL");
  rc = sfm_win_new(comm, NULL, size, disp_unit, info, MPI_WIN_FLAVOR_SHARED, 2, win, "MPI_Win_allocate_shared");
  if (rc == MPI_SUCCESS) *(void **)baseptr = sfm_win_get(*win)->base;
  return rc;
}

int MPI_Win_shared_query(MPI_Win win, int rank, MPI_Aint *size, int *disp_unit, void *baseptr) {
  SFM_WIN("MPI_Win_shared_query", win, w);
  if (w->flavor != MPI_WIN_FLAVOR_SHARED)
    return sfm_werror(w, "MPI_Win_shared_query", MPI_ERR_RMA_FLAVOR, "window %d was not made by MPI_Win_allocate_shared", win);
  if (size == NULL || disp_unit == NULL || baseptr == NULL)
    return sfm_werror(w, "MPI_Win_shared_query", MPI_ERR_ARG, "size, disp_unit and baseptr are required");
  if (rank == MPI_PROC_NULL) { /* the lowest rank with memory (MPI 11.2.3) */
    for (rank = 0; rank < w->size - 1 && w->sizes[rank] == 0; rank++) {
    }
  }
  if (rank < 0 || rank >= w->size)
    return sfm_werror(w, "MPI_Win_shared_query", MPI_ERR_RANK, "rank %d out of range for a window of %d ranks", rank, w->size);
  *size = w->sizes[rank];
  *disp_unit = w->units[rank];
  *(void **)baseptr = w->shm ? (void *)(w->shm + w->shm_off[rank]) : NULL;
  return MPI_SUCCESS;
}

int MPI_Win_free(MPI_Win *win) {
  sfm_win *w;
  int rc;
  SFM_INIT_CHECK("MPI_Win_free");
  if (win == NULL || (w = sfm_win_get(*win)) == NULL)
    return sfm_error(MPI_COMM_WORLD, "MPI_Win_free", MPI_ERR_WIN, "invalid window %d", win ? *win : -1);
  if (w->lock_all || w->access || w->exposure)
    return sfm_werror(w, "MPI_Win_free", MPI_ERR_RMA_SYNC, "an access or exposure epoch is still open (unlock, complete or wait first)");
  for (int r = 0; r < w->size; r++)
    if (w->locks[r])
      return sfm_werror(w, "MPI_Win_free", MPI_ERR_RMA_SYNC, "rank %d of the window is still locked (MPI_Win_unlock first)", r);
  /* everything this rank sent is complete; after the barrier, every member's is */
  rc = sfm_rma_wait_local(w, -1, "MPI_Win_free");
  if (rc == MPI_SUCCESS) rc = sfm_win_barrier(w, "MPI_Win_free");
  if (rc != MPI_SUCCESS) return sfm_raise_on(SFM_OBJ_WIN, *win, rc);
  rc = sfm_attrs_clear(SFM_OBJ_WIN, *win, &w->attrs);
  sfm.wins[*win] = NULL;
  sfm_win_release(w);
  *win = MPI_WIN_NULL;
  return rc == MPI_SUCCESS ? MPI_SUCCESS : sfm_error(MPI_COMM_WORLD, "MPI_Win_free", rc, "an attribute delete callback failed");
}

int MPI_Win_get_group(MPI_Win win, MPI_Group *group) {
  SFM_WIN("MPI_Win_get_group", win, w);
  if (group == NULL) return sfm_werror(w, "MPI_Win_get_group", MPI_ERR_ARG, "group is NULL");
  if (sfm_group_new(w->size, w->world, group) < 0) return sfm_werror(w, "MPI_Win_get_group", MPI_ERR_NO_MEM, "out of memory");
  return MPI_SUCCESS;
}

int MPI_Win_set_name(MPI_Win win, const char *name) {
  SFM_WIN("MPI_Win_set_name", win, w);
  snprintf(w->name, sizeof w->name, "%s", name ? name : "");
  return MPI_SUCCESS;
}

int MPI_Win_get_name(MPI_Win win, char *name, int *len) {
  SFM_WIN("MPI_Win_get_name", win, w);
  if (name == NULL || len == NULL) return sfm_werror(w, "MPI_Win_get_name", MPI_ERR_ARG, "NULL argument");
  *len = snprintf(name, MPI_MAX_OBJECT_NAME, "%s", w->name);
  return MPI_SUCCESS;
}

int MPI_Win_set_info(MPI_Win win, MPI_Info info) {
  SFM_WIN("MPI_Win_set_info", win, w);
  if (sfm_info_replace(&w->info, info) < 0) return sfm_werror(w, "MPI_Win_set_info", MPI_ERR_INFO, "invalid info %d", info);
  return MPI_SUCCESS;
}

int MPI_Win_get_info(MPI_Win win, MPI_Info *info_used) {
  SFM_WIN("MPI_Win_get_info", win, w);
  if (info_used == NULL) return sfm_werror(w, "MPI_Win_get_info", MPI_ERR_ARG, "info_used is NULL");
  return sfm_info_used(w->info, info_used);
}

/* MPI_WIN_BASE is the base address itself; the others are pointers to the values (MPI 11.2.6). */
int sfm_win_predef(MPI_Win win, int keyval, void *val) {
  sfm_win *w = sfm_win_get(win);
  if (w == NULL) return 0;
  switch (keyval) {
  case MPI_WIN_BASE: *(void **)val = w->base; return 1;
  case MPI_WIN_SIZE: *(MPI_Aint **)val = &w->bytes; return 1;
  case MPI_WIN_DISP_UNIT: *(int **)val = &w->disp_unit; return 1;
  case MPI_WIN_CREATE_FLAVOR: *(int **)val = &w->flavor; return 1;
  case MPI_WIN_MODEL: *(int **)val = &w->model; return 1;
  default: return 0;
  }
}

/* Progress hook: the target side and the origin's requests of every window. */
void sfm_rma_progress(void) {
  for (int i = 1; i < sfm.nwins; i++)
    if (sfm.wins[i]) sfm_rma_poll(sfm.wins[i]);
}
