/*
 * internal.h: helpers shared by the files of native/lazy (not part of sf_lazy.h): messages,
 * clocks, and what Debian 12's kernel headers (6.1) lack of userfaultfd while this project's
 * kernels (6.x, up to 6.18 here) have it.
 */
#ifndef SF_LAZY_INTERNAL_H
#define SF_LAZY_INTERNAL_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <linux/userfaultfd.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <time.h>

#ifndef UFFD_USER_MODE_ONLY
#define UFFD_USER_MODE_ONLY 1
#endif
#ifndef UFFD_FEATURE_POISON
#define UFFD_FEATURE_POISON (1 << 14)
#endif
#ifndef _UFFDIO_POISON
#define _UFFDIO_POISON (0x08)
struct uffdio_poison {
  struct uffdio_range range;
  __u64 mode;
  __s64 updated;
};
#define UFFDIO_POISON _IOWR(UFFDIO, _UFFDIO_POISON, struct uffdio_poison)
#endif
#ifndef USERFAULTFD_IOC_NEW
#define USERFAULTFD_IOC_NEW _IO(0xAA, 0x00)
#endif

/* snprintf into err (when given); always returns 0 so callers can `return sf__fmt(...), -E`. */
static inline int sf__fmt(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static inline int sf__fmt(char *err, size_t errlen, const char *fmt, ...) {
  if (err != NULL && errlen > 0) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
  }
  return 0;
}

static inline uint64_t sf__now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* 1 when the n bytes at p are all zero (zeromap.c). */
int sf__all_zero(const void *p, size_t n);

/* 0 when [addr, addr + length) is mapped and readable, else -EFAULT with err set, prefixed by
 * `what` (zeromap.c). */
int sf__range_readable(const void *addr, uint64_t length, const char *what, char *err, size_t errlen);

/* 1 when [addr, addr + length) overlaps a lazy region of this process (region.c): such memory
 * must not be served or scanned by a forked server, which would read missing pages as zero. */
int sf__lazy_overlaps(const void *addr, uint64_t length);

#endif
