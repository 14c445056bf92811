/*
 * internal.h: private layout of the data plane (sf__ names). Not installed, not an API.
 *
 * A job spans hosts; each host's ranks share one region (MAP_SHARED|MAP_ANONYMOUS, made by the
 * host's first rank before it forks the others), indexed by LOCAL rank (0..nlocal-1):
 *
 *   sf__ctl              magic "SFDP", version, geometry, the host's abort word, the
 *                        whole-host barrier
 *   sf__slot[nlocal]     one 64-byte line per local rank: doorbell, sleeping mode, pid, state,
 *                        failure-reported flag, wait status of a death
 *   coll[2][nlocal]      SF__COLL_SLOT bytes per local rank: small whole-host collectives
 *   ring[src][dst]       nlocal * nlocal rings of sf__ring_hdr + ring_bytes: frames (frame.h)
 *
 * Every process holds a private sf_job with the world → (host, local rank) map, one link per
 * world rank (link.h), and its matching queues.
 */
#ifndef SF_DATAPLANE_INTERNAL_H
#define SF_DATAPLANE_INTERNAL_H

#include "sf_dataplane.h"
#include "frame.h"
#include "link.h"

#include <stdarg.h>
#include <stdatomic.h>

#define SF__MAGIC 0x53464450u /* "SFDP" */
#define SF__FRAME_ALIGN 32    /* frames in a ring start 32-aligned, so a header never wraps */
#define SF__COLL_SLOT 512     /* one rank's slot: sf__coll_hdr, then the payload */
#define SF__COLL_MAX SF_COLL_FAST_MAX /* the payload after the slot's 16-byte header */
_Static_assert(SF__COLL_MAX + 16 == SF__COLL_SLOT, "a collective slot holds its header and SF_COLL_FAST_MAX bytes");

/* What a rank posts in its collective slot, so members see they called the same collective. */
typedef struct sf__coll_hdr {
  uint32_t gen;
  uint32_t kind;
  int32_t root;
  uint32_t len;
} sf__coll_hdr;

/* Local rank states, written by the rank itself (RUNNING, FINISHED) or by its parent's watcher
 * (DEAD, with the wait status). */
enum { SF__RANK_NONE = 0, SF__RANK_RUNNING = 1, SF__RANK_FINISHED = 2, SF__RANK_DEAD = 3 };

/* Sleeping modes of a rank, read by whoever wants to wake it. */
enum { SF__AWAKE = 0, SF__SLEEP_FUTEX = 1, SF__SLEEP_EVENT = 2 };

typedef struct sf__slot {
  _Atomic uint32_t bell;     /* futex word: bumped by whoever wakes this rank */
  _Atomic uint32_t sleeping; /* SF__AWAKE / SF__SLEEP_FUTEX / SF__SLEEP_EVENT (eventfd) */
  _Atomic int32_t pid;
  _Atomic uint32_t state;
  _Atomic uint32_t fail_reported;
  _Atomic int32_t wstatus;   /* DEAD: wait(2) status, -1 unknown */
  char pad[64 - 6 * 4];
} sf__slot;

typedef struct sf__ctl {
  uint32_t magic;
  uint32_t version;
  int32_t nlocal;
  int32_t world;
  uint64_t ring_bytes;
  uint64_t ring_stride;
  uint64_t ring_off;
  uint64_t region_bytes;
  uint64_t coll_off;
  /* 1: a rank that announces sleep also runs membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED) before
   * it re-checks, so a rank of this host that registered for it (sf_job.asym) publishes a frame
   * and reads the peer's sleeping word with no fence between (wait.c). Set by the region's
   * creator, the same for every rank of the host. */
  uint32_t asym;
  /* The host's copy of the job's abort word (ABORT frames carry it to other hosts). */
  _Atomic int32_t abort_rank; /* world rank; -1: not aborted */
  _Atomic int32_t abort_code;
  _Atomic uint32_t abort_ready; /* cause written */
  char abort_cause[SF__ABORT_CAUSE_MAX + 4];
  /* Barrier of all local ranks: a sense-reversing counter; the last rank to arrive flips the
   * sense and rings the sleepers. */
  _Alignas(64) _Atomic uint32_t bar_count;
  _Atomic uint32_t bar_sense;
  char pad1[56];
  _Alignas(64) sf__slot slots[]; /* nlocal entries */
} sf__ctl;

/* Claim words per ring (frame.h): gen << 2 | state, written by the ring's producer (arm, take
 * back) and consumer (take). */
#define SF__CLAIMS 64
enum { SF__CLAIM_FREE = 0, SF__CLAIM_ARMED = 1, SF__CLAIM_TAKEN = 2, SF__CLAIM_CONVERTED = 3 };

typedef struct sf__ring_hdr {
  _Atomic uint64_t head; /* bytes ever written (producer; for inspection: consumers poll records) */
  char pad0[56];
  _Atomic uint64_t tail; /* bytes ever consumed (consumer) */
  char pad1[56];
  _Atomic uint64_t claim[SF__CLAIMS];
} sf__ring_hdr;

/* Request kinds and phases. */
enum { SF__REQ_SEND = 1, SF__REQ_RECV = 2 };
enum {
  SF__P_NONE = 0,
  SF__P_QUEUED,  /* send: waiting in its link's outq to write its eager/RTS frame */
  SF__P_WAITFIN, /* send: RTS written, waiting for FIN or CTS */
  SF__P_STREAM,  /* send: in its link's outq, streaming DATA frames */
  SF__P_POSTED,  /* recv: in the posted queue */
  SF__P_PIPE,    /* recv: matched, receiving DATA frames (or the CONV frame: conv set) */
  SF__P_CONV,    /* send: taken back, in its link's outq to write its CONV frame */
  SF__P_DONE,
};

/* Receive flavours. */
#define SF__RECV_ALLOC 1u /* the buffer is allocated at match (sf_irecv_alloc) */

/* An unexpected message (arrived before its receive was posted). */
typedef struct sf__unexp {
  struct sf__unexp *next;
  int src;
  uint32_t ctx;
  int tag;
  uint32_t dtype;
  uint32_t id; /* rendezvous: the sender's request id */
  int rdv;     /* 1: RTS (data still at the sender) */
  size_t size;
  sf__rts rts;
  unsigned char *data; /* eager copy (malloc) */
} sf__unexp;

struct sf_req {
  int kind;
  int phase;
  int freed; /* user released it: free on completion */
  int err;   /* 0 or SF_E* once done */
  sf_status st;
  struct sf_req *next; /* in posted/waitfin/pipe lists, or the free list */
  sf__out out;         /* send: its outq node */
  /* receive */
  void *buf;
  size_t cap;
  int src;
  uint32_t ctx;
  int tag;
  int32_t expect; /* typed receive: the dtype it accepts, or SF_ANY_DTYPE */
  unsigned flags; /* SF__RECV_ALLOC */
  size_t got;
  uint32_t my_id; /* receive: id given to the sender in CTS */
  int conv;       /* receive: waits for the CONV frame of sender request conv_id from st.source */
  int nomem;      /* receive: its buffer could not be allocated (fails with SF_ENOMEM) */
  uint32_t conv_id;
  /* send */
  const void *sbuf;
  size_t len;
  int dst;
  int sync;
  uint32_t dtype;
  uint32_t id;
  size_t sent;  /* streaming offset */
  uint32_t rid; /* receiver's request id while streaming */
  uint32_t claim, gen; /* the RTS's claim (0: none) while it may still be taken back */
  double rts_t;        /* when the RTS was written (sf_now) */
};

struct sf_job {
  /* World and placement. */
  int size;        /* world ranks */
  int rank;        /* this process's world rank; -1 until attached */
  int host;        /* this host's id */
  int *host_of;    /* per world rank */
  int *local_of;   /* per world rank: local rank on its host */
  int nlocal;      /* ranks on this host */
  int *local_world; /* per local rank: its world rank */
  int me;          /* this process's local rank; -1 until attached */

  /* This host's shared region. */
  sf__ctl *ctl;
  size_t region_bytes;
  size_t ring_bytes;
  int *evfd;       /* per local rank: the eventfd that wakes it in SF__SLEEP_EVENT mode */

  /* Links, per world rank (NULL until made: at attach for local peers, by
   * sf_job_add_link_fd for remote ones). */
  sf__link **links;
  int nremote;     /* TCP links */
  int epfd;        /* epoll set of this process: its eventfd + TCP sockets; -1 until needed */
  int armed;       /* sf_job_arm_wakeup: peers ring the eventfd even while this rank runs */
  int asym;        /* registered for ctl->asym: wake checks need no fence (sf__wake_fence) */

  /* Options. */
  size_t eager_limit;
  int timeout_ms;
  int spin_us;
  int cma;
  size_t cma_min;
  size_t pipe_eager; /* behind a waiting rendezvous, messages up to this go eagerly (core.c) */

  /* Waiting and messages. */
  const char *label;
  int wait_peer;   /* rank the current wait depends on (-1 any, -2 several, -3 host barrier) */
  int wait_tag;
  int outq_count;  /* items queued on every link */
  struct sf_req *posted_head, *posted_tail;
  sf__unexp *unexp_head, *unexp_tail;
  struct sf_req *waitfin; /* sends waiting for FIN/CTS */
  struct sf_req *pipes;   /* receives waiting for DATA or CONV */
  int nclaims;            /* sends in waitfin that may still be taken back */
  unsigned claim_tick;    /* progress calls since the last look at their age */
  struct sf_req *freelist;
  uint32_t next_id;
  int proto_err;     /* a link broke on a malformed frame */
  uint32_t bar_sense; /* this rank's sense of the whole-host barrier */
  uint32_t coll_gen;  /* small whole-host collectives done: picks the slot set (gen & 1) */
  sf_progress_hook_fn hook;
  void *hook_arg;
  int in_hook;
};

/* Errors (errors.c). sf__err sets the thread's message and returns code. */
int sf__err(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int sf__errno(const char *what); /* SF_ESYS with "what: strerror(errno)" */

/* The region (job.c). */
static inline sf__slot *sf__slot_of(const sf_job *job, int local) { return &job->ctl->slots[local]; }
static inline sf__ring_hdr *sf__ring(const sf_job *job, int src_local, int dst_local) {
  return (sf__ring_hdr *)((char *)job->ctl + job->ctl->ring_off +
                          ((size_t)src_local * (size_t)job->nlocal + (size_t)dst_local) * job->ctl->ring_stride);
}
static inline int sf__is_local(const sf_job *job, int world) { return job->host_of[world] == job->host; }

/* Wakes local rank `local` if it sleeps / a rank of this host by its world rank (wait.c). */
void sf__wake_local(sf_job *job, int local);
/* Between publishing something a sleeper re-checks and reading its sleeping word: a full fence,
 * unless sleepers of this host run membarrier after announcing sleep (ctl->asym) and this
 * process registered for it. Then the compiler barrier suffices: a store-buffer drain on every
 * frame was most of a small send's cost (it waits for the ring line's ownership). */
static inline void sf__wake_fence(const sf_job *job) {
  if (job->asym)
    atomic_signal_fence(memory_order_seq_cst);
  else
    atomic_thread_fence(memory_order_seq_cst);
}
/* Whether membarrier's GLOBAL_EXPEDITED is usable here (creator: ctl->asym; SFMPI_MEMBARRIER=0
 * turns it off) / registers this process for it (attach: job->asym) (wait.c). */
int sf__asym_available(void);
int sf__asym_register(void);
void sf__wake(sf_job *job, int rank);
/* Records an abort (from this rank, or an ABORT frame): first one wins; wakes local ranks. */
void sf__note_abort(sf_job *job, int rank, int code, const char *cause);

/* Protocol core (core.c). */
int sf__put_ctl(sf_job *job, sf__link *l, uint8_t type, uint32_t aux, const void *payload, size_t n);
void sf__push_out(sf_job *job);
void sf__req_release(sf_job *job, struct sf_req *req);
int sf__wait_req(sf_job *job, struct sf_req *req, sf_status *st);

/* Waiting (wait.c): block (spin, then sleep on this rank's doorbell, checking health and the
 * timeout every tick) until cond() returns non-zero: returns 0, cond's negative code, or the
 * wait's failure. */
typedef int (*sf__cond_fn)(sf_job *job, void *arg);
int sf__block(sf_job *job, sf__cond_fn cond, void *arg, const char *dflt_label);
int sf__check_health(sf_job *job, const char *why, int deep);
void sf__events_poll(sf_job *job); /* readiness of the links' sockets, without waiting */
const char *sf__label(const sf_job *job, const char *dflt);
int sf__epoll_add(sf_job *job, int fd, uint64_t data);

#endif
