/*
 * nbc.c: the non-blocking collectives (MPI_Ibarrier ... MPI_Ireduce_scatter_block), and
 * MPI_Alltoallw, as schedules (sched.c) built from the same argument checks as their blocking
 * twins (coll.c, coll_v.c).
 *
 * Algorithms (small same-host jobs; every message one copy):
 *   Ibarrier        dissemination, ceil(log2 n) rounds
 *   Ibcast          binomial tree from the root
 *   Ireduce         binomial tree to rank 0 in rank order (non-commutative ops stay correct),
 *                   then to the root
 *   Iallreduce      recursive doubling (commutative op, power-of-two group), else Ireduce to
 *                   rank 0 + Ibcast
 *   Iscan, Iexscan  recursive doubling (Hillis-Steele), lower ranks always the `in` side
 *   Igather(v), Iscatter(v), Iallgather(v), Ialltoall(v,w): one round of direct messages
 *   Ireduce_scatter(_block): Ireduce to rank 0 + Iscatterv
 * Data of non-contiguous types is packed when the collective starts and unpacked after its
 * last round.
 */
#include "sfmpi.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Where `count` items of `dt` at `buf` travel: the buffer itself for a contiguous type, else a
 * packed copy (made now for data to send; unpacked into `buf` after the last round for data
 * received). */
void *sfm_s_wire(sfm_sched *s, void *buf, int count, MPI_Datatype dt, int recv, size_t *len) {
  sfm_type *t = sfm_type_get(dt);
  void *w;
  *len = t->size * (size_t)(count > 0 ? count : 0);
  if (t->contig || *len == 0) return buf;
  w = sfm_s_tmp(s, *len);
  if (w == NULL) return NULL;
  if (recv)
    sfm_s_unpack_end(s, w, *len, buf, count, dt);
  else
    sfm_pack(t, buf, count, w);
  return w;
}

static char *sfm_at(const void *buf, MPI_Aint items, MPI_Datatype dt) {
  return (char *)buf + items * sfm_type_get(dt)->extent;
}

/* ---- building blocks ------------------------------------------------------------------------- */

/* Binomial tree from `root`: buf (len bytes) reaches every member. */
static void sfm_b_bcast(sfm_sched *s, int me, int n, int root, void *buf, size_t len) {
  int vr = (me - root + n) % n, mask = 1;
  while (mask < n) {
    if (vr & mask) {
      sfm_s_recv(s, buf, len, (vr - mask + root) % n, 0);
      sfm_s_round(s);
      break;
    }
    mask <<= 1;
  }
  for (mask >>= 1; mask > 0; mask >>= 1)
    if (vr + mask < n) sfm_s_send(s, buf, len, (vr + mask + root) % n, 0);
  sfm_s_round(s);
}

/* Binomial reduction to rank 0 in rank order: member me holds ranks [me, me + 2^k) after step
 * k and combines [me + 2^k, me + 2^(k+1)) from its child as the higher (inout) side. Returns the
 * buffer holding the result at rank 0, NULL elsewhere. */
static void *sfm_b_reduce0(sfm_sched *s, int me, int n, const void *in, size_t len) {
  const char *acc = in; /* my input until the first combine: sent or combined as it is */
  char *bufs[2] = {NULL, NULL};
  int next = 0;
  for (int mask = 1; mask < n; mask <<= 1) {
    if (me & mask) {
      sfm_s_send(s, acc, len, me - mask, 0);
      sfm_s_round(s);
      return NULL;
    }
    if (me + mask < n) {
      char *into = bufs[next] ? bufs[next] : (bufs[next] = sfm_s_tmp(s, len));
      if (into == NULL) return NULL;
      sfm_s_recv(s, into, len, me + mask, 0);
      sfm_s_round(s);
      sfm_s_combine(s, acc, into, len); /* into = acc (lower ranks) op into */
      acc = into;
      next ^= 1;
    }
  }
  if (acc == in) { /* a group of one: the result is a copy of the input */
    char *copy = sfm_s_tmp(s, len);
    if (copy) sfm_s_copy(s, in, copy, len);
    return copy;
  }
  return (void *)acc;
}

/* Reduction arguments shared by Ireduce/Iallreduce/Iscan/Iexscan: the schedule's combine and
 * the input in wire layout. Returns an MPI code (raised). */
static int sfm_b_red_setup(sfm_sched *s, MPI_Comm comm, const char *fn, const void *in, int count, MPI_Datatype dt,
                           MPI_Op op, const void **wire_in, size_t *len) {
  sfm_red r;
  int rc = sfm_red_setup(comm, fn, dt, op, count, &r);
  if (rc != MPI_SUCCESS) return rc;
  sfm_s_set_red(s, &r);
  *len = r.unit * (size_t)count;
  *wire_in = in;
  if (r.packed && *len) {
    void *w = sfm_s_tmp(s, *len);
    if (w == NULL) return MPI_SUCCESS; /* the schedule reports out of memory when started */
    sfm_pack(r.t, in, count, w);
    *wire_in = w;
  }
  return MPI_SUCCESS;
}

/* Where a reduction result of `count` items lands: rbuf itself, or a packed buffer unpacked
 * into rbuf after the last round. */
static void *sfm_b_red_out(sfm_sched *s, void *rbuf, int count, MPI_Datatype dt, size_t len) {
  sfm_red *r = sfm_s_red(s);
  void *w;
  if (!r->packed || len == 0) return rbuf;
  w = sfm_s_tmp(s, len);
  if (w) sfm_s_unpack_end(s, w, len, rbuf, count, dt);
  return w;
}

/* Start s as a request, or report why it could not start. */
static int sfm_b_start(sfm_sched *s, MPI_Comm comm, MPI_Request *request) {
  return sfm_raise(comm, sfm_sched_start(s, request));
}

#define SFM_NBC(fn, comm, c, request, s)                                                             \
  SFM_COMM(fn, comm, c);                                                                            \
  if ((request) == NULL) return sfm_error(comm, fn, MPI_ERR_ARG, "request is NULL");               \
  sfm_sched *s = sfm_sched_new(comm, fn);                                                           \
  if (s == NULL) return sfm_error(comm, fn, MPI_ERR_NO_MEM, "out of memory")

#define SFM_NBC_FAIL(s, rc)                                                                          \
  do {                                                                                              \
    sfm_sched_free(s);                                                                              \
    return (rc);                                                                                    \
  } while (0)

/* ---- the collectives ------------------------------------------------------------------------- */

int MPI_Ibarrier(MPI_Comm comm, MPI_Request *request) {
  SFM_NBC("MPI_Ibarrier", comm, c, request, s);
  for (int k = 1; k < c->size; k <<= 1) {
    sfm_s_send(s, NULL, 0, (c->rank + k) % c->size, 0);
    sfm_s_recv(s, NULL, 0, (c->rank - k + c->size) % c->size, 0);
    sfm_s_round(s);
  }
  return sfm_b_start(s, comm, request);
}

int MPI_Ibcast(void *buf, int count, MPI_Datatype dt, int root, MPI_Comm comm, MPI_Request *request) {
  int rc;
  size_t len;
  void *w;
  SFM_NBC("MPI_Ibcast", comm, c, request, s);
  if ((rc = sfm_type_check(comm, "MPI_Ibcast", dt, count)) != MPI_SUCCESS) SFM_NBC_FAIL(s, rc);
  if ((rc = sfm_check_root(comm, "MPI_Ibcast", c, root)) != MPI_SUCCESS) SFM_NBC_FAIL(s, rc);
  w = sfm_s_wire(s, buf, count, dt, c->rank != root, &len);
  if (len) sfm_b_bcast(s, c->rank, c->size, root, w, len);
  return sfm_b_start(s, comm, request);
}

/* kind: 0 reduce, 1 allreduce */
static int sfm_ireduce(const char *fn, int all, const void *sbuf, void *rbuf, int count, MPI_Datatype dt, MPI_Op op,
                       int root, MPI_Comm comm, MPI_Request *request) {
  int rc, is_root;
  const void *in;
  size_t len;
  void *res, *out = NULL;
  SFM_NBC(fn, comm, c, request, s);
  if (!all && (rc = sfm_check_root(comm, fn, c, root)) != MPI_SUCCESS) SFM_NBC_FAIL(s, rc);
  is_root = all || c->rank == root;
  if (sbuf == MPI_IN_PLACE) {
    if (!is_root) SFM_NBC_FAIL(s, sfm_error(comm, fn, MPI_ERR_BUFFER, "MPI_IN_PLACE is only valid at the root"));
    sbuf = rbuf;
  }
  if ((rc = sfm_b_red_setup(s, comm, fn, sbuf, count, dt, op, &in, &len)) != MPI_SUCCESS) SFM_NBC_FAIL(s, rc);
  if (len == 0) return sfm_b_start(s, comm, request);
  if (is_root) out = sfm_b_red_out(s, rbuf, count, dt, len);
  if (all && (c->size & (c->size - 1)) == 0 && c->size > 1 && sfm_red_commutes(op)) {
    /* a commutative op on a power-of-two group: recursive doubling, every rank combining
     * with its partner at distance 1, 2, 4...; the last step lands in the output */
    const void *acc = in;
    for (int mask = 1; mask < c->size; mask <<= 1) {
      int last = mask << 1 >= c->size;
      void *into = last && out != in ? out : sfm_s_tmp(s, len);
      if (into == NULL) break;
      sfm_s_send(s, acc, len, c->rank ^ mask, 0);
      sfm_s_recv(s, into, len, c->rank ^ mask, 0);
      sfm_s_round(s);
      sfm_s_combine(s, acc, into, len); /* into = acc op partner's: the op commutes */
      acc = into;
    }
    if (acc != out) sfm_s_copy(s, acc, out, len);
    return sfm_b_start(s, comm, request);
  }
  res = sfm_b_reduce0(s, c->rank, c->size, in, len);
  if (all) {
    if (c->rank == 0) sfm_s_copy(s, res, out, len);
    sfm_b_bcast(s, c->rank, c->size, 0, out, len);
  } else if (root == 0) {
    if (c->rank == 0) sfm_s_copy(s, res, out, len);
  } else {
    if (c->rank == 0) sfm_s_send(s, res, len, root, 0);
    if (c->rank == root) sfm_s_recv(s, out, len, 0, 0);
    sfm_s_round(s);
  }
  return sfm_b_start(s, comm, request);
}

int MPI_Ireduce(const void *sbuf, void *rbuf, int count, MPI_Datatype dt, MPI_Op op, int root, MPI_Comm comm,
                MPI_Request *request) {
  return sfm_ireduce("MPI_Ireduce", 0, sbuf, rbuf, count, dt, op, root, comm, request);
}
int MPI_Iallreduce(const void *sbuf, void *rbuf, int count, MPI_Datatype dt, MPI_Op op, MPI_Comm comm,
                   MPI_Request *request) {
  return sfm_ireduce("MPI_Iallreduce", 1, sbuf, rbuf, count, dt, op, 0, comm, request);
}

/* Recursive doubling: at distance d, send the partial (my range) up, receive the range below
 * from me - d; result and partial both take it as their lower (`in`) side. Exscan's result
 * starts with the first range received; rank 0 never gets one and keeps its buffer. */
static int sfm_iscan(const char *fn, int ex, const void *sbuf, void *rbuf, int count, MPI_Datatype dt, MPI_Op op,
                     MPI_Comm comm, MPI_Request *request) {
  int rc, have = 0;
  const void *in;
  size_t len;
  char *part, *got, *res;
  SFM_NBC(fn, comm, c, request, s);
  if (sbuf == MPI_IN_PLACE) sbuf = rbuf;
  if ((rc = sfm_b_red_setup(s, comm, fn, sbuf, count, dt, op, &in, &len)) != MPI_SUCCESS) SFM_NBC_FAIL(s, rc);
  if (len == 0) return sfm_b_start(s, comm, request);
  part = sfm_s_tmp(s, len);
  got = sfm_s_tmp(s, len);
  res = sfm_s_tmp(s, len);
  if (part == NULL || got == NULL || res == NULL) return sfm_b_start(s, comm, request);
  sfm_s_copy(s, in, part, len);
  if (!ex) {
    sfm_s_copy(s, in, res, len);
    have = 1;
  }
  for (int d = 1; d < c->size; d <<= 1) {
    int from = c->rank - d, to = c->rank + d;
    if (to < c->size) sfm_s_send(s, part, len, to, 0);
    if (from >= 0) sfm_s_recv(s, got, len, from, 0);
    sfm_s_round(s);
    if (from >= 0) {
      if (have)
        sfm_s_combine(s, got, res, len);
      else
        sfm_s_copy(s, got, res, len);
      have = 1;
      sfm_s_combine(s, got, part, len);
    }
  }
  if (have) sfm_s_copy(s, res, sfm_b_red_out(s, rbuf, count, dt, len), len);
  return sfm_b_start(s, comm, request);
}

int MPI_Iscan(const void *sbuf, void *rbuf, int count, MPI_Datatype dt, MPI_Op op, MPI_Comm comm, MPI_Request *request) {
  return sfm_iscan("MPI_Iscan", 0, sbuf, rbuf, count, dt, op, comm, request);
}
int MPI_Iexscan(const void *sbuf, void *rbuf, int count, MPI_Datatype dt, MPI_Op op, MPI_Comm comm, MPI_Request *request) {
  return sfm_iscan("MPI_Iexscan", 1, sbuf, rbuf, count, dt, op, comm, request);
}

/* Counts of one side: counts[i] if given, else `count` for every member. */
static int sfm_cnt(const int *counts, int count, int i) { return counts ? counts[i] : count; }
static int sfm_disp(const int *displs, int count, int i) { return displs ? displs[i] : i * count; }

static int sfm_igatherv(const char *fn, const void *sbuf, int scount, MPI_Datatype stype, void *rbuf, const int *rcounts,
                        int rcount, const int *displs, MPI_Datatype rtype, int root, MPI_Comm comm,
                        MPI_Request *request) {
  int rc, inplace;
  size_t len;
  void *w;
  SFM_NBC(fn, comm, c, request, s);
  if ((rc = sfm_check_root(comm, fn, c, root)) != MPI_SUCCESS) SFM_NBC_FAIL(s, rc);
  inplace = sbuf == MPI_IN_PLACE && c->rank == root;
  if (!inplace && (rc = sfm_type_check(comm, fn, stype, scount)) != MPI_SUCCESS) SFM_NBC_FAIL(s, rc);
  if (c->rank == root) {
    if ((rc = sfm_type_check(comm, fn, rtype, rcounts ? 0 : rcount)) != MPI_SUCCESS) SFM_NBC_FAIL(s, rc);
    if (rcounts && (rc = sfm_counts_ok(comm, fn, "recvcounts", rcounts, c->size)) != MPI_SUCCESS) SFM_NBC_FAIL(s, rc);
    for (int i = 0; i < c->size; i++) {
      char *at = sfm_at(rbuf, sfm_disp(displs, rcount, i), rtype);
      if (i == root) {
        if (!inplace) { /* my own block: a copy, through the wire layouts of both types */
          size_t sl;
          void *sw = sfm_s_wire(s, (void *)sbuf, scount, stype, 0, &sl);
          void *rw = sfm_s_wire(s, at, sfm_cnt(rcounts, rcount, i), rtype, 1, &len);
          sfm_s_copy(s, sw, rw, sl < len ? sl : len);
        }
        continue;
      }
      w = sfm_s_wire(s, at, sfm_cnt(rcounts, rcount, i), rtype, 1, &len);
      sfm_s_recv(s, w, len, i, 0);
    }
  } else {
    w = sfm_s_wire(s, (void *)sbuf, scount, stype, 0, &len);
    sfm_s_send(s, w, len, root, 0);
  }
  return sfm_b_start(s, comm, request);
}

int MPI_Igather(const void *sbuf, int scount, MPI_Datatype stype, void *rbuf, int rcount, MPI_Datatype rtype, int root,
                MPI_Comm comm, MPI_Request *request) {
  return sfm_igatherv("MPI_Igather", sbuf, scount, stype, rbuf, NULL, rcount, NULL, rtype, root, comm, request);
}
int MPI_Igatherv(const void *sbuf, int scount, MPI_Datatype stype, void *rbuf, const int rcounts[], const int displs[],
                 MPI_Datatype rtype, int root, MPI_Comm comm, MPI_Request *request) {
  return sfm_igatherv("MPI_Igatherv", sbuf, scount, stype, rbuf, rcounts, 0, displs, rtype, root, comm, request);
}

static int sfm_iscatterv(const char *fn, const void *sbuf, const int *scounts, int scount, const int *displs,
                         MPI_Datatype stype, void *rbuf, int rcount, MPI_Datatype rtype, int root, MPI_Comm comm,
                         MPI_Request *request) {
  int rc, inplace;
  size_t len;
  void *w;
  SFM_NBC(fn, comm, c, request, s);
  if ((rc = sfm_check_root(comm, fn, c, root)) != MPI_SUCCESS) SFM_NBC_FAIL(s, rc);
  inplace = rbuf == MPI_IN_PLACE && c->rank == root;
  if (!inplace && (rc = sfm_type_check(comm, fn, rtype, rcount)) != MPI_SUCCESS) SFM_NBC_FAIL(s, rc);
  if (c->rank == root) {
    if ((rc = sfm_type_check(comm, fn, stype, scounts ? 0 : scount)) != MPI_SUCCESS) SFM_NBC_FAIL(s, rc);
    if (scounts && (rc = sfm_counts_ok(comm, fn, "sendcounts", scounts, c->size)) != MPI_SUCCESS) SFM_NBC_FAIL(s, rc);
    for (int i = 0; i < c->size; i++) {
      char *at = sfm_at(sbuf, sfm_disp(displs, scount, i), stype);
      w = sfm_s_wire(s, at, sfm_cnt(scounts, scount, i), stype, 0, &len);
      if (i == root) {
        if (!inplace) {
          size_t rl;
          void *rw = sfm_s_wire(s, rbuf, rcount, rtype, 1, &rl);
          sfm_s_copy(s, w, rw, len < rl ? len : rl);
        }
        continue;
      }
      sfm_s_send(s, w, len, i, 0);
    }
  } else {
    w = sfm_s_wire(s, rbuf, rcount, rtype, 1, &len);
    sfm_s_recv(s, w, len, root, 0);
  }
  return sfm_b_start(s, comm, request);
}

int MPI_Iscatter(const void *sbuf, int scount, MPI_Datatype stype, void *rbuf, int rcount, MPI_Datatype rtype, int root,
                 MPI_Comm comm, MPI_Request *request) {
  return sfm_iscatterv("MPI_Iscatter", sbuf, NULL, scount, NULL, stype, rbuf, rcount, rtype, root, comm, request);
}
int MPI_Iscatterv(const void *sbuf, const int scounts[], const int displs[], MPI_Datatype stype, void *rbuf, int rcount,
                  MPI_Datatype rtype, int root, MPI_Comm comm, MPI_Request *request) {
  return sfm_iscatterv("MPI_Iscatterv", sbuf, scounts, 0, displs, stype, rbuf, rcount, rtype, root, comm, request);
}

static int sfm_iallgatherv(const char *fn, const void *sbuf, int scount, MPI_Datatype stype, void *rbuf,
                           const int *rcounts, int rcount, const int *displs, MPI_Datatype rtype, MPI_Comm comm,
                           MPI_Request *request) {
  int rc, inplace = sbuf == MPI_IN_PLACE;
  size_t slen, len;
  void *sw;
  SFM_NBC(fn, comm, c, request, s);
  if (!inplace && (rc = sfm_type_check(comm, fn, stype, scount)) != MPI_SUCCESS) SFM_NBC_FAIL(s, rc);
  if ((rc = sfm_type_check(comm, fn, rtype, rcounts ? 0 : rcount)) != MPI_SUCCESS) SFM_NBC_FAIL(s, rc);
  if (rcounts && (rc = sfm_counts_ok(comm, fn, "recvcounts", rcounts, c->size)) != MPI_SUCCESS) SFM_NBC_FAIL(s, rc);
  if (inplace)
    sw = sfm_s_wire(s, sfm_at(rbuf, sfm_disp(displs, rcount, c->rank), rtype), sfm_cnt(rcounts, rcount, c->rank), rtype, 0,
                    &slen);
  else
    sw = sfm_s_wire(s, (void *)sbuf, scount, stype, 0, &slen);
  for (int i = 0; i < c->size; i++) {
    char *at = sfm_at(rbuf, sfm_disp(displs, rcount, i), rtype);
    if (i == c->rank) {
      if (!inplace) sfm_s_copy(s, sw, sfm_s_wire(s, at, sfm_cnt(rcounts, rcount, i), rtype, 1, &len), slen);
      continue;
    }
    void *rw = sfm_s_wire(s, at, sfm_cnt(rcounts, rcount, i), rtype, 1, &len);
    sfm_s_send(s, sw, slen, i, 0);
    sfm_s_recv(s, rw, len, i, 0);
  }
  return sfm_b_start(s, comm, request);
}

int MPI_Iallgather(const void *sbuf, int scount, MPI_Datatype stype, void *rbuf, int rcount, MPI_Datatype rtype,
                   MPI_Comm comm, MPI_Request *request) {
  return sfm_iallgatherv("MPI_Iallgather", sbuf, scount, stype, rbuf, NULL, rcount, NULL, rtype, comm, request);
}
int MPI_Iallgatherv(const void *sbuf, int scount, MPI_Datatype stype, void *rbuf, const int rcounts[], const int displs[],
                    MPI_Datatype rtype, MPI_Comm comm, MPI_Request *request) {
  return sfm_iallgatherv("MPI_Iallgatherv", sbuf, scount, stype, rbuf, rcounts, 0, displs, rtype, comm, request);
}

sfm_side sfm_side_v(const int *counts, int count, const int *displs, MPI_Datatype t) {
  sfm_side d;
  memset(&d, 0, sizeof d);
  d.counts = counts;
  d.count = count;
  d.displs = displs;
  d.type = t;
  return d;
}

sfm_side sfm_side_w(const int *counts, const int *bdispls, const MPI_Datatype *types) {
  sfm_side d;
  memset(&d, 0, sizeof d);
  d.counts = counts;
  d.idispls_bytes = bdispls;
  d.types = types;
  return d;
}

sfm_side sfm_side_aw(const int *counts, const MPI_Aint *bdispls, const MPI_Datatype *types) {
  sfm_side d;
  memset(&d, 0, sizeof d);
  d.counts = counts;
  d.bdispls = bdispls;
  d.types = types;
  return d;
}

/* All-to-all in its most general form: block i of each side has its own count, type and byte
 * displacement. The v and plain forms give one type and displacements in extents. */
static MPI_Datatype sfm_side_type(const sfm_side *d, int i) { return d->types ? d->types[i] : d->type; }
static int sfm_side_count(const sfm_side *d, int i) { return d->counts ? d->counts[i] : d->count; }
static char *sfm_side_at(const sfm_side *d, const void *buf, int i) {
  if (d->bdispls) return (char *)buf + d->bdispls[i];
  if (d->idispls_bytes) return (char *)buf + d->idispls_bytes[i];
  return sfm_at(buf, d->displs ? d->displs[i] : (MPI_Aint)i * d->count, d->type);
}

static int sfm_side_check_all(MPI_Comm comm, const char *fn, const sfm_side *d, int n, const char *what) {
  for (int i = 0; i < n; i++) {
    int rc = sfm_type_check(comm, fn, sfm_side_type(d, i), sfm_side_count(d, i));
    if (rc != MPI_SUCCESS) return rc;
  }
  (void)what;
  return MPI_SUCCESS;
}

/* Messages between this rank and peer lists (all members for all-to-all, neighbours for the
 * neighbourhood forms): block i goes to out[i] and comes from in[i]. */
int sfm_b_exchange(sfm_sched *s, MPI_Comm comm, const char *fn, const void *sbuf, const sfm_side *sd, void *rbuf,
                   const sfm_side *rd, int nout, const int *out, const int *outpart, int nin, const int *in,
                   const int *inpart, int me) {
  int rc;
  size_t len;
  if ((rc = sfm_side_check_all(comm, fn, sd, nout, "send")) != MPI_SUCCESS) return rc;
  if ((rc = sfm_side_check_all(comm, fn, rd, nin, "receive")) != MPI_SUCCESS) return rc;
  for (int i = 0; i < nin; i++) {
    void *w;
    if (in[i] == MPI_PROC_NULL || (in[i] == me && out == NULL)) continue; /* all-to-all: my block is copied below */
    w = sfm_s_wire(s, sfm_side_at(rd, rbuf, i), sfm_side_count(rd, i), sfm_side_type(rd, i), 1, &len);
    sfm_s_recv(s, w, len, in[i], inpart ? inpart[i] : 0);
  }
  for (int i = 0; i < nout; i++) {
    void *w;
    if (out && out[i] == MPI_PROC_NULL) continue;
    w = sfm_s_wire(s, sfm_side_at(sd, sbuf, i), sfm_side_count(sd, i), sfm_side_type(sd, i), 0, &len);
    if (out == NULL && i == me) { /* all-to-all: my own block, straight across */
      size_t rl;
      void *rw = sfm_s_wire(s, sfm_side_at(rd, rbuf, i), sfm_side_count(rd, i), sfm_side_type(rd, i), 1, &rl);
      sfm_s_copy(s, w, rw, len < rl ? len : rl);
      continue;
    }
    sfm_s_send(s, w, len, out ? out[i] : i, outpart ? outpart[i] : 0);
  }
  return MPI_SUCCESS;
}

/* All-to-all: in[i] = i. MPI_IN_PLACE takes the data from rbuf (copied first). */
static int sfm_ialltoall_any(const char *fn, const void *sbuf, sfm_side sd, void *rbuf, sfm_side rd, MPI_Comm comm,
                             MPI_Request *request, int blocking) {
  int rc, *in;
  SFM_COMM(fn, comm, c);
  sfm_sched *s = sfm_sched_new(comm, fn);
  if (s == NULL) return sfm_error(comm, fn, MPI_ERR_NO_MEM, "out of memory");
  if (!blocking && request == NULL) SFM_NBC_FAIL(s, sfm_error(comm, fn, MPI_ERR_ARG, "request is NULL"));
  if (sbuf == MPI_IN_PLACE) {
    /* the data to send is what rbuf holds now: copy its extent aside */
    MPI_Aint hi = 0;
    void *copy;
    for (int i = 0; i < c->size; i++) {
      sfm_type *t = sfm_type_get(sfm_side_type(&rd, i));
      MPI_Aint end;
      if (t == NULL) SFM_NBC_FAIL(s, sfm_error(comm, fn, MPI_ERR_TYPE, "invalid receive datatype"));
      end = (sfm_side_at(&rd, rbuf, i) - (char *)rbuf) + (MPI_Aint)sfm_side_count(&rd, i) * t->extent;
      if (end > hi) hi = end;
    }
    copy = sfm_s_tmp(s, (size_t)hi);
    if (copy) memcpy(copy, rbuf, (size_t)hi);
    sbuf = copy;
    sd = rd;
  }
  in = malloc((size_t)c->size * sizeof *in);
  if (in == NULL) SFM_NBC_FAIL(s, sfm_error(comm, fn, MPI_ERR_NO_MEM, "out of memory"));
  for (int i = 0; i < c->size; i++) in[i] = i;
  rc = sfm_b_exchange(s, comm, fn, sbuf, &sd, rbuf, &rd, c->size, NULL, NULL, c->size, in, NULL, c->rank);
  free(in);
  if (rc != MPI_SUCCESS) SFM_NBC_FAIL(s, rc);
  if (blocking) return sfm_raise(comm, sfm_sched_run(s));
  return sfm_b_start(s, comm, request);
}

int MPI_Ialltoall(const void *sbuf, int scount, MPI_Datatype stype, void *rbuf, int rcount, MPI_Datatype rtype,
                  MPI_Comm comm, MPI_Request *request) {
  return sfm_ialltoall_any("MPI_Ialltoall", sbuf, sfm_side_v(NULL, scount, NULL, stype), rbuf,
                           sfm_side_v(NULL, rcount, NULL, rtype), comm, request, 0);
}
int MPI_Ialltoallv(const void *sbuf, const int scounts[], const int sdispls[], MPI_Datatype stype, void *rbuf,
                   const int rcounts[], const int rdispls[], MPI_Datatype rtype, MPI_Comm comm, MPI_Request *request) {
  return sfm_ialltoall_any("MPI_Ialltoallv", sbuf, sfm_side_v(scounts, 0, sdispls, stype), rbuf,
                           sfm_side_v(rcounts, 0, rdispls, rtype), comm, request, 0);
}
int MPI_Ialltoallw(const void *sbuf, const int scounts[], const int sdispls[], const MPI_Datatype stypes[], void *rbuf,
                   const int rcounts[], const int rdispls[], const MPI_Datatype rtypes[], MPI_Comm comm,
                   MPI_Request *request) {
  return sfm_ialltoall_any("MPI_Ialltoallw", sbuf, sfm_side_w(scounts, sdispls, stypes), rbuf,
                           sfm_side_w(rcounts, rdispls, rtypes), comm, request, 0);
}
int MPI_Alltoallw(const void *sbuf, const int scounts[], const int sdispls[], const MPI_Datatype stypes[], void *rbuf,
                  const int rcounts[], const int rdispls[], const MPI_Datatype rtypes[], MPI_Comm comm) {
  return sfm_ialltoall_any("MPI_Alltoallw", sbuf, sfm_side_w(scounts, sdispls, stypes), rbuf,
                           sfm_side_w(rcounts, rdispls, rtypes), comm, NULL, 1);
}

/* Reduce the whole vector to rank 0, then scatter block i to rank i. */
static int sfm_ireduce_scatter(const char *fn, const void *sbuf, void *rbuf, const int *rcounts, int rcount,
                               MPI_Datatype dt, MPI_Op op, MPI_Comm comm, MPI_Request *request) {
  int rc, total = 0;
  const void *in;
  size_t len, unit;
  char *res;
  SFM_NBC(fn, comm, c, request, s);
  if (rcounts && (rc = sfm_counts_ok(comm, fn, "recvcounts", rcounts, c->size)) != MPI_SUCCESS) SFM_NBC_FAIL(s, rc);
  for (int i = 0; i < c->size; i++) total += sfm_cnt(rcounts, rcount, i);
  if (sbuf == MPI_IN_PLACE) sbuf = rbuf;
  if ((rc = sfm_b_red_setup(s, comm, fn, sbuf, total, dt, op, &in, &len)) != MPI_SUCCESS) SFM_NBC_FAIL(s, rc);
  if (len == 0) return sfm_b_start(s, comm, request);
  unit = len / (size_t)total;
  res = sfm_b_reduce0(s, c->rank, c->size, in, len);
  {
    size_t off = 0, mine = unit * (size_t)sfm_cnt(rcounts, rcount, c->rank);
    void *out = sfm_b_red_out(s, rbuf, sfm_cnt(rcounts, rcount, c->rank), dt, mine);
    if (c->rank == 0) {
      for (int i = 0; i < c->size; i++) {
        size_t bl = unit * (size_t)sfm_cnt(rcounts, rcount, i);
        if (i == 0)
          sfm_s_copy(s, res + off, out, bl);
        else
          sfm_s_send(s, res + off, bl, i, 0);
        off += bl;
      }
    } else {
      sfm_s_recv(s, out, mine, 0, 0);
    }
    sfm_s_round(s);
  }
  return sfm_b_start(s, comm, request);
}

int MPI_Ireduce_scatter(const void *sbuf, void *rbuf, const int rcounts[], MPI_Datatype dt, MPI_Op op, MPI_Comm comm,
                        MPI_Request *request) {
  return sfm_ireduce_scatter("MPI_Ireduce_scatter", sbuf, rbuf, rcounts, 0, dt, op, comm, request);
}
int MPI_Ireduce_scatter_block(const void *sbuf, void *rbuf, int rcount, MPI_Datatype dt, MPI_Op op, MPI_Comm comm,
                              MPI_Request *request) {
  return sfm_ireduce_scatter("MPI_Ireduce_scatter_block", sbuf, rbuf, NULL, rcount, dt, op, comm, request);
}
