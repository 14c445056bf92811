/* topo.c: process topologies at any size: MPI_Dims_create's known factorisations, Cartesian
 * coordinates, ranks and shifts (periodic and not), sub-grids, graphs, distributed graphs, and
 * every neighbourhood collective (blocking and non-blocking) with known neighbour values. */
#include "sft.h"

static int mod(int a, int n) { return ((a % n) + n) % n; }

static void dims(void) {
  /* nnodes, ndims, preset, expected: the factorisations MPI says (balanced, non-increasing) */
  static const struct { int n, nd, in[3], out[3]; } cases[] = {
    {1, 2, {0, 0}, {1, 1}},       {2, 2, {0, 0}, {2, 1}},       {3, 2, {0, 0}, {3, 1}},
    {4, 2, {0, 0}, {2, 2}},       {6, 2, {0, 0}, {3, 2}},       {7, 2, {0, 0}, {7, 1}},
    {8, 2, {0, 0}, {4, 2}},       {8, 3, {0, 0, 0}, {2, 2, 2}}, {6, 3, {0, 0, 0}, {3, 2, 1}},
    {12, 3, {0, 0, 0}, {3, 2, 2}}, {12, 3, {0, 3, 0}, {2, 3, 2}}, {16, 3, {0, 0, 0}, {4, 2, 2}},
    {36, 3, {0, 0, 0}, {4, 3, 3}}, {24, 2, {0, 0}, {6, 4}},      {9, 2, {3, 0}, {3, 3}},
  };
  for (unsigned k = 0; k < sizeof cases / sizeof cases[0]; k++) {
    int d[3];
    memcpy(d, cases[k].in, sizeof d);
    CHECK_MPI(MPI_Dims_create(cases[k].n, cases[k].nd, d));
    for (int i = 0; i < cases[k].nd; i++)
      CHECK(d[i] == cases[k].out[i], "Dims_create(%d, %d) dim %d = %d, want %d", cases[k].n, cases[k].nd, i, d[i], cases[k].out[i]);
  }
}

static void cart(int n, int r) {
  int d[2] = {0, 0}, per[2] = {1, 0}, co[2], rr, src, dst, nd, st;
  MPI_Comm cart, row, col;
  MPI_Dims_create(n, 2, d);
  CHECK_MPI(MPI_Cart_create(MPI_COMM_WORLD, 2, d, per, 0, &cart));
  CHECK_MPI(MPI_Topo_test(cart, &st));
  CHECK(st == MPI_CART, "Topo_test %d, want MPI_CART", st);
  CHECK_MPI(MPI_Cartdim_get(cart, &nd));
  CHECK(nd == 2, "Cartdim_get %d", nd);
  CHECK_MPI(MPI_Cart_coords(cart, r, 2, co));
  CHECK(co[0] == r / d[1] && co[1] == r % d[1], "rank %d coords (%d,%d), want (%d,%d) row-major", r, co[0], co[1], r / d[1],
        r % d[1]);
  CHECK_MPI(MPI_Cart_rank(cart, co, &rr));
  CHECK(rr == r, "Cart_rank of my coords %d", rr);
  {
    int wrap[2] = {co[0] + d[0], co[1]};
    CHECK_MPI(MPI_Cart_rank(cart, wrap, &rr));
    CHECK(rr == r, "Cart_rank wraps the periodic dimension: %d", rr);
  }
  /* dimension 0 periodic: always a neighbour; dimension 1 open: MPI_PROC_NULL at its edges */
  CHECK_MPI(MPI_Cart_shift(cart, 0, 1, &src, &dst));
  CHECK(src == mod(co[0] - 1, d[0]) * d[1] + co[1] && dst == mod(co[0] + 1, d[0]) * d[1] + co[1], "shift dim 0: %d %d", src, dst);
  CHECK_MPI(MPI_Cart_shift(cart, 1, 1, &src, &dst));
  CHECK(src == (co[1] > 0 ? r - 1 : MPI_PROC_NULL) && dst == (co[1] < d[1] - 1 ? r + 1 : MPI_PROC_NULL),
        "shift dim 1 of (%d,%d): %d %d", co[0], co[1], src, dst);
  CHECK_MPI(MPI_Cart_shift(cart, 0, -2, &src, &dst));
  CHECK(dst == mod(co[0] - 2, d[0]) * d[1] + co[1] && src == mod(co[0] + 2, d[0]) * d[1] + co[1], "shift dim 0 by -2");
  {
    int gd[2], gp[2], gc[2];
    CHECK_MPI(MPI_Cart_get(cart, 2, gd, gp, gc));
    CHECK(gd[0] == d[0] && gd[1] == d[1] && gp[0] == 1 && gp[1] == 0 && gc[0] == co[0] && gc[1] == co[1], "Cart_get");
  }
  {
    int keep_row[2] = {0, 1}, keep_col[2] = {1, 0}, rs, rk, cs, ck;
    CHECK_MPI(MPI_Cart_sub(cart, keep_row, &row));
    CHECK_MPI(MPI_Cart_sub(cart, keep_col, &col));
    MPI_Comm_size(row, &rs);
    MPI_Comm_rank(row, &rk);
    MPI_Comm_size(col, &cs);
    MPI_Comm_rank(col, &ck);
    CHECK(rs == d[1] && rk == co[1] && cs == d[0] && ck == co[0], "Cart_sub: row %d/%d col %d/%d", rk, rs, ck, cs);
    CHECK_MPI(MPI_Cartdim_get(row, &nd));
    CHECK(nd == 1, "a row has 1 dimension, not %d", nd);
    {
      int sum = 0;
      MPI_Allreduce(&r, &sum, 1, MPI_INT, MPI_SUM, row);
      CHECK(sum == co[0] * d[1] * d[1] + d[1] * (d[1] - 1) / 2, "sum of the world ranks of my row %d", sum);
    }
    MPI_Comm_free(&row);
    MPI_Comm_free(&col);
  }
  MPI_Comm_free(&cart);
  /* a grid smaller than the communicator: the others get MPI_COMM_NULL, and Cart_map agrees */
  {
    int one[1] = {n > 1 ? n - 1 : 1}, p1[1] = {0}, nr;
    MPI_Comm small;
    CHECK_MPI(MPI_Cart_create(MPI_COMM_WORLD, 1, one, p1, 1, &small));
    CHECK((small == MPI_COMM_NULL) == (r >= one[0]), "rank %d of a %d-process grid: %s", r, one[0], small == MPI_COMM_NULL ? "null" : "member");
    CHECK_MPI(MPI_Cart_map(MPI_COMM_WORLD, 1, one, p1, &nr));
    CHECK(nr == (r < one[0] ? r : MPI_UNDEFINED), "Cart_map %d", nr);
    if (small != MPI_COMM_NULL) MPI_Comm_free(&small);
  }
}

static void graph(int n, int r) {
  /* a ring: node i is joined to i-1 and i+1 */
  int *index = malloc(sizeof(int) * (size_t)n), *edges = malloc(sizeof(int) * 2 * (size_t)n), k = 0, cnt, nb[2], st, nn, ne;
  MPI_Comm g;
  for (int i = 0; i < n; i++) {
    edges[k++] = mod(i - 1, n);
    edges[k++] = mod(i + 1, n);
    index[i] = k;
  }
  CHECK_MPI(MPI_Graph_create(MPI_COMM_WORLD, n, index, edges, 0, &g));
  CHECK_MPI(MPI_Topo_test(g, &st));
  CHECK(st == MPI_GRAPH, "Topo_test %d, want MPI_GRAPH", st);
  CHECK_MPI(MPI_Graphdims_get(g, &nn, &ne));
  CHECK(nn == n && ne == 2 * n, "Graphdims_get %d %d", nn, ne);
  CHECK_MPI(MPI_Graph_neighbors_count(g, r, &cnt));
  CHECK(cnt == 2, "neighbours %d", cnt);
  CHECK_MPI(MPI_Graph_neighbors(g, r, 2, nb));
  CHECK(nb[0] == mod(r - 1, n) && nb[1] == mod(r + 1, n), "Graph_neighbors %d %d", nb[0], nb[1]);
  {
    int got[2] = {-1, -1};
    CHECK_MPI(MPI_Neighbor_allgather(&r, 1, MPI_INT, got, 1, MPI_INT, g));
    CHECK(got[0] == mod(r - 1, n) && got[1] == mod(r + 1, n), "graph Neighbor_allgather %d %d", got[0], got[1]);
  }
  MPI_Comm_free(&g);
  free(index);
  free(edges);
}

static void dist(int n, int r) {
  int srcs[2] = {mod(r - 1, n), mod(r + 1, n)}, dsts[2] = {mod(r + 1, n), mod(r - 1, n)}, sw[2] = {10, 20}, dw[2] = {30, 40};
  int in, out, wt, gs[2], gw[2], gd[2], gdw[2], st;
  MPI_Comm dg, dg2;
  CHECK_MPI(MPI_Dist_graph_create_adjacent(MPI_COMM_WORLD, 2, srcs, sw, 2, dsts, dw, MPI_INFO_NULL, 0, &dg));
  CHECK_MPI(MPI_Topo_test(dg, &st));
  CHECK(st == MPI_DIST_GRAPH, "Topo_test %d, want MPI_DIST_GRAPH", st);
  CHECK_MPI(MPI_Dist_graph_neighbors_count(dg, &in, &out, &wt));
  CHECK(in == 2 && out == 2 && wt, "neighbors_count %d %d %d", in, out, wt);
  CHECK_MPI(MPI_Dist_graph_neighbors(dg, 2, gs, gw, 2, gd, gdw));
  CHECK(gs[0] == srcs[0] && gs[1] == srcs[1] && gd[0] == dsts[0] && gd[1] == dsts[1] && gw[1] == 20 && gdw[0] == 30,
        "Dist_graph_neighbors as given");
  /* block i goes to destination i (right, then left); block j comes from source j */
  {
    int send[2] = {100 * r + 1, 100 * r + 2}, recv[2] = {-1, -1}, ireq[2] = {-1, -1};
    MPI_Request q;
    CHECK_MPI(MPI_Neighbor_alltoall(send, 1, MPI_INT, recv, 1, MPI_INT, dg));
    /* from my left neighbour: what it sent to its right (its block 0); from my right: its block 1 */
    CHECK(n < 3 || (recv[0] == 100 * srcs[0] + 1 && recv[1] == 100 * srcs[1] + 2), "dist Neighbor_alltoall %d %d", recv[0], recv[1]);
    CHECK_MPI(MPI_Ineighbor_alltoall(send, 1, MPI_INT, ireq, 1, MPI_INT, dg, &q));
    CHECK_MPI(MPI_Wait(&q, MPI_STATUS_IGNORE));
    CHECK(ireq[0] == recv[0] && ireq[1] == recv[1], "Ineighbor_alltoall = Neighbor_alltoall");
  }
  /* v and w forms: 1 int to the right, 2 to the left, so from the left come 1 and from the
   * right 2 (placed before them); n <= 2 has one neighbour on both sides: MPI-3.1 leaves the
   * matching of its two messages to the implementation */
  if (n >= 3) {
    int send[3] = {r, r + 1000, r + 2000}, scounts[2] = {1, 2}, sdis[2] = {0, 1}, rcounts[2] = {1, 2}, rdis[2] = {2, 0};
    int recv[3] = {-1, -1, -1}, recvw[3] = {-1, -1, -1};
    MPI_Aint sb[2] = {0, sizeof(int)}, rb[2] = {2 * sizeof(int), 0};
    MPI_Datatype ty[2] = {MPI_INT, MPI_INT};
    MPI_Request q;
    CHECK_MPI(MPI_Neighbor_alltoallv(send, scounts, sdis, MPI_INT, recv, rcounts, rdis, MPI_INT, dg));
    CHECK(recv[2] == srcs[0] && recv[0] == srcs[1] + 1000 && recv[1] == srcs[1] + 2000, "Neighbor_alltoallv %d %d %d", recv[0],
          recv[1], recv[2]);
    CHECK_MPI(MPI_Ineighbor_alltoallw(send, scounts, sb, ty, recvw, rcounts, rb, ty, dg, &q));
    CHECK_MPI(MPI_Wait(&q, MPI_STATUS_IGNORE));
    CHECK(recvw[0] == recv[0] && recvw[1] == recv[1] && recvw[2] == recv[2], "Ineighbor_alltoallw = Neighbor_alltoallv");
  }
  /* the general form: every rank names the edge r -> r+1 (weight r); each learns its one in-
   * and out-neighbour */
  {
    int src = r, deg = 1, dst = mod(r + 1, n), w = r, s1, sw1, d1, dw1;
    CHECK_MPI(MPI_Dist_graph_create(MPI_COMM_WORLD, 1, &src, &deg, &dst, &w, MPI_INFO_NULL, 0, &dg2));
    CHECK_MPI(MPI_Dist_graph_neighbors_count(dg2, &in, &out, &wt));
    CHECK(in == 1 && out == 1 && wt, "Dist_graph_create counts %d %d %d", in, out, wt);
    CHECK_MPI(MPI_Dist_graph_neighbors(dg2, 1, &s1, &sw1, 1, &d1, &dw1));
    CHECK(s1 == mod(r - 1, n) && sw1 == mod(r - 1, n) && d1 == dst && dw1 == r, "Dist_graph_create neighbours %d(%d) %d(%d)", s1, sw1, d1, dw1);
    {
      int got = -1;
      MPI_Request q;
      CHECK_MPI(MPI_Ineighbor_allgather(&r, 1, MPI_INT, &got, 1, MPI_INT, dg2, &q));
      CHECK_MPI(MPI_Wait(&q, MPI_STATUS_IGNORE));
      CHECK(got == mod(r - 1, n), "Ineighbor_allgather on a ring %d", got);
    }
    MPI_Comm_free(&dg2);
  }
  MPI_Comm_free(&dg);
}

/* Neighbourhood collectives on a periodic 1-D grid (a ring) and an open one. */
static void cart_neighbors(int n, int r) {
  int d[1] = {n}, per[1] = {1}, open[1] = {0};
  MPI_Comm ring, line;
  MPI_Cart_create(MPI_COMM_WORLD, 1, d, per, 0, &ring);
  MPI_Cart_create(MPI_COMM_WORLD, 1, d, open, 0, &line);
  if (n >= 3) { /* n <= 2 makes both neighbours one rank: MPI-3.1 left that case undefined */
    int got[2] = {-1, -1}, send[2] = {10 * r, 10 * r + 1}, a2a[2] = {-1, -1}, v[2] = {-1, -1}, counts[2] = {1, 1}, displs[2] = {1, 0};
    MPI_Request q;
    CHECK_MPI(MPI_Neighbor_allgather(&r, 1, MPI_INT, got, 1, MPI_INT, ring));
    CHECK(got[0] == mod(r - 1, n) && got[1] == mod(r + 1, n), "ring Neighbor_allgather %d %d", got[0], got[1]);
    /* block 0 goes to -1, block 1 to +1: from my -1 side comes its block 1 */
    CHECK_MPI(MPI_Neighbor_alltoall(send, 1, MPI_INT, a2a, 1, MPI_INT, ring));
    CHECK(a2a[0] == 10 * mod(r - 1, n) + 1 && a2a[1] == 10 * mod(r + 1, n), "ring Neighbor_alltoall %d %d", a2a[0], a2a[1]);
    CHECK_MPI(MPI_Ineighbor_allgatherv(&r, 1, MPI_INT, v, counts, displs, MPI_INT, ring, &q));
    CHECK_MPI(MPI_Wait(&q, MPI_STATUS_IGNORE));
    CHECK(v[1] == mod(r - 1, n) && v[0] == mod(r + 1, n), "ring Ineighbor_allgatherv %d %d", v[0], v[1]);
  }
  {
    int got[2] = {-7, -7};
    CHECK_MPI(MPI_Neighbor_allgather(&r, 1, MPI_INT, got, 1, MPI_INT, line));
    /* an open edge is MPI_PROC_NULL: nothing arrives there, the buffer keeps its value */
    CHECK(got[0] == (r > 0 ? r - 1 : -7) && got[1] == (r < n - 1 ? r + 1 : -7), "line Neighbor_allgather %d %d", got[0], got[1]);
  }
  MPI_Comm_free(&ring);
  MPI_Comm_free(&line);
}

int main(int argc, char **argv) {
  sft_init(&argc, &argv);
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  dims();
  cart(sft_size, sft_rank);
  graph(sft_size, sft_rank);
  dist(sft_size, sft_rank);
  cart_neighbors(sft_size, sft_rank);
  return sft_finish("topologies");
}
