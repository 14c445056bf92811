/*
 * output.c: every rank's output forwarded whole lines at a time (so ranks never interleave
 * mid-line), and the launcher's own writes to stdout and stderr.
 *
 * A rank's pending partial line is held up to SFL_LINE_MAX bytes; a longer line is forwarded
 * in pieces of that size (Node's launcher held it whole, without a bound).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "sfl.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SFL_LINE_MAX (64u << 10)

static sfl_wait_fn sfl__wait;
static void *sfl__wait_arg;
static int sfl__gone[3]; /* fd 1 or 2 closed under us (EPIPE): its output is dropped */

void sfl_out_init(sfl_wait_fn wait, void *arg) {
  sfl__wait = wait;
  sfl__wait_arg = arg;
}

double sfl_now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

void sfl_write_all(int to, const char *buf, size_t n) {
  while (n > 0 && !sfl__gone[to]) {
    ssize_t w = write(to, buf, n);
    if (w > 0) {
      buf += w;
      n -= (size_t)w;
    } else if (w < 0 && errno == EINTR) {
      continue;
    } else if (w < 0 && errno == EAGAIN) {
      /* A non-blocking stdout (a Node parent's pipe): wait until it drains, serving the job. */
      if (sfl__wait) {
        sfl__wait(to, sfl__wait_arg);
      } else {
        struct pollfd p = {to, POLLOUT, 0};
        poll(&p, 1, -1);
      }
    } else {
      sfl__gone[to] = 1; /* EPIPE or worse: nobody reads it any more */
    }
  }
}

void sfl_say(const char *fmt, ...) {
  char line[8192];
  va_list ap;
  int n = snprintf(line, sizeof line, "sfmpirun: ");
  va_start(ap, fmt);
  n += vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
  va_end(ap);
  if (n > (int)sizeof line - 2) n = (int)sizeof line - 2;
  line[n++] = '\n';
  sfl_write_all(2, line, (size_t)n);
}

int sfl_stream_read(sfl_stream *s) {
  ssize_t got;
  if (s->fd < 0) return 1;
  if (s->buf == NULL) {
    s->cap = SFL_LINE_MAX;
    s->buf = malloc(s->cap);
    if (s->buf == NULL) {
      /* No memory for a line: forward what comes as it comes. */
      char tmp[4096];
      got = read(s->fd, tmp, sizeof tmp);
      if (got > 0) {
        sfl_write_all(s->to, tmp, (size_t)got);
        return 0;
      }
      if (got < 0 && (errno == EINTR || errno == EAGAIN)) return 0;
      close(s->fd);
      s->fd = -1;
      return 1;
    }
  }
  do {
    got = read(s->fd, s->buf + s->len, s->cap - s->len);
  } while (got < 0 && errno == EINTR);
  if (got < 0 && errno == EAGAIN) return 0;
  if (got <= 0) {
    /* The end (or an error, which ends it too): the rest goes as it is. */
    if (s->len) sfl_write_all(s->to, s->buf, s->len);
    s->len = 0;
    close(s->fd);
    s->fd = -1;
    free(s->buf);
    s->buf = NULL;
    return 1;
  }
  {
    char *nl = memrchr(s->buf + s->len, '\n', (size_t)got);
    s->len += (size_t)got;
    if (nl != NULL) {
      size_t whole = (size_t)(nl - s->buf) + 1;
      sfl_write_all(s->to, s->buf, whole);
      memmove(s->buf, s->buf + whole, s->len - whole);
      s->len -= whole;
    } else if (s->len == s->cap) {
      sfl_write_all(s->to, s->buf, s->len); /* a line longer than we hold: in pieces */
      s->len = 0;
    }
  }
  return 0;
}
