/*
 * control.c: the launcher's control lines (sf_control.h), one encoder for C and TypeScript.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "sf_dataplane.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int sf__err(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static char sf__host[256];
static pthread_once_t sf__host_once = PTHREAD_ONCE_INIT;

static void sf__host_init(void) {
  if (gethostname(sf__host, sizeof sf__host) != 0) snprintf(sf__host, sizeof sf__host, "localhost");
  sf__host[sizeof sf__host - 1] = '\0';
}

const char *sf_ctl_host(void) {
  pthread_once(&sf__host_once, sf__host_init);
  return sf__host;
}

/* JSON string body of s (without quotes), cut to fit `len` bytes. */
static void sf__json_str(char *out, size_t len, const char *s) {
  size_t o = 0;
  for (; s && *s && o + 7 < len; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\') {
      out[o++] = '\\';
      out[o++] = (char)c;
    } else if (c < 0x20) {
      o += (size_t)snprintf(out + o, len - o, "\\u%04x", c);
    } else {
      out[o++] = (char)c;
    }
  }
  out[o] = '\0';
}

static int sf__ctl_write(int fd, const char *line, int n) {
  ssize_t w;
  if (n < 0 || n >= SF_CTL_MAX_LINE) return sf__err(-1, "control line too long (%d bytes)", n);
  do {
    w = write(fd, line, (size_t)n);
  } while (w < 0 && errno == EINTR);
  if (w < 0) return sf__err(-3, "write to the launcher control socket: %s", strerror(errno));
  if (w != n) return sf__err(-3, "short write to the launcher control socket");
  return 0;
}

/* The common start of every line: {"v":1,"ev":"<ev>","host":"<host>","rank":<rank> */
static int sf__ctl_head(char *line, size_t len, const char *ev, int rank) {
  char host[300];
  sf__json_str(host, sizeof host, sf_ctl_host());
  return snprintf(line, len, "{\"v\":%d,\"ev\":\"%s\",\"host\":\"%s\",\"rank\":%d", SF_CTL_VERSION, ev, host, rank);
}

int sf_ctl_fork(int fd, int rank, pid_t pid, double ms) {
  char line[512];
  int n;
  if (fd < 0) return 0;
  n = sf__ctl_head(line, sizeof line, "fork", rank);
  n += snprintf(line + n, sizeof line - (size_t)n, ",\"pid\":%d,\"ms\":%.3f}\n", (int)pid, ms);
  return sf__ctl_write(fd, line, n);
}

int sf_ctl_exit(int fd, int rank, int code) {
  char line[512];
  int n;
  if (fd < 0) return 0;
  n = sf__ctl_head(line, sizeof line, "exit", rank);
  n += snprintf(line + n, sizeof line - (size_t)n, ",\"code\":%d}\n", code);
  return sf__ctl_write(fd, line, n);
}

int sf_ctl_fail(int fd, int rank, int code, int signal, const char *cause) {
  char esc[3000], line[SF_CTL_MAX_LINE];
  int n;
  if (fd < 0) return 0;
  sf__json_str(esc, sizeof esc, cause && *cause ? cause : "failed");
  n = sf__ctl_head(line, sizeof line, "fail", rank);
  n += snprintf(line + n, sizeof line - (size_t)n, ",\"code\":%d,\"signal\":%d,\"cause\":\"%s\"}\n", code, signal, esc);
  return sf__ctl_write(fd, line, n);
}

int sf_ctl_fail_once(sf_job *job, int fd, int rank, int code, int signal, const char *cause) {
  if (job != NULL && !sf_job_claim_fail_report(job, rank)) return 0;
  sf_ctl_fail(fd, rank, code, signal, cause); /* a gone launcher: the exit status still tells */
  return 1;
}
