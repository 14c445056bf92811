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

