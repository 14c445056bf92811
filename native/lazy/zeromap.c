/*
 * zeromap.c: which pages of a memory range are all zero, one bit a page (sf_lazy.h).
 *
 * Measured on this project's machine (notes/lazy-memory.md, Q3), per GiB: a content scan reads
 * data pages in 5.5 ms (the first cache line is almost always non-zero) and zero-filled pages
 * in 45-50 ms (every byte must be read), but never-touched anonymous memory in 319 ms, because
 * each read faults the shared zero page in. /proc/self/pagemap answers "never touched" in
 * 1-11 ms per GiB without faulting anything. So: pagemap first for private anonymous mappings,
 * where a page neither present nor swapped can only be zero; a scan for the rest. A private
 * FILE mapping's absent page is not zero (it reads the file), nor is a shared mapping's (it
 * may sit in the page cache), so only anonymous private mappings take the shortcut.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "sf_lazy.h"
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PM_PRESENT (1ull << 63)
#define PM_SWAPPED (1ull << 62)

uint64_t sf_zero_map_bytes(uint64_t length, uint32_t page_size) {
  if (page_size == 0) return 0;
  return ((length + page_size - 1) / page_size + 7) / 8;
}

int sf__all_zero(const void *p, size_t n) {
  const unsigned char *b = (const unsigned char *)p;
  /* Data pages are told apart by their first bytes; the full OR runs only for likely-zero
   * pages, 8 bytes at a time (the compiler vectorizes it). */
  size_t head = n < 64 ? n : 64;
  for (size_t i = 0; i < head; i++)
    if (b[i]) return 0;
  size_t i = head;
  uint64_t acc = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    memcpy(&w, b + i, 8);
    acc |= w;
  }
  for (; i < n; i++) acc |= b[i];
  return acc == 0;
}

/* One mapping of /proc/self/maps. */
typedef struct vma {
  uintptr_t start, end;
  int readable;
  int anon_private; /* private, no file behind it */
} vma;

/* Reads the mappings overlapping [lo, hi). Returns the count (>= 0) or -errno. */
static int read_vmas(uintptr_t lo, uintptr_t hi, vma **out, char *err, size_t errlen) {
  FILE *f = fopen("/proc/self/maps", "re");
  if (f == NULL) {
    int e = errno;
    sf__fmt(err, errlen, "zero map: open /proc/self/maps: %s", strerror(e));
    return -e;
  }
  vma *v = NULL;
  int n = 0, cap = 0;
  char line[4096];
  while (fgets(line, sizeof line, f) != NULL) {
    unsigned long s, e, off, inode;
    char perms[8] = "", dev[16] = "";
    int path_at = 0;
    if (sscanf(line, "%lx-%lx %7s %lx %15s %lu %n", &s, &e, perms, &off, dev, &inode, &path_at) < 6) continue;
    if (e <= lo || s >= hi) continue;
    const char *path = path_at > 0 ? line + path_at : "";
    if (n == cap) {
      cap = cap ? cap * 2 : 16;
      vma *nv = (vma *)realloc(v, (size_t)cap * sizeof *v);
      if (nv == NULL) {
        free(v);
        fclose(f);
        sf__fmt(err, errlen, "zero map: out of memory");
        return -ENOMEM;
      }
      v = nv;
    }
    /* Anonymous: no inode; "[heap]", "[stack]", "[anon:...]" names are anonymous too. */
    int anon = inode == 0 && (path[0] == '\0' || path[0] == '\n' || path[0] == '[');
    v[n].start = s;
    v[n].end = e;
    v[n].readable = perms[0] == 'r';
    v[n].anon_private = anon && perms[3] == 'p';
    n++;
  }
  fclose(f);
  *out = v;
  return n;
}

/* 0 when [lo, hi) is mapped and readable throughout (v: its mappings in order), else -EFAULT
 * with err naming the first address that is not. A hole would crash whoever reads it. */
static int check_covered(const vma *v, int nv, uintptr_t lo, uintptr_t hi, const char *what, char *err,
                         size_t errlen) {
  uintptr_t at = lo;
  for (int i = 0; i < nv && at < hi; i++) {
    if (v[i].start > at) break;
    if (!v[i].readable) {
      sf__fmt(err, errlen, "%s: memory at 0x%lx is not readable", what, (unsigned long)at);
      return -EFAULT;
    }
    at = v[i].end;
  }
  if (at < hi) {
    sf__fmt(err, errlen, "%s: memory at 0x%lx (within [0x%lx, 0x%lx)) is not mapped", what, (unsigned long)at,
            (unsigned long)lo, (unsigned long)hi);
    return -EFAULT;
  }
  return 0;
}

int sf__range_readable(const void *addr, uint64_t length, const char *what, char *err, size_t errlen) {
  uintptr_t lo = (uintptr_t)addr, hi = lo + length;
  vma *v = NULL;
  int nv = read_vmas(lo, hi, &v, err, errlen);
  if (nv < 0) return nv;
  int rc = check_covered(v, nv, lo, hi, what, err, errlen);
  free(v);
  return rc;
}

int64_t sf_zero_map(const void *addr, uint64_t length, uint32_t page_size, uint8_t *bits, char *err,
                    size_t errlen) {
  long host_page = sysconf(_SC_PAGESIZE);
  if (addr == NULL || length == 0 || page_size == 0 || bits == NULL) {
    sf__fmt(err, errlen, "zero map: an address, a length, a page size and a bitmap are needed");
    return -EINVAL;
  }
  uintptr_t lo = (uintptr_t)addr, hi = lo + length;
  if (hi < lo) {
    sf__fmt(err, errlen, "zero map: range wraps around the address space");
    return -EINVAL;
  }
  uint64_t pages = (length + page_size - 1) / page_size;
  memset(bits, 0, (size_t)sf_zero_map_bytes(length, page_size));

  vma *v = NULL;
  int nv = read_vmas(lo, hi, &v, err, errlen);
  if (nv < 0) return nv;
  int rc = check_covered(v, nv, lo, hi, "zero map", err, errlen);
  if (rc < 0) {
    free(v);
    return rc;
  }

  int pm = -1;
  int aligned = page_size == (uint32_t)host_page && lo % (uintptr_t)host_page == 0;
  if (aligned) pm = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC); /* unreadable: scan it all */
  enum { CHUNK = 4096 };
  uint64_t *ent = pm >= 0 ? (uint64_t *)malloc(CHUNK * sizeof(uint64_t)) : NULL;
  uint64_t ent_first = 0, ent_n = 0; /* pages of the range whose entries are in ent */
  int vi = 0;
  int64_t zeros = 0;
  for (uint64_t p = 0; p < pages; p++) {
    uintptr_t a = lo + p * page_size;
    size_t n = (size_t)(p + 1 == pages ? length - p * page_size : page_size);
    while (vi < nv && v[vi].end <= a) vi++;
    int zero = -1; /* unknown until scanned */
    if (ent != NULL && n == page_size && vi < nv && v[vi].anon_private && a + n <= v[vi].end) {
      if (p < ent_first || p >= ent_first + ent_n) {
        uint64_t want = pages - p < CHUNK ? pages - p : CHUNK;
        ssize_t got = pread(pm, ent, want * 8, (off_t)((a / (uintptr_t)host_page) * 8));
        ent_first = p;
        ent_n = got > 0 ? (uint64_t)got / 8 : 0;
      }
      if (p < ent_first + ent_n) {
        uint64_t e = ent[p - ent_first];
        if (!(e & (PM_PRESENT | PM_SWAPPED))) zero = 1;
      }
    }
    if (zero < 0) zero = sf__all_zero((const void *)a, n);
    if (zero) {
      bits[p / 8] |= (uint8_t)(1u << (p % 8));
      zeros++;
    }
  }
  free(ent);
  if (pm >= 0) close(pm);
  free(v);
  return zeros;
}
