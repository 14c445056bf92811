/*
 * sf_mcast.h: multicast distribution of region pages to every seed of a cluster (SnowFlock's
 * fourth technique). Pages that the memory server sends to one seed go, by UDP multicast on the
 * cluster interface, to every seed of the job, which installs them where they are still
 * missing; N seeds then cost about what one costs. The wire format, pacing, lockstep window
 * and end game are described in native/lazy/multicast.c and docs/multicast.md.
 *
 * Plain C, no Node: the sender runs inside the memory server (a forked, C-only process), the
 * receiver is a thread in each seed. Both are thread-safe. Every function returns 0 (or a
 * count) on success and a negative SF_MCAST_E* code on failure; the message of the last
 * failure on the calling thread is sf_mcast_last_error(). Nothing here prints or exits.
 *
 * Every datagram carries an HMAC-SHA256 (OpenSSL libcrypto) under a 32-byte key that the
 * caller derives from the job secret (xen/mcast.ts: HKDF-SHA256 over the secret, the job id
 * and the session): no key derivation happens in C.
 */
#ifndef SF_MCAST_H
#define SF_MCAST_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SF_MCAST_VERSION 1       /* wire version: a datagram of another version is dropped */
#define SF_MCAST_HEADER 80       /* header bytes before every payload */
#define SF_MCAST_MAX_DATAGRAM 65507 /* largest UDP payload over IPv4 */
#define SF_MCAST_KEY_BYTES 32    /* HMAC-SHA256 key */
#define SF_MCAST_MAX_REGIONS 1024

/* Datagram types. */
#define SF_MCAST_PAGES 1  /* a byte range of one region's pages */
#define SF_MCAST_END 2    /* the sender finished a pass over pages [page, page+count) */
#define SF_MCAST_REPORT 3 /* receiver -> sender, unicast: loss counters, for flow control */

/* Error codes. */
#define SF_MCAST_EINVAL (-1)    /* bad argument (the message names it) */
#define SF_MCAST_ENOMEM (-2)    /* out of memory */
#define SF_MCAST_ESYS (-3)      /* a system call failed (the message names it and errno) */
#define SF_MCAST_ECRYPTO (-4)   /* libcrypto refused (the message names the call) */
#define SF_MCAST_ECLOSED (-5)   /* aborted or closed while working */
#define SF_MCAST_ETIMEDOUT (-6) /* the socket accepted nothing for the send deadline */
#define SF_MCAST_EINSTALL (-7)  /* the install callback failed */

/* The message of the last failure on this thread ("" if none). */
const char *sf_mcast_last_error(void);

/* ---------------------------------------------------------------- datagrams */

/* One datagram's header fields, as sf_mcast_pack writes them (and the receiver reads them). */
typedef struct sf_mcast_dgram {
  uint8_t type;       /* SF_MCAST_PAGES, _END or _REPORT */
  uint8_t page_shift; /* log2 of the region's page size, 12..21 */
  uint64_t job;       /* the job's id */
  uint32_t session;   /* the fork point within the job (each has its own snapshot and key) */
  uint32_t region;    /* region id */
  uint64_t seq;       /* sender's datagram counter */
  uint32_t page;      /* first page the payload touches (END: first page of the pass) */
  uint32_t offset;    /* byte offset of the payload in that page (multiple of page/256) */
  uint32_t count;     /* END: pages in the pass; otherwise 0 */
} sf_mcast_dgram;

/* Writes header + HMAC + payload (length bytes) into out (cap bytes). Returns the datagram's
 * size, or SF_MCAST_EINVAL if it does not fit. For the adversary fixtures of the tests, and the
 * format's one writer besides the sender. */
long sf_mcast_pack(const sf_mcast_dgram *d, const void *payload, size_t length,
                   const unsigned char key[SF_MCAST_KEY_BYTES], void *out, size_t cap);

/* ---------------------------------------------------------------- sender */

typedef struct sf_mcast_sender sf_mcast_sender;

typedef struct sf_mcast_sender_opts {
  const char *group;     /* IPv4 multicast group, dotted ("239.77.12.34") */
  uint16_t port;         /* UDP port of the group */
  const char *iface;     /* this host's cluster address: IP_MULTICAST_IF and the source */
  unsigned char key[SF_MCAST_KEY_BYTES];
  uint64_t job;
  uint32_t session;
  int loopback;          /* also deliver to receivers on this host (IP_MULTICAST_LOOP) */
  unsigned mtu;          /* 0: the interface's MTU */
  unsigned chunk;        /* payload bytes per datagram; 0: the most that fits the MTU */
  double rate;           /* pace ceiling, bytes/s on the wire; 0: 400 MB/s */
  double min_rate;       /* flow control never paces below this; 0: rate / 16 */
  unsigned lockstep_ms;  /* a page sent this recently is not sent again; 0: 20 ms, -1u: off */
  int gso;               /* UDP GSO (UDP_SEGMENT): 1 on, 0 off, -1 on where the kernel takes it */
  uint16_t report_port;  /* UDP port on iface for receivers' loss reports; 0: no flow control */
  unsigned sndbuf;       /* socket send buffer; 0: 4 MiB */
  unsigned timeout_ms;   /* a send that makes no progress this long fails; 0: 5000 */
} sf_mcast_sender_opts;

typedef struct sf_mcast_sender_stats {
  uint64_t datagrams;   /* datagrams sent (PAGES and END) */
  uint64_t bytes;       /* page bytes sent */
  uint64_t wire_bytes;  /* bytes on the wire, with IP, UDP and our headers */
  uint64_t pages;       /* pages sent */
  uint64_t suppressed;  /* pages not sent because they went out within the lockstep window */
  uint64_t calls;       /* sendmsg/sendmmsg calls */
  uint64_t retries;     /* sends retried after ENOBUFS/EAGAIN */
  uint64_t reports;     /* loss reports accepted */
  uint64_t bad_reports; /* report datagrams refused (forged, malformed, another job) */
  uint64_t cuts;        /* times flow control lowered the rate */
  double rate;          /* the pace now, bytes/s */
  unsigned chunk;       /* payload bytes per datagram */
  unsigned mtu;
  int gso;              /* 1 if UDP GSO is in use */
} sf_mcast_sender_stats;

/* Opens the sender: socket, interface, group, key. *out is set on success. */
int sf_mcast_sender_open(const sf_mcast_sender_opts *opts, sf_mcast_sender **out);

/* Declares a region (its id, pages and page size): needed before pages of it are sent. */
int sf_mcast_sender_add_region(sf_mcast_sender *s, uint32_t region, uint32_t npages, uint32_t page_size);

#define SF_MCAST_FORCE 1u /* send even pages within the lockstep window (a whole push, the end) */

/* Multicasts pages [first, first+count) of `region`, whose bytes are at `data` (count pages).
 * Paced; blocks until every datagram is handed to the kernel. Pages sent within the lockstep
 * window are skipped (unless SF_MCAST_FORCE): several seeds faulting the same page at once
 * cause one transmission. If `skipped` is not NULL, skipped[i] is set to 1 for each page i of
 * the range that was skipped, 0 otherwise. Returns the number of pages sent. */
long sf_mcast_send(sf_mcast_sender *s, uint32_t region, uint32_t first, uint32_t count, const void *data,
                   unsigned flags, unsigned char *skipped);

/* Multicasts END for pages [first, first+count) of `region` (three times over 10 ms: an END
 * may be lost like any datagram; a receiver that hears none falls back on silence). */
int sf_mcast_send_end(sf_mcast_sender *s, uint32_t region, uint32_t first, uint32_t count);

/* Whether `page` of `region` went out within the lockstep window (1), or not (0). */
int sf_mcast_recent(sf_mcast_sender *s, uint32_t region, uint32_t page);

void sf_mcast_sender_stats_get(sf_mcast_sender *s, sf_mcast_sender_stats *out);

/* Makes running and later sends return SF_MCAST_ECLOSED soon (between two datagram batches). */
void sf_mcast_sender_abort(sf_mcast_sender *s);

/* Closes the socket and frees the sender. No send may be running. */
void sf_mcast_sender_close(sf_mcast_sender *s);

/* ---------------------------------------------------------------- receiver */

typedef struct sf_mcast_receiver sf_mcast_receiver;

/* Installs pages [first, first+count) of `region` from `data` where they are still missing;
 * returns how many it installed (0..count), or < 0 on a failure that stops the receiver.
 * sf_lazy_install has this shape. Called from the receiver thread and from
 * sf_mcast_receiver_install: it must be thread-safe. */
typedef int (*sf_mcast_install_fn)(void *ctx, uint32_t region, uint32_t first, uint32_t count, const void *data);

/* Optional: whether a page is already present (fetched by the fault path, say); such pages are
 * neither staged nor listed as missing. */
typedef int (*sf_mcast_present_fn)(void *ctx, uint32_t region, uint32_t page);

typedef struct sf_mcast_region {
  uint32_t id;
  uint32_t npages;
  uint32_t page_size; /* a power of two, 4 KiB .. 2 MiB */
} sf_mcast_region;

typedef struct sf_mcast_receiver_opts {
  const char *group;
  uint16_t port;
  const char *iface;          /* this host's cluster address: the group is joined there only */
  unsigned char key[SF_MCAST_KEY_BYTES];
  uint64_t job;
  uint32_t session;
  const sf_mcast_region *regions;
  size_t nregions;
  unsigned rcvbuf;            /* receive buffer asked for; 0: 16 MiB (SO_RCVBUFFORCE when allowed) */
  const char *report_addr;    /* the sender's address for loss reports; NULL: no reports */
  uint16_t report_port;
  sf_mcast_install_fn install;
  sf_mcast_present_fn present; /* may be NULL */
  void *ctx;
} sf_mcast_receiver_opts;

typedef struct sf_mcast_receiver_stats {
  uint64_t datagrams;  /* datagrams read from the socket */
  uint64_t accepted;   /* datagrams that passed every check */
  uint64_t bytes;      /* page bytes in accepted datagrams */
  uint64_t installed;  /* pages installed from multicast (the install callback said so) */
  uint64_t duplicates; /* pages that arrived when already present */
  uint64_t dropped;    /* datagrams refused, all causes: the next five */
  uint64_t malformed;  /* too short, truncated, oversized, bad magic/version/type/flags/range */
  uint64_t other_job;  /* another job or session */
  uint64_t forged;     /* HMAC mismatch */
  uint64_t other_if;   /* arrived on another interface than the cluster one */
  uint64_t overflow;   /* datagrams the kernel dropped for a full receive buffer (SO_RXQ_OVFL) */
  uint64_t gaps;       /* datagrams missing from the sender's sequence: lost anywhere */
  uint64_t incomplete; /* partly received pages given up (staging full) */
  uint64_t ends;       /* END datagrams accepted */
  uint64_t reports;    /* loss reports sent */
  uint64_t end_installed; /* pages installed through sf_mcast_receiver_install (the end game) */
  int rcvbuf;          /* the receive buffer the kernel granted, bytes */
  int failed;          /* the thread stopped on an error: see sf_mcast_receiver_error */
} sf_mcast_receiver_stats;

/* Opens the socket, joins the group on the cluster interface and starts the receiver thread. */
int sf_mcast_receiver_open(const sf_mcast_receiver_opts *opts, sf_mcast_receiver **out);

void sf_mcast_receiver_stats_get(sf_mcast_receiver *r, sf_mcast_receiver_stats *out);

/* The message that stopped the receiver thread, or "" while it runs. */
const char *sf_mcast_receiver_error(sf_mcast_receiver *r);

/* The still-missing pages of `region`, for the unicast end game: writes up to `cap` runs as
 * (first, count) pairs into runs[2*i], runs[2*i+1] and their number into *nruns (which may
 * exceed cap: call again with more room). Returns the number of missing pages. */
long sf_mcast_receiver_missing(sf_mcast_receiver *r, uint32_t region, uint32_t *runs, size_t cap, size_t *nruns);

/* Installs pages fetched another way (the end game's unicast) through the install callback and
 * records them as present. Returns how many were installed. */
int sf_mcast_receiver_install(sf_mcast_receiver *r, uint32_t region, uint32_t first, uint32_t count, const void *data);

/* The last END seen for `region`: 1 with *first and *count set, or 0 if none yet. */
int sf_mcast_receiver_last_end(sf_mcast_receiver *r, uint32_t region, uint32_t *first, uint32_t *count);

/* Stops the thread, leaves the group, frees everything. */
void sf_mcast_receiver_close(sf_mcast_receiver *r);

#ifdef __cplusplus
}
#endif

#endif
