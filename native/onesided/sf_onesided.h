/*
 * sf_onesided.h: one-sided windows over the data plane (sf_dataplane.h): MPI's RMA model for
 * contiguous memory (Put, Get, Accumulate, Get_accumulate, Compare_and_swap; Fence, Lock/Unlock,
 * Flush, Post/Start/Complete/Wait), written once in C for any MPI layer over the data plane.
 * The Node binding (native/addon/mpi/win.cc) is its first user; libsfmpi's windows
 * (mpi-compat/c/src/win.c, rma.c, winsync.c) could move onto it (their derived target
 * datatypes would then travel packed).
 *
 * Two paths behind one API, chosen per target when the window is made:
 *
 *   direct   a member on this host whose memory this rank can reach: a mapping shared by the
 *            host's members (sf_win_create with SF_WIN_ALLOCATE or SF_WIN_SHARED), this rank's
 *            own memory, or process_vm_readv/writev into the member's own memory
 *            (SF_WIN_CREATE over memory of the caller's). Puts and gets are copies, complete
 *            when they return. Locks are words in a control block that the host's members map
 *            (a memfd of the host's first window member, opened by the others through
 *            /proc/<pid>/fd), and accumulates are applied by the origin under the target's
 *            accumulate mutex there: passive-target epochs on one host need nothing from the
 *            target, which may be busy computing.
 *   message  every other target (members on other hosts; this host when sharing or
 *            process_vm is refused, or when the window is made with direct = 0): each operation
 *            or synchronisation is a request message on the window's contexts, applied by the
 *            target's engine in the order sent, one at a time (sf_win_progress, run from the
 *            owner's progress hook). A target applies requests while it makes data-plane
 *            progress: inside any blocking call, or when its owner polls (the Node binding: the
 *            event loop's wake-ups). Accumulates applied there take the same accumulate mutex
 *            and locks granted there take the same lock words as the direct path's, so the
 *            two paths mix on one target.
 *
 * Contexts: a window uses four consecutive data-plane contexts from opts->group.ctx:
 *
 *   ctx + 0   requests, origin -> target (the header below; small payloads inline)
 *   ctx + 1   data and replies: a large payload (origin -> target), or the answer to a get, a
 *             fetch, a lock or a flush (target -> origin), tagged with the origin's op id
 *   ctx + 2   the window's collectives (creation, fence, free)
 *   ctx + 3   the doorbell of this rank's own waits (a loopback message ends them)
 *
 * Request message (little-endian; the layout of libsfmpi's win.h, so that the two can share a
 * target engine; 64-byte header, then the payload when it fits in SF_WIN_HBUF bytes):
 *
 *   0  u8  kind      SF_RMA_PUT ... SF_RMA_WAKE
 *   1  u8  flags     1: the payload follows the header; else it comes as one message on
 *                    ctx + 1 with tag seq
 *   2  i16 basic     sf_dtype of the elements (accumulates, compare-and-swap), or -1
 *   4  i32 op        sf_op of an accumulate, the lock type of a lock
 *   8  u32 seq       the origin's op id: tag of this operation's data and reply
 *   12 i32 nblocks   0 (contiguous target data; libsfmpi's derived types would use blocks)
 *   16 u64 disp      target byte offset from its window base
 *   24 u64 bytes     target data bytes; the payload is that for puts and accumulates, twice
 *                    that for compare-and-swap (new value, then compare value), none for gets
 *   32 i64 textent   = bytes
 *   40 i32 tcount    1
 *   44 i32 reserved
 *   48 u64 reserved[2]
 *
 * The target checks every request against its window before touching memory; a request that
 * fails a check is dropped and reported as an error of the window at the target's next call.
 *
 * Errors: functions return 0 (or a documented non-negative value) or a negative SF_E* code,
 * with the message in sf_win_last_error() (this thread's). SF_ESTATE is a synchronisation error
 * (an operation outside an epoch, an unlock of a target not locked: MPI_ERR_RMA_SYNC),
 * SF_ERANGE a target range outside the target's window, SF_EINVAL a bad argument.
 *
 * Threads: like the job, a window is used from one thread at a time.
 */
#ifndef SF_ONESIDED_H
#define SF_ONESIDED_H

#include "sf_dataplane.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sf_win sf_win;

/* Flavors: over the caller's memory, allocated (shared by the host's members where possible),
 * allocated and shared (required; every member on one host, segments back to back). */
enum { SF_WIN_CREATE = 1, SF_WIN_ALLOCATE = 2, SF_WIN_SHARED = 3 };

/* Lock types and assertions (the assertions that change what is done; others are accepted). */
enum { SF_LOCK_EXCLUSIVE = 1, SF_LOCK_SHARED = 2 };
#define SF_MODE_NOCHECK 1
#define SF_MODE_NOPRECEDE 2
#define SF_MODE_NOSUCCEED 4

#define SF_WIN_HBUF 8192 /* request messages up to this size carry their payload inline */

typedef struct sf_win_options {
  sf_group group;   /* the members; group.ctx is the first of the window's four contexts */
  int flavor;       /* SF_WIN_CREATE / SF_WIN_ALLOCATE / SF_WIN_SHARED */
  void *base;       /* SF_WIN_CREATE: this member's memory (bytes long; may be NULL when 0) */
  size_t bytes;     /* this member's window size in bytes */
  size_t disp_unit; /* bytes per displacement unit (> 0) */
  int direct;       /* 1: reach members of this host directly where possible; 0: messages only.
                       SFMPI_RMA_DIRECT=0 in the environment forces 0, SFMPI_CMA=0 rules out
                       process_vm (as for the data plane's messages). */
} sf_win_options;

/* Make a window (collective over the group). Every member gets the same outcome: on failure no
 * member has a window. */
int sf_win_create(sf_job *job, const sf_win_options *opts, sf_win **out);

/* Release the window (collective): waits until this rank's operations completed locally, then
 * for every member, then unmaps. The handle is freed even when the barrier fails. */
int sf_win_free(sf_win *w);

/* This rank's memory (SF_WIN_ALLOCATE/SHARED: in the shared mapping where there is one), and
 * for SF_WIN_SHARED any member's: its segment's address and size. NULL when the member's
 * memory is not mapped here. */
void *sf_win_memory(const sf_win *w, int rank, size_t *bytes);

/* Every member's window size and displacement unit (as given to sf_win_create). */
size_t sf_win_bytes(const sf_win *w, int rank);
size_t sf_win_disp_unit(const sf_win *w, int rank);

/* How this rank reaches `target`: 1 directly, 0 by messages. */
int sf_win_direct(const sf_win *w, int target);

/* Operations. `disp` is in the target's displacement units; every range is checked against the
 * target's window (SF_ERANGE). A target of SF_PROC_NULL does nothing. Completion: direct
 * operations are complete when they return; message operations at the next flush, unlock,
 * fence or complete. `src`/`compare` may be reused at once; `dst`/`result` are written by
 * then. */
int sf_win_put(sf_win *w, const void *src, size_t len, int target, size_t disp);
int sf_win_get(sf_win *w, void *dst, size_t len, int target, size_t disp);
/* Accumulate `len` bytes of elements of type `t` with op (SF_OP_REPLACE stores the origin's
 * value; SF_OP_NO_OP leaves the target). Element-wise atomic against every other accumulate. */
int sf_win_accumulate(sf_win *w, const void *src, size_t len, sf_dtype t, sf_op op, int target, size_t disp);
/* The target's values before the update go to `result` (src may be NULL for SF_OP_NO_OP). */
int sf_win_get_accumulate(sf_win *w, const void *src, void *result, size_t len, sf_dtype t, sf_op op, int target,
                          size_t disp);
/* One element: if the target equals *compare, it becomes *src; *result gets the old value. */
int sf_win_compare_and_swap(sf_win *w, const void *src, const void *compare, void *result, sf_dtype t, int target,
                            size_t disp);

/* Synchronisation. */
int sf_win_fence(sf_win *w, int assert);
int sf_win_lock(sf_win *w, int type, int target, int assert);
int sf_win_unlock(sf_win *w, int target);
int sf_win_lock_all(sf_win *w, int assert);
int sf_win_unlock_all(sf_win *w);
/* Complete the operations to `target` (-1: every locked target) at the target, or only
 * locally (local_only = 1). */
int sf_win_flush(sf_win *w, int target, int local_only);
/* General active target: ranks[] are window ranks. sf_win_wait with block = 0 tests: returns
 * 1 when the exposure epoch ended, 0 if not yet. */
int sf_win_post(sf_win *w, const int *ranks, int n, int assert);
int sf_win_start(sf_win *w, const int *ranks, int n, int assert);
int sf_win_complete(sf_win *w);
int sf_win_wait(sf_win *w, int block);
/* A memory barrier between this rank's loads/stores and the other members' (one copy of the
 * memory: MPI's unified model). */
void sf_win_sync(sf_win *w);

/* The engines: take and apply requests that arrived for this rank's window, complete this
 * rank's own requests in flight, end a wait of this rank that can end. Never blocks. The
 * owner calls it for every window from the job's progress hook (sf_job_set_progress_hook).
 * Returns 1 when it sent this rank a doorbell message (a nested sf_progress takes it in at
 * once), else 0. */
int sf_win_progress(sf_win *w);

/* Message of this thread's last failure of an sf_win call ("" when none). */
const char *sf_win_last_error(void);

#ifdef __cplusplus
}
#endif

#endif /* SF_ONESIDED_H */
