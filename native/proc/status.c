/*
 * status.c: how a process ended (sf_proc.h).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "sf_proc.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

void sf_proc_describe(int wstatus, int finished, const char *before, char *buf, size_t len) {
  if (wstatus < 0) {
    snprintf(buf, len, "died (its exit status is unknown)");
  } else if (WIFSIGNALED(wstatus)) {
    int sig = WTERMSIG(wstatus);
    const char *abbrev = sigabbrev_np(sig);
    snprintf(buf, len, "was killed by signal %d (SIG%s)", sig, abbrev ? abbrev : "?");
  } else if (WIFEXITED(wstatus)) {
    snprintf(buf, len, "exited with code %d%s%s", WEXITSTATUS(wstatus), before && !finished ? " before " : "",
             before && !finished ? before : "");
  } else {
    snprintf(buf, len, "died");
  }
}

int sf_proc_code(int wstatus) {
  if (wstatus < 0) return 1;
  if (WIFSIGNALED(wstatus)) return 128 + WTERMSIG(wstatus);
  if (WIFEXITED(wstatus)) return WEXITSTATUS(wstatus);
  return 1;
}

int sf_proc_failed(int wstatus) {
  return wstatus < 0 || WIFSIGNALED(wstatus) || (WIFEXITED(wstatus) && WEXITSTATUS(wstatus) != 0);
}

/* Exit status of a zombie from /proc/<pid>/stat field 52 (exit_code, wait(2) format). */
static int sf__proc_stat_status(pid_t pid, int *status) {
  char path[64], buf[2048], *p;
  ssize_t n;
  int fd, field;
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return -1;
  buf[n] = '\0';
  p = strrchr(buf, ')');
  if (p == NULL) return -1;
  p++; /* now at " S ppid ..." : field 3 is the state */
  if (p[0] != ' ' || p[1] != 'Z') return -1; /* only a zombie's exit_code is final */
  field = 2;
  while (*p && field < 52) {
    if (*p == ' ') field++;
    p++;
  }
  if (field != 52) return -1;
  *status = atoi(p);
  return 0;
}

int sf_proc_peek_status(pid_t pid, int *wstatus) {
  siginfo_t si;
  if (pid <= 0) return -1;
  memset(&si, 0, sizeof si);
  if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid == pid) {
    *wstatus = si.si_code == CLD_EXITED ? (si.si_status & 0xff) << 8 : (si.si_status & 0x7f);
    return 0;
  }
  return sf__proc_stat_status(pid, wstatus);
}

int sf_proc_die_with(pid_t parent) {
  if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) return -1;
  if (getppid() != parent) kill(getpid(), SIGKILL);
  return 0;
}
