/*
 * memsrv.c: the memory server (sf_lazy.h). At the fork point the origin forks a child; the
 * child's copy-on-write view of the origin's memory IS the snapshot of every region as of that
 * instant, at no copying cost up front (the origin pays a copy-on-write fault for each page it
 * writes later, as it would for a local clone). SnowFlock's memserver relied on Xen's
 * copy-on-write the same way. The alternatives were worse: serving from the live origin
 * (process_vm_readv) shows its later writes; copying the regions at the fork point costs a
 * memcpy of all of them (1-2 GB/s into fresh memory) before the origin may go on.
 *
 * The child runs C only (no JavaScript, no libuv: the Node state it inherited is a frozen
 * picture that must not run): one thread, one poll loop over its control socket and the
 * connections handed in over it. It keeps no fd but the control socket (0-2 are /dev/null),
 * dies with the origin (PR_SET_PDEATHSIG) and exits when the control socket closes. Crypto
 * stays in Node: each TCP connection is authenticated there (dom0/handshake.ts) before its fd
 * comes here by SCM_RIGHTS, so the server speaks the page protocol from the first byte.
 *
 * Wire format (little endian; wire.h declares it):
 *
 *   request, seed -> server, 32 bytes:
 *    0        4    5    6         8          12         16               24               32
 *   +--------+----+----+---------+----------+----------+----------------+----------------+
 *   | "SFMQ" | v1 |type| flags 0 | region   | count    | first page     | tag            |
 *   +--------+----+----+---------+----------+----------+----------------+----------------+
 *   type 1 PAGES: pages [first, first + count) of the region, 1 <= count <= 256
 *   type 2 INFO:  the region's length (count and first 0)
 *   flags: bit 0 MCAST (PAGES only): the seed receives this job's multicast (see below);
 *          every other bit is reserved and refused
 *
 *   reply, server -> seed, 40 bytes, then a body:
 *    0        4    5    6         8          12         16               24        32       36      40
 *   +--------+----+----+---------+----------+----------+----------------+---------+--------+-------+
 *   | "SFMR" | v1 |type| status  | region   | count    | first page     | tag     | pagesz | sent  |
 *   +--------+----+----+---------+----------+----------+----------------+---------+--------+-------+
 *   PAGES, status 0: a zero bitmap of ceil(count/64)*8 bytes (bit j set: page first+j is all
 *                    zero and is not sent), with MCAST an "on its way" bitmap of the same size
 *                    (bit j set: page first+j went to the job's multicast group within the
 *                    lockstep window and is not sent here), then the `sent` other pages, page
 *                    size bytes each, in page order (the region's last page zero-padded)
 *   INFO, status 0:  u64 length in bytes, u64 pages
 *   status != 0:     no body, and the server closes the connection (wire.h lists the codes)
 *
 *   type, region, count, first and tag are echoed (tag is the client's, e.g. a sequence
 *   number), so a client checks that a reply answers its request. The per-page zero bitmap
 *   keeps a batch whole (one request per fault) while zero pages cost no bytes: splitting
 *   batches at zero pages had cost 3.5x the round trips (notes/lazy-memory.md, Q3).
 *
 * Malformed: a wrong magic, version, type or flags, an unknown region, count 0 or above 256,
 * pages beyond the region. Each is counted, answered with its status and ends that connection
 * only; the server and its other connections go on. There is no length field to trust: a
 * request is exactly 32 bytes.
 *
 * Multicast (docs/multicast.md, "Plugging into the lazy layer"). dom0 may send, on the second
 * source of connections, a configuration of the job's multicast group; the child then opens a
 * multicast sender (here, after the fork: a libcrypto context or mutex made before a fork is not
 * to be used in the child) and, after each PAGES reply is queued, multicasts the pages that
 * reply carried to the group, so the other seeds install them where still missing. Lockstep:
 * seeds of one program fault the same pages at about the same time; a request with MCAST for
 * pages multicast within the lockstep window (sf_mcast_recent) is answered "on its way" for
 * those pages, and the seed waits a few ms for them to arrive by multicast before it asks again
 * without MCAST, which is always answered with the data. So a page a seed faults on arrives by
 * multicast or by unicast, never neither. The second source is a byte stream:
 *
 *   connection   1 byte 0x00, with the connection's fd (SCM_RIGHTS)
 *   multicast    1 byte 'M', then 96 bytes, little endian:
 *    0        4        8                16          20     22     24          40          56        88       92      96
 *   +--------+--------+----------------+-----------+------+------+-----------+-----------+---------+--------+-------+
 *   | "SFMM" | v1 u32 | job u64        | session   | port | rport| group[16] | iface[16] | key[32] | MB/s   | lock- |
 *   |        |        |                | u32       | u16  | u16  | dotted,NUL| dotted,NUL| HMAC    | 0: dflt| step ms
 *   +--------+--------+----------------+-----------+------+------+-----------+-----------+---------+--------+-------+
 *   rport: the sender's report port for flow control (0: none). A sender that cannot be opened,
 *   or a send that fails, turns multicast off for the rest of the server's life (the counters
 *   say why); the seeds then get every page by unicast.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "sf_lazy.h"
#include "sf_mcast.h"
#include "internal.h"
#include "wire.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#define SHARED_MAGIC 0x5653464du /* "MFSV" */
#define MAX_CONNS 1024
/* A peer that stops reading its replies is dropped after this long unacknowledged. */
#define SERVER_USER_TIMEOUT_MS 30000

enum { ZMAP_PENDING = 0, ZMAP_READY = 1, ZMAP_FAILED = 2, ZMAP_NONE = 3 };

/* One region as the child serves it and the origin reads its counters; in the shared page. */
typedef struct srv_region {
  uint32_t id;
  uint32_t pad;
  uint64_t addr; /* same address in origin and child */
  uint64_t length;
  uint64_t pages;
  uint64_t zmap_off; /* from the start of the shared page */
  _Atomic uint64_t requests, pages_asked, pages_sent, zero_pages, bytes, multicast, deferred;
} srv_region;

/* The page shared by the origin and its server child (MAP_SHARED, made before the fork). */
typedef struct srv_shared {
  uint32_t magic;
  uint32_t nregions;
  uint32_t page_size;
  _Atomic uint32_t zmap_state; /* a futex word */
  _Atomic uint64_t connections, open, malformed, failed, requests;
  char zmap_error[256];
  /* Multicast, written by the child (SF_MEMSRV_MCAST_*), the sender's counters after each send. */
  _Atomic uint32_t mc_state;
  char mc_error[256];
  _Atomic uint64_t mc_datagrams, mc_wire_bytes, mc_pages, mc_suppressed, mc_cuts, mc_reports, mc_rate;
  srv_region r[];
} srv_shared;

struct sf_memsrv {
  pid_t pid;
  int ctl;
  int pidfd;
  int reaped;
  int wstatus;
  srv_shared *sh;
  size_t sh_len;
};

/* ---------------------------------------------------------------------------------------- */
/* The child */

typedef struct conn {
  int fd;
  uint8_t in[sizeof(sf_wire_req)];
  size_t in_len;
  uint8_t head[sizeof(sf_wire_rep) + 2 * (SF_LAZY_MAX_BATCH / 8) + sizeof(sf_wire_info)];
  struct iovec iov[SF_LAZY_MAX_BATCH + 3];
  int iov_n, iov_i; /* queued reply: iov[iov_i..iov_n) left to write */
  int closing;      /* close once the reply is out (an error status) */
  /* Runs of pages the last reply carried, to multicast once it is queued. */
  srv_region *mc_r;
  int mc_n;
  uint32_t mc_first[SF_LAZY_MAX_BATCH], mc_count[SF_LAZY_MAX_BATCH];
} conn;

#define MC_MSG_BYTES 96
#define MC_MAGIC "SFMM"
#define FROM_FDS 64

typedef struct child {
  srv_shared *sh;
  int ctl;
  uint32_t ps;
  const char *zero; /* one zero page, for the padding of a region's last page */
  conn *c[MAX_CONNS];
  int n;
  sf_memsrv_served_fn served;
  void *served_arg;
  sf_mcast_sender *tx; /* the job's multicast sender, once dom0 configured it */
  char *last;          /* one page: a region's zero-padded last page, for multicast */
  /* The second source's byte stream and the fds that came with it. */
  uint8_t from_buf[512];
  size_t from_len;
  int from_fds[FROM_FDS];
  int from_nfds;
} child;

static void conn_close(child *ch, int i, int failed) {
  close(ch->c[i]->fd);
  free(ch->c[i]);
  ch->c[i] = ch->c[--ch->n];
  atomic_fetch_sub(&ch->sh->open, 1);
  if (failed) atomic_fetch_add(&ch->sh->failed, 1);
}

static srv_region *find_region(child *ch, uint32_t id) {
  for (uint32_t i = 0; i < ch->sh->nregions; i++)
    if (ch->sh->r[i].id == id) return &ch->sh->r[i];
  return NULL;
}

/* Builds the reply to the request in c->in into c->head/c->iov. */
static void answer(child *ch, conn *c) {
  sf_wire_req q;
  memcpy(&q, c->in, sizeof q);
  sf_wire_rep p = {.magic = SF_WIRE_REP_MAGIC, .version = SF_WIRE_VERSION, .type = q.type, .status = SF_WIRE_OK,
                   .region = q.region, .count = q.count, .first = q.first, .tag = q.tag, .page_size = ch->ps};
  srv_region *r = NULL;
  if (q.magic != SF_WIRE_REQ_MAGIC) p.status = SF_WIRE_BAD_MAGIC;
  else if (q.version != SF_WIRE_VERSION) p.status = SF_WIRE_BAD_VERSION;
  else if (q.type != SF_WIRE_PAGES && q.type != SF_WIRE_INFO) p.status = SF_WIRE_BAD_TYPE;
  else if ((q.flags & ~SF_WIRE_FLAG_MCAST) != 0 || (q.type == SF_WIRE_INFO && q.flags != 0))
    p.status = SF_WIRE_BAD_FLAGS;
  else if ((r = find_region(ch, q.region)) == NULL) p.status = SF_WIRE_NO_REGION;
  else if (q.type == SF_WIRE_INFO && (q.count != 0 || q.first != 0)) p.status = SF_WIRE_BAD_RANGE;
  else if (q.type == SF_WIRE_PAGES && q.count > SF_LAZY_MAX_BATCH) p.status = SF_WIRE_TOO_MANY;
  else if (q.type == SF_WIRE_PAGES && (q.count == 0 || q.first >= r->pages || q.count > r->pages - q.first))
    p.status = SF_WIRE_BAD_RANGE;

  c->iov_i = 0;
  c->iov_n = 1;
  c->mc_n = 0;
  c->mc_r = NULL;
  atomic_fetch_add(&ch->sh->requests, 1);
  if (p.status != SF_WIRE_OK) {
    p.count = 0;
    memcpy(c->head, &p, sizeof p);
    c->iov[0] = (struct iovec){c->head, sizeof p};
    c->closing = 1;
    atomic_fetch_add(&ch->sh->malformed, 1);
    return;
  }
  if (q.type == SF_WIRE_INFO) {
    sf_wire_info info = {r->length, r->pages};
    memcpy(c->head, &p, sizeof p);
    memcpy(c->head + sizeof p, &info, sizeof info);
    c->iov[0] = (struct iovec){c->head, sizeof p + sizeof info};
    return;
  }
  uint32_t bm = sf_wire_bitmap_bytes(q.count);
  int mcast = (q.flags & SF_WIRE_FLAG_MCAST) != 0;
  uint8_t *bits = c->head + sizeof p, *coming = bits + bm;
  memset(bits, 0, mcast ? 2 * bm : bm);
  uint32_t sent = 0, zeros = 0, deferred = 0;
  size_t bytes = sizeof p + (mcast ? 2 * bm : bm);
  for (uint32_t j = 0; j < q.count; j++) {
    uint64_t page = q.first + j;
    const char *src = (const char *)(uintptr_t)(r->addr + page * ch->ps);
    size_t n = page + 1 == r->pages ? (size_t)(r->length - page * ch->ps) : ch->ps;
    if (sf__all_zero(src, n)) {
      bits[j / 8] |= (uint8_t)(1u << (j % 8));
      zeros++;
      continue;
    }
    /* Lockstep: another seed's fault sent it to the group a moment ago; it is on its way. */
    if (mcast && ch->tx && sf_mcast_recent(ch->tx, r->id, (uint32_t)page) == 1) {
      coming[j / 8] |= (uint8_t)(1u << (j % 8));
      deferred++;
      continue;
    }
    if (ch->tx) {
      if (c->mc_n > 0 && c->mc_first[c->mc_n - 1] + c->mc_count[c->mc_n - 1] == page) {
        c->mc_count[c->mc_n - 1]++;
      } else {
        c->mc_first[c->mc_n] = (uint32_t)page;
        c->mc_count[c->mc_n++] = 1;
      }
      c->mc_r = r;
    }
    sent++;
    bytes += ch->ps;
    struct iovec *last = &c->iov[c->iov_n - 1];
    /* Consecutive pages are consecutive bytes of the range: one io vector for a run. */
    if (c->iov_n > 1 && (const char *)last->iov_base + last->iov_len == src && last->iov_base != ch->zero)
      last->iov_len += n;
    else
      c->iov[c->iov_n++] = (struct iovec){(void *)src, n};
    if (n < ch->ps) c->iov[c->iov_n++] = (struct iovec){(void *)ch->zero, ch->ps - n};
  }
  p.sent = sent;
  memcpy(c->head, &p, sizeof p);
  c->iov[0] = (struct iovec){c->head, sizeof p + (mcast ? 2 * bm : bm)};
  atomic_fetch_add(&r->requests, 1);
  if (deferred) atomic_fetch_add(&r->deferred, deferred);
  atomic_fetch_add(&r->pages_asked, q.count);
  atomic_fetch_add(&r->pages_sent, sent);
  atomic_fetch_add(&r->zero_pages, zeros);
  atomic_fetch_add(&r->bytes, bytes);
  if (ch->served) ch->served(r->id, q.first, q.count, ch->served_arg);
}

/* Writes what is queued on c; returns 1 when all is out, 0 when the socket is full, -errno. */
static int flush(conn *c) {
  while (c->iov_i < c->iov_n) {
    int n = c->iov_n - c->iov_i;
    if (n > IOV_MAX) n = IOV_MAX;
    ssize_t w = writev(c->fd, c->iov + c->iov_i, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) return 0;
      return -errno;
    }
    size_t left = (size_t)w;
    while (left > 0 && c->iov_i < c->iov_n) {
      struct iovec *v = &c->iov[c->iov_i];
      if (left >= v->iov_len) {
        left -= v->iov_len;
        c->iov_i++;
      } else {
        v->iov_base = (char *)v->iov_base + left;
        v->iov_len -= left;
        left = 0;
      }
    }
  }
  return 1;
}

/* ---- multicast (the child) */

static void mc_stats(child *ch) {
  sf_mcast_sender_stats st;
  sf_mcast_sender_stats_get(ch->tx, &st);
  srv_shared *sh = ch->sh;
  atomic_store(&sh->mc_datagrams, st.datagrams);
  atomic_store(&sh->mc_wire_bytes, st.wire_bytes);
  atomic_store(&sh->mc_pages, st.pages);
  atomic_store(&sh->mc_suppressed, st.suppressed);
  atomic_store(&sh->mc_cuts, st.cuts);
  atomic_store(&sh->mc_reports, st.reports);
  atomic_store(&sh->mc_rate, (uint64_t)st.rate);
}

/* Multicast is off from here on: the seeds get every page by unicast (their MCAST requests are
 * never answered "on its way" again, since nothing is recent any more). */
static void mc_fail(child *ch, const char *what) {
  snprintf(ch->sh->mc_error, sizeof ch->sh->mc_error, "%s: %s", what, sf_mcast_last_error());
  atomic_store(&ch->sh->mc_state, SF_MEMSRV_MCAST_FAILED);
  if (ch->tx) {
    mc_stats(ch);
    sf_mcast_sender_close(ch->tx);
  }
  ch->tx = NULL;
}

/* Multicasts what c's last reply carried (called once the reply is queued, so the seed that
 * asked is not kept waiting by the pacing). */
static void mc_send_runs(child *ch, conn *c) {
  srv_region *r = c->mc_r;
  for (int i = 0; ch->tx && r && i < c->mc_n; i++) {
    uint64_t first = c->mc_first[i], count = c->mc_count[i];
    long n = 0, rc = 0;
    /* The region's last page may end inside a page: send a zero-padded copy, never read past. */
    int partial = first + count == r->pages && r->length % ch->ps != 0;
    if (count > (uint64_t)partial)
      rc = sf_mcast_send(ch->tx, r->id, (uint32_t)first, (uint32_t)(count - partial),
                         (const void *)(uintptr_t)(r->addr + first * ch->ps), 0, NULL);
    if (rc >= 0) n += rc;
    if (rc >= 0 && partial) {
      uint64_t last = r->pages - 1;
      memset(ch->last, 0, ch->ps);
      memcpy(ch->last, (const void *)(uintptr_t)(r->addr + last * ch->ps), (size_t)(r->length - last * ch->ps));
      rc = sf_mcast_send(ch->tx, r->id, (uint32_t)last, 1, ch->last, 0, NULL);
      if (rc >= 0) n += rc;
    }
    if (rc < 0) {
      mc_fail(ch, "multicast send");
      break;
    }
    atomic_fetch_add(&r->multicast, (uint64_t)n);
  }
  c->mc_n = 0;
  c->mc_r = NULL;
  if (ch->tx) mc_stats(ch);
}

/* dom0's configuration of the job's group (drawn in the header): opens the sender. */
static void mc_configure(child *ch, const uint8_t *m) {
  srv_shared *sh = ch->sh;
  uint32_t version, mbs, lockstep;
  memcpy(&version, m + 4, 4);
  if (memcmp(m, MC_MAGIC, 4) != 0 || version != 1 || m[24 + 15] != 0 || m[40 + 15] != 0) {
    snprintf(sh->mc_error, sizeof sh->mc_error, "multicast configuration: malformed (magic, version or strings)");
    atomic_store(&sh->mc_state, SF_MEMSRV_MCAST_FAILED);
    return;
  }
  if (ch->tx) return; /* configured once; a second configuration changes nothing */
  sf_mcast_sender_opts o;
  memset(&o, 0, sizeof o);
  memcpy(&o.job, m + 8, 8);
  memcpy(&o.session, m + 16, 4);
  memcpy(&o.port, m + 20, 2);
  memcpy(&o.report_port, m + 22, 2);
  o.group = (const char *)m + 24;
  o.iface = (const char *)m + 40;
  memcpy(o.key, m + 56, SF_MCAST_KEY_BYTES);
  memcpy(&mbs, m + 88, 4);
  memcpy(&lockstep, m + 92, 4);
  o.rate = (double)mbs * 1e6;
  o.lockstep_ms = lockstep;
  o.gso = -1;
  sf_mcast_sender *tx = NULL;
  if (ch->last == NULL) ch->last = (char *)malloc(ch->ps);
  if (ch->last == NULL) {
    snprintf(sh->mc_error, sizeof sh->mc_error, "multicast: out of memory");
    atomic_store(&sh->mc_state, SF_MEMSRV_MCAST_FAILED);
    return;
  }
  if (sf_mcast_sender_open(&o, &tx) < 0) {
    mc_fail(ch, "multicast sender");
    return;
  }
  ch->tx = tx;
  for (uint32_t i = 0; i < sh->nregions; i++) {
    srv_region *r = &sh->r[i];
    if (r->pages > UINT32_MAX || sf_mcast_sender_add_region(tx, r->id, (uint32_t)r->pages, ch->ps) < 0) {
      mc_fail(ch, "multicast sender: region");
      return;
    }
  }
  atomic_store(&sh->mc_state, SF_MEMSRV_MCAST_ON);
  mc_stats(ch);
}

static int add_conn(child *ch, int fd) {
  atomic_fetch_add(&ch->sh->connections, 1);
  conn *cn = ch->n < MAX_CONNS ? (conn *)calloc(1, sizeof *cn) : NULL;
  int fl = fcntl(fd, F_GETFL);
  if (cn == NULL || fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
    free(cn);
    close(fd);
    atomic_fetch_add(&ch->sh->failed, 1);
    return -1;
  }
  unsigned ut = SERVER_USER_TIMEOUT_MS;
  (void)setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &ut, sizeof ut); /* not TCP: harmless */
  cn->fd = fd;
  ch->c[ch->n++] = cn;
  atomic_fetch_add(&ch->sh->open, 1);
  return 0;
}

/* Reads the second source (dom0's byte stream, drawn in the header). Returns 0, or 1 when it
 * closed or spoke out of turn (it is then closed). */
static int control_from(child *ch, int sock) {
  union {
    char buf[CMSG_SPACE(sizeof(int) * FROM_FDS)];
    struct cmsghdr align;
  } ctl;
  struct iovec iov = {ch->from_buf + ch->from_len, sizeof ch->from_buf - ch->from_len};
  struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf, .msg_controllen = sizeof ctl.buf};
  ssize_t r = recvmsg(sock, &m, MSG_CMSG_CLOEXEC);
  if (r < 0 && (errno == EINTR || errno == EAGAIN)) return 0;
  if (r <= 0) {
    while (ch->from_nfds > 0) close(ch->from_fds[--ch->from_nfds]);
    return 1;
  }
  ch->from_len += (size_t)r;
  for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c != NULL; c = CMSG_NXTHDR(&m, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    int k = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
    for (int i = 0; i < k; i++) {
      int fd;
      memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
      if (ch->from_nfds < FROM_FDS) ch->from_fds[ch->from_nfds++] = fd;
      else close(fd);
    }
  }
  size_t at = 0;
  int bad = 0;
  while (at < ch->from_len && !bad) {
    uint8_t t = ch->from_buf[at];
    if (t == 0) {
      if (ch->from_nfds == 0) {
        bad = 1; /* a connection byte without its fd */
        break;
      }
      int fd = ch->from_fds[0];
      memmove(ch->from_fds, ch->from_fds + 1, (size_t)(--ch->from_nfds) * sizeof(int));
      add_conn(ch, fd);
      at++;
    } else if (t == 'M') {
      if (ch->from_len - at < 1 + MC_MSG_BYTES) break; /* the rest is still on its way */
      mc_configure(ch, ch->from_buf + at + 1);
      at += 1 + MC_MSG_BYTES;
    } else {
      bad = 1;
    }
  }
  memmove(ch->from_buf, ch->from_buf + at, ch->from_len - at);
  ch->from_len -= at;
  if (bad) /* the source is closed: fds it sent without their byte are nobody's */
    while (ch->from_nfds > 0) close(ch->from_fds[--ch->from_nfds]);
  return bad;
}

/* Takes the fds of one control message on `sock`. Returns 0, or 1 when that socket closed. */
static int control(child *ch, int sock) {
  char data[16];
  union {
    char buf[CMSG_SPACE(sizeof(int) * 16)];
    struct cmsghdr align;
  } ctl;
  struct iovec iov = {data, sizeof data};
  struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf, .msg_controllen = sizeof ctl.buf};
  ssize_t r = recvmsg(sock, &m, MSG_CMSG_CLOEXEC);
  if (r == 0) return 1;
  if (r < 0) return errno == EINTR || errno == EAGAIN ? 0 : 1;
  for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c != NULL; c = CMSG_NXTHDR(&m, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    int k = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
    for (int i = 0; i < k; i++) {
      int fd;
      memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
      add_conn(ch, fd);
    }
  }
  return 0;
}

static void compute_zero_maps(child *ch) {
  srv_shared *sh = ch->sh;
  for (uint32_t i = 0; i < sh->nregions; i++) {
    srv_region *r = &sh->r[i];
    char err[200];
    int64_t z = sf_zero_map((const void *)(uintptr_t)r->addr, r->length, ch->ps, (uint8_t *)sh + r->zmap_off, err,
                            sizeof err);
    if (z < 0) {
      snprintf(sh->zmap_error, sizeof sh->zmap_error, "region %u: %s", r->id, err);
      atomic_store(&sh->zmap_state, ZMAP_FAILED);
      syscall(SYS_futex, &sh->zmap_state, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
      return;
    }
  }
  atomic_store(&sh->zmap_state, ZMAP_READY);
  syscall(SYS_futex, &sh->zmap_state, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

/* The child's whole life. Never returns. */
static void __attribute__((noreturn)) child_main(srv_shared *sh, int ctl, pid_t origin, const sf_memsrv_options *o) {
  /* Signals: the handlers it inherited are Node's (libuv's signal pipe is gone here). */
  sigset_t none;
  sigemptyset(&none);
  for (int s = 1; s < NSIG; s++)
    if (s != SIGKILL && s != SIGSTOP) signal(s, SIG_DFL);
  signal(SIGPIPE, SIG_IGN);
  sigprocmask(SIG_SETMASK, &none, NULL);
  if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != origin) _exit(0);
  prctl(PR_SET_NAME, "sfmpi-memsrv", 0, 0, 0);

  /* fds: the control socket becomes 3, the second source of connections (if any) 4, 0-2
   * /dev/null, everything else is closed. */
  int c = fcntl(ctl, F_DUPFD_CLOEXEC, 10);
  int from = o->connections_from >= 0 ? fcntl(o->connections_from, F_DUPFD_CLOEXEC, 10) : -1;
  int null = open("/dev/null", O_RDWR);
  if (c < 0 || null < 0 || (o->connections_from >= 0 && from < 0)) _exit(71);
  for (int i = 0; i < 3; i++)
    if (null != i && dup2(null, i) < 0) _exit(71);
  if (dup2(c, 3) < 0) _exit(71);
  if (from >= 0 && dup2(from, 4) < 0) _exit(71);
  if (syscall(SYS_close_range, from >= 0 ? 5u : 4u, ~0u, 0u) != 0) {
    long max = sysconf(_SC_OPEN_MAX);
    for (long fd = from >= 0 ? 5 : 4; fd < (max > 0 ? max : 65536); fd++) close((int)fd);
  }
  from = from >= 0 ? 4 : -1;

  child ch = {.sh = sh, .ctl = 3, .ps = sh->page_size, .served = o->served, .served_arg = o->served_arg};
  void *zero = mmap(NULL, sh->page_size, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (zero == MAP_FAILED) _exit(71);
  ch.zero = (const char *)zero;
  if (atomic_load(&sh->zmap_state) == ZMAP_PENDING) compute_zero_maps(&ch);

  /* pf[0] the control socket, pf[1] the second source (fd -1 when none or ended: poll skips
   * it), then the connections. */
  struct pollfd *pf = (struct pollfd *)calloc(MAX_CONNS + 2, sizeof *pf);
  if (pf == NULL) _exit(71);
  for (;;) {
    pf[0] = (struct pollfd){ch.ctl, POLLIN, 0};
    pf[1] = (struct pollfd){from, POLLIN, 0};
    for (int i = 0; i < ch.n; i++) {
      conn *cn = ch.c[i];
      pf[i + 2] = (struct pollfd){cn->fd, (short)(cn->iov_i < cn->iov_n ? POLLOUT : POLLIN), 0};
    }
    int nfds = ch.n + 2;
    if (poll(pf, (nfds_t)nfds, -1) < 0) {
      if (errno == EINTR) continue;
      _exit(72);
    }
    /* Connections first, from the last, so that closing one (which moves the last into its
     * slot) never skips another. */
    for (int i = nfds - 3; i >= 0; i--) {
      conn *cn = ch.c[i];
      short re = pf[i + 2].revents;
      if (re == 0) continue;
      if (cn->iov_i < cn->iov_n) {
        int f = flush(cn);
        if (f < 0) conn_close(&ch, i, 1);
        else if (f == 1 && cn->closing) conn_close(&ch, i, 0);
        continue;
      }
      ssize_t r = read(cn->fd, cn->in + cn->in_len, sizeof cn->in - cn->in_len);
      if (r == 0) {
        conn_close(&ch, i, 0); /* the seed is done with us */
        continue;
      }
      if (r < 0) {
        if (errno != EINTR && errno != EAGAIN) conn_close(&ch, i, 1);
        continue;
      }
      cn->in_len += (size_t)r;
      if (cn->in_len < sizeof cn->in) continue;
      cn->in_len = 0;
      answer(&ch, cn);
      int f = flush(cn);
      mc_send_runs(&ch, cn);
      if (f < 0) conn_close(&ch, i, 1);
      else if (f == 1 && cn->closing) conn_close(&ch, i, 0);
    }
    if (from >= 0 && pf[1].revents && control_from(&ch, from)) {
      close(from); /* that source is done; the origin's control socket still rules */
      from = -1;
    }
    if (pf[0].revents && control(&ch, ch.ctl)) _exit(0); /* the origin closed us: done */
  }
}

/* ---------------------------------------------------------------------------------------- */
/* The origin */

int sf_memsrv_start(const sf_memsrv_range *ranges, int n, const sf_memsrv_options *opts, sf_memsrv **out,
                    char *err, size_t errlen) {
  sf_memsrv_options none = {.connections_from = -1};
  const sf_memsrv_options *o = opts ? opts : &none;
  uint32_t ps = (uint32_t)sysconf(_SC_PAGESIZE);
  if (out == NULL || ranges == NULL || n < 1 || n > SF_LAZY_MAX_REGIONS)
    return sf__fmt(err, errlen, "memory server: 1 to %d ranges are needed, got %d", SF_LAZY_MAX_REGIONS, n), -EINVAL;
  size_t len = sizeof(srv_shared) + (size_t)n * sizeof(srv_region);
  for (int i = 0; i < n; i++) {
    const sf_memsrv_range *r = &ranges[i];
    if (r->addr == NULL || r->length == 0)
      return sf__fmt(err, errlen, "memory server: range %d (region %u) is empty", i, r->id), -EINVAL;
    for (int j = 0; j < i; j++)
      if (ranges[j].id == r->id)
        return sf__fmt(err, errlen, "memory server: region id %u is given twice (ranges %d and %d)", r->id, j, i),
               -EINVAL;
    char what[64];
    snprintf(what, sizeof what, "memory server: region %u", r->id);
    int rc = sf__range_readable(r->addr, r->length, what, err, errlen);
    if (rc < 0) return rc;
    if (sf__lazy_overlaps(r->addr, r->length))
      return sf__fmt(err, errlen,
                     "memory server: region %u lies in a lazy region of this process, whose missing pages a "
                     "forked server would read as zeros",
                     r->id),
             -EINVAL;
    len += (size_t)sf_zero_map_bytes(r->length, ps);
    len = (len + 7) & ~(size_t)7;
  }

  int sv[2] = {-1, -1};
  srv_shared *sh = (srv_shared *)mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (sh == MAP_FAILED) {
    int e = errno;
    return sf__fmt(err, errlen, "memory server: mmap of its %zu-byte shared page: %s", len, strerror(e)), -e;
  }
  sh->magic = SHARED_MAGIC;
  sh->nregions = (uint32_t)n;
  sh->page_size = ps;
  atomic_store(&sh->zmap_state, o->zero_maps ? ZMAP_PENDING : ZMAP_NONE);
  size_t off = sizeof(srv_shared) + (size_t)n * sizeof(srv_region);
  off = (off + 7) & ~(size_t)7;
  for (int i = 0; i < n; i++) {
    srv_region *r = &sh->r[i];
    r->id = ranges[i].id;
    r->addr = (uint64_t)(uintptr_t)ranges[i].addr;
    r->length = ranges[i].length;
    r->pages = (r->length + ps - 1) / ps;
    r->zmap_off = off;
    off += (size_t)sf_zero_map_bytes(r->length, ps);
    off = (off + 7) & ~(size_t)7;
  }

  int rc;
  sf_memsrv *s = (sf_memsrv *)calloc(1, sizeof *s);
  if (s == NULL) {
    rc = -ENOMEM;
    sf__fmt(err, errlen, "memory server: out of memory");
    goto fail;
  }
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
    rc = -errno;
    sf__fmt(err, errlen, "memory server: socketpair for its control socket: %s", strerror(-rc));
    goto fail;
  }
  /* V8 marks its reservations MADV_DONTFORK; a range there would be missing in the child. */
  for (int i = 0; i < n; i++) {
    uintptr_t a = (uintptr_t)ranges[i].addr & ~(uintptr_t)(ps - 1);
    uintptr_t e = ((uintptr_t)ranges[i].addr + ranges[i].length + ps - 1) & ~(uintptr_t)(ps - 1);
    if (madvise((void *)a, e - a, MADV_DOFORK) != 0 && errno != EINVAL) {
      rc = -errno;
      sf__fmt(err, errlen, "memory server: madvise(MADV_DOFORK) of region %u: %s", ranges[i].id, strerror(-rc));
      goto fail;
    }
  }
  pid_t origin = getpid();
  pid_t pid = fork();
  if (pid < 0) {
    rc = -errno;
    sf__fmt(err, errlen, "memory server: fork: %s", strerror(-rc));
    goto fail;
  }
  if (pid == 0) {
    close(sv[0]);
    child_main(sh, sv[1], origin, o);
  }
  close(sv[1]);
  s->pid = pid;
  s->ctl = sv[0];
  s->sh = sh;
  s->sh_len = len;
  s->pidfd = (int)syscall(SYS_pidfd_open, pid, 0); /* -1 on old kernels: waits poll instead */
  *out = s;
  return 0;

fail:
  if (sv[0] >= 0) close(sv[0]);
  if (sv[1] >= 0) close(sv[1]);
  free(s);
  munmap(sh, len);
  return rc;
}

pid_t sf_memsrv_pid(const sf_memsrv *s) { return s ? s->pid : -1; }

int sf_memsrv_give(sf_memsrv *s, int fd, char *err, size_t errlen) {
  if (s == NULL || s->ctl < 0) return sf__fmt(err, errlen, "memory server: it was stopped"), -EINVAL;
  int type = 0;
  socklen_t tl = sizeof type;
  if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) != 0 || type != SOCK_STREAM) {
    int e = errno ? errno : ENOTSOCK;
    return sf__fmt(err, errlen, "memory server: fd %d is not a stream socket", fd), -(e == EBADF ? EBADF : ENOTSOCK);
  }
  char byte = 'C';
  union {
    char buf[CMSG_SPACE(sizeof(int))];
    struct cmsghdr align;
  } ctl;
  struct iovec iov = {&byte, 1};
  struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf, .msg_controllen = sizeof ctl.buf};
  struct cmsghdr *c = CMSG_FIRSTHDR(&m);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(c), &fd, sizeof fd);
  ssize_t r;
  do r = sendmsg(s->ctl, &m, MSG_NOSIGNAL);
  while (r < 0 && errno == EINTR);
  if (r < 0) {
    int e = errno;
    return sf__fmt(err, errlen, "memory server (pid %d): handing it connection fd %d: %s", s->pid, fd,
                   e == EPIPE || e == ECONNRESET ? "the server has exited" : strerror(e)),
           -e;
  }
  return 0;
}

int sf_memsrv_counters_get(const sf_memsrv *s, sf_memsrv_counters *c, sf_memsrv_region_counters *regions, int n) {
  if (s == NULL) return -EINVAL;
  srv_shared *sh = s->sh;
  if (c) {
    c->connections = atomic_load(&sh->connections);
    c->open = atomic_load(&sh->open);
    c->malformed = atomic_load(&sh->malformed);
    c->failed = atomic_load(&sh->failed);
    c->requests = atomic_load(&sh->requests);
  }
  for (int i = 0; regions && i < n && i < (int)sh->nregions; i++) {
    srv_region *r = &sh->r[i];
    regions[i] = (sf_memsrv_region_counters){r->id,
                                             r->length,
                                             atomic_load(&r->requests),
                                             atomic_load(&r->pages_asked),
                                             atomic_load(&r->pages_sent),
                                             atomic_load(&r->zero_pages),
                                             atomic_load(&r->bytes),
                                             atomic_load(&r->multicast),
                                             atomic_load(&r->deferred)};
  }
  return (int)sh->nregions;
}

int sf_memsrv_mcast_get(const sf_memsrv *s, sf_memsrv_mcast_counters *c) {
  if (s == NULL || c == NULL) return -EINVAL;
  srv_shared *sh = s->sh;
  c->state = (int)atomic_load(&sh->mc_state);
  c->datagrams = atomic_load(&sh->mc_datagrams);
  c->wire_bytes = atomic_load(&sh->mc_wire_bytes);
  c->pages = atomic_load(&sh->mc_pages);
  c->suppressed = atomic_load(&sh->mc_suppressed);
  c->cuts = atomic_load(&sh->mc_cuts);
  c->reports = atomic_load(&sh->mc_reports);
  c->rate = (double)atomic_load(&sh->mc_rate);
  /* Written once, before the state turned FAILED (seq_cst stores and loads). */
  snprintf(c->error, sizeof c->error, "%s", c->state == SF_MEMSRV_MCAST_FAILED ? sh->mc_error : "");
  return 0;
}

int sf_memsrv_alive(sf_memsrv *s, int *wstatus) {
  if (s == NULL) return 0;
  if (!s->reaped) {
    pid_t r = waitpid(s->pid, &s->wstatus, WNOHANG);
    if (r == s->pid) s->reaped = 1;
  }
  if (s->reaped && wstatus) *wstatus = s->wstatus;
  return !s->reaped;
}

int sf_memsrv_zero_map(sf_memsrv *s, int index, int timeout_ms, const uint8_t **bits, uint64_t *bytes, char *err,
                       size_t errlen) {
  if (s == NULL || index < 0 || index >= (int)s->sh->nregions)
    return sf__fmt(err, errlen, "memory server: no range %d", index), -EINVAL;
  srv_shared *sh = s->sh;
  uint64_t t0 = sf__now_ns();
  for (;;) {
    uint32_t st = atomic_load(&sh->zmap_state);
    if (st == ZMAP_NONE) return sf__fmt(err, errlen, "memory server: it was started without zero maps"), -EINVAL;
    if (st == ZMAP_FAILED) return sf__fmt(err, errlen, "memory server: zero map: %s", sh->zmap_error), -EIO;
    if (st == ZMAP_READY) break;
    if (!sf_memsrv_alive(s, NULL))
      return sf__fmt(err, errlen, "memory server (pid %d) ended before its zero maps were ready", s->pid), -ESRCH;
    uint64_t waited = (sf__now_ns() - t0) / 1000000;
    if (timeout_ms >= 0 && waited >= (uint64_t)timeout_ms)
      return sf__fmt(err, errlen, "memory server (pid %d): zero maps not ready within %d ms", s->pid, timeout_ms),
             -ETIMEDOUT;
    /* Short sleeps on the futex: a child that dies never wakes it, so look again. */
    struct timespec ts = {0, 20 * 1000000};
    syscall(SYS_futex, &sh->zmap_state, FUTEX_WAIT, st, &ts, NULL, 0);
  }
  srv_region *r = &sh->r[index];
  *bits = (const uint8_t *)sh + r->zmap_off;
  *bytes = sf_zero_map_bytes(r->length, sh->page_size);
  return 0;
}

int sf_memsrv_stop(sf_memsrv *s, int timeout_ms, int *wstatus) {
  if (s == NULL) return -EINVAL;
  if (s->ctl >= 0) close(s->ctl); /* the child sees the end and exits */
  s->ctl = -1;
  uint64_t t0 = sf__now_ns();
  while (sf_memsrv_alive(s, NULL)) {
    uint64_t waited = (sf__now_ns() - t0) / 1000000;
    if (timeout_ms >= 0 && waited >= (uint64_t)timeout_ms) {
      kill(s->pid, SIGKILL);
      while (waitpid(s->pid, &s->wstatus, 0) < 0 && errno == EINTR) {}
      s->reaped = 1;
      break;
    }
    if (s->pidfd >= 0) {
      struct pollfd p = {s->pidfd, POLLIN, 0};
      int left = timeout_ms < 0 ? 100 : (int)((uint64_t)timeout_ms - waited);
      poll(&p, 1, left < 100 ? left : 100);
    } else {
      usleep(1000);
    }
  }
  if (wstatus) *wstatus = s->wstatus;
  if (s->pidfd >= 0) close(s->pidfd);
  munmap(s->sh, s->sh_len);
  free(s);
  return 0;
}
