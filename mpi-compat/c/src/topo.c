/*
 * topo.c: process topologies: Cartesian (MPI_Cart_*), graph (MPI_Graph_*), distributed graph
 * (MPI_Dist_graph_*), MPI_Dims_create, MPI_Topo_test, and the neighbour lists that the
 * neighbourhood collectives (neighbor.c) use.
 *
 * `reorder` is accepted and ignored: every rank keeps its rank (allowed by MPI; on one host no
 * placement is better than another). Ranks beyond the topology's size get MPI_COMM_NULL.
 * Cartesian ranks are row-major (the last dimension varies fastest), as MPI requires.
 */
#include "sfmpi.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void sfm_topo_free(sfm_topo *t) {
  if (t == NULL) return;
  free(t->dims);
  free(t->periods);
  free(t->index);
  free(t->edges);
  free(t->srcs);
  free(t->dsts);
  free(t->sw);
  free(t->dw);
  free(t);
}

static int *sfm_idup(const int *a, int n) {
  int *p = malloc((size_t)(n > 0 ? n : 1) * sizeof *p);
  if (p && n > 0) memcpy(p, a, (size_t)n * sizeof *p);
  return p;
}

sfm_topo *sfm_topo_dup(const sfm_topo *t) {
  sfm_topo *d = calloc(1, sizeof *d);
  if (d == NULL) return NULL;
  *d = *t;
  d->dims = d->periods = d->index = d->edges = d->srcs = d->dsts = d->sw = d->dw = NULL;
  if ((t->dims && !(d->dims = sfm_idup(t->dims, t->ndims))) || (t->periods && !(d->periods = sfm_idup(t->periods, t->ndims))) ||
      (t->index && !(d->index = sfm_idup(t->index, t->nnodes))) ||
      (t->edges && !(d->edges = sfm_idup(t->edges, t->nnodes ? t->index[t->nnodes - 1] : 0))) ||
      (t->srcs && !(d->srcs = sfm_idup(t->srcs, t->indeg))) || (t->dsts && !(d->dsts = sfm_idup(t->dsts, t->outdeg))) ||
      (t->sw && !(d->sw = sfm_idup(t->sw, t->indeg))) || (t->dw && !(d->dw = sfm_idup(t->dw, t->outdeg)))) {
    sfm_topo_free(d);
    return NULL;
  }
  return d;
}

/* ---- MPI_Dims_create ------------------------------------------------------------------------ */

/* The non-increasing factorisation of m into k factors with the smallest spread (largest minus
 * smallest factor): a depth-first search over divisors, small enough for any real m. */
static void sfm_dims_search(int m, int k, int maxf, int *cur, int depth, int *best, int *best_spread) {
  if (depth == k - 1) {
    if (m > maxf) return;
    cur[depth] = m;
    int spread = cur[0] - cur[depth];
    if (*best_spread < 0 || spread < *best_spread) {
      *best_spread = spread;
      memcpy(best, cur, (size_t)k * sizeof *cur);
    }
    return;
  }
  for (int f = maxf < m ? maxf : m; f >= 1; f--) {
    if (m % f) continue;
    /* the remaining k-depth-1 factors are at most f: f^(rest) must reach m/f */
    long long reach = 1;
    for (int i = 0; i < k - depth - 1 && reach < m / f; i++) reach *= f;
    if (reach < m / f) break;
    cur[depth] = f;
    sfm_dims_search(m / f, k, f, cur, depth + 1, best, best_spread);
  }
}

int MPI_Dims_create(int nnodes, int ndims, int dims[]) {
  int fixed = 1, free_dims = 0, spread = -1, *cur, *best, k = 0;
  if (nnodes < 1 || ndims < 0 || (ndims > 0 && dims == NULL))
    return sfm_error(MPI_COMM_WORLD, "MPI_Dims_create", MPI_ERR_ARG, "nnodes %d must be positive and ndims %d not negative",
                     nnodes, ndims);
  for (int i = 0; i < ndims; i++) {
    if (dims[i] < 0)
      return sfm_error(MPI_COMM_WORLD, "MPI_Dims_create", MPI_ERR_DIMS, "dims[%d] = %d is negative", i, dims[i]);
    if (dims[i] > 0)
      fixed *= dims[i];
    else
      free_dims++;
  }
  if (nnodes % fixed)
    return sfm_error(MPI_COMM_WORLD, "MPI_Dims_create", MPI_ERR_DIMS,
                     "the fixed dimensions (product %d) do not divide nnodes %d", fixed, nnodes);
  if (free_dims == 0) {
    if (fixed != nnodes)
      return sfm_error(MPI_COMM_WORLD, "MPI_Dims_create", MPI_ERR_DIMS, "dims multiply to %d, not nnodes %d", fixed, nnodes);
    return MPI_SUCCESS;
  }
  cur = malloc((size_t)free_dims * sizeof *cur);
  best = malloc((size_t)free_dims * sizeof *best);
  if (cur == NULL || best == NULL) {
    free(cur);
    free(best);
    return sfm_error(MPI_COMM_WORLD, "MPI_Dims_create", MPI_ERR_NO_MEM, "out of memory");
  }
  sfm_dims_search(nnodes / fixed, free_dims, nnodes / fixed, cur, 0, best, &spread);
  for (int i = 0; i < ndims; i++)
    if (dims[i] == 0) dims[i] = best[k++];
  free(cur);
  free(best);
  return MPI_SUCCESS;
}

/* ---- creating topologies -------------------------------------------------------------------- */

/* The first `n` ranks of comm_old as a new communicator carrying topology t (taken); the others
 * get MPI_COMM_NULL (and t is freed). */
static int sfm_topo_comm(MPI_Comm comm_old, int n, sfm_topo *t, MPI_Comm *newcomm, const char *fn) {
  int rank, rc;
  MPI_Comm_rank(comm_old, &rank);
  rc = MPI_Comm_split(comm_old, rank < n ? 0 : MPI_UNDEFINED, rank, newcomm);
  if (rc != MPI_SUCCESS || *newcomm == MPI_COMM_NULL) {
    sfm_topo_free(t);
    return rc;
  }
  sfm_comm_get(*newcomm)->topo = t;
  (void)fn;
  return MPI_SUCCESS;
}

int MPI_Cart_create(MPI_Comm comm_old, int ndims, const int dims[], const int periods[], int reorder, MPI_Comm *comm_cart) {
  long long n = 1;
  sfm_topo *t;
  (void)reorder;
  SFM_COMM("MPI_Cart_create", comm_old, c);
  if (ndims < 0 || (ndims > 0 && (dims == NULL || periods == NULL)) || comm_cart == NULL)
    return sfm_error(comm_old, "MPI_Cart_create", MPI_ERR_ARG, "bad ndims %d, dims, periods or comm_cart", ndims);
  for (int i = 0; i < ndims; i++) {
    if (dims[i] < 1) return sfm_error(comm_old, "MPI_Cart_create", MPI_ERR_DIMS, "dims[%d] = %d must be positive", i, dims[i]);
    n *= dims[i];
  }
  if (n > c->size)
    return sfm_error(comm_old, "MPI_Cart_create", MPI_ERR_DIMS, "the grid has %lld processes, the communicator %d", n, c->size);
  t = calloc(1, sizeof *t);
  if (t == NULL || (t->dims = sfm_idup(dims, ndims)) == NULL || (t->periods = malloc((size_t)(ndims ? ndims : 1) * sizeof(int))) == NULL) {
    sfm_topo_free(t);
    return sfm_error(comm_old, "MPI_Cart_create", MPI_ERR_NO_MEM, "out of memory");
  }
  t->kind = MPI_CART;
  t->ndims = ndims;
  for (int i = 0; i < ndims; i++) t->periods[i] = periods[i] != 0;
  return sfm_topo_comm(comm_old, (int)n, t, comm_cart, "MPI_Cart_create");
}

#define SFM_TOPO(fn, comm, t, kind_)                                                                 \
  SFM_COMM(fn, comm, c);                                                                            \
  sfm_topo *t = c->topo;                                                                            \
  if (t == NULL || t->kind != (kind_))                                                              \
  return sfm_error(comm, fn, MPI_ERR_TOPOLOGY, "communicator %d has no %s topology", (int)(comm),   \
                   (kind_) == MPI_CART ? "Cartesian" : (kind_) == MPI_GRAPH ? "graph" : "distributed graph")

static void sfm_cart_coords(const sfm_topo *t, int rank, int *coords) {
  for (int d = t->ndims - 1; d >= 0; d--) {
    coords[d] = rank % t->dims[d];
    rank /= t->dims[d];
  }
}

int MPI_Cart_coords(MPI_Comm comm, int rank, int maxdims, int coords[]) {
  SFM_TOPO("MPI_Cart_coords", comm, t, MPI_CART);
  if (rank < 0 || rank >= c->size)
    return sfm_error(comm, "MPI_Cart_coords", MPI_ERR_RANK, "rank %d out of range for a communicator of size %d", rank, c->size);
  if (maxdims < t->ndims || (t->ndims > 0 && coords == NULL))
    return sfm_error(comm, "MPI_Cart_coords", MPI_ERR_ARG, "maxdims %d is less than the %d dimensions", maxdims, t->ndims);
  sfm_cart_coords(t, rank, coords);
  return MPI_SUCCESS;
}

/* Rank of coords (wrapping periodic dimensions); -1 when outside a non-periodic one. */
static int sfm_cart_rank(const sfm_topo *t, const int *coords) {
  int r = 0;
  for (int d = 0; d < t->ndims; d++) {
    int x = coords[d];
    if (t->periods[d])
      x = ((x % t->dims[d]) + t->dims[d]) % t->dims[d];
    else if (x < 0 || x >= t->dims[d])
      return -1;
    r = r * t->dims[d] + x;
  }
  return r;
}

int MPI_Cart_rank(MPI_Comm comm, const int coords[], int *rank) {
  int r;
  SFM_TOPO("MPI_Cart_rank", comm, t, MPI_CART);
  if (rank == NULL || (t->ndims > 0 && coords == NULL)) return sfm_error(comm, "MPI_Cart_rank", MPI_ERR_ARG, "NULL argument");
  r = sfm_cart_rank(t, coords);
  if (r < 0) {
    for (int d = 0; d < t->ndims; d++)
      if (!t->periods[d] && (coords[d] < 0 || coords[d] >= t->dims[d]))
        return sfm_error(comm, "MPI_Cart_rank", MPI_ERR_ARG,
                         "coords[%d] = %d is outside the non-periodic dimension of size %d", d, coords[d], t->dims[d]);
  }
  *rank = r;
  return MPI_SUCCESS;
}

/* Source and destination of a shift by disp along dimension d from `rank`. */
static void sfm_cart_shift(const sfm_topo *t, int rank, int d, int disp, int *src, int *dst) {
  int co[64];
  sfm_cart_coords(t, rank, co);
  co[d] += disp;
  *dst = sfm_cart_rank(t, co);
  co[d] -= 2 * disp;
  *src = sfm_cart_rank(t, co);
  if (*dst < 0) *dst = MPI_PROC_NULL;
  if (*src < 0) *src = MPI_PROC_NULL;
}

int MPI_Cart_shift(MPI_Comm comm, int direction, int disp, int *rank_source, int *rank_dest) {
  SFM_TOPO("MPI_Cart_shift", comm, t, MPI_CART);
  if (direction < 0 || direction >= t->ndims)
    return sfm_error(comm, "MPI_Cart_shift", MPI_ERR_ARG, "direction %d out of range for %d dimensions", direction, t->ndims);
  if (rank_source == NULL || rank_dest == NULL) return sfm_error(comm, "MPI_Cart_shift", MPI_ERR_ARG, "NULL argument");
  if (t->ndims > 64) return sfm_error(comm, "MPI_Cart_shift", MPI_ERR_DIMS, "more than 64 dimensions");
  sfm_cart_shift(t, c->rank, direction, disp, rank_source, rank_dest);
  return MPI_SUCCESS;
}

int MPI_Cart_get(MPI_Comm comm, int maxdims, int dims[], int periods[], int coords[]) {
  SFM_TOPO("MPI_Cart_get", comm, t, MPI_CART);
  if (maxdims < t->ndims) return sfm_error(comm, "MPI_Cart_get", MPI_ERR_ARG, "maxdims %d is less than %d", maxdims, t->ndims);
  for (int d = 0; d < t->ndims; d++) {
    if (dims) dims[d] = t->dims[d];
    if (periods) periods[d] = t->periods[d];
  }
  if (coords) sfm_cart_coords(t, c->rank, coords);
  return MPI_SUCCESS;
}

int MPI_Cartdim_get(MPI_Comm comm, int *ndims) {
  SFM_TOPO("MPI_Cartdim_get", comm, t, MPI_CART);
  if (ndims == NULL) return sfm_error(comm, "MPI_Cartdim_get", MPI_ERR_ARG, "ndims is NULL");
  *ndims = t->ndims;
  return MPI_SUCCESS;
}

int MPI_Cart_sub(MPI_Comm comm, const int remain_dims[], MPI_Comm *newcomm) {
  int color = 0, key = 0, nd = 0, co[64], rc;
  sfm_topo *s;
  SFM_TOPO("MPI_Cart_sub", comm, t, MPI_CART);
  if (newcomm == NULL || (t->ndims > 0 && remain_dims == NULL) || t->ndims > 64)
    return sfm_error(comm, "MPI_Cart_sub", MPI_ERR_ARG, "bad remain_dims or newcomm");
  sfm_cart_coords(t, c->rank, co);
  s = calloc(1, sizeof *s);
  if (s == NULL || (s->dims = malloc((size_t)(t->ndims + 1) * sizeof(int))) == NULL ||
      (s->periods = malloc((size_t)(t->ndims + 1) * sizeof(int))) == NULL) {
    sfm_topo_free(s);
    return sfm_error(comm, "MPI_Cart_sub", MPI_ERR_NO_MEM, "out of memory");
  }
  /* members with the same coordinates in the dropped dimensions form one sub-grid, ordered by
   * their coordinates in the kept ones */
  for (int d = 0; d < t->ndims; d++) {
    if (remain_dims[d]) {
      key = key * t->dims[d] + co[d];
      s->dims[nd] = t->dims[d];
      s->periods[nd] = t->periods[d];
      nd++;
    } else {
      color = color * t->dims[d] + co[d];
    }
  }
  s->kind = MPI_CART;
  s->ndims = nd;
  rc = MPI_Comm_split(comm, color, key, newcomm);
  if (rc != MPI_SUCCESS) {
    sfm_topo_free(s);
    return rc;
  }
  sfm_comm_get(*newcomm)->topo = s;
  return MPI_SUCCESS;
}

int MPI_Cart_map(MPI_Comm comm, int ndims, const int dims[], const int periods[], int *newrank) {
  long long n = 1;
  (void)periods;
  SFM_COMM("MPI_Cart_map", comm, c);
  if (ndims < 0 || newrank == NULL || (ndims > 0 && dims == NULL))
    return sfm_error(comm, "MPI_Cart_map", MPI_ERR_ARG, "bad ndims %d, dims or newrank", ndims);
  for (int i = 0; i < ndims; i++) {
    if (dims[i] < 1) return sfm_error(comm, "MPI_Cart_map", MPI_ERR_DIMS, "dims[%d] = %d must be positive", i, dims[i]);
    n *= dims[i];
  }
  if (n > c->size) return sfm_error(comm, "MPI_Cart_map", MPI_ERR_DIMS, "the grid has %lld processes, the communicator %d", n, c->size);
  *newrank = c->rank < n ? c->rank : MPI_UNDEFINED;
  return MPI_SUCCESS;
}

/* Graph arguments: nnodes <= size, index non-decreasing, every edge a node. */
static int sfm_graph_ok(MPI_Comm comm, const char *fn, int size, int nnodes, const int *index, const int *edges) {
  if (nnodes < 0 || nnodes > size)
    return sfm_error(comm, fn, MPI_ERR_ARG, "nnodes %d out of range for a communicator of size %d", nnodes, size);
  if (nnodes > 0 && (index == NULL || (index[nnodes - 1] > 0 && edges == NULL)))
    return sfm_error(comm, fn, MPI_ERR_ARG, "index or edges is NULL");
  for (int i = 0; i < nnodes; i++)
    if (index[i] < (i ? index[i - 1] : 0))
      return sfm_error(comm, fn, MPI_ERR_ARG, "index[%d] = %d is smaller than the one before", i, index[i]);
  for (int e = 0; nnodes > 0 && e < index[nnodes - 1]; e++)
    if (edges[e] < 0 || edges[e] >= nnodes)
      return sfm_error(comm, fn, MPI_ERR_ARG, "edges[%d] = %d is not a node of the %d-node graph", e, edges[e], nnodes);
  return MPI_SUCCESS;
}

int MPI_Graph_create(MPI_Comm comm_old, int nnodes, const int index[], const int edges[], int reorder,
                     MPI_Comm *comm_graph) {
  sfm_topo *t;
  int rc, ne;
  (void)reorder;
  SFM_COMM("MPI_Graph_create", comm_old, c);
  if ((rc = sfm_graph_ok(comm_old, "MPI_Graph_create", c->size, nnodes, index, edges)) != MPI_SUCCESS) return rc;
  if (comm_graph == NULL) return sfm_error(comm_old, "MPI_Graph_create", MPI_ERR_ARG, "comm_graph is NULL");
  ne = nnodes ? index[nnodes - 1] : 0;
  t = calloc(1, sizeof *t);
  if (t == NULL || (t->index = sfm_idup(index, nnodes)) == NULL || (t->edges = sfm_idup(edges, ne)) == NULL) {
    sfm_topo_free(t);
    return sfm_error(comm_old, "MPI_Graph_create", MPI_ERR_NO_MEM, "out of memory");
  }
  t->kind = MPI_GRAPH;
  t->nnodes = nnodes;
  return sfm_topo_comm(comm_old, nnodes, t, comm_graph, "MPI_Graph_create");
}

int MPI_Graphdims_get(MPI_Comm comm, int *nnodes, int *nedges) {
  SFM_TOPO("MPI_Graphdims_get", comm, t, MPI_GRAPH);
  if (nnodes) *nnodes = t->nnodes;
  if (nedges) *nedges = t->nnodes ? t->index[t->nnodes - 1] : 0;
  return MPI_SUCCESS;
}

int MPI_Graph_get(MPI_Comm comm, int maxindex, int maxedges, int index[], int edges[]) {
  int ne;
  SFM_TOPO("MPI_Graph_get", comm, t, MPI_GRAPH);
  ne = t->nnodes ? t->index[t->nnodes - 1] : 0;
  for (int i = 0; i < t->nnodes && i < maxindex; i++) index[i] = t->index[i];
  for (int e = 0; e < ne && e < maxedges; e++) edges[e] = t->edges[e];
  return MPI_SUCCESS;
}

int MPI_Graph_neighbors_count(MPI_Comm comm, int rank, int *nneighbors) {
  SFM_TOPO("MPI_Graph_neighbors_count", comm, t, MPI_GRAPH);
  if (rank < 0 || rank >= t->nnodes || nneighbors == NULL)
    return sfm_error(comm, "MPI_Graph_neighbors_count", MPI_ERR_RANK, "rank %d is not a node of the %d-node graph", rank, t->nnodes);
  *nneighbors = t->index[rank] - (rank ? t->index[rank - 1] : 0);
  return MPI_SUCCESS;
}

int MPI_Graph_neighbors(MPI_Comm comm, int rank, int maxneighbors, int neighbors[]) {
  SFM_TOPO("MPI_Graph_neighbors", comm, t, MPI_GRAPH);
  if (rank < 0 || rank >= t->nnodes)
    return sfm_error(comm, "MPI_Graph_neighbors", MPI_ERR_RANK, "rank %d is not a node of the %d-node graph", rank, t->nnodes);
  for (int e = rank ? t->index[rank - 1] : 0, k = 0; e < t->index[rank] && k < maxneighbors; e++, k++) neighbors[k] = t->edges[e];
  return MPI_SUCCESS;
}

int MPI_Graph_map(MPI_Comm comm, int nnodes, const int index[], const int edges[], int *newrank) {
  int rc;
  SFM_COMM("MPI_Graph_map", comm, c);
  if ((rc = sfm_graph_ok(comm, "MPI_Graph_map", c->size, nnodes, index, edges)) != MPI_SUCCESS) return rc;
  if (newrank == NULL) return sfm_error(comm, "MPI_Graph_map", MPI_ERR_ARG, "newrank is NULL");
  *newrank = c->rank < nnodes ? c->rank : MPI_UNDEFINED;
  return MPI_SUCCESS;
}

/* A distributed-graph topology over a duplicate of comm_old with the given neighbour lists. */
static int sfm_dist_make(MPI_Comm comm_old, int indeg, const int *srcs, const int *sw, int outdeg, const int *dsts,
                         const int *dw, int weighted, MPI_Comm *newcomm, const char *fn) {
  sfm_topo *t = calloc(1, sizeof *t);
  int rc;
  if (t == NULL || (t->srcs = sfm_idup(srcs, indeg)) == NULL || (t->dsts = sfm_idup(dsts, outdeg)) == NULL ||
      (weighted && ((t->sw = sfm_idup(sw, indeg)) == NULL || (t->dw = sfm_idup(dw, outdeg)) == NULL))) {
    sfm_topo_free(t);
    return sfm_error(comm_old, fn, MPI_ERR_NO_MEM, "out of memory");
  }
  t->kind = MPI_DIST_GRAPH;
  t->indeg = indeg;
  t->outdeg = outdeg;
  t->weighted = weighted;
  rc = MPI_Comm_dup(comm_old, newcomm);
  if (rc != MPI_SUCCESS) {
    sfm_topo_free(t);
    return rc;
  }
  sfm_topo_free(sfm_comm_get(*newcomm)->topo); /* a dup of a topology communicator copied its topology */
  sfm_comm_get(*newcomm)->topo = t;
  return MPI_SUCCESS;
}

static int sfm_weights_given(const int *w) { return w != MPI_UNWEIGHTED; }

int MPI_Dist_graph_create_adjacent(MPI_Comm comm_old, int indegree, const int sources[], const int sourceweights[],
                                   int outdegree, const int destinations[], const int destweights[], MPI_Info info,
                                   int reorder, MPI_Comm *comm_dist_graph) {
  const char *fn = "MPI_Dist_graph_create_adjacent";
  int weighted = sfm_weights_given(sourceweights) || sfm_weights_given(destweights);
  (void)info;
  (void)reorder;
  SFM_COMM(fn, comm_old, c);
  if (indegree < 0 || outdegree < 0 || comm_dist_graph == NULL)
    return sfm_error(comm_old, fn, MPI_ERR_ARG, "bad indegree %d, outdegree %d or comm_dist_graph", indegree, outdegree);
  for (int i = 0; i < indegree; i++)
    if (sources[i] < 0 || sources[i] >= c->size)
      return sfm_error(comm_old, fn, MPI_ERR_RANK, "sources[%d] = %d out of range for a communicator of size %d", i, sources[i], c->size);
  for (int i = 0; i < outdegree; i++)
    if (destinations[i] < 0 || destinations[i] >= c->size)
      return sfm_error(comm_old, fn, MPI_ERR_RANK, "destinations[%d] = %d out of range for a communicator of size %d", i,
                       destinations[i], c->size);
  if (weighted && ((indegree > 0 && (!sfm_weights_given(sourceweights) || sourceweights == MPI_WEIGHTS_EMPTY)) ||
                   (outdegree > 0 && (!sfm_weights_given(destweights) || destweights == MPI_WEIGHTS_EMPTY))))
    weighted = 0; /* weights on one side only: MPI calls that unweighted */
  return sfm_dist_make(comm_old, indegree, sources, weighted ? sourceweights : NULL, outdegree, destinations,
                       weighted ? destweights : NULL, weighted, comm_dist_graph, fn);
}

/* Every rank names some edges (source -> destination, weight); each edge goes to its source as
 * an out-edge and to its destination as an in-edge, with one all-to-all of (role, source,
 * destination, weight) quadruples. The neighbour lists come out ordered by the rank that named
 * the edge, then by its order there. */
int MPI_Dist_graph_create(MPI_Comm comm_old, int n, const int sources[], const int degrees[], const int destinations[],
                          const int weights[], MPI_Info info, int reorder, MPI_Comm *comm_dist_graph) {
  const char *fn = "MPI_Dist_graph_create";
  int size, rc, *scount = NULL, *rcount = NULL, *sdisp = NULL, *rdisp = NULL, *sbuf = NULL, *rbuf = NULL, *pos = NULL;
  int total = 0, indeg = 0, outdeg = 0, *srcs = NULL, *dsts = NULL, *sw = NULL, *dw = NULL, nedges = 0;
  int local_w, weighted = 0;
  (void)info;
  (void)reorder;
  SFM_COMM(fn, comm_old, c);
  size = c->size;
  if (n < 0 || comm_dist_graph == NULL) return sfm_error(comm_old, fn, MPI_ERR_ARG, "bad n %d or comm_dist_graph", n);
  for (int i = 0; i < n; i++) {
    if (sources[i] < 0 || sources[i] >= size || degrees[i] < 0)
      return sfm_error(comm_old, fn, MPI_ERR_ARG, "sources[%d] = %d or degrees[%d] = %d out of range", i, sources[i], i, degrees[i]);
    for (int j = 0; j < degrees[i]; j++, nedges++)
      if (destinations[nedges] < 0 || destinations[nedges] >= size)
        return sfm_error(comm_old, fn, MPI_ERR_RANK, "destinations[%d] = %d out of range for a communicator of size %d", nedges,
                         destinations[nedges], size);
  }
  /* weighted when every rank that names an edge gives weights */
  local_w = nedges == 0 || (sfm_weights_given(weights) && weights != MPI_WEIGHTS_EMPTY);
  rc = MPI_Allreduce(&local_w, &weighted, 1, MPI_INT, MPI_LAND, comm_old);
  if (rc != MPI_SUCCESS) return rc;
  scount = calloc((size_t)size, sizeof *scount);
  rcount = calloc((size_t)size, sizeof *rcount);
  sdisp = calloc((size_t)size, sizeof *sdisp);
  rdisp = calloc((size_t)size, sizeof *rdisp);
  pos = calloc((size_t)size, sizeof *pos);
  sbuf = malloc((size_t)(nedges * 8 + 1) * sizeof *sbuf);
  if (!scount || !rcount || !sdisp || !rdisp || !pos || !sbuf) goto nomem;
  for (int i = 0, k = 0; i < n; i++)
    for (int j = 0; j < degrees[i]; j++, k++) {
      scount[sources[i]] += 4;
      scount[destinations[k]] += 4;
    }
  for (int r = 1; r < size; r++) sdisp[r] = sdisp[r - 1] + scount[r - 1];
  for (int i = 0, k = 0; i < n; i++)
    for (int j = 0; j < degrees[i]; j++, k++) {
      int w = weighted && nedges ? weights[k] : 1, to[2] = {sources[i], destinations[k]};
      for (int role = 0; role < 2; role++) { /* 0: an out-edge of `to`, 1: an in-edge */
        int *q = &sbuf[sdisp[to[role]] + pos[to[role]]];
        q[0] = role;
        q[1] = sources[i];
        q[2] = destinations[k];
        q[3] = w;
        pos[to[role]] += 4;
      }
    }
  rc = MPI_Alltoall(scount, 1, MPI_INT, rcount, 1, MPI_INT, comm_old);
  if (rc != MPI_SUCCESS) goto out;
  for (int r = 0; r < size; r++) {
    rdisp[r] = total;
    total += rcount[r];
  }
  rbuf = malloc((size_t)(total + 1) * sizeof *rbuf);
  if (rbuf == NULL) goto nomem;
  rc = MPI_Alltoallv(sbuf, scount, sdisp, MPI_INT, rbuf, rcount, rdisp, MPI_INT, comm_old);
  if (rc != MPI_SUCCESS) goto out;
  srcs = malloc((size_t)(total / 4 + 1) * sizeof *srcs);
  dsts = malloc((size_t)(total / 4 + 1) * sizeof *dsts);
  sw = malloc((size_t)(total / 4 + 1) * sizeof *sw);
  dw = malloc((size_t)(total / 4 + 1) * sizeof *dw);
  if (!srcs || !dsts || !sw || !dw) goto nomem;
  for (int k = 0; k < total; k += 4) {
    if (rbuf[k] == 0) {
      dsts[outdeg] = rbuf[k + 2];
      dw[outdeg++] = rbuf[k + 3];
    } else {
      srcs[indeg] = rbuf[k + 1];
      sw[indeg++] = rbuf[k + 3];
    }
  }
  rc = sfm_dist_make(comm_old, indeg, srcs, sw, outdeg, dsts, dw, weighted, comm_dist_graph, fn);
  goto out;
nomem:
  rc = sfm_error(comm_old, fn, MPI_ERR_NO_MEM, "out of memory");
out:
  free(scount);
  free(rcount);
  free(sdisp);
  free(rdisp);
  free(pos);
  free(sbuf);
  free(rbuf);
  free(srcs);
  free(dsts);
  free(sw);
  free(dw);
  return rc;
}

int MPI_Dist_graph_neighbors_count(MPI_Comm comm, int *indegree, int *outdegree, int *weighted) {
  SFM_TOPO("MPI_Dist_graph_neighbors_count", comm, t, MPI_DIST_GRAPH);
  if (indegree) *indegree = t->indeg;
  if (outdegree) *outdegree = t->outdeg;
  if (weighted) *weighted = t->weighted;
  return MPI_SUCCESS;
}

int MPI_Dist_graph_neighbors(MPI_Comm comm, int maxindegree, int sources[], int sourceweights[], int maxoutdegree,
                             int destinations[], int destweights[]) {
  SFM_TOPO("MPI_Dist_graph_neighbors", comm, t, MPI_DIST_GRAPH);
  for (int i = 0; i < t->indeg && i < maxindegree; i++) {
    sources[i] = t->srcs[i];
    if (t->weighted && sfm_weights_given(sourceweights) && sourceweights) sourceweights[i] = t->sw[i];
  }
  for (int i = 0; i < t->outdeg && i < maxoutdegree; i++) {
    destinations[i] = t->dsts[i];
    if (t->weighted && sfm_weights_given(destweights) && destweights) destweights[i] = t->dw[i];
  }
  return MPI_SUCCESS;
}

int MPI_Topo_test(MPI_Comm comm, int *status) {
  SFM_COMM("MPI_Topo_test", comm, c);
  if (status == NULL) return sfm_error(comm, "MPI_Topo_test", MPI_ERR_ARG, "status is NULL");
  *status = c->topo ? c->topo->kind : MPI_UNDEFINED;
  return MPI_SUCCESS;
}

/* The neighbours of this rank for neighbourhood collectives, in MPI's order (MPI 7.6):
 * Cartesian: for each dimension the -1 then the +1 neighbour (MPI_PROC_NULL at an open edge);
 * graph: the adjacency list as both sources and destinations; distributed graph: as created.
 * `part` gives each Cartesian neighbour's direction, so that a message sent toward +1 is told
 * apart from one toward -1 when both reach the same rank (a periodic dimension of size 1 or 2).
 * Arrays are malloc'ed; -1 when out of memory, -2 when comm has no topology. */
int sfm_topo_neighbors(const sfm_comm *c, int **in, int *nin, int **out, int *nout, int **inpart, int **outpart) {
  const sfm_topo *t = c->topo;
  *in = *out = *inpart = *outpart = NULL;
  if (t == NULL) return -2;
  if (t->kind == MPI_CART) {
    int n = 2 * t->ndims;
    *in = malloc((size_t)(n + 1) * sizeof(int));
    *out = malloc((size_t)(n + 1) * sizeof(int));
    *inpart = malloc((size_t)(n + 1) * sizeof(int));
    *outpart = malloc((size_t)(n + 1) * sizeof(int));
    if (!*in || !*out || !*inpart || !*outpart) return -1;
    for (int d = 0; d < t->ndims; d++) {
      int src, dst;
      sfm_cart_shift(t, c->rank, d, 1, &src, &dst);
      (*in)[2 * d] = (*out)[2 * d] = src;
      (*in)[2 * d + 1] = (*out)[2 * d + 1] = dst;
      /* a message sent toward +1 (part 2d+1) arrives from the receiver's -1 side */
      (*outpart)[2 * d] = 2 * d;
      (*outpart)[2 * d + 1] = 2 * d + 1;
      (*inpart)[2 * d] = 2 * d + 1;
      (*inpart)[2 * d + 1] = 2 * d;
    }
    *nin = *nout = n;
    return 0;
  }
  if (t->kind == MPI_GRAPH) {
    int first = c->rank ? t->index[c->rank - 1] : 0, n = c->rank < t->nnodes ? t->index[c->rank] - first : 0;
    *in = sfm_idup(t->edges + first, n);
    *out = sfm_idup(t->edges + first, n);
    if (!*in || !*out) return -1;
    *nin = *nout = n;
    return 0;
  }
  *in = sfm_idup(t->srcs, t->indeg);
  *out = sfm_idup(t->dsts, t->outdeg);
  if (!*in || !*out) return -1;
  *nin = t->indeg;
  *nout = t->outdeg;
  return 0;
}
