/*
 * frame.h: the one frame of the cluster network, on every link (shared-memory ring, TCP).
 *
 * Every frame is a fixed 32-byte header followed by `len` payload bytes:
 *
 *    0       2       3       4               8               12
 *    +-------+-------+-------+---------------+---------------+
 *    | magic |version| type  | source (i32)  | dest (i32)    |    source/dest: world ranks
 *    +-------+-------+-------+---------------+---------------+
 *    12              16              20              24              28              32
 *    +---------------+---------------+---------------+---------------+---------------+
 *    | context (u32) | tag (i32)     | length (u32)  | dtype (u32)   | aux (u32)     |
 *    +---------------+---------------+---------------+---------------+---------------+
 *
 *   magic   0x5346 ("SF"), little-endian like every field (the cluster is one architecture:
 *           a frame from a host of other endianness fails the magic check)
 *   version SF__FRAME_VERSION; a frame of another version is refused, never guessed at
 *   length   payload bytes after the header; checked against the link's frame limit and the
 *            type's fixed size BEFORE anything is read
 *   dtype    the sender's element type, opaque to the data plane: carried to the receiver's
 *            status and compared with a typed receive's expectation (sf_irecv_typed)
 *   aux      request id of the rendezvous frames (RTS/FIN/CTS/CONV: the sender's request,
 *            DATA: the receiver's)
 *
 * Types and payloads:
 *   EAGER  the message itself
 *   RTS    sf__rts: a rendezvous message waits at the sender (address for a direct read, size,
 *          and the claim that lets the sender take it back: below)
 *   FIN    none: the receiver has read the message directly; the send completes
 *   CTS    u32 receiver request id: stream the message as DATA frames
 *   DATA   the next chunk of a streamed message
 *   BYE    none: the sender has finished (MPI_Finalize); its link may close without alarm
 *   ABORT  i32 code, then the cause (text, no NUL): the job is aborted by `source`
 *   CONV   the message of RTS `aux` itself: its sender took it back (below) and no longer holds it
 *
 * Claims (shared-memory links only): a message of up to the eager limit that goes by rendezvous
 * on a link that reads directly is still buffered, as an eager one would be: its RTS names a
 * claim word in shared memory (sf__rts.claim, .gen; claim 0: none). The receiver, once matched,
 * takes the claim (compare-and-swap ARMED -> TAKEN) before it reads the sender's memory; a
 * sender whose RTS was not taken soon enough takes it back (ARMED -> CONVERTED), sends the
 * message as CONV and completes. Exactly one side wins, so the sender's buffer is never read
 * after its send completed, and a program that relies on eager buffering cannot deadlock.
 *
 * A frame that fails any check breaks its link (both ways, SF_EPROTO, reported once with the
 * peer's rank): it never reaches the program and never crashes a rank.
 */
#ifndef SF_DATAPLANE_FRAME_H
#define SF_DATAPLANE_FRAME_H

#include <stddef.h>
#include <stdint.h>

#define SF__FRAME_MAGIC 0x5346
#define SF__FRAME_VERSION 3
#define SF__FRAME_BYTES 32

enum {
  SF__F_EAGER = 1,
  SF__F_RTS = 2,
  SF__F_FIN = 3,
  SF__F_CTS = 4,
  SF__F_DATA = 5,
  SF__F_BYE = 6,
  SF__F_ABORT = 7,
  SF__F_CONV = 8,
  SF__F_TYPES
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
  uint32_t dtype;
  uint32_t aux;
} sf__frame;

_Static_assert(sizeof(sf__frame) == SF__FRAME_BYTES, "the frame header is 32 bytes");

typedef struct sf__rts {
  uint64_t addr;  /* address of the data in the sender (for a direct read) */
  uint64_t size;  /* message size in bytes */
  uint32_t claim; /* 1 + the claim word's index on the link's ring, 0: no claim */
  uint32_t gen;   /* the claim's generation (a stale RTS cannot take a reused word) */
} sf__rts;

/* Longest cause carried by an ABORT frame. */
#define SF__ABORT_CAUSE_MAX 240

/* Checks a header received from `peer` by the world rank `me`, for a link whose frames are at
 * most `max_len` payload bytes. Returns NULL when it is well-formed, else what is wrong (and
 * *bad the offending value). */
static inline const char *sf__frame_check(const sf__frame *f, int peer, int me, size_t max_len,
                                          unsigned long long *bad) {
  if (f->magic != SF__FRAME_MAGIC) return *bad = f->magic, "bad magic";
  if (f->version != SF__FRAME_VERSION) return *bad = f->version, "bad version";
  if (f->type < SF__F_EAGER || f->type >= SF__F_TYPES) return *bad = f->type, "unknown frame type";
  if (f->src != peer) return *bad = (unsigned)f->src, "wrong source";
  if (f->dst != me) return *bad = (unsigned)f->dst, "wrong destination";
  if ((size_t)f->len > max_len) return *bad = f->len, "bad length (beyond the link's frame limit)";
  switch (f->type) {
  case SF__F_RTS:
    if (f->len != sizeof(sf__rts)) return *bad = f->len, "bad RTS length";
    break;
  case SF__F_CTS:
    if (f->len != 4) return *bad = f->len, "bad CTS length";
    break;
  case SF__F_FIN:
  case SF__F_BYE:
    if (f->len != 0) return *bad = f->len, "payload on a control frame";
    break;
  case SF__F_ABORT:
    if (f->len < 4 || f->len > 4 + SF__ABORT_CAUSE_MAX) return *bad = f->len, "bad ABORT length";
    break;
  default:
    break;
  }
  return NULL;
}

#endif
