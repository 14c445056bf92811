/*
 * job.c: a job's placement (world rank -> host, local rank), the host's shared region,
 * attach/destroy, the abort word, deaths reported by parents, failure-report flags.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

static long sf__env_long(const char *name, long dflt) {
  const char *v = getenv(name);
  char *end;
  long x;
  if (v == NULL || *v == '\0') return dflt;
  errno = 0;
  x = strtol(v, &end, 10);
  if (errno != 0 || *end != '\0') return dflt;
  return x;
}

static void sf__job_free(sf_job *job) {
  if (job == NULL) return;
  if (job->evfd)
    for (int i = 0; i < job->nlocal; i++)
      if (job->evfd[i] >= 0) close(job->evfd[i]);
  if (job->ctl) munmap(job->ctl, job->region_bytes);
  free(job->evfd);
  free(job->host_of);
  free(job->local_of);
  free(job->local_world);
  free(job->links);
  free(job);
}

int sf_job_create(sf_job **out, const sf_job_options *opts) {
  sf_job *job = NULL;
  void *region;
  size_t n, ring, stride, ctl_bytes, coll_off, total;
  long ncpu, t;
  int rc;

  if (out == NULL || opts == NULL) return sf__err(SF_EINVAL, "sf_job_create: out and opts are required");
  *out = NULL;
  if (opts->size < 1 || opts->size > SF_MAX_RANKS)
    return sf__err(SF_ERANGE, "size %d out of range 1..%d", opts->size, SF_MAX_RANKS);

  job = calloc(1, sizeof *job);
  if (job == NULL) return sf__err(SF_ENOMEM, "sf_job_create: out of memory");
  job->size = opts->size;
  job->rank = -1;
  job->me = -1;
  job->epfd = -1;
  job->host = opts->host_of ? opts->host : 0;
  job->host_of = calloc((size_t)job->size, sizeof *job->host_of);
  job->local_of = calloc((size_t)job->size, sizeof *job->local_of);
  job->local_world = calloc((size_t)job->size, sizeof *job->local_world);
  job->links = calloc((size_t)job->size, sizeof *job->links);
  if (!job->host_of || !job->local_of || !job->local_world || !job->links) {
    rc = sf__err(SF_ENOMEM, "sf_job_create: out of memory");
    goto fail;
  }
  {
    /* Local ranks are numbered in world order on each host. */
    int count[SF_MAX_RANKS] = {0};
    for (int r = 0; r < job->size; r++) {
      int h = opts->host_of ? opts->host_of[r] : 0;
      if (h < 0 || h >= SF_MAX_RANKS) {
        rc = sf__err(SF_ERANGE, "sf_job_create: rank %d has host id %d, out of range 0..%d", r, h, SF_MAX_RANKS - 1);
        goto fail;
      }
      job->host_of[r] = h;
      job->local_of[r] = count[h]++;
      if (h == job->host) job->local_world[job->local_of[r]] = r;
    }
    job->nlocal = count[job->host];
    if (job->nlocal == 0) {
      rc = sf__err(SF_EINVAL, "sf_job_create: no rank of the job is on host %d", job->host);
      goto fail;
    }
  }
  n = (size_t)job->nlocal;

  ring = opts->ring_bytes;
  if (ring == 0) ring = (size_t)sf__env_long("SFMPI_RING_BYTES", 0);
  if (ring == 0) ring = n <= 4 ? (1u << 20) : n <= 16 ? (256u << 10) : (128u << 10);
  if (ring < 4096 || (ring & (ring - 1)) != 0 || ring > (1u << 30)) {
    rc = sf__err(SF_EINVAL, "ring_bytes %zu must be a power of two in 4096..2^30", ring);
    goto fail;
  }
  job->ring_bytes = ring;
  job->eager_limit = opts->eager_limit ? opts->eager_limit : (size_t)sf__env_long("SFMPI_EAGER_BYTES", 64L << 10);
  if (job->eager_limit > ring / 4) job->eager_limit = ring / 4;

  t = opts->wait_timeout_ms;
  if (t == 0) {
    t = sf__env_long("SFMPI_TIMEOUT_MS", 0);
    if (t <= 0) t = sf__env_long("SFMPI_WAIT_TIMEOUT_MS", SF_WAIT_TIMEOUT_DEFAULT_MS);
  }
  job->timeout_ms = t > INT_MAX ? INT_MAX : (int)t;

  ncpu = sysconf(_SC_NPROCESSORS_ONLN);
  if (ncpu < 1) ncpu = 1;
  job->spin_us = opts->spin_us;
  /* Ranks that have a core each spin up to 1 ms before sleeping: measured with two busy
   * processes beside a 2-rank job on 2 cores, 8-byte latency was 9.2 us with a 20 us spin (the
   * futex wake-up path) and 0.4 us with 1-2 ms, as good as MPICH, which never sleeps. When ranks
   * outnumber cores a waiter must yield its core at once, so it spins only 2 us. */
  if (job->spin_us == 0) job->spin_us = (int)sf__env_long("SFMPI_SPIN_US", (long)n <= ncpu ? 1000 : 2);
  job->cma = opts->cma;
  if (job->cma == 0) job->cma = sf__env_long("SFMPI_CMA", 1) ? 1 : -1;
  job->cma_min = opts->cma_min;
  if (job->cma_min == 0) {
    /* Measured on this 2-core VM (OSU latency, 2 ranks, beside MPICH in the same run): a
     * rendezvous read straight from the sender's buffer (RTS, one process_vm_readv, FIN) beat
     * the two copies through the ring from 8 KiB up (8 KiB: 1.42 us against 1.71 us eager,
     * 32 KiB: 2.29 against 5.02) and lost below (4 KiB: 1.19 against 1.09), so a link that can
     * read directly sends eagerly only up to 4 KiB, as Open MPI's vader does. Larger messages
     * keep the single copy too: the ring pipeline (both ranks copying cache-sized chunks) moved
     * 1 MiB in 36 us while memory was fast, but in 440 us during spells when every copy ran ~4x
     * slower, where process_vm_readv kept 81 us, as MPICH did. SFMPI_CMA_MIN_BYTES=2097152
     * trades the single copy for the pipeline's peak up to 2 MiB. */
    long m = sf__env_long("SFMPI_CMA_MIN_BYTES", 4L << 10);
    job->cma_min = m < 0 ? 0 : (size_t)m;
  }
  {
    /* Measured beside MPICH (OSU bandwidth, windows of 64): eager behind a waiting rendezvous
     * took 8 KiB from 0.82x to 1.26x MPICH, but 16 KiB from 1.89x down to 1.49x (two copies
     * through the ring lose to one process_vm_readv there), so only up to 8 KiB. */
    long m = sf__env_long("SFMPI_PIPE_EAGER_BYTES", 8L << 10);
    job->pipe_eager = m < 0 ? 0 : (size_t)m;
  }

  /* Eventfds of every local rank, made before the fork so that every local rank can ring every
   * other when it sleeps in epoll (SF__SLEEP_EVENT). */
  job->evfd = malloc(n * sizeof *job->evfd);
  if (job->evfd == NULL) {
    rc = sf__err(SF_ENOMEM, "sf_job_create: out of memory");
    goto fail;
  }
  for (size_t i = 0; i < n; i++) job->evfd[i] = -1;
  for (size_t i = 0; i < n; i++) {
    job->evfd[i] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (job->evfd[i] < 0) {
      rc = sf__errno("eventfd for a rank's doorbell");
      goto fail;
    }
  }

  stride = sizeof(sf__ring_hdr) + ring;
  ctl_bytes = sizeof(sf__ctl) + n * sizeof(sf__slot);
  ctl_bytes = (ctl_bytes + 63) & ~(size_t)63;
  coll_off = ctl_bytes;
  ctl_bytes += 2 * n * SF__COLL_SLOT;
  ctl_bytes = (ctl_bytes + 4095) & ~(size_t)4095;
  total = ctl_bytes + n * n * stride;
  region = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (region == MAP_FAILED) {
    rc = sf__errno("mmap of the shared job region");
    goto fail;
  }
  job->ctl = region;
  job->region_bytes = total;
  job->ctl->magic = SF__MAGIC;
  job->ctl->version = SF_DATAPLANE_VERSION;
  job->ctl->nlocal = (int32_t)n;
  job->ctl->world = job->size;
  job->ctl->ring_bytes = ring;
  job->ctl->ring_stride = stride;
  job->ctl->ring_off = ctl_bytes;
  job->ctl->coll_off = coll_off;
  job->ctl->region_bytes = total;
  /* Only while every rank has a core: its waits then spin long and rarely sleep, so the
   * sleeper's membarrier (2-4 us here, IPIs to the running peers) is rare, and every frame saves
   * its fence. Ranks that outnumber the cores sleep at almost every wait: they keep the fence. */
  job->ctl->asym = (long)n <= ncpu && sf__asym_available();
  atomic_store(&job->ctl->abort_rank, -1);
  for (size_t i = 0; i < n; i++) atomic_store(&job->ctl->slots[i].wstatus, -1);
  job->ctl->slots[0].pid = (int32_t)getpid();
  job->next_id = 1;
  *out = job;
  return 0;

fail:
  sf__job_free(job);
  return rc;
}

static int sf__check_rank(const sf_job *job, int rank, const char *fn) {
  if (job == NULL) return sf__err(SF_EINVAL, "%s: job is NULL", fn);
  if (rank < 0 || rank >= job->size) return sf__err(SF_ERANGE, "rank %d out of range for a job of size %d", rank, job->size);
  return 0;
}

int sf_job_set_pid(sf_job *job, int rank, pid_t pid) {
  int rc = sf__check_rank(job, rank, "sf_job_set_pid");
  if (rc < 0) return rc;
  if (!sf__is_local(job, rank)) return sf__err(SF_EINVAL, "sf_job_set_pid: rank %d is on host %d, not this host", rank, job->host_of[rank]);
  atomic_store(&sf__slot_of(job, job->local_of[rank])->pid, (int32_t)pid);
  return 0;
}

int sf_job_attach(sf_job *job, int rank) {
  int rc = sf__check_rank(job, rank, "sf_job_attach");
  if (rc < 0) return rc;
  if (job->rank >= 0) return sf__err(SF_ESTATE, "sf_job_attach: already attached as rank %d", job->rank);
  if (!sf__is_local(job, rank))
    return sf__err(SF_EINVAL, "sf_job_attach: rank %d is on host %d, this region is host %d's", rank, job->host_of[rank], job->host);
  if (job->ctl->magic != SF__MAGIC || job->ctl->version != SF_DATAPLANE_VERSION)
    return sf__err(SF_EPROTO, "sf_job_attach: bad region magic/version");
  job->rank = rank;
  job->me = job->local_of[rank];
  /* Registered, this process's frames skip the fence before the wake check; unregistered (the
   * call failed), it keeps the fence, which pairs with the sleepers' barrier as well. */
  job->asym = job->ctl->asym && sf__asym_register();
  for (int l = 0; l < job->nlocal; l++) {
    int w = job->local_world[l];
    job->links[w] = sf__shm_link_new(job, w);
    if (job->links[w] == NULL) return sf__err(SF_ENOMEM, "sf_job_attach: out of memory for the links");
  }
  atomic_store(&sf__slot_of(job, job->me)->pid, (int32_t)getpid());
  atomic_store(&sf__slot_of(job, job->me)->state, SF__RANK_RUNNING);
  return 0;
}

int sf_job_add_link_fd(sf_job *job, int peer, int fd) {
  int rc = sf__check_rank(job, peer, "sf_job_add_link_fd");
  sf__link *l;
  if (rc < 0) return rc;
  if (job->rank < 0) return sf__err(SF_ESTATE, "sf_job_add_link_fd: attach first");
  if (sf__is_local(job, peer)) return sf__err(SF_EINVAL, "sf_job_add_link_fd: rank %d is on this host", peer);
  if (job->links[peer] != NULL) return sf__err(SF_ESTATE, "sf_job_add_link_fd: rank %d has a link already", peer);
  l = sf__tcp_link_new(job, peer, fd);
  if (l == NULL) return -1; /* message set by the constructor */
  job->links[peer] = l;
  job->nremote++;
  return 0;
}

void sf_job_destroy(sf_job *job) {
  sf__unexp *u, *un;
  struct sf_req *q, *qn;
  if (job == NULL) return;
  for (u = job->unexp_head; u; u = un) {
    un = u->next;
    free(u->data);
    free(u);
  }
  for (q = job->freelist; q; q = qn) {
    qn = q->next;
    free(q);
  }
  for (int r = 0; r < job->size; r++) {
    sf__link *l = job->links[r];
    sf__out *o, *on;
    if (l == NULL) continue;
    /* Pending requests belong to the caller; queued control frames are ours. */
    for (o = l->outq_head; o; o = on) {
      on = o->next;
      if (o->req == NULL) free(o);
    }
    l->ops->close(l);
  }
  if (job->epfd >= 0) close(job->epfd);
  sf__job_free(job);
}

int sf_job_rank(const sf_job *job) { return job ? job->rank : -1; }
int sf_job_size(const sf_job *job) { return job ? job->size : 0; }
int sf_job_host(const sf_job *job) { return job ? job->host : -1; }
int sf_job_local_count(const sf_job *job) { return job ? job->nlocal : 0; }

int sf_job_host_of(const sf_job *job, int rank) {
  if (job == NULL || rank < 0 || rank >= job->size) return -1;
  return job->host_of[rank];
}

int sf_job_local_world(const sf_job *job, int local) {
  if (job == NULL || local < 0 || local >= job->nlocal) return -1;
  return job->local_world[local];
}

pid_t sf_job_pid(const sf_job *job, int rank) {
  if (job == NULL || rank < 0 || rank >= job->size || !sf__is_local(job, rank)) return 0;
  return (pid_t)atomic_load(&sf__slot_of(job, job->local_of[rank])->pid);
}

int sf_job_mark_finished(sf_job *job) {
  if (job == NULL || job->rank < 0) return sf__err(SF_ESTATE, "sf_job_mark_finished: not attached");
  atomic_store(&sf__slot_of(job, job->me)->state, SF__RANK_FINISHED);
  /* Remote peers learn it from a BYE frame: after it, a closed connection is no alarm. */
  for (int r = 0; r < job->size; r++) {
    sf__link *l = job->links[r];
    if (l && !sf__is_local(job, r) && l->state == SF__LINK_UP) sf__put_ctl(job, l, SF__F_BYE, 0, NULL, 0);
  }
  sf__push_out(job);
  return 0;
}

void sf_job_mark_fail_reported(sf_job *job, int rank) {
  if (job && rank >= 0 && rank < job->size && sf__is_local(job, rank))
    atomic_store(&sf__slot_of(job, job->local_of[rank])->fail_reported, 1);
}

int sf_job_fail_reported(const sf_job *job, int rank) {
  if (job == NULL || rank < 0 || rank >= job->size || !sf__is_local(job, rank)) return 0;
  return (int)atomic_load(&sf__slot_of(job, job->local_of[rank])->fail_reported);
}

int sf_job_claim_fail_report(sf_job *job, int rank) {
  if (job == NULL || rank < 0 || rank >= job->size) return 0;
  /* A rank of another host is reported by its own host: its claim is made there. */
  if (!sf__is_local(job, rank)) return 1;
  return atomic_exchange(&sf__slot_of(job, job->local_of[rank])->fail_reported, 1) == 0;
}

int sf_job_finished(const sf_job *job, int rank) {
  if (job == NULL || rank < 0 || rank >= job->size || !sf__is_local(job, rank)) return 0;
  return atomic_load(&sf__slot_of(job, job->local_of[rank])->state) == SF__RANK_FINISHED;
}

void sf_job_note_death(sf_job *job, int rank, int wstatus) {
  sf__slot *s;
  if (job == NULL || rank < 0 || rank >= job->size || !sf__is_local(job, rank)) return;
  s = sf__slot_of(job, job->local_of[rank]);
  atomic_store(&s->wstatus, wstatus);
  /* A rank that finished and then exited is not a death; one that exited normally before
   * finishing, or died by a signal, is. */
  {
    uint32_t st = atomic_load(&s->state);
    if (st != SF__RANK_FINISHED) atomic_store(&s->state, SF__RANK_DEAD);
  }
  /* Every other rank of the host wakes, this process's own rank too (its thread may wait). */
  for (int l = 0; l < job->nlocal; l++)
    if (l != job->local_of[rank]) sf__wake_local(job, l);
}

/* ---- abort ---------------------------------------------------------------------------------- */

void sf__note_abort(sf_job *job, int rank, int code, const char *cause) {
  int32_t expected = -1;
  if (atomic_compare_exchange_strong(&job->ctl->abort_rank, &expected, rank)) {
    atomic_store(&job->ctl->abort_code, code);
    snprintf(job->ctl->abort_cause, sizeof job->ctl->abort_cause, "%s", cause ? cause : "aborted");
    atomic_store(&job->ctl->abort_ready, 1);
  }
  for (int l = 0; l < job->nlocal; l++)
    if (l != job->me) sf__wake_local(job, l);
}

void sf_job_abort(sf_job *job, int code, const char *cause) {
  unsigned char p[4 + SF__ABORT_CAUSE_MAX];
  size_t n;
  int32_t c = code;
  if (job == NULL) return;
  sf__note_abort(job, job->rank < 0 ? 0 : job->rank, code, cause);
  if (job->rank < 0) return;
  /* Other hosts learn it from an ABORT frame to every remote rank (best effort: a full or
   * broken link is skipped, the job is ending either way). */
  if (cause == NULL) cause = "aborted";
  n = strlen(cause);
  if (n > SF__ABORT_CAUSE_MAX) n = SF__ABORT_CAUSE_MAX;
  memcpy(p, &c, 4);
  memcpy(p + 4, cause, n);
  for (int r = 0; r < job->size; r++) {
    sf__link *l = job->links[r];
    if (l && !sf__is_local(job, r) && l->state == SF__LINK_UP) sf__put_ctl(job, l, SF__F_ABORT, 0, p, 4 + n);
  }
  sf__push_out(job);
}

int sf_job_aborted(const sf_job *job, int *rank, int *code, char *cause, size_t cause_len) {
  int32_t r;
  if (job == NULL) return 0;
  r = atomic_load(&job->ctl->abort_rank);
  if (r < 0) return 0;
  if (rank) *rank = r;
  if (code) *code = atomic_load(&job->ctl->abort_code);
  if (cause && cause_len) {
    if (atomic_load(&job->ctl->abort_ready))
      snprintf(cause, cause_len, "%s", job->ctl->abort_cause);
    else
      snprintf(cause, cause_len, "aborted");
  }
  return 1;
}

void sf_job_set_label(sf_job *job, const char *label) {
  if (job) job->label = label;
}

const char *sf__label(const sf_job *job, const char *dflt) { return job->label ? job->label : dflt; }

/* ---- peers' ends ------------------------------------------------------------------------------ */

int sf_job_peer_status(sf_job *job, int rank, int *wstatus) {
  sf__link *l;
  if (job == NULL || rank < 0 || rank >= job->size || rank == job->rank) return 0;
  l = job->links[rank];
  if (l == NULL) return 0;
  l->ops->health(l, 1);
  if (l->state != SF__LINK_DOWN || l->broken) return 0;
  if (wstatus) *wstatus = l->wstatus;
  return 1;
}

int sf_job_peer_death(sf_job *job, int rank, char *buf, size_t len) {
  sf__link *l;
  if (!sf_job_peer_status(job, rank, NULL)) return 0;
  l = job->links[rank];
  snprintf(buf, len, "%s", l->why);
  return 1;
}
