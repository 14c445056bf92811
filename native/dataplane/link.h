/*
 * link.h: what the protocol core knows of a peer. One link per peer rank (the rank itself
 * included: its loopback). The core (core.c) runs matching and the eager/rendezvous protocol
 * and never looks inside a link; a link moves whole frames (frame.h) and reports its health.
 *
 * Two transports implement it, as libuv's streams implement uv_stream_t:
 *   link_shm.c  peers on this host: a single-producer/single-consumer ring per direction in
 *               the host's shared region, futex or eventfd doorbells, and the direct-read
 *               capability (process_vm_readv: a rendezvous message is copied once)
 *   link_tcp.c  peers on other hosts: one authenticated stream socket per peer pair (the
 *               handshake happens before the data plane gets the fd), frames written with
 *               writev, partial writes kept by the link, EOF without BYE = peer gone
 *
 * Contract of put(): either the whole frame is taken (written, or kept by the link to be
 * flushed, copying what it must: the caller may reuse its buffers at once) and 1 is returned,
 * or nothing is taken and 0 is returned (the core queues the frame, in order, and retries on
 * progress); a negative SF_E* code means the link is broken.
 *
 * poll() hands every complete incoming frame, in order, to sf__deliver() with the payload
 * still inside the link (sf__payload), so a matched receive is filled with a single copy.
 */
#ifndef SF_DATAPLANE_LINK_H
#define SF_DATAPLANE_LINK_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "frame.h"

typedef struct sf_job sf_job;
typedef struct sf__link sf__link;
struct sf_req;

/* The payload of an incoming frame, where the link holds it: a ring (cap > 0, a power of two,
 * starting at ring position pos) or a linear buffer (cap == 0, starting at base). */
typedef struct sf__payload {
  const unsigned char *base;
  size_t cap;
  uint64_t pos;
} sf__payload;

static inline void sf__payload_copy(const sf__payload *p, size_t off, void *dst, size_t n) {
  if (n == 0) return;
  if (p->cap == 0) {
    memcpy(dst, p->base + off, n);
    return;
  }
  {
    size_t at = (size_t)((p->pos + off) & (p->cap - 1)), first = p->cap - at;
    if (n <= first) {
      memcpy(dst, p->base + at, n);
    } else {
      memcpy(dst, p->base + at, first);
      memcpy((unsigned char *)dst + first, p->base, n - first);
    }
  }
}

/* Capabilities. */
#define SF__LINK_DIRECT 1u /* the peer's memory can be read directly (rendezvous in one copy) */

/* States. A link goes UP -> FINISHED (the peer said BYE / marked itself finished) or DOWN
 * (the peer died, hung up, or sent a malformed frame); both are final. */
enum { SF__LINK_UP = 0, SF__LINK_FINISHED = 1, SF__LINK_DOWN = 2 };

typedef struct sf__link_ops {
  const char *kind; /* for messages: "shared memory", "TCP" */
  int (*put)(sf__link *l, const sf__frame *f, const void *p1, size_t n1, const void *p2, size_t n2);
  int (*poll)(sf__link *l);
  int (*readable)(sf__link *l);
  int (*flush)(sf__link *l);                                   /* NULL: keeps nothing back */
  long (*direct_read)(sf__link *l, void *dst, uint64_t addr, size_t n); /* NULL: no DIRECT */
  void (*health)(sf__link *l, int deep); /* deep: may make system calls (once per tick) */
  /* Claims (frame.h), NULL on links without them. arm: a claim for an RTS about to be written
   * (0: none free; *gen set); resolve: take (receiver) or take back (sender) claim `c` of
   * generation `gen`: 1 won, 0 the other side won; release: the sender is done with it. */
  uint32_t (*claim_arm)(sf__link *l, uint32_t *gen);
  int (*claim_resolve)(sf__link *l, uint32_t c, uint32_t gen, int take_back);
  void (*claim_release)(sf__link *l, uint32_t c);
  void (*close)(sf__link *l);
} sf__link_ops;

/* An outgoing item waiting for room on a link: a send request (req != NULL: its frames are
 * made from the request), or a control frame (req == NULL: the node is the head of an
 * sf__ctl_out). Every send request holds a node, so it is two words, not a frame buffer. */
typedef struct sf__out {
  struct sf__out *next;
  struct sf_req *req;
} sf__out;

/* A queued control frame with its small payload (allocated; freed once written). */
typedef struct sf__ctl_out {
  sf__out o; /* first: the queue holds &o */
  sf__frame f;
  unsigned char p[4 + SF__ABORT_CAUSE_MAX]; /* control payload (CTS id, ABORT code + cause) */
} sf__ctl_out;

struct sf__link {
  const sf__link_ops *ops;
  sf_job *job;
  int peer;            /* world rank */
  unsigned caps;
  size_t max_frame;    /* largest payload of one frame on this link */
  size_t eager_limit;  /* messages up to this size go eagerly */
  size_t chunk;        /* DATA frames of a streamed message carry this much */
  int state;           /* SF__LINK_UP / FINISHED / DOWN */
  int broken;          /* a malformed frame was seen (DOWN by our decision) */
  char why[200];       /* DOWN: "was killed by signal 9 (SIGKILL)", "closed its connection" */
  int wstatus;         /* DOWN by death on this host: wait(2) status when known, else -1 */
  int ready;           /* the wait set saw its socket readable (links with an fd) */
  int rdv_waiting;     /* sends to this peer whose RTS waits for FIN or CTS (core.c) */
  sf__out *outq_head, *outq_tail;
};

/* The core's entry for incoming frames (core.c): 0, or <0 to break the link. */
int sf__deliver(sf_job *job, sf__link *l, const sf__frame *f, const sf__payload *p);

/* Marks a link broken by a malformed frame: DOWN, reported once (SF_EPROTO). */
int sf__link_proto(sf__link *l, const char *what, unsigned long long v);

/* Marks a link DOWN with a reason (first reason wins). */
void sf__link_down(sf__link *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Constructors (link_shm.c, link_tcp.c). */
sf__link *sf__shm_link_new(sf_job *job, int peer);
sf__link *sf__tcp_link_new(sf_job *job, int peer, int fd);

#endif
