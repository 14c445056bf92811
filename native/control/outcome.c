/*
 * outcome.c: a job's outcome as the launcher decides it, from the ranks' control lines (and,
 * for a job across hosts, the hosts it lost). sf_control.h states the policy.
 *
 * Depends on libc and sf_proc_describe (native/proc/status.c) only, so that the native
 * launcher links it without the data plane.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "sf_control.h"
#include "sf_proc.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Failures are kept only within SF_OUTCOME_SETTLE_MS of the first; a job sees a handful. This
 * bounds what a flood of lines can make it hold. */
#define SF__OUTCOME_MAX_FAILURES 1024

typedef struct sf__failure {
  int status;
  int weight; /* 3 a lost host, 2 a signal, 1 an exit code */
  double at;
  char line[SF_CTL_MAX_LINE + 64];
} sf__failure;

struct sf_outcome {
  int size;
  int *exit_code; /* per rank; exited[] says which are known */
  unsigned char *exited;
  int nfail;
  sf__failure *fail; /* SF__OUTCOME_MAX_FAILURES, allocated at the first failure */
  int timed_out;
  double timeout_s;
};

sf_outcome *sf_outcome_new(int size) {
  sf_outcome *o = calloc(1, sizeof *o);
  if (o == NULL) return NULL;
  o->size = size > 0 ? size : 0;
  o->exit_code = calloc((size_t)(o->size ? o->size : 1), sizeof *o->exit_code);
  o->exited = calloc((size_t)(o->size ? o->size : 1), 1);
  if (o->exit_code == NULL || o->exited == NULL) {
    sf_outcome_free(o);
    return NULL;
  }
  return o;
}

void sf_outcome_free(sf_outcome *o) {
  if (o == NULL) return;
  free(o->exit_code);
  free(o->exited);
  free(o->fail);
  free(o);
}

static int sf__outcome_fail(sf_outcome *o, int status, int weight, double now, const char *fmt, const char *a,
                            const char *b) {
  sf__failure *f;
  if (o->nfail > 0 && now - o->fail[0].at > SF_OUTCOME_SETTLE_MS) return 0;
  if (o->fail == NULL) {
    o->fail = malloc(sizeof *o->fail * SF__OUTCOME_MAX_FAILURES);
    if (o->fail == NULL) return 0; /* out of memory: the exit codes still tell */
  }
  if (o->nfail == SF__OUTCOME_MAX_FAILURES) return 0;
  f = &o->fail[o->nfail++];
  f->status = status;
  f->weight = weight;
  f->at = now;
  snprintf(f->line, sizeof f->line, fmt, a, b);
  return o->nfail == 1;
}

int sf_outcome_event(sf_outcome *o, const sf_ctl_msg *m, double now_ms) {
  if (m->ev == SF_CTL_EXIT && m->rank >= 0 && m->rank < o->size) {
    o->exit_code[m->rank] = m->code;
    o->exited[m->rank] = 1;
  }
  if (m->ev == SF_CTL_FAIL) {
    char rank[16];
    int status = m->signal ? 128 + m->signal : m->code > 0 ? m->code : 1;
    snprintf(rank, sizeof rank, "%d", m->rank);
    return sf__outcome_fail(o, status, m->signal ? 2 : 1, now_ms, "rank %s %s", rank, m->cause);
  }
  return 0;
}

int sf_outcome_lost(sf_outcome *o, const char *host, const int *ranks, int n, const char *why, double now_ms) {
  char who[SF_CTL_MAX_LINE], list[SF_CTL_MAX_LINE / 2];
  sf_outcome_rank_list(ranks, n, list, sizeof list);
  snprintf(who, sizeof who, "%s (%s)", host, list);
  return sf__outcome_fail(o, 255, 3, now_ms, "host %s %s", who, why);
}

void sf_outcome_timeout(sf_outcome *o, double seconds) {
  o->timed_out = 1;
  o->timeout_s = seconds;
}

int sf_outcome_failed(const sf_outcome *o) { return o->nfail > 0; }

int sf_outcome_result(const sf_outcome *o, int origin_wstatus, char *line, size_t len) {
  line[0] = '\0';
  if (o->timed_out) {
    char secs[32];
    size_t at;
    int first = 1;
    sf_js_number(o->timeout_s, secs, sizeof secs);
    at = (size_t)snprintf(line, len, "job timed out after %s s", secs);
    for (int r = 0; r < o->size && at < len; r++) {
      if (o->exited[r]) continue;
      at += (size_t)snprintf(line + at, len - at, "%s%d", first ? "; ranks still running: " : ", ", r);
      first = 0;
    }
    return 124;
  }
  if (o->nfail > 0) {
    const sf__failure *best = &o->fail[0];
    for (int i = 1; i < o->nfail; i++)
      if (o->fail[i].weight > best->weight) best = &o->fail[i];
    snprintf(line, len, "%s", best->line);
    return best->status;
  }
  if (origin_wstatus >= 0 && sf_proc_failed(origin_wstatus)) {
    char how[128];
    sf_proc_describe(origin_wstatus, 1, NULL, how, sizeof how);
    snprintf(line, len, "rank 0 %s", how);
    return sf_proc_code(origin_wstatus);
  }
  for (int r = 0; r < o->size; r++) {
    if (o->exited[r] && o->exit_code[r] != 0) {
      snprintf(line, len, "rank %d exited with code %d", r, o->exit_code[r]);
      return o->exit_code[r];
    }
  }
  return 0;
}

void sf_outcome_rank_list(const int *ranks, int n, char *out, size_t len) {
  int contiguous = 1;
  size_t at;
  if (len == 0) return;
  out[0] = '\0';
  if (n <= 0) return;
  if (n == 1) {
    snprintf(out, len, "rank %d", ranks[0]);
    return;
  }
  for (int i = 1; i < n; i++)
    if (ranks[i] != ranks[i - 1] + 1) contiguous = 0;
  if (contiguous) {
    snprintf(out, len, "ranks %d-%d", ranks[0], ranks[n - 1]);
    return;
  }
  at = (size_t)snprintf(out, len, "ranks ");
  for (int i = 0; i < n && at < len; i++) at += (size_t)snprintf(out + at, len - at, i ? ", %d" : "%d", ranks[i]);
}

void sf_js_number(double x, char *out, size_t len) {
  char digits[32], *e;
  int prec, exp10, nd;
  if (isnan(x)) {
    snprintf(out, len, "NaN");
    return;
  }
  if (isinf(x)) {
    snprintf(out, len, x < 0 ? "-Infinity" : "Infinity");
    return;
  }
  if (x == 0) {
    snprintf(out, len, "0");
    return;
  }
  /* The shortest digits that read back as x, as ECMAScript's Number::toString picks them. */
  for (prec = 1; prec <= 17; prec++) {
    snprintf(digits, sizeof digits, "%.*e", prec - 1, x);
    if (strtod(digits, NULL) == x) break;
  }
  e = strchr(digits, 'e');
  exp10 = atoi(e + 1);
  *e = '\0';
  {
    /* digits: "-d.ddd" -> the bare significant digits */
    char sig[24];
    int neg = digits[0] == '-';
    nd = 0;
    for (const char *p = digits + neg; *p; p++)
      if (*p != '.') sig[nd++] = *p;
    while (nd > 1 && sig[nd - 1] == '0') nd--;
    sig[nd] = '\0';
    /* Number::toString: n = exp10 + 1 digits before the point. */
    {
      int n = exp10 + 1;
      const char *sign = neg ? "-" : "";
      if (nd <= n && n <= 21) {
        snprintf(out, len, "%s%s%0*d", sign, sig, n - nd, 0);
        if (n - nd == 0) snprintf(out, len, "%s%s", sign, sig);
      } else if (0 < n && n <= 21) {
        snprintf(out, len, "%s%.*s.%s", sign, n, sig, sig + n);
      } else if (-6 < n && n <= 0) {
        snprintf(out, len, "%s0.%0*d%s", sign, -n, 0, sig);
        if (n == 0) snprintf(out, len, "%s0.%s", sign, sig);
      } else {
        int k = n - 1;
        if (nd == 1)
          snprintf(out, len, "%s%se%c%d", sign, sig, k < 0 ? '-' : '+', abs(k));
        else
          snprintf(out, len, "%s%c.%se%c%d", sign, sig[0], sig + 1, k < 0 ? '-' : '+', abs(k));
      }
    }
  }
}
