/*
 * neighbor.c: neighbourhood collectives (MPI_Neighbor_* and MPI_Ineighbor_*) over the
 * topology's neighbour lists (topo.c), as one round of a schedule (sched.c): block i goes to
 * destination i and comes from source i. Cartesian neighbours tag each message with its
 * direction, so that in a periodic dimension of size 1 or 2, where the -1 and +1 neighbours are
 * the same rank, each block still lands in the slot of the direction it travelled (the reading
 * MPI-4 made explicit; MPICH does the same).
 */
#include "sfmpi.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int sfm_neighbor(const char *fn, const void *sbuf, sfm_side sd, void *rbuf, sfm_side rd, MPI_Comm comm,
                        MPI_Request *request, int same_send) {
  int rc, *in, *out, nin, nout, *inpart, *outpart, *zero = NULL;
  SFM_COMM(fn, comm, c);
  if (request == NULL && fn[4] == 'I') return sfm_error(comm, fn, MPI_ERR_ARG, "request is NULL");
  rc = sfm_topo_neighbors(c, &in, &nin, &out, &nout, &inpart, &outpart);
  if (rc == -2) return sfm_error(comm, fn, MPI_ERR_TOPOLOGY, "communicator %d has no topology", comm);
  sfm_sched *s = rc == 0 ? sfm_sched_new(comm, fn) : NULL;
  if (same_send && s) { /* allgather forms send the same buffer to every neighbour */
    zero = calloc((size_t)(nout + 1), sizeof *zero);
    sd.displs = zero;
  }
  if (s == NULL || (same_send && zero == NULL)) {
    rc = sfm_error(comm, fn, MPI_ERR_NO_MEM, "out of memory");
    sfm_sched_free(s);
  } else {
    rc = sfm_b_exchange(s, comm, fn, sbuf, &sd, rbuf, &rd, nout, out, outpart, nin, in, inpart, c->rank);
    if (rc != MPI_SUCCESS)
      sfm_sched_free(s);
    else if (request)
      rc = sfm_raise(comm, sfm_sched_start(s, request));
    else
      rc = sfm_raise(comm, sfm_sched_run(s));
  }
  free(zero);
  free(in);
  free(out);
  free(inpart);
  free(outpart);
  return rc;
}

int MPI_Neighbor_allgather(const void *sbuf, int scount, MPI_Datatype stype, void *rbuf, int rcount, MPI_Datatype rtype,
                           MPI_Comm comm) {
  return sfm_neighbor("MPI_Neighbor_allgather", sbuf, sfm_side_v(NULL, scount, NULL, stype), rbuf,
                      sfm_side_v(NULL, rcount, NULL, rtype), comm, NULL, 1);
}
int MPI_Neighbor_allgatherv(const void *sbuf, int scount, MPI_Datatype stype, void *rbuf, const int rcounts[],
                            const int displs[], MPI_Datatype rtype, MPI_Comm comm) {
  return sfm_neighbor("MPI_Neighbor_allgatherv", sbuf, sfm_side_v(NULL, scount, NULL, stype), rbuf,
                      sfm_side_v(rcounts, 0, displs, rtype), comm, NULL, 1);
}
int MPI_Neighbor_alltoall(const void *sbuf, int scount, MPI_Datatype stype, void *rbuf, int rcount, MPI_Datatype rtype,
                          MPI_Comm comm) {
  return sfm_neighbor("MPI_Neighbor_alltoall", sbuf, sfm_side_v(NULL, scount, NULL, stype), rbuf,
                      sfm_side_v(NULL, rcount, NULL, rtype), comm, NULL, 0);
}
int MPI_Neighbor_alltoallv(const void *sbuf, const int scounts[], const int sdispls[], MPI_Datatype stype, void *rbuf,
                           const int rcounts[], const int rdispls[], MPI_Datatype rtype, MPI_Comm comm) {
  return sfm_neighbor("MPI_Neighbor_alltoallv", sbuf, sfm_side_v(scounts, 0, sdispls, stype), rbuf,
                      sfm_side_v(rcounts, 0, rdispls, rtype), comm, NULL, 0);
}
int MPI_Neighbor_alltoallw(const void *sbuf, const int scounts[], const MPI_Aint sdispls[], const MPI_Datatype stypes[],
                           void *rbuf, const int rcounts[], const MPI_Aint rdispls[], const MPI_Datatype rtypes[],
                           MPI_Comm comm) {
  return sfm_neighbor("MPI_Neighbor_alltoallw", sbuf, sfm_side_aw(scounts, sdispls, stypes), rbuf,
                      sfm_side_aw(rcounts, rdispls, rtypes), comm, NULL, 0);
}

int MPI_Ineighbor_allgather(const void *sbuf, int scount, MPI_Datatype stype, void *rbuf, int rcount, MPI_Datatype rtype,
                            MPI_Comm comm, MPI_Request *request) {
  return sfm_neighbor("MPI_Ineighbor_allgather", sbuf, sfm_side_v(NULL, scount, NULL, stype), rbuf,
                      sfm_side_v(NULL, rcount, NULL, rtype), comm, request, 1);
}
int MPI_Ineighbor_allgatherv(const void *sbuf, int scount, MPI_Datatype stype, void *rbuf, const int rcounts[],
                             const int displs[], MPI_Datatype rtype, MPI_Comm comm, MPI_Request *request) {
  return sfm_neighbor("MPI_Ineighbor_allgatherv", sbuf, sfm_side_v(NULL, scount, NULL, stype), rbuf,
                      sfm_side_v(rcounts, 0, displs, rtype), comm, request, 1);
}
int MPI_Ineighbor_alltoall(const void *sbuf, int scount, MPI_Datatype stype, void *rbuf, int rcount, MPI_Datatype rtype,
                           MPI_Comm comm, MPI_Request *request) {
  return sfm_neighbor("MPI_Ineighbor_alltoall", sbuf, sfm_side_v(NULL, scount, NULL, stype), rbuf,
                      sfm_side_v(NULL, rcount, NULL, rtype), comm, request, 0);
}
int MPI_Ineighbor_alltoallv(const void *sbuf, const int scounts[], const int sdispls[], MPI_Datatype stype, void *rbuf,
                            const int rcounts[], const int rdispls[], MPI_Datatype rtype, MPI_Comm comm,
                            MPI_Request *request) {
  return sfm_neighbor("MPI_Ineighbor_alltoallv", sbuf, sfm_side_v(scounts, 0, sdispls, stype), rbuf,
                      sfm_side_v(rcounts, 0, rdispls, rtype), comm, request, 0);
}
int MPI_Ineighbor_alltoallw(const void *sbuf, const int scounts[], const MPI_Aint sdispls[], const MPI_Datatype stypes[],
                            void *rbuf, const int rcounts[], const MPI_Aint rdispls[], const MPI_Datatype rtypes[],
                            MPI_Comm comm, MPI_Request *request) {
  return sfm_neighbor("MPI_Ineighbor_alltoallw", sbuf, sfm_side_aw(scounts, sdispls, stypes), rbuf,
                      sfm_side_aw(rcounts, rdispls, rtypes), comm, request, 0);
}
