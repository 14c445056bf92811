/*
 * sf_proc.h: process management shared by libsfmpi and the Node addon: how a process ended, in
 * numbers and in one sentence; where its status can be read without reaping it; tying a process
 * to its parent.
 */
#ifndef SF_PROC_H
#define SF_PROC_H

#include <stddef.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The one sentence for how a process ended, from its wait(2) status, after "rank 3 ":
 * "was killed by signal 11 (SIGSEGV)", "exited with code 3", and with `before` non-NULL and the
 * process not finished, "exited with code 3 before MPI_Finalize". */
void sf_proc_describe(int wstatus, int finished, const char *before, char *buf, size_t len);

/* The exit code a launcher reports for a wait(2) status: the code, or 128 + the signal. */
int sf_proc_code(int wstatus);

/* 1 when the status means failure (a signal, or a non-zero code). */
int sf_proc_failed(int wstatus);

/* The wait(2) status of `pid`, which has ended, WITHOUT reaping it: by waitid(WNOWAIT) when it
 * is our child, else from /proc/<pid>/stat while it is a zombie. Returns 0 with *wstatus set,
 * or -1 when it cannot be known (reaped already, not ours). */
int sf_proc_peek_status(pid_t pid, int *wstatus);

/* Ties this process to `parent`: SIGKILL when it dies (PR_SET_PDEATHSIG), and an immediate
 * SIGKILL when it is gone already (the race where it died before the flag was set). Returns 0,
 * or -1 with errno when prctl fails. */
int sf_proc_die_with(pid_t parent);

/* ------------------------------------------------------------------------------------------ */
/* The job's processes on this host, as their parent sees them. One module for libsfmpi and the
 * Node binding: a watcher thread notices a child's end the moment it happens (pidfds), takes its
 * link down in the data plane (sf_job_note_death, which wakes every waiter of this host), and
 * reports it to the launcher once (sf_ctl_fail_once: a rank that failed by itself has reported
 * its own cause first); at the end every child is reaped, killed first when asked, with an
 * `exit` line for each. A reaped pid is never signalled (it may be reused). */

typedef struct sf_job sf_job;
typedef struct sf_watch sf_watch;

/* Called from the watcher thread when the job was aborted by another rank while this process
 * computes: the caller ends the job (libsfmpi does; the Node binding passes NULL). */
typedef void (*sf_watch_abort_fn)(int code, void *arg);

/* Starts watching this process's children `pids` (world ranks `ranks`) of `job`, reporting to
 * the launcher on `ctl_fd` (-1: none). `finalize` names the layer's finalize in the sentence of
 * a rank that exits before it ("exited with code 3 before MPI_Finalize"; NULL: no such clause).
 * Returns 0 or a negative SF_E* code (sf_last_error). */
int sf_watch_start(sf_watch **out, sf_job *job, int ctl_fd, const int *ranks, const pid_t *pids, int n,
                   const char *finalize, sf_watch_abort_fn on_abort, void *arg);

/* This rank is past MPI_Finalize: from now on children that end are reaped (and reported) at
 * once, so no zombie lingers while the origin runs on. */
void sf_watch_finished(sf_watch *w);

/* Reports every child that already ended abnormally and nobody reported yet (the root cause
 * must reach the launcher before the children killed next). */
void sf_watch_report_dead(sf_watch *w);

/* SIGKILLs every child not reaped yet. */
void sf_watch_kill(sf_watch *w);

/* Stops the watcher thread, then reaps every child: waits up to grace_ms for each (-1: as long
 * as it takes), then kills the rest (our kill is no failure of theirs). Reports `fail` once for
 * each abnormal end and `exit` for each. Returns how many ended abnormally. Frees nothing. */
int sf_watch_reap(sf_watch *w, int grace_ms);

/* Frees the watcher (reap first). */
void sf_watch_free(sf_watch *w);

/* ------------------------------------------------------------------------------------------ */
/* Admission: how many clones this host allows alive at once, over every job of this user. A
 * reservation is a file <pid>-<seq> holding its slot count in /dev/shm/sfmpi-dom0-<uid>/; one
 * whose holder died is pruned, so a killed origin frees its slots; an flock on the directory's
 * lock file makes check-and-reserve atomic across processes. TypeScript (dom0/admission.ts) and
 * libsfmpi both call these. */

/* The limit: SFMPI_MAX_CLONES if set, else 16 per CPU this process may run on, at most one per
 * 256 MiB of memory, never fewer than 8. -1 with *err set when SFMPI_MAX_CLONES is malformed. */
long sf_admission_limit(char *err, size_t errlen);

/* Reserves `slots` against `limit` (< 0: sf_admission_limit). Returns a reservation id (>= 0)
 * or -1 with the refusal in *err: "admission refused: 9 clones requested, 2 of this host's 8
 * slots in use (set SFMPI_MAX_CLONES to change the limit)". */
long sf_admission_reserve(int slots, long limit, char *err, size_t errlen);

/* Gives a reservation back (idempotent). */
void sf_admission_release(long id);

/* Slots reserved on this host now (pruning dead holders). */
long sf_admission_used(void);

/* The launcher's check before it starts anything: a job of `ranks` ranks on this host needs
 * ranks-1 clones, within the limit. Returns 0, or -1 with the refusal in *err: "-n 9 needs 8
 * clones, beyond this host's admission limit of 4 (set SFMPI_MAX_CLONES to change it)", or the
 * limit's own error (a malformed SFMPI_MAX_CLONES). */
int sf_admission_precheck(long ranks, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif

#endif
