/*
 * link_tcp.c: the link to a rank of another host, over one stream socket (link.h).
 *
 * The socket arrives connected and authenticated (the job's HMAC handshake is done by dom0 and
 * the launcher before the fd is handed in: the data plane carries no key). Frames are the same
 * as on shared memory (frame.h), written with one sendmsg of header + payload; a partial write
 * keeps the frame's unsent tail in the link (copied, so the caller may reuse its buffer) and
 * the next put waits until it is flushed. Incoming bytes are read into a buffer that holds at
 * least one whole frame; complete frames are delivered in order.
 *
 * Ends: a BYE frame says the peer finished; EOF or a reset without it means the peer (or its
 * host) is gone and takes the link down. A malformed frame closes the link (SF_EPROTO).
 * A host that vanishes without a reset is found by TCP keepalive and TCP_USER_TIMEOUT within
 * seconds, and by dom0, which ends the job.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

/* Streamed messages travel in DATA frames of this size: large enough that a frame's fixed cost
 * vanishes beside the copy, small enough to keep two in the receive buffer. */
#define SF__TCP_CHUNK (256u << 10)
#define SF__TCP_EAGER (64u << 10)
#define SF__TCP_USER_TIMEOUT_MS 10000

typedef struct sf__tcp_link {
  sf__link l;
  int fd;
  unsigned char *rbuf; /* incoming bytes: [roff, rlen) not yet delivered */
  size_t rcap, rlen, roff;
  unsigned char *wbuf; /* the unsent tail of one frame: [woff, wlen) */
  size_t wcap, wlen, woff;
  int eof;
} sf__tcp_link;

static void tcp_gone(sf__tcp_link *t, int err) {
  if (t->l.state == SF__LINK_FINISHED) return; /* it said BYE: closing is its right */
  if (err)
    sf__link_down(&t->l, "on host %d lost its connection (%s)", t->l.job->host_of[t->l.peer], strerror(err));
  else
    sf__link_down(&t->l, "on host %d closed its connection without finishing", t->l.job->host_of[t->l.peer]);
}

static int tcp_flush(sf__link *base) {
  sf__tcp_link *t = (sf__tcp_link *)base;
  while (t->woff < t->wlen) {
    ssize_t w = send(t->fd, t->wbuf + t->woff, t->wlen - t->woff, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (w > 0) {
      t->woff += (size_t)w;
      continue;
    }
    if (w < 0 && errno == EINTR) continue;
    if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return 0;
    tcp_gone(t, w < 0 ? errno : EPIPE);
    return SF_EPEERDIED;
  }
  t->woff = t->wlen = 0;
  return 0;
}

static int tcp_put(sf__link *base, const sf__frame *f, const void *p1, size_t n1, const void *p2, size_t n2) {
  sf__tcp_link *t = (sf__tcp_link *)base;
  struct iovec iov[3] = {{(void *)f, sizeof *f}, {(void *)p1, n1}, {(void *)p2, n2}};
  struct msghdr m;
  size_t total = sizeof *f + n1 + n2, done;
  ssize_t w;
  int rc;
  if (base->state == SF__LINK_DOWN) return SF_EPEERDIED;
  if ((rc = tcp_flush(base)) < 0) return rc;
  if (t->woff < t->wlen) return 0; /* the previous frame's tail is still on its way */
  memset(&m, 0, sizeof m);
  m.msg_iov = iov;
  m.msg_iovlen = 3;
  do {
    w = sendmsg(t->fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
  } while (w < 0 && errno == EINTR);
  if (w < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
    tcp_gone(t, errno);
    return SF_EPEERDIED;
  }
  done = (size_t)w;
  if (done == total) return 1;
  /* Keep the rest: the caller may reuse its buffers as soon as we return. */
  if (t->wcap < total - done) {
    unsigned char *nb = realloc(t->wbuf, total - done);
    if (nb == NULL) return sf__err(SF_ENOMEM, "out of memory keeping a partly written frame for rank %d", base->peer);
    t->wbuf = nb;
    t->wcap = total - done;
  }
  t->wlen = 0;
  for (int i = 0; i < 3; i++) {
    size_t n = iov[i].iov_len;
    const unsigned char *p = iov[i].iov_base;
    if (done >= n) {
      done -= n;
      continue;
    }
    memcpy(t->wbuf + t->wlen, p + done, n - done);
    t->wlen += n - done;
    done = 0;
  }
  t->woff = 0;
  return 1;
}

/* A complete frame at roff? Returns its total size, 0 if incomplete, <0 if malformed. */
static long tcp_frame_at(sf__tcp_link *t, sf__frame *f) {
  const char *bad;
  unsigned long long v = 0;
  if (t->rlen - t->roff < sizeof *f) return 0;
  memcpy(f, t->rbuf + t->roff, sizeof *f);
  bad = sf__frame_check(f, t->l.peer, t->l.job->rank, t->l.max_frame, &v);
  if (bad) return sf__link_proto(&t->l, bad, v);
  if (t->rlen - t->roff < sizeof *f + f->len) return 0;
  return (long)(sizeof *f + f->len);
}

static int tcp_readable(sf__link *base) {
  sf__tcp_link *t = (sf__tcp_link *)base;
  sf__frame f;
  return base->ready || (t->rlen - t->roff >= sizeof f && tcp_frame_at(t, &f) > 0);
}

static int tcp_poll(sf__link *base) {
  sf__tcp_link *t = (sf__tcp_link *)base;
  sf_job *job = base->job;
  if (base->broken) return SF_EPROTO;
  base->ready = 0;
  for (;;) {
    sf__frame f;
    long total;
    /* Deliver what is complete. */
    while ((total = tcp_frame_at(t, &f)) > 0) {
      sf__payload p = {t->rbuf + t->roff + sizeof f, 0, 0};
      int rc = sf__deliver(job, base, &f, &p);
      t->roff += (size_t)total;
      if (rc < 0) return rc;
    }
    if (total < 0) return (int)total;
    if (t->eof) return 0;
    /* Make room, then read what the socket has. */
    if (t->roff > 0) {
      memmove(t->rbuf, t->rbuf + t->roff, t->rlen - t->roff);
      t->rlen -= t->roff;
      t->roff = 0;
    }
    {
      ssize_t n = recv(t->fd, t->rbuf + t->rlen, t->rcap - t->rlen, MSG_DONTWAIT);
      if (n > 0) {
        t->rlen += (size_t)n;
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return 0;
      t->eof = 1;
      tcp_gone(t, n < 0 ? errno : 0);
      return 0;
    }
  }
}

static void tcp_health(sf__link *base, int deep) {
  (void)base;
  (void)deep; /* ends arrive as EOF/reset in poll; silence is found by keepalive (see top) */
}

static void tcp_close(sf__link *base) {
  sf__tcp_link *t = (sf__tcp_link *)base;
  if (t->fd >= 0) {
    tcp_flush(base); /* a last BYE, if it fits */
    close(t->fd);
  }
  free(t->rbuf);
  free(t->wbuf);
  free(t);
}

static const sf__link_ops sf__tcp_ops = {
    .kind = "TCP",
    .put = tcp_put,
    .poll = tcp_poll,
    .readable = tcp_readable,
    .flush = tcp_flush,
    .direct_read = NULL,
    .health = tcp_health,
    .close = tcp_close,
};

/* Socket options of a cluster-network link; a non-TCP stream (a socketpair in tests) keeps
 * its defaults. */
static void tcp_tune(int fd) {
  int domain = 0, one = 1, idle = 5, intvl = 1, cnt = 5;
  unsigned timeout = SF__TCP_USER_TIMEOUT_MS;
  socklen_t len = sizeof domain;
  if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) != 0 || (domain != AF_INET && domain != AF_INET6)) return;
  /* Failures leave Linux's defaults, which still work, only slower to notice a dead host. */
  (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  (void)setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
  (void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
  (void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof intvl);
  (void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof cnt);
  (void)setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &timeout, sizeof timeout);
}

sf__link *sf__tcp_link_new(sf_job *job, int peer, int fd) {
  sf__tcp_link *t;
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0) {
    sf__errno("sf_job_add_link_fd: the link's fd");
    return NULL;
  }
  if (fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0 || fcntl(fd, F_SETFD, FD_CLOEXEC) != 0) {
    sf__errno("sf_job_add_link_fd: fcntl of the link's fd");
    return NULL;
  }
  tcp_tune(fd);
  t = calloc(1, sizeof *t);
  if (t == NULL) {
    sf__err(SF_ENOMEM, "out of memory for the link to rank %d", peer);
    return NULL;
  }
  t->l.ops = &sf__tcp_ops;
  t->l.job = job;
  t->l.peer = peer;
  t->l.caps = 0;
  t->l.max_frame = SF__TCP_CHUNK;
  t->l.eager_limit = SF__TCP_EAGER;
  t->l.chunk = SF__TCP_CHUNK;
  t->l.wstatus = -1;
  t->fd = fd;
  t->rcap = 2 * (SF__TCP_CHUNK + SF__FRAME_BYTES);
  t->rbuf = malloc(t->rcap);
  if (t->rbuf == NULL) {
    free(t);
    sf__err(SF_ENOMEM, "out of memory for the link to rank %d", peer);
    return NULL;
  }
  if (sf__epoll_add(job, fd, (uint64_t)peer) < 0) {
    free(t->rbuf);
    free(t);
    return NULL;
  }
  return &t->l;
}
