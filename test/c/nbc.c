/* nbc.c: every non-blocking collective gives what its blocking twin gives (every root, small
 * and large, MPI_IN_PLACE, a non-contiguous type, a non-commutative user op), several may be
 * in flight at once, and a collective moves on while its ranks are blocked in other calls. */
#include "sft.h"

#define BIG 70000 /* ints: above the eager limit */

/* (a, b) o (c, d) = (a*c, a*d + b): affine maps composed in rank order; not commutative */
static void affine(void *in, void *inout, int *len, MPI_Datatype *dt) {
  long long *x = in, *y = inout;
  (void)dt;
  for (int i = 0; i < *len; i++) {
    long long a = x[2 * i], b = x[2 * i + 1], c = y[2 * i], d = y[2 * i + 1];
    y[2 * i] = a * c;
    y[2 * i + 1] = a * d + b;
  }
}

static int same(const int *a, const int *b, int n) { return memcmp(a, b, sizeof(int) * (size_t)n) == 0; }

static void wait1(MPI_Request *q) { CHECK_MPI(MPI_Wait(q, MPI_STATUS_IGNORE)); }

int main(int argc, char **argv) {
  int n, r;
  MPI_Request q;
  sft_init(&argc, &argv);
  n = sft_size;
  r = sft_rank;
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  int *a = malloc(sizeof(int) * BIG * (size_t)(n + 1)), *b = malloc(sizeof(int) * BIG * (size_t)(n + 1));
  int *c = malloc(sizeof(int) * BIG * (size_t)(n + 1));

  CHECK_MPI(MPI_Ibarrier(MPI_COMM_WORLD, &q));
  wait1(&q);

  /* Ibcast = Bcast from every root, small and large */
  for (int root = 0; root < n; root++)
    for (int len = 3; len <= BIG; len += BIG - 3) {
      for (int i = 0; i < len; i++) a[i] = b[i] = r == root ? root * 31 + i : -1;
      CHECK_MPI(MPI_Bcast(a, len, MPI_INT, root, MPI_COMM_WORLD));
      CHECK_MPI(MPI_Ibcast(b, len, MPI_INT, root, MPI_COMM_WORLD, &q));
      wait1(&q);
      CHECK(same(a, b, len), "Ibcast root %d len %d differs from Bcast", root, len);
    }

  /* Ireduce / Iallreduce / Iscan / Iexscan = their twins, ints and doubles */
  {
    int mine[4] = {r + 1, 2 * r, r % 3, 7}, x[4], y[4];
    double dm[2] = {0.5 * r, -r}, dx[2], dy[2];
    for (int root = 0; root < n; root++) {
      CHECK_MPI(MPI_Reduce(mine, x, 4, MPI_INT, MPI_SUM, root, MPI_COMM_WORLD));
      CHECK_MPI(MPI_Ireduce(mine, y, 4, MPI_INT, MPI_SUM, root, MPI_COMM_WORLD, &q));
      wait1(&q);
      CHECK(r != root || same(x, y, 4), "Ireduce SUM root %d", root);
    }
    CHECK_MPI(MPI_Allreduce(mine, x, 4, MPI_INT, MPI_MAX, MPI_COMM_WORLD));
    CHECK_MPI(MPI_Iallreduce(mine, y, 4, MPI_INT, MPI_MAX, MPI_COMM_WORLD, &q));
    wait1(&q);
    CHECK(same(x, y, 4), "Iallreduce MAX");
    CHECK_MPI(MPI_Allreduce(dm, dx, 2, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD));
    CHECK_MPI(MPI_Iallreduce(dm, dy, 2, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD, &q));
    wait1(&q);
    CHECK(dx[0] == dy[0] && dx[1] == dy[1], "Iallreduce SUM double");
    memcpy(y, mine, sizeof y);
    CHECK_MPI(MPI_Iallreduce(MPI_IN_PLACE, y, 4, MPI_INT, MPI_MAX, MPI_COMM_WORLD, &q));
    wait1(&q);
    CHECK(same(x, y, 4), "Iallreduce MAX in place");
    CHECK_MPI(MPI_Scan(mine, x, 4, MPI_INT, MPI_SUM, MPI_COMM_WORLD));
    CHECK_MPI(MPI_Iscan(mine, y, 4, MPI_INT, MPI_SUM, MPI_COMM_WORLD, &q));
    wait1(&q);
    CHECK(same(x, y, 4), "Iscan SUM");
    CHECK_MPI(MPI_Exscan(mine, x, 4, MPI_INT, MPI_SUM, MPI_COMM_WORLD));
    CHECK_MPI(MPI_Iexscan(mine, y, 4, MPI_INT, MPI_SUM, MPI_COMM_WORLD, &q));
    wait1(&q);
    CHECK(r == 0 || same(x, y, 4), "Iexscan SUM");
    /* large */
    for (int i = 0; i < BIG; i++) a[i] = r * i % 1000;
    CHECK_MPI(MPI_Allreduce(a, b, BIG, MPI_INT, MPI_SUM, MPI_COMM_WORLD));
    CHECK_MPI(MPI_Iallreduce(a, c, BIG, MPI_INT, MPI_SUM, MPI_COMM_WORLD, &q));
    wait1(&q);
    CHECK(same(b, c, BIG), "Iallreduce of %d ints", BIG);
  }

  /* a non-commutative user op: the rank order must hold */
  {
    MPI_Op aff;
    MPI_Datatype pair;
    long long m[2] = {r + 2, r}, x[2], y[2];
    MPI_Type_contiguous(2, MPI_LONG_LONG, &pair);
    MPI_Type_commit(&pair);
    MPI_Op_create(affine, 0, &aff);
    CHECK_MPI(MPI_Allreduce(m, x, 1, pair, aff, MPI_COMM_WORLD));
    CHECK_MPI(MPI_Iallreduce(m, y, 1, pair, aff, MPI_COMM_WORLD, &q));
    wait1(&q);
    CHECK(x[0] == y[0] && x[1] == y[1], "Iallreduce of a non-commutative op: (%lld,%lld) vs (%lld,%lld)", x[0], x[1], y[0], y[1]);
    CHECK_MPI(MPI_Scan(m, x, 1, pair, aff, MPI_COMM_WORLD));
    CHECK_MPI(MPI_Iscan(m, y, 1, pair, aff, MPI_COMM_WORLD, &q));
    wait1(&q);
    CHECK(x[0] == y[0] && x[1] == y[1], "Iscan of a non-commutative op");
    CHECK_MPI(MPI_Exscan(m, x, 1, pair, aff, MPI_COMM_WORLD));
    CHECK_MPI(MPI_Iexscan(m, y, 1, pair, aff, MPI_COMM_WORLD, &q));
    wait1(&q);
    CHECK(r == 0 || (x[0] == y[0] && x[1] == y[1]), "Iexscan of a non-commutative op");
    for (int root = 0; root < n; root++) {
      CHECK_MPI(MPI_Reduce(m, x, 1, pair, aff, root, MPI_COMM_WORLD));
      CHECK_MPI(MPI_Ireduce(m, y, 1, pair, aff, root, MPI_COMM_WORLD, &q));
      wait1(&q);
      CHECK(r != root || (x[0] == y[0] && x[1] == y[1]), "Ireduce of a non-commutative op at root %d", root);
    }
    MPI_Op_free(&aff);
    MPI_Type_free(&pair);
  }

  /* gathers and scatters (plain, v, in place) from every root */
  {
    int *cnt = malloc(sizeof(int) * (size_t)n), *dis = malloc(sizeof(int) * (size_t)n), tot = 0;
    for (int i = 0; i < n; i++) {
      cnt[i] = i + 1;
      dis[i] = tot;
      tot += i + 1;
    }
    for (int root = 0; root < n; root++) {
      int mine[3] = {r, r * 10, r * 100};
      memset(b, 0xff, sizeof(int) * 3 * (size_t)n);
      memset(c, 0xff, sizeof(int) * 3 * (size_t)n);
      CHECK_MPI(MPI_Gather(mine, 3, MPI_INT, b, 3, MPI_INT, root, MPI_COMM_WORLD));
      CHECK_MPI(MPI_Igather(mine, 3, MPI_INT, c, 3, MPI_INT, root, MPI_COMM_WORLD, &q));
      wait1(&q);
      CHECK(r != root || same(b, c, 3 * n), "Igather root %d", root);
      for (int i = 0; i < r + 1; i++) a[i] = r * 7 + i;
      memset(b, 0xff, sizeof(int) * (size_t)tot);
      memset(c, 0xff, sizeof(int) * (size_t)tot);
      CHECK_MPI(MPI_Gatherv(a, r + 1, MPI_INT, b, cnt, dis, MPI_INT, root, MPI_COMM_WORLD));
      CHECK_MPI(MPI_Igatherv(a, r + 1, MPI_INT, c, cnt, dis, MPI_INT, root, MPI_COMM_WORLD, &q));
      wait1(&q);
      CHECK(r != root || same(b, c, tot), "Igatherv root %d", root);
      if (r == root)
        for (int i = 0; i < 3 * n; i++) a[i] = root * 1000 + i;
      CHECK_MPI(MPI_Scatter(a, 3, MPI_INT, b, 3, MPI_INT, root, MPI_COMM_WORLD));
      CHECK_MPI(MPI_Iscatter(a, 3, MPI_INT, c, 3, MPI_INT, root, MPI_COMM_WORLD, &q));
      wait1(&q);
      CHECK(same(b, c, 3), "Iscatter root %d", root);
      CHECK_MPI(MPI_Scatterv(a, cnt, dis, MPI_INT, b, r + 1, MPI_INT, root, MPI_COMM_WORLD));
      CHECK_MPI(MPI_Iscatterv(a, cnt, dis, MPI_INT, c, r + 1, MPI_INT, root, MPI_COMM_WORLD, &q));
      wait1(&q);
      CHECK(same(b, c, r + 1), "Iscatterv root %d", root);
      /* in place at the root */
      if (r == root) {
        for (int i = 0; i < 3 * n; i++) c[i] = i == 3 * root ? -5 : -1;
        c[3 * root] = r;
        c[3 * root + 1] = r * 10;
        c[3 * root + 2] = r * 100;
        CHECK_MPI(MPI_Igather(MPI_IN_PLACE, 3, MPI_INT, c, 3, MPI_INT, root, MPI_COMM_WORLD, &q));
      } else {
        CHECK_MPI(MPI_Igather(mine, 3, MPI_INT, NULL, 3, MPI_INT, root, MPI_COMM_WORLD, &q));
      }
      wait1(&q);
      if (r == root)
        for (int i = 0; i < n; i++) CHECK(c[3 * i + 1] == 10 * i, "Igather in place root %d block %d", root, i);
    }
    /* allgather(v) and all-to-all(v) */
    {
      int mine[2] = {r, -r};
      CHECK_MPI(MPI_Allgather(mine, 2, MPI_INT, b, 2, MPI_INT, MPI_COMM_WORLD));
      CHECK_MPI(MPI_Iallgather(mine, 2, MPI_INT, c, 2, MPI_INT, MPI_COMM_WORLD, &q));
      wait1(&q);
      CHECK(same(b, c, 2 * n), "Iallgather");
      for (int i = 0; i < 2 * n; i++) c[i] = i / 2 == r ? c[i] : -9;
      CHECK_MPI(MPI_Iallgather(MPI_IN_PLACE, 2, MPI_INT, c, 2, MPI_INT, MPI_COMM_WORLD, &q));
      wait1(&q);
      CHECK(same(b, c, 2 * n), "Iallgather in place");
      for (int i = 0; i < r + 1; i++) a[i] = 100 * r + i;
      CHECK_MPI(MPI_Allgatherv(a, r + 1, MPI_INT, b, cnt, dis, MPI_INT, MPI_COMM_WORLD));
      CHECK_MPI(MPI_Iallgatherv(a, r + 1, MPI_INT, c, cnt, dis, MPI_INT, MPI_COMM_WORLD, &q));
      wait1(&q);
      CHECK(same(b, c, tot), "Iallgatherv");
      for (int i = 0; i < 2 * n; i++) a[i] = r * 100 + i;
      CHECK_MPI(MPI_Alltoall(a, 2, MPI_INT, b, 2, MPI_INT, MPI_COMM_WORLD));
      CHECK_MPI(MPI_Ialltoall(a, 2, MPI_INT, c, 2, MPI_INT, MPI_COMM_WORLD, &q));
      wait1(&q);
      CHECK(same(b, c, 2 * n), "Ialltoall");
      memcpy(c, a, sizeof(int) * 2 * (size_t)n);
      CHECK_MPI(MPI_Ialltoall(MPI_IN_PLACE, 2, MPI_INT, c, 2, MPI_INT, MPI_COMM_WORLD, &q));
      wait1(&q);
      CHECK(same(b, c, 2 * n), "Ialltoall in place");
    }
    {
      /* rank r sends j+1 ints to rank j; receives r+1 from each */
      int *sc = malloc(sizeof(int) * (size_t)n), *sd = malloc(sizeof(int) * (size_t)n), *rc = malloc(sizeof(int) * (size_t)n),
          *rd = malloc(sizeof(int) * (size_t)n), st = 0;
      MPI_Datatype *ty = malloc(sizeof(MPI_Datatype) * (size_t)n);
      int *sdb = malloc(sizeof(int) * (size_t)n), *rdb = malloc(sizeof(int) * (size_t)n);
      for (int j = 0; j < n; j++) {
        sc[j] = j + 1;
        sd[j] = st;
        st += j + 1;
        rc[j] = r + 1;
        rd[j] = j * (r + 1);
        ty[j] = MPI_INT;
        sdb[j] = sd[j] * (int)sizeof(int);
        rdb[j] = rd[j] * (int)sizeof(int);
      }
      for (int i = 0; i < st; i++) a[i] = r * 1000 + i;
      CHECK_MPI(MPI_Alltoallv(a, sc, sd, MPI_INT, b, rc, rd, MPI_INT, MPI_COMM_WORLD));
      CHECK_MPI(MPI_Ialltoallv(a, sc, sd, MPI_INT, c, rc, rd, MPI_INT, MPI_COMM_WORLD, &q));
      wait1(&q);
      CHECK(same(b, c, n * (r + 1)), "Ialltoallv");
      memset(c, 0xff, sizeof(int) * (size_t)(n * (r + 1)));
      CHECK_MPI(MPI_Alltoallw(a, sc, sdb, ty, c, rc, rdb, ty, MPI_COMM_WORLD));
      CHECK(same(b, c, n * (r + 1)), "Alltoallw");
      memset(c, 0xff, sizeof(int) * (size_t)(n * (r + 1)));
      CHECK_MPI(MPI_Ialltoallw(a, sc, sdb, ty, c, rc, rdb, ty, MPI_COMM_WORLD, &q));
      wait1(&q);
      CHECK(same(b, c, n * (r + 1)), "Ialltoallw");
      free(sc);
      free(sd);
      free(rc);
      free(rd);
      free(ty);
      free(sdb);
      free(rdb);
    }
    /* reduce-scatter */
    for (int i = 0; i < tot; i++) a[i] = r + i;
    CHECK_MPI(MPI_Reduce_scatter(a, b, cnt, MPI_INT, MPI_SUM, MPI_COMM_WORLD));
    CHECK_MPI(MPI_Ireduce_scatter(a, c, cnt, MPI_INT, MPI_SUM, MPI_COMM_WORLD, &q));
    wait1(&q);
    CHECK(same(b, c, r + 1), "Ireduce_scatter");
    CHECK_MPI(MPI_Reduce_scatter_block(a, b, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD));
    CHECK_MPI(MPI_Ireduce_scatter_block(a, c, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD, &q));
    wait1(&q);
    CHECK(b[0] == c[0], "Ireduce_scatter_block");
    free(cnt);
    free(dis);
  }

  /* a non-contiguous type (every other int) through Ibcast and Iallgather */
  {
    MPI_Datatype every2;
    int x[8], y[8];
    MPI_Type_vector(4, 1, 2, MPI_INT, &every2);
    MPI_Type_commit(&every2);
    for (int i = 0; i < 8; i++) x[i] = y[i] = r == 0 ? i : -1;
    CHECK_MPI(MPI_Bcast(x, 1, every2, 0, MPI_COMM_WORLD));
    CHECK_MPI(MPI_Ibcast(y, 1, every2, 0, MPI_COMM_WORLD, &q));
    MPI_Type_free(&every2); /* freeing a type in use is allowed: the operation keeps it */
    wait1(&q);
    CHECK(same(x, y, 8), "Ibcast of a vector type");
    CHECK(r == 0 || (y[1] == -1 && y[2] == 2), "Ibcast of a vector type touched only its elements");
  }

  /* several in flight at once, completed in any order */
  {
    int s1 = r, s2 = 2 * r, o1 = -1, o2 = -1, want1 = n * (n - 1) / 2;
    MPI_Request qs[3];
    CHECK_MPI(MPI_Iallreduce(&s1, &o1, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD, &qs[0]));
    CHECK_MPI(MPI_Ibarrier(MPI_COMM_WORLD, &qs[1]));
    CHECK_MPI(MPI_Iallreduce(&s2, &o2, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD, &qs[2]));
    CHECK_MPI(MPI_Waitall(3, qs, MPI_STATUSES_IGNORE));
    CHECK(o1 == want1 && o2 == 2 * want1, "three collectives in flight: %d %d", o1, o2);
    CHECK_MPI(MPI_Iallreduce(&s1, &o1, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD, &qs[0]));
    CHECK_MPI(MPI_Ibcast(&s2, 1, MPI_INT, n - 1, MPI_COMM_WORLD, &qs[1]));
    {
      int idx, flag = 0;
      CHECK_MPI(MPI_Waitany(2, qs, &idx, MPI_STATUS_IGNORE));
      CHECK(idx == 0 || idx == 1, "Waitany index %d", idx);
      while (!flag) CHECK_MPI(MPI_Testall(2, qs, &flag, MPI_STATUSES_IGNORE));
    }
    CHECK(o1 == n - 1 && s2 == 2 * (n - 1), "Waitany/Testall over collectives: %d %d", o1, s2);
  }

  /* progress while blocked elsewhere: rank 0 completes its barrier before it sends what the
   * others are blocked receiving, so their barriers must advance inside MPI_Recv */
  if (n >= 3) {
    int tok = 0;
    CHECK_MPI(MPI_Ibarrier(MPI_COMM_WORLD, &q));
    if (r == 0) {
      wait1(&q);
      for (int i = 1; i < n; i++) CHECK_MPI(MPI_Send(&i, 1, MPI_INT, i, 77, MPI_COMM_WORLD));
    } else {
      CHECK_MPI(MPI_Recv(&tok, 1, MPI_INT, 0, 77, MPI_COMM_WORLD, MPI_STATUS_IGNORE));
      CHECK(tok == r, "token %d", tok);
      wait1(&q);
    }
  }

  /* a duplicate communicator has collectives of its own */
  {
    MPI_Comm dup;
    int s = r + 1, o = 0, o2 = 0;
    MPI_Request qs[2];
    MPI_Comm_dup(MPI_COMM_WORLD, &dup);
    CHECK_MPI(MPI_Iallreduce(&s, &o, 1, MPI_INT, MPI_SUM, dup, &qs[0]));
    CHECK_MPI(MPI_Iallreduce(&s, &o2, 1, MPI_INT, MPI_PROD, MPI_COMM_WORLD, &qs[1]));
    CHECK_MPI(MPI_Waitall(2, qs, MPI_STATUSES_IGNORE));
    {
      int fact = 1;
      for (int i = 1; i <= n; i++) fact *= i;
      CHECK(o == n * (n + 1) / 2 && o2 == fact, "collectives on a dup and on world at once: %d %d", o, o2);
    }
    MPI_Comm_free(&dup);
  }
  free(a);
  free(b);
  free(c);
  return sft_finish("nonblocking collectives");
}
