/*
 * p2p.c: MPI point-to-point over the data plane: requests, sends (standard, synchronous,
 * ready, buffered), receives, probes, completion calls.
 *
 * Contiguous datatypes go straight from/to the user's buffer; others are packed into a
 * temporary buffer (send) or received into one and unpacked on completion (receive).
 */
#include "sfmpi.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- requests ---------------------------------------------------------------------------- */

static int sfm_req_hint = 1;

int sfm_req_new(MPI_Request *out, sfm_req **rq) {
  int i;
  for (i = sfm_req_hint; i < sfm.nreqs; i++)
    if (!sfm.reqs[i].used) break;
  if (i >= sfm.nreqs) {
    for (i = 1; i < sfm.nreqs && i < sfm_req_hint; i++)
      if (!sfm.reqs[i].used) break;
    if (i >= sfm.nreqs || i >= sfm_req_hint) {
      int nn = sfm.nreqs ? sfm.nreqs * 2 : 64;
      sfm_req *p = realloc(sfm.reqs, (size_t)nn * sizeof *p);
      if (p == NULL) return -1;
      memset(p + sfm.nreqs, 0, (size_t)(nn - sfm.nreqs) * sizeof *p);
      i = sfm.nreqs ? sfm.nreqs : 1;
      sfm.reqs = p;
      sfm.nreqs = nn;
    }
  }
  memset(&sfm.reqs[i], 0, sizeof sfm.reqs[i]);
  sfm.reqs[i].used = 1;
  sfm_req_hint = i + 1;
  *out = i;
  *rq = &sfm.reqs[i];
  return 0;
}

static sfm_req *sfm_req_get(MPI_Request r) {
  if (r <= 0 || r >= sfm.nreqs || !sfm.reqs[r].used) return NULL;
  return &sfm.reqs[r];
}

static void sfm_req_drop(MPI_Request r) {
  memset(&sfm.reqs[r], 0, sizeof sfm.reqs[r]);
  if (r < sfm_req_hint) sfm_req_hint = r;
}

static void sfm_empty_status(MPI_Status *st) {
  if (st == NULL) return;
  st->MPI_SOURCE = MPI_ANY_SOURCE;
  st->MPI_TAG = MPI_ANY_TAG;
  st->sf_count = 0;
  st->sf_cancelled = 0;
}

/* Finish a completed request: fill the MPI status, unpack, free temporaries. Returns the
 * request's own MPI error code (truncation), without applying the error handler. */
static int sfm_finish(sfm_req *rq, int rc, const sf_status *st, MPI_Status *status, const char *fn) {
  int code = MPI_SUCCESS;
  if (rq->kind == SFM_RQ_RECV) {
    sfm_comm *c = sfm_comm_get(rq->comm);
    if (status) {
      status->MPI_SOURCE = st->source == SF_PROC_NULL ? MPI_PROC_NULL : (c ? c->inv[st->source] : st->source);
      status->MPI_TAG = st->source == SF_PROC_NULL ? MPI_ANY_TAG : st->tag;
      status->sf_count = (long long)st->count;
      status->sf_cancelled = 0;
    }
    if (rq->tmp) {
      sfm_type *t = sfm_type_get(rq->utype);
      if (t) sfm_unpack(t, rq->tmp, st->count, rq->ubuf, rq->ucount);
    }
  } else if (status && rq->kind == SFM_RQ_SEND) {
    status->MPI_SOURCE = MPI_ANY_SOURCE;
    status->MPI_TAG = MPI_ANY_TAG;
    status->sf_count = 0;
    status->sf_cancelled = 0;
  }
  if (rq->kind == SFM_RQ_DONE && status) *status = rq->status;
  if (rc == SF_ETRUNCATE) code = sfm_dp_code(fn, rc);
  free(rq->tmp);
  rq->tmp = NULL;
  if (rq->bsend_bytes) sfm.bused -= rq->bsend_bytes;
  rq->bsend_bytes = 0;
  return code;
}

/* ---- starting operations ----------------------------------------------------------------- */

int sfm_check_rank(MPI_Comm comm, const char *fn, const char *what, int r, int allow_any) {
  sfm_comm *c = sfm_comm_get(comm);
  if (r == MPI_PROC_NULL || (allow_any && r == MPI_ANY_SOURCE)) return MPI_SUCCESS;
  if (r < 0 || r >= c->size)
    return sfm_error(comm, fn, MPI_ERR_RANK, "%s %d out of range for a communicator of size %d", what, r, c->size);
  return MPI_SUCCESS;
}

#define SFM_P2P_CHECK(fn, comm, c, dt, count)                                                    \
  SFM_INIT_CHECK(fn);                                                                          \
  sfm_comm *c = sfm_comm_get(comm);                                                            \
  if (c == NULL) return sfm_error(MPI_COMM_WORLD, fn, MPI_ERR_COMM, "invalid communicator %d", (int)(comm)); \
  if ((rc = sfm_type_check(comm, fn, dt, count)) != MPI_SUCCESS) return rc

static int sfm_isend(const char *fn, const void *buf, int count, MPI_Datatype dt, int dest, int tag, MPI_Comm comm,
                     int sync, MPI_Request *request) {
  int rc;
  sfm_req *rq;
  sfm_type *t;
  size_t bytes;
  const void *src = buf;
  SFM_P2P_CHECK(fn, comm, c, dt, count);
  if ((rc = sfm_check_rank(comm, fn, "dest", dest, 0)) != MPI_SUCCESS) return rc;
  if (tag < 0 || tag > SF_TAG_MAX) return sfm_error(comm, fn, MPI_ERR_TAG, "tag %d out of range 0..%d", tag, SF_TAG_MAX);
  if (request == NULL) return sfm_error(comm, fn, MPI_ERR_ARG, "request is NULL");
  if (sfm_req_new(request, &rq) < 0) return sfm_error(comm, fn, MPI_ERR_NO_MEM, "out of memory");
  t = sfm_type_get(dt);
  bytes = t->size * (size_t)count;
  rq->kind = SFM_RQ_SEND;
  rq->comm = comm;
  if (!t->contig && bytes) {
    rq->tmp = malloc(bytes);
    if (rq->tmp == NULL) {
      sfm_req_drop(*request);
      return sfm_error(comm, fn, MPI_ERR_NO_MEM, "out of memory packing %zu bytes", bytes);
    }
    sfm_pack(t, buf, count, rq->tmp);
    src = rq->tmp;
  }
  rc = sf_isend(sfm.job, src, bytes, dest == MPI_PROC_NULL ? SF_PROC_NULL : c->world[dest], c->ctx, tag, sync, &rq->req);
  if (rc < 0) {
    free(rq->tmp);
    sfm_req_drop(*request);
    *request = MPI_REQUEST_NULL;
    return sfm_dp_error(comm, fn, rc);
  }
  return MPI_SUCCESS;
}

int MPI_Isend(const void *buf, int count, MPI_Datatype dt, int dest, int tag, MPI_Comm comm, MPI_Request *request) {
  return sfm_isend("MPI_Isend", buf, count, dt, dest, tag, comm, 0, request);
}
int MPI_Issend(const void *buf, int count, MPI_Datatype dt, int dest, int tag, MPI_Comm comm, MPI_Request *request) {
  return sfm_isend("MPI_Issend", buf, count, dt, dest, tag, comm, 1, request);
}
int MPI_Irsend(const void *buf, int count, MPI_Datatype dt, int dest, int tag, MPI_Comm comm, MPI_Request *request) {
  return sfm_isend("MPI_Irsend", buf, count, dt, dest, tag, comm, 0, request);
}

int MPI_Irecv(void *buf, int count, MPI_Datatype dt, int source, int tag, MPI_Comm comm, MPI_Request *request) {
  int rc;
  sfm_req *rq;
  sfm_type *t;
  size_t bytes;
  void *dst = buf;
  const char *fn = "MPI_Irecv";
  SFM_P2P_CHECK(fn, comm, c, dt, count);
  if ((rc = sfm_check_rank(comm, fn, "source", source, 1)) != MPI_SUCCESS) return rc;
  if ((tag < 0 && tag != MPI_ANY_TAG) || tag > SF_TAG_MAX)
    return sfm_error(comm, fn, MPI_ERR_TAG, "tag %d out of range 0..%d (or MPI_ANY_TAG)", tag, SF_TAG_MAX);
  if (request == NULL) return sfm_error(comm, fn, MPI_ERR_ARG, "request is NULL");
  if (sfm_req_new(request, &rq) < 0) return sfm_error(comm, fn, MPI_ERR_NO_MEM, "out of memory");
  t = sfm_type_get(dt);
  bytes = t->size * (size_t)count;
  rq->kind = SFM_RQ_RECV;
  rq->comm = comm;
  if (!t->contig && bytes) {
    rq->tmp = malloc(bytes);
    if (rq->tmp == NULL) {
      sfm_req_drop(*request);
      return sfm_error(comm, fn, MPI_ERR_NO_MEM, "out of memory for %zu bytes", bytes);
    }
    rq->ubuf = buf;
    rq->ucount = count;
    rq->utype = dt;
    dst = rq->tmp;
  }
  rc = sf_irecv(sfm.job, dst, bytes,
                source == MPI_PROC_NULL ? SF_PROC_NULL : source == MPI_ANY_SOURCE ? SF_ANY_SOURCE : c->world[source],
                c->ctx, tag == MPI_ANY_TAG ? SF_ANY_TAG : tag, &rq->req);
  if (rc < 0) {
    free(rq->tmp);
    sfm_req_drop(*request);
    *request = MPI_REQUEST_NULL;
    return sfm_dp_error(comm, fn, rc);
  }
  return MPI_SUCCESS;
}

/* ---- completion -------------------------------------------------------------------------- */

/* Wait for one request and release it (*request = MPI_REQUEST_NULL). */
static int sfm_wait1(MPI_Request *request, MPI_Status *status, const char *fn, int *req_code) {
  sfm_req *rq = sfm_req_get(*request);
  sf_status st;
  int rc;
  *req_code = MPI_SUCCESS;
  if (rq == NULL) {
    sfm_empty_status(status);
    return MPI_SUCCESS;
  }
  memset(&st, 0, sizeof st);
  if (rq->req) {
    sf_job_set_label(sfm.job, fn);
    rc = sf_wait(sfm.job, rq->req, &st);
    sf_job_set_label(sfm.job, NULL);
    if (rc < 0 && rc != SF_ETRUNCATE) return sfm_dp_code(fn, rc);
    sf_req_free(sfm.job, rq->req);
    rq->req = NULL;
  } else {
    rc = 0;
  }
  *req_code = sfm_finish(rq, rc, &st, status, fn);
  sfm_req_drop(*request);
  *request = MPI_REQUEST_NULL;
  return MPI_SUCCESS;
}

int MPI_Wait(MPI_Request *request, MPI_Status *status) {
  int code, rc;
  SFM_INIT_CHECK("MPI_Wait");
  if (request == NULL) return sfm_error(MPI_COMM_WORLD, "MPI_Wait", MPI_ERR_REQUEST, "request is NULL");
  {
    sfm_req *rq = sfm_req_get(*request);
    MPI_Comm comm = rq ? rq->comm : MPI_COMM_WORLD;
    rc = sfm_wait1(request, status, "MPI_Wait", &code);
    if (rc != MPI_SUCCESS) return sfm_raise(comm, rc);
    if (code != MPI_SUCCESS) {
      if (status) status->MPI_ERROR = code;
      return sfm_raise(comm, code);
    }
  }
  return MPI_SUCCESS;
}

int MPI_Waitall(int count, MPI_Request requests[], MPI_Status statuses[]) {
  int any_err = 0, rc, code;
  MPI_Comm comm = MPI_COMM_WORLD;
  SFM_INIT_CHECK("MPI_Waitall");
  if (count < 0 || (count > 0 && requests == NULL))
    return sfm_error(MPI_COMM_WORLD, "MPI_Waitall", MPI_ERR_ARG, "bad count %d or NULL requests", count);
  for (int i = 0; i < count; i++) {
    sfm_req *rq = sfm_req_get(requests[i]);
    MPI_Status *st = statuses ? &statuses[i] : NULL;
    if (rq) comm = rq->comm;
    rc = sfm_wait1(&requests[i], st, "MPI_Waitall", &code);
    if (rc != MPI_SUCCESS) return sfm_raise(comm, rc);
    if (st) st->MPI_ERROR = code;
    if (code != MPI_SUCCESS) any_err = code;
  }
  if (any_err) {
    if (statuses == NULL) return sfm_raise(comm, any_err);
    return sfm_raise(comm, sfm_code(MPI_ERR_IN_STATUS, "MPI_Waitall: a request failed; see the statuses' MPI_ERROR"));
  }
  return MPI_SUCCESS;
}

int MPI_Waitany(int count, MPI_Request requests[], int *index, MPI_Status *status) {
  sf_req **rs;
  int rc, idx, code;
  MPI_Comm comm = MPI_COMM_WORLD;
  SFM_INIT_CHECK("MPI_Waitany");
  if (count < 0 || index == NULL || (count > 0 && requests == NULL))
    return sfm_error(MPI_COMM_WORLD, "MPI_Waitany", MPI_ERR_ARG, "bad arguments");
  rs = calloc((size_t)(count ? count : 1), sizeof *rs);
  if (rs == NULL) return sfm_error(MPI_COMM_WORLD, "MPI_Waitany", MPI_ERR_NO_MEM, "out of memory");
  *index = MPI_UNDEFINED;
  for (int i = 0; i < count; i++) {
    sfm_req *rq = sfm_req_get(requests[i]);
    if (rq == NULL) continue;
    comm = rq->comm;
    if (rq->req == NULL) { /* already complete */
      free(rs);
      *index = i;
      rc = sfm_wait1(&requests[i], status, "MPI_Waitany", &code);
      return code != MPI_SUCCESS ? sfm_raise(comm, code) : MPI_SUCCESS;
    }
    rs[i] = rq->req;
  }
  sf_job_set_label(sfm.job, "MPI_Waitany");
  rc = sf_wait_any(sfm.job, rs, count, &idx);
  sf_job_set_label(sfm.job, NULL);
  free(rs);
  if (rc < 0) return sfm_dp_error(comm, "MPI_Waitany", rc);
  if (idx < 0) {
    sfm_empty_status(status);
    return MPI_SUCCESS;
  }
  *index = idx;
  comm = sfm_req_get(requests[idx])->comm;
  rc = sfm_wait1(&requests[idx], status, "MPI_Waitany", &code);
  if (rc != MPI_SUCCESS) return sfm_raise(comm, rc);
  if (code != MPI_SUCCESS) {
    if (status) status->MPI_ERROR = code;
    return sfm_raise(comm, code);
  }
  return MPI_SUCCESS;
}

static int sfm_collect_done(int count, MPI_Request requests[], int *outcount, int indices[], MPI_Status statuses[],
                            const char *fn) {
  int n = 0, any_err = 0, code;
  MPI_Comm comm = MPI_COMM_WORLD;
  for (int i = 0; i < count; i++) {
    sfm_req *rq = sfm_req_get(requests[i]);
    if (rq == NULL) continue;
    if (rq->req == NULL || sf_req_done(rq->req)) {
      MPI_Status *st = statuses ? &statuses[n] : NULL;
      comm = rq->comm;
      sfm_wait1(&requests[i], st, fn, &code);
      if (st) st->MPI_ERROR = code;
      if (code != MPI_SUCCESS) any_err = code;
      indices[n++] = i;
    }
  }
  *outcount = n;
  if (any_err) return sfm_raise(comm, statuses ? sfm_code(MPI_ERR_IN_STATUS, "%s: a request failed", fn) : any_err);
  return MPI_SUCCESS;
}

int MPI_Waitsome(int incount, MPI_Request requests[], int *outcount, int indices[], MPI_Status statuses[]) {
  int idx, rc, active = 0;
  sf_req **rs;
  SFM_INIT_CHECK("MPI_Waitsome");
  if (incount < 0 || outcount == NULL || (incount > 0 && (requests == NULL || indices == NULL)))
    return sfm_error(MPI_COMM_WORLD, "MPI_Waitsome", MPI_ERR_ARG, "bad arguments");
  rs = calloc((size_t)(incount ? incount : 1), sizeof *rs);
  if (rs == NULL) return sfm_error(MPI_COMM_WORLD, "MPI_Waitsome", MPI_ERR_NO_MEM, "out of memory");
  for (int i = 0; i < incount; i++) {
    sfm_req *rq = sfm_req_get(requests[i]);
    if (rq == NULL) continue;
    active = 1;
    if (rq->req == NULL) {
      free(rs);
      return sfm_collect_done(incount, requests, outcount, indices, statuses, "MPI_Waitsome");
    }
    rs[i] = rq->req;
  }
  if (!active) {
    free(rs);
    *outcount = MPI_UNDEFINED;
    return MPI_SUCCESS;
  }
  sf_job_set_label(sfm.job, "MPI_Waitsome");
  rc = sf_wait_any(sfm.job, rs, incount, &idx);
  sf_job_set_label(sfm.job, NULL);
  free(rs);
  if (rc < 0) return sfm_dp_error(MPI_COMM_WORLD, "MPI_Waitsome", rc);
  return sfm_collect_done(incount, requests, outcount, indices, statuses, "MPI_Waitsome");
}

int MPI_Test(MPI_Request *request, int *flag, MPI_Status *status) {
  sfm_req *rq;
  int rc;
  SFM_INIT_CHECK("MPI_Test");
  if (request == NULL || flag == NULL) return sfm_error(MPI_COMM_WORLD, "MPI_Test", MPI_ERR_ARG, "NULL argument");
  rq = sfm_req_get(*request);
  if (rq == NULL) {
    *flag = 1;
    sfm_empty_status(status);
    return MPI_SUCCESS;
  }
  if (rq->req) {
    rc = sf_test(sfm.job, rq->req, NULL);
    if (rc < 0 && rc != SF_ETRUNCATE) return sfm_dp_error(rq->comm, "MPI_Test", rc);
    if (rc == 0) {
      *flag = 0;
      return MPI_SUCCESS;
    }
  }
  *flag = 1;
  return MPI_Wait(request, status);
}

int MPI_Testall(int count, MPI_Request requests[], int *flag, MPI_Status statuses[]) {
  int rc;
  SFM_INIT_CHECK("MPI_Testall");
  if (flag == NULL || count < 0) return sfm_error(MPI_COMM_WORLD, "MPI_Testall", MPI_ERR_ARG, "bad arguments");
  rc = sf_progress(sfm.job);
  if (rc < 0) return sfm_dp_error(MPI_COMM_WORLD, "MPI_Testall", rc);
  for (int i = 0; i < count; i++) {
    sfm_req *rq = sfm_req_get(requests[i]);
    if (rq && rq->req && !sf_req_done(rq->req)) {
      *flag = 0;
      return MPI_SUCCESS;
    }
  }
  *flag = 1;
  return MPI_Waitall(count, requests, statuses);
}

int MPI_Testany(int count, MPI_Request requests[], int *index, int *flag, MPI_Status *status) {
  int rc, active = 0;
  SFM_INIT_CHECK("MPI_Testany");
  if (flag == NULL || index == NULL || count < 0) return sfm_error(MPI_COMM_WORLD, "MPI_Testany", MPI_ERR_ARG, "bad arguments");
  rc = sf_progress(sfm.job);
  if (rc < 0) return sfm_dp_error(MPI_COMM_WORLD, "MPI_Testany", rc);
  *index = MPI_UNDEFINED;
  for (int i = 0; i < count; i++) {
    sfm_req *rq = sfm_req_get(requests[i]);
    if (rq == NULL) continue;
    active = 1;
    if (rq->req == NULL || sf_req_done(rq->req)) {
      *flag = 1;
      *index = i;
      return MPI_Wait(&requests[i], status);
    }
  }
  *flag = !active;
  if (!active) sfm_empty_status(status);
  return MPI_SUCCESS;
}

int MPI_Testsome(int incount, MPI_Request requests[], int *outcount, int indices[], MPI_Status statuses[]) {
  int rc, active = 0;
  SFM_INIT_CHECK("MPI_Testsome");
  if (outcount == NULL || incount < 0) return sfm_error(MPI_COMM_WORLD, "MPI_Testsome", MPI_ERR_ARG, "bad arguments");
  rc = sf_progress(sfm.job);
  if (rc < 0) return sfm_dp_error(MPI_COMM_WORLD, "MPI_Testsome", rc);
  for (int i = 0; i < incount; i++)
    if (sfm_req_get(requests[i])) active = 1;
  if (!active) {
    *outcount = MPI_UNDEFINED;
    return MPI_SUCCESS;
  }
  return sfm_collect_done(incount, requests, outcount, indices, statuses, "MPI_Testsome");
}

/* Detached requests: MPI_Request_free of a pending request, and buffered sends. */
static int sfm_detach(sfm_req *rq) {
  if (sfm.ndetached == sfm.capdetached) {
    int nc = sfm.capdetached ? sfm.capdetached * 2 : 16;
    sfm_req *p = realloc(sfm.detached, (size_t)nc * sizeof *p);
    if (p == NULL) return -1;
    sfm.detached = p;
    sfm.capdetached = nc;
  }
  sfm.detached[sfm.ndetached++] = *rq;
  return 0;
}

int sfm_progress_detached(void) {
  int k = 0;
  for (int i = 0; i < sfm.ndetached; i++) {
    sfm_req *rq = &sfm.detached[i];
    if (sf_req_done(rq->req)) {
      sf_status st;
      sf_test(sfm.job, rq->req, &st);
      sf_req_free(sfm.job, rq->req);
      sfm_finish(rq, 0, &st, NULL, "detached request");
    } else {
      sfm.detached[k++] = *rq;
    }
  }
  sfm.ndetached = k;
  return 0;
}

int sfm_drain_detached(const char *fn) {
  sf_progress(sfm.job);
  sfm_progress_detached();
  while (sfm.ndetached > 0) {
    int rc;
    sf_job_set_label(sfm.job, fn);
    rc = sf_wait(sfm.job, sfm.detached[0].req, NULL);
    sf_job_set_label(sfm.job, NULL);
    if (rc < 0 && rc != SF_ETRUNCATE) return sfm_dp_error(MPI_COMM_WORLD, fn, rc);
    sfm_progress_detached();
  }
  return MPI_SUCCESS;
}

int MPI_Request_free(MPI_Request *request) {
  sfm_req *rq;
  SFM_INIT_CHECK("MPI_Request_free");
  if (request == NULL || (rq = sfm_req_get(*request)) == NULL)
    return sfm_error(MPI_COMM_WORLD, "MPI_Request_free", MPI_ERR_REQUEST, "invalid request");
  if (rq->req == NULL || sf_req_done(rq->req)) {
    int code;
    return sfm_wait1(request, NULL, "MPI_Request_free", &code);
  }
  if (rq->tmp == NULL && rq->bsend_bytes == 0) {
    sf_req_free(sfm.job, rq->req);
  } else if (sfm_detach(rq) < 0) {
    return sfm_error(rq->comm, "MPI_Request_free", MPI_ERR_NO_MEM, "out of memory");
  }
  sfm_req_drop(*request);
  *request = MPI_REQUEST_NULL;
  return MPI_SUCCESS;
}

/* ---- blocking calls ---------------------------------------------------------------------- */

static int sfm_send(const char *fn, const void *buf, int count, MPI_Datatype dt, int dest, int tag, MPI_Comm comm, int sync) {
  sfm_comm *c = sfm_comm_get(comm);
  sfm_type *t = sfm_type_get(dt);
  MPI_Request r;
  int rc;
  /* Fast path: contiguous data, valid arguments: no MPI request at all. */
  if (sfm.initialized && !sfm.finalized && c && t && t->committed && t->contig && count >= 0 && dest >= 0 &&
      dest < c->size && tag >= 0 && tag <= SF_TAG_MAX) {
    sf_job_set_label(sfm.job, fn);
    rc = sf_send(sfm.job, buf, t->size * (size_t)count, c->world[dest], c->ctx, tag, sync);
    sf_job_set_label(sfm.job, NULL);
    return rc < 0 ? sfm_dp_error(comm, fn, rc) : MPI_SUCCESS;
  }
  rc = sfm_isend(fn, buf, count, dt, dest, tag, comm, sync, &r);
  if (rc != MPI_SUCCESS) return rc;
  {
    int code;
    rc = sfm_wait1(&r, NULL, fn, &code);
    if (rc != MPI_SUCCESS) return sfm_raise(comm, rc);
    return code != MPI_SUCCESS ? sfm_raise(comm, code) : MPI_SUCCESS;
  }
}

int MPI_Send(const void *buf, int count, MPI_Datatype dt, int dest, int tag, MPI_Comm comm) {
  return sfm_send("MPI_Send", buf, count, dt, dest, tag, comm, 0);
}
int MPI_Ssend(const void *buf, int count, MPI_Datatype dt, int dest, int tag, MPI_Comm comm) {
  return sfm_send("MPI_Ssend", buf, count, dt, dest, tag, comm, 1);
}
int MPI_Rsend(const void *buf, int count, MPI_Datatype dt, int dest, int tag, MPI_Comm comm) {
  return sfm_send("MPI_Rsend", buf, count, dt, dest, tag, comm, 0);
}

int MPI_Recv(void *buf, int count, MPI_Datatype dt, int source, int tag, MPI_Comm comm, MPI_Status *status) {
  sfm_comm *c = sfm_comm_get(comm);
  sfm_type *t = sfm_type_get(dt);
  MPI_Request r;
  int rc, code;
  if (sfm.initialized && !sfm.finalized && c && t && t->committed && t->contig && count >= 0 &&
      ((source >= 0 && source < c->size) || source == MPI_ANY_SOURCE) && tag >= MPI_ANY_TAG && tag <= SF_TAG_MAX) {
    sf_status st;
    sf_job_set_label(sfm.job, "MPI_Recv");
    rc = sf_recv(sfm.job, buf, t->size * (size_t)count, source == MPI_ANY_SOURCE ? SF_ANY_SOURCE : c->world[source],
                 c->ctx, tag, &st);
    sf_job_set_label(sfm.job, NULL);
    if (rc < 0 && rc != SF_ETRUNCATE) return sfm_dp_error(comm, "MPI_Recv", rc);
    if (status) {
      status->MPI_SOURCE = c->inv[st.source];
      status->MPI_TAG = st.tag;
      status->sf_count = (long long)st.count;
      status->sf_cancelled = 0;
    }
    if (rc == SF_ETRUNCATE) {
      code = sfm_dp_code("MPI_Recv", rc);
      if (status) status->MPI_ERROR = code;
      return sfm_raise(comm, code);
    }
    return MPI_SUCCESS;
  }
  rc = MPI_Irecv(buf, count, dt, source, tag, comm, &r);
  if (rc != MPI_SUCCESS) return rc;
  rc = sfm_wait1(&r, status, "MPI_Recv", &code);
  if (rc != MPI_SUCCESS) return sfm_raise(comm, rc);
  if (code != MPI_SUCCESS) {
    if (status) status->MPI_ERROR = code;
    return sfm_raise(comm, code);
  }
  return MPI_SUCCESS;
}

int MPI_Sendrecv(const void *sendbuf, int sendcount, MPI_Datatype sendtype, int dest, int sendtag, void *recvbuf,
                 int recvcount, MPI_Datatype recvtype, int source, int recvtag, MPI_Comm comm, MPI_Status *status) {
  MPI_Request rr, sr;
  int rc, code;
  rc = MPI_Irecv(recvbuf, recvcount, recvtype, source, recvtag, comm, &rr);
  if (rc != MPI_SUCCESS) return rc;
  rc = sfm_isend("MPI_Sendrecv", sendbuf, sendcount, sendtype, dest, sendtag, comm, 0, &sr);
  if (rc != MPI_SUCCESS) {
    MPI_Request_free(&rr);
    return rc;
  }
  rc = sfm_wait1(&sr, NULL, "MPI_Sendrecv", &code);
  if (rc != MPI_SUCCESS) return sfm_raise(comm, rc);
  rc = sfm_wait1(&rr, status, "MPI_Sendrecv", &code);
  if (rc != MPI_SUCCESS) return sfm_raise(comm, rc);
  if (code != MPI_SUCCESS) {
    if (status) status->MPI_ERROR = code;
    return sfm_raise(comm, code);
  }
  return MPI_SUCCESS;
}

int MPI_Sendrecv_replace(void *buf, int count, MPI_Datatype dt, int dest, int sendtag, int source, int recvtag,
                         MPI_Comm comm, MPI_Status *status) {
  sfm_type *t;
  void *tmp;
  int rc;
  SFM_INIT_CHECK("MPI_Sendrecv_replace");
  if ((rc = sfm_type_check(comm, "MPI_Sendrecv_replace", dt, count)) != MPI_SUCCESS) return rc;
  t = sfm_type_get(dt);
  tmp = malloc(t->size * (size_t)count + 1);
  if (tmp == NULL) return sfm_error(comm, "MPI_Sendrecv_replace", MPI_ERR_NO_MEM, "out of memory");
  sfm_pack(t, buf, count, tmp);
  rc = MPI_Sendrecv(tmp, (int)(t->size * (size_t)count), MPI_BYTE, dest, sendtag, buf, count, dt, source, recvtag, comm,
                    status);
  free(tmp);
  return rc;
}

/* ---- probes ------------------------------------------------------------------------------ */

static void sfm_probe_status(sfm_comm *c, const sf_status *st, MPI_Status *status) {
  if (status == NULL) return;
  status->MPI_SOURCE = st->source == SF_PROC_NULL ? MPI_PROC_NULL : c->inv[st->source];
  status->MPI_TAG = st->tag;
  status->sf_count = (long long)st->size;
  status->sf_cancelled = 0;
}

int MPI_Iprobe(int source, int tag, MPI_Comm comm, int *flag, MPI_Status *status) {
  sf_status st;
  int rc;
  SFM_INIT_CHECK("MPI_Iprobe");
  sfm_comm *c = sfm_comm_get(comm);
  if (c == NULL) return sfm_error(MPI_COMM_WORLD, "MPI_Iprobe", MPI_ERR_COMM, "invalid communicator %d", comm);
  if ((rc = sfm_check_rank(comm, "MPI_Iprobe", "source", source, 1)) != MPI_SUCCESS) return rc;
  if (flag == NULL) return sfm_error(comm, "MPI_Iprobe", MPI_ERR_ARG, "flag is NULL");
  rc = sf_iprobe(sfm.job, source == MPI_PROC_NULL ? SF_PROC_NULL : source == MPI_ANY_SOURCE ? SF_ANY_SOURCE : c->world[source],
                 c->ctx, tag, &st);
  if (rc < 0) return sfm_dp_error(comm, "MPI_Iprobe", rc);
  *flag = rc;
  if (rc) sfm_probe_status(c, &st, status);
  return MPI_SUCCESS;
}

int MPI_Probe(int source, int tag, MPI_Comm comm, MPI_Status *status) {
  sf_status st;
  int rc;
  SFM_INIT_CHECK("MPI_Probe");
  sfm_comm *c = sfm_comm_get(comm);
  if (c == NULL) return sfm_error(MPI_COMM_WORLD, "MPI_Probe", MPI_ERR_COMM, "invalid communicator %d", comm);
  if ((rc = sfm_check_rank(comm, "MPI_Probe", "source", source, 1)) != MPI_SUCCESS) return rc;
  sf_job_set_label(sfm.job, "MPI_Probe");
  rc = sf_probe(sfm.job, source == MPI_PROC_NULL ? SF_PROC_NULL : source == MPI_ANY_SOURCE ? SF_ANY_SOURCE : c->world[source],
                c->ctx, tag, &st);
  sf_job_set_label(sfm.job, NULL);
  if (rc < 0) return sfm_dp_error(comm, "MPI_Probe", rc);
  sfm_probe_status(c, &st, status);
  return MPI_SUCCESS;
}

/* ---- buffered sends ---------------------------------------------------------------------- */

int MPI_Buffer_attach(void *buffer, int size) {
  SFM_INIT_CHECK("MPI_Buffer_attach");
  if (sfm.bbuf) return sfm_error(MPI_COMM_WORLD, "MPI_Buffer_attach", MPI_ERR_BUFFER, "a buffer is already attached");
  if (buffer == NULL || size < 0) return sfm_error(MPI_COMM_WORLD, "MPI_Buffer_attach", MPI_ERR_BUFFER, "invalid buffer or size %d", size);
  sfm.bbuf = buffer;
  sfm.bsize = (size_t)size;
  sfm.bused = 0;
  return MPI_SUCCESS;
}

int MPI_Buffer_detach(void *buffer_addr, int *size) {
  int rc;
  SFM_INIT_CHECK("MPI_Buffer_detach");
  rc = sfm_drain_detached("MPI_Buffer_detach");
  if (rc != MPI_SUCCESS) return rc;
  if (buffer_addr) *(void **)buffer_addr = sfm.bbuf;
  if (size) *size = (int)sfm.bsize;
  sfm.bbuf = NULL;
  sfm.bsize = sfm.bused = 0;
  return MPI_SUCCESS;
}

static int sfm_bsend(const char *fn, const void *buf, int count, MPI_Datatype dt, int dest, int tag, MPI_Comm comm,
                     MPI_Request *request) {
  int rc;
  sfm_type *t;
  size_t bytes, need;
  MPI_Request r;
  sfm_req *rq;
  SFM_P2P_CHECK(fn, comm, c, dt, count);
  if ((rc = sfm_check_rank(comm, fn, "dest", dest, 0)) != MPI_SUCCESS) return rc;
  if (tag < 0 || tag > SF_TAG_MAX) return sfm_error(comm, fn, MPI_ERR_TAG, "tag %d out of range 0..%d", tag, SF_TAG_MAX);
  sf_progress(sfm.job);
  sfm_progress_detached();
  t = sfm_type_get(dt);
  bytes = t->size * (size_t)count;
  need = bytes + MPI_BSEND_OVERHEAD;
  if (sfm.bbuf == NULL)
    return sfm_error(comm, fn, MPI_ERR_BUFFER, "no buffer attached (MPI_Buffer_attach) for a %zu-byte buffered send", bytes);
  if (sfm.bused + need > sfm.bsize)
    return sfm_error(comm, fn, MPI_ERR_BUFFER,
                     "%zu bytes (+%d overhead) do not fit in the attached buffer (%zu bytes, %zu in use)", bytes,
                     MPI_BSEND_OVERHEAD, sfm.bsize, sfm.bused);
  /* Copy into a private buffer now (the attached memory is only accounted for), so the
   * caller may reuse its buffer at once and the send never blocks. */
  (void)r;
  {
    sfm_req tmp;
    memset(&tmp, 0, sizeof tmp);
    tmp.used = 1;
    tmp.kind = SFM_RQ_SEND;
    tmp.comm = comm;
    tmp.tmp = malloc(bytes ? bytes : 1);
    if (tmp.tmp == NULL) return sfm_error(comm, fn, MPI_ERR_NO_MEM, "out of memory");
    sfm_pack(t, buf, count, tmp.tmp);
    rc = sf_isend(sfm.job, tmp.tmp, bytes, dest == MPI_PROC_NULL ? SF_PROC_NULL : c->world[dest], c->ctx, tag, 0, &tmp.req);
    if (rc < 0) {
      free(tmp.tmp);
      return sfm_dp_error(comm, fn, rc);
    }
    tmp.bsend_bytes = need;
    sfm.bused += need;
    rq = &tmp;
    if (sfm_detach(rq) < 0) return sfm_error(comm, fn, MPI_ERR_NO_MEM, "out of memory");
    sfm_progress_detached();
  }
  if (request) {
    sfm_req *done;
    if (sfm_req_new(request, &done) < 0) return sfm_error(comm, fn, MPI_ERR_NO_MEM, "out of memory");
    done->kind = SFM_RQ_DONE;
    done->comm = comm;
    sfm_empty_status(&done->status);
  }
  return MPI_SUCCESS;
}

int MPI_Bsend(const void *buf, int count, MPI_Datatype dt, int dest, int tag, MPI_Comm comm) {
  return sfm_bsend("MPI_Bsend", buf, count, dt, dest, tag, comm, NULL);
}

int MPI_Ibsend(const void *buf, int count, MPI_Datatype dt, int dest, int tag, MPI_Comm comm, MPI_Request *request) {
  if (request == NULL) return sfm_error(comm, "MPI_Ibsend", MPI_ERR_ARG, "request is NULL");
  return sfm_bsend("MPI_Ibsend", buf, count, dt, dest, tag, comm, request);
}
