/*
 * probe.c: MPI_Probe and MPI_Iprobe.
 */
#include "sfmpi.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
  SFM_COMM("MPI_Iprobe", comm, c);
  if ((rc = sfm_check_rank(comm, "MPI_Iprobe", "source", source, 1)) != MPI_SUCCESS) return rc;
  if (flag == NULL) return sfm_error(comm, "MPI_Iprobe", MPI_ERR_ARG, "flag is NULL");
  rc = sf_iprobe(sfm.job, sfm_peer(c, source),
                 c->ctx, tag, &st);
  if (rc < 0) return sfm_dp_error(comm, "MPI_Iprobe", rc);
  *flag = rc;
  if (rc) sfm_probe_status(c, &st, status);
  return MPI_SUCCESS;
}

int MPI_Probe(int source, int tag, MPI_Comm comm, MPI_Status *status) {
  sf_status st;
  int rc;
  SFM_COMM("MPI_Probe", comm, c);
  if ((rc = sfm_check_rank(comm, "MPI_Probe", "source", source, 1)) != MPI_SUCCESS) return rc;
  sf_job_set_label(sfm.job, "MPI_Probe");
  rc = sf_probe(sfm.job, sfm_peer(c, source),
                c->ctx, tag, &st);
  sf_job_set_label(sfm.job, NULL);
  if (rc < 0) return sfm_dp_error(comm, "MPI_Probe", rc);
  sfm_probe_status(c, &st, status);
  return MPI_SUCCESS;
}


/* ---- matched probes (MPI_Mprobe ...) ------------------------------------------------------- */

/* A matched message is received at once into a buffer of its own (it is already here: a probe
 * found it), so no later receive can take it; MPI_Mrecv copies it into the caller's buffer. */
typedef struct sfm_msg {
  int used;
  MPI_Comm comm;
  sf_status st;
  void *data;
} sfm_msg;
static sfm_msg *sfm_msgs_tab;
static int sfm_nmsgs;

static int sfm_msg_take(const char *fn, sfm_comm *c, MPI_Comm comm, const sf_status *st, MPI_Message *message) {
  int i, rc;
  sf_req *r;
  sfm_msg *m;
  for (i = 1; i < sfm_nmsgs; i++)
    if (!sfm_msgs_tab[i].used) break;
  if (i >= sfm_nmsgs && sfm_grow((void **)&sfm_msgs_tab, &sfm_nmsgs, sizeof *sfm_msgs_tab) < 0)
    return sfm_error(comm, fn, MPI_ERR_NO_MEM, "out of memory");
  if (i == 0) i = 1;
  m = &sfm_msgs_tab[i];
  m->data = malloc(st->size ? st->size : 1);
  if (m->data == NULL) return sfm_error(comm, fn, MPI_ERR_NO_MEM, "out of memory for a %zu-byte message", st->size);
  rc = sf_irecv(sfm.job, m->data, st->size, st->source, c->ctx, st->tag, &r);
  if (rc >= 0) {
    sf_job_set_label(sfm.job, fn);
    rc = sf_wait(sfm.job, r, &m->st);
    sf_job_set_label(sfm.job, NULL);
    sf_req_free(sfm.job, r);
  }
  if (rc < 0) {
    free(m->data);
    return sfm_dp_error(comm, fn, rc);
  }
  m->used = 1;
  m->comm = comm;
  *message = i;
  return MPI_SUCCESS;
}

int MPI_Improbe(int source, int tag, MPI_Comm comm, int *flag, MPI_Message *message, MPI_Status *status) {
  sf_status st;
  int rc;
  SFM_COMM("MPI_Improbe", comm, c);
  if ((rc = sfm_check_rank(comm, "MPI_Improbe", "source", source, 1)) != MPI_SUCCESS) return rc;
  if (flag == NULL || message == NULL) return sfm_error(comm, "MPI_Improbe", MPI_ERR_ARG, "flag and message are required");
  if (source == MPI_PROC_NULL) {
    *flag = 1;
    *message = MPI_MESSAGE_NO_PROC;
    sfm_empty_status(status);
    if (status) status->MPI_SOURCE = MPI_PROC_NULL;
    return MPI_SUCCESS;
  }
  rc = sf_iprobe(sfm.job, sfm_peer(c, source), c->ctx, tag, &st);
  if (rc < 0) return sfm_dp_error(comm, "MPI_Improbe", rc);
  *flag = rc;
  if (!rc) return MPI_SUCCESS;
  sfm_probe_status(c, &st, status);
  return sfm_msg_take("MPI_Improbe", c, comm, &st, message);
}

int MPI_Mprobe(int source, int tag, MPI_Comm comm, MPI_Message *message, MPI_Status *status) {
  sf_status st;
  int rc;
  SFM_COMM("MPI_Mprobe", comm, c);
  if ((rc = sfm_check_rank(comm, "MPI_Mprobe", "source", source, 1)) != MPI_SUCCESS) return rc;
  if (message == NULL) return sfm_error(comm, "MPI_Mprobe", MPI_ERR_ARG, "message is NULL");
  if (source == MPI_PROC_NULL) {
    int flag;
    return MPI_Improbe(source, tag, comm, &flag, message, status);
  }
  sf_job_set_label(sfm.job, "MPI_Mprobe");
  rc = sf_probe(sfm.job, sfm_peer(c, source), c->ctx, tag, &st);
  sf_job_set_label(sfm.job, NULL);
  if (rc < 0) return sfm_dp_error(comm, "MPI_Mprobe", rc);
  sfm_probe_status(c, &st, status);
  return sfm_msg_take("MPI_Mprobe", c, comm, &st, message);
}

/* Deliver a matched message into (buf, count, dt); MPI code, not raised. */
static int sfm_msg_deliver(const char *fn, MPI_Message *message, void *buf, int count, MPI_Datatype dt,
                           MPI_Status *status, MPI_Comm *commp) {
  sfm_msg *m;
  sfm_type *t;
  size_t cap;
  int code = MPI_SUCCESS;
  if (message == NULL) return sfm_code(MPI_ERR_ARG, "%s: message is NULL", fn);
  if (*message == MPI_MESSAGE_NO_PROC) {
    sfm_empty_status(status);
    if (status) status->MPI_SOURCE = MPI_PROC_NULL;
    *message = MPI_MESSAGE_NULL;
    return MPI_SUCCESS;
  }
  if (*message <= 0 || *message >= sfm_nmsgs || !sfm_msgs_tab[*message].used)
    return sfm_code(MPI_ERR_REQUEST, "%s: invalid message %d", fn, *message);
  m = &sfm_msgs_tab[*message];
  *commp = m->comm;
  if ((code = sfm_type_check(m->comm, fn, dt, count)) != MPI_SUCCESS) return code;
  t = sfm_type_get(dt);
  cap = t->size * (size_t)count;
  if (m->st.size > cap) {
    code = sfm_code(MPI_ERR_TRUNCATE, "%s: message of %zu bytes from rank %d (tag %d) truncated: the receive buffer holds %zu bytes",
                    fn, m->st.size, sfm_comm_get(m->comm) ? sfm_comm_get(m->comm)->inv[m->st.source] : m->st.source,
                    m->st.tag, cap);
  }
  sfm_unpack(t, m->data, m->st.size < cap ? m->st.size : cap, buf, count);
  if (status) {
    sfm_comm *c = sfm_comm_get(m->comm);
    status->MPI_SOURCE = c ? c->inv[m->st.source] : m->st.source;
    status->MPI_TAG = m->st.tag;
    status->sf_count = (long long)(m->st.size < cap ? m->st.size : cap);
    status->sf_cancelled = 0;
    status->MPI_ERROR = code;
  }
  free(m->data);
  memset(m, 0, sizeof *m);
  *message = MPI_MESSAGE_NULL;
  return code;
}

int MPI_Mrecv(void *buf, int count, MPI_Datatype dt, MPI_Message *message, MPI_Status *status) {
  MPI_Comm comm = MPI_COMM_WORLD;
  int code;
  SFM_INIT_CHECK("MPI_Mrecv");
  code = sfm_msg_deliver("MPI_Mrecv", message, buf, count, dt, status, &comm);
  return sfm_raise(comm, code);
}

int MPI_Imrecv(void *buf, int count, MPI_Datatype dt, MPI_Message *message, MPI_Request *request) {
  MPI_Comm comm = MPI_COMM_WORLD;
  sfm_req *rq;
  MPI_Status st;
  int code;
  SFM_INIT_CHECK("MPI_Imrecv");
  if (request == NULL) return sfm_error(MPI_COMM_WORLD, "MPI_Imrecv", MPI_ERR_ARG, "request is NULL");
  sfm_empty_status(&st);
  code = sfm_msg_deliver("MPI_Imrecv", message, buf, count, dt, &st, &comm);
  if (code != MPI_SUCCESS && (code & 0xff) != MPI_ERR_TRUNCATE) return sfm_raise(comm, code);
  if (sfm_req_new(request, &rq) < 0) return sfm_error(comm, "MPI_Imrecv", MPI_ERR_NO_MEM, "out of memory");
  rq->kind = SFM_RQ_DONE;
  rq->comm = comm;
  rq->status = st;
  rq->err = code;
  return MPI_SUCCESS;
}
