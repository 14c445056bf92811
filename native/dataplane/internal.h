/*
 * internal.h: private layout of the data plane (sf__ names). Not installed, not an API.
 *
 * Shared region (one mmap, MAP_SHARED|MAP_ANONYMOUS, created before the fork):
 *
 *   sf__ctl            magic "SFDP", version, size, ring geometry, abort word
 *   sf__slot[size]     one 64-byte line per rank: doorbell futex word, sleeping flag, pid, state
 *   ring[src][dst]     at ctl->ring_off + (src*size+dst) * ctl->ring_stride:
 *                        sf__ring_hdr (head line, tail line) then ring_bytes of data
 *
 * Frame (32 bytes, 32-byte aligned in the ring so a header never wraps; the payload may):
 *
 *   0  u16 magic 0x5346 ("SF")   2 u8 version   3 u8 type
 *   4  i32 source                8 i32 destination
 *   12 u32 context               16 i32 tag     20 u32 payload length (bytes after the header)
 *   24 u64 aux (request id for rendezvous control frames)
 *
 * The payload length is checked against the ring capacity and the type's fixed sizes before
 * anything is read; a frame that fails a check breaks that ring (SF_EPROTO) and is reported.
 */
#ifndef SF_DATAPLANE_INTERNAL_H
#define SF_DATAPLANE_INTERNAL_H

#include "sf_dataplane.h"

#include <stdatomic.h>
#include <stdarg.h>

#define SF__MAGIC 0x53464450u /* "SFDP" */
#define SF__FRAME_MAGIC 0x5346
#define SF__FRAME_VERSION 1
#define SF__FRAME_ALIGN 32
#define SF__COLL_SLOT 512 /* one rank's slot: sf__coll_hdr, then the payload */
#define SF__COLL_MAX (SF__COLL_SLOT - 16) /* payloads up to this size take the shared-memory path */

/* What a rank posts in its slot, so members can see they called the same collective. */
typedef struct sf__coll_hdr {
  uint32_t gen;
  uint32_t kind;
  int32_t root;
  uint32_t len;
} sf__coll_hdr;

enum {
  SF__F_EAGER = 1, /* payload = the message */
  SF__F_RTS = 2,   /* payload = sf__rts: a rendezvous message is ready at the sender */
  SF__F_FIN = 3,   /* aux = sender's request id: the receiver has copied it */
  SF__F_CTS = 4,   /* aux = sender's request id, payload = u64 receiver's id: stream it */
  SF__F_DATA = 5,  /* aux = receiver's request id, payload = next chunk of a streamed message */
};

typedef struct sf__frame {
  uint16_t magic;
  uint8_t version;
  uint8_t type;
  int32_t src;
  int32_t dst;
  uint32_t ctx;
  int32_t tag;
  uint32_t len;
  uint64_t aux;
} sf__frame;

typedef struct sf__rts {
  uint64_t id;   /* sender's request id */
  uint64_t addr; /* address of the data in the sender */
  uint64_t size; /* message size in bytes */
} sf__rts;

enum { SF__RANK_NONE = 0, SF__RANK_RUNNING = 1, SF__RANK_FINISHED = 2 };

typedef struct sf__slot {
  _Atomic uint32_t bell;     /* futex word: bumped by whoever wakes this rank */
  _Atomic uint32_t sleeping; /* 1 while the rank is (about to be) in FUTEX_WAIT */
  _Atomic int32_t pid;
  _Atomic uint32_t state;
  _Atomic uint32_t fail_reported;
  char pad[64 - 5 * 4];
} sf__slot;

typedef struct sf__ctl {
  uint32_t magic;
  uint32_t version;
  int32_t size;
  uint32_t pad0;
  uint64_t ring_bytes;
  uint64_t ring_stride;
  uint64_t ring_off;
  uint64_t region_bytes;
  uint64_t coll_off;    /* 2 x size slots of SF__COLL_SLOT bytes for small whole-job collectives */
  _Atomic int32_t abort_rank; /* -1: not aborted */
  _Atomic int32_t abort_code;
  _Atomic uint32_t abort_ready; /* cause written */
  char abort_cause[244];
  /* Barrier of the whole job (any group holding every rank in order): a sense-reversing
   * counter; the last rank to arrive flips the sense and rings the sleepers' doorbells. */
  _Alignas(64) _Atomic uint32_t bar_count;
  _Atomic uint32_t bar_sense;
  char pad1[56];
  _Alignas(64) sf__slot slots[]; /* size entries, one cache line each */
} sf__ctl;

typedef struct sf__ring_hdr {
  _Atomic uint64_t head; /* bytes ever written (producer) */
  char pad0[56];
  _Atomic uint64_t tail; /* bytes ever consumed (consumer) */
  char pad1[56];
} sf__ring_hdr;

/* Request kinds and phases. */
enum { SF__REQ_SEND = 1, SF__REQ_RECV = 2 };
enum {
  SF__P_NONE = 0,
  SF__P_QUEUED,   /* send: waiting in outq[dst] to write its eager/RTS frame */
  SF__P_WAITFIN,  /* send: RTS written, waiting for FIN or CTS */
  SF__P_STREAM,   /* send: in outq[dst], streaming DATA frames */
  SF__P_POSTED,   /* recv: in the posted queue */
  SF__P_PIPE,     /* recv: matched, receiving DATA frames */
  SF__P_DONE,
};

/* A queued outgoing item: a send request, or a small control frame of the receiver. */
typedef struct sf__out {
  struct sf__out *next;
  struct sf_req *req; /* NULL: control frame below */
  sf__frame f;
  uint64_t payload;
} sf__out;

/* An unexpected message (arrived before its receive was posted). */
typedef struct sf__unexp {
  struct sf__unexp *next;
  int src;
  uint32_t ctx;
  int tag;
  int rdv;        /* 1: RTS (data still at the sender) */
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
  size_t got;
  /* send */
  const void *sbuf;
  size_t len;
  int dst;
  int sync;
  uint64_t id;
  size_t sent; /* streaming offset */
  uint64_t rid; /* receiver's request id while streaming */
  uint64_t my_id; /* receive: id given to the sender in CTS */
};

struct sf_job {
  sf__ctl *ctl;
  size_t region_bytes;
  int size;
  int rank; /* -1 until attached */
  size_t ring_bytes;
  size_t eager_limit;
  int timeout_ms;
  int spin_us;
  int cma;
  size_t cma_min;
  const char *label;
  int wait_peer;   /* rank the current wait depends on (-1 any, -2 several) */
  int wait_tag;
  int *pidfd;      /* per rank, -1 until opened */
  unsigned char *dead; /* per rank: death noticed */
  unsigned char *broken; /* per source ring: malformed frame seen */
  uint64_t *out_tail_cache; /* per dst: last seen tail of ring[me][dst] */
  sf__out **outq_head;      /* per dst FIFO of queued outgoing items */
  sf__out **outq_tail;
  int outq_count;
  struct sf_req *posted_head, *posted_tail;
  sf__unexp *unexp_head, *unexp_tail;
  struct sf_req *waitfin; /* sends waiting for FIN/CTS */
  struct sf_req *pipes;   /* receives waiting for DATA */
  struct sf_req *freelist;
  uint64_t next_id;
  int proto_err; /* sticky SF_EPROTO once a ring broke */
  uint32_t bar_sense; /* this rank's sense of the whole-job barrier */
  uint32_t coll_gen;  /* small whole-job collectives done: picks the slot set (gen & 1) */
  sf_progress_hook_fn hook; /* sf_job_set_progress_hook */
  void *hook_arg;
  int in_hook;        /* the hook is running: a nested sf_progress does not call it again */
};

/* Error helpers (job.c). sf__err sets the thread's message and returns code. */
int sf__err(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int sf__errno(const char *what); /* SF_ESYS with "what: strerror(errno)" */

/* Rings (p2p.c). */
static inline sf__ring_hdr *sf__ring(const sf_job *job, int src, int dst) {
  return (sf__ring_hdr *)((char *)job->ctl + job->ctl->ring_off +
                          ((size_t)src * (size_t)job->size + (size_t)dst) * job->ctl->ring_stride);
}
static inline sf__slot *sf__slot_of(const sf_job *job, int rank) { return &job->ctl->slots[rank]; }

void sf__wake(sf_job *job, int rank);
int sf__check_health(sf_job *job, const char *why); /* abort word and peer deaths */
int sf__wait_req(sf_job *job, struct sf_req *req, sf_status *st);
/* Block (spin, then sleep on this rank's doorbell, checking health and the timeout every tick)
 * until cond() returns non-zero: returns 0, or cond's negative code, or the wait's failure. */
typedef int (*sf__cond_fn)(sf_job *job, void *arg);
int sf__block(sf_job *job, sf__cond_fn cond, void *arg, const char *dflt_label);
void sf__req_release(sf_job *job, struct sf_req *req);
const char *sf__label(const sf_job *job, const char *dflt);

#endif
