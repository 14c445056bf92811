/*
 * admission.c: the host's admission control (sf_proc.h), the one implementation for TypeScript
 * tickets (dom0/admission.ts, through the addon) and C jobs (libsfmpi's MPI_Init).
 *
 * Layout: /dev/shm/sfmpi-dom0-<uid>/ (or SFMPI_ADMISSION_DIR), where <pid>-<seq> holds the slot count of one reservation of
 * process <pid>; .lock is flock'ed around check-and-reserve. A file whose pid is gone is pruned.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "sf_proc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

static long sf__next_seq; /* per process; a clone's reservations are named by its own pid */

/* SFMPI_ADMISSION_DIR moves the reservations (a test's private host, a site's choice). */
static void sf__adm_dir(char *buf, size_t len) {
  const char *d = getenv("SFMPI_ADMISSION_DIR");
  if (d && *d)
    snprintf(buf, len, "%s", d);
  else
    snprintf(buf, len, "/dev/shm/sfmpi-dom0-%u", (unsigned)getuid());
}

long sf_admission_limit(char *err, size_t errlen) {
  const char *raw = getenv("SFMPI_MAX_CLONES");
  if (raw != NULL && *raw != '\0') {
    char *end;
    long n;
    errno = 0;
    n = strtol(raw, &end, 10);
    if (errno || *end || n < 0) {
      snprintf(err, errlen, "SFMPI_MAX_CLONES must be a non-negative integer, got \"%s\"", raw);
      return -1;
    }
    return n;
  }
  {
    /* As Node's os.availableParallelism(): the CPUs this process may run on. */
    cpu_set_t set;
    long cpus = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : sysconf(_SC_NPROCESSORS_ONLN);
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    long by_mem = pages > 0 && page > 0 ? (long)((double)pages * (double)page / (256.0 * 1024 * 1024)) : 8;
    long by_cpu = (cpus > 0 ? cpus : 1) * 16;
    long lim = by_cpu < by_mem ? by_cpu : by_mem;
    return lim < 8 ? 8 : lim;
  }
}

static int sf__alive(pid_t pid) { return kill(pid, 0) == 0 || errno == EPERM; }

/* Slots in the directory (open as dirfd), pruning reservations of dead holders. */
static long sf__used(int dirfd) {
  long total = 0;
  int fd2 = dup(dirfd);
  DIR *d = fd2 >= 0 ? fdopendir(fd2) : NULL;
  struct dirent *e;
  if (d == NULL) {
    if (fd2 >= 0) close(fd2);
    return 0;
  }
  while ((e = readdir(d)) != NULL) {
    long pid, seq;
    char buf[32];
    int f;
    ssize_t n;
    if (sscanf(e->d_name, "%ld-%ld", &pid, &seq) != 2 || pid <= 0) continue;
    if (!sf__alive((pid_t)pid)) {
      unlinkat(dirfd, e->d_name, 0);
      continue;
    }
    f = openat(dirfd, e->d_name, O_RDONLY | O_CLOEXEC);
    if (f < 0) continue;
    n = read(f, buf, sizeof buf - 1);
    close(f);
    if (n > 0) {
      buf[n] = '\0';
      total += atol(buf);
    }
  }
  closedir(d);
  return total;
}

/* Opens the directory (made if missing) and takes its lock. Returns the dirfd, the lock fd in
 * *lockfd, or -1 with *err set. */
static int sf__adm_open(int *lockfd, char *err, size_t errlen) {
  char dir[512];
  int dirfd;
  sf__adm_dir(dir, sizeof dir);
  if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
    snprintf(err, errlen, "admission: cannot make %s: %s", dir, strerror(errno));
    return -1;
  }
  dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dirfd < 0) {
    snprintf(err, errlen, "admission: cannot open %s: %s", dir, strerror(errno));
    return -1;
  }
  *lockfd = openat(dirfd, ".lock", O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (*lockfd < 0) {
    snprintf(err, errlen, "admission: cannot open the host lock %s/.lock: %s", dir, strerror(errno));
    close(dirfd);
    return -1;
  }
  /* Held only for a directory scan; the kernel drops it if the holder dies. */
  while (flock(*lockfd, LOCK_EX) != 0) {
    if (errno == EINTR) continue;
    snprintf(err, errlen, "admission: cannot lock %s/.lock: %s", dir, strerror(errno));
    close(*lockfd);
    close(dirfd);
    return -1;
  }
  return dirfd;
}

long sf_admission_reserve(int slots, long limit, char *err, size_t errlen) {
  int lockfd = -1, dirfd, f;
  long used, seq = -1;
  char name[64];
  if (limit < 0) {
    limit = sf_admission_limit(err, errlen);
    if (limit < 0) return -1;
  }
  dirfd = sf__adm_open(&lockfd, err, errlen);
  if (dirfd < 0) return -1;
  used = sf__used(dirfd);
  if (used + slots > limit) {
    snprintf(err, errlen,
             "admission refused: %d clone%s requested, %ld of this host's %ld slots in use (set SFMPI_MAX_CLONES to change the limit)",
             slots, slots == 1 ? "" : "s", used, limit);
    goto out;
  }
  seq = ++sf__next_seq;
  snprintf(name, sizeof name, "%d-%ld", (int)getpid(), seq);
  f = openat(dirfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (f < 0 || dprintf(f, "%d", slots) < 0) {
    snprintf(err, errlen, "admission: cannot write the reservation %s: %s", name, strerror(errno));
    if (f >= 0) close(f);
    seq = -1;
    goto out;
  }
  close(f);
out:
  flock(lockfd, LOCK_UN);
  close(lockfd);
  close(dirfd);
  return seq;
}

void sf_admission_release(long id) {
  char dir[512], path[600];
  if (id < 0) return;
  sf__adm_dir(dir, sizeof dir);
  snprintf(path, sizeof path, "%s/%d-%ld", dir, (int)getpid(), id);
  unlink(path); /* ENOENT: released already */
}

long sf_admission_used(void) {
  char err[200];
  int lockfd = -1, dirfd = sf__adm_open(&lockfd, err, sizeof err);
  long used;
  if (dirfd < 0) return 0;
  used = sf__used(dirfd);
  flock(lockfd, LOCK_UN);
  close(lockfd);
  close(dirfd);
  return used;
}

int sf_admission_precheck(long ranks, char *err, size_t errlen) {
  long limit = sf_admission_limit(err, errlen);
  if (limit < 0) return -1;
  if (ranks - 1 <= limit) return 0;
  snprintf(err, errlen,
           "-n %ld needs %ld clones, beyond this host's admission limit of %ld (set SFMPI_MAX_CLONES to change it)",
           ranks, ranks - 1, limit);
  return -1;
}
