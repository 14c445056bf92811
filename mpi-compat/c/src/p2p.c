/*
 * p2p.c: MPI point-to-point over the data plane: sends (standard, synchronous, ready),
 * receives, their non-blocking forms and the combined send-receives.
 *
 * Contiguous datatypes go straight from/to the user's buffer; others are packed into a
 * temporary buffer (send) or received into one and unpacked on completion (receive).
 */
#include "sfmpi.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- starting operations ----------------------------------------------------------------- */

int sfm_check_rank(MPI_Comm comm, const char *fn, const char *what, int r, int allow_any) {
  sfm_comm *c = sfm_comm_get(comm);
  if (r == MPI_PROC_NULL || (allow_any && r == MPI_ANY_SOURCE)) return MPI_SUCCESS;
  if (r < 0 || r >= c->size)
    return sfm_error(comm, fn, MPI_ERR_RANK, "%s %d out of range for a communicator of size %d", what, r, c->size);
  return MPI_SUCCESS;
}

/* MPI rank `r` of `c` (or a wildcard) as the data plane's peer. */
int sfm_peer(const sfm_comm *c, int r) {
  return r == MPI_PROC_NULL ? SF_PROC_NULL : r == MPI_ANY_SOURCE ? SF_ANY_SOURCE : c->world[r];
}

/* Check the arguments of a send or receive (raising the error through comm's handler). */
int sfm_p2p_args(const char *fn, int recv, int count, MPI_Datatype dt, int peer, int tag, MPI_Comm comm) {
  int rc;
  SFM_P2P_CHECK(fn, comm, c, dt, count);
  (void)c;
  if ((rc = sfm_check_rank(comm, fn, recv ? "source" : "dest", peer, recv)) != MPI_SUCCESS) return rc;
  if ((tag < 0 && !(recv && tag == MPI_ANY_TAG)) || tag > SF_TAG_MAX)
    return sfm_error(comm, fn, MPI_ERR_TAG, "tag %d out of range 0..%d%s", tag, SF_TAG_MAX, recv ? " (or MPI_ANY_TAG)" : "");
  return MPI_SUCCESS;
}

/* Start the data-plane operation of request rq (checked arguments): a send (SFM_RQ_SEND) or a
 * receive (SFM_RQ_RECV) of `count` items of `dt`. A non-contiguous type travels through a
 * temporary buffer, packed now or unpacked on completion (holding a reference to the type).
 * Returns an MPI code, not raised; on failure rq holds nothing. */
int sfm_req_post(sfm_req *rq, const char *fn, int kind, void *buf, int count, MPI_Datatype dt, int peer, int tag,
                 MPI_Comm comm, int sync) {
  int rc, recv = kind == SFM_RQ_RECV;
  sfm_comm *c = sfm_comm_get(comm);
  sfm_type *t = sfm_type_get(dt);
  size_t bytes = t->size * (size_t)count;
  void *data = buf;
  rq->kind = kind;
  rq->comm = comm;
  if (!t->contig && bytes) {
    rq->tmp = malloc(bytes);
    if (rq->tmp == NULL) return sfm_code(MPI_ERR_NO_MEM, "%s: out of memory for %zu bytes", fn, bytes);
    if (recv) {
      rq->ubuf = buf;
      rq->ucount = count;
      rq->utype = dt;
      sfm_type_ref(dt);
    } else {
      sfm_pack(t, buf, count, rq->tmp);
    }
    data = rq->tmp;
  }
  if (recv)
    rc = sf_irecv(sfm.job, data, bytes, sfm_peer(c, peer), c->ctx, tag == MPI_ANY_TAG ? SF_ANY_TAG : tag, &rq->req);
  else
    rc = sf_isend(sfm.job, data, bytes, sfm_peer(c, peer), c->ctx, tag, sync, &rq->req);
  if (rc < 0) {
    free(rq->tmp);
    rq->tmp = NULL;
    if (rq->utype) sfm_type_unref(rq->utype);
    rq->utype = MPI_DATATYPE_NULL;
    rq->req = NULL;
    return sfm_dp_code(fn, rc);
  }
  return MPI_SUCCESS;
}

/* Start a send or a receive as a new request. */
static int sfm_post(const char *fn, int kind, void *buf, int count, MPI_Datatype dt, int peer, int tag, MPI_Comm comm,
                    int sync, MPI_Request *request) {
  sfm_req *rq;
  sfm_comm *c = sfm_comm_get(comm);
  sfm_type *t = sfm_type_get(dt);
  int rc, recv = kind == SFM_RQ_RECV;
  /* Fast path (a window of small messages costs per call what it does here): contiguous data
   * and arguments that every check below would pass go straight to the data plane. */
  if (sfm.initialized && !sfm.finalized && c && t && t->committed && t->contig && count >= 0 && request &&
      ((peer >= 0 && peer < c->size) || (recv && peer == MPI_ANY_SOURCE)) &&
      (tag >= 0 || (recv && tag == MPI_ANY_TAG)) && tag <= SF_TAG_MAX) {
    size_t bytes = t->size * (size_t)count;
    if (sfm_req_new(request, &rq) < 0) return sfm_error(comm, fn, MPI_ERR_NO_MEM, "out of memory");
    rq->kind = kind;
    rq->comm = comm;
    if (recv)
      rc = sf_irecv(sfm.job, buf, bytes, peer == MPI_ANY_SOURCE ? SF_ANY_SOURCE : c->world[peer], c->ctx,
                    tag == MPI_ANY_TAG ? SF_ANY_TAG : tag, &rq->req);
    else
      rc = sf_isend(sfm.job, buf, bytes, c->world[peer], c->ctx, tag, sync, &rq->req);
    if (rc < 0) {
      rq->req = NULL;
      sfm_req_drop(*request);
      *request = MPI_REQUEST_NULL;
      return sfm_raise(comm, sfm_dp_code(fn, rc));
    }
    return MPI_SUCCESS;
  }
  rc = sfm_p2p_args(fn, recv, count, dt, peer, tag, comm);
  if (rc != MPI_SUCCESS) return rc;
  if (request == NULL) return sfm_error(comm, fn, MPI_ERR_ARG, "request is NULL");
  if (sfm_req_new(request, &rq) < 0) return sfm_error(comm, fn, MPI_ERR_NO_MEM, "out of memory");
  rc = sfm_req_post(rq, fn, kind, buf, count, dt, peer, tag, comm, sync);
  if (rc != MPI_SUCCESS) {
    sfm_req_drop(*request);
    *request = MPI_REQUEST_NULL;
    return sfm_raise(comm, rc);
  }
  return MPI_SUCCESS;
}

int sfm_isend(const char *fn, const void *buf, int count, MPI_Datatype dt, int dest, int tag, MPI_Comm comm, int sync,
              MPI_Request *request) {
  return sfm_post(fn, SFM_RQ_SEND, (void *)buf, count, dt, dest, tag, comm, sync, request);
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
  return sfm_post("MPI_Irecv", SFM_RQ_RECV, buf, count, dt, source, tag, comm, 0, request);
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
    return sfm_wait_result(comm, rc, code, NULL);
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
  return sfm_wait_result(comm, rc, code, status);
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
  return sfm_wait_result(comm, rc, code, status);
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

