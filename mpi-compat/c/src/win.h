/*
 * win.h: one-sided windows, private to win.c (objects), rma.c (operations and the protocol
 * engine) and winsync.c (synchronisation).
 *
 * A window talks to its members only through the data plane's public point-to-point API, in a
 * context block of its own (agreed like a communicator's):
 *
 *   ctx + 0   requests: one message per operation or synchronisation, origin -> target
 *   ctx + 1   data and replies: a large payload (origin -> target) or the reply to a get,
 *             a fetch, a lock or a flush (target -> origin), tagged with the origin's op id
 *   ctx + 2   the window's collectives (fence, free)
 *
 * so it works over any transport. The target side (rma.c) runs in the progress hook: a posted
 * receive on ctx + 0 takes one request at a time, which the target applies to its memory before
 * it takes the next one; requests from one origin are therefore applied in the order sent, and
 * a flush or unlock, answered when taken, finds every earlier operation of that origin done.
 *
 * Request message (little-endian, as the ranks of one host; 64-byte header, then the target
 * datatype's blocks, then the payload when it fits):
 *
 *   0  u8  kind         SFM_RMA_PUT ... SFM_RMA_COMPLETE
 *   1  u8  flags        SFM_RF_INLINE: the payload follows here; otherwise it comes as one
 *                       message on ctx + 1 with tag seq (blocks and payload, in this order,
 *                       when SFM_RF_MAP_IN_DATA)
 *   2  i16 basic        sf_dtype of the elements (accumulate, fetch, compare-and-swap), or -1
 *   4  i32 op           sf_op (accumulate), or the lock type (LOCK)
 *   8  u32 seq          the origin's op id: tag of this operation's data and reply
 *   12 i32 nblocks      blocks of one target item; 0: the target data is contiguous bytes
 *   16 u64 disp         target byte offset from its window base
 *   24 u64 bytes        target data bytes; the payload (data in packed target order) is that
 *                       for puts and accumulates, twice that for compare-and-swap (new value,
 *                       then compare value), none for gets and fetches with MPI_NO_OP
 *   32 i64 textent      extent of one target item
 *   40 i32 tcount       target items
 *   44 i32 reserved
 *   48 u64 reserved[2]
 *   64 nblocks x { i64 disp, i64 len }, then the payload (SFM_RF_INLINE)
 *
 * The target checks every field against its window (the range, the block list, the lengths)
 * before touching memory; a request that fails a check is dropped and reported as an error of
 * the window at its next synchronisation call, never applied.
 */
#ifndef SFMPI_WIN_H
#define SFMPI_WIN_H

#include "sfmpi.h"

enum {
  SFM_RMA_PUT = 1, SFM_RMA_GET, SFM_RMA_ACC, SFM_RMA_GACC, SFM_RMA_CAS,
  SFM_RMA_LOCK, SFM_RMA_UNLOCK, SFM_RMA_FLUSH, SFM_RMA_POST, SFM_RMA_COMPLETE,
  SFM_RMA_KINDS
};
#define SFM_RF_INLINE 1
#define SFM_RF_MAP_IN_DATA 2

typedef struct sfm_rma_hdr {
  uint8_t kind;
  uint8_t flags;
  int16_t basic;
  int32_t op;
  uint32_t seq;
  int32_t nblocks;
  uint64_t disp;
  uint64_t bytes;
  int64_t textent;
  int32_t tcount;
  int32_t reserved0;
  uint64_t reserved1[2];
} sfm_rma_hdr;

typedef struct sfm_rma_blk { int64_t disp, len; } sfm_rma_blk;

#define SFM_RMA_HBUF 8192 /* request messages up to this size carry their payload inline */

/* A request-based operation (MPI_Rput ...): complete when its pending parts are. */
typedef struct sfm_rreq {
  int parts, orphan;
  MPI_Win win;
} sfm_rreq;

/* An origin-side data-plane request in flight. */
typedef struct sfm_rma_pend {
  struct sfm_rma_pend *next;
  sf_req *req;
  int target;          /* window rank it concerns */
  void *tmp;           /* message buffer to free when done */
  void *ubuf;          /* a reply to unpack into (ucount items of utype) from tmp */
  int ucount;
  MPI_Datatype utype;
  int *flag;           /* set to 1 when done (lock grants, acknowledgements) */
  sfm_rreq *rreq;
} sfm_rma_pend;

/* A lock request the target could not grant yet. */
typedef struct sfm_lockwait { struct sfm_lockwait *next; int origin, type; uint32_t seq; } sfm_lockwait;

typedef struct sfm_win {
  MPI_Win handle;
  int size, rank;
  int *world;          /* world rank of each member */
  uint32_t ctx;
  MPI_Errhandler errh;
  MPI_Info info;
  sfm_attrs attrs;
  char name[MPI_MAX_OBJECT_NAME];
  int flavor, model;
  void *base;
  MPI_Aint bytes;      /* this rank's size (attribute values point here) */
  int disp_unit;
  void *own_mem;       /* memory MPI_Win_allocate malloc'ed (no shared mapping) */
  /* every member's window */
  uint64_t *bases;
  MPI_Aint *sizes;
  int *units;
  char *shm;           /* the shared mapping (Win_allocate, Win_allocate_shared), or NULL */
  size_t shm_bytes;
  MPI_Aint *shm_off;   /* member i's memory at shm + shm_off[i] */
  int cma;             /* 1: process_vm_readv/writev may reach the members' memory */
  int err;             /* an MPI code to report at the next synchronisation call */
  /* origin side */
  uint32_t seq;
  long long *epoch_ops; /* requests sent to each target since the last fence */
  unsigned char *dirty; /* requests sent to each target since its last flush */
  sfm_rma_pend *pend;
  int *locks;           /* lock this rank holds on each target: 0, MPI_LOCK_SHARED/EXCLUSIVE */
  unsigned char *nocheck; /* ... taken with MPI_MODE_NOCHECK (no lock messages) */
  int lock_all;
  int fence_open;
  int *access;          /* PSCW: targets of the access epoch (window ranks), or NULL */
  int naccess;
  long long *posts, *posts_used;
  /* target side */
  sf_req *hreq;
  unsigned char *hbuf;
  struct {             /* the request waiting for its data message */
    int active, origin;
    sfm_rma_hdr h;
    sfm_rma_blk *blocks;
    sf_req *req;
    size_t dlen;       /* bytes the data message must have */
    void *data;        /* received blocks/payload (NULL: straight into the window) */
  } cur;
  long long done_total; /* operations applied */
  long long fence_base; /* operations expected by the end of the last fence */
  int excl_holder, shared_holders;
  sfm_lockwait *lockq;
  int *exposure;        /* PSCW: origins of the exposure epoch, or NULL */
  int nexposure;
  long long *completes, *completes_used;
} sfm_win;

sfm_win *sfm_win_get(MPI_Win w);

/* rma.c */
int sfm_rma_send_ctl(sfm_win *w, int target, int kind, int arg, int *flag, const char *fn);
int sfm_rma_local_done(sfm_win *w, int target); /* nothing in flight to target (-1: any) */
int sfm_rma_wait_local(sfm_win *w, int target, const char *fn);
void sfm_rma_start_target(sfm_win *w);
void sfm_rma_stop_target(sfm_win *w);
void sfm_rma_poll(sfm_win *w);
int sfm_rreq_start(sfm_rreq *rr, MPI_Request *request, const char *fn);
int sfm_win_barrier(sfm_win *w, const char *fn);
int sfm_win_allreduce_ll(sfm_win *w, const long long *in, long long *out, int n, sf_op op, const char *fn);

/* win.c: errors raised through the window's handler */
#define SFM_WIN(fn, win, w)                                                                         \
  SFM_INIT_CHECK(fn);                                                                              \
  sfm_win *w = sfm_win_get(win);                                                                   \
  if (w == NULL) return sfm_error(MPI_COMM_WORLD, fn, MPI_ERR_WIN, "invalid window %d", (int)(win))
#define sfm_werror(w, fn, cls, ...) sfm_error_on(SFM_OBJ_WIN, (w)->handle, fn, cls, __VA_ARGS__)

#endif
