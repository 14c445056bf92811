/*
 * internal.h: private layout of one-sided windows (sfw_ names), shared by win.c (objects,
 * sharing, waits), rma.c (operations, the direct path, the target engine) and sync.c
 * (synchronisation). Not an API.
 *
 * The control block of a host (one per window per host, in the memfd of the host's first
 * window member, mapped by every member on that host), one 64-byte line per window rank:
 *
 *   lock     the rank's window lock: bit 30 exclusive, bits 16..29 its holder's window rank,
 *            bits 0..15 the number of shared holders
 *   acc      the accumulate mutex: 0 free, else the holder's window rank + 1, bit 31 set when
 *            someone sleeps on it (futex)
 *   waiters  window ranks waiting for `lock` (a bitmask): whoever releases the lock sends each
 *            of them a WAKE request, which ends their wait in their next progress
 *
 * In an SF_WIN_ALLOCATE/SHARED window the same memfd holds the members' memory after the
 * control block: page-aligned segments (ALLOCATE) or back to back (SHARED, MPI's contiguous
 * default).
 */
#ifndef SF_ONESIDED_INTERNAL_H
#define SF_ONESIDED_INTERNAL_H

#include "sf_onesided.h"

#include <stdatomic.h>
#include <sys/types.h>

#define SFW_EXCL 0x40000000u
#define SFW_HOLDER_SHIFT 16
#define SFW_SHARED_MASK 0xffffu
#define SFW_ACC_SLEEP 0x80000000u

typedef struct sfw_slot {
  _Atomic uint32_t lock;
  _Atomic uint32_t acc;
  _Atomic uint32_t waiters[SF_MAX_RANKS / 32];
  uint32_t pad[16 - 2 - SF_MAX_RANKS / 32];
} sfw_slot;
_Static_assert(sizeof(sfw_slot) == 64, "one cache line per window rank");

enum {
  SF_RMA_PUT = 1, SF_RMA_GET, SF_RMA_ACC, SF_RMA_GACC, SF_RMA_CAS,
  SF_RMA_LOCK, SF_RMA_UNLOCK, SF_RMA_FLUSH, SF_RMA_POST, SF_RMA_COMPLETE,
  SF_RMA_WAKE, SF_RMA_KINDS
};
#define SFW_INLINE 1

typedef struct sfw_hdr {
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
} sfw_hdr;
_Static_assert(sizeof(sfw_hdr) == 64, "the request header is 64 bytes");

/* An origin-side data-plane request in flight. */
typedef struct sfw_pend {
  struct sfw_pend *next;
  sf_req *req;
  int target;     /* window rank */
  void *tmp;      /* buffer to free once done */
  int *flag;      /* set to 1 once done (answers) */
} sfw_pend;

/* A lock request of another host's origin that this target could not grant yet. */
typedef struct sfw_lockq { struct sfw_lockq *next; int origin, type; uint32_t seq; } sfw_lockq;

/* Replies sent from temporary buffers: freed once sent. */
typedef struct sfw_out { struct sfw_out *next; sf_req *req; void *buf; } sfw_out;

struct sf_win {
  sf_job *job;
  int size, rank, flavor;
  int *world;            /* world rank of each member */
  int *host;             /* host of each member */
  pid_t *pid;            /* pid of each member (same host only; 0 elsewhere) */
  uint64_t *base;        /* each member's memory address in its own process */
  size_t *bytes, *unit;
  uint32_t ctx;
  void *mem;             /* this rank's memory */
  void *own;             /* memory this module allocated privately (no shared mapping) */
  /* the host's shared mapping: control block, then (allocate flavors) the members' memory */
  char *shm;
  size_t shm_bytes;
  sfw_slot *slots;       /* the control block (by window rank), or NULL: no direct locks */
  size_t *seg;           /* offset of each local member's memory in shm (allocate flavors) */
  int direct, cma;
  int err;               /* a failure the engine met, reported at the next call */
  char errmsg[256];
  /* origin side */
  uint32_t seq;
  long long *epoch_ops;  /* message requests sent to each target since the last fence */
  unsigned char *dirty;  /* ... since its last flush */
  sfw_pend *pend;
  int *locks;            /* lock held on each target: 0, SF_LOCK_SHARED/EXCLUSIVE */
  unsigned char *nocheck;
  int lock_all, fence_open;
  int *access, naccess;  /* PSCW access epoch: target window ranks */
  long long *posts, *posts_used;
  /* target side */
  sf_req *hreq;
  unsigned char *hbuf;
  struct {
    int active, origin;
    sfw_hdr h;
    sf_req *req;
    void *data;          /* the payload being received, or NULL: straight into the window */
  } cur;
  long long done_total, fence_base;
  unsigned private_lock; /* the lock word when there is no control block */
  sfw_lockq *lockq;
  int *exposure, nexposure;
  long long *completes, *completes_used;
  sfw_out *outq;
  /* the wait in progress (win.c sfw_wait_until) */
  struct {
    int (*cond)(sf_win *w, void *arg);
    void *arg;
    int held;  /* cond returned true in the hook (it may have side effects: taking a lock) */
    int rung;
    sf_req *bell;
  } blk;
};

/* win.c */
int sfw_err(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int sfw_dp(int rc, const char *what); /* a data-plane failure, with its message */
int sfw_wait_until(sf_win *w, int (*cond)(sf_win *, void *), const char *(*what)(sf_win *, void *), void *arg, const char *fn);
int sfw_barrier(sf_win *w, const char *fn);
int sfw_pending_err(sf_win *w);
int sfw_check_target(const sf_win *w, const char *fn, int target);

/* rma.c */
int sfw_send_ctl(sf_win *w, int target, int kind, int arg, int wait_answer, const char *fn);
int sfw_local_done(sf_win *w, int target);
int sfw_wait_local(sf_win *w, int target, const char *fn);
void sfw_poll(sf_win *w);
void sfw_start_target(sf_win *w);
void sfw_stop_target(sf_win *w);
_Atomic uint32_t *sfw_lockword(sf_win *w, int target);
int sfw_try_lock(_Atomic uint32_t *word, int type, int holder);
void sfw_release(sf_win *w, int target, int type, int holder);

#endif
