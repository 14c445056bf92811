/*
 * program.c: which program the user named, decided as mpi-compat/launcher/program.ts decides
 * it (that module prepares JavaScript and TypeScript for the Node launcher and sfnode; this one
 * finds the executables this launcher runs).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "sfl.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* path.extname: from the last '.' of the last component, unless that dot starts it. */
static const char *sfl__ext(const char *path) {
  const char *base = strrchr(path, '/'), *dot;
  base = base ? base + 1 : path;
  dot = strrchr(base, '.');
  return dot && dot != base ? dot : "";
}

sfl_kind sfl_kind_of(const char *program) {
  char trimmed[PATH_MAX];
  const char *ext;
  size_t n = strlen(program);
  /* path.resolve drops trailing slashes before extname looks */
  if (n >= sizeof trimmed) return SFL_EXECUTABLE;
  memcpy(trimmed, program, n + 1);
  while (n > 1 && trimmed[n - 1] == '/') trimmed[--n] = '\0';
  ext = sfl__ext(trimmed);
  if (!strcmp(ext, ".ts") || !strcmp(ext, ".mts") || !strcmp(ext, ".cts")) return SFL_TYPESCRIPT;
  if (!strcmp(ext, ".js") || !strcmp(ext, ".mjs") || !strcmp(ext, ".cjs")) return SFL_JAVASCRIPT;
  return SFL_EXECUTABLE;
}

/* path.resolve: cwd joined with p, "." and ".." and repeated slashes folded, lexically. */
static int sfl__absolute(const char *p, char *out, size_t len) {
  char joined[PATH_MAX * 2];
  size_t o = 0;
  if (p[0] == '/') {
    snprintf(joined, sizeof joined, "%s", p);
  } else {
    char cwd[PATH_MAX];
    if (getcwd(cwd, sizeof cwd) == NULL) return -1;
    if ((size_t)snprintf(joined, sizeof joined, "%s/%s", cwd, p) >= sizeof joined) return -1;
  }
  for (const char *s = joined; *s;) {
    const char *e;
    size_t k;
    while (*s == '/') s++;
    if (!*s) break;
    e = strchr(s, '/');
    k = e ? (size_t)(e - s) : strlen(s);
    if (k == 1 && s[0] == '.') {
      /* nothing */
    } else if (k == 2 && s[0] == '.' && s[1] == '.') {
      while (o > 0 && out[o - 1] != '/') o--;
      if (o > 0) o--;
    } else {
      if (o + 1 + k + 1 > len) return -1;
      out[o++] = '/';
      memcpy(out + o, s, k);
      o += k;
    }
    s += k;
  }
  if (o == 0) out[o++] = '/';
  out[o] = '\0';
  return 0;
}

static int sfl__in_path(const char *name, char *out, size_t len) {
  const char *path = getenv("PATH");
  if (path == NULL) return -1;
  for (const char *s = path; *s;) {
    const char *e = strchr(s, ':');
    size_t k = e ? (size_t)(e - s) : strlen(s);
    if (k > 0) {
      char dir[PATH_MAX], cand[PATH_MAX];
      struct stat st;
      if (k < sizeof dir) {
        memcpy(dir, s, k);
        dir[k] = '\0';
        if ((size_t)snprintf(cand, sizeof cand, "%s/%s", dir, name) < sizeof cand && access(cand, X_OK) == 0 &&
            stat(cand, &st) == 0 && S_ISREG(st.st_mode) && sfl__absolute(cand, out, len) == 0)
          return 0;
      }
    }
    s += k;
    if (*s == ':') s++;
  }
  return -1;
}

int sfl_resolve(const char *program, char *out, size_t len, char *err, size_t errlen) {
  struct stat st;
  if (sfl__absolute(program, out, len) < 0 || stat(out, &st) != 0) {
    if (strchr(program, '/') != NULL || sfl__in_path(program, out, len) < 0) {
      snprintf(err, errlen, "program not found: %s", program);
      return -1;
    }
    if (stat(out, &st) != 0) {
      snprintf(err, errlen, "program not found: %s", program);
      return -1;
    }
  }
  if (S_ISDIR(st.st_mode)) {
    snprintf(err, errlen, "program is a directory: %s", program);
    return -1;
  }
  if (access(out, X_OK) != 0) {
    snprintf(err, errlen, "program is neither JavaScript, TypeScript nor executable: %s", program);
    return -1;
  }
  return 0;
}
