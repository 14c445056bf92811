/*
 * join.c: a host's first rank reads its part of a job that spans hosts from its dom0
 * (sf_control.h draws the messages).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "sf_dataplane.h"

#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int sf__err(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define SF__JOIN_MAGIC 0x4e4a4653u /* "SFJN" little-endian */
#define SF__JOIN_VERSION 1
#define SF__JOIN_BODY_MAX (64u << 10)
enum { SF__J_JOIN = 1, SF__J_FDS = 2, SF__J_GO = 3 };

typedef struct sf__jhdr {
  uint32_t magic;
  uint16_t version;
  uint16_t type;
  uint32_t length;
  uint32_t nfds;
} sf__jhdr;

/* One message: header, body (into *body, malloc'd), fds (appended to fds[*nfd]). */
static int sf__jrecv(int fd, double deadline, sf__jhdr *h, unsigned char **body, int *fds, int *nfd, int cap) {
  union {
    struct cmsghdr c;
    char buf[CMSG_SPACE(sizeof(int) * SF_JOIN_FDS_MAX)];
  } ctl;
  struct iovec iov = {h, sizeof *h};
  struct msghdr m;
  ssize_t n;
  *body = NULL;
  for (;;) {
    struct pollfd p = {fd, POLLIN, 0};
    int left = deadline < 0 ? -1 : (int)((deadline - sf_now()) * 1e3);
    if (deadline >= 0 && left <= 0) return sf__err(SF_ETIMEDOUT, "joining the job: no word from dom0 in time");
    if (poll(&p, 1, left) < 0 && errno != EINTR) return sf__err(SF_ESYS, "joining the job: poll: %s", strerror(errno));
    if (p.revents) break;
  }
  memset(&m, 0, sizeof m);
  m.msg_iov = &iov;
  m.msg_iovlen = 1;
  m.msg_control = ctl.buf;
  m.msg_controllen = sizeof ctl.buf;
  do {
    n = recvmsg(fd, &m, MSG_CMSG_CLOEXEC | MSG_WAITALL);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return sf__err(SF_ESYS, "joining the job: recvmsg from dom0: %s", strerror(errno));
  /* Whatever fds came, they are ours to close on any error from here on. */
  for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    int k = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
    int *got = (int *)CMSG_DATA(c);
    for (int i = 0; i < k; i++) {
      if (*nfd < cap)
        fds[(*nfd)++] = got[i];
      else
        close(got[i]);
    }
  }
  if (n == 0) return sf__err(SF_EPEERDIED, "joining the job: dom0 closed its socket");
  if ((size_t)n != sizeof *h) return sf__err(SF_EPROTO, "joining the job: a message header of %zd bytes from dom0", n);
  if (h->magic != SF__JOIN_MAGIC) return sf__err(SF_EPROTO, "joining the job: bad magic %#x from dom0", h->magic);
  if (h->version != SF__JOIN_VERSION) return sf__err(SF_EPROTO, "joining the job: version %u from dom0, this rank speaks %d", h->version, SF__JOIN_VERSION);
  if (h->length > SF__JOIN_BODY_MAX) return sf__err(SF_EPROTO, "joining the job: a body of %u bytes (limit %u)", h->length, SF__JOIN_BODY_MAX);
  if (m.msg_flags & MSG_CTRUNC) return sf__err(SF_EPROTO, "joining the job: more descriptors than one message may carry");
  if (h->length) {
    size_t got = 0;
    *body = malloc(h->length);
    if (*body == NULL) return sf__err(SF_ENOMEM, "joining the job: out of memory");
    while (got < h->length) {
      ssize_t r = recv(fd, *body + got, h->length - got, 0);
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) return sf__err(SF_EPROTO, "joining the job: dom0's message ended %zu bytes into its %u-byte body", got, h->length);
      got += (size_t)r;
    }
  }
  return 0;
}

int sf_join_read(int fd, int timeout_ms, sf_join *out) {
  double deadline = timeout_ms < 0 ? -1 : sf_now() + timeout_ms * 1e-3;
  int *fds = NULL, nfd = 0, rc = 0, need = 0;
  unsigned char *body = NULL;
  sf__jhdr h;
  memset(out, 0, sizeof *out);
  fds = malloc(sizeof(int) * (SF_MAX_RANKS * SF_MAX_RANKS + SF_JOIN_FDS_MAX));
  if (fds == NULL) return sf__err(SF_ENOMEM, "joining the job: out of memory");
  /* JOIN */
  rc = sf__jrecv(fd, deadline, &h, &body, fds, &nfd, SF_MAX_RANKS * SF_MAX_RANKS);
  if (rc < 0) goto fail;
  if (h.type != SF__J_JOIN || h.nfds != 0 || nfd != 0 || h.length < 12) {
    rc = sf__err(SF_EPROTO, "joining the job: expected JOIN first, got type %u (%u bytes, %d fds)", h.type, h.length, nfd);
    goto fail;
  }
  {
    uint32_t v[3];
    memcpy(v, body, 12);
    if (v[0] < 1 || v[0] > SF_MAX_RANKS || (size_t)h.length != 12 + 4 * (size_t)v[0] + 8 * (size_t)v[2] ||
        v[2] > (uint32_t)SF_MAX_RANKS * SF_MAX_RANKS) {
      rc = sf__err(SF_EPROTO, "joining the job: JOIN of %u bytes does not hold %u ranks and %u links", h.length, v[0], v[2]);
      goto fail;
    }
    out->size = (int)v[0];
    out->host = (int)v[1];
    out->nlinks = (int)v[2];
    out->host_of = malloc(sizeof(int) * (size_t)out->size);
    out->links = calloc((size_t)(out->nlinks ? out->nlinks : 1), sizeof *out->links);
    if (out->host_of == NULL || out->links == NULL) {
      rc = sf__err(SF_ENOMEM, "joining the job: out of memory");
      goto fail;
    }
    for (int r = 0; r < out->size; r++) {
      uint32_t x;
      memcpy(&x, body + 12 + 4 * r, 4);
      if (x >= SF_MAX_RANKS) {
        rc = sf__err(SF_EPROTO, "joining the job: rank %d on host %u (ids are below %d)", r, x, SF_MAX_RANKS);
        goto fail;
      }
      out->host_of[r] = (int)x;
    }
    for (int i = 0; i < out->nlinks; i++) {
      uint32_t pair[2];
      memcpy(pair, body + 12 + 4 * (size_t)out->size + 8 * (size_t)i, 8);
      if (pair[1] >= (uint32_t)out->size || out->host_of[pair[1]] == out->host) {
        rc = sf__err(SF_EPROTO, "joining the job: link %d goes to rank %u, not a rank of another host", i, pair[1]);
        goto fail;
      }
      out->links[i].local = (int)pair[0];
      out->links[i].peer = (int)pair[1];
      out->links[i].fd = -1;
    }
  }
  free(body);
  body = NULL;
  /* FDS, then GO */
  need = out->nlinks;
  for (;;) {
    rc = sf__jrecv(fd, deadline, &h, &body, fds, &nfd, need);
    if (rc < 0) goto fail;
    free(body);
    body = NULL;
    if (h.type == SF__J_FDS) {
      if (nfd > need) {
        rc = sf__err(SF_EPROTO, "joining the job: %d descriptors for %d links", nfd, need);
        goto fail;
      }
      continue;
    }
    if (h.type == SF__J_GO && nfd == need) break;
    rc = sf__err(SF_EPROTO, "joining the job: type %u with %d of %d descriptors received", h.type, nfd, need);
    goto fail;
  }
  for (int i = 0; i < out->nlinks; i++) out->links[i].fd = fds[i];
  free(fds);
  return 0;

fail:
  free(body);
  for (int i = 0; i < nfd; i++) close(fds[i]);
  free(fds);
  sf_join_free(out);
  return rc;
}

void sf_join_free(sf_join *j) {
  if (j == NULL) return;
  free(j->host_of);
  free(j->links);
  j->host_of = NULL;
  j->links = NULL;
}
