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

/* Errors: build a detailed error code (class + slot of a stored message) and apply the
 * communicator's error handler. `fn` is the MPI function name. */
int sfm_error(MPI_Comm comm, const char *fn, int cls, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
int sfm_dp_error(MPI_Comm comm, const char *fn, int rc); /* from an SF_E* code + sf_last_error() */
int sfm_dp_code(const char *fn, int rc);                  /* the same, without the handler */
int sfm_code(int cls, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int sfm_raise(MPI_Comm comm, int code);                   /* apply comm's handler to a code */
void sfm_fatal(int code, const char *msg) __attribute__((noreturn));
int sfm_class_of(int sfcode);

#define SFM_INIT_CHECK(fn)                                                                     \
  do {                                                                                         \
    if (!sfm.initialized || sfm.finalized)                                                     \
      return sfm_error(MPI_COMM_WORLD, fn, MPI_ERR_OTHER, "called %s MPI_Init / after MPI_Finalize", \
                       !sfm.initialized ? "before" : "after");                                 \
  } while (0)

sfm_comm *sfm_comm_get(MPI_Comm c);
sf_group sfm_coll_group(const sfm_comm *c);
int sfm_comm_new(int size, int rank, const int *world, uint32_t ctx, MPI_Comm *out);
int sfm_agree_ctx(MPI_Comm parent, uint32_t *ctx);
int sfm_comms_init(void);

sfm_type *sfm_type_get(MPI_Datatype t);
int sfm_types_init(void);
int sfm_type_check(MPI_Comm comm, const char *fn, MPI_Datatype t, int count);
void sfm_pack(const sfm_type *t, const void *buf, int count, void *out);
void sfm_unpack(const sfm_type *t, const void *in, size_t bytes, void *buf, int count);
const char *sfm_type_name(MPI_Datatype t);

int sfm_check_rank(MPI_Comm comm, const char *fn, const char *what, int r, int allow_any);
int sfm_req_new(MPI_Request *out, sfm_req **rq);
int sfm_ops_init(void);
int sfm_progress_detached(void);              /* complete what finished; no blocking */
int sfm_drain_detached(const char *fn);       /* block until every detached request finished */

#endif
