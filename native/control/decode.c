/*
 * decode.c: reading the launcher's control lines (sf_control.h draws them), the launcher's end
 * of the encoder in control.c. It accepts what guest-daemon/control.ts's decodeControl accepts:
 * the JSON grammar of JSON.parse (RFC 8259), then the fields of the line's `ev`.
 *
 * Depends on nothing but libc, so that the native launcher links it without the data plane.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "sf_control.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A JSON value as far as a control line needs one. */
enum { SF__J_OTHER, SF__J_NUM, SF__J_STR };

typedef struct sf__jp {
  const char *p, *end;
} sf__jp;

static void sf__ws(sf__jp *j) {
  while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r')) j->p++;
}

static int sf__hex4(const char *p, unsigned *out) {
  unsigned v = 0;
  for (int i = 0; i < 4; i++) {
    char c = p[i];
    v <<= 4;
    if (c >= '0' && c <= '9') v |= (unsigned)(c - '0');
    else if (c >= 'a' && c <= 'f') v |= (unsigned)(c - 'a' + 10);
    else if (c >= 'A' && c <= 'F') v |= (unsigned)(c - 'A' + 10);
    else return -1;
  }
  *out = v;
  return 0;
}

/* Appends code point `cp` as UTF-8 to out[*o] (cap bytes, NUL kept). */
static void sf__utf8(char *out, size_t cap, size_t *o, unsigned cp) {
  char b[4];
  size_t n;
  if (cp < 0x80) {
    b[0] = (char)cp;
    n = 1;
  } else if (cp < 0x800) {
    b[0] = (char)(0xc0 | (cp >> 6));
    b[1] = (char)(0x80 | (cp & 0x3f));
    n = 2;
  } else if (cp < 0x10000) {
    b[0] = (char)(0xe0 | (cp >> 12));
    b[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
    b[2] = (char)(0x80 | (cp & 0x3f));
    n = 3;
  } else {
    b[0] = (char)(0xf0 | (cp >> 18));
    b[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    b[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    b[3] = (char)(0x80 | (cp & 0x3f));
    n = 4;
  }
  if (out == NULL || *o + n >= cap) return; /* cut: the rest does not fit */
  memcpy(out + *o, b, n);
  *o += n;
}

/* A string at j->p (at its opening quote), unescaped into out (cap bytes; NULL: skip). */
static int sf__str(sf__jp *j, char *out, size_t cap) {
  size_t o = 0;
  if (j->p >= j->end || *j->p != '"') return -1;
  j->p++;
  while (j->p < j->end) {
    unsigned char c = (unsigned char)*j->p++;
    if (c == '"') {
      if (out) out[o < cap ? o : cap - 1] = '\0';
      return 0;
    }
    if (c < 0x20) return -1; /* JSON.parse refuses raw control characters */
    if (c != '\\') {
      if (out && o + 1 < cap) out[o++] = (char)c;
      continue;
    }
    if (j->p >= j->end) return -1;
    c = (unsigned char)*j->p++;
    switch (c) {
    case '"': case '\\': case '/':
      sf__utf8(out, cap, &o, c);
      break;
    case 'b': sf__utf8(out, cap, &o, '\b'); break;
    case 'f': sf__utf8(out, cap, &o, '\f'); break;
    case 'n': sf__utf8(out, cap, &o, '\n'); break;
    case 'r': sf__utf8(out, cap, &o, '\r'); break;
    case 't': sf__utf8(out, cap, &o, '\t'); break;
    case 'u': {
      unsigned cp, lo;
      if (j->end - j->p < 4 || sf__hex4(j->p, &cp) < 0) return -1;
      j->p += 4;
      /* A surrogate pair is one character; a lone surrogate becomes U+FFFD, as a JS string
       * holding one prints. */
      if (cp >= 0xd800 && cp < 0xdc00 && j->end - j->p >= 6 && j->p[0] == '\\' && j->p[1] == 'u' &&
          sf__hex4(j->p + 2, &lo) == 0 && lo >= 0xdc00 && lo < 0xe000) {
        j->p += 6;
        cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
      } else if (cp >= 0xd800 && cp < 0xe000) {
        cp = 0xfffd;
      }
      sf__utf8(out, cap, &o, cp);
      break;
    }
    default:
      return -1;
    }
  }
  return -1; /* unterminated */
}

/* A number by JSON's grammar: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? */
static int sf__num(sf__jp *j, double *out) {
  const char *s = j->p, *p = j->p;
  char buf[64];
  if (p < j->end && *p == '-') p++;
  if (p >= j->end) return -1;
  if (*p == '0') {
    p++;
  } else if (*p >= '1' && *p <= '9') {
    while (p < j->end && *p >= '0' && *p <= '9') p++;
  } else {
    return -1;
  }
  if (p < j->end && *p == '.') {
    p++;
    if (p >= j->end || *p < '0' || *p > '9') return -1;
    while (p < j->end && *p >= '0' && *p <= '9') p++;
  }
  if (p < j->end && (*p == 'e' || *p == 'E')) {
    p++;
    if (p < j->end && (*p == '+' || *p == '-')) p++;
    if (p >= j->end || *p < '0' || *p > '9') return -1;
    while (p < j->end && *p >= '0' && *p <= '9') p++;
  }
  if ((size_t)(p - s) >= sizeof buf) {
    /* Longer than any number a line carries: its value need not be exact, only parsed. */
    *out = NAN;
  } else {
    memcpy(buf, s, (size_t)(p - s));
    buf[p - s] = '\0';
    *out = strtod(buf, NULL);
  }
  j->p = p;
  return 0;
}

static int sf__lit(sf__jp *j, const char *word) {
  size_t n = strlen(word);
  if ((size_t)(j->end - j->p) < n || memcmp(j->p, word, n) != 0) return -1;
  j->p += n;
  return 0;
}

/* Any value, checked and skipped (depth-limited: a line is at most SF_CTL_MAX_LINE bytes). */
static int sf__skip(sf__jp *j, int depth) {
  double d;
  if (depth > 64) return -1;
  sf__ws(j);
  if (j->p >= j->end) return -1;
  switch (*j->p) {
  case '"':
    return sf__str(j, NULL, 0);
  case 't': return sf__lit(j, "true");
  case 'f': return sf__lit(j, "false");
  case 'n': return sf__lit(j, "null");
  case '[':
  case '{': {
    char close = *j->p == '[' ? ']' : '}';
    int object = close == '}';
    j->p++;
    sf__ws(j);
    if (j->p < j->end && *j->p == close) {
      j->p++;
      return 0;
    }
    for (;;) {
      if (object) {
        sf__ws(j);
        if (sf__str(j, NULL, 0) < 0) return -1;
        sf__ws(j);
        if (j->p >= j->end || *j->p != ':') return -1;
        j->p++;
      }
      if (sf__skip(j, depth + 1) < 0) return -1;
      sf__ws(j);
      if (j->p >= j->end) return -1;
      if (*j->p == ',') {
        j->p++;
        continue;
      }
      if (*j->p != close) return -1;
      j->p++;
      return 0;
    }
  }
  default:
    return sf__num(j, &d);
  }
}

/* One field's value: a number, a string (into str), or anything else (skipped). */
static int sf__value(sf__jp *j, int *kind, double *num, char *str, size_t cap) {
  sf__ws(j);
  if (j->p >= j->end) return -1;
  if (*j->p == '"') {
    *kind = SF__J_STR;
    return sf__str(j, str, cap);
  }
  if (*j->p == '-' || (*j->p >= '0' && *j->p <= '9')) {
    *kind = SF__J_NUM;
    return sf__num(j, num);
  }
  *kind = SF__J_OTHER;
  return sf__skip(j, 1);
}

/* Number.isInteger, within int. */
static int sf__int(int kind, double v, int *out) {
  /* No floor(): libsfmpi links without libm. */
  if (kind != SF__J_NUM || !isfinite(v) || v < INT32_MIN || v > INT32_MAX || v != (double)(long long)v) return 0;
  *out = (int)v;
  return 1;
}

/* The fields a line may carry; each seen at most as its last occurrence (JSON.parse keeps the
 * last of duplicate keys). */
enum { F_V, F_EV, F_HOST, F_RANK, F_PID, F_MS, F_CODE, F_SIGNAL, F_CAUSE, F_N };
static const char *const sf__names[F_N] = {"v", "ev", "host", "rank", "pid", "ms", "code", "signal", "cause"};

int sf_ctl_decode(const char *line, size_t len, sf_ctl_msg *out) {
  sf__jp j = {line, line + len};
  int kind[F_N];
  double num[F_N];
  char ev[8], key[16];
  int v, ok;
  for (int i = 0; i < F_N; i++) kind[i] = -1;
  memset(out, 0, sizeof *out);
  ev[0] = '\0';
  sf__ws(&j);
  if (j.p >= j.end || *j.p != '{') return -1;
  j.p++;
  sf__ws(&j);
  if (j.p < j.end && *j.p == '}') {
    j.p++;
  } else {
    for (;;) {
      int f = -1, k;
      double d = 0;
      sf__ws(&j);
      if (sf__str(&j, key, sizeof key) < 0) return -1;
      sf__ws(&j);
      if (j.p >= j.end || *j.p != ':') return -1;
      j.p++;
      for (int i = 0; i < F_N; i++)
        if (strcmp(key, sf__names[i]) == 0) f = i;
      /* A key longer than the buffer was cut: it is none of ours. */
      if (f >= 0 && strlen(key) == sizeof key - 1) f = -1;
      {
        char *str = NULL;
        size_t cap = 0;
        char scratch[1];
        if (f == F_EV) str = ev, cap = sizeof ev;
        else if (f == F_HOST) str = out->host, cap = sizeof out->host;
        else if (f == F_CAUSE) str = out->cause, cap = sizeof out->cause;
        else str = scratch, cap = sizeof scratch;
        if (sf__value(&j, &k, &d, str, cap) < 0) return -1;
        if (f == F_EV && k == SF__J_STR && strlen(ev) == sizeof ev - 1) ev[0] = '\0'; /* cut: not ours */
      }
      if (f >= 0) {
        kind[f] = k;
        num[f] = d;
      }
      sf__ws(&j);
      if (j.p >= j.end) return -1;
      if (*j.p == ',') {
        j.p++;
        continue;
      }
      if (*j.p != '}') return -1;
      j.p++;
      break;
    }
  }
  sf__ws(&j);
  if (j.p != j.end) return -1; /* one value per line */

  if (!sf__int(kind[F_V], num[F_V], &v) || v != SF_CTL_VERSION) return -1;
  if (kind[F_HOST] != SF__J_STR || !sf__int(kind[F_RANK], num[F_RANK], &out->rank) || out->rank < 0) return -1;
  if (kind[F_EV] != SF__J_STR) return -1;
  if (strcmp(ev, "fork") == 0) {
    out->ev = SF_CTL_FORK;
    ok = sf__int(kind[F_PID], num[F_PID], &out->pid) && kind[F_MS] == SF__J_NUM;
    out->ms = num[F_MS];
  } else if (strcmp(ev, "fail") == 0) {
    out->ev = SF_CTL_FAIL;
    ok = sf__int(kind[F_CODE], num[F_CODE], &out->code) && sf__int(kind[F_SIGNAL], num[F_SIGNAL], &out->signal) &&
         out->signal >= 0;
    if (kind[F_CAUSE] != SF__J_STR) snprintf(out->cause, sizeof out->cause, "failed");
  } else if (strcmp(ev, "exit") == 0) {
    out->ev = SF_CTL_EXIT;
    ok = sf__int(kind[F_CODE], num[F_CODE], &out->code);
  } else {
    ok = 0;
  }
  if (out->ev != SF_CTL_FAIL) out->cause[0] = '\0';
  return ok ? 0 : -1;
}

/* Bytes of the UTF-8 sequence starting with lead byte c (1 for a stray byte). */
static size_t sf__seqlen(unsigned char c) {
  if (c >= 0xf0 && c < 0xf8) return 4;
  if (c >= 0xe0) return c < 0xf0 ? 3 : 1;
  if (c >= 0xc0) return 2;
  return 1;
}

size_t sf_ctl_quote(char *out, size_t cap, const char *s, size_t n) {
  size_t o = 0, i = 0;
  if (cap < 3) {
    if (cap) out[0] = '\0';
    return 0;
  }
  out[o++] = '"';
  while (i < n) {
    unsigned char c = (unsigned char)s[i];
    char esc[8];
    size_t k = 0, step = 1;
    const char *from = esc;
    switch (c) {
    case '"': k = (size_t)snprintf(esc, sizeof esc, "\\\""); break;
    case '\\': k = (size_t)snprintf(esc, sizeof esc, "\\\\"); break;
    case '\b': k = (size_t)snprintf(esc, sizeof esc, "\\b"); break;
    case '\f': k = (size_t)snprintf(esc, sizeof esc, "\\f"); break;
    case '\n': k = (size_t)snprintf(esc, sizeof esc, "\\n"); break;
    case '\r': k = (size_t)snprintf(esc, sizeof esc, "\\r"); break;
    case '\t': k = (size_t)snprintf(esc, sizeof esc, "\\t"); break;
    default:
      if (c < 0x20) {
        k = (size_t)snprintf(esc, sizeof esc, "\\u%04x", c);
      } else {
        step = sf__seqlen(c);
        if (i + step > n) step = n - i;
        from = s + i;
        k = step;
      }
    }
    if (o + k + 2 > cap) break; /* the closing quote and the NUL must fit */
    memcpy(out + o, from, k);
    o += k;
    i += step;
  }
  out[o++] = '"';
  out[o] = '\0';
  return o;
}
