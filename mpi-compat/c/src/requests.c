/*
 * requests.c: the MPI request table and completion: Wait/Test in all their forms,
 * MPI_Request_get_status, MPI_Request_free, and the detached requests (freed while pending,
 * buffered sends) that complete in the background.
 *
 * A request is one of
 *   SEND / RECV  a data-plane request (req), or none: completed at start or cancelled;
 *   DONE         complete when started (buffered sends, file operations): status stored;
 *   OBJ          completed by an object of its own (a schedule, a one-sided operation):
 *                ops->done says when; waiting for it blocks in sfm_wait_until (progress.c).
 * Persistent requests (persist.c) are SEND / RECV requests that stay allocated: completing
 * one makes it inactive, and an inactive request counts as a null one in every call here.
 */
#include "sfmpi.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the table ------------------------------------------------------------------------------ */

static int sfm_req_hint = 1;

/* An entry as new and in use. Field by field, not memset: a constant-size memset compiles to
 * rep stos, whose stores the fields read right after wait for (a third of MPI_Isend's samples in
 * a window of small messages). A field added to sfm_req is cleared here too. */
static inline void sfm_req_clear(sfm_req *rq) {
  static const MPI_Status st0;
  rq->used = 1;
  rq->kind = 0;
  rq->req = NULL;
  rq->comm = 0;
  rq->tmp = NULL;
  rq->ubuf = NULL;
  rq->ucount = 0;
  rq->utype = MPI_DATATYPE_NULL;
  rq->bsend_bytes = 0;
  rq->status = st0;
  rq->err = 0;
  rq->cancelled = 0;
  rq->persist = 0;
  rq->active = 0;
  rq->mode = 0;
  rq->pbuf = NULL;
  rq->pcount = 0;
  rq->ppeer = 0;
  rq->ptag = 0;
  rq->ptype = MPI_DATATYPE_NULL;
  rq->obj = NULL;
  rq->ops = NULL;
}

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
  sfm_req_clear(&sfm.reqs[i]);
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
  sfm.reqs[r].used = 0; /* sfm_req_new clears the entry when it hands it out again */
  if (r < sfm_req_hint) sfm_req_hint = r;
}

void sfm_empty_status(MPI_Status *st) {
  if (st == NULL) return;
  st->MPI_SOURCE = MPI_ANY_SOURCE;
  st->MPI_TAG = MPI_ANY_TAG;
  st->sf_count = 0;
  st->sf_cancelled = 0;
}

/* An inactive persistent request, or none at all, takes no part in completion calls. */
static int sfm_rq_active(const sfm_req *rq) { return rq && (!rq->persist || rq->active); }

/* Has an active request completed? (no progress is made here) */
static int sfm_rq_done(const sfm_req *rq) {
  switch (rq->kind) {
  case SFM_RQ_OBJ: return rq->ops->done(rq->obj);
  case SFM_RQ_DONE: return 1;
  default: return rq->req == NULL || sf_req_done(rq->req);
  }
}

/* Finish a completed SEND / RECV / DONE request: fill the MPI status, unpack, free temporaries.
 * Returns the request's own MPI error code (truncation), without applying the error handler. */
int sfm_finish(sfm_req *rq, int rc, const sf_status *st, MPI_Status *status, const char *fn) {
  int code = MPI_SUCCESS;
  if (rq->cancelled) {
    sfm_empty_status(status);
    if (status) status->sf_cancelled = 1;
  } else if (rq->kind == SFM_RQ_RECV) {
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
  } else if (rq->kind == SFM_RQ_DONE) {
    if (status) *status = rq->status;
    code = rq->err;
  } else {
    sfm_empty_status(status);
  }
  if (rc == SF_ETRUNCATE) code = sfm_dp_code(fn, rc);
  free(rq->tmp);
  rq->tmp = NULL;
  if (rq->utype) sfm_type_unref(rq->utype);
  rq->utype = MPI_DATATYPE_NULL;
  if (rq->bsend_bytes) sfm.bused -= rq->bsend_bytes;
  rq->bsend_bytes = 0;
  return code;
}

/* Complete a request whose operation finished: status, its own error code, then release it
 * (a persistent one becomes inactive and keeps its handle). */
static int sfm_complete(MPI_Request *request, sfm_req *rq, int rc, const sf_status *st, MPI_Status *status,
                        const char *fn) {
  int code;
  if (rq->kind == SFM_RQ_OBJ) {
    code = rq->ops->finish(rq->obj, status);
    rq->ops->release(rq->obj);
    rq->obj = NULL;
  } else {
    code = sfm_finish(rq, rc, st, status, fn);
  }
  if (rq->persist) {
    rq->active = 0;
    rq->req = NULL;
    rq->cancelled = 0;
  } else {
    sfm_req_drop(*request);
    *request = MPI_REQUEST_NULL;
  }
  return code;
}

/* ---- completion -------------------------------------------------------------------------- */

/* Wait for one request and complete it. Returns a failure of the wait itself (not raised);
 * the request's own error code goes to *req_code. */
int sfm_wait1(MPI_Request *request, MPI_Status *status, const char *fn, int *req_code) {
  sfm_req *rq = sfm_req_get(*request);
  sf_status st;
  int rc = 0;
  *req_code = MPI_SUCCESS;
  if (!sfm_rq_active(rq)) {
    sfm_empty_status(status);
    return MPI_SUCCESS;
  }
  memset(&st, 0, sizeof st);
  if (rq->kind == SFM_RQ_OBJ) {
    if (!rq->ops->done(rq->obj)) {
      int code = sfm_wait_until(rq->ops->done, NULL, rq->obj, fn);
      if (code != MPI_SUCCESS) return code;
    }
  } else if (rq->req) {
    if (sf_req_done(rq->req)) { /* the common case of a Waitall: no wait, no label */
      rc = sf_wait(sfm.job, rq->req, &st);
    } else {
      sf_job_set_label(sfm.job, fn);
      rc = sf_wait(sfm.job, rq->req, &st);
      sf_job_set_label(sfm.job, NULL);
    }
    if (rc < 0 && rc != SF_ETRUNCATE) return sfm_dp_code(fn, rc);
    sf_req_free(sfm.job, rq->req);
    rq->req = NULL;
  }
  *req_code = sfm_complete(request, rq, rc, &st, status, fn);
  return MPI_SUCCESS;
}

/* Complete a request known to be done (sf_wait on a done request does not block). */
static int sfm_take(MPI_Request *request, MPI_Status *status, const char *fn, int *code) {
  return sfm_wait1(request, status, fn, code);
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

static MPI_Comm sfm_req_comm(MPI_Request r) {
  sfm_req *rq = sfm_req_get(r);
  return rq ? rq->comm : MPI_COMM_WORLD;
}

int MPI_Wait(MPI_Request *request, MPI_Status *status) {
  int code, rc;
  MPI_Comm comm;
  SFM_INIT_CHECK("MPI_Wait");
  if (request == NULL) return sfm_error(MPI_COMM_WORLD, "MPI_Wait", MPI_ERR_REQUEST, "request is NULL");
  comm = sfm_req_comm(*request);
  rc = sfm_wait1(request, status, "MPI_Wait", &code);
  return sfm_wait_result(comm, rc, code, status);
}

int MPI_Waitall(int count, MPI_Request requests[], MPI_Status statuses[]) {
  int any_err = 0, rc, code;
  MPI_Comm comm = MPI_COMM_WORLD;
  SFM_INIT_CHECK("MPI_Waitall");
  if (count < 0 || (count > 0 && requests == NULL))
    return sfm_error(MPI_COMM_WORLD, "MPI_Waitall", MPI_ERR_ARG, "bad count %d or NULL requests", count);
  for (int i = 0; i < count; i++) {
    MPI_Status *st = statuses ? &statuses[i] : NULL;
    sfm_req *rq = sfm_req_get(requests[i]);
    if (rq) comm = rq->comm;
    /* The common case (a window of Isend/Irecv of contiguous data, statuses ignored): a request
     * that completed without error has no status, unpacking or buffer to see to; released here.
     * Anything else (or an error) takes the general path. */
    if (rq && st == NULL && rq->req && (rq->kind == SFM_RQ_SEND || rq->kind == SFM_RQ_RECV) && !rq->persist &&
        !rq->cancelled && rq->tmp == NULL && rq->utype == MPI_DATATYPE_NULL && rq->bsend_bytes == 0 &&
        sf_req_done(rq->req) && sf_wait(sfm.job, rq->req, NULL) == 0) {
      sf_req_free(sfm.job, rq->req);
      sfm_req_drop(requests[i]);
      requests[i] = MPI_REQUEST_NULL;
      continue;
    }
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

typedef struct {
  MPI_Request *reqs;
  int n;
} sfm_any_arg;

/* Index of the first active request that completed, -1 if none, -2 if no request is active. */
static int sfm_first_done(const MPI_Request *reqs, int n) {
  int active = 0;
  for (int i = 0; i < n; i++) {
    sfm_req *rq = sfm_req_get(reqs[i]);
    if (!sfm_rq_active(rq)) continue;
    active = 1;
    if (sfm_rq_done(rq)) return i;
  }
  return active ? -1 : -2;
}

static int sfm_any_done(void *arg) {
  sfm_any_arg *a = arg;
  return sfm_first_done(a->reqs, a->n) != -1;
}

/* Block until some active request of reqs[0..n-1] completed (or none is active). Returns a
 * failure of the wait (not raised). Data-plane requests alone wait in sf_wait_any; with a
 * request of another kind among them, in sfm_wait_until. */
static int sfm_wait_some_done(MPI_Request *reqs, int n, const char *fn) {
  sf_req **rs;
  int rc, idx, plain = 1;
  int first = sfm_first_done(reqs, n);
  if (first != -1) return MPI_SUCCESS;
  for (int i = 0; i < n; i++) {
    sfm_req *rq = sfm_req_get(reqs[i]);
    if (sfm_rq_active(rq) && rq->kind == SFM_RQ_OBJ) plain = 0;
  }
  if (!plain) {
    sfm_any_arg a = {reqs, n};
    return sfm_wait_until(sfm_any_done, NULL, &a, fn);
  }
  rs = calloc(n > 0 ? (size_t)n : 1u, sizeof *rs);
  if (rs == NULL) return sfm_code(MPI_ERR_NO_MEM, "%s: out of memory", fn);
  for (int i = 0; i < n; i++) {
    sfm_req *rq = sfm_req_get(reqs[i]);
    if (sfm_rq_active(rq)) rs[i] = rq->req;
  }
  sf_job_set_label(sfm.job, fn);
  rc = sf_wait_any(sfm.job, rs, n, &idx);
  sf_job_set_label(sfm.job, NULL);
  free(rs);
  return rc < 0 ? sfm_dp_code(fn, rc) : MPI_SUCCESS;
}

int MPI_Waitany(int count, MPI_Request requests[], int *index, MPI_Status *status) {
  int rc, idx, code;
  MPI_Comm comm;
  SFM_INIT_CHECK("MPI_Waitany");
  if (count < 0 || index == NULL || (count > 0 && requests == NULL))
    return sfm_error(MPI_COMM_WORLD, "MPI_Waitany", MPI_ERR_ARG, "bad arguments");
  *index = MPI_UNDEFINED;
  rc = sfm_wait_some_done(requests, count, "MPI_Waitany");
  if (rc != MPI_SUCCESS) return sfm_raise(MPI_COMM_WORLD, rc);
  idx = sfm_first_done(requests, count);
  if (idx < 0) {
    sfm_empty_status(status);
    return MPI_SUCCESS;
  }
  *index = idx;
  comm = sfm_req_comm(requests[idx]);
  rc = sfm_take(&requests[idx], status, "MPI_Waitany", &code);
  return sfm_wait_result(comm, rc, code, status);
}

/* Complete every active request that is done: *outcount of them, indices[] their positions. */
static int sfm_collect_done(int count, MPI_Request requests[], int *outcount, int indices[], MPI_Status statuses[],
                            const char *fn) {
  int n = 0, any_err = 0, code, active = 0;
  MPI_Comm comm = MPI_COMM_WORLD;
  for (int i = 0; i < count; i++) {
    sfm_req *rq = sfm_req_get(requests[i]);
    if (!sfm_rq_active(rq)) continue;
    active = 1;
    if (sfm_rq_done(rq)) {
      MPI_Status *st = statuses ? &statuses[n] : NULL;
      int rc;
      comm = rq->comm;
      rc = sfm_take(&requests[i], st, fn, &code);
      if (rc != MPI_SUCCESS) return sfm_raise(comm, rc);
      if (st) st->MPI_ERROR = code;
      if (code != MPI_SUCCESS) any_err = code;
      indices[n++] = i;
    }
  }
  *outcount = active ? n : MPI_UNDEFINED;
  if (any_err) return sfm_raise(comm, statuses ? sfm_code(MPI_ERR_IN_STATUS, "%s: a request failed", fn) : any_err);
  return MPI_SUCCESS;
}

int MPI_Waitsome(int incount, MPI_Request requests[], int *outcount, int indices[], MPI_Status statuses[]) {
  int rc;
  SFM_INIT_CHECK("MPI_Waitsome");
  if (incount < 0 || outcount == NULL || (incount > 0 && (requests == NULL || indices == NULL)))
    return sfm_error(MPI_COMM_WORLD, "MPI_Waitsome", MPI_ERR_ARG, "bad arguments");
  rc = sfm_wait_some_done(requests, incount, "MPI_Waitsome");
  if (rc != MPI_SUCCESS) return sfm_raise(MPI_COMM_WORLD, rc);
  return sfm_collect_done(incount, requests, outcount, indices, statuses, "MPI_Waitsome");
}

/* Make progress once and report whether the request completed (without completing it). */
static int sfm_test_done(sfm_req *rq, const char *fn, int *flag) {
  int rc;
  if (rq->kind != SFM_RQ_OBJ && rq->req) {
    rc = sf_test(sfm.job, rq->req, NULL);
    if (rc < 0 && rc != SF_ETRUNCATE) return sfm_dp_code(fn, rc);
    *flag = rc != 0;
    return MPI_SUCCESS;
  }
  if (rq->kind == SFM_RQ_OBJ && !rq->ops->done(rq->obj)) {
    rc = sf_progress(sfm.job);
    if (rc < 0) return sfm_dp_code(fn, rc);
  }
  *flag = sfm_rq_done(rq);
  return MPI_SUCCESS;
}

int MPI_Test(MPI_Request *request, int *flag, MPI_Status *status) {
  sfm_req *rq;
  int rc;
  SFM_INIT_CHECK("MPI_Test");
  if (request == NULL || flag == NULL) return sfm_error(MPI_COMM_WORLD, "MPI_Test", MPI_ERR_ARG, "NULL argument");
  rq = sfm_req_get(*request);
  if (!sfm_rq_active(rq)) {
    *flag = 1;
    sfm_empty_status(status);
    return MPI_SUCCESS;
  }
  rc = sfm_test_done(rq, "MPI_Test", flag);
  if (rc != MPI_SUCCESS) return sfm_raise(rq->comm, rc);
  if (!*flag) return MPI_SUCCESS;
  return MPI_Wait(request, status);
}

int MPI_Request_get_status(MPI_Request request, int *flag, MPI_Status *status) {
  sfm_req *rq;
  int rc;
  SFM_INIT_CHECK("MPI_Request_get_status");
  if (flag == NULL) return sfm_error(MPI_COMM_WORLD, "MPI_Request_get_status", MPI_ERR_ARG, "flag is NULL");
  rq = sfm_req_get(request);
  if (!sfm_rq_active(rq)) {
    *flag = 1;
    sfm_empty_status(status);
    return MPI_SUCCESS;
  }
  rc = sfm_test_done(rq, "MPI_Request_get_status", flag);
  if (rc != MPI_SUCCESS) return sfm_raise(rq->comm, rc);
  if (!*flag || status == NULL) return MPI_SUCCESS;
  sfm_empty_status(status);
  if (rq->cancelled) {
    status->sf_cancelled = 1;
  } else if (rq->kind == SFM_RQ_RECV && rq->req) {
    sfm_comm *c = sfm_comm_get(rq->comm);
    sf_status st;
    sf_test(sfm.job, rq->req, &st);
    status->MPI_SOURCE = st.source == SF_PROC_NULL ? MPI_PROC_NULL : (c ? c->inv[st.source] : st.source);
    status->MPI_TAG = st.source == SF_PROC_NULL ? MPI_ANY_TAG : st.tag;
    status->sf_count = (long long)st.count;
  } else if (rq->kind == SFM_RQ_DONE) {
    *status = rq->status;
  }
  return MPI_SUCCESS;
}

/* Make progress once for the Test*all/any/some family. */
static int sfm_progress_once(const char *fn) {
  int rc = sf_progress(sfm.job);
  return rc < 0 ? sfm_raise(MPI_COMM_WORLD, sfm_dp_code(fn, rc)) : MPI_SUCCESS;
}

int MPI_Testall(int count, MPI_Request requests[], int *flag, MPI_Status statuses[]) {
  int rc;
  SFM_INIT_CHECK("MPI_Testall");
  if (flag == NULL || count < 0) return sfm_error(MPI_COMM_WORLD, "MPI_Testall", MPI_ERR_ARG, "bad arguments");
  if ((rc = sfm_progress_once("MPI_Testall")) != MPI_SUCCESS) return rc;
  for (int i = 0; i < count; i++) {
    sfm_req *rq = sfm_req_get(requests[i]);
    if (sfm_rq_active(rq) && !sfm_rq_done(rq)) {
      *flag = 0;
      return MPI_SUCCESS;
    }
  }
  *flag = 1;
  return MPI_Waitall(count, requests, statuses);
}

int MPI_Testany(int count, MPI_Request requests[], int *index, int *flag, MPI_Status *status) {
  int rc, idx;
  SFM_INIT_CHECK("MPI_Testany");
  if (flag == NULL || index == NULL || count < 0) return sfm_error(MPI_COMM_WORLD, "MPI_Testany", MPI_ERR_ARG, "bad arguments");
  if ((rc = sfm_progress_once("MPI_Testany")) != MPI_SUCCESS) return rc;
  *index = MPI_UNDEFINED;
  idx = sfm_first_done(requests, count);
  if (idx == -2) {
    *flag = 1;
    sfm_empty_status(status);
    return MPI_SUCCESS;
  }
  if (idx < 0) {
    *flag = 0;
    return MPI_SUCCESS;
  }
  *flag = 1;
  *index = idx;
  return MPI_Wait(&requests[idx], status);
}

int MPI_Testsome(int incount, MPI_Request requests[], int *outcount, int indices[], MPI_Status statuses[]) {
  int rc;
  SFM_INIT_CHECK("MPI_Testsome");
  if (outcount == NULL || incount < 0) return sfm_error(MPI_COMM_WORLD, "MPI_Testsome", MPI_ERR_ARG, "bad arguments");
  if ((rc = sfm_progress_once("MPI_Testsome")) != MPI_SUCCESS) return rc;
  return sfm_collect_done(incount, requests, outcount, indices, statuses, "MPI_Testsome");
}

/* ---- freeing ------------------------------------------------------------------------------ */

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
  int inactive;
  SFM_INIT_CHECK("MPI_Request_free");
  if (request == NULL || (rq = sfm_req_get(*request)) == NULL)
    return sfm_error(MPI_COMM_WORLD, "MPI_Request_free", MPI_ERR_REQUEST, "invalid request");
  inactive = rq->persist && !rq->active;
  if (rq->persist && rq->ptype) sfm_type_unref(rq->ptype);
  rq->ptype = MPI_DATATYPE_NULL;
  rq->persist = 0; /* from here on an ordinary request: released once complete */
  if (!inactive && sfm_rq_done(rq)) {
    int code;
    return sfm_wait1(request, NULL, "MPI_Request_free", &code);
  }
  if (inactive) {
    /* nothing in flight */
  } else if (rq->kind == SFM_RQ_OBJ) {
    rq->ops->orphan(rq->obj);
  } else if (rq->tmp == NULL && rq->bsend_bytes == 0 && rq->utype == MPI_DATATYPE_NULL) {
    sf_req_free(sfm.job, rq->req);
  } else if (sfm_detach(rq) < 0) {
    return sfm_error(rq->comm, "MPI_Request_free", MPI_ERR_NO_MEM, "out of memory");
  }
  sfm_req_drop(*request);
  *request = MPI_REQUEST_NULL;
  return MPI_SUCCESS;
}
