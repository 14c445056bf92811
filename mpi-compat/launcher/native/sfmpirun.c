/*
 * sfmpirun.c: the launcher's entry point (npm's `sfmpirun` bin execs it, through
 * mpi-compat/launcher/sfmpirun.sh). It owns the command line and every job on this host:
 *
 *   an executable on this host       runs here (job.c): no Node start-up in the job's time
 *   JavaScript or TypeScript, or a   handed to the Node launcher (dist/.../sfmpirun.js), which
 *   job across hosts (--hostfile,    bundles TypeScript, places ranks on hosts and runs dom0s;
 *   --host, a Slurm allocation)      a job it finds on this host alone comes back here
 *                                    (SFMPI_LAUNCH_PREPARED)
 *
 * Between the two launchers (internal; each variable is taken out of the environment at once):
 *
 *   SFMPI_LAUNCH_SPEC=<json>    exec'd node: the parsed command line (cli.c's sfl_spec)
 *   SFMPI_LAUNCH_SPEC_FD=<fd>   Node started us with the user's arguments: a job that is
 *                               Node's is written there as that JSON instead, and we exit 0
 *   SFMPI_LAUNCH_PREPARED=1     Node prepared the program: run `-n N [--timeout S] [-v] --
 *                               <command> <args>` here as it is
 *   SFMPI_DIE_WITH=<pid>        Node started us: die with it (PR_SET_PDEATHSIG), so kill -9
 *                               of the Node launcher still ends the job
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "sfl.h"
#include "sf_control.h"
#include "sf_proc.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Grace after the first failure before the rest of the job is killed (ms), as before. */
#define SFL_GRACE_MS 3000

/* Takes an internal variable out of the environment (programs we start must not see it). */
static char *sfl__take(const char *name) {
  const char *v = getenv(name);
  char *copy = v ? strdup(v) : NULL;
  unsetenv(name);
  return copy;
}

/* The repository (or package) root: SFMPI_HOME, else three levels above this binary
 * (build/c/sfmpirun). */
static int sfl__home(char *out, size_t len) {
  const char *h = getenv("SFMPI_HOME");
  char exe[PATH_MAX];
  ssize_t n;
  if (h && *h) return snprintf(out, len, "%s", h) < (int)len ? 0 : -1;
  n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n <= 0) return -1;
  exe[n] = '\0';
  for (int up = 0; up < 3; up++) {
    char *slash = strrchr(exe, '/');
    if (slash == NULL) return -1;
    *slash = '\0';
  }
  return snprintf(out, len, "%s", exe[0] ? exe : "/") < (int)len ? 0 : -1;
}

/* The job is the Node launcher's: hand it the parsed command line. */
static int sfl__to_node(const sfl_opts *o, int argc, char **argv, const char *spec_fd) {
  char spec[16384], home[PATH_MAX], script[PATH_MAX + 64];
  const char *node = getenv("SFMPI_NODE");
  char **args;
  int n = sfl_spec(o, spec, sizeof spec - 1);
  if (n < 0) {
    sfl_say("the command line is too long to hand to the Node launcher");
    return 2;
  }
  if (spec_fd != NULL) {
    int fd = atoi(spec_fd);
    spec[n++] = '\n';
    for (int at = 0; at < n;) {
      ssize_t w = write(fd, spec + at, (size_t)(n - at));
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) {
        sfl_say("cannot hand the job to the Node launcher (fd %s): %s", spec_fd, strerror(errno));
        return 2;
      }
      at += (int)w;
    }
    close(fd);
    return 0;
  }
  if (sfl__home(home, sizeof home) < 0) {
    sfl_say("cannot find the Node launcher: where is this binary? (set SFMPI_HOME)");
    return 127;
  }
  snprintf(script, sizeof script, "%s/dist/mpi-compat/launcher/sfmpirun.js", home);
  if (access(script, R_OK) != 0) {
    sfl_say("the Node launcher is not built (%s): run npm run build in %s", script, home);
    return 127;
  }
  if (setenv("SFMPI_LAUNCH_SPEC", spec, 1) != 0) {
    sfl_say("cannot hand the job to the Node launcher: %s", strerror(errno));
    return 2;
  }
  args = calloc((size_t)argc + 2, sizeof *args);
  if (args == NULL) {
    sfl_say("out of memory");
    return 2;
  }
  if (node == NULL || *node == '\0') node = "node";
  args[0] = (char *)node;
  args[1] = script;
  for (int i = 1; i < argc; i++) args[i + 1] = argv[i];
  execvp(node, args);
  sfl_say("cannot start the Node launcher (%s %s): %s", node, script, strerror(errno));
  free(args);
  return 127;
}

int main(int argc, char **argv) {
  double t0 = sfl_now_ms();
  char *spec_fd = sfl__take("SFMPI_LAUNCH_SPEC_FD"), *prepared = sfl__take("SFMPI_LAUNCH_PREPARED");
  char *die_with = sfl__take("SFMPI_DIE_WITH"), err[512], path[PATH_MAX], failure[SF_CTL_MAX_LINE + 256];
  const char *slurm = getenv("SLURM_JOB_ID");
  sfl_opts o;
  sfl_job_opts jo;
  char **job_argv;
  int rc, status;

  free(sfl__take("SFMPI_LAUNCH_SPEC"));
  /* Our writes to a closed stdout are EPIPE, not death; fds 0-2 exist, so no pipe of ours
   * lands on one of them. */
  signal(SIGPIPE, SIG_IGN);
  for (int fd = 0; fd < 3; fd++)
    if (fcntl(fd, F_GETFD) < 0 && open("/dev/null", O_RDWR) != fd) return 127;
  if (die_with != NULL) {
    long pid = strtol(die_with, NULL, 10);
    if (pid > 0 && sf_proc_die_with((pid_t)pid) != 0) {
      sfl_say("prctl(PR_SET_PDEATHSIG): %s", strerror(errno));
      return 127;
    }
  }

  rc = sfl_parse(argc, argv, &o);
  if (rc != 0) return rc < 0 ? 1 : 0;

  if (prepared == NULL || strcmp(prepared, "1") != 0) {
    int across = o.hostfile != NULL || o.host != NULL || (slurm != NULL && *slurm != '\0');
    if (!across && sf_admission_precheck(o.np, err, sizeof err) < 0) {
      sfl_say("%s", err);
      return 2;
    }
    if (across || sfl_kind_of(argv[o.prog]) != SFL_EXECUTABLE) return sfl__to_node(&o, argc, argv, spec_fd);
    if (spec_fd != NULL) close(atoi(spec_fd)); /* ours: Node waits for our exit, not a spec */
    if (sfl_resolve(argv[o.prog], path, sizeof path, err, sizeof err) < 0) {
      sfl_say("%s", err);
      return 2;
    }
    if (o.verbose) sfl_say("executable program ready in %.1f ms", sfl_now_ms() - t0);
    job_argv = argv + o.prog;
    job_argv[0] = path;
  } else {
    /* Node placed the job on this host alone and prepared the program. */
    if (sf_admission_precheck(o.np, err, sizeof err) < 0) {
      sfl_say("%s", err);
      return 2;
    }
    job_argv = argv + o.prog;
  }
  if (o.np > INT_MAX / 4) {
    sfl_say("-n %ld: too many ranks", o.np);
    return 2;
  }
  jo.size = (int)o.np;
  jo.timeout = o.timeout;
  jo.verbose = o.verbose;
  jo.argv = job_argv;
  jo.grace_ms = SFL_GRACE_MS;
  status = sfl_run_job(&jo, failure, sizeof failure);
  if (failure[0]) sfl_say("%s", failure);
  free(spec_fd);
  free(prepared);
  free(die_with);
  return status;
}
