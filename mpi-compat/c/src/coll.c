/*
 * coll.c: MPI collectives of one block per rank (barrier, broadcast, reductions, scans,
 * reduce-scatter) over the data plane's collectives.
 *
 * Each call checks its arguments (naming the faulty one), turns datatypes into byte blocks
 * (packing non-contiguous data into a temporary buffer), and calls the sf_* collective of the
 * communicator's collective context.
 */
#include "sfmpi.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int sfm_check_root(MPI_Comm comm, const char *fn, sfm_comm *c, int root) {
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
