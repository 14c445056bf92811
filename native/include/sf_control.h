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
