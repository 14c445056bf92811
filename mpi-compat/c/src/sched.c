/*
 * sched.c: schedules, the engine of non-blocking and neighbourhood collectives.
 *
 * A schedule is a list of rounds; a round is local steps (copy, combine, unpack), run when the
 * round starts, then messages (sends and receives), posted when it starts; the next round
 * starts once every message of the current one completed. The progress hook (progress.c)
 * advances every schedule in progress, so a collective moves on while its rank is blocked in
 * any other call. Messages go through the data plane's point-to-point API in the
 * communicator's schedule context (ctx + SFM_CTX_NBC) with a tag of their own per collective:
 * MPI has every member start collectives in the same order, so the n-th collective of a
 * communicator has the same tag everywhere, and messages of different collectives never meet.
 *
 *   tag = (nbc_seq mod 2^24) << 6 | part      part: 0, or a direction of a Cartesian neighbour
 */
#include "sfmpi.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { SFM_S_SEND = 1, SFM_S_RECV, SFM_S_COPY, SFM_S_COMBINE, SFM_S_UNPACK };

typedef struct sfm_sop {
  int kind;
  int peer;            /* communicator rank (messages) */
  int part;            /* added to the schedule's tag */
  const void *src;     /* send / copy / combine `in` / unpack input */
  void *dst;           /* receive / copy / combine `inout` / unpack output */
  size_t len;
  int count;           /* unpack: items of dt */
  MPI_Datatype dt;
  sf_req *req;
} sfm_sop;

struct sfm_sched {
  MPI_Comm comm;
  int *world;          /* the communicator's members (copied: the communicator may be freed) */
  int size;
  uint32_t ctx;
  int tag;
  const char *fn;
  sfm_sop *ops;
  int nops, capops;
  int *ends;           /* round k is ops [ends[k-1], ends[k]) */
  int nrounds, caprounds;
  int cur;             /* round in progress; -1 before the start */
  int done, err, nomem, orphan;
  void **tmps;
  int ntmps, captmps;
  sfm_sop *tail;        /* unpack steps that run after the last round (sfm_s_unpack_end) */
  int ntail, captail;
  sfm_red red;
  int has_red;
  char what[160];
  struct sfm_sched *next;
};

static int sfm_s_reserve(void **arr, int *cap, int n, size_t elem) {
  if (n < *cap) return 0;
  int nc = *cap ? *cap * 2 : 16;
  void *p = realloc(*arr, (size_t)nc * elem);
  if (p == NULL) return -1;
  *arr = p;
  *cap = nc;
  return 0;
}

sfm_sched *sfm_sched_new(MPI_Comm comm, const char *fn) {
  sfm_comm *c = sfm_comm_get(comm);
  sfm_sched *s = calloc(1, sizeof *s);
  if (s == NULL) return NULL;
  s->world = malloc((size_t)c->size * sizeof(int));
  if (s->world == NULL) {
    free(s);
    return NULL;
  }
  memcpy(s->world, c->world, (size_t)c->size * sizeof(int));
  s->size = c->size;
  s->comm = comm;
  s->ctx = c->ctx + SFM_CTX_NBC;
  s->tag = (int)((c->nbc_seq++ & 0xffffffu) << 6);
  s->fn = fn;
  s->cur = -1;
  return s;
}

static sfm_sop *sfm_s_add(sfm_sched *s, int kind) {
  sfm_sop *o;
  if (s->nomem || sfm_s_reserve((void **)&s->ops, &s->capops, s->nops, sizeof *s->ops) < 0) {
    s->nomem = 1;
    return NULL;
  }
  o = &s->ops[s->nops++];
  memset(o, 0, sizeof *o);
  o->kind = kind;
  return o;
}

void *sfm_s_tmp(sfm_sched *s, size_t bytes) {
  void *p;
  if (s->nomem || sfm_s_reserve((void **)&s->tmps, &s->captmps, s->ntmps, sizeof *s->tmps) < 0) {
    s->nomem = 1;
    return NULL;
  }
  p = malloc(bytes ? bytes : 1);
  if (p == NULL) {
    s->nomem = 1;
    return NULL;
  }
  s->tmps[s->ntmps++] = p;
  return p;
}

void sfm_s_send(sfm_sched *s, const void *buf, size_t len, int peer, int part) {
  sfm_sop *o = sfm_s_add(s, SFM_S_SEND);
  if (o == NULL) return;
  o->src = buf;
  o->len = len;
  o->peer = peer;
  o->part = part;
}

void sfm_s_recv(sfm_sched *s, void *buf, size_t len, int peer, int part) {
  sfm_sop *o = sfm_s_add(s, SFM_S_RECV);
  if (o == NULL) return;
  o->dst = buf;
  o->len = len;
  o->peer = peer;
  o->part = part;
}

/* A local step moving len bytes from src to dst (a copy, or a combine into dst). */
static void sfm_s_local(sfm_sched *s, int kind, const void *src, void *dst, size_t len) {
  sfm_sop *o = sfm_s_add(s, kind);
  if (o == NULL) return;
  o->src = src;
  o->dst = dst;
  o->len = len;
}

void sfm_s_copy(sfm_sched *s, const void *src, void *dst, size_t len) {
  if (len != 0 && src != dst) sfm_s_local(s, SFM_S_COPY, src, dst, len);
}

void sfm_s_combine(sfm_sched *s, const void *in, void *inout, size_t len) {
  if (len != 0) sfm_s_local(s, SFM_S_COMBINE, in, inout, len);
}

static void sfm_s_fill_unpack(sfm_sop *o, const void *packed, size_t bytes, void *ubuf, int count, MPI_Datatype dt) {
  o->src = packed;
  o->len = bytes;
  o->dst = ubuf;
  o->count = count;
  o->dt = dt;
  sfm_type_ref(dt);
}

void sfm_s_unpack(sfm_sched *s, const void *packed, size_t bytes, void *ubuf, int count, MPI_Datatype dt) {
  sfm_sop *o;
  if (bytes == 0) return;
  o = sfm_s_add(s, SFM_S_UNPACK);
  if (o != NULL) sfm_s_fill_unpack(o, packed, bytes, ubuf, count, dt);
}

/* An unpack step for after every round: results received into packed buffers. */
void sfm_s_unpack_end(sfm_sched *s, const void *packed, size_t bytes, void *ubuf, int count, MPI_Datatype dt) {
  sfm_sop *o;
  if (bytes == 0 || s->nomem) return;
  if (sfm_s_reserve((void **)&s->tail, &s->captail, s->ntail, sizeof *s->tail) < 0) {
    s->nomem = 1;
    return;
  }
  o = &s->tail[s->ntail++];
  memset(o, 0, sizeof *o);
  o->kind = SFM_S_UNPACK;
  sfm_s_fill_unpack(o, packed, bytes, ubuf, count, dt);
}

void sfm_s_round(sfm_sched *s) {
  if (s->nomem) return;
  if (s->nrounds > 0 && s->ends[s->nrounds - 1] == s->nops) return; /* no empty rounds */
  if (sfm_s_reserve((void **)&s->ends, &s->caprounds, s->nrounds, sizeof *s->ends) < 0) {
    s->nomem = 1;
    return;
  }
  s->ends[s->nrounds++] = s->nops;
}

void sfm_s_set_red(sfm_sched *s, const sfm_red *r) {
  s->red = *r;
  /* the combine argument points into the reduction itself: rebind it to this copy */
  s->red.arg = r->fn == sf_builtin_combine ? (void *)&s->red.b : (void *)&s->red;
  s->has_red = 1;
}

sfm_red *sfm_s_red(sfm_sched *s) { return &s->red; }

/* ---- running --------------------------------------------------------------------------------- */

static int sfm_round_first(const sfm_sched *s, int k) { return k == 0 ? 0 : s->ends[k - 1]; }

/* Give up: withdraw or detach what the current round posted. */
static void sfm_sched_fail(sfm_sched *s, int code) {
  if (s->cur >= 0 && s->cur < s->nrounds)
    for (int i = sfm_round_first(s, s->cur); i < s->ends[s->cur]; i++)
      if (s->ops[i].req) {
        sf_req_free(sfm.job, s->ops[i].req);
        s->ops[i].req = NULL;
      }
  if (s->err == MPI_SUCCESS) s->err = code;
  s->done = 1;
}

static int sfm_round_start(sfm_sched *s) {
  int k = s->cur, rc;
  for (int i = sfm_round_first(s, k); i < s->ends[k]; i++) {
    sfm_sop *o = &s->ops[i];
    switch (o->kind) {
    case SFM_S_COPY: memcpy(o->dst, o->src, o->len); break;
    case SFM_S_COMBINE:
      rc = s->red.fn(o->src, o->dst, o->len, s->red.arg);
      if (rc < 0) return sfm_dp_code(s->fn, rc);
      break;
    case SFM_S_UNPACK: {
      sfm_type *t = sfm_type_get(o->dt);
      if (t) sfm_unpack(t, o->src, o->len, o->dst, o->count);
      break;
    }
    default: break;
    }
  }
  for (int i = sfm_round_first(s, k); i < s->ends[k]; i++) {
    sfm_sop *o = &s->ops[i];
    if (o->kind == SFM_S_SEND)
      rc = sf_isend(sfm.job, o->src, o->len, s->world[o->peer], s->ctx, s->tag | o->part, 0, &o->req);
    else if (o->kind == SFM_S_RECV)
      rc = sf_irecv(sfm.job, o->dst, o->len, s->world[o->peer], s->ctx, s->tag | o->part, &o->req);
    else
      continue;
    if (rc < 0) return sfm_dp_code(s->fn, rc);
  }
  return MPI_SUCCESS;
}

/* 1 when every message of the current round completed (and was released), 0 if not. */
static int sfm_round_done(sfm_sched *s, int *code) {
  int k = s->cur;
  *code = MPI_SUCCESS;
  for (int i = sfm_round_first(s, k); i < s->ends[k]; i++)
    if (s->ops[i].req && !sf_req_done(s->ops[i].req)) return 0;
  for (int i = sfm_round_first(s, k); i < s->ends[k]; i++) {
    sfm_sop *o = &s->ops[i];
    if (o->req == NULL) continue;
    if (sf_test(sfm.job, o->req, NULL) < 0 && *code == MPI_SUCCESS) {
      /* complete but failed: only a truncation (a member passed a larger count) */
      *code = sfm_code(MPI_ERR_TRUNCATE, "%s: rank %d sent more data than this rank's arguments hold (%s)", s->fn,
                       o->peer, sf_last_error());
    }
    sf_req_free(sfm.job, o->req);
    o->req = NULL;
  }
  return 1;
}

static void sfm_sched_advance(sfm_sched *s) {
  int code;
  while (!s->done) {
    if (s->cur >= 0 && s->cur < s->nrounds) {
      if (!sfm_round_done(s, &code)) return;
      if (code != MPI_SUCCESS) {
        sfm_sched_fail(s, code);
        return;
      }
    }
    if (++s->cur >= s->nrounds) {
      s->done = 1;
      return;
    }
    code = sfm_round_start(s);
    if (code != MPI_SUCCESS) sfm_sched_fail(s, code);
  }
}

void sfm_sched_free(sfm_sched *s) {
  if (s == NULL) return;
  for (int i = 0; i < s->nops; i++) {
    if (s->ops[i].req) sf_req_free(sfm.job, s->ops[i].req);
    if (s->ops[i].kind == SFM_S_UNPACK) sfm_type_unref(s->ops[i].dt);
  }
  for (int i = 0; i < s->ntail; i++) sfm_type_unref(s->tail[i].dt);
  free(s->tail);
  for (int i = 0; i < s->ntmps; i++) free(s->tmps[i]);
  free(s->tmps);
  free(s->ops);
  free(s->ends);
  free(s->world);
  free(s);
}

/* Progress hook: advance every schedule; drop those done whose request was freed. */
void sfm_sched_progress(void) {
  sfm_sched **pp = &sfm.scheds;
  while (*pp) {
    sfm_sched *s = *pp;
    sfm_sched_advance(s);
    if (s->done) {
      *pp = s->next;
      s->next = NULL;
      if (s->orphan) sfm_sched_free(s);
    } else {
      pp = &s->next;
    }
  }
}

static int sfm_sched_done(void *obj) { return ((sfm_sched *)obj)->done; }

static int sfm_sched_finish(void *obj, MPI_Status *status) {
  sfm_empty_status(status);
  return ((sfm_sched *)obj)->err;
}

static void sfm_sched_release(void *obj) { sfm_sched_free(obj); }

/* MPI_Request_free of a collective in progress: it completes in the background. */
static void sfm_sched_orphan(void *obj) {
  sfm_sched *s = obj;
  if (s->done)
    sfm_sched_free(s);
  else
    s->orphan = 1;
}

static const char *sfm_sched_what(void *obj) {
  sfm_sched *s = obj;
  int n = 0, k = s->cur;
  n = snprintf(s->what, sizeof s->what, "round %d of %d of %s", k + 1, s->nrounds, s->fn);
  if (k >= 0 && k < s->nrounds) {
    int first = 1;
    for (int i = sfm_round_first(s, k); i < s->ends[k] && n < (int)sizeof s->what - 16; i++)
      if (s->ops[i].req && !sf_req_done(s->ops[i].req) && s->ops[i].kind == SFM_S_RECV) {
        n += snprintf(s->what + n, sizeof s->what - (size_t)n, "%s%d", first ? ": a message from rank " : ", ", s->ops[i].peer);
        first = 0;
      }
  }
  return s->what;
}

static const sfm_req_ops sfm_sched_ops = {sfm_sched_done, sfm_sched_finish, sfm_sched_release, sfm_sched_orphan};

/* Start a built schedule: the first rounds run now, the rest in the progress hook. Returns an
 * MPI code (not raised); on failure the schedule is freed. */
static int sfm_sched_go(sfm_sched *s) {
  sfm_s_round(s);
  for (int i = 0; i < s->ntail && !s->nomem; i++) {
    sfm_sop *o = sfm_s_add(s, SFM_S_UNPACK);
    if (o) *o = s->tail[i]; /* the reference to its type moves with it */
  }
  s->ntail = 0;
  sfm_s_round(s);
  if (s->nomem) {
    sfm_sched_free(s);
    return sfm_code(MPI_ERR_NO_MEM, "%s: out of memory for the schedule", s->fn);
  }
  sfm_sched_advance(s);
  if (!s->done) {
    s->next = sfm.scheds;
    sfm.scheds = s;
  }
  return MPI_SUCCESS;
}

int sfm_sched_start(sfm_sched *s, MPI_Request *request) {
  sfm_req *rq;
  int code;
  const char *fn = s->fn;
  if (sfm_req_new(request, &rq) < 0) {
    sfm_sched_free(s);
    return sfm_code(MPI_ERR_NO_MEM, "%s: out of memory", fn);
  }
  code = sfm_sched_go(s);
  if (code != MPI_SUCCESS) {
    sfm_req_drop(*request);
    *request = MPI_REQUEST_NULL;
    return code;
  }
  rq->kind = SFM_RQ_OBJ;
  rq->comm = s->comm;
  rq->obj = s;
  rq->ops = &sfm_sched_ops;
  return MPI_SUCCESS;
}

int sfm_sched_run(sfm_sched *s) {
  int code = sfm_sched_go(s);
  if (code != MPI_SUCCESS) return code;
  if (!s->done) code = sfm_wait_until(sfm_sched_done, sfm_sched_what, s, s->fn);
  if (code == MPI_SUCCESS) code = s->err;
  if (s->done)
    sfm_sched_free(s);
  else
    s->orphan = 1; /* the wait failed (timeout, dead peer): the hook drops it if it ever ends */
  return code;
}

const char *sfm_req_what(sfm_req *rq) {
  if (rq->kind == SFM_RQ_OBJ && rq->ops == &sfm_sched_ops) return sfm_sched_what(rq->obj);
  return "the request";
}
