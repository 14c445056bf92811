/*
 * cli.c: sfmpirun's command line, the one parser of it (the Node launcher receives the result
 * as a spec, sfmpirun.ts's LaunchSpec). It keeps the grammar and the words the launcher had
 * when commander parsed it:
 *
 *   - options until the program, then everything is the program's (`--` ends options too);
 *   - `-n 4`, `-n4`, `--np 4`, `--np=4`, `-np 4` (MPI's spelling); boolean flags group (`-vn 4`);
 *   - a bad value: error: option '-n, --np <ranks>' argument '0' is invalid. -n must be ...
 *   - an unknown option: error: unknown option '--hostfle' (Did you mean --hostfile?);
 *   - every error is followed by "(run sfmpirun --help for usage)" and exits 1.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "sfl.h"
#include "sf_control.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char sfl__usage[] =
    "Usage: sfmpirun -n <ranks> [options] <program> [args...]\n"
    "\n"
    "Run an MPI job: start the program once and clone it into N ranks at\n"
    "MPI.init()/MPI_Init.\n"
    "\n"
    "Arguments:\n"
    "  program              a .ts, .mts, .js or .mjs file, or an executable built\n"
    "                       with sfmpicc\n"
    "  args                 arguments for the program\n"
    "\n"
    "Options:\n"
    "  -n, --np <ranks>     number of ranks (default: 1)\n"
    "  --timeout <seconds>  kill the job and fail after this long\n"
    "  -v, --verbose        report clone timings per rank and the job time on stderr\n"
    "                       (default: false)\n"
    "  --hostfile <file>    hosts to run on: \"host:slots\" (MPICH) or \"host slots=N\"\n"
    "                       (Open MPI) lines\n"
    "  --host <list>        hosts to run on: a:4,b:4 (or a,a,b: one slot per mention)\n"
    "  --map-by <how>       slot (fill each host in turn, the default) or node (round\n"
    "                       robin)\n"
    "  --oversubscribe      allow more ranks than slots (default: false)\n"
    "  --iface <name>       the cluster network interface (where the launcher\n"
    "                       listens)\n"
    "  --launch <how>       how each host's dom0 comes: ssh, slurm (the default\n"
    "                       inside an allocation), or service (a running\n"
    "                       sfmpi-dom0 on every host)\n"
    "  --dom0-port <port>   the dom0 services' port (--launch service)\n"
    "  -h, --help           display help for command\n"
    "\n"
    "Examples:\n"
    "  $ sfmpirun -n 4 examples/pi.ts              TypeScript ranks (no build step)\n"
    "  $ sfmpirun --hostfile hosts -n 16 ./cpi     across hosts (host:slots or \"host slots=N\" lines)\n"
    "  $ salloc -N 4 sfmpirun -n 8 ./cpi           inside a Slurm allocation: its nodes, started by srun\n"
    "  $ sfmpirun --launch service --hostfile hosts -n 16 ./cpi   dom0 services already running (sfmpi-dom0)\n"
    "  $ sfmpirun -n 8 --timeout 60 job.mjs data.csv\n"
    "  $ sfmpicc -O2 cpi.c -o cpi && sfmpirun -n 8 ./cpi    an unmodified MPI C program\n"
    "  $ sfmpirun -n 2 --verbose ./cpi             clone timings per rank\n"
    "\n"
    "Exit status: 0 when every rank exits 0; otherwise the first failure's code (128+N for signal N,\n"
    "124 for --timeout), with a line on stderr naming the rank and the cause.\n";

enum { O_NP, O_TIMEOUT, O_VERBOSE, O_HOSTFILE, O_HOST, O_MAPBY, O_OVERSUB, O_IFACE, O_LAUNCH, O_DOM0PORT, O_HELP, O_N };

static const struct sfl__option {
  char short_name; /* 0: none */
  const char *long_name;
  const char *flags; /* as the usage and the errors spell it */
  int value;         /* takes a value */
} sfl__options[O_N] = {
    [O_NP] = {'n', "--np", "-n, --np <ranks>", 1},
    [O_TIMEOUT] = {0, "--timeout", "--timeout <seconds>", 1},
    [O_VERBOSE] = {'v', "--verbose", "-v, --verbose", 0},
    [O_HOSTFILE] = {0, "--hostfile", "--hostfile <file>", 1},
    [O_HOST] = {0, "--host", "--host <list>", 1},
    [O_MAPBY] = {0, "--map-by", "--map-by <how>", 1},
    [O_OVERSUB] = {0, "--oversubscribe", "--oversubscribe", 0},
    [O_IFACE] = {0, "--iface", "--iface <name>", 1},
    [O_LAUNCH] = {0, "--launch", "--launch <how>", 1},
    [O_DOM0PORT] = {0, "--dom0-port", "--dom0-port <port>", 1},
    [O_HELP] = {'h', "--help", "-h, --help", 0},
};

static int sfl__fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sfl__fail(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("error: ", stderr);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputs("\n(run sfmpirun --help for usage)\n", stderr);
  return -1;
}

static int sfl__help(void) {
  sfl_write_all(1, sfl__usage, sizeof sfl__usage - 1);
  return 1;
}

/* An exact flag: "-n", "--np", ... (and "-np", MPI's spelling of --np). */
static int sfl__find(const char *arg) {
  if (strcmp(arg, "-np") == 0) return O_NP;
  for (int i = 0; i < O_N; i++) {
    const struct sfl__option *o = &sfl__options[i];
    if (strcmp(arg, o->long_name) == 0) return i;
    if (o->short_name && arg[0] == '-' && arg[1] == o->short_name && arg[2] == '\0') return i;
  }
  return -1;
}

/* JavaScript's trim(), for the ASCII whitespace a shell passes. */
static void sfl__trim(const char *s, const char **b, const char **e) {
  *b = s;
  *e = s + strlen(s);
  while (*b < *e && strchr(" \t\n\r\v\f", **b)) (*b)++;
  while (*e > *b && strchr(" \t\n\r\v\f", (*e)[-1])) (*e)--;
}

/* -n: /^\d+$/ after trimming, a safe integer, >= 1. */
static int sfl__positive_int(const char *v, long *out) {
  const char *b, *e;
  unsigned long long n = 0;
  sfl__trim(v, &b, &e);
  if (b == e) return -1;
  for (const char *p = b; p < e; p++) {
    if (*p < '0' || *p > '9') return -1;
    n = n * 10 + (unsigned long long)(*p - '0');
    if (n > 9007199254740991ull) return -1; /* Number.MAX_SAFE_INTEGER */
  }
  if (n < 1 || n > (unsigned long long)LONG_MAX) return -1;
  *out = (long)n;
  return 0;
}

/* --timeout: Number(value) (decimal, 0x/0o/0b integers, surrounding whitespace), finite, > 0. */
static int sfl__seconds(const char *v, double *out) {
  const char *b, *e, *p;
  char buf[128];
  double x;
  sfl__trim(v, &b, &e);
  if (b == e || (size_t)(e - b) >= sizeof buf) return -1;
  memcpy(buf, b, (size_t)(e - b));
  buf[e - b] = '\0';
  if (buf[0] == '0' && buf[1] && strchr("xXoObB", buf[1])) {
    int base = strchr("xX", buf[1]) ? 16 : strchr("oO", buf[1]) ? 8 : 2;
    char *end;
    if (buf[2] == '\0') return -1;
    errno = 0;
    x = (double)strtoull(buf + 2, &end, base);
    if (*end || errno) return -1;
  } else {
    /* StrDecimalLiteral: [+-] (digits [. [digits]] | . digits) [(e|E) [+-] digits] */
    int digits = 0;
    p = buf;
    if (*p == '+' || *p == '-') p++;
    while (*p >= '0' && *p <= '9') p++, digits++;
    if (*p == '.') {
      p++;
      while (*p >= '0' && *p <= '9') p++, digits++;
    }
    if (!digits) return -1; /* also "Infinity", which is not finite anyway */
    if (*p == 'e' || *p == 'E') {
      p++;
      if (*p == '+' || *p == '-') p++;
      if (*p < '0' || *p > '9') return -1;
      while (*p >= '0' && *p <= '9') p++;
    }
    if (*p) return -1;
    x = strtod(buf, NULL);
  }
  if (!(x > 0) || x > 1.7976931348623157e308) return -1;
  *out = x;
  return 0;
}

static int sfl__apply(sfl_opts *o, int which, const char *value) {
  const struct sfl__option *opt = &sfl__options[which];
  switch (which) {
  case O_NP:
    if (sfl__positive_int(value, &o->np) < 0)
      return sfl__fail("option '%s' argument '%s' is invalid. -n must be a positive integer, got \"%s\"", opt->flags, value, value);
    return 0;
  case O_TIMEOUT:
    if (sfl__seconds(value, &o->timeout) < 0)
      return sfl__fail("option '%s' argument '%s' is invalid. --timeout must be a positive number of seconds, got \"%s\"",
                       opt->flags, value, value);
    return 0;
  case O_VERBOSE: o->verbose = 1; return 0;
  case O_HOSTFILE: o->hostfile = value; return 0;
  case O_HOST: o->host = value; return 0;
  case O_MAPBY: o->map_by = value; return 0;
  case O_OVERSUB: o->oversubscribe = 1; return 0;
  case O_IFACE: o->iface = value; return 0;
  case O_LAUNCH: o->launch = value; return 0;
  case O_DOM0PORT:
    if (sfl__positive_int(value, &o->dom0_port) < 0 || o->dom0_port > 65535)
      return sfl__fail("option '%s' argument '%s' is invalid. --dom0-port must be a port 1..65535, got \"%s\"", opt->flags, value, value);
    return 0;
  default: return sfl__help();
  }
}

/* commander's negativeNumberArg: such an argument is the program, not an option. */
static int sfl__negative_number(const char *a) {
  const char *p = a + 1;
  int digits = 0;
  if (a[0] != '-') return 0;
  while (*p >= '0' && *p <= '9') p++, digits++;
  if (*p == '.') {
    p++;
    digits = 0;
    while (*p >= '0' && *p <= '9') p++, digits++;
  }
  if (!digits) return 0;
  if (*p == 'e') {
    p++;
    if (*p == '+' || *p == '-') p++;
    if (*p < '0' || *p > '9') return 0;
    while (*p >= '0' && *p <= '9') p++;
  }
  return *p == '\0';
}

/* commander's suggestSimilar: optimal string alignment distance, at most 3 edits, similarity
 * above 0.4, every candidate at the best distance. */
static int sfl__distance(const char *a, const char *b) {
  int la = (int)strlen(a), lb = (int)strlen(b), d[64][64];
  if (abs(la - lb) > 3 || la >= 63 || lb >= 63) return la > lb ? la : lb;
  for (int i = 0; i <= la; i++) d[i][0] = i;
  for (int j = 0; j <= lb; j++) d[0][j] = j;
  for (int j = 1; j <= lb; j++) {
    for (int i = 1; i <= la; i++) {
      int cost = a[i - 1] == b[j - 1] ? 0 : 1, m = d[i - 1][j] + 1;
      if (d[i][j - 1] + 1 < m) m = d[i][j - 1] + 1;
      if (d[i - 1][j - 1] + cost < m) m = d[i - 1][j - 1] + cost;
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] && d[i - 2][j - 2] + 1 < m) m = d[i - 2][j - 2] + 1;
      d[i][j] = m;
    }
  }
  return d[la][lb];
}

static int sfl__cmp(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

static int sfl__unknown(const char *flag) {
  const char *similar[O_N];
  char text[256];
  int n = 0, best = 3;
  text[0] = '\0';
  if (strncmp(flag, "--", 2) == 0) {
    const char *word = flag + 2;
    for (int i = 0; i < O_N; i++) {
      const char *c = sfl__options[i].long_name + 2;
      int dist = sfl__distance(word, c), len = (int)(strlen(word) > strlen(c) ? strlen(word) : strlen(c));
      if (strlen(c) <= 1 || (double)(len - dist) / len <= 0.4) continue;
      if (dist < best) {
        best = dist;
        n = 0;
        similar[n++] = sfl__options[i].long_name;
      } else if (dist == best) {
        similar[n++] = sfl__options[i].long_name;
      }
    }
    qsort(similar, (size_t)n, sizeof similar[0], sfl__cmp);
    if (n == 1) snprintf(text, sizeof text, "\n(Did you mean %s?)", similar[0]);
    if (n > 1) {
      size_t at = (size_t)snprintf(text, sizeof text, "\n(Did you mean one of ");
      for (int i = 0; i < n && at < sizeof text; i++) at += (size_t)snprintf(text + at, sizeof text - at, "%s%s", i ? ", " : "", similar[i]);
      if (at < sizeof text) snprintf(text + at, sizeof text - at, "?)");
    }
  }
  return sfl__fail("unknown option '%s'%s", flag, text);
}

int sfl_parse(int argc, char **argv, sfl_opts *o) {
  char group[4096]; /* what is left of a group of short flags: -vn4 -> -n4 */
  const char *arg = NULL;
  int i = 1, rc;
  memset(o, 0, sizeof *o);
  o->np = 1;
  o->prog = -1;
  for (;;) {
    int which;
    if (arg == NULL) {
      if (i >= argc) break;
      arg = argv[i++];
    }
    if (strcmp(arg, "--") == 0) {
      if (i < argc) o->prog = i;
      break;
    }
    which = strlen(arg) > 1 && arg[0] == '-' ? sfl__find(arg) : -1;
    if (which >= 0) {
      const char *value = NULL;
      if (sfl__options[which].value) {
        if (i >= argc) return sfl__fail("option '%s' argument missing", sfl__options[which].flags);
        value = argv[i++];
      }
      if ((rc = sfl__apply(o, which, value)) != 0) return rc;
      arg = NULL;
      continue;
    }
    /* A group after one dash: the first letter is an option; a value takes the rest. */
    if (strlen(arg) > 2 && arg[0] == '-' && arg[1] != '-') {
      char flag[3] = {'-', arg[1], '\0'};
      which = sfl__find(flag);
      if (which >= 0) {
        if (sfl__options[which].value) {
          if ((rc = sfl__apply(o, which, arg + 2)) != 0) return rc;
          arg = NULL;
        } else {
          if ((rc = sfl__apply(o, which, NULL)) != 0) return rc;
          snprintf(group, sizeof group, "-%s", arg + 2);
          arg = group;
        }
        continue;
      }
    }
    /* --name=value */
    if (strncmp(arg, "--", 2) == 0 && strchr(arg + 2, '=') && strchr(arg + 2, '=') > arg + 2) {
      char name[64];
      size_t k = (size_t)(strchr(arg, '=') - arg);
      if (k < sizeof name) {
        memcpy(name, arg, k);
        name[k] = '\0';
        which = sfl__find(name);
        if (which >= 0 && sfl__options[which].value) {
          if ((rc = sfl__apply(o, which, arg + k + 1)) != 0) return rc;
          arg = NULL;
          continue;
        }
      }
    }
    if (strlen(arg) > 1 && arg[0] == '-' && !sfl__negative_number(arg)) {
      /* An unknown option: what follows is not parsed, but a help flag among it still wins. */
      for (int k = i - 1; k < argc; k++)
        if (strcmp(argv[k], "-h") == 0 || strcmp(argv[k], "--help") == 0) return sfl__help();
      if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) return sfl__help();
      return sfl__unknown(arg);
    }
    /* The program; the rest is its own. (What is left of a group is no program: -v5.) */
    if (arg == group) return sfl__unknown(arg);
    o->prog = i - 1;
    break;
  }
  if (o->prog < 0) return sfl__fail("missing required argument 'program'");
  return 0;
}

static size_t sfl__json_opt(char *out, size_t len, const char *key, const char *v) {
  size_t at = (size_t)snprintf(out, len, ",\"%s\":", key);
  if (at >= len) return len;
  if (v == NULL) return at + (size_t)snprintf(out + at, len - at, "null");
  return at + sf_ctl_quote(out + at, len - at, v, strlen(v));
}

int sfl_spec(const sfl_opts *o, char *out, size_t len) {
  size_t at = (size_t)snprintf(out, len, "{\"np\":%ld,\"timeout\":%.17g,\"verbose\":%s,\"oversubscribe\":%s", o->np,
                               o->timeout, o->verbose ? "true" : "false", o->oversubscribe ? "true" : "false");
  const char *keys[] = {"hostfile", "host", "mapBy", "iface", "launch"};
  const char *vals[] = {o->hostfile, o->host, o->map_by, o->iface, o->launch};
  for (int k = 0; k < 5 && at < len; k++) at += sfl__json_opt(out + at, len - at, keys[k], vals[k]);
  if (at < len && o->dom0_port > 0) at += (size_t)snprintf(out + at, len - at, ",\"dom0Port\":%ld", o->dom0_port);
  if (at < len) at += (size_t)snprintf(out + at, len - at, ",\"program\":%d}", o->prog - 1);
  if (at >= len) return -1;
  return (int)at;
}
