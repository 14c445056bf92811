/*
 * coll_v.c: MPI collectives of one block per pair of ranks (gather, scatter, allgather,
 * all-to-all and their v forms), as byte-block layouts over the data plane's collectives.
 */
#include "sfmpi.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- block layouts (gather/scatter/allgather/alltoall) --------------------------------------- */


void sfm_lay_free(sfm_lay *l) {
  free(l->lens);
  free(l->displs);
  free(l->tmp);
  memset(l, 0, sizeof *l);
}

/* Blocks i = 0..n-1 of counts[i] (or `count`) items at udispls[i] (or i*count) extents. */
int sfm_lay_make(sfm_lay *l, sfm_type *t, void *ubuf, int n, const int *counts, int count, const int *udispls,
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

void sfm_lay_unpack(sfm_lay *l, sfm_type *t, void *ubuf, int n, const int *counts, int count, const int *udispls) {
  if (l->tmp == NULL) return;
  for (int i = 0; i < n; i++) {
    int ci = counts ? counts[i] : count;
    sfm_unpack(t, (char *)l->tmp + l->displs[i], l->lens[i],
               (char *)ubuf + (MPI_Aint)(udispls ? udispls[i] : i * count) * t->extent, ci);
  }
}

int sfm_counts_ok(MPI_Comm comm, const char *fn, const char *what, const int *counts, int n) {
  if (counts == NULL) return sfm_error(comm, fn, MPI_ERR_ARG, "%s is NULL", what);
  for (int i = 0; i < n; i++)
    if (counts[i] < 0) return sfm_error(comm, fn, MPI_ERR_COUNT, "%s[%d] = %d is negative", what, i, counts[i]);
  return MPI_SUCCESS;
}

/* One side's arguments: a committed type, and (for the v forms) n non-negative counts. */
static int sfm_side_check(MPI_Comm comm, const char *fn, MPI_Datatype t, const int *counts, int count, int n,
                          const char *what) {
  int rc = sfm_type_check(comm, fn, t, counts ? 0 : count);
  if (rc == MPI_SUCCESS && counts) rc = sfm_counts_ok(comm, fn, what, counts, n);
  return rc;
}

/* The one end of every call here: free both layouts, clear the label, report the data plane's
 * code (or, with nomem set, that a layout could not be allocated). */
static int sfm_lay_end(MPI_Comm comm, const char *fn, sfm_lay *s, sfm_lay *r, int rc, int nomem) {
  sfm_lay_free(s);
  sfm_lay_free(r);
  if (nomem) SFM_RET(sfm_error(comm, fn, MPI_ERR_NO_MEM, "out of memory"));
  return SFM_DONE(comm, fn, rc);
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
    if ((rc = sfm_side_check(comm, fn, rtype, rcounts, rcount, c->size, "recvcounts")) != MPI_SUCCESS) SFM_RET(rc);
    if (sfm_lay_make(&r, sfm_type_get(rtype), rbuf, c->size, rcounts, rcount, displs, inplace) < 0) goto nomem;
  }
  if (!inplace && sfm_lay_make(&s, sfm_type_get(stype), (void *)sbuf, 1, NULL, scount, NULL, 1) < 0) goto nomem;
  rc = sf_gatherv(sfm.job, &g, inplace ? NULL : s.work, inplace ? 0 : s.lens[0], r.work, r.lens, r.displs, root);
  if (rc >= 0 && c->rank == root) sfm_lay_unpack(&r, sfm_type_get(rtype), rbuf, c->size, rcounts, rcount, displs);
  return sfm_lay_end(comm, fn, &s, &r, rc, 0);
nomem:
  return sfm_lay_end(comm, fn, &s, &r, 0, 1);
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
    if ((rc = sfm_side_check(comm, fn, stype, scounts, scount, c->size, "sendcounts")) != MPI_SUCCESS) SFM_RET(rc);
    if (sfm_lay_make(&s, sfm_type_get(stype), (void *)sbuf, c->size, scounts, scount, displs, 1) < 0) goto nomem;
  }
  if (!inplace && sfm_lay_make(&r, sfm_type_get(rtype), rbuf, 1, NULL, rcount, NULL, 0) < 0) goto nomem;
  rc = sf_scatterv(sfm.job, &g, s.work, s.lens, s.displs, inplace ? NULL : r.work, inplace ? 0 : r.lens[0], root);
  if (rc >= 0 && !inplace) sfm_lay_unpack(&r, sfm_type_get(rtype), rbuf, 1, NULL, rcount, NULL);
  return sfm_lay_end(comm, fn, &s, &r, rc, 0);
nomem:
  return sfm_lay_end(comm, fn, &s, &r, 0, 1);
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
  if ((rc = sfm_side_check(comm, fn, rtype, rcounts, rcount, c->size, "recvcounts")) != MPI_SUCCESS) SFM_RET(rc);
  if (sfm_lay_make(&r, sfm_type_get(rtype), rbuf, c->size, rcounts, rcount, displs, inplace) < 0) goto nomem;
  if (!inplace && sfm_lay_make(&s, sfm_type_get(stype), (void *)sbuf, 1, NULL, scount, NULL, 1) < 0) goto nomem;
  rc = sf_allgatherv(sfm.job, &g, inplace ? NULL : s.work, inplace ? 0 : s.lens[0], r.work, r.lens, r.displs);
  if (rc >= 0) sfm_lay_unpack(&r, sfm_type_get(rtype), rbuf, c->size, rcounts, rcount, displs);
  return sfm_lay_end(comm, fn, &s, &r, rc, 0);
nomem:
  return sfm_lay_end(comm, fn, &s, &r, 0, 1);
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
  if ((rc = sfm_side_check(comm, fn, stype, scounts, scount, c->size, "sendcounts")) != MPI_SUCCESS) SFM_RET(rc);
  if ((rc = sfm_side_check(comm, fn, rtype, rcounts, rcount, c->size, "recvcounts")) != MPI_SUCCESS) SFM_RET(rc);
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
  return sfm_lay_end(comm, fn, &s, &r, rc, 0);
nomem:
  return sfm_lay_end(comm, fn, &s, &r, 0, 1);
}

int MPI_Alltoall(const void *sbuf, int scount, MPI_Datatype stype, void *rbuf, int rcount, MPI_Datatype rtype,
                 MPI_Comm comm) {
  return sfm_alltoallv("MPI_Alltoall", sbuf, NULL, scount, NULL, stype, rbuf, NULL, rcount, NULL, rtype, comm);
}
int MPI_Alltoallv(const void *sbuf, const int scounts[], const int sdispls[], MPI_Datatype stype, void *rbuf,
                  const int rcounts[], const int rdispls[], MPI_Datatype rtype, MPI_Comm comm) {
  return sfm_alltoallv("MPI_Alltoallv", sbuf, scounts, 0, sdispls, stype, rbuf, rcounts, 0, rdispls, rtype, comm);
}

