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

#ifdef __cplusplus
}
#endif

#endif
