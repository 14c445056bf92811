/*
 * sf_lazy.h: SnowFlock's memory-on-demand as C building blocks (docs/lazy-memory.md), shared
 * by the Node addon (native/addon/lazy.cc) and usable from C:
 *
 *   memory server  (native/lazy/memsrv.c)   in the origin at its fork point: a forked child
 *                                            whose copy-on-write view IS the snapshot serves
 *                                            region pages to seeds on other hosts
 *   lazy regions   (native/lazy/region.c)   in a seed: memory that fills itself on first touch
 *                                            from the memory server (userfaultfd, MISSING mode)
 *   zero map       (native/lazy/zeromap.c)  one bit per page: which pages are all zero
 *   wire format    (native/lazy/wire.h)     seed <-> memory server requests and replies
 *
 * Conventions: functions return 0 (or the non-negative value documented) on success and a
 * negative errno value on failure; those that take `err, errlen` write one line there saying
 * what failed ("lazy region 3: connection fd 17 is not a socket"). Nothing here prints, except
 * where a process must end (documented at sf_lazy_map). Pages are the host's base page size;
 * page i of a region holds its bytes [i*page, (i+1)*page), the last one zero-padded. A zero map
 * holds bit i (byte i/8, bit i%8, least significant first) set when page i is all zero.
 *
 * Flow of one region across hosts:
 *
 *   origin host                                   seed host
 *   -----------                                   ---------
 *   sf_memsrv_start(ranges)   fork point
 *     -> server child, frozen view                sf_lazy_map({id, length, zero map, fd})
 *   sf_memsrv_zero_map(i)     -> descriptor  -->    -> an empty region; a touch faults,
 *   accept + authenticate (Node, handshake.ts)         the handler thread fetches in batches
 *   sf_memsrv_give(fd)        <------ TCP ------->  pages land in the host's page cache of the
 *                                                    region, seen by every clone forked here
 */
#ifndef SF_LAZY_H
#define SF_LAZY_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Most pages one request may ask for (1 MiB of 4 KiB pages): the reply's io vector stays below
 * IOV_MAX, and beyond 64 pages a batch gains nothing (notes/lazy-memory.md, Q2). */
#define SF_LAZY_MAX_BATCH 256
/* Default read-ahead ceiling of a lazy region, in pages. */
#define SF_LAZY_READAHEAD_DEFAULT 64
/* Default deadline of one fetch, in ms (also the socket's TCP_USER_TIMEOUT). */
#define SF_LAZY_TIMEOUT_DEFAULT_MS 3000
/* The exit code of a process that touched a page nobody could serve (EX_TEMPFAIL). */
#define SF_LAZY_EXIT_UNAVAILABLE 75
/* Most regions a memory server serves, and a process maps lazily at once. */
#define SF_LAZY_MAX_REGIONS 256

/* ------------------------------------------------------------------------------------------ */
/* Zero map */

/* Bytes of the zero map of `length` bytes in pages of `page_size`: ceil(pages / 8). */
uint64_t sf_zero_map_bytes(uint64_t length, uint32_t page_size);

/* Fills `bits` (sf_zero_map_bytes of them) for the memory [addr, addr + length) of this
 * process. Pages of private anonymous mappings that were never touched (neither present nor
 * swapped in /proc/self/pagemap) are zero without being read (reading them would fault each
 * one in); the others are scanned (first cache line, then the whole page). `addr` need not be
 * page-aligned: the pages are counted from `addr`. Returns the number of zero pages, or
 * -errno with err set (an unmapped range: -EFAULT). */
int64_t sf_zero_map(const void *addr, uint64_t length, uint32_t page_size, uint8_t *bits,
                    char *err, size_t errlen);

/* ------------------------------------------------------------------------------------------ */
/* Memory server (in the origin) */

/* One range of the origin's memory to serve as region `id`: any readable memory of the
 * process (a region's pages, an ordinary ArrayBuffer's backing store, ...). */
typedef struct sf_memsrv_range {
  uint32_t id;
  const void *addr;
  uint64_t length;
} sf_memsrv_range;

/* Called in the server child after each reply is queued (region id, first page, page count):
 * the slot where multicast distribution hooks in. Runs C only, in the child. */
typedef void (*sf_memsrv_served_fn)(uint32_t region, uint64_t first, uint32_t count, void *arg);

typedef struct sf_memsrv_options {
  int zero_maps;              /* compute the zero maps on the snapshot, in the child (1) or not */
  /* A second Unix stream socket on which connections arrive (a 0x00 byte with each fd, by
   * SCM_RIGHTS), and the job's multicast configuration ('M' and 96 bytes, memsrv.c draws it),
   * from a peer other than the origin (dom0: dom0/share.ts); -1 for none. The server keeps a
   * copy; its end, or a byte out of turn, only stops that source. */
  int connections_from;
  sf_memsrv_served_fn served; /* optional */
  void *served_arg;
} sf_memsrv_options;

/* What the server did, per region (counted in the child, read by the origin from a shared
 * page). */
typedef struct sf_memsrv_region_counters {
  uint32_t id;
  uint64_t length;
  uint64_t requests;   /* PAGES requests answered */
  uint64_t pages;      /* pages asked for */
  uint64_t sent;       /* of those, pages sent (their bytes crossed the network) */
  uint64_t zero_pages; /* the others: all-zero pages answered by a bit */
  uint64_t bytes;      /* bytes written for this region, headers included */
  uint64_t multicast;  /* pages sent to the job's multicast group after a reply carried them */
  uint64_t deferred;   /* pages answered "on its way" (multicast within the lockstep window) */
} sf_memsrv_region_counters;

/* The memory server's multicast (memsrv.c's header: configured by dom0 on the second source). */
#define SF_MEMSRV_MCAST_OFF 0    /* never configured: unicast only */
#define SF_MEMSRV_MCAST_ON 1     /* the sender is open */
#define SF_MEMSRV_MCAST_FAILED 2 /* it could not be opened, or a send failed: unicast from then on */

typedef struct sf_memsrv_mcast_counters {
  int state;            /* SF_MEMSRV_MCAST_* */
  uint64_t datagrams;   /* the sender's counters (sf_mcast_sender_stats), after its last send */
  uint64_t wire_bytes;
  uint64_t pages;
  uint64_t suppressed;  /* pages not sent again within the lockstep window */
  uint64_t cuts;        /* flow control lowered the rate */
  uint64_t reports;     /* loss reports from receivers */
  double rate;          /* the pace, bytes/s */
  char error[256];      /* why it failed (state FAILED), else "" */
} sf_memsrv_mcast_counters;

typedef struct sf_memsrv_counters {
  uint64_t connections; /* handed in by sf_memsrv_give */
  uint64_t open;        /* still open */
  uint64_t malformed;   /* requests refused as malformed (each closed its connection) */
  uint64_t failed;      /* connections closed on a socket error (peer reset, timeout) */
  uint64_t requests;    /* requests answered, all regions and types */
} sf_memsrv_counters;

typedef struct sf_memsrv sf_memsrv;

/* Forks the server child (call at the fork point: what the child serves is what the ranges
 * hold at this instant; the origin's later writes are never seen). The child runs C only: it
 * ties itself to this process (PR_SET_PDEATHSIG, then checks its parent), closes every fd but
 * its control socket (0-2 become /dev/null), computes the zero maps if asked, and serves
 * connections handed in by sf_memsrv_give until the control socket closes. `ranges` must be
 * mapped and readable; ids unique; at most SF_LAZY_MAX_REGIONS. Returns 0 with *out set. */
int sf_memsrv_start(const sf_memsrv_range *ranges, int n, const sf_memsrv_options *opts,
                    sf_memsrv **out, char *err, size_t errlen);

/* The server child's pid. */
pid_t sf_memsrv_pid(const sf_memsrv *s);

/* Hands a connected socket to the server (SCM_RIGHTS over the control socket). The server gets
 * its own copy: the caller closes `fd` after. Authenticate it first (dom0/handshake.ts): the
 * server speaks the page protocol from its first byte. */
int sf_memsrv_give(sf_memsrv *s, int fd, char *err, size_t errlen);

/* Reads the counters; `regions` (optional) gets up to n entries, in range order. Returns the
 * number of regions. */
int sf_memsrv_counters_get(const sf_memsrv *s, sf_memsrv_counters *c, sf_memsrv_region_counters *regions,
                       int n);

/* Reads the multicast counters (0, or -EINVAL). */
int sf_memsrv_mcast_get(const sf_memsrv *s, sf_memsrv_mcast_counters *c);

/* The zero map of range `index` computed by the child on its snapshot: waits up to timeout_ms
 * for it (-1: no limit). *bits stays valid until sf_memsrv_stop. -EINVAL when zero maps were
 * not asked for, -ETIMEDOUT, -ESRCH when the child died. */
int sf_memsrv_zero_map(sf_memsrv *s, int index, int timeout_ms, const uint8_t **bits, uint64_t *bytes,
                       char *err, size_t errlen);

/* 1 while the server child runs, 0 once it ended (*wstatus then set, the child reaped). */
int sf_memsrv_alive(sf_memsrv *s, int *wstatus);

/* Closes the control socket (the child exits), waits up to timeout_ms for it, then SIGKILLs
 * it, reaps it and frees s. *wstatus (optional) gets its wait status. */
int sf_memsrv_stop(sf_memsrv *s, int timeout_ms, int *wstatus);

/* ------------------------------------------------------------------------------------------ */
/* Lazy regions (in a seed) */

/* Lazy regions need a userfaultfd that also serves faults from the kernel (a read(2) into, a
 * write(2) from lazy memory): root, CAP_SYS_PTRACE, vm.unprivileged_userfaultfd=1, or a
 * /dev/userfaultfd fd handed over by dom0 (sf_lazy_use_device). Returns 1 when this process can
 * map lazy regions, else 0 with the reason in `reason`. */
int sf_lazy_available(char *reason, size_t len);

/* Uses `fd` (an open /dev/userfaultfd, e.g. handed over by dom0 as root) to create this
 * process's userfaultfds (USERFAULTFD_IOC_NEW). The process keeps it; call before the first
 * sf_lazy_map. */
int sf_lazy_use_device(int fd, char *err, size_t errlen);

typedef struct sf_lazy_spec {
  uint32_t id;              /* the region's id at the memory server */
  uint64_t length;          /* bytes */
  uint32_t page_size;       /* must be this host's page size */
  const uint8_t *zero_map;  /* optional: sf_zero_map_bytes(length) bytes; copied */
  uint64_t zero_map_bytes;
  int fd;                   /* connected, authenticated socket to the memory server; the region
                               takes it (closed with its last region). Several regions may share
                               one connection: pass the same fd. */
  const char *server;       /* "host:port", for messages */
  int timeout_ms;           /* deadline of one fetch (0: SF_LAZY_TIMEOUT_DEFAULT_MS) */
  uint32_t readahead;       /* read-ahead ceiling in pages, 1: none (0: the default) */
  int check;                /* ask the server for the region's length first (INFO) and refuse
                               a mismatch */
} sf_lazy_spec;

typedef struct sf_lazy_region sf_lazy_region;

/* Maps an empty region of spec->length bytes whose pages fill themselves on first touch:
 *
 * - The region is a private mapping of a memfd, the host's page cache of the region: a fetched
 *   page is written there once and seen by this process and by every clone forked from it
 *   (copy-on-write: their writes stay their own). A handler thread (one per process) answers
 *   each fault: a page in the zero map is installed as zero without a fetch; otherwise it
 *   fetches a batch of missing pages around the fault (adaptive read-ahead: one page for
 *   scattered faults, doubling up to spec->readahead while faults follow on).
 * - Fork: every clone forked from this process (fork(2), forkClones, sf_job_fork) registers
 *   its copy of each region on a userfaultfd of its own in the instant after fork (a
 *   pthread_atfork child handler) and hands it to this process's handler, which serves it. A
 *   clone that cannot register ends at once (exit 70) rather than read missing pages as zeros.
 *   This process must outlive its clones (sfmpi's clones die with their parent).
 * - Failure: a fetch that fails (server gone, no reply within the deadline, a malformed reply)
 *   poisons the faulting page (UFFDIO_POISON): the faulting thread gets SIGBUS, and a handler
 *   installed here writes "sfmpi: lazy region 3: page 17 of 65536 could not be fetched from
 *   the memory server 10.0.0.1:7000: ...; process 1234 cannot continue" on stderr and exits
 *   SF_LAZY_EXIT_UNAVAILABLE. Every later fault of that connection fails the same way. A
 *   read(2)/write(2) by the kernel on a poisoned page returns EFAULT instead. Without
 *   UFFD_FEATURE_POISON (kernels before 6.6) the handler writes the line and _exits this
 *   process with that code (its clones die with it).
 *
 * Only in the process that maps the first region (the seed): a clone forked from it gets
 * -EPERM. Returns 0 with *out set. */
int sf_lazy_map(const sf_lazy_spec *spec, sf_lazy_region **out, char *err, size_t errlen);

/* The region's first byte (page-aligned) and its length in bytes. */
void *sf_lazy_base(const sf_lazy_region *r);
uint64_t sf_lazy_length(const sf_lazy_region *r);
uint32_t sf_lazy_id(const sf_lazy_region *r);

/* Declares that this process will overwrite [addr, addr + len) whole before reading it (a
 * receive, broadcast or scatter into the region): every page wholly inside that is still
 * missing here is installed as zero without a fetch, and read-ahead skips them on this host.
 * Partial pages at either end are left to fault. Returns the number of pages avoided. */
int64_t sf_lazy_hint_overwrite(sf_lazy_region *r, const void *addr, size_t len);

/* Counters of one region, for this host (the seed and every clone forked from it). */
typedef struct sf_lazy_counters {
  uint64_t faults;      /* faults that reached the handler: pages touched while missing */
  uint64_t fetched;     /* pages fetched from the memory server for faults (read-ahead included) */
  uint64_t prefetched;  /* pages fetched ahead from a working-set list (sf_lazy_prefetch) */
  uint64_t zero_filled; /* pages installed as zero without a fetch (zero map) */
  uint64_t avoided;     /* pages installed by an overwrite hint without a fetch */
  uint64_t multicast;   /* pages installed by sf_lazy_install (received by multicast) */
  uint64_t awaited;     /* faults answered "on its way" whose page then came by multicast */
  uint64_t late;        /* such faults whose page did not come in time: fetched by unicast */
  uint64_t requests;    /* requests sent to the memory server */
  uint64_t bytes;       /* bytes received from it */
  uint64_t fetch_ns;    /* time from request to last byte, summed */
  uint64_t clone_faults;/* of the faults, those of clones forked from the seed */
  uint64_t clones;      /* clones registered */
  uint64_t cached;      /* pages held in the host's page cache of the region now */
  uint64_t pages;       /* pages of the region */
} sf_lazy_counters;

int sf_lazy_counters_get(const sf_lazy_region *r, sf_lazy_counters *c);

/* Unmaps the region in this process. In the seed its page cache and connection stay while
 * clones forked before still use them. Idempotent per process. */
void sf_lazy_unmap(sf_lazy_region *r);

/* Installs pages received by some other path (multicast distribution) into region `region_id`
 * of this process's host cache: pages [first_page, first_page + count) from `data` (count
 * whole pages, page i at data + i*page). Pages already present are left alone; a thread
 * waiting on one of the new pages is woken by the handler. Thread-safe (any thread, any
 * process of the host: the seed or a clone forked from it; never blocks on the network).
 * Returns how many of the pages were still missing and are now installed (> 0), -EEXIST when
 * every one was present already, -ENOENT for an unknown region, -ERANGE for pages beyond it,
 * -EIO (with errno kept) when writing the page cache failed. */
int64_t sf_lazy_install(uint32_t region_id, uint64_t first_page, uint32_t count, const void *data);

/* Marks region `region_id` as receiving the job's multicast (a receiver installs its pages with
 * sf_lazy_install): its fetches then let the server answer "on its way" for pages it multicast
 * a moment ago, and a fault on such a page waits up to wait_ms for it to arrive before it asks
 * again for the data (which the server then always sends). wait_ms 0: off again. -ENOENT for an
 * unknown region, -EINVAL for wait_ms outside 0..10000. */
int sf_lazy_multicast(uint32_t region_id, int wait_ms);

/* Whether page `page` of region `region_id` is in this host's page cache (1), or not (0; also
 * for an unknown region or page): a multicast receiver's `present` test. */
int sf_lazy_present(uint32_t region_id, uint64_t page);

/* ------------------------------------------------------------------------------------------ */
/* Working-set prefetch (REAP) */

/* The pages this host needed for faults so far (batches fetched, zero pages installed), in
 * order, as a compact list (varints, see region.c): copies at most len bytes into buf (NULL:
 * only measure). Returns the list's full size in bytes. */
int64_t sf_lazy_working_set(uint8_t *buf, size_t len);

/* Fetches the pages of a working-set list (from an earlier seed of the same program and data)
 * ahead, in its order, in the handler thread whenever no fault is waiting; pages present
 * already are skipped. Regions named in the list must be mapped here (-ENOENT otherwise).
 * Returns the number of pages queued. */
int64_t sf_lazy_prefetch(const uint8_t *list, size_t len, char *err, size_t errlen);

/* Pages of queued prefetch not yet fetched (0 once it is done). */
uint64_t sf_lazy_prefetch_pending(void);

#ifdef __cplusplus
}
#endif

#endif
