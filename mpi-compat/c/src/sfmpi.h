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

/* Kinds of MPI objects that carry error handlers and attributes. */
enum { SFM_OBJ_COMM = 1, SFM_OBJ_TYPE = 2, SFM_OBJ_WIN = 3, SFM_OBJ_FILE = 4 };

/* Attributes cached on an object (attr.c). */
typedef struct sfm_attr { int keyval; void *val; } sfm_attr;
typedef struct sfm_attrs { int n, cap; sfm_attr *a; } sfm_attrs;
typedef struct sfm_keyval {
  int used, kind, refs; /* refs: the handle (until freed) plus every object holding it */
  void (*copy_fn)(void);
  void (*delete_fn)(void);
  void *extra;
} sfm_keyval;

/* A datatype: byte blocks (for pack/unpack) and basic-element runs (for reductions and
 * MPI_Get_elements), for one item; `count` items are laid out `extent` bytes apart. */
typedef struct sfm_block { MPI_Aint disp; size_t len; } sfm_block;
typedef struct sfm_run { MPI_Aint disp; int basic; size_t count; } sfm_run; /* basic: sf_dtype or -1 */

typedef struct sfm_type {
  int used, predefined, committed;
  int refs;             /* pending operations using it: the slot is reused only at 0 */
  int freed;            /* MPI_Type_free was called: release when refs drops to 0 */
  char name[MPI_MAX_OBJECT_NAME];
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
  sfm_attrs attrs;
} sfm_type;

/* Process topology of a communicator (topo.c). */
typedef struct sfm_topo {
  int kind;             /* MPI_CART, MPI_GRAPH, MPI_DIST_GRAPH */
  int ndims, *dims, *periods;          /* Cartesian */
  int nnodes, *index, *edges;          /* graph (index/edges as given to MPI_Graph_create) */
  int indeg, outdeg, weighted;         /* distributed graph, in communicator ranks */
  int *srcs, *dsts, *sw, *dw;
} sfm_topo;

typedef struct sfm_comm {
  int used;
  int size, rank;
  int *world;   /* world rank of each member */
  int *inv;     /* comm rank of each world rank, -1 if not a member */
  uint32_t ctx; /* SFM_CTX_* offsets from here: point-to-point, collectives, schedules, internal */
  uint32_t nbc_seq; /* non-blocking collectives started: the tag of the next one */
  MPI_Errhandler errh;
  MPI_Info info;
  sfm_topo *topo;
  sfm_attrs attrs;
  char name[MPI_MAX_OBJECT_NAME];
} sfm_comm;

/* A communicator takes SFM_CTX_BLOCK context ids, agreed by its members (sfm_agree_ctx). */
#define SFM_CTX_P2P 0u   /* the program's point-to-point messages */
#define SFM_CTX_COLL 1u  /* the data plane's blocking collectives */
#define SFM_CTX_NBC 2u   /* schedules: non-blocking and neighbourhood collectives */
#define SFM_CTX_INT 3u   /* libsfmpi's own exchanges over the group (Comm_create_group...) */
#define SFM_CTX_BLOCK 4u
#define SFM_CTX_WAKE 0xfffffff0u /* loopback doorbell of sfm_wait_until, never a communicator's */

typedef struct sfm_group { int used; int size; int *world; } sfm_group;

typedef struct sfm_op { int used; MPI_User_function *fn; int commute; } sfm_op;

typedef struct sfm_errh { int used, kind; void (*fn)(void); } sfm_errh;

/* Info objects (info.c). */
typedef struct sfm_kv { char *key, *val; } sfm_kv;
typedef struct sfm_info { int used, n, cap; sfm_kv *kv; } sfm_info;
/* An object's hints (communicators, windows, files keep theirs as given): *slot becomes a copy
 * of `info` (or MPI_INFO_NULL), the old copy freed; -1, nothing changed, if `info` is invalid.
 * sfm_info_used hands out a new copy of `have` (an empty info when it is MPI_INFO_NULL). */
int sfm_info_replace(MPI_Info *slot, MPI_Info info);
int sfm_info_used(MPI_Info have, MPI_Info *out);

/* A request completed by an object of its own (a schedule, a one-sided operation): `done` says
 * whether it finished (called from the progress hook too: no blocking, no MPI calls), `finish`
 * fills the status and returns the request's own error code, `release` frees the object. */
typedef struct sfm_req_ops {
  int (*done)(void *obj);
  int (*finish)(void *obj, MPI_Status *status);
  void (*release)(void *obj);
  void (*orphan)(void *obj); /* MPI_Request_free while pending: finish in the background */
} sfm_req_ops;

enum { SFM_RQ_SEND = 1, SFM_RQ_RECV = 2, SFM_RQ_DONE = 3, SFM_RQ_OBJ = 4 };
enum { SFM_MODE_STD = 0, SFM_MODE_SYNC = 1, SFM_MODE_BUF = 2, SFM_MODE_READY = 3 };
typedef struct sfm_req {
  int used, kind;
  sf_req *req;          /* NULL: already complete (status below), or an inactive persistent one */
  MPI_Comm comm;
  void *tmp;            /* packed buffer (non-contiguous type) or bsend copy */
  void *ubuf;           /* user receive buffer to unpack into */
  int ucount;
  MPI_Datatype utype;   /* holds a reference (sfm_type_ref) while set */
  size_t bsend_bytes;   /* attached-buffer bytes held by a bsend */
  MPI_Status status;    /* for completed-at-start requests */
  int err;              /* MPI error code when complete-at-start */
  int cancelled;        /* MPI_Cancel withdrew it */
  /* persistent requests (MPI_Send_init...): the arguments, and whether a start is active */
  int persist, active, mode;
  void *pbuf;
  int pcount, ppeer, ptag;
  MPI_Datatype ptype;   /* referenced until MPI_Request_free */
  /* SFM_RQ_OBJ */
  void *obj;
  const sfm_req_ops *ops;
} sfm_req;

struct sfm_sched;
struct sfm_win;
struct sfm_file;

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
  sfm_keyval *keyvals; int nkeyvals;
  sfm_info *infos; int ninfos;
  struct sfm_win **wins; int nwins;    /* pointers: a window's attributes point into it */
  struct sfm_file **files; int nfiles;
  struct sfm_sched *scheds;            /* schedules in progress (sched.c) */
  int in_hook;                         /* the progress hook is running */
  /* Bsend */
  void *bbuf; size_t bsize, bused;
  sfm_req *detached; int ndetached, capdetached; /* freed requests still in flight */
} sfm_state;

extern sfm_state sfm;

/* Errors (errors.c): build a detailed error code (class + slot of a stored message) and apply the
 * error handler of the object the call was made on. `fn` is the MPI function name. */
int sfm_error_on(int kind, int handle, const char *fn, int cls, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
#define sfm_error(comm, fn, cls, ...) sfm_error_on(SFM_OBJ_COMM, comm, fn, cls, __VA_ARGS__)
int sfm_dp_error(MPI_Comm comm, const char *fn, int rc); /* from an SF_E* code + sf_last_error() */
int sfm_dp_code(const char *fn, int rc);                  /* the same, without the handler */
int sfm_code(int cls, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int sfm_raise(MPI_Comm comm, int code);                   /* apply comm's handler to a code */
int sfm_raise_on(int kind, int handle, int code);         /* ... or a window's or file's */
int sfm_class_of(int sfcode);
int sfm_last_used_code(void);
MPI_Errhandler *sfm_win_errh(MPI_Win win);   /* win.c; NULL for an invalid window */
MPI_Errhandler *sfm_file_errh(MPI_File fh);  /* file.c; MPI_FILE_NULL: the default for new files */

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

/* Datatypes (datatype.c, typector.c). */
sfm_type *sfm_type_get(MPI_Datatype t);
int sfm_type_slot(void);
void sfm_type_ref(MPI_Datatype t);   /* a pending operation uses it */
void sfm_type_unref(MPI_Datatype t); /* ... no longer: freed if MPI_Type_free was called */
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
int sfm_p2p_args(const char *fn, int recv, int count, MPI_Datatype dt, int peer, int tag, MPI_Comm comm);
int sfm_req_post(sfm_req *rq, const char *fn, int kind, void *buf, int count, MPI_Datatype dt, int peer, int tag,
                 MPI_Comm comm, int sync);
int sfm_bsend(const char *fn, const void *buf, int count, MPI_Datatype dt, int dest, int tag, MPI_Comm comm,
              MPI_Request *request);
const char *sfm_req_what(sfm_req *rq);
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
int sfm_red_commutes(MPI_Op op);
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

/* Progress (progress.c): the one progress hook, and a wait on any condition. sfm_wait_until returns
 * an MPI code (not raised); `what`, when given, names what was awaited in a timeout message. */
void sfm_progress_init(void);
int sfm_wait_until(int (*cond)(void *arg), const char *(*what)(void *arg), void *arg, const char *fn);

/* Schedules (sched.c): rounds of local steps then messages, advanced by the progress hook.
 * Peers are communicator ranks; `part` (0..63) tells messages of one collective apart. */
typedef struct sfm_sched sfm_sched;
sfm_sched *sfm_sched_new(MPI_Comm comm, const char *fn);
void *sfm_s_tmp(sfm_sched *s, size_t bytes);
void sfm_s_send(sfm_sched *s, const void *buf, size_t len, int peer, int part);
void sfm_s_recv(sfm_sched *s, void *buf, size_t len, int peer, int part);
void sfm_s_copy(sfm_sched *s, const void *src, void *dst, size_t len);
void sfm_s_combine(sfm_sched *s, const void *in, void *inout, size_t len);
void sfm_s_unpack(sfm_sched *s, const void *packed, size_t bytes, void *ubuf, int count, MPI_Datatype dt);
void sfm_s_unpack_end(sfm_sched *s, const void *packed, size_t bytes, void *ubuf, int count, MPI_Datatype dt);
void sfm_s_round(sfm_sched *s);
void sfm_s_set_red(sfm_sched *s, const sfm_red *r);
sfm_red *sfm_s_red(sfm_sched *s);
int sfm_sched_start(sfm_sched *s, MPI_Request *request); /* as a request; MPI code, not raised */
int sfm_sched_run(sfm_sched *s);                         /* to completion; MPI code, not raised */
void sfm_sched_free(sfm_sched *s);
void sfm_sched_progress(void);

/* Non-blocking and neighbourhood collectives (nbc.c, neighbor.c): one side of an exchange. */
typedef struct sfm_side {
  const int *counts;
  int count;
  const int *displs;          /* in extents of `type` (plain and v forms) ... */
  const MPI_Aint *bdispls;    /* ... or in bytes (neighbour w form) */
  const int *idispls_bytes;   /* ... or in bytes as ints (MPI_Alltoallw) */
  const MPI_Datatype *types;
  MPI_Datatype type;
} sfm_side;
sfm_side sfm_side_v(const int *counts, int count, const int *displs, MPI_Datatype t);
sfm_side sfm_side_w(const int *counts, const int *bdispls, const MPI_Datatype *types);
sfm_side sfm_side_aw(const int *counts, const MPI_Aint *bdispls, const MPI_Datatype *types);
void *sfm_s_wire(sfm_sched *s, void *buf, int count, MPI_Datatype dt, int recv, size_t *len);
int sfm_b_exchange(sfm_sched *s, MPI_Comm comm, const char *fn, const void *sbuf, const sfm_side *sd, void *rbuf,
                   const sfm_side *rd, int nout, const int *out, const int *outpart, int nin, const int *in,
                   const int *inpart, int me);

/* Topologies (topo.c). */
sfm_topo *sfm_topo_dup(const sfm_topo *t);
void sfm_topo_free(sfm_topo *t);
int sfm_topo_neighbors(const sfm_comm *c, int **in, int *nin, int **out, int *nout, int **inpart, int **outpart);

/* Attributes (attr.c) and info objects (info.c). Return MPI classes, not raised. */
int sfm_attrs_copy(int kind, int from, int to, sfm_attrs *src, sfm_attrs *dst);
int sfm_attrs_clear(int kind, int handle, sfm_attrs *a);
int sfm_info_init(const char *command, int thread_level);

/* One-sided windows (win.c, rma.c). */
sfm_attrs *sfm_win_attrs(MPI_Win win);
int sfm_win_predef(MPI_Win win, int keyval, void *val);
void sfm_rma_progress(void);

#endif
