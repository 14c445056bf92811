/*
 * region.c: lazy regions in a seed (sf_lazy.h): memory that fills itself from the memory
 * server on first touch, for the seed and for every clone forked from it.
 *
 * Layout of one region on a seed's host:
 *
 *   memfd "sfmpi-lazy-<id>"       the host's page cache of the region: a page fetched from the
 *                                 memory server is written here once (pwrite), pristine forever
 *   view (MAP_PRIVATE of memfd)   what the program sees, in the seed and, inherited, in each
 *                                 clone; registered on that process's userfaultfd, MISSING mode
 *   meta (MAP_SHARED, anonymous)  counters, the failure cause, and three bitmaps: cached (in the
 *                                 memfd), zero (known all-zero), hinted (to be overwritten)
 *
 * A touch of a page that is in the page cache is an ordinary page fault, served by the kernel
 * (with fault-around: up to 16 cached neighbours mapped at once); the page is shared with the
 * cache until written (copy-on-write). A touch of a page not in the cache is a userfaultfd
 * MISSING fault, which this file's handler thread answers:
 *   - zero-map page: UFFDIO_ZEROPAGE (UFFDIO_COPY of zeros for a write) in the faulting
 *     process only, no fetch, no cache page;
 *   - otherwise: fetch a batch [p, p + w) of missing pages (one request; the reply's zero
 *     bitmap means zero pages cost no bytes), pwrite them into the memfd, UFFDIO_WAKE the
 *     faulting thread, whose retried fault then maps the cached page.
 *
 * Why a shared page cache rather than UFFDIO_COPY into each process's anonymous memory:
 *   1. Forks. The clones that sfmpi forks from a seed (its host's other ranks) must see every
 *      page. A fork drops the userfaultfd registration from the child's copy of a mapping, and
 *      every missing page then reads as zero, silently (measured: 2048 of 2048 wrong). Each
 *      clone therefore registers its copy on a userfaultfd of its own in the instant after
 *      fork (pthread_atfork child handler: it covers forkClones, sf_job_fork and any fork(2),
 *      before a line of the caller's code runs there) and sends it to this handler over a
 *      socket. With the cache, a page fetched by any process of the host is there for all: a
 *      clone's later touch is an ordinary fault, never a second fetch; and a page fetched after
 *      the fork is pristine in the cache even when the seed has since written its own copy (an
 *      anonymous design would have to fetch again or serve the seed's modified page).
 *      UFFD_FEATURE_EVENT_FORK was the other way: the kernel hands the child's uffd to the
 *      parent's handler, but fork(2) then blocks until the handler reads the event, it needs
 *      CAP_SYS_PTRACE, and if the handler's process ends first the child's registration
 *      vanishes with its uffd and missing pages turn to zeros for the child's last instants.
 *      Here each clone holds its own uffd: if the seed dies, the clone's faults wait until
 *      PR_SET_PDEATHSIG ends it, never read zeros. Filling the region before the fork was the
 *      third way: it is the eager copy that lazy regions exist to avoid.
 *   2. Memory: read-only pages are one copy per host, not one per rank.
 *   3. Multicast: a page received for the host is installed once for every process
 *      (sf_lazy_install: a pwrite), with no uffd of the receiver needed.
 *   The cost: a page a process writes exists twice (cache and its private copy), and its first
 *   write is a copy-on-write fault after the retried read (about 2 us).
 *
 * Read-ahead adapts per (process, region), as the kernel's file read-ahead does: a fault within
 * or just past the previous batch doubles the window (1, 2, 4, ... up to the ceiling, 64 by
 * default); any other fault starts again at one page. Fixed read-ahead had fetched a whole
 * region to serve a scattered 10 % touch (notes/lazy-memory.md, Q2); this fetches exactly the
 * pages touched then, and reaches full batches after 7 faults of a sequential scan. Scattered
 * but dense access is what the working-set list (prefetch) is for.
 *
 * Working set (REAP): every batch fetched for a fault, and every zero page installed for one,
 * is recorded in order (region, first page, count; adjacent entries merge). sf_lazy_working_set encodes it as
 *
 *    0        4    5       6          8             12            16
 *   +--------+----+-------+----------+-------------+-------------+------------------------+
 *   | "SFWS" | v1 | flags | 0        | entries u32 | 0           | entries ...            |
 *   +--------+----+-------+----------+-------------+-------------+------------------------+
 *   flags bit 0: truncated (more than 2^20 entries were recorded; the rest is missing)
 *   entry: varint region id, varint zigzag(first - end of the previous entry of the same
 *          region as the one before it, else first), varint count; LEB128 varints
 *
 * and sf_lazy_prefetch replays such a list: the handler fetches its missing pages in order
 * whenever no fault waits, into the cache, where the program then finds them.
 *
 * Failure: every request has a deadline (spec timeout_ms, default 3 s) and the socket has
 * TCP_USER_TIMEOUT, so a dead host fails a fetch within seconds (without it a fault blocked
 * for minutes). A failed fetch marks the connection dead and poisons the faulting page
 * (UFFDIO_POISON): the thread gets SIGBUS, and the SIGBUS handler installed here prints the
 * region, the page, the server and the cause, and _exits 75. Closing the uffd instead would
 * turn every missing page into zeros; returning would leave the fault blocked forever.
 *
 * Contract of the handler thread: it never touches a region's view (it would fault on its own
 * uffd and deadlock); it reads sockets into its own buffer and writes the memfd.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "sf_lazy.h"
#include "internal.h"
#include "wire.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define MAX_SOURCES 256
#define MAX_CONNS 64
#define RECORD_MAX (1u << 20)
#define CLONE_MAGIC 0x464c4653u /* "SFLF" */
#define WS_MAGIC "SFWS"
#define WS_VERSION 1
#define ZERO_RUN_MAX 64
#define EXIT_HANDLER 70   /* EX_SOFTWARE: the lazy machinery itself failed */
#define SPIN_US_DEFAULT 0 /* how long the handler polls without sleeping after a fault */

typedef struct meta {
  _Atomic uint64_t faults, fetched, prefetched, zero_filled, avoided, multicast, requests, bytes, fetch_ns,
      clone_faults, clones, awaited, late;
  _Atomic uint32_t failed;
  uint32_t pad;
  char cause[256];
} meta;

typedef struct lconn {
  int fd; /* -1: free slot */
  int refs;
  int dead;
  uint64_t tag;
  pthread_mutex_t mu; /* one exchange at a time (the handler, or a map's INFO check) */
  char cause[200];
} lconn;

struct sf_lazy_region {
  uint32_t id;
  int slot;
  uint64_t serial;
  uint64_t length, pages;
  size_t map_len;
  uint32_t ps;
  char *base; /* address of the view, the same in the seed and its clones */
  int mapped; /* this process's view is mapped */
  int memfd;
  meta *m;
  size_t meta_len;
  _Atomic uint64_t *cached, *zero, *hinted;
  int conn;
  char server[96];
  int timeout_ms;
  uint32_t ra_max;
  int refs; /* in the seed: 1 while mapped, one per clone holding it, one per fork in flight */
  _Atomic int mcast_wait_ms; /* > 0: this host receives the job's multicast (sf_lazy_multicast) */
};

typedef struct ra {
  uint64_t start, next;
  uint32_t window;
} ra;

/* A process whose faults the handler serves: the seed itself (slot 0) or a clone. */
typedef struct source {
  int uffd;
  int pidfd;
  pid_t pid;
  int n;
  int slot[SF_LAZY_MAX_REGIONS];
  uint64_t serial[SF_LAZY_MAX_REGIONS];
  ra ra[SF_LAZY_MAX_REGIONS];
} source;

typedef struct rec_entry {
  uint32_t id;
  uint32_t count;
  uint64_t first;
} rec_entry;

/* What a clone sends the handler right after its fork, with its uffd and a pidfd of itself. */
typedef struct clone_msg {
  uint32_t magic;
  uint32_t pending; /* the seed counted this fork already (its prepare handler) */
  int32_t pid;
  uint32_t n;
  uint64_t serial[SF_LAZY_MAX_REGIONS];
} clone_msg;

static struct {
  pthread_mutex_t mu;
  pid_t owner; /* the process whose handler serves the regions: the seed (0: none yet) */
  int uffd;    /* this process's own userfaultfd */
  int dev;     /* /dev/userfaultfd handed over (-1: none) */
  int via_dev; /* uffds are made with USERFAULTFD_IOC_NEW */
  uint64_t features;
  int chan[2]; /* clones -> handler */
  int kick; /* eventfd: wakes the handler for a new working-set list */
  int running;
  pthread_t thread;
  uint32_t ps;
  sf_lazy_region *reg[SF_LAZY_MAX_REGIONS];
  uint64_t serial;
  lconn conn[MAX_CONNS];
  source *src[MAX_SOURCES];
  char *buf;   /* the handler's receive buffer: SF_LAZY_MAX_BATCH pages */
  char *zeros; /* SF_LAZY_MAX_BATCH zero pages, read-only */
  rec_entry *rec;
  size_t rec_n, rec_cap;
  int rec_truncated;
  rec_entry *pf;
  size_t pf_n, pf_i;
  uint64_t pf_off;
  _Atomic uint64_t pf_pending;
  int fork_pending;
  int hooks;
  uint64_t spin_ns;
  struct sigaction old_bus;
} g = {.mu = PTHREAD_MUTEX_INITIALIZER, .uffd = -1, .dev = -1, .chan = {-1, -1}, .kick = -1};

/* ---------------------------------------------------------------------------------------- */
/* Bits */

static inline int bit(_Atomic uint64_t *b, uint64_t i) {
  return (atomic_load_explicit(&b[i / 64], memory_order_acquire) >> (i % 64)) & 1;
}
/* Sets bits [a, e); returns how many were clear before. */
static uint64_t set_bits(_Atomic uint64_t *b, uint64_t a, uint64_t e) {
  uint64_t n = 0;
  while (a < e) {
    uint64_t w = a / 64, lo = a % 64, hi = (e - w * 64) < 64 ? (e - w * 64) : 64;
    uint64_t mask = (hi == 64 ? ~0ull : ((1ull << hi) - 1)) & ~((1ull << lo) - 1);
    uint64_t old = atomic_fetch_or_explicit(&b[w], mask, memory_order_acq_rel);
    n += (uint64_t)__builtin_popcountll(mask & ~old);
    a = w * 64 + hi;
  }
  return n;
}
static void clear_bit(_Atomic uint64_t *b, uint64_t i) {
  atomic_fetch_and_explicit(&b[i / 64], ~(1ull << (i % 64)), memory_order_acq_rel);
}

/* ---------------------------------------------------------------------------------------- */
/* userfaultfd */

static int uffd_new(int how_dev, int dev, char *err, size_t errlen) {
  int flags = O_CLOEXEC | O_NONBLOCK;
  if (how_dev) {
    int fd = ioctl(dev, USERFAULTFD_IOC_NEW, flags);
    if (fd < 0) {
      int e = errno;
      return sf__fmt(err, errlen, "USERFAULTFD_IOC_NEW on the /dev/userfaultfd fd %d: %s", dev, strerror(e)), -e;
    }
    return fd;
  }
  long fd = syscall(SYS_userfaultfd, flags);
  if (fd < 0) {
    int e = errno;
    return sf__fmt(err, errlen, "userfaultfd(2): %s", strerror(e)), -e;
  }
  return (int)fd;
}

static int uffd_api(int fd, uint64_t want, uint64_t *got) {
  struct uffdio_api a = {.api = UFFD_API, .features = want};
  if (ioctl(fd, UFFDIO_API, &a) != 0) return -errno;
  if (got) *got = a.features;
  return 0;
}

/* Finds how this process gets full-mode uffds and which features the kernel has. */
static int uffd_probe(int *how_dev, uint64_t *features, char *err, size_t errlen) {
  char e1[160] = "", e2[160] = "";
  int fd = uffd_new(0, -1, e1, sizeof e1);
  *how_dev = 0;
  if (fd < 0) {
    int dev = g.dev >= 0 ? g.dev : open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
    if (dev < 0) {
      snprintf(e2, sizeof e2, "open /dev/userfaultfd: %s", strerror(errno));
    } else {
      fd = uffd_new(1, dev, e2, sizeof e2);
      if (fd >= 0) {
        g.dev = dev;
        *how_dev = 1;
      } else if (dev != g.dev) {
        close(dev);
      }
    }
  }
  if (fd < 0)
    return sf__fmt(err, errlen,
                   "lazy regions need a userfaultfd that serves kernel faults too: %s; %s (run as root, or "
                   "hand over a /dev/userfaultfd fd opened by root)",
                   e1, e2),
           -EPERM;
  uint64_t have = 0;
  int rc = uffd_api(fd, 0, &have);
  close(fd);
  if (rc < 0) return sf__fmt(err, errlen, "UFFDIO_API: %s", strerror(-rc)), rc;
  if (!(have & UFFD_FEATURE_MISSING_SHMEM))
    return sf__fmt(err, errlen, "this kernel's userfaultfd cannot serve shared memory (UFFD_FEATURE_MISSING_SHMEM)"),
           -ENOTSUP;
  *features = UFFD_FEATURE_MISSING_SHMEM | (have & UFFD_FEATURE_POISON);
  return 0;
}

/* A new uffd for this process with the engine's features. */
static int uffd_open(char *err, size_t errlen) {
  int fd = uffd_new(g.via_dev, g.dev, err, errlen);
  if (fd < 0) return fd;
  int rc = uffd_api(fd, g.features, NULL);
  if (rc < 0) {
    close(fd);
    return sf__fmt(err, errlen, "UFFDIO_API: %s", strerror(-rc)), rc;
  }
  return fd;
}

static int uffd_register(int fd, sf_lazy_region *r) {
  struct uffdio_register reg = {.range = {(uint64_t)(uintptr_t)r->base, r->map_len}, .mode = UFFDIO_REGISTER_MODE_MISSING};
  if (ioctl(fd, UFFDIO_REGISTER, &reg) != 0) return -errno;
  uint64_t need = (1ull << _UFFDIO_WAKE) | (1ull << _UFFDIO_COPY) | (1ull << _UFFDIO_ZEROPAGE);
  return (reg.ioctls & need) == need ? 0 : -ENOTSUP;
}

static void uffd_wake(int fd, sf_lazy_region *r, uint64_t p, uint64_t n) {
  struct uffdio_range w = {(uint64_t)(uintptr_t)(r->base + p * r->ps), n * r->ps};
  (void)ioctl(fd, UFFDIO_WAKE, &w); /* ENOENT: that process is gone or unmapped it */
}

/* UFFDIO_COPY of [p, p + n) from src; returns pages installed (the range stops at the first
 * present page) or -errno. */
static int64_t uffd_copy(int fd, sf_lazy_region *r, uint64_t p, uint64_t n, const void *src) {
  for (int tries = 0;; tries++) {
    struct uffdio_copy c = {.dst = (uint64_t)(uintptr_t)(r->base + p * r->ps), .src = (uint64_t)(uintptr_t)src,
                            .len = n * r->ps, .mode = 0};
    if (ioctl(fd, UFFDIO_COPY, &c) == 0) return (int64_t)(c.copy / r->ps);
    if (c.copy > 0) return (int64_t)(c.copy / r->ps);
    int e = errno;
    if (e == EAGAIN && tries < 100) continue; /* the mm was changing (a fork in flight) */
    return -e;
  }
}

static int64_t uffd_zeropage(int fd, sf_lazy_region *r, uint64_t p, uint64_t n) {
  for (int tries = 0;; tries++) {
    struct uffdio_zeropage z = {.range = {(uint64_t)(uintptr_t)(r->base + p * r->ps), n * r->ps}, .mode = 0};
    if (ioctl(fd, UFFDIO_ZEROPAGE, &z) == 0) return (int64_t)(z.zeropage / r->ps);
    if (z.zeropage > 0) return (int64_t)(z.zeropage / r->ps);
    int e = errno;
    if (e == EAGAIN && tries < 100) continue;
    return -e;
  }
}

/* ---------------------------------------------------------------------------------------- */
/* Messages that end a process (async-signal-safe: no stdio, no malloc) */

typedef struct line {
  char b[600];
  size_t n;
} line;
static void put(line *l, const char *s) {
  while (*s && l->n < sizeof l->b - 1) l->b[l->n++] = *s++;
}
static void put_u(line *l, uint64_t v) {
  char t[24];
  int i = 0;
  do t[i++] = (char)('0' + v % 10);
  while ((v /= 10) && i < 23);
  while (i > 0 && l->n < sizeof l->b - 1) l->b[l->n++] = t[--i];
}

/* "sfmpi: lazy region 3: page 17 of 65536 could not be fetched from the memory server
 * 10.0.0.1:7000: <cause>; process 1234 cannot continue (exit 75)" */
static void say_unavailable(const sf_lazy_region *r, uint64_t page, const char *cause) {
  line l = {.n = 0};
  put(&l, "sfmpi: lazy region ");
  put_u(&l, r->id);
  put(&l, ": page ");
  put_u(&l, page);
  put(&l, " of ");
  put_u(&l, r->pages);
  put(&l, " could not be fetched from the memory server ");
  put(&l, r->server);
  put(&l, ": ");
  put(&l, cause);
  put(&l, "; process ");
  put_u(&l, (uint64_t)getpid());
  put(&l, " cannot continue (exit 75)\n");
  (void)!write(2, l.b, l.n);
}

static void __attribute__((noreturn)) die(const char *what, int e) {
  line l = {.n = 0};
  put(&l, "sfmpi: lazy regions: ");
  put(&l, what);
  if (e) {
    put(&l, ": ");
    put(&l, strerror(e));
  }
  put(&l, "; process ");
  put_u(&l, (uint64_t)getpid());
  put(&l, " cannot continue (exit 70)\n");
  (void)!write(2, l.b, l.n);
  _exit(EXIT_HANDLER);
}

static void on_sigbus(int sig, siginfo_t *si, void *uc) {
  uintptr_t a = (uintptr_t)si->si_addr;
  for (int i = 0; i < SF_LAZY_MAX_REGIONS; i++) {
    sf_lazy_region *r = g.reg[i];
    if (r == NULL || !r->mapped) continue;
    uintptr_t b = (uintptr_t)r->base;
    if (a < b || a >= b + r->map_len) continue;
    const char *cause = atomic_load(&r->m->failed) ? r->m->cause : "the page was poisoned";
    say_unavailable(r, (a - b) / r->ps, cause);
    _exit(SF_LAZY_EXIT_UNAVAILABLE);
  }
  /* Not ours: what was there before decides. */
  if (g.old_bus.sa_flags & SA_SIGINFO) {
    if (g.old_bus.sa_sigaction) g.old_bus.sa_sigaction(sig, si, uc);
    return;
  }
  if (g.old_bus.sa_handler == SIG_IGN) return;
  if (g.old_bus.sa_handler != SIG_DFL) {
    g.old_bus.sa_handler(sig);
    return;
  }
  signal(SIGBUS, SIG_DFL); /* the faulting instruction runs again and the kernel ends us */
}

/* ---------------------------------------------------------------------------------------- */
/* Regions and connections (g.mu held) */

static void conn_unref(int i) {
  lconn *c = &g.conn[i];
  if (--c->refs > 0) return;
  close(c->fd);
  c->fd = -1;
  pthread_mutex_destroy(&c->mu);
}

static void region_free(sf_lazy_region *r) {
  g.reg[r->slot] = NULL;
  conn_unref(r->conn);
  close(r->memfd);
  munmap(r->m, r->meta_len);
  free(r);
}

static void region_unref(sf_lazy_region *r) {
  if (--r->refs == 0) region_free(r);
}

static sf_lazy_region *region_by_id(uint32_t id) {
  for (int i = 0; i < SF_LAZY_MAX_REGIONS; i++)
    if (g.reg[i] && g.reg[i]->mapped && g.reg[i]->id == id) return g.reg[i];
  return NULL;
}

static sf_lazy_region *region_by_serial(uint64_t serial) {
  for (int i = 0; i < SF_LAZY_MAX_REGIONS; i++)
    if (g.reg[i] && g.reg[i]->serial == serial) return g.reg[i];
  return NULL;
}

int sf__lazy_overlaps(const void *addr, uint64_t length) {
  uintptr_t a = (uintptr_t)addr, e = a + length;
  int hit = 0;
  pthread_mutex_lock(&g.mu);
  for (int i = 0; i < SF_LAZY_MAX_REGIONS && !hit; i++) {
    sf_lazy_region *r = g.reg[i];
    if (r && r->mapped && a < (uintptr_t)r->base + r->map_len && (uintptr_t)r->base < e) hit = 1;
  }
  pthread_mutex_unlock(&g.mu);
  return hit;
}

/* ---------------------------------------------------------------------------------------- */
/* The network: one exchange with a deadline */

static int wait_fd(int fd, short ev, uint64_t deadline) {
  for (;;) {
    uint64_t now = sf__now_ns();
    if (now >= deadline) return -ETIMEDOUT;
    struct pollfd p = {fd, ev, 0};
    int ms = (int)((deadline - now + 999999) / 1000000);
    int r = poll(&p, 1, ms);
    if (r > 0) return 0;
    if (r < 0 && errno != EINTR) return -errno;
  }
}

static int send_all(int fd, const void *buf, size_t n, uint64_t deadline) {
  const char *p = (const char *)buf;
  while (n > 0) {
    ssize_t w = send(fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (w > 0) {
      p += w;
      n -= (size_t)w;
      continue;
    }
    if (w < 0 && errno == EINTR) continue;
    if (w < 0 && errno != EAGAIN) return -errno;
    int rc = wait_fd(fd, POLLOUT, deadline);
    if (rc < 0) return rc;
  }
  return 0;
}

/* -ECONNRESET for an orderly close (the server ended). */
static int recv_all(int fd, void *buf, size_t n, uint64_t deadline) {
  char *p = (char *)buf;
  while (n > 0) {
    ssize_t r = recv(fd, p, n, MSG_DONTWAIT);
    if (r > 0) {
      p += r;
      n -= (size_t)r;
      continue;
    }
    if (r == 0) return -EPIPE;
    if (errno == EINTR) continue;
    if (errno != EAGAIN) return -errno;
    int rc = wait_fd(fd, POLLIN, deadline);
    if (rc < 0) return rc;
  }
  return 0;
}

static void conn_fail(lconn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void conn_fail(lconn *c, const char *fmt, ...) {
  if (c->dead) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(c->cause, sizeof c->cause, fmt, ap);
  va_end(ap);
  c->dead = 1;
}

static const char *io_cause(int rc, int timeout_ms, char *t, size_t tl) {
  if (rc == -ETIMEDOUT) snprintf(t, tl, "no reply within %d ms (connection timed out)", timeout_ms);
  else if (rc == -EPIPE) snprintf(t, tl, "the server closed the connection");
  else snprintf(t, tl, "%s", strerror(-rc));
  return t;
}

/* One PAGES request for [first, first + count) of r, written into the cache. Sets *sent to the
 * data pages received. With SF_WIRE_FLAG_MCAST in `flags` the server may answer pages "on their
 * way" by multicast: `coming` (SF_LAZY_MAX_BATCH bits) gets them, and they are not written here.
 * 0, or -1 with the connection marked dead (its cause says why). Called with c->mu held. */
static int fetch(sf_lazy_region *r, lconn *c, uint64_t first, uint32_t count, unsigned flags, uint64_t *sent_out,
                 uint8_t *coming) {
  uint64_t t0 = sf__now_ns(), deadline = t0 + (uint64_t)r->timeout_ms * 1000000ull;
  char t[160];
  if (c->dead) return -1;
  if (coming == NULL) flags &= ~SF_WIRE_FLAG_MCAST;
  sf_wire_req q = {SF_WIRE_REQ_MAGIC, SF_WIRE_VERSION, SF_WIRE_PAGES, (uint16_t)flags, r->id, count, first, ++c->tag};
  int rc = send_all(c->fd, &q, sizeof q, deadline);
  if (rc < 0) return conn_fail(c, "sending a request: %s", io_cause(rc, r->timeout_ms, t, sizeof t)), -1;
  sf_wire_rep p;
  rc = recv_all(c->fd, &p, sizeof p, deadline);
  if (rc < 0) return conn_fail(c, "%s", io_cause(rc, r->timeout_ms, t, sizeof t)), -1;
  if (p.magic != SF_WIRE_REP_MAGIC || p.version != SF_WIRE_VERSION)
    return conn_fail(c, "malformed reply (magic 0x%08x, version %u)", p.magic, p.version), -1;
  if (p.status != SF_WIRE_OK)
    return conn_fail(c, "the server refused pages %lu+%u: %s", (unsigned long)first, count,
                     sf_wire_status_text(p.status)),
           -1;
  if (p.type != SF_WIRE_PAGES || p.tag != q.tag || p.region != r->id || p.first != first || p.count != count ||
      p.page_size != r->ps || p.sent > count)
    return conn_fail(c, "malformed reply (it does not answer request %lu: pages %lu+%u)", (unsigned long)q.tag,
                     (unsigned long)first, count),
           -1;
  uint8_t bits[SF_LAZY_MAX_BATCH / 8];
  uint32_t bm = sf_wire_bitmap_bytes(count);
  rc = recv_all(c->fd, bits, bm, deadline);
  if (rc < 0) return conn_fail(c, "%s", io_cause(rc, r->timeout_ms, t, sizeof t)), -1;
  uint8_t way[SF_LAZY_MAX_BATCH / 8];
  memset(way, 0, sizeof way);
  if (flags & SF_WIRE_FLAG_MCAST) {
    rc = recv_all(c->fd, way, bm, deadline);
    if (rc < 0) return conn_fail(c, "%s", io_cause(rc, r->timeout_ms, t, sizeof t)), -1;
  }
  uint32_t zeros = 0, ways = 0;
  for (uint32_t j = 0; j < bm * 8; j++) {
    int z = (bits[j / 8] >> (j % 8)) & 1, w = (way[j / 8] >> (j % 8)) & 1;
    if ((z || w) && j >= count) return conn_fail(c, "malformed reply (bit %u beyond its %u pages)", j, count), -1;
    if (z && w) return conn_fail(c, "malformed reply (page %lu both zero and on its way)", (unsigned long)(first + j)), -1;
    zeros += (uint32_t)z;
    ways += (uint32_t)w;
    /* A page on its way is not in the body: the runs below skip it like a zero page. */
    if (w) bits[j / 8] |= (uint8_t)(1u << (j % 8));
  }
  if (p.sent != count - zeros - ways)
    return conn_fail(c, "malformed reply (%u pages announced, %u expected)", p.sent, count - zeros - ways), -1;
  rc = recv_all(c->fd, g.buf, (size_t)p.sent * r->ps, deadline);
  if (rc < 0) return conn_fail(c, "%s", io_cause(rc, r->timeout_ms, t, sizeof t)), -1;

  /* Runs of data pages are consecutive in the body: one pwrite each. */
  uint32_t k = 0, j = 0;
  while (j < count) {
    if ((bits[j / 8] >> (j % 8)) & 1) {
      j++;
      continue;
    }
    uint32_t e = j;
    while (e < count && !((bits[e / 8] >> (e % 8)) & 1)) e++;
    size_t len = (size_t)(e - j) * r->ps;
    off_t off = (off_t)((first + j) * r->ps);
    const char *src = g.buf + (size_t)k * r->ps;
    size_t done = 0;
    while (done < len) {
      ssize_t w = pwrite(r->memfd, src + done, len - done, off + (off_t)done);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) return conn_fail(c, "writing the host's page cache: %s", strerror(w < 0 ? errno : EIO)), -1;
      done += (size_t)w;
    }
    set_bits(r->cached, first + j, first + e);
    k += e - j;
    j = e;
  }
  for (j = 0; j < count; j++)
    if (((bits[j / 8] >> (j % 8)) & 1) && !((way[j / 8] >> (j % 8)) & 1)) set_bits(r->zero, first + j, first + j + 1);
  if (coming) memcpy(coming, way, sizeof way);
  atomic_fetch_add(&r->m->requests, 1);
  atomic_fetch_add(&r->m->bytes, sizeof p + ((flags & SF_WIRE_FLAG_MCAST) ? 2 * bm : bm) + (uint64_t)p.sent * r->ps);
  atomic_fetch_add(&r->m->fetch_ns, sf__now_ns() - t0);
  *sent_out = p.sent;
  return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* Serving faults (handler thread) */

static int resident(sf_lazy_region *r, uint64_t p) {
  off_t off = (off_t)(p * r->ps);
  return lseek(r->memfd, off, SEEK_DATA) == off;
}

static uint32_t ra_next(ra *s, uint64_t p, uint32_t max) {
  uint32_t w = 1;
  if (max > 1 && s->window > 0 && p >= s->start && p <= s->next + s->window)
    w = s->window * 2 > max ? max : s->window * 2;
  s->start = p;
  s->next = p + w;
  s->window = w;
  return w;
}

static void record(uint32_t id, uint64_t first, uint32_t count) {
  pthread_mutex_lock(&g.mu);
  rec_entry *l = g.rec_n ? &g.rec[g.rec_n - 1] : NULL;
  if (l && l->id == id && l->first + l->count == first && (uint64_t)l->count + count <= UINT32_MAX) {
    l->count += count;
  } else if (g.rec_n >= RECORD_MAX) {
    g.rec_truncated = 1;
  } else {
    if (g.rec_n == g.rec_cap) {
      size_t cap = g.rec_cap ? g.rec_cap * 2 : 1024;
      rec_entry *n = (rec_entry *)realloc(g.rec, cap * sizeof *n);
      if (n == NULL) {
        g.rec_truncated = 1;
        pthread_mutex_unlock(&g.mu);
        return;
      }
      g.rec = n;
      g.rec_cap = cap;
    }
    g.rec[g.rec_n++] = (rec_entry){id, count, first};
  }
  pthread_mutex_unlock(&g.mu);
}

/* The page cannot be served to source s: poison it there (SIGBUS in the faulting thread). */
static void fail_page(source *s, sf_lazy_region *r, uint64_t p) {
  lconn *c = &g.conn[r->conn];
  if (!atomic_load(&r->m->failed)) {
    snprintf(r->m->cause, sizeof r->m->cause, "%s", c->cause);
    atomic_store(&r->m->failed, 1);
  }
  if (g.features & UFFD_FEATURE_POISON) {
    struct uffdio_poison po = {.range = {(uint64_t)(uintptr_t)(r->base + p * r->ps), r->ps}, .mode = 0};
    if (ioctl(s->uffd, UFFDIO_POISON, &po) == 0 || errno == EEXIST) {
      uffd_wake(s->uffd, r, p, 1);
      return;
    }
  }
  /* No poison: end the process that cannot go on (a clone dies with its seed anyway). */
  say_unavailable(r, p, r->m->cause);
  if (s == g.src[0]) _exit(SF_LAZY_EXIT_UNAVAILABLE);
  kill(s->pid, SIGKILL);
}

/* Installs zero pages from p on in source s (zero map): no fetch. */
static void zero_fill(source *s, sf_lazy_region *r, uint64_t p, int write) {
  int64_t n;
  if (write) {
    n = uffd_copy(s->uffd, r, p, 1, g.zeros); /* writable at once: no second fault */
  } else {
    uint64_t e = p + 1;
    while (e < r->pages && e - p < ZERO_RUN_MAX && bit(r->zero, e) && !bit(r->cached, e)) e++;
    n = uffd_zeropage(s->uffd, r, p, e - p);
  }
  if (n > 0) atomic_fetch_add(&r->m->zero_filled, (uint64_t)n);
  else uffd_wake(s->uffd, r, p, 1); /* EEXIST: it is there already */
}

/* Installs as zero, in source s, every page of [a, e) known zero and not cached: a scan then
 * finds them without a fault each (a run costs one ioctl, about 0.2 us a page). */
static void zero_install(source *s, sf_lazy_region *r, uint64_t a, uint64_t e) {
  for (uint64_t z = a; z < e; z++) {
    if (!bit(r->zero, z) || bit(r->cached, z)) continue;
    uint64_t y = z;
    while (y < e && bit(r->zero, y) && !bit(r->cached, y)) y++;
    int64_t n = uffd_zeropage(s->uffd, r, z, y - z);
    if (n > 0) atomic_fetch_add(&r->m->zero_filled, (uint64_t)n);
    z = y;
  }
}

static void serve_fault(int si, uint64_t addr, uint64_t flags) {
  source *s = g.src[si];
  sf_lazy_region *r = NULL;
  pthread_mutex_lock(&g.mu);
  for (int k = 0; k < s->n && r == NULL; k++) {
    sf_lazy_region *c = g.reg[s->slot[k]];
    if (c == NULL || c->serial != s->serial[k]) continue;
    if (si == 0 && !c->mapped) continue;
    if (addr >= (uint64_t)(uintptr_t)c->base && addr < (uint64_t)(uintptr_t)c->base + c->map_len) r = c;
  }
  if (r) r->refs++;
  pthread_mutex_unlock(&g.mu);
  if (r == NULL) {
    /* A registered range always belongs to a region of its source; if not, waking is the only
     * answer that does not hang it (the kernel faults again, or it was unmapped meanwhile). */
    struct uffdio_range w = {addr & ~(uint64_t)(g.ps - 1), g.ps};
    (void)ioctl(s->uffd, UFFDIO_WAKE, &w);
    return;
  }
  uint64_t p = (addr - (uint64_t)(uintptr_t)r->base) / r->ps;
  int write = (flags & UFFD_PAGEFAULT_FLAG_WRITE) != 0;
  lconn *c = &g.conn[r->conn];
  atomic_fetch_add(&r->m->faults, 1);
  if (si != 0) atomic_fetch_add(&r->m->clone_faults, 1);

  if (bit(r->cached, p)) {
    if (resident(r, p)) {
      uffd_wake(s->uffd, r, p, 1); /* installed meanwhile: the retried fault maps it */
      goto out;
    }
    clear_bit(r->cached, p); /* gone from the cache (not by us): fetch again */
  }
  if (bit(r->zero, p)) {
    zero_fill(s, r, p, write);
    record(r->id, p, 1); /* part of the working set too: a replay installs it ahead */
    goto out;
  }
  pthread_mutex_lock(&c->mu);
  if (c->dead) {
    pthread_mutex_unlock(&c->mu);
    fail_page(s, r, p);
    goto out;
  }
  uint32_t w = ra_next(&s->ra[r->slot], p, r->ra_max);
  uint64_t e = p + 1;
  while (e < r->pages && e - p < w && !bit(r->cached, e) && !bit(r->hinted, e)) e++;
  while (e > p + 1 && bit(r->zero, e - 1)) e--;
  uint64_t sent = 0;
  uint8_t coming[SF_LAZY_MAX_BATCH / 8];
  int wait_ms = atomic_load(&r->mcast_wait_ms);
  int rc = fetch(r, c, p, (uint32_t)(e - p), wait_ms > 0 ? SF_WIRE_FLAG_MCAST : 0, &sent, wait_ms > 0 ? coming : NULL);
  pthread_mutex_unlock(&c->mu);
  if (rc < 0) {
    fail_page(s, r, p);
    goto out;
  }
  atomic_fetch_add(&r->m->fetched, sent);
  if (wait_ms > 0 && (coming[0] & 1)) {
    /* The faulting page is on its way by multicast (another seed asked for it a moment ago):
     * wait for the receiver to install it, then ask for the data after all. */
    uint64_t until = sf__now_ns() + (uint64_t)wait_ms * 1000000ull;
    while (!bit(r->cached, p) && sf__now_ns() < until) {
      struct timespec ts = {0, 50 * 1000};
      nanosleep(&ts, NULL);
    }
    if (bit(r->cached, p)) {
      atomic_fetch_add(&r->m->awaited, 1);
    } else {
      atomic_fetch_add(&r->m->late, 1);
      uint64_t again = 0;
      pthread_mutex_lock(&c->mu);
      rc = fetch(r, c, p, 1, 0, &again, NULL);
      pthread_mutex_unlock(&c->mu);
      if (rc < 0) {
        fail_page(s, r, p);
        goto out;
      }
      atomic_fetch_add(&r->m->fetched, again);
    }
  }
  record(r->id, p, (uint32_t)(e - p));
  zero_install(s, r, p + 1, e); /* the batch's zero pages, here and now */
  if (bit(r->cached, p)) uffd_wake(s->uffd, r, p, 1);
  else zero_fill(s, r, p, write); /* the server found it all zero */
out:
  pthread_mutex_lock(&g.mu);
  region_unref(r);
  pthread_mutex_unlock(&g.mu);
}

static void serve_uffd(int si) {
  struct uffd_msg msg[16];
  for (;;) {
    ssize_t n = read(g.src[si]->uffd, msg, sizeof msg);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return; /* EAGAIN: nothing more now */
    for (size_t i = 0; i < (size_t)n / sizeof msg[0]; i++)
      if (msg[i].event == UFFD_EVENT_PAGEFAULT) serve_fault(si, msg[i].arg.pagefault.address, msg[i].arg.pagefault.flags);
    if ((size_t)n < sizeof msg) return;
  }
}

/* A clone's registration arrived on the channel. */
static void take_clone(void) {
  clone_msg m;
  union {
    char buf[CMSG_SPACE(sizeof(int) * 2)];
    struct cmsghdr align;
  } ctl;
  struct iovec iov = {&m, sizeof m};
  struct msghdr h = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf, .msg_controllen = sizeof ctl.buf};
  ssize_t got = recvmsg(g.chan[0], &h, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
  if (got < 0) return;
  int fds[2] = {-1, -1}, nfd = 0;
  for (struct cmsghdr *c = CMSG_FIRSTHDR(&h); c != NULL; c = CMSG_NXTHDR(&h, c))
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
      nfd = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
      if (nfd > 2) nfd = 2;
      memcpy(fds, CMSG_DATA(c), (size_t)nfd * sizeof(int));
    }
  size_t head = offsetof(clone_msg, serial);
  int ok = (size_t)got >= head && m.magic == CLONE_MAGIC && m.n <= SF_LAZY_MAX_REGIONS &&
           (size_t)got == head + m.n * sizeof(uint64_t);
  pthread_mutex_lock(&g.mu);
  source *s = NULL;
  int slot = -1;
  for (int i = 1; i < MAX_SOURCES && slot < 0; i++)
    if (g.src[i] == NULL) slot = i;
  if (ok && nfd >= 1 && slot > 0) s = (source *)calloc(1, sizeof *s);
  for (uint32_t k = 0; ok && k < m.n; k++) {
    sf_lazy_region *r = region_by_serial(m.serial[k]);
    if (r == NULL) continue; /* gone meanwhile (only possible for a clone of a clone) */
    if (!m.pending) r->refs++;
    if (s) {
      s->slot[s->n] = r->slot;
      s->serial[s->n++] = r->serial;
      atomic_fetch_add(&r->m->clones, 1);
    } else {
      region_unref(r); /* a clone that could not register, or no room: release what it held */
    }
  }
  if (s) {
    s->uffd = fds[0];
    s->pidfd = nfd > 1 ? fds[1] : -1;
    s->pid = m.pid;
    g.src[slot] = s;
  } else {
    for (int i = 0; i < nfd; i++) close(fds[i]);
  }
  pthread_mutex_unlock(&g.mu);
  if (ok && nfd >= 1 && s == NULL) {
    /* Nobody would serve its faults: it must not run on (it would wait forever). */
    line l = {.n = 0};
    put(&l, "sfmpi: lazy regions: clone ");
    put_u(&l, (uint64_t)m.pid);
    put(&l, slot < 0 ? " is one more than the 255 a seed serves" : " could not be recorded (out of memory)");
    put(&l, "; it is killed\n");
    (void)!write(2, l.b, l.n);
    kill(m.pid, SIGKILL);
  }
}

/* The clone in slot si ended: let go of it and of what it held. */
static void drop_source(int si) {
  pthread_mutex_lock(&g.mu);
  source *s = g.src[si];
  g.src[si] = NULL;
  for (int k = 0; k < s->n; k++) {
    sf_lazy_region *r = g.reg[s->slot[k]];
    if (r && r->serial == s->serial[k]) region_unref(r);
  }
  pthread_mutex_unlock(&g.mu);
  close(s->uffd);
  if (s->pidfd >= 0) close(s->pidfd);
  free(s);
}

/* Takes `pages` off the pending count. */
static void pf_consume(uint64_t pages) {
  uint64_t pend = atomic_load(&g.pf_pending);
  atomic_store(&g.pf_pending, pend > pages ? pend - pages : 0);
}

/* One batch of the working-set list, when no fault waits. */
static void prefetch_step(void) {
  pthread_mutex_lock(&g.mu);
  sf_lazy_region *r = NULL;
  uint64_t a = 0, e = 0;
  while (g.pf_i < g.pf_n) {
    rec_entry *x = &g.pf[g.pf_i];
    sf_lazy_region *c = region_by_id(x->id);
    uint64_t from = x->first + g.pf_off, end = x->first + x->count;
    a = from;
    if (c)
      while (a < end && (bit(c->cached, a) || bit(c->zero, a) || bit(c->hinted, a))) a++;
    if (c) zero_install(g.src[0], c, from, a); /* the seed's zero pages, ahead as well */
    if (c == NULL || a >= end) {
      pf_consume(end - from);
      g.pf_i++;
      g.pf_off = 0;
      continue;
    }
    e = a + 1;
    while (e < end && e - a < c->ra_max && e - a < SF_LAZY_MAX_BATCH && !bit(c->cached, e) && !bit(c->hinted, e)) e++;
    while (e > a + 1 && bit(c->zero, e - 1)) e--;
    pf_consume(e - from);
    g.pf_off = e - x->first;
    if (g.pf_off >= x->count) {
      g.pf_i++;
      g.pf_off = 0;
    }
    r = c;
    r->refs++;
    break;
  }
  if (g.pf_i >= g.pf_n && r == NULL) atomic_store(&g.pf_pending, 0);
  pthread_mutex_unlock(&g.mu);
  if (r == NULL) return;
  lconn *c = &g.conn[r->conn];
  uint64_t sent = 0;
  pthread_mutex_lock(&c->mu);
  int rc = fetch(r, c, a, (uint32_t)(e - a), 0, &sent, NULL);
  pthread_mutex_unlock(&c->mu);
  pthread_mutex_lock(&g.mu);
  if (rc == 0) {
    atomic_fetch_add(&r->m->prefetched, sent);
    zero_install(g.src[0], r, a, e);
  } else { /* the faults will report it; stop pushing */
    g.pf_i = g.pf_n;
    atomic_store(&g.pf_pending, 0);
  }
  region_unref(r);
  pthread_mutex_unlock(&g.mu);
}

static void *handler(void *arg) {
  (void)arg;
  enum { WHO_UFFD = 0x10000, WHO_PID = 0x20000 };
  struct pollfd pf[2 + 2 * MAX_SOURCES];
  int who[2 + 2 * MAX_SOURCES];
  uint64_t spin_until = 0;
  for (;;) {
    int n = 0;
    pf[n++] = (struct pollfd){g.kick, POLLIN, 0};
    pf[n++] = (struct pollfd){g.chan[0], POLLIN, 0};
    pthread_mutex_lock(&g.mu);
    for (int i = 0; i < MAX_SOURCES; i++) {
      if (g.src[i] == NULL) continue;
      who[n] = WHO_UFFD | i;
      pf[n++] = (struct pollfd){g.src[i]->uffd, POLLIN, 0};
      if (g.src[i]->pidfd >= 0) {
        who[n] = WHO_PID | i;
        pf[n++] = (struct pollfd){g.src[i]->pidfd, POLLIN, 0};
      }
    }
    pthread_mutex_unlock(&g.mu);
    /* Spin briefly after a fault before sleeping: a scan faults again within microseconds,
     * and waking a sleeping thread costs more than the fault itself on a VM. */
    int pending = atomic_load(&g.pf_pending) > 0;
    int spinning = !pending && sf__now_ns() < spin_until;
    int r = poll(pf, (nfds_t)n, pending || spinning ? 0 : -1);
    if (r < 0) {
      if (errno == EINTR) continue;
      die("the page-fault handler's poll failed", errno);
    }
    if (r == 0) {
      if (pending) prefetch_step();
      continue;
    }
    spin_until = sf__now_ns() + g.spin_ns;
    if (pf[0].revents) {
      uint64_t v;
      (void)!read(g.kick, &v, sizeof v);
    }
    if (pf[1].revents & POLLIN) take_clone();
    for (int i = 2; i < n; i++) {
      if (!pf[i].revents) continue;
      int si = who[i] & 0xffff;
      if (g.src[si] == NULL) continue;
      if (who[i] & WHO_UFFD) serve_uffd(si);
      else drop_source(si);
    }
  }
}

/* ---------------------------------------------------------------------------------------- */
/* Fork */

static void atfork_prepare(void) {
  pthread_mutex_lock(&g.mu);
  g.fork_pending = 0;
  if (g.owner != getpid()) return;
  for (int i = 0; i < SF_LAZY_MAX_REGIONS; i++)
    if (g.reg[i] && g.reg[i]->mapped) {
      g.reg[i]->refs++; /* held for the child until its registration arrives */
      g.fork_pending = 1;
    }
}

static void atfork_parent(void) { pthread_mutex_unlock(&g.mu); }

/* In the new child, before the caller's code runs: register every region on a uffd of our own
 * and hand it to the seed's handler. Syscalls only (we are a fork of a threaded process). */
static void atfork_child(void) {
  clone_msg m = {.magic = CLONE_MAGIC, .pending = (uint32_t)g.fork_pending, .pid = getpid(), .n = 0};
  for (int i = 0; i < SF_LAZY_MAX_REGIONS; i++)
    if (g.reg[i] && g.reg[i]->mapped) m.serial[m.n++] = g.reg[i]->serial;
  if (m.n == 0 || g.chan[1] < 0) {
    pthread_mutex_unlock(&g.mu);
    return;
  }
  /* What belongs to the seed's handler is not ours: its thread is not here, and holding its
   * sockets or other clones' uffds would keep them open past their owners. */
  int old = g.uffd;
  g.running = 0;
  if (g.chan[0] >= 0) close(g.chan[0]);
  if (g.kick >= 0) close(g.kick);
  g.chan[0] = g.kick = -1;
  /* Forgotten as well as closed: those fd numbers will mean other files here. */
  for (int i = 0; i < MAX_CONNS; i++)
    if (g.conn[i].fd >= 0) {
      close(g.conn[i].fd);
      g.conn[i].fd = -1;
    }
  for (int i = 0; i < MAX_SOURCES; i++)
    if (g.src[i]) {
      if (i > 0) close(g.src[i]->uffd);
      if (g.src[i]->pidfd >= 0) close(g.src[i]->pidfd);
      g.src[i] = NULL;
    }

  const char *failed = NULL;
  int e = 0;
  int fd = uffd_open(NULL, 0);
  if (fd < 0) {
    failed = "a clone could not open its userfaultfd";
    e = -fd;
  }
  for (int i = 0; fd >= 0 && failed == NULL && i < SF_LAZY_MAX_REGIONS; i++)
    if (g.reg[i] && g.reg[i]->mapped) {
      int rc = uffd_register(fd, g.reg[i]);
      if (rc < 0) {
        failed = "a clone could not register its copy of a lazy region";
        e = -rc;
      }
    }
  int pidfd = (int)syscall(SYS_pidfd_open, getpid(), 0);
  int fds[2] = {fd, pidfd};
  int nfd = fd < 0 ? 0 : (pidfd >= 0 ? 2 : 1);
  if (failed) nfd = 0; /* a message without a uffd releases what the seed held for us */
  union {
    char buf[CMSG_SPACE(sizeof(int) * 2)];
    struct cmsghdr align;
  } ctl;
  struct iovec iov = {&m, offsetof(clone_msg, serial) + m.n * sizeof(uint64_t)};
  struct msghdr h = {.msg_iov = &iov, .msg_iovlen = 1};
  if (nfd > 0) {
    h.msg_control = ctl.buf;
    h.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfd);
    struct cmsghdr *c = CMSG_FIRSTHDR(&h);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfd);
    memcpy(CMSG_DATA(c), fds, sizeof(int) * (size_t)nfd);
  }
  ssize_t sent;
  do sent = sendmsg(g.chan[1], &h, MSG_NOSIGNAL);
  while (sent < 0 && errno == EINTR);
  if (!failed && sent < 0) {
    failed = "a clone could not hand its userfaultfd to the seed";
    e = errno;
  }
  if (pidfd >= 0) close(pidfd);
  if (failed) die(failed, e); /* never run on with regions that would read zeros */
  if (old >= 0) close(old);
  g.uffd = fd;
  pthread_mutex_unlock(&g.mu);
}

/* ---------------------------------------------------------------------------------------- */
/* The engine: started by the first map */

static int engine_start(char *err, size_t errlen) {
  pid_t me = getpid();
  if (g.owner == me && g.running) return 0;
  if (g.owner != 0 && g.owner != me)
    return sf__fmt(err, errlen,
                   "lazy regions are mapped by the seed (process %d); a clone forked from it cannot map lazy "
                   "regions of its own",
                   g.owner),
           -EPERM;
  int rc = uffd_probe(&g.via_dev, &g.features, err, errlen);
  if (rc < 0) return rc;
  g.ps = (uint32_t)sysconf(_SC_PAGESIZE);
  /* SFMPI_LAZY_SPIN_US: how long the handler polls after a fault before it sleeps. 0 by
   * default: on this project's loaded 2-vCPU machine spinning stole the faulting thread's CPU
   * (15 us a fault without, 23 with 20 us of spin; bench:lazy measures both). A host with
   * cores to spare and dear wake-ups (a VM without halt polling) may gain from 20-50. */
  const char *spin = getenv("SFMPI_LAZY_SPIN_US");
  char *end = NULL;
  long us = spin && *spin ? strtol(spin, &end, 10) : SPIN_US_DEFAULT;
  if (spin && *spin && (*end != '\0' || us < 0 || us > 1000000))
    return sf__fmt(err, errlen, "SFMPI_LAZY_SPIN_US must be 0 to 1000000 microseconds, got \"%s\"", spin), -EINVAL;
  g.spin_ns = (uint64_t)us * 1000;
  int sv[2] = {-1, -1};
  source *self = NULL;
  g.uffd = uffd_open(err, errlen);
  if (g.uffd < 0) return g.uffd;
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
    rc = -errno;
    sf__fmt(err, errlen, "lazy regions: socketpair for clones: %s", strerror(-rc));
    goto fail;
  }
  g.kick = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (g.kick < 0) {
    rc = -errno;
    sf__fmt(err, errlen, "lazy regions: eventfd: %s", strerror(-rc));
    goto fail;
  }
  size_t blen = (size_t)SF_LAZY_MAX_BATCH * g.ps;
  if (g.buf == NULL && posix_memalign((void **)&g.buf, g.ps, blen) != 0) {
    g.buf = NULL;
    rc = -ENOMEM;
    sf__fmt(err, errlen, "lazy regions: out of memory for the fetch buffer");
    goto fail;
  }
  if (g.zeros == NULL) {
    void *z = mmap(NULL, blen, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (z == MAP_FAILED) {
      rc = -errno;
      sf__fmt(err, errlen, "lazy regions: mmap of zero pages: %s", strerror(-rc));
      goto fail;
    }
    g.zeros = (char *)z;
  }
  self = (source *)calloc(1, sizeof *self);
  if (self == NULL) {
    rc = -ENOMEM;
    sf__fmt(err, errlen, "lazy regions: out of memory");
    goto fail;
  }
  self->uffd = g.uffd;
  self->pidfd = -1;
  self->pid = me;
  g.chan[0] = sv[0];
  g.chan[1] = sv[1];
  if (!g.hooks) {
    for (int i = 0; i < MAX_CONNS; i++) g.conn[i].fd = -1;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_sigbus;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGBUS, &sa, &g.old_bus) != 0 || pthread_atfork(atfork_prepare, atfork_parent, atfork_child) != 0) {
      rc = -errno;
      sf__fmt(err, errlen, "lazy regions: installing the SIGBUS and fork handlers: %s", strerror(-rc));
      goto fail;
    }
    g.hooks = 1;
  }
  g.src[0] = self;
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old); /* the handler takes no signal: they are the program's */
  rc = pthread_create(&g.thread, NULL, handler, NULL);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (rc != 0) {
    g.src[0] = NULL;
    rc = -rc;
    sf__fmt(err, errlen, "lazy regions: starting the page-fault handler thread: %s", strerror(-rc));
    goto fail;
  }
  g.owner = me;
  g.running = 1;
  return 0;

fail:
  free(self);
  if (sv[0] >= 0) close(sv[0]);
  if (sv[1] >= 0) close(sv[1]);
  g.chan[0] = g.chan[1] = -1;
  if (g.kick >= 0) close(g.kick);
  g.kick = -1;
  close(g.uffd);
  g.uffd = -1;
  return rc;
}

int sf_lazy_available(char *reason, size_t len) {
  int how;
  uint64_t f;
  char err[400];
  pthread_mutex_lock(&g.mu);
  int rc = g.running ? 0 : uffd_probe(&how, &f, err, sizeof err);
  pthread_mutex_unlock(&g.mu);
  if (rc < 0) sf__fmt(reason, len, "%s", err);
  return rc == 0;
}

int sf_lazy_use_device(int fd, char *err, size_t errlen) {
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISCHR(st.st_mode))
    return sf__fmt(err, errlen, "fd %d is not /dev/userfaultfd (not a character device)", fd), -EINVAL;
  pthread_mutex_lock(&g.mu);
  int busy = g.running;
  if (!busy) g.dev = fd;
  pthread_mutex_unlock(&g.mu);
  if (busy) return sf__fmt(err, errlen, "a /dev/userfaultfd fd must be given before the first lazy region"), -EBUSY;
  return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* The API */

static int conn_take(int fd, int timeout_ms, char *err, size_t errlen) {
  for (int i = 0; i < MAX_CONNS; i++)
    if (g.conn[i].fd == fd && g.conn[i].refs > 0) {
      g.conn[i].refs++;
      return i;
    }
  int type = 0;
  socklen_t tl = sizeof type;
  if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) != 0 || type != SOCK_STREAM)
    return sf__fmt(err, errlen, "fd %d is not a connected stream socket", fd), -ENOTSOCK;
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
    int e = errno;
    return sf__fmt(err, errlen, "fcntl of connection fd %d: %s", fd, strerror(e)), -e;
  }
  int fdf = fcntl(fd, F_GETFD);
  if (fdf >= 0) (void)fcntl(fd, F_SETFD, fdf | FD_CLOEXEC);
  int one = 1;
  unsigned ut = (unsigned)timeout_ms;
  /* A dead host sends no reset: without these a fault waits for TCP's retries (minutes). Not
   * TCP (a Unix socket in tests): nothing to set. */
  (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  (void)setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &ut, sizeof ut);
  for (int i = 0; i < MAX_CONNS; i++)
    if (g.conn[i].fd < 0) {
      lconn *c = &g.conn[i];
      memset(c, 0, sizeof *c);
      c->fd = fd;
      c->refs = 1;
      pthread_mutex_init(&c->mu, NULL);
      return i;
    }
  return sf__fmt(err, errlen, "more than %d memory-server connections", MAX_CONNS), -EMFILE;
}

/* Asks the server for the region's length (INFO) and compares. */
static int check_info(sf_lazy_region *r, lconn *c, char *err, size_t errlen) {
  uint64_t deadline = sf__now_ns() + (uint64_t)r->timeout_ms * 1000000ull;
  char t[160];
  pthread_mutex_lock(&c->mu);
  sf_wire_req q = {SF_WIRE_REQ_MAGIC, SF_WIRE_VERSION, SF_WIRE_INFO, 0, r->id, 0, 0, ++c->tag};
  sf_wire_rep p;
  sf_wire_info info;
  int rc = send_all(c->fd, &q, sizeof q, deadline);
  if (rc == 0) rc = recv_all(c->fd, &p, sizeof p, deadline);
  if (rc == 0 && p.magic == SF_WIRE_REP_MAGIC && p.status == SF_WIRE_OK) rc = recv_all(c->fd, &info, sizeof info, deadline);
  pthread_mutex_unlock(&c->mu);
  if (rc < 0)
    return sf__fmt(err, errlen, "lazy region %u: asking the memory server %s for its length: %s", r->id, r->server,
                   io_cause(rc, r->timeout_ms, t, sizeof t)),
           -EIO;
  if (p.magic != SF_WIRE_REP_MAGIC || p.version != SF_WIRE_VERSION || p.tag != q.tag || p.type != SF_WIRE_INFO)
    return sf__fmt(err, errlen, "lazy region %u: the memory server %s sent a malformed reply", r->id, r->server),
           -EPROTO;
  if (p.status != SF_WIRE_OK)
    return sf__fmt(err, errlen, "lazy region %u: the memory server %s refused: %s", r->id, r->server,
                   sf_wire_status_text(p.status)),
           -ENOENT;
  if (info.length != r->length || p.page_size != r->ps)
    return sf__fmt(err, errlen,
                   "lazy region %u: the memory server %s has %lu bytes in pages of %u, the descriptor says %lu in "
                   "pages of %u",
                   r->id, r->server, (unsigned long)info.length, p.page_size, (unsigned long)r->length, r->ps),
           -EINVAL;
  return 0;
}

int sf_lazy_map(const sf_lazy_spec *spec, sf_lazy_region **out, char *err, size_t errlen) {
  if (spec == NULL || out == NULL) return sf__fmt(err, errlen, "lazy region: no spec"), -EINVAL;
  uint32_t host = (uint32_t)sysconf(_SC_PAGESIZE);
  uint32_t id = spec->id;
  if (spec->length == 0) return sf__fmt(err, errlen, "lazy region %u: length must be at least 1 byte", id), -EINVAL;
  if (spec->page_size != host)
    return sf__fmt(err, errlen, "lazy region %u: page size %u differs from this host's %u", id, spec->page_size, host),
           -EINVAL;
  uint64_t pages = (spec->length + host - 1) / host;
  if (spec->zero_map && spec->zero_map_bytes != sf_zero_map_bytes(spec->length, host))
    return sf__fmt(err, errlen, "lazy region %u: zero map of %lu bytes, %lu expected for %lu pages", id,
                   (unsigned long)spec->zero_map_bytes, (unsigned long)sf_zero_map_bytes(spec->length, host),
                   (unsigned long)pages),
           -EINVAL;
  if (spec->timeout_ms < 0) return sf__fmt(err, errlen, "lazy region %u: timeout must not be negative", id), -EINVAL;
  if (spec->readahead > SF_LAZY_MAX_BATCH)
    return sf__fmt(err, errlen, "lazy region %u: read-ahead of %u pages exceeds the %d a request may carry", id,
                   spec->readahead, SF_LAZY_MAX_BATCH),
           -EINVAL;

  pthread_mutex_lock(&g.mu);
  int rc = engine_start(err, errlen);
  if (rc < 0) {
    pthread_mutex_unlock(&g.mu);
    return rc;
  }
  for (int i = 0; i < SF_LAZY_MAX_REGIONS; i++)
    if (g.reg[i] && g.reg[i]->mapped && g.reg[i]->id == id) {
      pthread_mutex_unlock(&g.mu);
      return sf__fmt(err, errlen, "lazy region %u is mapped already", id), -EEXIST;
    }
  int slot = -1;
  for (int i = 0; i < SF_LAZY_MAX_REGIONS && slot < 0; i++)
    if (g.reg[i] == NULL) slot = i;
  if (slot < 0) {
    pthread_mutex_unlock(&g.mu);
    return sf__fmt(err, errlen, "lazy region %u: more than %d lazy regions", id, SF_LAZY_MAX_REGIONS), -EMFILE;
  }
  sf_lazy_region *r = (sf_lazy_region *)calloc(1, sizeof *r);
  if (r == NULL) {
    pthread_mutex_unlock(&g.mu);
    return sf__fmt(err, errlen, "lazy region %u: out of memory", id), -ENOMEM;
  }
  r->id = id;
  r->slot = slot;
  r->length = spec->length;
  r->pages = pages;
  r->ps = host;
  r->map_len = (size_t)(pages * host);
  r->memfd = -1;
  r->m = MAP_FAILED;
  r->base = MAP_FAILED;
  r->conn = -1;
  r->timeout_ms = spec->timeout_ms ? spec->timeout_ms : SF_LAZY_TIMEOUT_DEFAULT_MS;
  r->ra_max = spec->readahead ? spec->readahead : SF_LAZY_READAHEAD_DEFAULT;
  snprintf(r->server, sizeof r->server, "%s", spec->server && spec->server[0] ? spec->server : "(unnamed)");
  uint64_t words = (pages + 63) / 64;
  r->meta_len = (sizeof(meta) + 3 * words * 8 + host - 1) / host * host;

  rc = conn_take(spec->fd, r->timeout_ms, err, errlen);
  if (rc < 0) goto fail;
  r->conn = rc;
  if (spec->check) {
    /* The exchange waits on the network; nothing of the region is mapped yet, so a fork
     * meanwhile has nothing to register. */
    pthread_mutex_unlock(&g.mu);
    rc = check_info(r, &g.conn[r->conn], err, errlen);
    pthread_mutex_lock(&g.mu);
    if (rc < 0) goto fail;
  }

  char name[32];
  snprintf(name, sizeof name, "sfmpi-lazy-%u", id);
  r->memfd = memfd_create(name, MFD_CLOEXEC);
  if (r->memfd < 0 || ftruncate(r->memfd, (off_t)r->map_len) != 0) {
    rc = -errno;
    sf__fmt(err, errlen, "lazy region %u: memfd of %zu bytes for its page cache: %s", id, r->map_len, strerror(-rc));
    goto fail;
  }
  void *m = mmap(NULL, r->meta_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED) {
    rc = -errno;
    sf__fmt(err, errlen, "lazy region %u: mmap of its %zu-byte bitmaps: %s", id, r->meta_len, strerror(-rc));
    goto fail;
  }
  r->m = (meta *)m;
  r->cached = (_Atomic uint64_t *)((char *)m + sizeof(meta));
  r->zero = r->cached + words;
  r->hinted = r->zero + words;
  if (spec->zero_map) {
    memcpy((void *)r->zero, spec->zero_map, (size_t)spec->zero_map_bytes);
    if (pages % 64) r->zero[words - 1] &= (1ull << (pages % 64)) - 1; /* bits past the end mean nothing */
  }
  void *b = mmap(NULL, r->map_len, PROT_READ | PROT_WRITE, MAP_PRIVATE, r->memfd, 0);
  if (b == MAP_FAILED) {
    rc = -errno;
    sf__fmt(err, errlen, "lazy region %u: mmap of %zu bytes: %s", id, r->map_len, strerror(-rc));
    goto fail;
  }
  r->base = (char *)b;
  (void)madvise(b, r->map_len, MADV_DOFORK);
  rc = uffd_register(g.uffd, r);
  if (rc < 0) {
    sf__fmt(err, errlen, "lazy region %u: UFFDIO_REGISTER of %zu bytes: %s", id, r->map_len, strerror(-rc));
    goto fail;
  }
  r->serial = ++g.serial;
  r->refs = 1;
  r->mapped = 1;
  g.reg[slot] = r;
  source *self = g.src[0];
  self->slot[self->n] = slot;
  self->serial[self->n] = r->serial;
  self->ra[slot] = (ra){0, 0, 0};
  self->n++;
  pthread_mutex_unlock(&g.mu);
  *out = r;
  return 0;

fail:
  if (r->conn >= 0) conn_unref(r->conn);
  if (r->base != MAP_FAILED) munmap(r->base, r->map_len);
  if (r->m != MAP_FAILED) munmap(r->m, r->meta_len);
  if (r->memfd >= 0) close(r->memfd);
  free(r);
  pthread_mutex_unlock(&g.mu);
  return rc;
}

void *sf_lazy_base(const sf_lazy_region *r) { return r->base; }
uint64_t sf_lazy_length(const sf_lazy_region *r) { return r->length; }
uint32_t sf_lazy_id(const sf_lazy_region *r) { return r->id; }

void sf_lazy_unmap(sf_lazy_region *r) {
  if (r == NULL) return;
  pthread_mutex_lock(&g.mu);
  if (r->mapped) {
    r->mapped = 0;
    munmap(r->base, r->map_len); /* its registration goes with it */
    if (g.owner == getpid()) {
      source *self = g.src[0];
      for (int k = 0; self && k < self->n; k++)
        if (self->slot[k] == r->slot && self->serial[k] == r->serial) {
          self->slot[k] = self->slot[self->n - 1];
          self->serial[k] = self->serial[self->n - 1];
          self->n--;
          break;
        }
      region_unref(r);
    }
    /* In a clone: the structure is our copy of the seed's; the seed frees its own. */
  }
  pthread_mutex_unlock(&g.mu);
}

int64_t sf_lazy_hint_overwrite(sf_lazy_region *r, const void *addr, size_t len) {
  if (r == NULL || !r->mapped) return -EINVAL;
  uintptr_t b = (uintptr_t)r->base, a = (uintptr_t)addr, e = a + len;
  if (a < b || e > b + r->length || e < a) return -ERANGE;
  uint64_t p = (a - b + r->ps - 1) / r->ps, q = (e - b) / r->ps;
  if (e == b + r->length) q = r->pages; /* the region's last page, zero-padded, counts whole */
  if (p >= q) return 0;
  set_bits(r->hinted, p, q);
  int64_t avoided = 0;
  while (p < q) {
    /* Cached or known zero: it costs no fetch anyway (a write is a local copy, or a zero page). */
    if (bit(r->cached, p) || bit(r->zero, p)) {
      p++;
      continue;
    }
    uint64_t x = p;
    while (x < q && x - p < SF_LAZY_MAX_BATCH && !bit(r->cached, x) && !bit(r->zero, x)) x++;
    int64_t n = uffd_copy(g.uffd, r, p, x - p, g.zeros);
    if (n > 0) {
      avoided += n;
      p += (uint64_t)n;
    } else {
      p++; /* present here already (EEXIST), or a page that cannot be filled: let it fault */
    }
  }
  if (avoided) atomic_fetch_add(&r->m->avoided, (uint64_t)avoided);
  return avoided;
}

int sf_lazy_counters_get(const sf_lazy_region *r, sf_lazy_counters *c) {
  if (r == NULL || c == NULL) return -EINVAL;
  meta *m = r->m;
  c->faults = atomic_load(&m->faults);
  c->fetched = atomic_load(&m->fetched);
  c->prefetched = atomic_load(&m->prefetched);
  c->zero_filled = atomic_load(&m->zero_filled);
  c->avoided = atomic_load(&m->avoided);
  c->multicast = atomic_load(&m->multicast);
  c->requests = atomic_load(&m->requests);
  c->bytes = atomic_load(&m->bytes);
  c->fetch_ns = atomic_load(&m->fetch_ns);
  c->clone_faults = atomic_load(&m->clone_faults);
  c->clones = atomic_load(&m->clones);
  c->awaited = atomic_load(&m->awaited);
  c->late = atomic_load(&m->late);
  c->pages = r->pages;
  uint64_t n = 0;
  for (uint64_t w = 0; w < (r->pages + 63) / 64; w++) n += (uint64_t)__builtin_popcountll(atomic_load(&r->cached[w]));
  c->cached = n;
  return 0;
}

int64_t sf_lazy_install(uint32_t region_id, uint64_t first_page, uint32_t count, const void *data) {
  pthread_mutex_lock(&g.mu);
  sf_lazy_region *r = region_by_id(region_id);
  int owner = g.owner == getpid();
  if (r && owner) r->refs++;
  pthread_mutex_unlock(&g.mu);
  if (r == NULL) return -ENOENT;
  int64_t rc = 0;
  if (count == 0 || first_page >= r->pages || count > r->pages - first_page || data == NULL) {
    rc = -ERANGE;
    goto out;
  }
  uint64_t installed = 0, j = first_page, end = first_page + count;
  while (j < end) {
    if (bit(r->cached, j)) {
      j++;
      continue;
    }
    uint64_t e = j;
    while (e < end && !bit(r->cached, e)) e++;
    const char *src = (const char *)data + (j - first_page) * r->ps;
    size_t len = (size_t)(e - j) * r->ps, done = 0;
    while (done < len) {
      ssize_t w = pwrite(r->memfd, src + done, len - done, (off_t)(j * r->ps + done));
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) {
        if (w == 0) errno = EIO;
        rc = -EIO;
        goto out;
      }
      done += (size_t)w;
    }
    /* Written first, flagged after: a fault that sees the bit finds the page whole. */
    installed += set_bits(r->cached, j, e);
    j = e;
  }
  if (installed) atomic_fetch_add(&r->m->multicast, installed);
  rc = installed ? (int64_t)installed : -EEXIST;
out:
  if (owner) {
    pthread_mutex_lock(&g.mu);
    region_unref(r);
    pthread_mutex_unlock(&g.mu);
  }
  return rc;
}

int sf_lazy_multicast(uint32_t region_id, int wait_ms) {
  if (wait_ms < 0 || wait_ms > 10000) return -EINVAL;
  pthread_mutex_lock(&g.mu);
  sf_lazy_region *r = region_by_id(region_id);
  if (r) atomic_store(&r->mcast_wait_ms, wait_ms);
  pthread_mutex_unlock(&g.mu);
  return r ? 0 : -ENOENT;
}

int sf_lazy_present(uint32_t region_id, uint64_t page) {
  pthread_mutex_lock(&g.mu);
  sf_lazy_region *r = region_by_id(region_id);
  int yes = r && page < r->pages && bit(r->cached, page);
  pthread_mutex_unlock(&g.mu);
  return yes;
}

/* ---------------------------------------------------------------------------------------- */
/* Working-set lists */

static size_t put_varint(uint8_t *b, size_t at, size_t cap, uint64_t v) {
  do {
    uint8_t byte = (uint8_t)(v & 0x7f);
    v >>= 7;
    if (v) byte |= 0x80;
    if (b && at < cap) b[at] = byte;
    at++;
  } while (v);
  return at;
}

/* -1 when the varint runs past len or over 10 bytes. */
static int get_varint(const uint8_t *b, size_t len, size_t *at, uint64_t *v) {
  uint64_t x = 0;
  for (int shift = 0; shift < 70; shift += 7) {
    if (*at >= len) return -1;
    uint8_t byte = b[(*at)++];
    x |= (uint64_t)(byte & 0x7f) << shift;
    if (!(byte & 0x80)) {
      *v = x;
      return 0;
    }
  }
  return -1;
}

int64_t sf_lazy_working_set(uint8_t *buf, size_t len) {
  pthread_mutex_lock(&g.mu);
  size_t at = 16;
  uint32_t prev_id = UINT32_MAX;
  uint64_t prev_end = 0;
  for (size_t i = 0; i < g.rec_n; i++) {
    rec_entry *x = &g.rec[i];
    uint64_t base = x->id == prev_id ? prev_end : 0;
    int64_t d = (int64_t)(x->first - base);
    at = put_varint(buf, at, len, x->id);
    at = put_varint(buf, at, len, ((uint64_t)d << 1) ^ (uint64_t)(d >> 63));
    at = put_varint(buf, at, len, x->count);
    prev_id = x->id;
    prev_end = x->first + x->count;
  }
  uint8_t head[16] = {'S', 'F', 'W', 'S', WS_VERSION, (uint8_t)(g.rec_truncated ? 1 : 0), 0, 0};
  uint32_t n = (uint32_t)g.rec_n;
  memcpy(head + 8, &n, 4);
  if (buf) memcpy(buf, head, len < 16 ? len : 16);
  pthread_mutex_unlock(&g.mu);
  return (int64_t)at;
}

int64_t sf_lazy_prefetch(const uint8_t *list, size_t len, char *err, size_t errlen) {
  if (list == NULL || len < 16 || memcmp(list, WS_MAGIC, 4) != 0)
    return sf__fmt(err, errlen, "working-set list: not one (no \"SFWS\" header)"), -EINVAL;
  if (list[4] != WS_VERSION)
    return sf__fmt(err, errlen, "working-set list: version %u, this end reads version %u", list[4], WS_VERSION),
           -EINVAL;
  uint32_t n;
  memcpy(&n, list + 8, 4);
  if (n > RECORD_MAX) return sf__fmt(err, errlen, "working-set list: %u entries, at most %u", n, RECORD_MAX), -EINVAL;
  rec_entry *v = n ? (rec_entry *)malloc(n * sizeof *v) : NULL;
  if (n && v == NULL) return sf__fmt(err, errlen, "working-set list: out of memory"), -ENOMEM;
  size_t at = 16;
  uint32_t prev_id = UINT32_MAX;
  uint64_t prev_end = 0, total = 0;
  int64_t rc = 0;
  pthread_mutex_lock(&g.mu);
  for (uint32_t i = 0; i < n; i++) {
    uint64_t id, zz, count;
    size_t start = at;
    if (get_varint(list, len, &at, &id) || get_varint(list, len, &at, &zz) || get_varint(list, len, &at, &count) ||
        id > UINT32_MAX || count == 0 || count > UINT32_MAX) {
      rc = -EINVAL;
      sf__fmt(err, errlen, "working-set list: entry %u of %u at byte %zu is malformed or cut short", i, n, start);
      break;
    }
    int64_t d = (int64_t)((zz >> 1) ^ (~(zz & 1) + 1));
    uint64_t first = (id == prev_id ? prev_end : 0) + (uint64_t)d;
    sf_lazy_region *r = region_by_id((uint32_t)id);
    if (r == NULL) {
      rc = -ENOENT;
      sf__fmt(err, errlen, "working-set list: entry %u names region %lu, which is not mapped here", i,
              (unsigned long)id);
      break;
    }
    if (first >= r->pages || count > r->pages - first) {
      rc = -ERANGE;
      sf__fmt(err, errlen, "working-set list: entry %u (pages %lu+%lu) lies beyond region %lu's %lu pages", i,
              (unsigned long)first, (unsigned long)count, (unsigned long)id, (unsigned long)r->pages);
      break;
    }
    v[i] = (rec_entry){(uint32_t)id, (uint32_t)count, first};
    total += count;
    prev_id = (uint32_t)id;
    prev_end = first + count;
  }
  if (rc == 0 && at != len) {
    rc = -EINVAL;
    sf__fmt(err, errlen, "working-set list: %zu bytes after its %u entries", len - at, n);
  }
  if (rc == 0 && g.owner != getpid()) {
    rc = -EPERM;
    sf__fmt(err, errlen, "working-set list: only the seed that mapped the regions prefetches");
  }
  if (rc == 0) {
    /* A new list replaces what is left of an old one. */
    free(g.pf);
    g.pf = v;
    g.pf_n = n;
    g.pf_i = 0;
    g.pf_off = 0;
    v = NULL;
    atomic_store(&g.pf_pending, total);
    rc = (int64_t)total;
  }
  pthread_mutex_unlock(&g.mu);
  free(v);
  if (rc > 0) { /* wake the handler from its poll */
    uint64_t one = 1;
    (void)!write(g.kick, &one, sizeof one);
  }
  return rc;
}

uint64_t sf_lazy_prefetch_pending(void) { return atomic_load(&g.pf_pending); }
