/*
 * sf_dataplane.h: the data plane of sfmpi (shared by libsfmpi and the Node addon): MPI-style
 * messages and collectives between the ranks of a job, on this host and on others.
 *
 * A job's ranks live on one or more hosts. The ranks of one host share a memory region created
 * BEFORE their fork point by the host's first rank (the origin, or a seed on another host):
 *
 *   +--------------------+  offset 0
 *   | control block      |  magic, version, geometry, the abort word, per-local-rank
 *   |                    |  doorbell/state/pid
 *   +--------------------+
 *   | ring[src][dst]     |  nlocal*nlocal single-producer/single-consumer byte rings
 *   | ...                |  (src == dst is the loopback ring of a rank), by LOCAL rank
 *   +--------------------+
 *
 * and every rank holds a process-local sf_job handle with a link to every peer: a
 * shared-memory link to ranks of its host, a TCP link (an authenticated socket handed in with
 * sf_job_add_link_fd) to ranks of other hosts. Every link carries the same frames: a fixed
 * 32-byte header (magic, version, type, source, destination, context, tag, length, datatype),
 * drawn in the implementation's frame.h; a malformed frame closes that link and is reported as
 * SF_EPROTO, never a crash.
 *
 * Life cycle (C: sf_job_fork does steps 2-3; the Node addon forks by itself):
 *
 *   1. sf_job_create(&job, &opts)          on each host, in its first rank, before the fork
 *   2. fork() nlocal-1 times               (sf_job_set_pid(job, r, pid) for each clone)
 *   3. sf_job_attach(job, rank)            in every rank after the fork (world rank)
 *   3b. sf_job_add_link_fd(job, peer, fd)  for every rank on another host
 *   4. point-to-point and collectives      sf_isend/sf_irecv/sf_wait..., sf_barrier, sf_bcast...
 *   5. sf_job_destroy(job)                 unmaps the region in this process only
 *
 * Error convention (libuv style): every function returning int returns 0 (or a non-negative
 * value where documented) on success and a negative SF_E* code on failure; the one-line message
 * of the last failure on this thread is sf_last_error(). Nothing in the data plane prints, exits,
 * aborts, installs a signal handler or keeps process-global state: several jobs may coexist.
 *
 * Threads: a job handle is not thread-safe; use it from one thread at a time (the JS thread, or
 * the MPI program's thread; MPI_THREAD_FUNNELED/SERIALIZED is what libsfmpi provides).
 *
 * Waiting: a blocking call spins for a while (spin_us), then sleeps: on a futex doorbell of its
 * rank while every peer is on this host, else in epoll on its eventfd and its TCP sockets. A
 * peer's death or hang-up, an abort, and a malformed frame reach the waiter as events of the
 * link concerned; every tick (SF_TICK_MS) the waiter also asks its links, and it gives up after
 * the wait timeout (SFMPI_TIMEOUT_MS, else SFMPI_WAIT_TIMEOUT_MS, else SF_WAIT_TIMEOUT_DEFAULT_MS)
 * with SF_ETIMEDOUT and a message naming the operation, this rank and the rank(s) it waited for.
 */
#ifndef SF_DATAPLANE_H
#define SF_DATAPLANE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SF_DATAPLANE_VERSION 2

/* Error codes (negative return values). */
#define SF_OK 0
#define SF_EINVAL (-1)      /* bad argument (message names it) */
#define SF_ENOMEM (-2)      /* out of memory */
#define SF_ESYS (-3)        /* a system call failed (message names it and errno) */
#define SF_ETIMEDOUT (-4)   /* a blocking wait exceeded the wait timeout */
#define SF_EPEERDIED (-5)   /* a peer rank died (exited without finishing, or by a signal) */
#define SF_EABORTED (-6)    /* the job was aborted (sf_job_abort by some rank) */
#define SF_ETRUNCATE (-7)   /* a message was longer than the receive buffer */
#define SF_EPROTO (-8)      /* a malformed frame was found in a ring */
#define SF_ERANGE (-9)      /* a rank, tag, count or size out of range (message names it) */
#define SF_ESTATE (-10)     /* call not valid in this state (not attached, finalized...) */
#define SF_EMISMATCH (-11)  /* members called different collectives (or roots, or sizes) */
#define SF_ETYPE (-12)      /* a message's datatype is not the one a typed receive accepts */

/* Wildcards and limits. */
#define SF_ANY_SOURCE (-1)
#define SF_ANY_TAG (-1)
#define SF_PROC_NULL (-2)
#define SF_ANY_DTYPE (-1)     /* a typed receive that accepts every datatype */
#define SF_TAG_MAX 0x3fffffff  /* user tags are 0..SF_TAG_MAX; larger ones are reserved */
#define SF_MAX_RANKS 256
#define SF_TICK_MS 25           /* wake-up period of a sleeping waiter */
#define SF_WAIT_TIMEOUT_DEFAULT_MS 60000 /* the one default of the blocking-wait limit */
#define SF_COLL_FAST_MAX 496    /* bcast/reduce/allreduce of up to this many bytes among every
                                   rank of a host take one shared-memory step */

typedef struct sf_job sf_job;
typedef struct sf_req sf_req;

/* Options of sf_job_create. Zero-initialise, then set what you need. */
typedef struct sf_job_options {
  int size;              /* number of ranks, 1..SF_MAX_RANKS (required) */
  size_t ring_bytes;     /* bytes per ring, power of two; 0 = automatic (256 KiB..1 MiB) */
  size_t eager_limit;    /* largest message copied through the ring; 0 = SFMPI_EAGER_BYTES env, else
                            64 KiB (capped at ring/4); on a link that reads directly, cma_min */
  int wait_timeout_ms;   /* blocking wait limit; 0 = from the environment (see above), <0 = none */
  int spin_us;           /* spin before sleeping; 0 = SFMPI_SPIN_US env, else 1000 us when every
                            rank has a core, 2 us when ranks outnumber cores */
  int cma;               /* 1 = use process_vm_readv for large messages (default when 0 given:
                            SFMPI_CMA env, else on), -1 = never (pipelined copy through the ring) */
  size_t cma_min;        /* messages larger than this go by rendezvous and one process_vm_readv
                            on links that allow it (smaller ones eagerly, two copies through the
                            ring); 0 = SFMPI_CMA_MIN_BYTES env, else 4 KiB. Above eager_limit it
                            leaves rendezvous messages up to it to the pipelined ring copy (fast
                            only while data stays in cache). While a rendezvous to a peer waits
                            for its receiver, further messages to it up to SFMPI_PIPE_EAGER_BYTES
                            (default 8 KiB) go eagerly: a stream is not held to a round trip each */
  const int *host_of;    /* host id of each world rank (size entries, ids 0..); NULL: one host */
  int host;              /* the host this region is for (its ranks share it) */
} sf_job_options;

/* Status of a completed receive (or probe). */
typedef struct sf_status {
  int source;     /* rank in the sender's group as given to sf_irecv (world rank) */
  int tag;
  size_t count;   /* bytes delivered to the buffer (the full size for a probe) */
  size_t size;    /* bytes the sender sent (> count on truncation) */
  int error;      /* 0, SF_ETRUNCATE or SF_ETYPE */
  uint32_t dtype; /* the datatype the sender gave (sf_isend_typed; 0 for sf_isend) */
} sf_status;

/* ------------------------------------------------------------------------------------------ */
/* Errors */

/* Message of the last failure on this thread (never NULL; "" when none). */
const char *sf_last_error(void);

/* Short constant name of an error code: "SF_ETIMEDOUT". */
const char *sf_error_name(int code);

/* The MPI error class of a data-plane error, the one table both MPI layers use: the class's
 * name without its MPI_ prefix ("ERR_TIMEOUT", "ERR_PROC_FAILED", "ERR_TRUNCATE", ...). */
const char *sf_error_class(int code);

/* ------------------------------------------------------------------------------------------ */
/* Job life cycle */

/* Create the shared region for a job of opts->size ranks. Call in the origin before forking.
 * Reads SFMPI_TIMEOUT_MS / SFMPI_WAIT_TIMEOUT_MS / SFMPI_CMA / SFMPI_SPIN_US when the matching
 * option is 0. The region is MAP_SHARED|MAP_ANONYMOUS: it is inherited by fork() only. */
int sf_job_create(sf_job **out, const sf_job_options *opts);

/* Record the pid of a rank (the origin calls it after each fork; sf_job_attach records the
 * caller's own pid). Needed so that peers can watch each other and read large messages. */
int sf_job_set_pid(sf_job *job, int rank, pid_t pid);

/* Bind this process to `rank` (0 = origin). Call once per process right after the fork, before
 * any communication. Marks the rank running in the control block. */
int sf_job_attach(sf_job *job, int rank);

/* Convenience for C programs: fflush(NULL), fork size-1 clones (clone id = rank), and attach in
 * every process. In a clone it sets PR_SET_PDEATHSIG(SIGKILL) and verifies that the origin is
 * still its parent; a clone where that fails (the origin died meanwhile) _exit(127)s, the only
 * exit in the data plane, in a process that has run no code of the caller yet. Returns the rank
 * (>= 0) in each process, or a negative code (then no clone is left running: clones already
 * forked are killed and reaped). Stdio is not touched here. Not for Node: the addon forks by
 * itself (V8 needs preparation) and uses sf_job_set_pid/sf_job_attach. */
int sf_job_fork(sf_job *job);

/* Unmap the region and free this process's handle. Pending requests are dropped. Does not wait
 * for peers and does not reap clones. */
void sf_job_destroy(sf_job *job);

/* This rank, the job size, and the pid of a rank on this host (0 while unknown or remote). */
int sf_job_rank(const sf_job *job);
int sf_job_size(const sf_job *job);
pid_t sf_job_pid(const sf_job *job, int rank);

/* Placement: the host of a world rank, this host's id, and the ranks on this host
 * (sf_job_local_count of them; sf_job_local_world(job, i) is the world rank of local rank i). */
int sf_job_host_of(const sf_job *job, int rank);
int sf_job_host(const sf_job *job);
int sf_job_local_count(const sf_job *job);
int sf_job_local_world(const sf_job *job, int local);

/* Adds the link to `peer`, a rank on another host: `fd` is a connected, authenticated stream
 * socket (the handshake is done by whoever made it); the data plane owns it from now on. Call
 * after sf_job_attach, once per remote peer, before communicating with it. */
int sf_job_add_link_fd(sf_job *job, int peer, int fd);

/* The parent of `rank` (a rank of this host it forked) reports its death with its wait(2)
 * status: the rank's link goes down at once in every local rank, and waiters wake.
 * Thread-safe (another thread of the process may use the job meanwhile), as is the next one. */
void sf_job_note_death(sf_job *job, int rank, int wstatus);

/* Has `rank` (of this host) marked itself finished (sf_job_mark_finished)? 1/0. */
int sf_job_finished(const sf_job *job, int rank);

/* Event-loop integration. sf_job_wakeup_fd is an fd that becomes readable when something may
 * have arrived for this rank (poll it with libuv); while armed, peers ring it for every frame
 * they send here, so a program awaiting a request wakes within microseconds. Read the fd's
 * readiness away with sf_job_wakeup_drain, then call sf_progress. */
int sf_job_wakeup_fd(sf_job *job);
void sf_job_arm_wakeup(sf_job *job, int on);
void sf_job_wakeup_drain(sf_job *job);

/* Mark this rank finished (it may exit from now on without peers treating it as a death).
 * Call after the final barrier of finalize. */
int sf_job_mark_finished(sf_job *job);

/* Mark `rank`'s failure as reported to the launcher (so nobody reports a second `fail` for it)
 * / read that flag for `rank`. */
void sf_job_mark_fail_reported(sf_job *job, int rank);
int sf_job_fail_reported(const sf_job *job, int rank);

/* Claim the right to report `rank`'s failure: returns 1 for exactly one caller in the whole job
 * (any process, any thread), 0 for all others. */
int sf_job_claim_fail_report(sf_job *job, int rank);

/* If `rank` has ended (exited or zombie), return 1 and set *wstatus to its wait(2) status when
 * known (-1 when it was reaped already and cannot be read), else 0. Does not reap. */
int sf_job_peer_status(sf_job *job, int rank, int *wstatus);

/* Abort the job: set the abort word (first caller wins) with this rank, `code` and `cause`, wake
 * every waiting rank (they fail with SF_EABORTED naming this rank and cause). Does not kill. */
void sf_job_abort(sf_job *job, int code, const char *cause);

/* If the job was aborted: return 1 and fill rank/code/cause (any may be NULL); else 0. */
int sf_job_aborted(const sf_job *job, int *rank, int *code, char *cause, size_t cause_len);

/* Label of the operation in progress, used in timeout and peer-death messages
 * ("MPI_Recv"). The string must outlive the call; NULL resets to the data plane's own label. */
void sf_job_set_label(sf_job *job, const char *label);

/* Describe how `rank` died, if it did: returns 1 and writes e.g. "was killed by signal 11
 * (SIGSEGV)" or "exited with code 3 before finishing", else 0. Does not reap. */
int sf_job_peer_death(sf_job *job, int rank, char *buf, size_t len);

/* ------------------------------------------------------------------------------------------ */
/* Point-to-point. Ranks are job (world) ranks; `ctx` is a communicator context id chosen by the
 * caller (the same on both sides); tags are 0..SF_TAG_MAX (receives may use SF_ANY_TAG and
 * SF_ANY_SOURCE). Messages from one sender in one context are non-overtaking. Messages up to the
 * eager limit are copied through the ring; larger ones (and all synchronous sends) go by
 * rendezvous: the receiver copies once from the sender's memory (process_vm_readv), or, where
 * that is refused, the sender streams them through the ring. */

/* Start a send of `len` bytes at `buf` (which must stay untouched until completion).
 * `sync` = 1 completes only once the receiver matched it (MPI_Ssend). dst may be SF_PROC_NULL
 * (completes at once). On success *req is a request to sf_wait/sf_test/sf_req_free. */
int sf_isend(sf_job *job, const void *buf, size_t len, int dst, uint32_t ctx, int tag, int sync,
             sf_req **req);

/* Start a receive into `buf` of capacity `cap` bytes from `src` (or SF_ANY_SOURCE) with `tag`
 * (or SF_ANY_TAG). src may be SF_PROC_NULL (completes at once with source SF_PROC_NULL). */
int sf_irecv(sf_job *job, void *buf, size_t cap, int src, uint32_t ctx, int tag, sf_req **req);

/* Typed messages: the send carries `dtype` (opaque to the data plane, e.g. an element type id)
 * to the receiver's status. A typed receive accepts only messages of datatype `expect` (or
 * SF_ANY_DTYPE): a message of another datatype completes it with SF_ETYPE (status filled,
 * nothing written to buf, the message consumed). */
int sf_isend_typed(sf_job *job, const void *buf, size_t len, uint32_t dtype, int dst, uint32_t ctx, int tag,
                   int sync, sf_req **req);
int sf_irecv_typed(sf_job *job, void *buf, size_t cap, int32_t expect, int src, uint32_t ctx, int tag,
                   sf_req **req);

/* A receive of unknown size: the buffer is allocated (malloc) when the message matches, and
 * taken by the caller with sf_req_take_buffer after completion (then the caller frees it). */
int sf_irecv_alloc(sf_job *job, int src, uint32_t ctx, int tag, sf_req **req);
void *sf_req_take_buffer(sf_req *req, size_t *len);

/* The status of a request (valid once it completed). */
const sf_status *sf_req_status(const sf_req *req);

/* Blocking send / receive (sf_isend/sf_irecv + sf_wait). A truncated receive returns
 * SF_ETRUNCATE with the status filled in. */
int sf_send(sf_job *job, const void *buf, size_t len, int dst, uint32_t ctx, int tag, int sync);
int sf_recv(sf_job *job, void *buf, size_t cap, int src, uint32_t ctx, int tag, sf_status *st);

/* Make progress on all pending traffic without blocking (drains incoming rings, pushes
 * streamed data). Returns 0 or an error (peer death is reported only by waits). */
int sf_progress(sf_job *job);

/* A layer above the data plane that must advance its own state machines whenever the data
 * plane makes progress (non-blocking collectives, one-sided windows, pending receives of the
 * Node binding) registers one hook: it runs at the end of every sf_progress, including the
 * progress made inside every blocking wait, so that work of that layer moves on while this rank
 * is blocked in an unrelated call. The hook may call any data-plane function; a nested
 * sf_progress inside the hook does not run the hook again. A negative return fails the
 * progress call (and the wait that made it) with that code. NULL removes the hook. */
typedef int (*sf_progress_hook_fn)(sf_job *job, void *arg);
void sf_job_set_progress_hook(sf_job *job, sf_progress_hook_fn fn, void *arg);

/* Is the request complete? Returns 1 (complete; *st filled when st != NULL, the request stays
 * valid until sf_req_free), 0 (pending), or a negative code: SF_ETRUNCATE means complete but
 * truncated (*st filled). Makes progress first. */
int sf_test(sf_job *job, sf_req *req, sf_status *st);

/* Wait for completion (blocking, see "Waiting" above). Returns 0, or SF_ETRUNCATE (status
 * filled), or the wait's failure. The request stays valid until sf_req_free. */
int sf_wait(sf_job *job, sf_req *req, sf_status *st);

/* Wait until at least one of reqs[0..n-1] (NULL entries are skipped) completes: returns 0 with
 * *index set to it (or to -1 when every entry is NULL), or a negative SF_E* code. The request
 * is not freed. */
int sf_wait_any(sf_job *job, sf_req *const *reqs, int n, int *index);

/* Release a request. A receive that is posted but not yet matched is withdrawn (it will never
 * match). A pending send, or a receive already matched to a message, is detached: it completes
 * in the background (its buffer stays in use until then) and is freed then. */
void sf_req_free(sf_job *job, sf_req *req);

/* Has the request completed? (1/0; no progress is made: use sf_test for that) */
int sf_req_done(const sf_req *req);

/* Check for a matching message without receiving it. Returns 1 (found, *st filled with its
 * source, tag and full size), 0 (none) or a negative code. */
int sf_iprobe(sf_job *job, int src, uint32_t ctx, int tag, sf_status *st);

/* Blocking probe. Returns 0 with *st filled, or a negative code. */
int sf_probe(sf_job *job, int src, uint32_t ctx, int tag, sf_status *st);

/* ------------------------------------------------------------------------------------------ */
/* Collectives over a group of ranks. All members call the same collective in the same order
 * (as MPI requires); `ctx` must be reserved for collectives of that group (not used for
 * point-to-point). Buffers are contiguous bytes. */

typedef struct sf_group {
  int size;               /* members */
  int rank;               /* this process's index in the group */
  const int *ranks;       /* job (world) rank of each member; NULL = identity (0..size-1) */
  uint32_t ctx;           /* context id of the group's collectives */
} sf_group;

/* Combine callback of reductions: inout[i] = in[i] (op) inout[i] for the `nbytes` bytes of
 * elements; `in` holds the contribution of LOWER group ranks than `inout` (order matters for
 * non-commutative ops). Return 0, or a negative SF_E* code to fail the collective. */
typedef int (*sf_combine_fn)(const void *in, void *inout, size_t nbytes, void *arg);

/* Predefined element types and operations for sf_builtin_combine. */
typedef enum sf_dtype {
  SF_CHAR, SF_SCHAR, SF_UCHAR, SF_SHORT, SF_USHORT, SF_INT, SF_UINT, SF_LONG, SF_ULONG,
  SF_LLONG, SF_ULLONG, SF_FLOAT, SF_DOUBLE, SF_LDOUBLE, SF_INT8, SF_UINT8, SF_INT16, SF_UINT16,
  SF_INT32, SF_UINT32, SF_INT64, SF_UINT64, SF_BOOL, SF_BYTE, SF_WCHAR,
  /* value-index pairs for MAXLOC/MINLOC, laid out as the C structs {T v; int i;} */
  SF_FLOAT_INT, SF_DOUBLE_INT, SF_LONG_INT, SF_2INT, SF_SHORT_INT, SF_LDOUBLE_INT,
  SF_DTYPE_COUNT
} sf_dtype;

typedef enum sf_op {
  SF_OP_MAX, SF_OP_MIN, SF_OP_SUM, SF_OP_PROD, SF_OP_LAND, SF_OP_BAND, SF_OP_LOR, SF_OP_BOR,
  SF_OP_LXOR, SF_OP_BXOR, SF_OP_MAXLOC, SF_OP_MINLOC, SF_OP_REPLACE, SF_OP_NO_OP,
  SF_OP_COUNT
} sf_op;

/* Size in bytes of one element of a predefined type. */
size_t sf_dtype_size(sf_dtype t);

/* Is (type, op) defined (e.g. SUM on SF_DOUBLE yes, BAND on SF_DOUBLE no)? */
int sf_op_valid(sf_op op, sf_dtype t);

/* Apply a predefined op: inout[i] = in[i] op inout[i] over `count` elements. Returns 0 or
 * SF_EINVAL (message names the op and type). */
int sf_op_apply(sf_op op, sf_dtype t, const void *in, void *inout, size_t count);

/* An sf_combine_fn for predefined ops: pass a `const sf_builtin_arg *` as arg. */
typedef struct sf_builtin_arg { sf_op op; sf_dtype type; } sf_builtin_arg;
int sf_builtin_combine(const void *in, void *inout, size_t nbytes, void *arg);

/* Barrier: returns when every member has entered it. */
int sf_barrier(sf_job *job, const sf_group *g);

/* Broadcast `len` bytes from group rank `root` to every member's buf. */
int sf_bcast(sf_job *job, const sf_group *g, void *buf, size_t len, int root);

/* Reduce `len` bytes of elements (combine must handle any multiple of the element size; `len`
 * is passed whole) to `root`. sbuf == NULL means in place (the root's/all members' input is in
 * rbuf). rbuf is used only at the root (for sf_reduce). */
int sf_reduce(sf_job *job, const sf_group *g, const void *sbuf, void *rbuf, size_t len,
              sf_combine_fn combine, void *arg, int root);
int sf_allreduce(sf_job *job, const sf_group *g, const void *sbuf, void *rbuf, size_t len,
                 sf_combine_fn combine, void *arg);

/* Inclusive / exclusive prefix reduction in group-rank order (exscan leaves rank 0's rbuf
 * untouched). sbuf == NULL: in place. */
int sf_scan(sf_job *job, const sf_group *g, const void *sbuf, void *rbuf, size_t len,
            sf_combine_fn combine, void *arg);
int sf_exscan(sf_job *job, const sf_group *g, const void *sbuf, void *rbuf, size_t len,
              sf_combine_fn combine, void *arg);

/* Gather: member i's `slen` bytes land at rbuf + displs[i] (length lens[i], which must equal
 * member i's slen) at root. lens/displs/rbuf matter only at the root. sbuf == NULL at the root
 * means in place (its block is already in rbuf). */
int sf_gatherv(sf_job *job, const sf_group *g, const void *sbuf, size_t slen, void *rbuf,
               const size_t *lens, const size_t *displs, int root);

/* Scatter: root sends sbuf + displs[i] (lens[i] bytes) to member i's rbuf (rlen bytes).
 * rbuf == NULL at the root means in place. */
int sf_scatterv(sf_job *job, const sf_group *g, const void *sbuf, const size_t *lens,
                const size_t *displs, void *rbuf, size_t rlen, int root);

/* Allgather: every member receives every member's block (lens/displs as in sf_gatherv, on all
 * members). sbuf == NULL: in place. */
int sf_allgatherv(sf_job *job, const sf_group *g, const void *sbuf, size_t slen, void *rbuf,
                  const size_t *lens, const size_t *displs);

/* All-to-all: member i sends sbuf+sdispls[j] (slens[j] bytes) to member j, which receives it
 * at rbuf+rdispls[i] (rlens[i] bytes). */
int sf_alltoallv(sf_job *job, const sf_group *g, const void *sbuf, const size_t *slens,
                 const size_t *sdispls, void *rbuf, const size_t *rlens, const size_t *rdispls);

/* Monotonic time in seconds. */
double sf_now(void);

#ifdef __cplusplus
}
#endif

#include "sf_control.h"

#endif /* SF_DATAPLANE_H */
