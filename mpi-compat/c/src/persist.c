/*
 * persist.c: persistent requests (MPI_Send_init ... MPI_Start/Startall) and MPI_Cancel.
 *
 * A persistent request keeps its arguments (and a reference to its datatype, so the program
 * may free the type meanwhile); MPI_Start posts the operation into the same request, and
 * completing it makes the request inactive again (requests.c), ready for the next start.
 *
 * MPI_Cancel withdraws a receive that no message has matched yet (the data plane's
 * sf_req_free withdraws a posted receive). A send cannot be withdrawn once the data plane has
 * it: a send that completed (every eager send does, at once) is "not cancelled", as MPI
 * allows, and a send still pending (a rendezvous message whose receiver has not matched it)
 * is refused with MPI_ERR_UNSUPPORTED_OPERATION rather than left to hang in MPI_Wait.
 */
#include "sfmpi.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const sfm_init_fn[] = {"MPI_Send_init", "MPI_Ssend_init", "MPI_Bsend_init", "MPI_Rsend_init"};

static int sfm_persist_new(const char *fn, int kind, int mode, void *buf, int count, MPI_Datatype dt, int peer, int tag,
                           MPI_Comm comm, MPI_Request *request) {
  sfm_req *rq;
  int rc = sfm_p2p_args(fn, kind == SFM_RQ_RECV, count, dt, peer, tag, comm);
  if (rc != MPI_SUCCESS) return rc;
  if (request == NULL) return sfm_error(comm, fn, MPI_ERR_ARG, "request is NULL");
  if (sfm_req_new(request, &rq) < 0) return sfm_error(comm, fn, MPI_ERR_NO_MEM, "out of memory");
  rq->kind = kind;
  rq->comm = comm;
  rq->persist = 1;
  rq->active = 0;
  rq->mode = mode;
  rq->pbuf = buf;
  rq->pcount = count;
  rq->ptype = dt;
  rq->ppeer = peer;
  rq->ptag = tag;
  sfm_type_ref(dt);
  return MPI_SUCCESS;
}

int MPI_Send_init(const void *buf, int count, MPI_Datatype dt, int dest, int tag, MPI_Comm comm, MPI_Request *request) {
  return sfm_persist_new(sfm_init_fn[SFM_MODE_STD], SFM_RQ_SEND, SFM_MODE_STD, (void *)buf, count, dt, dest, tag, comm,
                         request);
}
int MPI_Ssend_init(const void *buf, int count, MPI_Datatype dt, int dest, int tag, MPI_Comm comm, MPI_Request *request) {
  return sfm_persist_new(sfm_init_fn[SFM_MODE_SYNC], SFM_RQ_SEND, SFM_MODE_SYNC, (void *)buf, count, dt, dest, tag, comm,
                         request);
}
int MPI_Bsend_init(const void *buf, int count, MPI_Datatype dt, int dest, int tag, MPI_Comm comm, MPI_Request *request) {
  return sfm_persist_new(sfm_init_fn[SFM_MODE_BUF], SFM_RQ_SEND, SFM_MODE_BUF, (void *)buf, count, dt, dest, tag, comm,
                         request);
}
int MPI_Rsend_init(const void *buf, int count, MPI_Datatype dt, int dest, int tag, MPI_Comm comm, MPI_Request *request) {
  return sfm_persist_new(sfm_init_fn[SFM_MODE_READY], SFM_RQ_SEND, SFM_MODE_READY, (void *)buf, count, dt, dest, tag,
                         comm, request);
}
int MPI_Recv_init(void *buf, int count, MPI_Datatype dt, int source, int tag, MPI_Comm comm, MPI_Request *request) {
  return sfm_persist_new("MPI_Recv_init", SFM_RQ_RECV, SFM_MODE_STD, buf, count, dt, source, tag, comm, request);
}

static int sfm_start1(MPI_Request r, const char *fn) {
  sfm_req *rq = sfm_req_get(r);
  int rc;
  if (rq == NULL || !rq->persist)
    return sfm_error(MPI_COMM_WORLD, fn, MPI_ERR_REQUEST, "request %d is not a persistent request", (int)r);
  if (rq->active) return sfm_error(rq->comm, fn, MPI_ERR_REQUEST, "request %d is already active (started, not completed)", (int)r);
  if (sfm_comm_get(rq->comm) == NULL)
    return sfm_error(MPI_COMM_WORLD, fn, MPI_ERR_COMM, "the communicator of request %d was freed", (int)r);
  if (rq->mode == SFM_MODE_BUF) {
    /* the data is copied out now: the request is complete as soon as it starts */
    MPI_Comm comm = rq->comm;
    void *buf = rq->pbuf;
    int count = rq->pcount, peer = rq->ppeer, tag = rq->ptag;
    MPI_Datatype dt = rq->ptype;
    rc = sfm_bsend(fn, buf, count, dt, peer, tag, comm, NULL);
    if (rc != MPI_SUCCESS) return rc;
    rq = sfm_req_get(r); /* the table may have moved */
    rq->req = NULL;
    rq->active = 1;
    return MPI_SUCCESS;
  }
  rc = sfm_req_post(rq, fn, rq->kind, rq->pbuf, rq->pcount, rq->ptype, rq->ppeer, rq->ptag, rq->comm,
                    rq->mode == SFM_MODE_SYNC);
  if (rc != MPI_SUCCESS) return sfm_raise(rq->comm, rc);
  rq->active = 1;
  rq->cancelled = 0;
  return MPI_SUCCESS;
}

int MPI_Start(MPI_Request *request) {
  SFM_INIT_CHECK("MPI_Start");
  if (request == NULL) return sfm_error(MPI_COMM_WORLD, "MPI_Start", MPI_ERR_REQUEST, "request is NULL");
  return sfm_start1(*request, "MPI_Start");
}

int MPI_Startall(int count, MPI_Request requests[]) {
  SFM_INIT_CHECK("MPI_Startall");
  if (count < 0 || (count > 0 && requests == NULL))
    return sfm_error(MPI_COMM_WORLD, "MPI_Startall", MPI_ERR_ARG, "bad count %d or NULL requests", count);
  for (int i = 0; i < count; i++) {
    int rc = sfm_start1(requests[i], "MPI_Startall");
    if (rc != MPI_SUCCESS) return rc;
  }
  return MPI_SUCCESS;
}

int MPI_Cancel(MPI_Request *request) {
  sfm_req *rq;
  int rc;
  SFM_INIT_CHECK("MPI_Cancel");
  if (request == NULL || (rq = sfm_req_get(*request)) == NULL)
    return sfm_error(MPI_COMM_WORLD, "MPI_Cancel", MPI_ERR_REQUEST, "invalid request");
  if (rq->persist && !rq->active)
    return sfm_error(rq->comm, "MPI_Cancel", MPI_ERR_REQUEST, "request %d is an inactive persistent request", *request);
  if (rq->kind == SFM_RQ_OBJ)
    return sfm_error(rq->comm, "MPI_Cancel", MPI_ERR_REQUEST,
                     "request %d is a non-blocking collective or one-sided operation, which MPI does not let a program cancel",
                     *request);
  if (rq->kind == SFM_RQ_DONE || rq->req == NULL) return MPI_SUCCESS; /* complete: not cancelled */
  rc = sf_progress(sfm.job);
  if (rc < 0) return sfm_dp_error(rq->comm, "MPI_Cancel", rc);
  rq = sfm_req_get(*request);
  if (sf_req_done(rq->req)) return MPI_SUCCESS; /* it completed: MPI_Wait reports it, not cancelled */
  if (rq->kind == SFM_RQ_SEND)
    return sfm_error(rq->comm, "MPI_Cancel", MPI_ERR_UNSUPPORTED_OPERATION,
                     "cannot cancel a send still waiting for its receiver (sfmpi cannot withdraw a message the data "
                     "plane holds); it completes once received");
  /* A receive not complete after progress is one no message has matched (one exception: a
   * rendezvous message streamed through the ring, SFMPI_CMA=0, is matched before it is
   * complete; the data plane has no call that says which, see docs/c-mpi.md): withdraw it. */
  sf_req_free(sfm.job, rq->req);
  rq->req = NULL;
  rq->cancelled = 1;
  return MPI_SUCCESS;
}

int MPI_Test_cancelled(const MPI_Status *status, int *flag) {
  if (status == NULL || flag == NULL)
    return sfm_error(MPI_COMM_WORLD, "MPI_Test_cancelled", MPI_ERR_ARG, "status and flag are required");
  *flag = status->sf_cancelled != 0;
  return MPI_SUCCESS;
}
