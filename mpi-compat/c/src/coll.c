/*
 * coll.c: MPI collectives and reduction operations over the data plane's collectives.
 *
 * Each call checks its arguments (naming the faulty one), turns datatypes into byte blocks
 * (packing non-contiguous data into a temporary buffer), and calls the sf_* collective of the
 * communicator's collective context. Predefined ops run in the data plane (sf_builtin_combine);
 * user ops are called on the data in the datatype's own layout, lower ranks as `invec`.
 */
#include "sfmpi.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int sfm_ops_init(void) {
  sfm.nops = 32;
  sfm.ops = calloc((size_t)sfm.nops, sizeof *sfm.ops);
  if (sfm.ops == NULL) return -1;
  for (int i = 1; i <= MPI_NO_OP; i++) {
    sfm.ops[i].used = 1;
    sfm.ops[i].commute = 1;
  }
  return 0;
}

static const char *sfm_op_name(MPI_Op op) {
  static const char *names[] = {"MPI_OP_NULL", "MPI_MAX", "MPI_MIN", "MPI_SUM", "MPI_PROD", "MPI_LAND", "MPI_BAND",
                                "MPI_LOR", "MPI_BOR", "MPI_LXOR", "MPI_BXOR", "MPI_MAXLOC", "MPI_MINLOC",
                                "MPI_REPLACE", "MPI_NO_OP"};
  return op >= 0 && op <= MPI_NO_OP ? names[op] : "user op";
}

int MPI_Op_create(MPI_User_function *fn, int commute, MPI_Op *op) {
  int i;
  SFM_INIT_CHECK("MPI_Op_create");
  if (fn == NULL || op == NULL) return sfm_error(MPI_COMM_WORLD, "MPI_Op_create", MPI_ERR_ARG, "NULL function or op");
  for (i = MPI_NO_OP + 1; i < sfm.nops; i++)
    if (!sfm.ops[i].used) break;
  if (i >= sfm.nops) {
    int nn = sfm.nops * 2;
    sfm_op *p = realloc(sfm.ops, (size_t)nn * sizeof *p);
    if (p == NULL) return sfm_error(MPI_COMM_WORLD, "MPI_Op_create", MPI_ERR_NO_MEM, "out of memory");
    memset(p + sfm.nops, 0, (size_t)(nn - sfm.nops) * sizeof *p);
    sfm.ops = p;
    sfm.nops = nn;
  }
  sfm.ops[i].used = 1;
  sfm.ops[i].fn = fn;
  sfm.ops[i].commute = commute;
  *op = i;
  return MPI_SUCCESS;
}

int MPI_Op_free(MPI_Op *op) {
  SFM_INIT_CHECK("MPI_Op_free");
  if (op == NULL || *op <= MPI_NO_OP || *op >= sfm.nops || !sfm.ops[*op].used)
    return sfm_error(MPI_COMM_WORLD, "MPI_Op_free", MPI_ERR_OP, "invalid or predefined op %d", op ? *op : -1);
  sfm.ops[*op].used = 0;
  *op = MPI_OP_NULL;
  return MPI_SUCCESS;
}

int MPI_Op_commutative(MPI_Op op, int *commute) {
  if (op <= 0 || op >= sfm.nops || !sfm.ops[op].used || commute == NULL)
    return sfm_error(MPI_COMM_WORLD, "MPI_Op_commutative", MPI_ERR_OP, "invalid op %d", op);
  *commute = sfm.ops[op].commute;
  return MPI_SUCCESS;
}

/* ---- reduction set-up -------------------------------------------------------------------- */

typedef struct sfm_red {
  sf_combine_fn fn;
  void *arg;
  sf_builtin_arg b;
  MPI_User_function *ufn;
  MPI_Datatype dt;
  sfm_type *t;
  size_t unit;  /* bytes per datatype item in the wire layout */
  int packed;   /* wire layout is packed (predefined op on a non-contiguous type) */
} sfm_red;

static int sfm_user_combine(const void *in, void *inout, size_t nbytes, void *arg) {
  sfm_red *r = arg;
  int n = (int)(nbytes / r->unit);
  MPI_Datatype d = r->dt;
  r->ufn((void *)in, inout, &n, &d);
  return 0;
}

static int sfm_red_setup(MPI_Comm comm, const char *fn, MPI_Datatype dt, MPI_Op op, int count, sfm_red *r) {
  int rc = sfm_type_check(comm, fn, dt, count);
  if (rc != MPI_SUCCESS) return rc;
  memset(r, 0, sizeof *r);
  r->t = sfm_type_get(dt);
  r->dt = dt;
  if (op <= 0 || op >= sfm.nops || !sfm.ops[op].used) return sfm_error(comm, fn, MPI_ERR_OP, "invalid op %d", op);
  if (op <= MPI_NO_OP) {
    if (r->t->homog < 0 || !sf_op_valid((sf_op)(op - 1), (sf_dtype)r->t->homog))
      return sfm_error(comm, fn, MPI_ERR_OP, "%s is not defined for %s", sfm_op_name(op), sfm_type_name(dt));
    r->b.op = (sf_op)(op - 1);
    r->b.type = (sf_dtype)r->t->homog;
    r->fn = sf_builtin_combine;
    r->arg = &r->b;
    r->packed = !r->t->contig;
    r->unit = r->t->size;
  } else {
    r->ufn = sfm.ops[op].fn;
    r->fn = sfm_user_combine;
    r->arg = r;
    r->packed = 0;
    r->unit = (size_t)r->t->extent;
    if (r->unit == 0) r->unit = 1;
  }
  return MPI_SUCCESS;
}

/* Input in wire layout: the user's buffer, or a packed copy (*tmp). */
static const void *sfm_red_in(sfm_red *r, const void *buf, int count, void **tmp) {
  *tmp = NULL;
  if (!r->packed) return buf;
  *tmp = malloc(r->unit * (size_t)count + 1);
  if (*tmp == NULL) return NULL;
  sfm_pack(r->t, buf, count, *tmp);
  return *tmp;
}

#define SFM_COLL(fn, comm, c)                                                                      \
  SFM_INIT_CHECK(fn);                                                                            \
  sfm_comm *c = sfm_comm_get(comm);                                                              \
  if (c == NULL) return sfm_error(MPI_COMM_WORLD, fn, MPI_ERR_COMM, "invalid communicator %d", (int)(comm)); \
  sf_group g = sfm_coll_group(c);                                                                \
  (void)g;                                                                                       \
  sf_job_set_label(sfm.job, fn)

#define SFM_DONE(comm, fn, rc) (sf_job_set_label(sfm.job, NULL), (rc) < 0 ? sfm_dp_error(comm, fn, rc) : MPI_SUCCESS)
#define SFM_RET(x) do { sf_job_set_label(sfm.job, NULL); return (x); } while (0)

static int sfm_check_root(MPI_Comm comm, const char *fn, sfm_comm *c, int root) {
  if (root < 0 || root >= c->size)
    return sfm_error(comm, fn, MPI_ERR_ROOT, "root %d out of range for a communicator of size %d", root, c->size);
  return MPI_SUCCESS;
}

int MPI_Barrier(MPI_Comm comm) {
  int rc;
  SFM_COLL("MPI_Barrier", comm, c);
  (void)c;
  rc = sf_barrier(sfm.job, &g);
  return SFM_DONE(comm, "MPI_Barrier", rc);
}

int MPI_Bcast(void *buf, int count, MPI_Datatype dt, int root, MPI_Comm comm) {
  int rc;
  sfm_type *t;
  void *tmp = NULL;
  size_t bytes;
  SFM_COLL("MPI_Bcast", comm, c);
  if ((rc = sfm_type_check(comm, "MPI_Bcast", dt, count)) != MPI_SUCCESS) SFM_RET(rc);
  if ((rc = sfm_check_root(comm, "MPI_Bcast", c, root)) != MPI_SUCCESS) SFM_RET(rc);
  t = sfm_type_get(dt);
  bytes = t->size * (size_t)count;
  if (t->contig) {
    rc = sf_bcast(sfm.job, &g, buf, bytes, root);
  } else {
    tmp = malloc(bytes + 1);
    if (tmp == NULL) SFM_RET(sfm_error(comm, "MPI_Bcast", MPI_ERR_NO_MEM, "out of memory"));
    if (c->rank == root) sfm_pack(t, buf, count, tmp);
    rc = sf_bcast(sfm.job, &g, tmp, bytes, root);
    if (rc >= 0 && c->rank != root) sfm_unpack(t, tmp, bytes, buf, count);
    free(tmp);
  }
  return SFM_DONE(comm, "MPI_Bcast", rc);
}

/* kind: 0 reduce, 1 allreduce, 2 scan, 3 exscan */
static int sfm_reduce_any(const char *fn, int kind, const void *sbuf, void *rbuf, int count, MPI_Datatype dt, MPI_Op op,
                          int root, MPI_Comm comm) {
  sfm_red r;
  int rc, inplace = sbuf == MPI_IN_PLACE, is_root;
  void *ts = NULL, *tr = NULL;
  const void *in;
  void *out;
  size_t bytes;
  SFM_COLL(fn, comm, c);
  if ((rc = sfm_red_setup(comm, fn, dt, op, count, &r)) != MPI_SUCCESS) SFM_RET(rc);
  if (kind == 0 && (rc = sfm_check_root(comm, fn, c, root)) != MPI_SUCCESS) SFM_RET(rc);
  is_root = kind != 0 || c->rank == root;
  if (inplace && kind == 0 && !is_root) inplace = 0; /* MPI_IN_PLACE only means something at the root */
  bytes = r.unit * (size_t)count;
  if (count == 0) SFM_RET(MPI_SUCCESS);
  in = sfm_red_in(&r, inplace ? rbuf : sbuf, count, &ts);
  if (in == NULL && bytes) SFM_RET(sfm_error(comm, fn, MPI_ERR_NO_MEM, "out of memory"));
  if (kind == 0 && !is_root) {
    out = NULL; /* only the root receives */
  } else if (r.packed || !is_root) {
    tr = malloc(bytes + 1);
    if (tr == NULL) {
      free(ts);
      SFM_RET(sfm_error(comm, fn, MPI_ERR_NO_MEM, "out of memory"));
    }
    out = tr;
  } else {
    out = rbuf;
  }
  if (in == out && out != NULL) in = NULL; /* data plane's in-place form */
  switch (kind) {
  case 0: rc = sf_reduce(sfm.job, &g, in, out, bytes, r.fn, r.arg, root); break;
  case 1: rc = sf_allreduce(sfm.job, &g, in, out, bytes, r.fn, r.arg); break;
  case 2: rc = sf_scan(sfm.job, &g, in, out, bytes, r.fn, r.arg); break;
  default:
    rc = sf_exscan(sfm.job, &g, in, out, bytes, r.fn, r.arg);
    if (c->rank == 0) is_root = 0; /* exscan leaves rank 0's buffer undefined: do not touch it */
    break;
  }
  if (rc >= 0 && is_root && out != rbuf) {
    if (r.packed)
      sfm_unpack(r.t, out, bytes, rbuf, count);
    else
      memcpy(rbuf, out, bytes);
  }
  free(ts);
  free(tr);
  return SFM_DONE(comm, fn, rc);
}

int MPI_Reduce(const void *sbuf, void *rbuf, int count, MPI_Datatype dt, MPI_Op op, int root, MPI_Comm comm) {
  return sfm_reduce_any("MPI_Reduce", 0, sbuf, rbuf, count, dt, op, root, comm);
}
int MPI_Allreduce(const void *sbuf, void *rbuf, int count, MPI_Datatype dt, MPI_Op op, MPI_Comm comm) {
  return sfm_reduce_any("MPI_Allreduce", 1, sbuf, rbuf, count, dt, op, 0, comm);
}
int MPI_Scan(const void *sbuf, void *rbuf, int count, MPI_Datatype dt, MPI_Op op, MPI_Comm comm) {
  return sfm_reduce_any("MPI_Scan", 2, sbuf, rbuf, count, dt, op, 0, comm);
}
int MPI_Exscan(const void *sbuf, void *rbuf, int count, MPI_Datatype dt, MPI_Op op, MPI_Comm comm) {
  return sfm_reduce_any("MPI_Exscan", 3, sbuf, rbuf, count, dt, op, 0, comm);
}

/* ---- block layouts (gather/scatter/allgather/alltoall) --------------------------------------- */

typedef struct sfm_lay {
  size_t *lens, *displs;
  void *work; /* where the data plane reads/writes */
  void *tmp;  /* packed buffer, or NULL when work is the user's buffer */
} sfm_lay;

static void sfm_lay_free(sfm_lay *l) {
  free(l->lens);
  free(l->displs);
  free(l->tmp);
  memset(l, 0, sizeof *l);
}

/* Blocks i = 0..n-1 of counts[i] (or `count`) items at udispls[i] (or i*count) extents. */
static int sfm_lay_make(sfm_lay *l, sfm_type *t, void *ubuf, int n, const int *counts, int count, const int *udispls,
                        int pack_now) {
  size_t total = 0;
  memset(l, 0, sizeof *l);
  l->lens = malloc((size_t)n * sizeof(size_t));
  l->displs = malloc((size_t)n * sizeof(size_t));
  if (l->lens == NULL || l->displs == NULL) goto nomem;
  for (int i = 0; i < n; i++) {
    int ci = counts ? counts[i] : count;
    if (ci < 0) ci = 0;
    l->lens[i] = t->size * (size_t)ci;
    if (t->contig)
      l->displs[i] = (size_t)((MPI_Aint)(udispls ? udispls[i] : i * count) * t->extent);
    else
      l->displs[i] = total;
    total += l->lens[i];
  }
  if (t->contig) {
    l->work = ubuf;
    return 0;
  }
  l->tmp = malloc(total + 1);
  if (l->tmp == NULL) goto nomem;
  l->work = l->tmp;
  if (pack_now)
    for (int i = 0; i < n; i++) {
      int ci = counts ? counts[i] : count;
      sfm_pack(t, (char *)ubuf + (MPI_Aint)(udispls ? udispls[i] : i * count) * t->extent, ci,
               (char *)l->tmp + l->displs[i]);
    }
  return 0;
nomem:
  sfm_lay_free(l);
  return -1;
}

static void sfm_lay_unpack(sfm_lay *l, sfm_type *t, void *ubuf, int n, const int *counts, int count, const int *udispls) {
  if (l->tmp == NULL) return;
  for (int i = 0; i < n; i++) {
    int ci = counts ? counts[i] : count;
    sfm_unpack(t, (char *)l->tmp + l->displs[i], l->lens[i],
               (char *)ubuf + (MPI_Aint)(udispls ? udispls[i] : i * count) * t->extent, ci);
  }
}

static int sfm_counts_ok(MPI_Comm comm, const char *fn, const char *what, const int *counts, int n) {
  if (counts == NULL) return sfm_error(comm, fn, MPI_ERR_ARG, "%s is NULL", what);
  for (int i = 0; i < n; i++)
    if (counts[i] < 0) return sfm_error(comm, fn, MPI_ERR_COUNT, "%s[%d] = %d is negative", what, i, counts[i]);
  return MPI_SUCCESS;
}

static int sfm_gatherv(const char *fn, const void *sbuf, int scount, MPI_Datatype stype, void *rbuf, const int *rcounts,
                       int rcount, const int *displs, MPI_Datatype rtype, int root, MPI_Comm comm) {
  int rc, inplace;
  sfm_lay s, r;
  SFM_COLL(fn, comm, c);
  memset(&s, 0, sizeof s);
  memset(&r, 0, sizeof r);
  if ((rc = sfm_check_root(comm, fn, c, root)) != MPI_SUCCESS) SFM_RET(rc);
  inplace = sbuf == MPI_IN_PLACE && c->rank == root;
  if (!inplace && (rc = sfm_type_check(comm, fn, stype, scount)) != MPI_SUCCESS) SFM_RET(rc);
  if (c->rank == root) {
    if ((rc = sfm_type_check(comm, fn, rtype, rcounts ? 0 : rcount)) != MPI_SUCCESS) SFM_RET(rc);
    if (rcounts && (rc = sfm_counts_ok(comm, fn, "recvcounts", rcounts, c->size)) != MPI_SUCCESS) SFM_RET(rc);
    if (sfm_lay_make(&r, sfm_type_get(rtype), rbuf, c->size, rcounts, rcount, displs, inplace) < 0) goto nomem;
  }
  if (!inplace && sfm_lay_make(&s, sfm_type_get(stype), (void *)sbuf, 1, NULL, scount, NULL, 1) < 0) goto nomem;
  rc = sf_gatherv(sfm.job, &g, inplace ? NULL : s.work, inplace ? 0 : s.lens[0], r.work, r.lens, r.displs, root);
  if (rc >= 0 && c->rank == root) sfm_lay_unpack(&r, sfm_type_get(rtype), rbuf, c->size, rcounts, rcount, displs);
  sfm_lay_free(&s);
  sfm_lay_free(&r);
  return SFM_DONE(comm, fn, rc);
nomem:
  sfm_lay_free(&s);
  sfm_lay_free(&r);
  SFM_RET(sfm_error(comm, fn, MPI_ERR_NO_MEM, "out of memory"));
}

int MPI_Gather(const void *sbuf, int scount, MPI_Datatype stype, void *rbuf, int rcount, MPI_Datatype rtype, int root,
               MPI_Comm comm) {
  return sfm_gatherv("MPI_Gather", sbuf, scount, stype, rbuf, NULL, rcount, NULL, rtype, root, comm);
}
int MPI_Gatherv(const void *sbuf, int scount, MPI_Datatype stype, void *rbuf, const int rcounts[], const int displs[],
                MPI_Datatype rtype, int root, MPI_Comm comm) {
  return sfm_gatherv("MPI_Gatherv", sbuf, scount, stype, rbuf, rcounts, 0, displs, rtype, root, comm);
}

static int sfm_scatterv(const char *fn, const void *sbuf, const int *scounts, int scount, const int *displs,
                        MPI_Datatype stype, void *rbuf, int rcount, MPI_Datatype rtype, int root, MPI_Comm comm) {
  int rc, inplace;
  sfm_lay s, r;
  SFM_COLL(fn, comm, c);
  memset(&s, 0, sizeof s);
  memset(&r, 0, sizeof r);
  if ((rc = sfm_check_root(comm, fn, c, root)) != MPI_SUCCESS) SFM_RET(rc);
  inplace = rbuf == MPI_IN_PLACE && c->rank == root;
  if (!inplace && (rc = sfm_type_check(comm, fn, rtype, rcount)) != MPI_SUCCESS) SFM_RET(rc);
  if (c->rank == root) {
    if ((rc = sfm_type_check(comm, fn, stype, scounts ? 0 : scount)) != MPI_SUCCESS) SFM_RET(rc);
    if (scounts && (rc = sfm_counts_ok(comm, fn, "sendcounts", scounts, c->size)) != MPI_SUCCESS) SFM_RET(rc);
    if (sfm_lay_make(&s, sfm_type_get(stype), (void *)sbuf, c->size, scounts, scount, displs, 1) < 0) goto nomem;
  }
  if (!inplace && sfm_lay_make(&r, sfm_type_get(rtype), rbuf, 1, NULL, rcount, NULL, 0) < 0) goto nomem;
  rc = sf_scatterv(sfm.job, &g, s.work, s.lens, s.displs, inplace ? NULL : r.work, inplace ? 0 : r.lens[0], root);
  if (rc >= 0 && !inplace) sfm_lay_unpack(&r, sfm_type_get(rtype), rbuf, 1, NULL, rcount, NULL);
  sfm_lay_free(&s);
  sfm_lay_free(&r);
  return SFM_DONE(comm, fn, rc);
nomem:
  sfm_lay_free(&s);
  sfm_lay_free(&r);
  SFM_RET(sfm_error(comm, fn, MPI_ERR_NO_MEM, "out of memory"));
}

int MPI_Scatter(const void *sbuf, int scount, MPI_Datatype stype, void *rbuf, int rcount, MPI_Datatype rtype, int root,
                MPI_Comm comm) {
  return sfm_scatterv("MPI_Scatter", sbuf, NULL, scount, NULL, stype, rbuf, rcount, rtype, root, comm);
}
int MPI_Scatterv(const void *sbuf, const int scounts[], const int displs[], MPI_Datatype stype, void *rbuf, int rcount,
                 MPI_Datatype rtype, int root, MPI_Comm comm) {
  return sfm_scatterv("MPI_Scatterv", sbuf, scounts, 0, displs, stype, rbuf, rcount, rtype, root, comm);
}

static int sfm_allgatherv(const char *fn, const void *sbuf, int scount, MPI_Datatype stype, void *rbuf,
                          const int *rcounts, int rcount, const int *displs, MPI_Datatype rtype, MPI_Comm comm) {
  int rc, inplace = sbuf == MPI_IN_PLACE;
  sfm_lay s, r;
  SFM_COLL(fn, comm, c);
  memset(&s, 0, sizeof s);
  memset(&r, 0, sizeof r);
  if (!inplace && (rc = sfm_type_check(comm, fn, stype, scount)) != MPI_SUCCESS) SFM_RET(rc);
  if ((rc = sfm_type_check(comm, fn, rtype, rcounts ? 0 : rcount)) != MPI_SUCCESS) SFM_RET(rc);
  if (rcounts && (rc = sfm_counts_ok(comm, fn, "recvcounts", rcounts, c->size)) != MPI_SUCCESS) SFM_RET(rc);
  if (sfm_lay_make(&r, sfm_type_get(rtype), rbuf, c->size, rcounts, rcount, displs, inplace) < 0) goto nomem;
  if (!inplace && sfm_lay_make(&s, sfm_type_get(stype), (void *)sbuf, 1, NULL, scount, NULL, 1) < 0) goto nomem;
  rc = sf_allgatherv(sfm.job, &g, inplace ? NULL : s.work, inplace ? 0 : s.lens[0], r.work, r.lens, r.displs);
  if (rc >= 0) sfm_lay_unpack(&r, sfm_type_get(rtype), rbuf, c->size, rcounts, rcount, displs);
  sfm_lay_free(&s);
  sfm_lay_free(&r);
  return SFM_DONE(comm, fn, rc);
nomem:
  sfm_lay_free(&s);
  sfm_lay_free(&r);
  SFM_RET(sfm_error(comm, fn, MPI_ERR_NO_MEM, "out of memory"));
}

int MPI_Allgather(const void *sbuf, int scount, MPI_Datatype stype, void *rbuf, int rcount, MPI_Datatype rtype,
                  MPI_Comm comm) {
  return sfm_allgatherv("MPI_Allgather", sbuf, scount, stype, rbuf, NULL, rcount, NULL, rtype, comm);
}
int MPI_Allgatherv(const void *sbuf, int scount, MPI_Datatype stype, void *rbuf, const int rcounts[], const int displs[],
                   MPI_Datatype rtype, MPI_Comm comm) {
  return sfm_allgatherv("MPI_Allgatherv", sbuf, scount, stype, rbuf, rcounts, 0, displs, rtype, comm);
}

static int sfm_alltoallv(const char *fn, const void *sbuf, const int *scounts, int scount, const int *sdispls,
                         MPI_Datatype stype, void *rbuf, const int *rcounts, int rcount, const int *rdispls,
                         MPI_Datatype rtype, MPI_Comm comm) {
  int rc, inplace = sbuf == MPI_IN_PLACE;
  sfm_lay s, r;
  SFM_COLL(fn, comm, c);
  memset(&s, 0, sizeof s);
  memset(&r, 0, sizeof r);
  if (inplace) { /* the send data is what recvbuf holds, in the receive layout */
    sbuf = rbuf;
    scounts = rcounts;
    scount = rcount;
    sdispls = rdispls;
    stype = rtype;
  }
  if ((rc = sfm_type_check(comm, fn, stype, scounts ? 0 : scount)) != MPI_SUCCESS) SFM_RET(rc);
  if ((rc = sfm_type_check(comm, fn, rtype, rcounts ? 0 : rcount)) != MPI_SUCCESS) SFM_RET(rc);
  if (scounts && (rc = sfm_counts_ok(comm, fn, "sendcounts", scounts, c->size)) != MPI_SUCCESS) SFM_RET(rc);
  if (rcounts && (rc = sfm_counts_ok(comm, fn, "recvcounts", rcounts, c->size)) != MPI_SUCCESS) SFM_RET(rc);
  if (sfm_lay_make(&s, sfm_type_get(stype), (void *)sbuf, c->size, scounts, scount, sdispls, 1) < 0) goto nomem;
  if (inplace && s.tmp == NULL) { /* contiguous: still need a separate copy to send from */
    size_t end = 0;
    for (int i = 0; i < c->size; i++)
      if (s.displs[i] + s.lens[i] > end) end = s.displs[i] + s.lens[i];
    s.tmp = malloc(end + 1);
    if (s.tmp == NULL) goto nomem;
    memcpy(s.tmp, rbuf, end);
    s.work = s.tmp;
  }
  if (sfm_lay_make(&r, sfm_type_get(rtype), rbuf, c->size, rcounts, rcount, rdispls, 0) < 0) goto nomem;
  rc = sf_alltoallv(sfm.job, &g, s.work, s.lens, s.displs, r.work, r.lens, r.displs);
  if (rc >= 0) sfm_lay_unpack(&r, sfm_type_get(rtype), rbuf, c->size, rcounts, rcount, rdispls);
  sfm_lay_free(&s);
  sfm_lay_free(&r);
  return SFM_DONE(comm, fn, rc);
nomem:
  sfm_lay_free(&s);
  sfm_lay_free(&r);
  SFM_RET(sfm_error(comm, fn, MPI_ERR_NO_MEM, "out of memory"));
}

int MPI_Alltoall(const void *sbuf, int scount, MPI_Datatype stype, void *rbuf, int rcount, MPI_Datatype rtype,
                 MPI_Comm comm) {
  return sfm_alltoallv("MPI_Alltoall", sbuf, NULL, scount, NULL, stype, rbuf, NULL, rcount, NULL, rtype, comm);
}
int MPI_Alltoallv(const void *sbuf, const int scounts[], const int sdispls[], MPI_Datatype stype, void *rbuf,
                  const int rcounts[], const int rdispls[], MPI_Datatype rtype, MPI_Comm comm) {
  return sfm_alltoallv("MPI_Alltoallv", sbuf, scounts, 0, sdispls, stype, rbuf, rcounts, 0, rdispls, rtype, comm);
}

static int sfm_reduce_scatter(const char *fn, const void *sbuf, void *rbuf, const int *rcounts, int rcount,
                              MPI_Datatype dt, MPI_Op op, MPI_Comm comm) {
  sfm_red r;
  int rc, total = 0, *displs = NULL, *counts = NULL, inplace = sbuf == MPI_IN_PLACE;
  void *full = NULL;
  SFM_COLL(fn, comm, c);
  if (rcounts && (rc = sfm_counts_ok(comm, fn, "recvcounts", rcounts, c->size)) != MPI_SUCCESS) SFM_RET(rc);
  counts = malloc((size_t)c->size * sizeof(int));
  displs = malloc((size_t)c->size * sizeof(int));
  if (counts == NULL || displs == NULL) goto nomem;
  for (int i = 0; i < c->size; i++) {
    counts[i] = rcounts ? rcounts[i] : rcount;
    displs[i] = total;
    total += counts[i];
  }
  if ((rc = sfm_red_setup(comm, fn, dt, op, total, &r)) != MPI_SUCCESS) {
    free(counts);
    free(displs);
    SFM_RET(rc);
  }
  full = malloc((size_t)sfm_type_get(dt)->extent * (size_t)total + 1);
  if (full == NULL) goto nomem;
  sf_job_set_label(sfm.job, NULL);
  rc = MPI_Reduce(inplace ? rbuf : sbuf, full, total, dt, op, 0, comm);
  if (rc == MPI_SUCCESS)
    rc = MPI_Scatterv(full, counts, displs, dt, rbuf, counts[c->rank], dt, 0, comm);
  free(full);
  free(counts);
  free(displs);
  return rc;
nomem:
  free(counts);
  free(displs);
  SFM_RET(sfm_error(comm, fn, MPI_ERR_NO_MEM, "out of memory"));
}

int MPI_Reduce_scatter(const void *sbuf, void *rbuf, const int rcounts[], MPI_Datatype dt, MPI_Op op, MPI_Comm comm) {
  return sfm_reduce_scatter("MPI_Reduce_scatter", sbuf, rbuf, rcounts, 0, dt, op, comm);
}
int MPI_Reduce_scatter_block(const void *sbuf, void *rbuf, int rcount, MPI_Datatype dt, MPI_Op op, MPI_Comm comm) {
  return sfm_reduce_scatter("MPI_Reduce_scatter_block", sbuf, rbuf, NULL, rcount, dt, op, comm);
}
