/*
 * sf_control.h: the launcher's control lines (docs/launcher-protocol.md), written by ranks and
 * by their parents, in C and (through the addon) in TypeScript alike: one encoder, one
 * failure-report policy.
 *
 * A line is one JSON object, written with a single write(2) of at most SF_CTL_MAX_LINE bytes so
 * that lines of different ranks never interleave:
 *
 *   {"v":1,"ev":"fork","host":"th1","rank":3,"pid":4242,"ms":1.250}
 *   {"v":1,"ev":"exit","host":"th1","rank":3,"code":0}
 *   {"v":1,"ev":"fail","host":"th1","rank":3,"code":139,"signal":11,"cause":"was killed by ..."}
 *
 * `v` is SF_CTL_VERSION; `host` is this host's name (gethostname); `signal` is a number (0:
 * none); `cause` is one line, JSON-escaped, cut to fit the line.
 *
 * Failure policy: a rank's failure is reported once, by whoever sees it first (the rank itself,
 * or its parent when it died): sf_ctl_fail_once claims the rank's report flag in the job's
 * shared region and writes the line only when the claim is its own.
 */
#ifndef SF_CONTROL_H
#define SF_CONTROL_H

#include <stddef.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SF_CTL_VERSION 1
#define SF_CTL_MAX_LINE 4000

typedef struct sf_job sf_job;

/* Each writes one line to `fd` (no-op returning 0 when fd < 0); 0 or a negative SF_E* code. */
int sf_ctl_fork(int fd, int rank, pid_t pid, double ms);
int sf_ctl_exit(int fd, int rank, int code);
int sf_ctl_fail(int fd, int rank, int code, int signal, const char *cause);

/* Reports `rank`'s failure unless somebody already did (see the policy above): returns 1 when
 * this call wrote the line, 0 when the failure was already claimed. `job` may be NULL (no
 * job yet: always reports). */
int sf_ctl_fail_once(sf_job *job, int fd, int rank, int code, int signal, const char *cause);

/* The host name the lines carry. */
const char *sf_ctl_host(void);

/* ------------------------------------------------------------------------------------------ */
/* Reading the lines (native/control/decode.c): the launcher's end, with the checks of
 * guest-daemon/control.ts's decodeControl. A line is refused (-1) when it is not one JSON
 * object, `v` is not SF_CTL_VERSION, `host` is not a string, `rank` not an integer >= 0, `ev`
 * not one of the three, or a field of its `ev` is missing or of the wrong type (`pid`, `code`,
 * `signal` integers, `signal` >= 0, `ms` a number); a `cause` that is not a string reads as
 * "failed"; other fields are ignored. Integers beyond int's range are refused too. */

typedef enum sf_ctl_ev { SF_CTL_FORK = 1, SF_CTL_FAIL = 2, SF_CTL_EXIT = 3 } sf_ctl_ev;

typedef struct sf_ctl_msg {
  sf_ctl_ev ev;
  int rank;
  char host[256];               /* cut to fit */
  int pid;                      /* fork */
  double ms;                    /* fork */
  int code;                     /* fail, exit */
  int signal;                   /* fail */
  char cause[SF_CTL_MAX_LINE];  /* fail: one line, unescaped (UTF-8) */
} sf_ctl_msg;

/* Decodes `line` (`len` bytes, without its newline) into *out: 0, or -1 when it is malformed. */
int sf_ctl_decode(const char *line, size_t len, sf_ctl_msg *out);

/* Writes `s` (`n` bytes) as a JSON string literal, quotes included, escaped as JSON.stringify
 * does, into `out` (NUL-terminated, cut at a character boundary to fit `cap`). Returns its
 * length. */
size_t sf_ctl_quote(char *out, size_t cap, const char *s, size_t n);

/* ------------------------------------------------------------------------------------------ */
/* A job's outcome as the launcher decides it (native/control/outcome.c): exit status 0 when
 * every rank exited 0; otherwise the code of the failure that caused the others (128+N for
 * signal N, 124 for a timeout), with one line naming the rank (or host) and the cause.
 *
 * The root cause: within one host the ranks' claim-once (above) reports only the first
 * failure. Across hosts the news races, so the failures of the first SF_OUTCOME_SETTLE_MS are
 * weighed: a lost host outranks a rank killed by a signal, which outranks a rank's exit code;
 * ties go to the earliest. The one owner of this policy: the native launcher links it, and the
 * Node launcher of jobs across hosts reaches it through the addon (native/addon/control.cc,
 * mpi-compat/launcher/outcome.ts). */

#define SF_OUTCOME_SETTLE_MS 1000

typedef struct sf_outcome sf_outcome;

/* A new outcome of a job of `size` ranks; NULL when out of memory. */
sf_outcome *sf_outcome_new(int size);
void sf_outcome_free(sf_outcome *o);

/* A control line of a rank, at `now_ms` (a monotonic clock). Returns 1 when it is the job's
 * first failure (the launcher then gives the other ranks a grace period), else 0. */
int sf_outcome_event(sf_outcome *o, const sf_ctl_msg *m, double now_ms);

/* A host gone (its dom0 died, or its connection fell silent), with its `n` ranks. Returns 1
 * when it is the first failure. */
int sf_outcome_lost(sf_outcome *o, const char *host, const int *ranks, int n, const char *why, double now_ms);

/* The job's --timeout (`seconds`) ran out. */
void sf_outcome_timeout(sf_outcome *o, double seconds);

/* 1 once some rank or host failed. */
int sf_outcome_failed(const sf_outcome *o);

/* The exit status, with the failure's line in `line` ("" when the status is 0).
 * `origin_wstatus` is the wait(2) status of the process the launcher started (a job on one
 * host), or -1 when there is none (a job across hosts). */
int sf_outcome_result(const sf_outcome *o, int origin_wstatus, char *line, size_t len);

/* "rank 3", "ranks 4-7", "ranks 1, 3, 5", into `out`. */
void sf_outcome_rank_list(const int *ranks, int n, char *out, size_t len);

/* A number as JavaScript writes it (String(x): "0.5", "60", "1e-7"), into `out`. */
void sf_js_number(double x, char *out, size_t len);

/* ------------------------------------------------------------------------------------------ */
/* Joining a job that spans hosts. The first rank of each host (the origin on rank 0's host, a
 * seed elsewhere) was started by its host's dom0 with one end of a Unix socket pair in
 * SFMPI_DOM0_FD. At its fork point it reads from it where every rank lives, and the connected,
 * authenticated sockets of its host's ranks to ranks on other hosts (dom0 made them; the
 * data plane carries no key), then waits for dom0's go, which means every socket of the job is
 * in its ranks' hands, so none is read by anyone else. Messages, dom0 -> rank, little-endian:
 *
 *    0        4        6        8        12       16
 *   +--------+--------+--------+--------+--------+
 *   | "SFJN" | ver 1  | type   | length | nfds   |   then `length` bytes of body, and `nfds`
 *   +--------+--------+--------+--------+--------+   descriptors attached (SCM_RIGHTS)
 *
 *   type 1 JOIN  body: size, host, nlinks (u32 each), host_of[size] (u32), then nlinks pairs
 *                (local rank, peer world rank) (u32 each); no fds
 *   type 2 FDS   no body; the next fds of the links, in order, at most SF_JOIN_FDS_MAX each
 *   type 3 GO    no body, no fds
 *
 * Limits: size <= SF_MAX_RANKS; a body of at most 64 KiB; a message that breaks any of them is
 * refused (SF_EPROTO) and every fd received so far is closed. */

#define SF_JOIN_FDS_MAX 200

typedef struct sf_join_link {
  int local; /* the local rank (0 = this process) whose link it is */
  int peer;  /* the world rank at its other end */
  int fd;    /* the socket */
} sf_join_link;

typedef struct sf_join {
  int size;     /* world ranks */
  int host;     /* this host's id */
  int *host_of; /* host id of each world rank */
  int nlinks;
  sf_join_link *links;
} sf_join;

/* Reads the join from `fd` up to the go, waiting at most timeout_ms in all (-1: no limit).
 * Returns 0 with *out filled, or a negative SF_E* code (sf_last_error says what was wrong). */
int sf_join_read(int fd, int timeout_ms, sf_join *out);

/* Frees the join's arrays (the link fds stay open: their owners close them). */
void sf_join_free(sf_join *j);

#ifdef __cplusplus
}
#endif

#endif
