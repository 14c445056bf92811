/*
 * requests.c: the MPI request table and completion: Wait/Test in all their forms,
 * MPI_Request_free, and the detached requests (freed while pending, buffered sends) that
 * complete in the background.
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

sfm_req *sfm_req_get(MPI_Request r) {
  if (r <= 0 || r >= sfm.nreqs || !sfm.reqs[r].used) return NULL;
  return &sfm.reqs[r];
}

void sfm_req_drop(MPI_Request r) {
  memset(&sfm.reqs[r], 0, sizeof sfm.reqs[r]);
  if (r < sfm_req_hint) sfm_req_hint = r;
}

void sfm_empty_status(MPI_Status *st) {
  if (st == NULL) return;
  st->MPI_SOURCE = MPI_ANY_SOURCE;
  st->MPI_TAG = MPI_ANY_TAG;
  st->sf_count = 0;
  st->sf_cancelled = 0;
}

/* Finish a completed request: fill the MPI status, unpack, free temporaries. Returns the
 * request's own MPI error code (truncation), without applying the error handler. */
int sfm_finish(sfm_req *rq, int rc, const sf_status *st, MPI_Status *status, const char *fn) {
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

/* ---- completion -------------------------------------------------------------------------- */

/* Wait for one request and release it (*request = MPI_REQUEST_NULL). */
int sfm_wait1(MPI_Request *request, MPI_Status *status, const char *fn, int *req_code) {
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

/* The outcome of a completed wait: `rc` a failure of the wait itself, `code` the request's own
 * error (stored in status->MPI_ERROR), each raised through comm's error handler. */
int sfm_wait_result(MPI_Comm comm, int rc, int code, MPI_Status *status) {
  if (rc != MPI_SUCCESS) return sfm_raise(comm, rc);
  if (code != MPI_SUCCESS) {
    if (status) status->MPI_ERROR = code;
    return sfm_raise(comm, code);
  }
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
    return sfm_wait_result(comm, rc, code, status);
  }
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
  return sfm_wait_result(comm, rc, code, status);
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
int sfm_detach(sfm_req *rq) {
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

