/*
 * sfmpi.h: private state of libsfmpi (sfm_ names). One process = one rank, so libsfmpi keeps
 * its state in one process-global struct (the data plane itself keeps none).
 */
#ifndef SFMPI_INTERNAL_H
#define SFMPI_INTERNAL_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "mpi.h"
#include "sf_dataplane.h"

#include <stddef.h>
#include <stdint.h>

/* A datatype: byte blocks (for pack/unpack) and basic-element runs (for reductions and
 * MPI_Get_elements), for one item; `count` items are laid out `extent` bytes apart. */
typedef struct sfm_block { MPI_Aint disp; size_t len; } sfm_block;
typedef struct sfm_run { MPI_Aint disp; int basic; size_t count; } sfm_run; /* basic: sf_dtype or -1 */

typedef struct sfm_type {
  int used, predefined, committed;
  const char *name;
  size_t size;          /* bytes of data in one item */
  MPI_Aint lb, extent;  /* extent = ub - lb */
  MPI_Aint true_lb, true_ub;
  int nblocks;
  sfm_block *blocks;
  int nruns;
  sfm_run *runs;
  size_t nbasic;        /* basic elements in one item */
  int homog;            /* the single sf_dtype of all elements, or -1 (mixed / none) */
  int contig;           /* one block at 0 of `extent` bytes (lb 0): send in place */
} sfm_type;

typedef struct sfm_comm {
  int used;
  int size, rank;
  int *world;   /* world rank of each member */
  int *inv;     /* comm rank of each world rank, -1 if not a member */
  uint32_t ctx; /* p2p context; collectives use ctx + 1 */
  MPI_Errhandler errh;
  char name[MPI_MAX_OBJECT_NAME];
} sfm_comm;

typedef struct sfm_group { int used; int size; int *world; } sfm_group;

typedef struct sfm_op { int used; MPI_User_function *fn; int commute; } sfm_op;

typedef struct sfm_errh { int used; MPI_Comm_errhandler_function *fn; } sfm_errh;

enum { SFM_RQ_SEND = 1, SFM_RQ_RECV = 2, SFM_RQ_DONE = 3 };
typedef struct sfm_req {
  int used, kind;
  sf_req *req;          /* NULL: already complete (status below) */
  MPI_Comm comm;
  void *tmp;            /* packed buffer (non-contiguous type) or bsend copy */
  void *ubuf;           /* user receive buffer to unpack into */
  int ucount;
  MPI_Datatype utype;
  size_t bsend_bytes;   /* attached-buffer bytes held by a bsend */
  int persistent_done;  /* completed at start (req == NULL) */
  MPI_Status status;    /* for completed-at-start requests */
  int err;              /* MPI error code when complete-at-start */
} sfm_req;

typedef struct sfm_state {
  int initialized, finalized;
  sf_job *job;
  int rank, size;
  int ctl_fd;
  int next_ctx;
  double t_fork;
  sfm_comm *comms; int ncomms;
  sfm_group *groups; int ngroups;
  sfm_type *types; int ntypes;
  sfm_op *ops; int nops;
  sfm_errh *errhs; int nerrhs;
  sfm_req *reqs; int nreqs;
  /* Bsend */
  void *bbuf; size_t bsize, bused;
  sfm_req *detached; int ndetached, capdetached; /* freed requests still in flight */
} sfm_state;

extern sfm_state sfm;

/* Errors (errors.c): build a detailed error code (class + slot of a stored message) and apply the
 * communicator's error handler. `fn` is the MPI function name. */
int sfm_error(MPI_Comm comm, const char *fn, int cls, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
int sfm_dp_error(MPI_Comm comm, const char *fn, int rc); /* from an SF_E* code + sf_last_error() */
int sfm_dp_code(const char *fn, int rc);                  /* the same, without the handler */
int sfm_code(int cls, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int sfm_raise(MPI_Comm comm, int code);                   /* apply comm's handler to a code */
int sfm_class_of(int sfcode);

#define SFM_INIT_CHECK(fn)                                                                     \
  do {                                                                                         \
    if (!sfm.initialized || sfm.finalized)                                                     \
      return sfm_error(MPI_COMM_WORLD, fn, MPI_ERR_OTHER, "called %s MPI_Init / after MPI_Finalize", \
                       !sfm.initialized ? "before" : "after");                                 \
  } while (0)

/* Job control (jobctl.c): the job's processes and the launcher. */
void sfm_jobctl_started(void);                                /* after the fork, every rank */
void sfm_jobctl_finalized(void);                              /* past MPI_Finalize */
void sfm_init_fail(const char *what) __attribute__((noreturn)); /* MPI_Init failed: report, exit */
void sfm_jobctl_admit(int size);                              /* before the fork: the host's admission */
void sfm_jobctl_join(sf_job_options *o);                      /* a multi-host job: placement from dom0 */
int sfm_jobctl_local_count(const sf_job_options *o);          /* ranks of this host in o's placement */
void sfm_jobctl_links(void);                                  /* after the fork: this rank's TCP links */
/* An error under MPI_ERRORS_ARE_FATAL: print it, report it (unless it is a peer's death's
 * consequence), abort the job, exit. */
void sfm_fatal(int code, const char *msg) __attribute__((noreturn));

/* Communicators (comm.c) and groups (group.c). */
#define SFM_COMM(fn, comm, c)                                                                    \
  SFM_INIT_CHECK(fn);                                                                          \
  sfm_comm *c = sfm_comm_get(comm);                                                            \
  if (c == NULL) return sfm_error(MPI_COMM_WORLD, fn, MPI_ERR_COMM, "invalid communicator %d", (int)(comm))

int sfm_grow(void **arr, int *n, size_t elem); /* double a zeroed table (16 entries at first) */
sfm_comm *sfm_comm_get(MPI_Comm c);
sf_group sfm_coll_group(const sfm_comm *c);
int sfm_comm_new(int size, int rank, const int *world, uint32_t ctx, MPI_Comm *out);
int sfm_agree_ctx(MPI_Comm parent, uint32_t *ctx);
int sfm_comms_init(void);
sfm_group *sfm_group_get(MPI_Group g);
int sfm_group_new(int size, const int *world, MPI_Group *out);
int sfm_cmp_lists(const int *a, int na, const int *b, int nb); /* MPI_IDENT, MPI_SIMILAR or MPI_UNEQUAL */

/* Datatypes (datatype.c). */
sfm_type *sfm_type_get(MPI_Datatype t);
int sfm_types_init(void);
int sfm_type_check(MPI_Comm comm, const char *fn, MPI_Datatype t, int count);
void sfm_pack(const sfm_type *t, const void *buf, int count, void *out);
void sfm_unpack(const sfm_type *t, const void *in, size_t bytes, void *buf, int count);
const char *sfm_type_name(MPI_Datatype t);

/* Requests and completion (requests.c), point-to-point (p2p.c), buffered sends (bsend.c). */
#define SFM_P2P_CHECK(fn, comm, c, dt, count)                                                    \
  SFM_INIT_CHECK(fn);                                                                          \
  sfm_comm *c = sfm_comm_get(comm);                                                            \
  if (c == NULL) return sfm_error(MPI_COMM_WORLD, fn, MPI_ERR_COMM, "invalid communicator %d", (int)(comm)); \
  if ((rc = sfm_type_check(comm, fn, dt, count)) != MPI_SUCCESS) return rc
int sfm_check_rank(MPI_Comm comm, const char *fn, const char *what, int r, int allow_any);
int sfm_req_new(MPI_Request *out, sfm_req **rq);
sfm_req *sfm_req_get(MPI_Request r);
void sfm_req_drop(MPI_Request r);
void sfm_empty_status(MPI_Status *st);
/* Finish a completed request: fill the MPI status, unpack, free temporaries. Returns the
 * request's own MPI error code (truncation), without applying the error handler. */
int sfm_finish(sfm_req *rq, int rc, const sf_status *st, MPI_Status *status, const char *fn);
/* Wait for one request and release it (*request = MPI_REQUEST_NULL). */
int sfm_wait1(MPI_Request *request, MPI_Status *status, const char *fn, int *req_code);
int sfm_peer(const sfm_comm *c, int r); /* MPI rank or wildcard -> data-plane peer */
int sfm_wait_result(MPI_Comm comm, int rc, int code, MPI_Status *status);
int sfm_isend(const char *fn, const void *buf, int count, MPI_Datatype dt, int dest, int tag, MPI_Comm comm,
              int sync, MPI_Request *request);
int sfm_detach(sfm_req *rq);                  /* keep a pending request running in the background */
int sfm_progress_detached(void);              /* complete what finished; no blocking */
int sfm_drain_detached(const char *fn);       /* block until every detached request finished */

/* Reductions (op.c). */
typedef struct sfm_red {
  sf_combine_fn fn;
  void *arg;
  sf_builtin_arg b;
  MPI_User_function *ufn;
  MPI_Datatype dt;
  sfm_type *t;
  size_t unit;  /* bytes per datatype item in the wire layout */
  int packed;   /* wire layout is packed (predefined op on a non-contiguous type) */
} sfm_red;
int sfm_ops_init(void);
const char *sfm_op_name(MPI_Op op);
int sfm_red_setup(MPI_Comm comm, const char *fn, MPI_Datatype dt, MPI_Op op, int count, sfm_red *r);
/* Input in wire layout: the user's buffer, or a packed copy (*tmp). */
const void *sfm_red_in(sfm_red *r, const void *buf, int count, void **tmp);

/* Collectives (coll.c, coll_v.c). */
#define SFM_COLL(fn, comm, c)                                                                      \
  SFM_INIT_CHECK(fn);                                                                            \
  sfm_comm *c = sfm_comm_get(comm);                                                              \
  if (c == NULL) return sfm_error(MPI_COMM_WORLD, fn, MPI_ERR_COMM, "invalid communicator %d", (int)(comm)); \
  sf_group g = sfm_coll_group(c);                                                                \
  (void)g;                                                                                       \
  sf_job_set_label(sfm.job, fn)

#define SFM_DONE(comm, fn, rc) (sf_job_set_label(sfm.job, NULL), (rc) < 0 ? sfm_dp_error(comm, fn, rc) : MPI_SUCCESS)
#define SFM_RET(x) do { sf_job_set_label(sfm.job, NULL); return (x); } while (0)

int sfm_check_root(MPI_Comm comm, const char *fn, sfm_comm *c, int root);
typedef struct sfm_lay {
  size_t *lens, *displs;
  void *work; /* where the data plane reads/writes */
  void *tmp;  /* packed buffer, or NULL when work is the user's buffer */
} sfm_lay;
/* Blocks i = 0..n-1 of counts[i] (or `count`) items at udispls[i] (or i*count) extents. */
int sfm_lay_make(sfm_lay *l, sfm_type *t, void *ubuf, int n, const int *counts, int count, const int *udispls,
                 int pack_now);
void sfm_lay_unpack(sfm_lay *l, sfm_type *t, void *ubuf, int n, const int *counts, int count, const int *udispls);
void sfm_lay_free(sfm_lay *l);
int sfm_counts_ok(MPI_Comm comm, const char *fn, const char *what, const int *counts, int n);

#endif
