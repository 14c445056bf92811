/*
 * job.c: the shared region, fork/attach, abort word, peer deaths, errors, control messages.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <linux/futex.h>

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

/* The last failure's message, per thread: the data plane keeps no process-global state. */
static _Thread_local char sf__errbuf[512];

const char *sf_last_error(void) { return sf__errbuf; }

int sf__err(int code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(sf__errbuf, sizeof sf__errbuf, fmt, ap);
  va_end(ap);
  return code;
}

int sf__errno(const char *what) {
  int e = errno;
  return sf__err(SF_ESYS, "%s: %s", what, strerror(e));
}

const char *sf_error_name(int code) {
  switch (code) {
  case SF_OK: return "SF_OK";
  case SF_EINVAL: return "SF_EINVAL";
  case SF_ENOMEM: return "SF_ENOMEM";
  case SF_ESYS: return "SF_ESYS";
  case SF_ETIMEDOUT: return "SF_ETIMEDOUT";
  case SF_EPEERDIED: return "SF_EPEERDIED";
  case SF_EABORTED: return "SF_EABORTED";
  case SF_ETRUNCATE: return "SF_ETRUNCATE";
  case SF_EPROTO: return "SF_EPROTO";
  case SF_ERANGE: return "SF_ERANGE";
  case SF_ESTATE: return "SF_ESTATE";
  case SF_EMISMATCH: return "SF_EMISMATCH";
  default: return "SF_E?";
  }
}

double sf_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

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

int sf_job_create(sf_job **out, const sf_job_options *opts) {
  sf_job *job = NULL;
  void *region = MAP_FAILED;
  size_t n, ring, stride, ctl_bytes, coll_off, total;
  long ncpu, t;
  int rc;

  if (out == NULL || opts == NULL) return sf__err(SF_EINVAL, "sf_job_create: out and opts are required");
  *out = NULL;
  if (opts->size < 1 || opts->size > SF_MAX_RANKS)
    return sf__err(SF_ERANGE, "size %d out of range 1..%d", opts->size, SF_MAX_RANKS);
  n = (size_t)opts->size;

  ring = opts->ring_bytes;
  if (ring == 0) ring = (size_t)sf__env_long("SFMPI_RING_BYTES", 0);
  if (ring == 0) ring = n <= 4 ? (1u << 20) : n <= 16 ? (256u << 10) : (128u << 10);
  if (ring < 4096 || (ring & (ring - 1)) != 0 || ring > (1u << 30))
    return sf__err(SF_EINVAL, "ring_bytes %zu must be a power of two in 4096..2^30", ring);

  job = calloc(1, sizeof *job);
  if (job == NULL) return sf__err(SF_ENOMEM, "sf_job_create: out of memory");
  job->size = (int)n;
  job->rank = -1;
  job->ring_bytes = ring;
  job->eager_limit = opts->eager_limit ? opts->eager_limit : 64u << 10;
  if (job->eager_limit > ring / 4) job->eager_limit = ring / 4;

  t = opts->wait_timeout_ms;
  if (t == 0) {
    t = sf__env_long("SFMPI_TIMEOUT_MS", 0);
    if (t <= 0) t = sf__env_long("SFMPI_WAIT_TIMEOUT_MS", 60000);
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
    /* Measured on this 2-core VM: the ring pipeline (both ranks copying cache-sized chunks) moved
     * 1 MiB in 36 us while memory was fast, but in 440 us during spells when every copy ran ~4x
     * slower (MPICH's eager sizes slowed alike), where process_vm_readv's single copy kept 81 us,
     * as MPICH did. The single copy is the robust default; SFMPI_CMA_MIN_BYTES=2097152 trades it
     * for the pipeline's peak. */
    long m = sf__env_long("SFMPI_CMA_MIN_BYTES", 64L << 10);
    job->cma_min = m < 0 ? 0 : (size_t)m;
  }

  job->pidfd = malloc(n * sizeof *job->pidfd);
  job->dead = calloc(n, 1);
  job->broken = calloc(n, 1);
  job->out_tail_cache = calloc(n, sizeof *job->out_tail_cache);
  job->outq_head = calloc(n, sizeof *job->outq_head);
  job->outq_tail = calloc(n, sizeof *job->outq_tail);
  if (!job->pidfd || !job->dead || !job->broken || !job->out_tail_cache || !job->outq_head ||
      !job->outq_tail) {
    rc = sf__err(SF_ENOMEM, "sf_job_create: out of memory");
    goto fail;
  }
  for (size_t i = 0; i < n; i++) job->pidfd[i] = -1;

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
  job->ctl->size = (int32_t)n;
  job->ctl->ring_bytes = ring;
  job->ctl->ring_stride = stride;
  job->ctl->ring_off = ctl_bytes;
  job->ctl->coll_off = coll_off;
  job->ctl->region_bytes = total;
  atomic_store(&job->ctl->abort_rank, -1);
  job->ctl->slots[0].pid = (int32_t)getpid();
  job->label = NULL;
  job->next_id = 1;
  *out = job;
  return 0;

fail:
  if (region != MAP_FAILED) munmap(region, total);
  free(job->pidfd);
  free(job->dead);
  free(job->broken);
  free(job->out_tail_cache);
  free(job->outq_head);
  free(job->outq_tail);
  free(job);
  return rc;
}

int sf_job_set_pid(sf_job *job, int rank, pid_t pid) {
  if (job == NULL) return sf__err(SF_EINVAL, "sf_job_set_pid: job is NULL");
  if (rank < 0 || rank >= job->size)
    return sf__err(SF_ERANGE, "rank %d out of range for a job of size %d", rank, job->size);
  atomic_store(&job->ctl->slots[rank].pid, (int32_t)pid);
  return 0;
}

int sf_job_attach(sf_job *job, int rank) {
  if (job == NULL) return sf__err(SF_EINVAL, "sf_job_attach: job is NULL");
  if (job->rank >= 0) return sf__err(SF_ESTATE, "sf_job_attach: already attached as rank %d", job->rank);
  if (rank < 0 || rank >= job->size)
    return sf__err(SF_ERANGE, "rank %d out of range for a job of size %d", rank, job->size);
  if (job->ctl->magic != SF__MAGIC || job->ctl->version != SF_DATAPLANE_VERSION)
    return sf__err(SF_EPROTO, "sf_job_attach: bad region magic/version");
  job->rank = rank;
  atomic_store(&job->ctl->slots[rank].pid, (int32_t)getpid());
  atomic_store(&job->ctl->slots[rank].state, SF__RANK_RUNNING);
  return 0;
}

int sf_job_fork(sf_job *job) {
  pid_t origin = getpid(), pid;
  int r, rc;

  if (job == NULL) return sf__err(SF_EINVAL, "sf_job_fork: job is NULL");
  if (job->rank >= 0) return sf__err(SF_ESTATE, "sf_job_fork: already attached");
  fflush(NULL); /* nothing buffered may be printed twice */
  for (r = 1; r < job->size; r++) {
    pid = fork();
    if (pid < 0) {
      rc = sf__errno("fork");
      goto fail;
    }
    if (pid == 0) {
      /* A clone must not outlive its origin: die with it, and close the race where the origin
       * died before prctl took effect. */
      if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != origin) _exit(127);
      rc = sf_job_attach(job, r);
      if (rc < 0) _exit(127);
      return r;
    }
    sf_job_set_pid(job, r, pid);
  }
  rc = sf_job_attach(job, 0);
  if (rc < 0) goto fail;
  return 0;

fail:
  /* Leave no clone behind: kill and reap those already forked. */
  for (int k = 1; k < r && k < job->size; k++) {
    pid_t p = (pid_t)atomic_load(&job->ctl->slots[k].pid);
    if (p > 0) {
      kill(p, SIGKILL); /* ESRCH: already gone, reaped below either way */
      while (waitpid(p, NULL, 0) < 0 && errno == EINTR) {}
    }
  }
  return rc;
}

void sf_job_destroy(sf_job *job) {
  sf__unexp *u, *un;
  struct sf_req *q, *qn;
  if (job == NULL) return;
  for (int i = 0; i < job->size; i++)
    if (job->pidfd[i] >= 0) close(job->pidfd[i]);
  for (u = job->unexp_head; u; u = un) {
    un = u->next;
    free(u->data);
    free(u);
  }
  for (q = job->freelist; q; q = qn) {
    qn = q->next;
    free(q);
  }
  /* Pending requests belong to the caller; queued control frames are ours. */
  for (int i = 0; i < job->size; i++) {
    sf__out *o, *on;
    for (o = job->outq_head[i]; o; o = on) {
      on = o->next;
      if (o->req == NULL) free(o);
    }
  }
  munmap(job->ctl, job->region_bytes);
  free(job->pidfd);
  free(job->dead);
  free(job->broken);
  free(job->out_tail_cache);
  free(job->outq_head);
  free(job->outq_tail);
  free(job);
}

int sf_job_rank(const sf_job *job) { return job ? job->rank : -1; }
int sf_job_size(const sf_job *job) { return job ? job->size : 0; }
pid_t sf_job_pid(const sf_job *job, int rank) {
  if (job == NULL || rank < 0 || rank >= job->size) return 0;
  return (pid_t)atomic_load(&job->ctl->slots[rank].pid);
}

int sf_job_mark_finished(sf_job *job) {
  if (job == NULL || job->rank < 0) return sf__err(SF_ESTATE, "sf_job_mark_finished: not attached");
  atomic_store(&job->ctl->slots[job->rank].state, SF__RANK_FINISHED);
  return 0;
}

void sf_job_mark_fail_reported(sf_job *job, int rank) {
  if (job && rank >= 0 && rank < job->size) atomic_store(&job->ctl->slots[rank].fail_reported, 1);
}

int sf_job_fail_reported(const sf_job *job, int rank) {
  if (job == NULL || rank < 0 || rank >= job->size) return 0;
  return (int)atomic_load(&job->ctl->slots[rank].fail_reported);
}

int sf_job_claim_fail_report(sf_job *job, int rank) {
  if (job == NULL || rank < 0 || rank >= job->size) return 0;
  return atomic_exchange(&job->ctl->slots[rank].fail_reported, 1) == 0;
}

static long sf__futex(_Atomic uint32_t *addr, int op, uint32_t val, const struct timespec *ts) {
  return syscall(SYS_futex, (uint32_t *)addr, op, val, ts, NULL, 0);
}

void sf__wake(sf_job *job, int rank) {
  sf__slot *s = sf__slot_of(job, rank);
  atomic_fetch_add(&s->bell, 1);
  /* Cannot fail on a valid shared word; a waiter that missed it wakes at its next tick. */
  sf__futex(&s->bell, FUTEX_WAKE, INT_MAX, NULL);
}

void sf_job_abort(sf_job *job, int code, const char *cause) {
  int32_t expected = -1;
  if (job == NULL) return;
  if (atomic_compare_exchange_strong(&job->ctl->abort_rank, &expected, job->rank < 0 ? 0 : job->rank)) {
    atomic_store(&job->ctl->abort_code, code);
    snprintf(job->ctl->abort_cause, sizeof job->ctl->abort_cause, "%s", cause ? cause : "aborted");
    atomic_store(&job->ctl->abort_ready, 1);
  }
  for (int r = 0; r < job->size; r++)
    if (r != job->rank) sf__wake(job, r);
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

/* Exit status of a zombie from /proc/<pid>/stat field 52 (exit_code, wait(2) format). */
static int sf__proc_exit_code(pid_t pid, int *status) {
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
  field = 2;
  while (*p && field < 52) {
    if (*p == ' ') field++;
    p++;
  }
  if (field != 52) return -1;
  *status = atoi(p);
  return 0;
}

static void sf__describe_status(int status, char *buf, size_t len, int finished) {
  if (WIFSIGNALED(status)) {
    int sig = WTERMSIG(status);
    const char *abbrev = sigabbrev_np(sig);
    snprintf(buf, len, "was killed by signal %d (SIG%s)", sig, abbrev ? abbrev : "?");
  } else if (WIFEXITED(status)) {
    snprintf(buf, len, "exited with code %d%s", WEXITSTATUS(status), finished ? "" : " before MPI_Finalize");
  } else {
    snprintf(buf, len, "died");
  }
}

static void sf__open_pidfd(sf_job *job, int r) {
  pid_t pid;
  int fd;
  if (job->pidfd[r] >= 0 || r == job->rank) return;
  pid = (pid_t)atomic_load(&job->ctl->slots[r].pid);
  if (pid <= 0) return;
  fd = (int)syscall(SYS_pidfd_open, pid, 0);
  if (fd >= 0) {
    job->pidfd[r] = fd;
  } else if (errno == ESRCH) {
    job->dead[r] = 1; /* already gone (and reaped) */
  }
}

/* Is rank r dead (exited or zombie)? 1/0. */
static int sf__is_dead(sf_job *job, int r) {
  struct pollfd pfd;
  if (job->dead[r]) return 1;
  sf__open_pidfd(job, r);
  if (job->pidfd[r] < 0) return 0;
  pfd.fd = job->pidfd[r];
  pfd.events = POLLIN;
  pfd.revents = 0;
  if (poll(&pfd, 1, 0) > 0 && (pfd.revents & (POLLIN | POLLHUP | POLLERR))) {
    job->dead[r] = 1;
    return 1;
  }
  return 0;
}

int sf_job_peer_status(sf_job *job, int rank, int *wstatus) {
  siginfo_t si;
  int status = -1;
  pid_t pid;
  if (job == NULL || rank < 0 || rank >= job->size || rank == job->rank) return 0;
  if (!sf__is_dead(job, rank)) return 0;
  pid = (pid_t)atomic_load(&job->ctl->slots[rank].pid);
  memset(&si, 0, sizeof si);
  if (job->rank == 0 && waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid == pid) {
    if (si.si_code == CLD_EXITED)
      status = (si.si_status & 0xff) << 8;
    else
      status = si.si_status & 0x7f;
  } else if (sf__proc_exit_code(pid, &status) != 0) {
    status = -1;
  }
  if (wstatus) *wstatus = status;
  return 1;
}

int sf_job_peer_death(sf_job *job, int rank, char *buf, size_t len) {
  int status, finished;
  if (!sf_job_peer_status(job, rank, &status)) return 0;
  finished = atomic_load(&job->ctl->slots[rank].state) == SF__RANK_FINISHED;
  if (status >= 0)
    sf__describe_status(status, buf, len, finished);
  else
    snprintf(buf, len, "died (pid %d)", (int)sf_job_pid(job, rank));
  return 1;
}

int sf__check_health(sf_job *job, const char *why) {
  int ar, code;
  char cause[256], how[160];
  if (sf_job_aborted(job, &ar, &code, cause, sizeof cause) && ar != job->rank)
    return sf__err(SF_EABORTED, "%s on rank %d: job aborted by rank %d: %s", why, job->rank, ar, cause);
  for (int r = 0; r < job->size; r++) {
    if (r == job->rank) continue;
    if (atomic_load(&job->ctl->slots[r].state) == SF__RANK_FINISHED) continue;
    if (sf_job_peer_death(job, r, how, sizeof how)) {
      if (atomic_load(&job->ctl->slots[r].state) == SF__RANK_FINISHED) continue;
      return sf__err(SF_EPEERDIED, "%s on rank %d: rank %d %s", why, job->rank, r, how);
    }
  }
  return 0;
}

/* Control messages: one JSON line, one write(2). */
static int sf__ctl_write(int fd, const char *line, size_t n) {
  ssize_t w;
  do {
    w = write(fd, line, n);
  } while (w < 0 && errno == EINTR);
  if (w < 0) return sf__errno("write to the launcher control socket");
  if ((size_t)w != n) return sf__err(SF_ESYS, "short write to the launcher control socket");
  return 0;
}

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

int sf_ctl_fork(int fd, int rank, pid_t pid, double ms) {
  char line[256];
  int n;
  if (fd < 0) return 0;
  n = snprintf(line, sizeof line, "{\"ev\":\"fork\",\"rank\":%d,\"pid\":%d,\"ms\":%.3f}\n", rank, (int)pid, ms);
  return sf__ctl_write(fd, line, (size_t)n);
}

int sf_ctl_exit(int fd, int rank, int code) {
  char line[128];
  int n;
  if (fd < 0) return 0;
  n = snprintf(line, sizeof line, "{\"ev\":\"exit\",\"rank\":%d,\"code\":%d}\n", rank, code);
  return sf__ctl_write(fd, line, (size_t)n);
}

int sf_ctl_fail(int fd, int rank, int code, int signal, const char *cause) {
  char esc[3000], line[3600];
  int n;
  if (fd < 0) return 0;
  sf__json_str(esc, sizeof esc, cause ? cause : "failed");
  n = snprintf(line, sizeof line,
               "{\"ev\":\"fail\",\"rank\":%d,\"code\":%d,\"signal\":%d,\"cause\":\"%s\"}\n", rank, code,
               signal, esc);
  return sf__ctl_write(fd, line, (size_t)n);
}
