/*
 * job.c: one job on this host (docs/launcher-protocol.md). The launcher starts exactly one
 * process, the origin, in a session (and process group) of its own, with
 *
 *   fd 0      the launcher's stdin (rank 0 reads it; clones take /dev/null)
 *   fd 1, 2   rank 0's stdout and stderr (pipes to the launcher)
 *   fd 3      the control socket (a stream socket pair)
 *   fd 4, 5   rank 1's stdout and stderr, fd 6, 7 rank 2's, ... (SFMPI_STDIO_FDS)
 *
 * then serves, in one poll loop that sleeps until something happens: every rank's output
 * (whole lines, output.c), the control lines (native/control: decoded, weighed by sf_outcome),
 * signals (a signalfd: SIGINT and SIGTERM are forwarded to the job's group, which is killed 2 s
 * later if still there; SIGCHLD reaps), and deadlines (--timeout; the grace after the first
 * failure). The job ends when the origin has ended (its group is then killed: nothing of the job
 * outlives it) and every pipe and the control socket reached their end.
 *
 * The launcher is a child subreaper, so a clone orphaned by a dying origin is reaped here
 * rather than left to init. The origin dies with the launcher (SFMPI_LAUNCHER_PID: libsfmpi
 * and the Node preload set PR_SET_PDEATHSIG), so kill -9 of the launcher ends the job.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "sfl.h"
#include "sf_control.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define SFL_SIGNAL_KILL_MS 2000 /* after forwarding SIGINT/SIGTERM, what is left is killed */

typedef struct sfl__job {
  const sfl_job_opts *o;
  pid_t origin; /* also the job's process group */
  int origin_done, origin_status;
  int sigfd;
  int ctl;
  char ctlbuf[2 * SF_CTL_MAX_LINE];
  size_t ctllen;
  int ctl_skip; /* inside an overlong line: dropped up to its newline */
  sfl_stream *streams;
  int nstreams;
  sf_outcome *outcome;
  double timeout_at, grace_at, kill_at; /* 0: none */
} sfl__job;

static void sfl__kill_group(sfl__job *j, int sig) {
  /* Once the origin is reaped its pid (the group's id) may be reused: the group was killed
   * when it ended (sfl__reap), so there is nothing left to signal. */
  if (!j->origin_done) kill(-j->origin, sig);
}

/* Reaps what ended: the origin (after killing what it left in its group, while its pid is
 * still ours), and orphans handed to us as subreaper. */
static void sfl__reap(sfl__job *j) {
  for (;;) {
    siginfo_t si;
    memset(&si, 0, sizeof si);
    if (waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) != 0 || si.si_pid == 0) return;
    if (si.si_pid == j->origin && !j->origin_done) {
      int st;
      kill(-j->origin, SIGKILL); /* whatever the origin left behind (a clone outliving it: a bug) */
      while (waitpid(j->origin, &st, 0) < 0 && errno == EINTR) {
      }
      j->origin_done = 1;
      j->origin_status = st;
    } else {
      while (waitpid(si.si_pid, NULL, 0) < 0 && errno == EINTR) {
      }
    }
  }
}

static void sfl__signals(sfl__job *j) {
  struct signalfd_siginfo s;
  while (read(j->sigfd, &s, sizeof s) == (ssize_t)sizeof s) {
    if (s.ssi_signo == SIGCHLD) {
      sfl__reap(j);
    } else {
      sfl__kill_group(j, (int)s.ssi_signo);
      if (j->kill_at == 0) j->kill_at = sfl_now_ms() + SFL_SIGNAL_KILL_MS;
    }
  }
  sfl__reap(j); /* SIGCHLDs coalesce; a reaped-but-unsignalled end is picked up here too */
}

static void sfl__deadlines(sfl__job *j) {
  double now = sfl_now_ms();
  if (j->timeout_at && now >= j->timeout_at) {
    j->timeout_at = 0;
    sf_outcome_timeout(j->outcome, j->o->timeout);
    sfl__kill_group(j, SIGKILL);
  }
  if (j->grace_at && now >= j->grace_at) {
    j->grace_at = 0; /* the others had their chance to notice the failure and stop */
    sfl__kill_group(j, SIGKILL);
  }
  if (j->kill_at && now >= j->kill_at) {
    j->kill_at = 0;
    sfl__kill_group(j, SIGKILL);
  }
}

/* Milliseconds to the next deadline, for poll (-1: none). */
static int sfl__next(const sfl__job *j) {
  double next = 0, now = sfl_now_ms();
  const double at[3] = {j->timeout_at, j->grace_at, j->kill_at};
  for (int i = 0; i < 3; i++)
    if (at[i] && (next == 0 || at[i] < next)) next = at[i];
  if (next == 0) return -1;
  return next <= now ? 0 : (int)(next - now) + 1;
}

/* While a write to our stdout/stderr waits for its reader: signals and deadlines still count. */
static void sfl__wait_writable(int fd, void *arg) {
  sfl__job *j = arg;
  struct pollfd p[2] = {{fd, POLLOUT, 0}, {j->sigfd, POLLIN, 0}};
  if (poll(p, 2, sfl__next(j)) < 0 && errno != EINTR) return;
  if (p[1].revents) sfl__signals(j);
  sfl__deadlines(j);
}

static void sfl__control_line(sfl__job *j, const char *line, size_t n) {
  sf_ctl_msg m;
  if (n > 0 && line[n - 1] == '\r') n--;
  if (sf_ctl_decode(line, n, &m) < 0) {
    char q[1024];
    size_t k = n < 200 ? n : 200;
    while (k < n && k > 0 && ((unsigned char)line[k] & 0xc0) == 0x80) k--; /* whole characters */
    sf_ctl_quote(q, sizeof q, line, k);
    sfl_say("ignored a malformed control message: %s", q);
    return;
  }
  if (m.ev == SF_CTL_FORK && j->o->verbose)
    sfl_say("rank %d pid %d running %.2f ms after the fork request", m.rank, m.pid, m.ms);
  if (sf_outcome_event(j->outcome, &m, sfl_now_ms()) && j->o->grace_ms >= 0)
    j->grace_at = sfl_now_ms() + j->o->grace_ms;
}

/* Reads the control socket once; every whole line is handled. Returns 1 at its end. */
static int sfl__control(sfl__job *j) {
  ssize_t got;
  size_t start = 0;
  do {
    got = read(j->ctl, j->ctlbuf + j->ctllen, sizeof j->ctlbuf - j->ctllen);
  } while (got < 0 && errno == EINTR);
  if (got < 0 && errno == EAGAIN) return 0;
  if (got <= 0) {
    if (j->ctllen && !j->ctl_skip) sfl__control_line(j, j->ctlbuf, j->ctllen); /* a last line without its newline */
    j->ctllen = 0;
    close(j->ctl);
    j->ctl = -1;
    return 1;
  }
  j->ctllen += (size_t)got;
  for (size_t i = 0; i < j->ctllen; i++) {
    if (j->ctlbuf[i] != '\n') continue;
    if (!j->ctl_skip) sfl__control_line(j, j->ctlbuf + start, i - start);
    j->ctl_skip = 0;
    start = i + 1;
  }
  memmove(j->ctlbuf, j->ctlbuf + start, j->ctllen - start);
  j->ctllen -= start;
  if (j->ctllen == sizeof j->ctlbuf) {
    /* Far beyond any line a rank writes: report its start once, drop it to its newline. */
    if (!j->ctl_skip) sfl__control_line(j, j->ctlbuf, j->ctllen);
    j->ctl_skip = 1;
    j->ctllen = 0;
  }
  return 0;
}

/* The origin's environment: ours, without the protocol's variables of an enclosing job, with
 * this job's. The strings from env[first] on are ours (sfl__environment_free). */
static void sfl__environment_free(char **env, size_t first) {
  if (env == NULL) return;
  for (size_t i = first; env[i]; i++) free(env[i]);
  free(env);
}

static char **sfl__environment(const sfl_job_opts *o, char *fds, size_t *first) {
  static const char *const drop[] = {"SFMPI_SIZE=", "SFMPI_CONTROL_FD=", "SFMPI_STDIO_FDS=", "SFMPI_LAUNCHER_PID=", NULL};
  size_t n = 0, k = 0;
  char **env;
  for (char **e = environ; *e; e++) n++;
  env = calloc(n + 8, sizeof *env);
  if (env == NULL) return NULL;
  for (char **e = environ; *e; e++) {
    int skip = 0;
    for (int d = 0; drop[d]; d++)
      if (strncmp(*e, drop[d], strlen(drop[d])) == 0) skip = 1;
    if (o->timeout > 0 && strncmp(*e, "SFMPI_TIMEOUT_MS=", 17) == 0) skip = 1;
    if (o->verbose && strncmp(*e, "SFMPI_VERBOSE=", 14) == 0) skip = 1;
    if (!skip) env[k++] = *e;
  }
  *first = k;
  /* asprintf leaves its pointer undefined on failure: each is checked before the next. */
  if (asprintf(&env[k], "SFMPI_SIZE=%d", o->size) < 0) goto fail;
  if (asprintf(&env[++k], "SFMPI_CONTROL_FD=3") < 0) goto fail;
  if (asprintf(&env[++k], "SFMPI_STDIO_FDS=%s", fds) < 0) goto fail;
  if (asprintf(&env[++k], "SFMPI_LAUNCHER_PID=%d", (int)getpid()) < 0) goto fail;
  /* Math.round(seconds * 1000), as the Node launcher wrote it */
  if (o->timeout > 0 && asprintf(&env[++k], "SFMPI_TIMEOUT_MS=%.0f", (double)(long long)(o->timeout * 1000 + 0.5)) < 0)
    goto fail;
  if (o->verbose && asprintf(&env[++k], "SFMPI_VERBOSE=1") < 0) goto fail;
  env[++k] = NULL;
  return env;
fail:
  env[k] = NULL;
  sfl__environment_free(env, *first);
  return NULL;
}

int sfl_run_job(const sfl_job_opts *o, char *failure, size_t len) {
  sfl__job j;
  int n = o->size, status = 1, rc, base = 2 * o->size + 2;
  int ctl[2] = {-1, -1}, *child_fd = NULL, *target = NULL, *idx = NULL, ntargets = 0;
  struct pollfd *p = NULL;
  char *fds = NULL;
  char **env = NULL;
  size_t env_first = 0;
  sigset_t mask, none, deflt;
  posix_spawn_file_actions_t fa;
  posix_spawnattr_t attr;
  int have_fa = 0, have_attr = 0;
  double t0;

  memset(&j, 0, sizeof j);
  j.o = o;
  j.ctl = j.sigfd = -1;
  failure[0] = '\0';
  j.outcome = sf_outcome_new(n);
  j.streams = calloc((size_t)(2 * n), sizeof *j.streams);
  child_fd = calloc((size_t)(2 * n + 1), sizeof *child_fd);
  target = calloc((size_t)(2 * n + 1), sizeof *target);
  fds = malloc((size_t)(2 * n) * 12 + 1);
  p = calloc((size_t)(2 * n + 2), sizeof *p);
  idx = calloc((size_t)(2 * n + 2), sizeof *idx);
  if (!j.outcome || !j.streams || !child_fd || !target || !fds || !p || !idx) {
    snprintf(failure, len, "cannot start %s: out of memory", o->argv[0]);
    status = 127;
    goto out;
  }
  for (int i = 0; i < 2 * n; i++) j.streams[i].fd = -1;

  /* Signals come through a signalfd, blocked before the origin exists so none is missed. */
  sigemptyset(&mask);
  sigaddset(&mask, SIGCHLD);
  sigaddset(&mask, SIGINT);
  sigaddset(&mask, SIGTERM);
  if (sigprocmask(SIG_BLOCK, &mask, NULL) != 0 || (j.sigfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC)) < 0) {
    snprintf(failure, len, "cannot start %s: signalfd: %s", o->argv[0], strerror(errno));
    status = 127;
    goto out;
  }
  if (prctl(PR_SET_CHILD_SUBREAPER, 1) != 0) {
    /* Not fatal: orphans then go to init, as under the Node launcher. */
  }

  /* The pipes and the control socket. The child's ends are moved above every fd number the
   * child is given, so that placing one never overwrites another. */
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ctl) != 0) {
    snprintf(failure, len, "cannot start %s: socketpair: %s", o->argv[0], strerror(errno));
    status = 127;
    goto out;
  }
  j.ctl = ctl[0];
  target[ntargets] = 3;
  child_fd[ntargets++] = ctl[1];
  ctl[1] = -1;
  fds[0] = '\0';
  for (int r = 0; r < n; r++) {
    for (int e = 0; e < 2; e++) {
      int p[2], t = r == 0 ? 1 + e : 4 + 2 * (r - 1) + e;
      if (pipe2(p, O_CLOEXEC) != 0) {
        snprintf(failure, len, "cannot start %s: pipe for rank %d: %s", o->argv[0], r, strerror(errno));
        status = 127;
        goto out;
      }
      j.streams[2 * r + e].fd = p[0];
      j.streams[2 * r + e].to = 1 + e;
      target[ntargets] = t;
      child_fd[ntargets++] = p[1];
      sprintf(fds + strlen(fds), "%s%d", r == 0 && e == 0 ? "" : ",", t);
    }
  }
  j.nstreams = 2 * n;
  for (int i = 0; i < ntargets; i++) {
    int high = fcntl(child_fd[i], F_DUPFD_CLOEXEC, base);
    if (high < 0) {
      snprintf(failure, len, "cannot start %s: fcntl(F_DUPFD): %s", o->argv[0], strerror(errno));
      status = 127;
      goto out;
    }
    close(child_fd[i]);
    child_fd[i] = high;
  }

  env = sfl__environment(o, fds, &env_first);
  if (env == NULL) {
    snprintf(failure, len, "cannot start %s: out of memory", o->argv[0]);
    status = 127;
    goto out;
  }
  /* A session of its own (its group is the job's), the signal mask and dispositions a fresh
   * process has (ours blocks three and ignores SIGPIPE). */
  if ((rc = posix_spawn_file_actions_init(&fa)) == 0) {
    have_fa = 1;
    if ((rc = posix_spawnattr_init(&attr)) == 0) have_attr = 1;
  }
  if (rc != 0) {
    snprintf(failure, len, "cannot start %s: posix_spawn: %s", o->argv[0], strerror(rc));
    status = 127;
    goto out;
  }
  for (int i = 0; i < ntargets; i++) posix_spawn_file_actions_adddup2(&fa, child_fd[i], target[i]);
  sigemptyset(&none);
  sigfillset(&deflt);
  sigdelset(&deflt, SIGKILL);
  sigdelset(&deflt, SIGSTOP);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &deflt);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  t0 = sfl_now_ms();
  rc = posix_spawn(&j.origin, o->argv[0], &fa, &attr, o->argv, env);
  for (int i = 0; i < ntargets; i++) {
    close(child_fd[i]);
    child_fd[i] = -1;
  }
  if (rc != 0) {
    snprintf(failure, len, "cannot start %s: %s", o->argv[0], strerror(rc));
    status = 127;
    goto out;
  }
  if (o->timeout > 0) j.timeout_at = t0 + o->timeout * 1000;
  sfl_out_init(sfl__wait_writable, &j);

  for (;;) {
    int np = 0, open = 0;
    p[np++] = (struct pollfd){j.sigfd, POLLIN, 0};
    if (j.ctl >= 0) {
      idx[np] = -1;
      p[np++] = (struct pollfd){j.ctl, POLLIN, 0};
      open++;
    }
    for (int i = 0; i < j.nstreams; i++) {
      if (j.streams[i].fd < 0) continue;
      idx[np] = i;
      p[np++] = (struct pollfd){j.streams[i].fd, POLLIN, 0};
      open++;
    }
    if (j.origin_done && open == 0) break;
    if (poll(p, (nfds_t)np, sfl__next(&j)) < 0 && errno != EINTR) {
      sfl_say("poll: %s", strerror(errno));
      break;
    }
    for (int k = 1; k < np; k++) {
      if (!p[k].revents) continue;
      if (idx[k] < 0)
        sfl__control(&j);
      else
        sfl_stream_read(&j.streams[idx[k]]);
    }
    if (p[0].revents) sfl__signals(&j);
    sfl__deadlines(&j);
  }
  sfl_out_init(NULL, NULL);
  if (o->verbose) sfl_say("job of %d rank%s ended after %.1f ms", n, n == 1 ? "" : "s", sfl_now_ms() - t0);
  status = sf_outcome_result(j.outcome, j.origin_done ? j.origin_status : -1, failure, len);

out:
  if (have_fa) posix_spawn_file_actions_destroy(&fa);
  if (have_attr) posix_spawnattr_destroy(&attr);
  if (child_fd)
    for (int i = 0; i < ntargets; i++)
      if (child_fd[i] >= 0) close(child_fd[i]);
  if (ctl[1] >= 0) close(ctl[1]);
  if (j.ctl >= 0) close(j.ctl);
  if (j.streams)
    for (int i = 0; i < 2 * n; i++) {
      if (j.streams[i].fd >= 0) close(j.streams[i].fd);
      free(j.streams[i].buf);
    }
  if (j.sigfd >= 0) close(j.sigfd);
  sf_outcome_free(j.outcome);
  free(j.streams);
  free(child_fd);
  free(target);
  free(fds);
  sfl__environment_free(env, env_first);
  free(p);
  free(idx);
  return status;
}
