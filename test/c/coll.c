/* coll.c: every collective gives the exact answer at every size (1..8 ranks), every root,
 * small and large payloads, and with MPI_IN_PLACE where MPI allows it. */
#include "sft.h"

#define BIG 300000 /* ints: above the eager limit, exercises rendezvous */

int main(int argc, char **argv) {
  int n, r;
  sft_init(&argc, &argv);
  n = sft_size;
  r = sft_rank;
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  int *a = malloc(sizeof(int) * BIG * (size_t)(n + 1)), *b = malloc(sizeof(int) * BIG * (size_t)(n + 1));

  for (int i = 0; i < 3; i++) CHECK_MPI(MPI_Barrier(MPI_COMM_WORLD));

  /* Bcast from every root, small and big. */
  for (int root = 0; root < n; root++)
    for (int big = 0; big < 2; big++) {
      int len = big ? BIG : 5;
      for (int i = 0; i < len; i++) a[i] = r == root ? root * 7 + i : -1;
      CHECK_MPI(MPI_Bcast(a, len, MPI_INT, root, MPI_COMM_WORLD));
      CHECK(a[0] == root * 7 && a[len - 1] == root * 7 + len - 1, "bcast root %d len %d: got %d..%d", root, len, a[0], a[len - 1]);
    }

  /* Reduce/Allreduce with every predefined arithmetic op, on ints and doubles. */
  {
    MPI_Op ops[] = {MPI_SUM, MPI_PROD, MPI_MAX, MPI_MIN, MPI_LAND, MPI_LOR, MPI_LXOR, MPI_BAND, MPI_BOR, MPI_BXOR};
    for (unsigned k = 0; k < sizeof ops / sizeof ops[0]; k++) {
      int mine[3] = {r + 1, (r % 2) ? 3 : 5, r == 0}, out[3] = {0, 0, 0}, want[3];
      for (int j = 0; j < 3; j++) {
        int acc = 0;
        for (int q = 0; q < n; q++) {
          int v = j == 0 ? q + 1 : j == 1 ? ((q % 2) ? 3 : 5) : q == 0;
          if (q == 0) { acc = v; continue; }
          switch (ops[k]) {
          case MPI_SUM: acc += v; break;
          case MPI_PROD: acc *= v; break;
          case MPI_MAX: acc = v > acc ? v : acc; break;
          case MPI_MIN: acc = v < acc ? v : acc; break;
          case MPI_LAND: acc = acc && v; break;
          case MPI_LOR: acc = acc || v; break;
          case MPI_LXOR: acc = !acc != !v; break;
          case MPI_BAND: acc &= v; break;
          case MPI_BOR: acc |= v; break;
          default: acc ^= v; break;
          }
        }
        want[j] = acc;
      }
      for (int root = 0; root < n; root += (n > 2 ? n - 1 : 1)) {
        out[0] = out[1] = out[2] = -99;
        CHECK_MPI(MPI_Reduce(mine, out, 3, MPI_INT, ops[k], root, MPI_COMM_WORLD));
        if (r == root)
          CHECK(out[0] == want[0] && out[1] == want[1] && out[2] == want[2], "reduce op %d root %d: %d %d %d want %d %d %d",
                ops[k], root, out[0], out[1], out[2], want[0], want[1], want[2]);
      }
      CHECK_MPI(MPI_Allreduce(mine, out, 3, MPI_INT, ops[k], MPI_COMM_WORLD));
      CHECK(out[0] == want[0] && out[1] == want[1] && out[2] == want[2], "allreduce op %d", ops[k]);
    }
  }
  /* Big double allreduce + IN_PLACE. */
  {
    double *d = (double *)a;
    for (int i = 0; i < BIG / 2; i++) d[i] = r + i * 0.5;
    CHECK_MPI(MPI_Allreduce(MPI_IN_PLACE, d, BIG / 2, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD));
    for (int i = 0; i < BIG / 2; i += 997)
      CHECK(d[i] == n * (n - 1) / 2.0 + n * i * 0.5, "big allreduce d[%d] = %g", i, d[i]);
    for (int i = 0; i < 10; i++) d[i] = r;
    CHECK_MPI(MPI_Reduce(r == 0 ? MPI_IN_PLACE : d, d, 10, MPI_DOUBLE, MPI_MAX, 0, MPI_COMM_WORLD));
    if (r == 0) CHECK(d[3] == n - 1, "in-place reduce max %g", d[3]);
  }
  /* MAXLOC / MINLOC on pair types. */
  {
    struct { double v; int i; } in = {(double)((r * 7) % n), r}, out;
    struct { int v; int i; } in2 = {r % 2, r}, out2;
    CHECK_MPI(MPI_Allreduce(&in, &out, 1, MPI_DOUBLE_INT, MPI_MAXLOC, MPI_COMM_WORLD));
    {
      double best = -1; int bi = -1;
      for (int q = 0; q < n; q++) if ((double)((q * 7) % n) > best) best = (q * 7) % n, bi = q;
      CHECK(out.v == best && out.i == bi, "maxloc %g@%d want %g@%d", out.v, out.i, best, bi);
    }
    CHECK_MPI(MPI_Allreduce(&in2, &out2, 1, MPI_2INT, MPI_MINLOC, MPI_COMM_WORLD));
    CHECK(out2.v == 0 && out2.i == 0, "minloc %d@%d (ties must keep the lowest index)", out2.v, out2.i);
  }
  /* Scan / Exscan. */
  {
    int v = r + 1, s = -1, e = -7;
    CHECK_MPI(MPI_Scan(&v, &s, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD));
    CHECK(s == (r + 1) * (r + 2) / 2, "scan %d", s);
    CHECK_MPI(MPI_Exscan(&v, &e, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD));
    if (r > 0) CHECK(e == r * (r + 1) / 2, "exscan %d", e);
    s = r + 1;
    CHECK_MPI(MPI_Scan(MPI_IN_PLACE, &s, 1, MPI_INT, MPI_PROD, MPI_COMM_WORLD));
    {
      int f = 1;
      for (int q = 1; q <= r + 1; q++) f *= q;
      CHECK(s == f, "in-place scan prod %d want %d", s, f);
    }
  }
  /* Gather / Scatter / Allgather / Alltoall, small and big, every root for gather/scatter. */
  for (int big = 0; big < 2; big++) {
    int len = big ? 20000 : 2;
    for (int root = 0; root < n; root++) {
      for (int i = 0; i < len; i++) a[i] = r * 100000 + i;
      memset(b, 0xff, sizeof(int) * (size_t)len * (size_t)n);
      CHECK_MPI(MPI_Gather(a, len, MPI_INT, b, len, MPI_INT, root, MPI_COMM_WORLD));
      if (r == root)
        for (int q = 0; q < n; q++) CHECK(b[q * len] == q * 100000 && b[q * len + len - 1] == q * 100000 + len - 1, "gather root %d block %d", root, q);
      for (int q = 0; q < n && r == root; q++)
        for (int i = 0; i < len; i++) a[q * len + i] = q * 3 + i;
      memset(b, 0xff, sizeof(int) * (size_t)len);
      CHECK_MPI(MPI_Scatter(a, len, MPI_INT, b, len, MPI_INT, root, MPI_COMM_WORLD));
      CHECK(b[0] == r * 3 && b[len - 1] == r * 3 + len - 1, "scatter root %d: %d", root, b[0]);
    }
    for (int i = 0; i < len; i++) a[i] = r * 10 + i;
    CHECK_MPI(MPI_Allgather(a, len, MPI_INT, b, len, MPI_INT, MPI_COMM_WORLD));
    for (int q = 0; q < n; q++) CHECK(b[q * len] == q * 10 && b[q * len + len - 1] == q * 10 + len - 1, "allgather block %d", q);
    for (int q = 0; q < n; q++)
      for (int i = 0; i < len; i++) a[q * len + i] = r * 1000 + q + i;
    CHECK_MPI(MPI_Alltoall(a, len, MPI_INT, b, len, MPI_INT, MPI_COMM_WORLD));
    for (int q = 0; q < n; q++) CHECK(b[q * len] == q * 1000 + r && b[q * len + len - 1] == q * 1000 + r + len - 1, "alltoall block %d", q);
    /* in place */
    for (int q = 0; q < n; q++) b[q * len] = q == r ? r * 5 : -1;
    CHECK_MPI(MPI_Allgather(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, b, len, MPI_INT, MPI_COMM_WORLD));
    for (int q = 0; q < n; q++) CHECK(b[q * len] == q * 5, "in-place allgather block %d = %d", q, b[q * len]);
  }
  /* V variants: rank q contributes q+1 ints, placed in reverse order with gaps. */
  {
    int *counts = malloc(sizeof(int) * (size_t)n), *displs = malloc(sizeof(int) * (size_t)n), total = 0;
    for (int q = n - 1; q >= 0; q--) {
      counts[q] = q + 1;
      displs[q] = total;
      total += q + 1 + 2;
    }
    for (int i = 0; i <= r; i++) a[i] = r * 100 + i;
    for (int root = 0; root < n; root++) {
      memset(b, 0, sizeof(int) * (size_t)total);
      CHECK_MPI(MPI_Gatherv(a, r + 1, MPI_INT, b, counts, displs, MPI_INT, root, MPI_COMM_WORLD));
      if (r == root)
        for (int q = 0; q < n; q++) CHECK(b[displs[q]] == q * 100 && b[displs[q] + q] == q * 100 + q, "gatherv block %d", q);
    }
    memset(b, 0, sizeof(int) * (size_t)total);
    CHECK_MPI(MPI_Allgatherv(a, r + 1, MPI_INT, b, counts, displs, MPI_INT, MPI_COMM_WORLD));
    for (int q = 0; q < n; q++) CHECK(b[displs[q]] == q * 100 && b[displs[q] + q] == q * 100 + q, "allgatherv block %d", q);
    {
      int *rb = malloc(sizeof(int) * (size_t)(r + 1));
      CHECK_MPI(MPI_Scatterv(b, counts, displs, MPI_INT, rb, r + 1, MPI_INT, n - 1, MPI_COMM_WORLD));
      CHECK(rb[0] == r * 100 && rb[r] == r * 100 + r, "scatterv got %d", rb[0]);
      free(rb);
    }
    /* Alltoallv: rank r sends q+1 ints to rank q (values r*1000+q), receives r+1 from each. */
    {
      int *sc = malloc(sizeof(int) * (size_t)n), *sd = malloc(sizeof(int) * (size_t)n), *rc = malloc(sizeof(int) * (size_t)n),
          *rd = malloc(sizeof(int) * (size_t)n), so = 0, ro = 0;
      for (int q = 0; q < n; q++) {
        sc[q] = q + 1; sd[q] = so; so += q + 1;
        rc[q] = r + 1; rd[q] = ro; ro += r + 1;
        for (int i = 0; i <= q; i++) a[sd[q] + i] = r * 1000 + q;
      }
      CHECK_MPI(MPI_Alltoallv(a, sc, sd, MPI_INT, b, rc, rd, MPI_INT, MPI_COMM_WORLD));
      for (int q = 0; q < n; q++) CHECK(b[rd[q]] == q * 1000 + r && b[rd[q] + r] == q * 1000 + r, "alltoallv from %d", q);
      free(sc); free(sd); free(rc); free(rd);
    }
    /* Reduce_scatter: element i of the sum goes to the rank owning it. */
    {
      int tot = 0, *out = malloc(sizeof(int) * (size_t)(n + 1));
      for (int q = 0; q < n; q++) tot += counts[q];
      for (int i = 0; i < tot; i++) a[i] = i + r;
      CHECK_MPI(MPI_Reduce_scatter(a, out, counts, MPI_INT, MPI_SUM, MPI_COMM_WORLD));
      {
        int off = 0;
        for (int q = 0; q < r; q++) off += counts[q];
        for (int i = 0; i <= r; i++) CHECK(out[i] == n * (off + i) + n * (n - 1) / 2, "reduce_scatter out[%d]=%d", i, out[i]);
      }
      for (int i = 0; i < 2 * n; i++) a[i] = i * (r + 1);
      CHECK_MPI(MPI_Reduce_scatter_block(a, out, 2, MPI_INT, MPI_SUM, MPI_COMM_WORLD));
      CHECK(out[0] == 2 * r * n * (n + 1) / 2 && out[1] == (2 * r + 1) * n * (n + 1) / 2, "reduce_scatter_block %d %d", out[0], out[1]);
      free(out);
    }
    free(counts);
    free(displs);
  }
  free(a);
  free(b);
  return sft_finish("collectives");
}
