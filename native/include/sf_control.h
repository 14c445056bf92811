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

#ifdef __cplusplus
}
#endif

#endif
