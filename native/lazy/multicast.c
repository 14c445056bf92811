/*
 * multicast.c: region pages to every seed of a cluster by UDP multicast (sf_mcast.h).
 *
 * The datagram (version 1), every field little-endian like the cluster network's frames (the
 * cluster is one architecture; a datagram of another endianness fails the magic check):
 *
 *    0               4       5       6       7       8
 *    +---------------+-------+-------+-------+-------+
 *    | magic "SFMC"  |version| type  | shift | flags |      shift: log2 page size (12..21)
 *    +---------------+-------+-------+-------+-------+      flags: 0 (anything else: refused)
 *    8                               16              20              24
 *    +-------------------------------+---------------+---------------+
 *    | job (u64)                     | session (u32) | region (u32)  |
 *    +-------------------------------+---------------+---------------+
 *    24                              32              36              40              44              48
 *    +-------------------------------+---------------+---------------+---------------+---------------+
 *    | seq (u64)                     | page (u32)    | offset (u32)  | length (u32)  | count (u32)   |
 *    +-------------------------------+---------------+---------------+---------------+---------------+
 *    48                                                                                              80
 *    +-----------------------------------------------------------------------------------------------+
 *    | mac = HMAC-SHA256(key, bytes 0..47 | payload)                                                 |
 *    +-----------------------------------------------------------------------------------------------+
 *    80
 *    +---- payload: `length` bytes ----
 *
 *   PAGES   payload = bytes [offset, offset + length) counted from the start of `page` of
 *           `region`: whole pages, or a slice of one or two pages when a page does not fit the
 *           MTU (4 KiB pages at MTU 1500 travel as 2.9 datagrams; see "Chunks" below). offset
 *           and length are multiples of page/256; the range lies inside the region; length > 0
 *           and the datagram is exactly 80 + length bytes. count = 0.
 *   END     the sender finished a pass over pages [page, page + count); length = 0.
 *   REPORT  receiver -> sender, unicast to the sender's report port: payload = four u64
 *           (datagrams read, kernel overflow drops, sequence gaps, pages installed); length 32.
 *
 * A datagram is checked in this order, the cheap checks first, and counted under the first
 * check it fails: interface (it must arrive on the cluster interface: other_if), size (80 ..
 * 65507, not truncated by the kernel), magic, version, type, flags (malformed), job and
 * session (other_job), region, page size, offset, length and range (malformed), then the MAC
 * (forged). Nothing of a refused datagram is installed, and no field is trusted before its
 * check. The MAC covers the job and session, so a datagram replayed from another job fails
 * either the job check or the MAC; replayed within its own job it carries the pages of the
 * same frozen snapshot again, which is harmless (a duplicate). `seq` is trusted for nothing but
 * the loss estimate (gaps). The key is per job and session: derived in TypeScript (HKDF), never
 * here.
 *
 * Chunks. A datagram that would not fit the interface's MTU would be cut into IP fragments:
 * slower to send (no UDP GSO), and one lost fragment loses it all, unseen. So the payload per
 * datagram is the most that fits the MTU, rounded down to whole pages when a page fits and to
 * page/256 otherwise; the receiver stages slices of a page (a 256-bit mask per page, in a
 * small table) and installs the page once every slice has come. Slices need not follow one
 * grid: any datagrams that together cover the page complete it.
 *
 * Pacing and flow control. Measured (docs/multicast.md): loss was all receive-buffer overflow
 * in the receivers, gone with 16 MiB buffers and a paced sender. The sender paces its wire bytes
 * with a token bucket (at most 1 ms of credit) at `rate`; with a report port, receivers that see
 * loss (kernel overflow or sequence gaps) say so, and the sender cuts its rate by 30 % (at most
 * every 10 ms, never below min_rate) and raises it again by 1/32 of the ceiling every 10 ms
 * after 50 ms without a report: multicast goes at the pace of the slowest receiver.
 *
 * Lockstep. Seeds that run the same program fault the same pages at about the same time: each
 * fault reaches the memory server, which sends the pages to the group. A page sent within the
 * last lockstep_ms is not sent again (unless forced): N faults of one page, one datagram.
 *
 * End game. Multicast is best effort: a receiver lists its still-missing pages
 * (sf_mcast_receiver_missing) and fetches them by unicast; sf_mcast_receiver_install puts them
 * in through the same callback.
 *
 * Threads: a sender is one mutex (sends, END and the report poll take it, in that order of
 * calls); a receiver is one thread that owns the socket and the staging table, and a mutex over
 * its counters; the present bitmap is updated with atomics so that the end game may install
 * from another thread.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "sf_mcast.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <limits.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#ifndef SO_RXQ_OVFL
#define SO_RXQ_OVFL 40
#endif

#define MAGIC 0x434d4653u /* "SFMC" read as a little-endian u32 */
#define MAC_AT 48
#define REPORT_LEN 32
#define IPUDP 28            /* IPv4 + UDP header bytes, for the wire count */
#define GSO_MAX_BYTES 65000 /* one GSO send stays under the 64 KiB IP limit */
#define GSO_MAX_SEGS 64     /* the kernel's UDP_MAX_SEGMENTS on older kernels */
#define BATCH_BYTES (256u << 10)
#define MMSG 64
#define CREDIT_NS 1000000ull  /* pacing credit: at most 1 ms of burst after a late wake-up */
#define RECV_BATCH 64
#define RECV_BUF 65536
#define STAGE_PROBE 8
#define STAGE_BYTES (16u << 20) /* staging table ceiling */
#define STAGE_SLOTS 256

/* ---------------------------------------------------------------- errors */

static _Thread_local char errbuf[320];

const char *sf_mcast_last_error(void) { return errbuf; }

static int err(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int err(int code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(errbuf, sizeof errbuf, fmt, ap);
  va_end(ap);
  return code;
}

static int errsys(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int errsys(const char *fmt, ...) {
  int e = errno;
  char what[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  return err(SF_MCAST_ESYS, "%s: %s", what, strerror(e));
}

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void sleep_until(uint64_t t) {
  struct timespec ts = {(time_t)(t / 1000000000ull), (long)(t % 1000000000ull)};
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
  }
}

/* ---------------------------------------------------------------- wire */

static void put32(unsigned char *p, uint32_t v) {
  p[0] = (unsigned char)v, p[1] = (unsigned char)(v >> 8), p[2] = (unsigned char)(v >> 16), p[3] = (unsigned char)(v >> 24);
}
static void put64(unsigned char *p, uint64_t v) { put32(p, (uint32_t)v), put32(p + 4, (uint32_t)(v >> 32)); }
static uint32_t get32(const unsigned char *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t get64(const unsigned char *p) { return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32; }

static void hdr_put(unsigned char *h, const sf_mcast_dgram *d, uint32_t length) {
  put32(h, MAGIC);
  h[4] = SF_MCAST_VERSION;
  h[5] = d->type;
  h[6] = d->page_shift;
  h[7] = 0;
  put64(h + 8, d->job);
  put32(h + 16, d->session);
  put32(h + 20, d->region);
  put64(h + 24, d->seq);
  put32(h + 32, d->page);
  put32(h + 36, d->offset);
  put32(h + 40, length);
  put32(h + 44, d->count);
}

/* HMAC-SHA256 with one key, re-initialised per datagram (EVP_MAC_init with a NULL key keeps
 * the key: no per-datagram key schedule). One per thread that uses it. */
typedef struct hmac {
  EVP_MAC *mac;
  EVP_MAC_CTX *ctx;
} hmac;

static int hmac_open(hmac *h, const unsigned char key[SF_MCAST_KEY_BYTES]) {
  char digest[] = "SHA256";
  OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0), OSSL_PARAM_construct_end()};
  h->mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
  if (h->mac == NULL) return err(SF_MCAST_ECRYPTO, "EVP_MAC_fetch(HMAC) failed: libcrypto has no HMAC");
  h->ctx = EVP_MAC_CTX_new(h->mac);
  if (h->ctx == NULL) goto fail;
  if (!EVP_MAC_init(h->ctx, key, SF_MCAST_KEY_BYTES, params)) goto fail;
  return 0;
fail:
  EVP_MAC_CTX_free(h->ctx);
  EVP_MAC_free(h->mac);
  h->ctx = NULL, h->mac = NULL;
  return err(SF_MCAST_ECRYPTO, "HMAC-SHA256 key set-up failed in libcrypto");
}

static void hmac_close(hmac *h) {
  EVP_MAC_CTX_free(h->ctx);
  EVP_MAC_free(h->mac);
  h->ctx = NULL, h->mac = NULL;
}

static int hmac_do(hmac *h, const unsigned char *hdr, const void *payload, size_t len, unsigned char out[32]) {
  size_t n = 0;
  if (!EVP_MAC_init(h->ctx, NULL, 0, NULL) || !EVP_MAC_update(h->ctx, hdr, MAC_AT) ||
      (len && !EVP_MAC_update(h->ctx, payload, len)) || !EVP_MAC_final(h->ctx, out, &n, 32) || n != 32)
    return err(SF_MCAST_ECRYPTO, "HMAC-SHA256 of a datagram failed in libcrypto");
  return 0;
}

long sf_mcast_pack(const sf_mcast_dgram *d, const void *payload, size_t length,
                   const unsigned char key[SF_MCAST_KEY_BYTES], void *out, size_t cap) {
  hmac h;
  int rc;
  if (d == NULL || key == NULL || out == NULL || (length && payload == NULL))
    return err(SF_MCAST_EINVAL, "sf_mcast_pack: NULL argument");
  if (length > SF_MCAST_MAX_DATAGRAM - SF_MCAST_HEADER || SF_MCAST_HEADER + length > cap)
    return err(SF_MCAST_EINVAL, "sf_mcast_pack: %zu payload bytes do not fit (room %zu, datagram limit %d)", length,
               cap < SF_MCAST_HEADER ? 0 : cap - SF_MCAST_HEADER, SF_MCAST_MAX_DATAGRAM - SF_MCAST_HEADER);
  hdr_put(out, d, (uint32_t)length);
  if (length) memcpy((unsigned char *)out + SF_MCAST_HEADER, payload, length);
  if ((rc = hmac_open(&h, key)) < 0) return rc;
  rc = hmac_do(&h, out, payload, length, (unsigned char *)out + MAC_AT);
  hmac_close(&h);
  return rc < 0 ? rc : (long)(SF_MCAST_HEADER + length);
}

/* ---------------------------------------------------------------- addresses */

static int parse_group(const char *who, const char *group, uint16_t port, struct sockaddr_in *sa) {
  memset(sa, 0, sizeof *sa);
  sa->sin_family = AF_INET;
  sa->sin_port = htons(port);
  if (group == NULL || inet_pton(AF_INET, group, &sa->sin_addr) != 1)
    return err(SF_MCAST_EINVAL, "%s: group \"%s\" is not an IPv4 address", who, group ? group : "(null)");
  if (!IN_MULTICAST(ntohl(sa->sin_addr.s_addr)))
    return err(SF_MCAST_EINVAL, "%s: group %s is not a multicast address (224.0.0.0/4)", who, group);
  if (port == 0) return err(SF_MCAST_EINVAL, "%s: port 0 for group %s", who, group);
  return 0;
}

/* The interface that holds IPv4 address `addr`: its index and MTU. */
static int iface_of(const char *who, const char *addr, struct in_addr *a, int *ifindex, unsigned *mtu) {
  struct ifaddrs *all = NULL, *i;
  char name[IF_NAMESIZE] = "";
  struct ifreq ifr;
  int fd, rc = 0;
  if (addr == NULL || inet_pton(AF_INET, addr, a) != 1)
    return err(SF_MCAST_EINVAL, "%s: interface address \"%s\" is not an IPv4 address", who, addr ? addr : "(null)");
  if (getifaddrs(&all) != 0) return errsys("%s: getifaddrs", who);
  for (i = all; i; i = i->ifa_next)
    if (i->ifa_addr && i->ifa_addr->sa_family == AF_INET &&
        ((struct sockaddr_in *)i->ifa_addr)->sin_addr.s_addr == a->s_addr) {
      snprintf(name, sizeof name, "%s", i->ifa_name);
      break;
    }
  freeifaddrs(all);
  if (!name[0]) return err(SF_MCAST_EINVAL, "%s: no interface of this host has address %s", who, addr);
  if ((*ifindex = (int)if_nametoindex(name)) == 0) return errsys("%s: if_nametoindex(%s)", who, name);
  if ((fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0)) < 0) return errsys("%s: socket", who);
  memset(&ifr, 0, sizeof ifr);
  snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", name);
  if (ioctl(fd, SIOCGIFMTU, &ifr) != 0) rc = errsys("%s: SIOCGIFMTU %s", who, name);
  else *mtu = (unsigned)ifr.ifr_mtu;
  close(fd);
  return rc;
}

static int valid_shift(uint32_t page_size) {
  for (int s = 12; s <= 21; s++)
    if (page_size == 1u << s) return s;
  return 0;
}

/* ---------------------------------------------------------------- sender */

typedef struct sregion {
  uint32_t id, npages, psz;
  int shift;
  uint32_t *stamp; /* ms since open + 1 at the last send of each page; 0: never */
} sregion;

typedef struct reporter {
  struct sockaddr_in from;
  uint64_t loss;
} reporter;

struct sf_mcast_sender {
  pthread_mutex_t lock;
  int fd, rfd;
  hmac mac;
  uint64_t job;
  uint32_t session;
  unsigned mtu, chunk, timeout_ms;
  uint32_t lockstep_ms; /* 0: off */
  int gso;
  double rate, max_rate, min_rate;
  uint64_t t0, next_ns, last_cut, last_raise, seq;
  sregion *regions;
  size_t nregions, cap;
  unsigned char *buf; /* BATCH_BYTES: datagrams laid out back to back */
  struct mmsghdr mm[MMSG];
  struct iovec iov[MMSG];
  reporter rep[64];
  unsigned nrep, rep_next;
  sf_mcast_sender_stats st;
  volatile int aborted;
};

int sf_mcast_sender_open(const sf_mcast_sender_opts *o, sf_mcast_sender **out) {
  static const char who[] = "multicast sender";
  sf_mcast_sender *s;
  struct sockaddr_in group, src;
  struct ip_mreqn mif;
  int rc, one = 1, ifindex = 0;
  unsigned char ttl = 1, loop;
  unsigned mtu = 0;
  int sndbuf;

  if (o == NULL || out == NULL) return err(SF_MCAST_EINVAL, "%s: NULL options", who);
  *out = NULL;
  if ((rc = parse_group(who, o->group, o->port, &group)) < 0) return rc;
  memset(&src, 0, sizeof src);
  src.sin_family = AF_INET;
  if ((rc = iface_of(who, o->iface, &src.sin_addr, &ifindex, &mtu)) < 0) return rc;
  if (o->mtu) mtu = o->mtu;
  if (mtu < 576 || mtu > 65536) return err(SF_MCAST_EINVAL, "%s: MTU %u out of range 576..65536", who, mtu);
  if (o->rate < 0 || o->min_rate < 0 || (o->rate > 0 && o->rate < 1e5))
    return err(SF_MCAST_EINVAL, "%s: rate %.0f B/s out of range (0 for the default, else at least 100 kB/s)", who, o->rate);
  if (o->chunk > SF_MCAST_MAX_DATAGRAM - SF_MCAST_HEADER)
    return err(SF_MCAST_EINVAL, "%s: chunk %u exceeds the %d payload bytes of a datagram", who, o->chunk,
               SF_MCAST_MAX_DATAGRAM - SF_MCAST_HEADER);

  if ((s = calloc(1, sizeof *s)) == NULL) return err(SF_MCAST_ENOMEM, "%s: out of memory", who);
  s->fd = s->rfd = -1;
  if ((rc = pthread_mutex_init(&s->lock, NULL)) != 0) {
    free(s);
    errno = rc;
    return errsys("%s: pthread_mutex_init", who);
  }
  if ((s->buf = malloc(BATCH_BYTES)) == NULL) {
    rc = err(SF_MCAST_ENOMEM, "%s: out of memory for the send buffer", who);
    goto fail;
  }
  if ((rc = hmac_open(&s->mac, o->key)) < 0) goto fail;
  s->job = o->job;
  s->session = o->session;
  s->mtu = mtu;
  s->timeout_ms = o->timeout_ms ? o->timeout_ms : 5000;
  s->lockstep_ms = o->lockstep_ms == UINT_MAX ? 0 : o->lockstep_ms ? o->lockstep_ms : 20;
  s->max_rate = s->rate = o->rate > 0 ? o->rate : 400e6;
  s->min_rate = o->min_rate > 0 ? (o->min_rate < s->max_rate ? o->min_rate : s->max_rate) : s->max_rate / 16;
  s->t0 = now_ns();

  /* Payload per datagram: what fits the MTU, whole pages when a 4 KiB page fits, else in
   * 16-byte steps (page/256 for the smallest page; larger pages have coarser steps, which
   * the sender meets by rounding each datagram, see transmit). */
  {
    unsigned room = mtu - IPUDP - SF_MCAST_HEADER;
    if (room > SF_MCAST_MAX_DATAGRAM - SF_MCAST_HEADER) room = SF_MCAST_MAX_DATAGRAM - SF_MCAST_HEADER;
    s->chunk = o->chunk ? o->chunk : room >= 4096 ? room / 4096 * 4096 : room / 16 * 16;
    if (s->chunk < 16 || s->chunk % 16) {
      rc = err(SF_MCAST_EINVAL, "%s: chunk %u must be a positive multiple of 16", who, s->chunk);
      goto fail;
    }
  }
  s->gso = o->gso != 0 && s->chunk + SF_MCAST_HEADER + IPUDP <= mtu;
  if (o->gso == 1 && !s->gso) {
    rc = err(SF_MCAST_EINVAL, "%s: UDP GSO asked for, but %u-byte datagrams exceed the MTU %u", who,
             s->chunk + SF_MCAST_HEADER, mtu);
    goto fail;
  }

  if ((s->fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0)) < 0) {
    rc = errsys("%s: socket", who);
    goto fail;
  }
  memset(&mif, 0, sizeof mif);
  mif.imr_address = src.sin_addr;
  mif.imr_ifindex = ifindex;
  loop = o->loopback ? 1 : 0;
  sndbuf = (int)(o->sndbuf ? o->sndbuf : 4u << 20);
  if (setsockopt(s->fd, IPPROTO_IP, IP_MULTICAST_IF, &mif, sizeof mif) != 0) {
    rc = errsys("%s: IP_MULTICAST_IF %s", who, o->iface);
    goto fail;
  }
  if (setsockopt(s->fd, IPPROTO_IP, IP_MULTICAST_TTL, &ttl, sizeof ttl) != 0) {
    rc = errsys("%s: IP_MULTICAST_TTL 1", who);
    goto fail;
  }
  if (setsockopt(s->fd, IPPROTO_IP, IP_MULTICAST_LOOP, &loop, sizeof loop) != 0) {
    rc = errsys("%s: IP_MULTICAST_LOOP", who);
    goto fail;
  }
  /* A larger buffer than rmem/wmem_max needs CAP_NET_ADMIN: try the forced one, then the plain. */
  if (setsockopt(s->fd, SOL_SOCKET, SO_SNDBUFFORCE, &sndbuf, sizeof sndbuf) != 0 &&
      setsockopt(s->fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf) != 0) {
    rc = errsys("%s: SO_SNDBUF %d", who, sndbuf);
    goto fail;
  }
  {
    /* SO_SNDTIMEO bounds one blocked send; the send deadline bounds the retries. */
    struct timeval tv = {0, 200000};
    if (setsockopt(s->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) != 0) {
      rc = errsys("%s: SO_SNDTIMEO", who);
      goto fail;
    }
  }
  if (bind(s->fd, (struct sockaddr *)&src, sizeof src) != 0) {
    rc = errsys("%s: bind %s", who, o->iface);
    goto fail;
  }
  if (connect(s->fd, (struct sockaddr *)&group, sizeof group) != 0) {
    rc = errsys("%s: connect to %s:%u", who, o->group, o->port);
    goto fail;
  }
  if (o->report_port) {
    struct sockaddr_in ra = src;
    ra.sin_port = htons(o->report_port);
    if ((s->rfd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)) < 0) {
      rc = errsys("%s: report socket", who);
      goto fail;
    }
    if (setsockopt(s->rfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0) {
      rc = errsys("%s: SO_REUSEADDR on the report socket", who);
      goto fail;
    }
    if (bind(s->rfd, (struct sockaddr *)&ra, sizeof ra) != 0) {
      rc = errsys("%s: bind report port %s:%u", who, o->iface, o->report_port);
      goto fail;
    }
  }
  s->st.chunk = s->chunk;
  s->st.mtu = s->mtu;
  s->st.gso = s->gso;
  s->st.rate = s->rate;
  *out = s;
  return 0;
fail:
  sf_mcast_sender_close(s);
  return rc;
}

int sf_mcast_sender_add_region(sf_mcast_sender *s, uint32_t region, uint32_t npages, uint32_t page_size) {
  int shift = valid_shift(page_size), rc = 0;
  if (s == NULL) return err(SF_MCAST_EINVAL, "multicast sender: NULL sender");
  if (!shift) return err(SF_MCAST_EINVAL, "multicast sender: region %u: page size %u is not a power of two in 4 KiB..2 MiB", region, page_size);
  if (npages == 0 || (uint64_t)npages << shift > (uint64_t)UINT32_MAX << 12)
    return err(SF_MCAST_EINVAL, "multicast sender: region %u: %u pages out of range", region, npages);
  pthread_mutex_lock(&s->lock);
  for (size_t i = 0; i < s->nregions; i++)
    if (s->regions[i].id == region) {
      rc = err(SF_MCAST_EINVAL, "multicast sender: region %u is declared twice", region);
      goto out;
    }
  if (s->nregions == SF_MCAST_MAX_REGIONS) {
    rc = err(SF_MCAST_EINVAL, "multicast sender: more than %d regions", SF_MCAST_MAX_REGIONS);
    goto out;
  }
  if (s->nregions == s->cap) {
    size_t cap = s->cap ? 2 * s->cap : 8;
    sregion *n = realloc(s->regions, cap * sizeof *n);
    if (n == NULL) {
      rc = err(SF_MCAST_ENOMEM, "multicast sender: out of memory for region %u", region);
      goto out;
    }
    s->regions = n, s->cap = cap;
  }
  {
    sregion *r = &s->regions[s->nregions];
    r->id = region, r->npages = npages, r->psz = page_size, r->shift = shift;
    if ((r->stamp = calloc(npages, sizeof *r->stamp)) == NULL) {
      rc = err(SF_MCAST_ENOMEM, "multicast sender: out of memory for the lockstep table of region %u (%u pages)", region, npages);
      goto out;
    }
    s->nregions++;
  }
out:
  pthread_mutex_unlock(&s->lock);
  return rc;
}

static sregion *sender_region(sf_mcast_sender *s, uint32_t id) {
  for (size_t i = 0; i < s->nregions; i++)
    if (s->regions[i].id == id) return &s->regions[i];
  return NULL;
}

/* Reads the receivers' loss reports waiting on the report socket, and moves the rate. */
static void poll_reports(sf_mcast_sender *s) {
  unsigned char b[SF_MCAST_HEADER + REPORT_LEN + 1], mac[32];
  struct sockaddr_in from;
  socklen_t fl;
  ssize_t n;
  int lossy = 0;
  uint64_t now;
  if (s->rfd < 0) return;
  for (;;) {
    fl = sizeof from;
    n = recvfrom(s->rfd, b, sizeof b, MSG_DONTWAIT | MSG_TRUNC, (struct sockaddr *)&from, &fl);
    if (n < 0) break; /* EAGAIN: none left (any other error: none readable either) */
    if (n != SF_MCAST_HEADER + REPORT_LEN || get32(b) != MAGIC || b[4] != SF_MCAST_VERSION || b[5] != SF_MCAST_REPORT ||
        b[7] != 0 || get64(b + 8) != s->job || get32(b + 16) != s->session || get32(b + 40) != REPORT_LEN ||
        hmac_do(&s->mac, b, b + SF_MCAST_HEADER, REPORT_LEN, mac) < 0 || CRYPTO_memcmp(mac, b + MAC_AT, 32) != 0) {
      s->st.bad_reports++;
      continue;
    }
    s->st.reports++;
    {
      uint64_t loss = get64(b + SF_MCAST_HEADER + 8) + get64(b + SF_MCAST_HEADER + 16);
      unsigned i;
      for (i = 0; i < s->nrep; i++)
        if (s->rep[i].from.sin_addr.s_addr == from.sin_addr.s_addr && s->rep[i].from.sin_port == from.sin_port) break;
      if (i == s->nrep) {
        if (s->nrep < sizeof s->rep / sizeof s->rep[0]) i = s->nrep++;
        else i = s->rep_next++ % (unsigned)(sizeof s->rep / sizeof s->rep[0]);
        s->rep[i].from = from;
        s->rep[i].loss = 0;
      }
      if (loss > s->rep[i].loss) lossy = 1;
      s->rep[i].loss = loss;
    }
  }
  now = now_ns();
  if (lossy && now - s->last_cut > 10000000ull) {
    s->rate = s->rate * 0.7 < s->min_rate ? s->min_rate : s->rate * 0.7;
    s->last_cut = now;
    s->st.cuts++;
  } else if (!lossy && s->rate < s->max_rate && now - s->last_cut > 50000000ull && now - s->last_raise > 10000000ull) {
    s->rate = s->rate + s->max_rate / 32 > s->max_rate ? s->max_rate : s->rate + s->max_rate / 32;
    s->last_raise = now;
  }
  s->st.rate = s->rate;
}

/* Waits until `wire` more bytes may go at the current rate. */
static void pace(sf_mcast_sender *s, size_t wire) {
  uint64_t now = now_ns();
  if (s->next_ns + CREDIT_NS < now) s->next_ns = now - CREDIT_NS;
  if (s->next_ns > now) sleep_until(s->next_ns);
  s->next_ns += (uint64_t)((double)wire * 1e9 / s->rate);
}

/* Hands nseg datagrams, laid out in s->buf (each seglen bytes but the last, `total` in all),
 * to the kernel: one UDP GSO send, or sendmmsg. Retries ENOBUFS/EAGAIN until the deadline. */
static int flush(sf_mcast_sender *s, unsigned nseg, size_t seglen, size_t total) {
  uint64_t deadline = now_ns() + (uint64_t)s->timeout_ms * 1000000ull;
  unsigned done = 0;
  while (done < nseg) {
    ssize_t w;
    if (s->aborted) return err(SF_MCAST_ECLOSED, "multicast sender: aborted");
    if (s->gso && nseg > 1) {
      char cbuf[CMSG_SPACE(sizeof(uint16_t))];
      struct iovec v = {s->buf, total};
      struct msghdr m;
      struct cmsghdr *cm;
      memset(&m, 0, sizeof m);
      memset(cbuf, 0, sizeof cbuf);
      m.msg_iov = &v, m.msg_iovlen = 1, m.msg_control = cbuf, m.msg_controllen = sizeof cbuf;
      cm = CMSG_FIRSTHDR(&m);
      cm->cmsg_level = SOL_UDP, cm->cmsg_type = UDP_SEGMENT, cm->cmsg_len = CMSG_LEN(sizeof(uint16_t));
      *(uint16_t *)(void *)CMSG_DATA(cm) = (uint16_t)seglen;
      w = sendmsg(s->fd, &m, 0);
      s->st.calls++;
      if (w >= 0) {
        done = nseg;
        continue;
      }
      if (errno == EIO || errno == EINVAL || errno == ENOPROTOOPT || errno == EOPNOTSUPP) {
        /* This path takes no UDP GSO (old kernel, odd device): send datagram by datagram. */
        s->gso = 0;
        s->st.gso = 0;
        continue;
      }
    } else {
      unsigned n = nseg - done;
      if (n > MMSG) n = MMSG;
      for (unsigned i = 0; i < n; i++) {
        size_t at = (size_t)(done + i) * seglen;
        s->iov[i].iov_base = s->buf + at;
        s->iov[i].iov_len = done + i + 1 == nseg ? total - at : seglen;
        memset(&s->mm[i], 0, sizeof s->mm[i]);
        s->mm[i].msg_hdr.msg_iov = &s->iov[i];
        s->mm[i].msg_hdr.msg_iovlen = 1;
      }
      w = sendmmsg(s->fd, s->mm, n, 0);
      s->st.calls++;
      if (w > 0) {
        done += (unsigned)w;
        continue;
      }
    }
    if (w < 0 && errno == EINTR) continue;
    if (w < 0 && (errno == ENOBUFS || errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (now_ns() > deadline)
        return err(SF_MCAST_ETIMEDOUT, "multicast sender: the socket took nothing for %u ms (%s)", s->timeout_ms, strerror(errno));
      s->st.retries++;
      sleep_until(now_ns() + 50000);
      continue;
    }
    return errsys("multicast sender: send to the group");
  }
  s->st.datagrams += nseg;
  s->st.wire_bytes += total + (size_t)nseg * IPUDP;
  return 0;
}

/* Sends bytes [0, bytes) of the run of pages starting at `page` of r, from data, in datagrams
 * of s->chunk payload bytes (each starting on a multiple of page/256 of its page). */
static int transmit(sf_mcast_sender *s, sregion *r, uint32_t page, const unsigned char *data, uint64_t bytes) {
  uint64_t base = (uint64_t)page << r->shift, off = 0;
  uint32_t unit = r->psz >> 8;
  size_t chunk = s->chunk / unit * unit;
  int rc;
  if (chunk == 0) chunk = unit; /* a 2 MiB page has 8 KiB steps: one step per datagram at least */
  if (chunk + SF_MCAST_HEADER > SF_MCAST_MAX_DATAGRAM)
    return err(SF_MCAST_EINVAL, "multicast sender: region %u: %u-byte pages need %zu-byte steps, beyond a datagram", r->id, r->psz, chunk);
  while (off < bytes) {
    size_t seglen = SF_MCAST_HEADER + chunk, total = 0;
    unsigned nseg = 0, maxseg;
    if (s->gso) {
      maxseg = (unsigned)(GSO_MAX_BYTES / seglen);
      if (maxseg > GSO_MAX_SEGS) maxseg = GSO_MAX_SEGS;
    } else {
      maxseg = (unsigned)(BATCH_BYTES / seglen);
      if (maxseg > MMSG) maxseg = MMSG;
    }
    if (maxseg == 0) maxseg = 1;
    while (nseg < maxseg && off < bytes) {
      size_t len = bytes - off < chunk ? (size_t)(bytes - off) : chunk;
      uint64_t at = base + off;
      unsigned char *h = s->buf + total;
      sf_mcast_dgram d = {SF_MCAST_PAGES, (uint8_t)r->shift, s->job, s->session, r->id, s->seq++,
                          (uint32_t)(at >> r->shift), (uint32_t)(at & (r->psz - 1)), 0};
      hdr_put(h, &d, (uint32_t)len);
      memcpy(h + SF_MCAST_HEADER, data + off, len);
      if ((rc = hmac_do(&s->mac, h, h + SF_MCAST_HEADER, len, h + MAC_AT)) < 0) return rc;
      total += SF_MCAST_HEADER + len;
      off += len;
      nseg++;
      s->st.bytes += len;
    }
    pace(s, total + (size_t)nseg * IPUDP);
    if ((rc = flush(s, nseg, seglen, total)) < 0) return rc;
    poll_reports(s);
  }
  return 0;
}

long sf_mcast_send(sf_mcast_sender *s, uint32_t region, uint32_t first, uint32_t count, const void *data,
                   unsigned flags, unsigned char *skipped) {
  const unsigned char *p = data;
  sregion *r;
  long sent = 0;
  int rc = 0;
  uint32_t now_ms, i = 0;
  if (s == NULL || (data == NULL && count)) return err(SF_MCAST_EINVAL, "multicast send: NULL argument");
  if (s->aborted) return err(SF_MCAST_ECLOSED, "multicast sender: aborted");
  pthread_mutex_lock(&s->lock);
  if ((r = sender_region(s, region)) == NULL) {
    rc = err(SF_MCAST_EINVAL, "multicast send: region %u was not declared", region);
    goto out;
  }
  if ((uint64_t)first + count > r->npages) {
    rc = err(SF_MCAST_EINVAL, "multicast send: pages %u+%u beyond region %u's %u pages", first, count, region, r->npages);
    goto out;
  }
  now_ms = (uint32_t)((now_ns() - s->t0) / 1000000ull) + 1;
  while (i < count) {
    uint32_t j = i;
    /* A run of pages to send: none of them went out within the window. */
    while (j < count) {
      uint32_t t = r->stamp[first + j];
      int recent = !(flags & SF_MCAST_FORCE) && s->lockstep_ms && t && now_ms - t < s->lockstep_ms;
      if (recent) break;
      r->stamp[first + j] = now_ms;
      if (skipped) skipped[j] = 0;
      j++;
    }
    if (j > i) {
      if ((rc = transmit(s, r, first + i, p + ((uint64_t)i << r->shift), (uint64_t)(j - i) << r->shift)) < 0) goto out;
      sent += j - i;
      s->st.pages += j - i;
      i = j;
    }
    while (i < count) { /* the run of pages to skip */
      uint32_t t = r->stamp[first + i];
      if ((flags & SF_MCAST_FORCE) || !s->lockstep_ms || !t || now_ms - t >= s->lockstep_ms) break;
      if (skipped) skipped[i] = 1;
      s->st.suppressed++;
      i++;
    }
  }
out:
  pthread_mutex_unlock(&s->lock);
  return rc < 0 ? rc : sent;
}

int sf_mcast_send_end(sf_mcast_sender *s, uint32_t region, uint32_t first, uint32_t count) {
  sregion *r;
  int rc = 0;
  if (s == NULL) return err(SF_MCAST_EINVAL, "multicast end: NULL sender");
  pthread_mutex_lock(&s->lock);
  if ((r = sender_region(s, region)) == NULL) {
    rc = err(SF_MCAST_EINVAL, "multicast end: region %u was not declared", region);
    goto out;
  }
  if ((uint64_t)first + count > r->npages) {
    rc = err(SF_MCAST_EINVAL, "multicast end: pages %u+%u beyond region %u's %u pages", first, count, region, r->npages);
    goto out;
  }
  for (int k = 0; k < 3; k++) {
    sf_mcast_dgram d = {SF_MCAST_END, (uint8_t)r->shift, s->job, s->session, r->id, s->seq++, first, 0, count};
    /* Spread over 10 ms: a receiver that lost the tail of a pass lost it to a full buffer
     * while it had no CPU, and an END right behind would go the same way. */
    if (k) sleep_until(now_ns() + (k == 1 ? 2000000ull : 8000000ull));
    hdr_put(s->buf, &d, 0);
    if ((rc = hmac_do(&s->mac, s->buf, NULL, 0, s->buf + MAC_AT)) < 0) goto out;
    pace(s, SF_MCAST_HEADER + IPUDP);
    if ((rc = flush(s, 1, SF_MCAST_HEADER, SF_MCAST_HEADER)) < 0) goto out;
  }
  poll_reports(s);
out:
  pthread_mutex_unlock(&s->lock);
  return rc;
}

int sf_mcast_recent(sf_mcast_sender *s, uint32_t region, uint32_t page) {
  sregion *r;
  int recent = 0;
  if (s == NULL) return 0;
  pthread_mutex_lock(&s->lock);
  if ((r = sender_region(s, region)) != NULL && page < r->npages && s->lockstep_ms) {
    uint32_t t = r->stamp[page], now_ms = (uint32_t)((now_ns() - s->t0) / 1000000ull) + 1;
    recent = t && now_ms - t < s->lockstep_ms;
  }
  pthread_mutex_unlock(&s->lock);
  return recent;
}

void sf_mcast_sender_stats_get(sf_mcast_sender *s, sf_mcast_sender_stats *out) {
  pthread_mutex_lock(&s->lock);
  poll_reports(s);
  *out = s->st;
  pthread_mutex_unlock(&s->lock);
}

void sf_mcast_sender_abort(sf_mcast_sender *s) {
  if (s) __atomic_store_n(&s->aborted, 1, __ATOMIC_SEQ_CST);
}

void sf_mcast_sender_close(sf_mcast_sender *s) {
  if (s == NULL) return;
  if (s->fd >= 0) close(s->fd);
  if (s->rfd >= 0) close(s->rfd);
  hmac_close(&s->mac);
  for (size_t i = 0; i < s->nregions; i++) free(s->regions[i].stamp);
  free(s->regions);
  free(s->buf);
  pthread_mutex_destroy(&s->lock);
  free(s);
}

/* ---------------------------------------------------------------- receiver */

typedef struct rregion {
  uint32_t id, npages, psz;
  int shift;
  uint64_t *bits; /* present pages (atomic words) */
  int has_end;
  uint32_t end_first, end_count;
} rregion;

typedef struct slot {
  int used;
  uint32_t ridx, page;
  uint64_t mask[4]; /* slices of page/256 bytes received */
  uint64_t age;
  unsigned char *buf;
} slot;

struct sf_mcast_receiver {
  int fd, stopfd, rfd;
  int ifindex;
  struct sockaddr_in report_to;
  hmac mac;
  uint64_t job;
  uint32_t session;
  sf_mcast_install_fn install;
  sf_mcast_present_fn present;
  void *ctx;
  rregion *regions;
  size_t nregions;
  slot *slots;
  unsigned nslots;
  uint32_t slot_bytes;
  unsigned char *slot_mem;
  uint64_t age;
  unsigned char *rbuf; /* RECV_BATCH x RECV_BUF */
  struct mmsghdr mm[RECV_BATCH];
  struct iovec iov[RECV_BATCH];
  char ctl[RECV_BATCH][CMSG_SPACE(sizeof(struct in_pktinfo)) + CMSG_SPACE(sizeof(uint32_t))];
  int have_seq;
  uint64_t max_seq, reported_loss, last_report;
  pthread_mutex_t lock; /* the counters below, has_end/end_* */
  sf_mcast_receiver_stats st;
  sf_mcast_receiver_stats local; /* the thread's counters, published under lock per batch */
  pthread_t thread;
  int started;
  volatile int failed;
  char error[320];
};

static int bit_get(const uint64_t *bits, uint32_t p) {
  return (int)((__atomic_load_n(&bits[p >> 6], __ATOMIC_ACQUIRE) >> (p & 63)) & 1);
}

static void bits_set(uint64_t *bits, uint32_t first, uint32_t count) {
  for (uint32_t p = first; p < first + count; p++) __atomic_fetch_or(&bits[p >> 6], 1ull << (p & 63), __ATOMIC_RELEASE);
}

static int is_present(sf_mcast_receiver *r, uint32_t ridx, uint32_t page) {
  if (bit_get(r->regions[ridx].bits, page)) return 1;
  if (r->present && r->present(r->ctx, r->regions[ridx].id, page)) {
    bits_set(r->regions[ridx].bits, page, 1);
    return 1;
  }
  return 0;
}

static void fail_thread(sf_mcast_receiver *r, const char *msg) {
  snprintf(r->error, sizeof r->error, "%s", msg);
  __atomic_store_n(&r->failed, 1, __ATOMIC_RELEASE);
}

/* Installs pages [first, first+count) of region ridx through the callback. */
static int put_pages(sf_mcast_receiver *r, uint32_t ridx, uint32_t first, uint32_t count, const void *data) {
  int k = r->install(r->ctx, r->regions[ridx].id, first, count, data);
  if (k < 0 || (uint32_t)k > count)
    return err(SF_MCAST_EINSTALL, "multicast receiver: installing pages %u+%u of region %u failed (%d)", first, count,
               r->regions[ridx].id, k);
  bits_set(r->regions[ridx].bits, first, count);
  r->local.installed += (uint64_t)k;
  r->local.duplicates += count - (uint64_t)k;
  return 0;
}

static slot *slot_find(sf_mcast_receiver *r, uint32_t ridx, uint32_t page, int make) {
  unsigned h = (unsigned)((page * 2654435761u) ^ (ridx * 40503u)) & (r->nslots - 1), victim = h;
  slot *free_slot = NULL;
  for (unsigned k = 0; k < STAGE_PROBE; k++) {
    slot *sl = &r->slots[(h + k) & (r->nslots - 1)];
    if (sl->used && sl->ridx == ridx && sl->page == page) return sl;
    if (!sl->used && !free_slot) free_slot = sl;
    if (sl->used && sl->age < r->slots[victim].age) victim = (h + k) & (r->nslots - 1);
  }
  if (!make) return NULL;
  if (!free_slot) { /* the table is full around here: give up the oldest partial page */
    free_slot = &r->slots[victim];
    r->local.incomplete++;
  }
  free_slot->used = 1, free_slot->ridx = ridx, free_slot->page = page, free_slot->age = ++r->age;
  memset(free_slot->mask, 0, sizeof free_slot->mask);
  return free_slot;
}

/* A slice [at, at+len) of page `page`: staged until the page is whole. */
static int stage(sf_mcast_receiver *r, uint32_t ridx, uint32_t page, uint32_t at, uint32_t len, const unsigned char *src) {
  rregion *g = &r->regions[ridx];
  uint32_t unit = g->psz >> 8, b0 = at / unit, b1 = (at + len) / unit;
  slot *sl = slot_find(r, ridx, page, 1);
  int whole = 1;
  memcpy(sl->buf + at, src, len);
  for (uint32_t b = b0; b < b1; b++) sl->mask[b >> 6] |= 1ull << (b & 63);
  for (int w = 0; w < 4; w++) whole &= sl->mask[w] == ~0ull;
  if (!whole) return 0;
  sl->used = 0;
  if (is_present(r, ridx, page)) {
    r->local.duplicates++;
    return 0;
  }
  return put_pages(r, ridx, page, 1, sl->buf);
}

/* The pages of one accepted PAGES datagram: whole pages go in as runs, straight from the
 * datagram; slices are staged. */
static int deliver(sf_mcast_receiver *r, uint32_t ridx, uint32_t page, uint32_t offset, uint32_t length, const unsigned char *src) {
  rregion *g = &r->regions[ridx];
  uint32_t run_first = 0, run_n = 0;
  const unsigned char *run_src = NULL;
  int rc;
  while (length) {
    uint32_t seg = g->psz - offset < length ? g->psz - offset : length;
    int whole = offset == 0 && seg == g->psz;
    if (is_present(r, ridx, page)) {
      /* Already here (from multicast, or from the fault path). Counted once per page however
       * it was sliced: by the datagram that holds its last byte. */
      if (run_n && (rc = put_pages(r, ridx, run_first, run_n, run_src)) < 0) return rc;
      run_n = 0;
      if (offset + seg == g->psz) r->local.duplicates++;
    } else if (whole) {
      slot *sl;
      if (!run_n) run_first = page, run_src = src;
      run_n++;
      if ((sl = slot_find(r, ridx, page, 0)) != NULL) sl->used = 0; /* a partial copy is moot now */
    } else {
      if (run_n && (rc = put_pages(r, ridx, run_first, run_n, run_src)) < 0) return rc;
      run_n = 0;
      if ((rc = stage(r, ridx, page, offset, seg, src)) < 0) return rc;
    }
    src += seg, length -= seg, offset = 0, page++;
  }
  if (run_n && (rc = put_pages(r, ridx, run_first, run_n, run_src)) < 0) return rc;
  return 0;
}

static int region_index(sf_mcast_receiver *r, uint32_t id) {
  for (size_t i = 0; i < r->nregions; i++)
    if (r->regions[i].id == id) return (int)i;
  return -1;
}

/* One datagram: checked in the order of the file's header, then delivered. */
static int handle(sf_mcast_receiver *r, const unsigned char *b, size_t n, int truncated, int ifindex) {
  unsigned char mac[32];
  uint32_t length, page, offset, count;
  int ridx, type;
  uint64_t seq;
  rregion *g;
  r->local.datagrams++;
  if (ifindex && ifindex != r->ifindex) {
    r->local.other_if++;
    goto drop;
  }
  if (truncated || n < SF_MCAST_HEADER || get32(b) != MAGIC || b[4] != SF_MCAST_VERSION || b[7] != 0) goto malformed;
  type = b[5];
  if (type != SF_MCAST_PAGES && type != SF_MCAST_END) goto malformed;
  if (get64(b + 8) != r->job || get32(b + 16) != r->session) {
    r->local.other_job++;
    goto drop;
  }
  if ((ridx = region_index(r, get32(b + 20))) < 0) goto malformed;
  g = &r->regions[ridx];
  if (b[6] != g->shift) goto malformed;
  seq = get64(b + 24), page = get32(b + 32), offset = get32(b + 36), length = get32(b + 40), count = get32(b + 44);
  if (n != SF_MCAST_HEADER + (size_t)length) goto malformed;
  if (type == SF_MCAST_PAGES) {
    uint32_t unit = g->psz >> 8;
    if (length == 0 || count != 0 || page >= g->npages || offset >= g->psz || offset % unit || length % unit ||
        ((uint64_t)page << g->shift) + offset + length > (uint64_t)g->npages << g->shift)
      goto malformed;
  } else if (length != 0 || offset != 0 || (uint64_t)page + count > g->npages) {
    goto malformed;
  }
  if (hmac_do(&r->mac, b, b + SF_MCAST_HEADER, length, mac) < 0) return SF_MCAST_ECRYPTO;
  if (CRYPTO_memcmp(mac, b + MAC_AT, 32) != 0) {
    r->local.forged++;
    goto drop;
  }
  r->local.accepted++;
  if (!r->have_seq) r->have_seq = 1, r->max_seq = seq;
  else if (seq > r->max_seq) r->local.gaps += seq - r->max_seq - 1, r->max_seq = seq;
  if (type == SF_MCAST_END) {
    r->local.ends++;
    pthread_mutex_lock(&r->lock);
    g->has_end = 1, g->end_first = page, g->end_count = count;
    pthread_mutex_unlock(&r->lock);
    return 0;
  }
  r->local.bytes += length;
  return deliver(r, (uint32_t)ridx, page, offset, length, b + SF_MCAST_HEADER);
malformed:
  r->local.malformed++;
drop:
  r->local.dropped++;
  return 0;
}

/* Tells the sender about new loss (at most every 2 ms): its flow control slows down. */
static void maybe_report(sf_mcast_receiver *r) {
  uint64_t loss = r->local.overflow + r->local.gaps, now;
  unsigned char b[SF_MCAST_HEADER + REPORT_LEN];
  sf_mcast_dgram d = {SF_MCAST_REPORT, 12, r->job, r->session, 0, 0, 0, 0, 0};
  if (r->rfd < 0 || loss <= r->reported_loss) return;
  now = now_ns();
  if (now - r->last_report < 2000000ull) return;
  d.seq = r->local.reports;
  hdr_put(b, &d, REPORT_LEN);
  put64(b + SF_MCAST_HEADER, r->local.datagrams);
  put64(b + SF_MCAST_HEADER + 8, r->local.overflow);
  put64(b + SF_MCAST_HEADER + 16, r->local.gaps);
  put64(b + SF_MCAST_HEADER + 24, r->local.installed);
  if (hmac_do(&r->mac, b, b + SF_MCAST_HEADER, REPORT_LEN, b + MAC_AT) < 0) return;
  /* A lost report is made up for by the next one: the counters are cumulative. */
  if (sendto(r->rfd, b, sizeof b, MSG_DONTWAIT, (struct sockaddr *)&r->report_to, sizeof r->report_to) == (ssize_t)sizeof b) {
    r->local.reports++;
    r->reported_loss = loss;
    r->last_report = now;
  }
}

static void publish(sf_mcast_receiver *r) {
  pthread_mutex_lock(&r->lock);
  uint64_t end_installed = r->st.end_installed;
  int rcvbuf = r->st.rcvbuf;
  r->st = r->local;
  r->st.end_installed = end_installed;
  r->st.rcvbuf = rcvbuf;
  pthread_mutex_unlock(&r->lock);
}

static void *receiver_main(void *arg) {
  sf_mcast_receiver *r = arg;
  for (;;) {
    struct pollfd pf[2] = {{r->fd, POLLIN, 0}, {r->stopfd, POLLIN, 0}};
    int n = poll(pf, 2, 200);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      errsys("multicast receiver: poll");
      fail_thread(r, errbuf);
      break;
    }
    if (pf[1].revents) break;
    if (!(pf[0].revents & POLLIN)) continue;
    for (int rounds = 0; rounds < 64; rounds++) {
      int got;
      for (int i = 0; i < RECV_BATCH; i++) {
        r->mm[i].msg_hdr.msg_controllen = sizeof r->ctl[i];
        r->mm[i].msg_hdr.msg_flags = 0;
      }
      got = recvmmsg(r->fd, r->mm, RECV_BATCH, MSG_DONTWAIT, NULL);
      if (got < 0 && errno == EINTR) continue;
      if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
      if (got < 0) {
        errsys("multicast receiver: recvmmsg");
        fail_thread(r, errbuf);
        goto out;
      }
      for (int i = 0; i < got; i++) {
        struct msghdr *m = &r->mm[i].msg_hdr;
        int ifindex = 0, rc;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(m); c; c = CMSG_NXTHDR(m, c)) {
          if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
            struct in_pktinfo pi;
            memcpy(&pi, CMSG_DATA(c), sizeof pi);
            ifindex = pi.ipi_ifindex;
          } else if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_RXQ_OVFL) {
            uint32_t drops;
            memcpy(&drops, CMSG_DATA(c), sizeof drops);
            if (drops > r->local.overflow) r->local.overflow = drops;
          }
        }
        rc = handle(r, r->rbuf + (size_t)i * RECV_BUF, r->mm[i].msg_len, (m->msg_flags & MSG_TRUNC) != 0, ifindex);
        if (rc < 0) {
          fail_thread(r, errbuf);
          publish(r);
          goto out;
        }
      }
      publish(r);
      maybe_report(r);
      if (got < RECV_BATCH) break;
    }
  }
out:
  publish(r);
  return NULL;
}

int sf_mcast_receiver_open(const sf_mcast_receiver_opts *o, sf_mcast_receiver **out) {
  static const char who[] = "multicast receiver";
  sf_mcast_receiver *r;
  struct sockaddr_in group;
  struct in_addr ifa;
  struct ip_mreqn mr;
  unsigned mtu = 0;
  uint32_t maxpsz = 0;
  int rc, one = 1, zero = 0, rcvbuf, lock_made = 0;
  sigset_t all, old;

  if (o == NULL || out == NULL) return err(SF_MCAST_EINVAL, "%s: NULL options", who);
  *out = NULL;
  if (o->install == NULL) return err(SF_MCAST_EINVAL, "%s: no install callback", who);
  if (o->nregions == 0 || o->regions == NULL) return err(SF_MCAST_EINVAL, "%s: no regions", who);
  if (o->nregions > SF_MCAST_MAX_REGIONS) return err(SF_MCAST_EINVAL, "%s: %zu regions, at most %d", who, o->nregions, SF_MCAST_MAX_REGIONS);
  if ((rc = parse_group(who, o->group, o->port, &group)) < 0) return rc;
  if ((r = calloc(1, sizeof *r)) == NULL) return err(SF_MCAST_ENOMEM, "%s: out of memory", who);
  r->fd = r->stopfd = r->rfd = -1;
  if ((rc = iface_of(who, o->iface, &ifa, &r->ifindex, &mtu)) < 0) goto fail;
  if ((rc = pthread_mutex_init(&r->lock, NULL)) != 0) {
    errno = rc;
    rc = errsys("%s: pthread_mutex_init", who);
    goto fail;
  }
  lock_made = 1;
  r->job = o->job, r->session = o->session, r->install = o->install, r->present = o->present, r->ctx = o->ctx;
  if ((r->regions = calloc(o->nregions, sizeof *r->regions)) == NULL) {
    rc = err(SF_MCAST_ENOMEM, "%s: out of memory", who);
    goto fail;
  }
  for (size_t i = 0; i < o->nregions; i++) {
    const sf_mcast_region *g = &o->regions[i];
    int shift = valid_shift(g->page_size);
    if (!shift) {
      rc = err(SF_MCAST_EINVAL, "%s: region %u: page size %u is not a power of two in 4 KiB..2 MiB", who, g->id, g->page_size);
      goto fail;
    }
    if (g->npages == 0) {
      rc = err(SF_MCAST_EINVAL, "%s: region %u has no pages", who, g->id);
      goto fail;
    }
    for (size_t j = 0; j < i; j++)
      if (o->regions[j].id == g->id) {
        rc = err(SF_MCAST_EINVAL, "%s: region %u is listed twice", who, g->id);
        goto fail;
      }
    r->regions[i].id = g->id, r->regions[i].npages = g->npages, r->regions[i].psz = g->page_size, r->regions[i].shift = shift;
    if ((r->regions[i].bits = calloc((g->npages + 63) / 64, sizeof(uint64_t))) == NULL) {
      rc = err(SF_MCAST_ENOMEM, "%s: out of memory for the page map of region %u", who, g->id);
      goto fail;
    }
    r->nregions++;
    if (g->page_size > maxpsz) maxpsz = g->page_size;
  }
  /* Staging: a power of two of slots, up to 256, within 16 MiB. */
  r->nslots = STAGE_SLOTS;
  while (r->nslots > 8 && (size_t)r->nslots * maxpsz > STAGE_BYTES) r->nslots /= 2;
  r->slot_bytes = maxpsz;
  if ((r->slots = calloc(r->nslots, sizeof *r->slots)) == NULL ||
      (r->slot_mem = malloc((size_t)r->nslots * maxpsz)) == NULL ||
      (r->rbuf = malloc((size_t)RECV_BATCH * RECV_BUF)) == NULL) {
    rc = err(SF_MCAST_ENOMEM, "%s: out of memory for the receive buffers", who);
    goto fail;
  }
  for (unsigned i = 0; i < r->nslots; i++) r->slots[i].buf = r->slot_mem + (size_t)i * maxpsz;
  for (int i = 0; i < RECV_BATCH; i++) {
    r->iov[i].iov_base = r->rbuf + (size_t)i * RECV_BUF;
    r->iov[i].iov_len = RECV_BUF;
    r->mm[i].msg_hdr.msg_iov = &r->iov[i];
    r->mm[i].msg_hdr.msg_iovlen = 1;
    r->mm[i].msg_hdr.msg_control = r->ctl[i];
    r->mm[i].msg_hdr.msg_controllen = sizeof r->ctl[i];
  }
  if ((rc = hmac_open(&r->mac, o->key)) < 0) goto fail;

  if ((r->fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)) < 0) {
    rc = errsys("%s: socket", who);
    goto fail;
  }
  /* Several receivers of a host may share the group and port (SO_REUSEADDR: each gets a copy). */
  if (setsockopt(r->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0) {
    rc = errsys("%s: SO_REUSEADDR", who);
    goto fail;
  }
  rcvbuf = (int)(o->rcvbuf ? o->rcvbuf : 16u << 20);
  if (setsockopt(r->fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof rcvbuf) != 0 &&
      setsockopt(r->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf) != 0) {
    rc = errsys("%s: SO_RCVBUF %d", who, rcvbuf);
    goto fail;
  }
  {
    socklen_t l = sizeof r->st.rcvbuf;
    if (getsockopt(r->fd, SOL_SOCKET, SO_RCVBUF, &r->st.rcvbuf, &l) != 0) {
      rc = errsys("%s: getsockopt SO_RCVBUF", who);
      goto fail;
    }
  }
  if (setsockopt(r->fd, IPPROTO_IP, IP_PKTINFO, &one, sizeof one) != 0) {
    rc = errsys("%s: IP_PKTINFO", who);
    goto fail;
  }
  if (setsockopt(r->fd, SOL_SOCKET, SO_RXQ_OVFL, &one, sizeof one) != 0) {
    rc = errsys("%s: SO_RXQ_OVFL", who);
    goto fail;
  }
  /* Only the groups this socket joined, on the interface it joined them on: without this,
   * Linux hands the socket every datagram for its port from any group joined by anyone on any
   * interface. IP_PKTINFO's interface is checked too (handle). */
  if (setsockopt(r->fd, IPPROTO_IP, IP_MULTICAST_ALL, &zero, sizeof zero) != 0) {
    rc = errsys("%s: IP_MULTICAST_ALL 0", who);
    goto fail;
  }
  /* Bound to the group's address: unicast datagrams to the port on this host never arrive. */
  if (bind(r->fd, (struct sockaddr *)&group, sizeof group) != 0) {
    rc = errsys("%s: bind %s:%u", who, o->group, o->port);
    goto fail;
  }
  memset(&mr, 0, sizeof mr);
  mr.imr_multiaddr = group.sin_addr;
  mr.imr_address = ifa;
  mr.imr_ifindex = r->ifindex;
  if (setsockopt(r->fd, IPPROTO_IP, IP_ADD_MEMBERSHIP, &mr, sizeof mr) != 0) {
    rc = errsys("%s: join %s on %s", who, o->group, o->iface);
    goto fail;
  }
  if (o->report_addr) {
    struct sockaddr_in src;
    memset(&r->report_to, 0, sizeof r->report_to);
    r->report_to.sin_family = AF_INET;
    r->report_to.sin_port = htons(o->report_port);
    if (inet_pton(AF_INET, o->report_addr, &r->report_to.sin_addr) != 1 || o->report_port == 0) {
      rc = err(SF_MCAST_EINVAL, "%s: report address %s:%u is not an IPv4 address and port", who, o->report_addr, o->report_port);
      goto fail;
    }
    memset(&src, 0, sizeof src);
    src.sin_family = AF_INET;
    src.sin_addr = ifa;
    if ((r->rfd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)) < 0) {
      rc = errsys("%s: report socket", who);
      goto fail;
    }
    if (bind(r->rfd, (struct sockaddr *)&src, sizeof src) != 0) {
      rc = errsys("%s: bind the report socket to %s", who, o->iface);
      goto fail;
    }
  }
  if ((r->stopfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0) {
    rc = errsys("%s: eventfd", who);
    goto fail;
  }
  r->local.rcvbuf = r->st.rcvbuf;
  /* The thread takes no signals: they belong to the program (Node's libuv, the seed's handlers). */
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  rc = pthread_create(&r->thread, NULL, receiver_main, r);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (rc != 0) {
    errno = rc;
    rc = errsys("%s: pthread_create", who);
    goto fail;
  }
  r->started = 1;
  *out = r;
  return 0;
fail:
  if (!lock_made) {
    /* close would destroy an uninitialised mutex: free by hand */
    free(r);
    return rc;
  }
  sf_mcast_receiver_close(r);
  return rc;
}

void sf_mcast_receiver_stats_get(sf_mcast_receiver *r, sf_mcast_receiver_stats *out) {
  pthread_mutex_lock(&r->lock);
  *out = r->st;
  pthread_mutex_unlock(&r->lock);
  out->failed = __atomic_load_n(&r->failed, __ATOMIC_ACQUIRE);
}

const char *sf_mcast_receiver_error(sf_mcast_receiver *r) {
  return __atomic_load_n(&r->failed, __ATOMIC_ACQUIRE) ? r->error : "";
}

long sf_mcast_receiver_missing(sf_mcast_receiver *r, uint32_t region, uint32_t *runs, size_t cap, size_t *nruns) {
  int ridx = region_index(r, region);
  rregion *g;
  long missing = 0;
  size_t n = 0;
  if (ridx < 0) return err(SF_MCAST_EINVAL, "multicast receiver: region %u is not one of its regions", region);
  g = &r->regions[ridx];
  for (uint32_t p = 0; p < g->npages;) {
    uint32_t q;
    if (is_present(r, (uint32_t)ridx, p)) {
      p++;
      continue;
    }
    for (q = p + 1; q < g->npages && !is_present(r, (uint32_t)ridx, q); q++) {
    }
    if (n < cap && runs) runs[2 * n] = p, runs[2 * n + 1] = q - p;
    n++;
    missing += q - p;
    p = q;
  }
  if (nruns) *nruns = n;
  return missing;
}

int sf_mcast_receiver_install(sf_mcast_receiver *r, uint32_t region, uint32_t first, uint32_t count, const void *data) {
  int ridx = region_index(r, region), k;
  if (ridx < 0) return err(SF_MCAST_EINVAL, "multicast receiver: region %u is not one of its regions", region);
  if ((uint64_t)first + count > r->regions[ridx].npages)
    return err(SF_MCAST_EINVAL, "multicast receiver: pages %u+%u beyond region %u's %u pages", first, count, region,
               r->regions[ridx].npages);
  if (count == 0) return 0;
  if (data == NULL) return err(SF_MCAST_EINVAL, "multicast receiver: NULL data");
  k = r->install(r->ctx, region, first, count, data);
  if (k < 0 || (uint32_t)k > count)
    return err(SF_MCAST_EINSTALL, "multicast receiver: installing pages %u+%u of region %u failed (%d)", first, count, region, k);
  bits_set(r->regions[ridx].bits, first, count);
  pthread_mutex_lock(&r->lock);
  r->st.end_installed += (uint64_t)k;
  pthread_mutex_unlock(&r->lock);
  return k;
}

int sf_mcast_receiver_last_end(sf_mcast_receiver *r, uint32_t region, uint32_t *first, uint32_t *count) {
  int ridx = region_index(r, region), has = 0;
  if (ridx < 0) return 0;
  pthread_mutex_lock(&r->lock);
  if (r->regions[ridx].has_end) {
    has = 1;
    if (first) *first = r->regions[ridx].end_first;
    if (count) *count = r->regions[ridx].end_count;
  }
  pthread_mutex_unlock(&r->lock);
  return has;
}

void sf_mcast_receiver_close(sf_mcast_receiver *r) {
  if (r == NULL) return;
  if (r->started) {
    uint64_t one = 1;
    /* An eventfd write of 1 cannot block or fail here (counter far from its limit). */
    while (write(r->stopfd, &one, sizeof one) < 0 && errno == EINTR) {
    }
    pthread_join(r->thread, NULL);
  }
  if (r->fd >= 0) close(r->fd);
  if (r->rfd >= 0) close(r->rfd);
  if (r->stopfd >= 0) close(r->stopfd);
  hmac_close(&r->mac);
  for (size_t i = 0; i < r->nregions; i++) free(r->regions[i].bits);
  free(r->regions);
  free(r->slots);
  free(r->slot_mem);
  free(r->rbuf);
  pthread_mutex_destroy(&r->lock);
  free(r);
}
