/*
 * bsend.c: buffered sends. The data is copied into private memory at once (the attached
 * buffer is only accounted for), so the caller may reuse its buffer and the send never blocks;
 * the copy is sent as a detached request (requests.c).
 */
#include "sfmpi.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

int sfm_bsend(const char *fn, const void *buf, int count, MPI_Datatype dt, int dest, int tag, MPI_Comm comm,
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
