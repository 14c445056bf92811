/*
 * sfl.h: the native launcher's modules (private to mpi-compat/launcher/native/).
 *
 *   cli.c      the command line: options, their errors, usage, and the job's description
 *              handed to the Node launcher (the "spec") when Node runs the job
 *   program.c  which program the user named: where it is, and whether it is JavaScript or
 *              TypeScript (Node's) or an executable (ours)
 *   job.c      one job on this host: start the origin, forward every rank's output, read the
 *              control socket, decide the outcome (native/control), leave nothing behind
 *   output.c   forwarding a rank's output whole lines at a time
 *   sfmpirun.c the entry point: which launcher runs the job
 */
#ifndef SFL_H
#define SFL_H

#include <stddef.h>
#include <sys/types.h>

/* The parsed command line. Strings point into argv. */
typedef struct sfl_opts {
  long np;           /* -n: ranks, >= 1 */
  double timeout;    /* --timeout: seconds, 0 for none */
  int verbose;       /* -v */
  const char *hostfile, *host, *map_by, *iface, *launch;
  int oversubscribe;
  long dom0_port;    /* --dom0-port: 0 for the default */
  int prog;          /* argv index of the program; its arguments follow */
} sfl_opts;

/* Parses argv[1..argc-1] as sfmpirun's command line. Returns 0; or prints usage (-h) and
 * returns 1 (exit 0); or prints the error as the Node launcher's parser (commander) words it
 * and returns -1 (exit 1). */
int sfl_parse(int argc, char **argv, sfl_opts *o);

/* The job's description for the Node launcher, one JSON object (see sfmpirun.ts's LaunchSpec):
 * the options, and `program`, the index of the program among the user's arguments (argv[1..]).
 * Returns its length, or -1 when it does not fit. */
int sfl_spec(const sfl_opts *o, char *out, size_t len);

/* What a program is, by its name's extension, as mpi-compat/launcher/program.ts decides it. */
typedef enum { SFL_EXECUTABLE, SFL_JAVASCRIPT, SFL_TYPESCRIPT } sfl_kind;
sfl_kind sfl_kind_of(const char *program);

/* Resolves an executable as program.ts's prepare() does: the path (made absolute, lexically, as
 * path.resolve), or else a command found in PATH. Returns 0 with the path in out, or -1 with
 * the message in err ("program not found: x", "program is a directory: x", "program is
 * neither JavaScript, TypeScript nor executable: x"). */
int sfl_resolve(const char *program, char *out, size_t len, char *err, size_t errlen);

/* One job on this host. */
typedef struct sfl_job_opts {
  int size;
  double timeout;       /* seconds, 0 for none */
  int verbose;
  char *const *argv;    /* the origin's argv; argv[0] is the path it runs */
  int grace_ms;         /* after the first failure, before the rest is killed */
} sfl_job_opts;

/* Runs it; returns the launcher's exit status, with the failure's line in `failure` ("" when
 * none). */
int sfl_run_job(const sfl_job_opts *o, char *failure, size_t len);

/* A rank's output stream, forwarded whole lines at a time. */
typedef struct sfl_stream {
  int fd;       /* the read end; -1 once at its end */
  int to;       /* 1 or 2 */
  char *buf;    /* the pending part of a line */
  size_t len, cap;
} sfl_stream;

/* Blocking writes to our stdout/stderr: the job's loop serves signals and deadlines while one
 * waits (sfl_out_wait), so a reader that stops reading never stalls the timeout. */
typedef void (*sfl_wait_fn)(int fd, void *arg);
void sfl_out_init(sfl_wait_fn wait, void *arg);

/* Reads what is there (once), forwards every whole line; at the end, the rest. Returns 0 while
 * open, 1 at its end (fd closed). */
int sfl_stream_read(sfl_stream *s);

/* Writes all of buf to fd 1 or 2 (dropped once that fd is gone: EPIPE). */
void sfl_write_all(int to, const char *buf, size_t n);

/* "sfmpirun: <line>\n" on stderr. */
void sfl_say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Monotonic milliseconds. */
double sfl_now_ms(void);

#endif
