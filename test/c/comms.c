/* comms.c: communicators isolate traffic (a message on a dup never matches on the parent),
 * Comm_split orders by key, Comm_compare / groups / Comm_create give MPI's answers, and
 * collectives work on sub-communicators and MPI_COMM_SELF. */
#include "sft.h"

int main(int argc, char **argv) {
  int n, r, res;
  MPI_Comm dup, half, rev, sub;
  MPI_Group wg, g2, g3;
  sft_init(&argc, &argv);
  n = sft_size;
  r = sft_rank;
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);

  CHECK_MPI(MPI_Comm_dup(MPI_COMM_WORLD, &dup));
  CHECK_MPI(MPI_Comm_compare(MPI_COMM_WORLD, dup, &res));
  CHECK(res == MPI_CONGRUENT, "compare world/dup = %d", res);
  CHECK_MPI(MPI_Comm_compare(dup, dup, &res));
  CHECK(res == MPI_IDENT, "compare dup/dup = %d", res);
  /* Isolation: send on dup first, then on world, same tag; receive world first. */
  if (n >= 2) {
    if (r == 0) {
      int a = 1, b = 2;
      CHECK_MPI(MPI_Send(&a, 1, MPI_INT, 1, 9, dup));
      CHECK_MPI(MPI_Send(&b, 1, MPI_INT, 1, 9, MPI_COMM_WORLD));
    } else if (r == 1) {
      int x = 0, y = 0;
      CHECK_MPI(MPI_Recv(&y, 1, MPI_INT, 0, 9, MPI_COMM_WORLD, MPI_STATUS_IGNORE));
      CHECK_MPI(MPI_Recv(&x, 1, MPI_INT, 0, MPI_ANY_TAG, dup, MPI_STATUS_IGNORE));
      CHECK(x == 1 && y == 2, "dup isolation: world got %d, dup got %d", y, x);
    }
  }
  /* Split by parity; key reverses the order. */
  CHECK_MPI(MPI_Comm_split(MPI_COMM_WORLD, r % 2, -r, &half));
  {
    int hs, hr, want_size = (n + 1 - r % 2) / 2, sum = 0, rr;
    MPI_Comm_size(half, &hs);
    MPI_Comm_rank(half, &hr);
    CHECK(hs == want_size, "split size %d want %d", hs, want_size);
    CHECK(hr == (want_size - 1) - r / 2, "split rank %d (world %d)", hr, r);
    CHECK_MPI(MPI_Allreduce(&r, &sum, 1, MPI_INT, MPI_SUM, half));
    {
      int want = 0;
      for (int q = r % 2; q < n; q += 2) want += q;
      CHECK(sum == want, "allreduce on split comm %d want %d", sum, want);
    }
    /* status.MPI_SOURCE is the rank in the sub-communicator. */
    if (hs >= 2) {
      MPI_Status st;
      int v = hr;
      CHECK_MPI(MPI_Sendrecv(&v, 1, MPI_INT, (hr + 1) % hs, 4, &rr, 1, MPI_INT, (hr - 1 + hs) % hs, 4, half, &st));
      CHECK(rr == (hr - 1 + hs) % hs && st.MPI_SOURCE == (hr - 1 + hs) % hs, "split ring got %d from %d", rr, st.MPI_SOURCE);
    }
  }
  CHECK_MPI(MPI_Comm_split(MPI_COMM_WORLD, 0, n - r, &rev));
  CHECK_MPI(MPI_Comm_compare(MPI_COMM_WORLD, rev, &res));
  CHECK(res == (n == 1 ? MPI_CONGRUENT : MPI_SIMILAR), "compare world/reversed = %d", res);
  /* MPI_UNDEFINED color gives MPI_COMM_NULL. */
  CHECK_MPI(MPI_Comm_split(MPI_COMM_WORLD, r == 0 ? MPI_UNDEFINED : 1, 0, &sub));
  CHECK((r == 0) == (sub == MPI_COMM_NULL), "undefined color: comm %d on rank %d", sub, r);
  if (sub != MPI_COMM_NULL) CHECK_MPI(MPI_Comm_free(&sub));
  /* Groups: incl / excl / translate / compare, and Comm_create from a group. */
  CHECK_MPI(MPI_Comm_group(MPI_COMM_WORLD, &wg));
  {
    int *ranks = malloc(sizeof(int) * (size_t)n), m = 0, gs, gr, tr[1], q;
    for (int i = n - 1; i >= 0; i -= 2) ranks[m++] = i; /* every other rank, from the top */
    CHECK_MPI(MPI_Group_incl(wg, m, ranks, &g2));
    MPI_Group_size(g2, &gs);
    MPI_Group_rank(g2, &gr);
    CHECK(gs == m, "group_incl size %d", gs);
    CHECK(gr == ((n - 1 - r) % 2 == 0 ? (n - 1 - r) / 2 : MPI_UNDEFINED), "group_incl rank %d on %d", gr, r);
    q = 0;
    CHECK_MPI(MPI_Group_translate_ranks(g2, 1, &q, wg, tr));
    CHECK(tr[0] == n - 1, "translate g2 rank 0 -> world %d", tr[0]);
    CHECK_MPI(MPI_Group_excl(wg, m, ranks, &g3));
    MPI_Group_size(g3, &gs);
    CHECK(gs == n - m, "group_excl size %d", gs);
    CHECK_MPI(MPI_Group_compare(wg, wg, &res));
    CHECK(res == MPI_IDENT, "group compare ident %d", res);
    CHECK_MPI(MPI_Comm_create(MPI_COMM_WORLD, g2, &sub));
    if (gr == MPI_UNDEFINED) {
      CHECK(sub == MPI_COMM_NULL, "Comm_create gave a comm to a non-member");
    } else {
      int cr, b = gr == 0 ? 4242 : 0;
      MPI_Comm_rank(sub, &cr);
      CHECK(cr == gr, "Comm_create rank %d want %d", cr, gr);
      CHECK_MPI(MPI_Bcast(&b, 1, MPI_INT, 0, sub));
      CHECK(b == 4242, "bcast on created comm %d", b);
      CHECK_MPI(MPI_Comm_free(&sub));
    }
    MPI_Group_free(&g2);
    MPI_Group_free(&g3);
    free(ranks);
  }
  MPI_Group_free(&wg);
  /* COMM_SELF: size 1, collectives are local copies. */
  {
    int s, v = r, w = -1;
    MPI_Comm_size(MPI_COMM_SELF, &s);
    CHECK(s == 1, "COMM_SELF size %d", s);
    CHECK_MPI(MPI_Allreduce(&v, &w, 1, MPI_INT, MPI_SUM, MPI_COMM_SELF));
    CHECK(w == r, "COMM_SELF allreduce %d", w);
  }
  /* Many dups and frees: context ids do not run out or collide. */
  for (int i = 0; i < 50; i++) {
    MPI_Comm c;
    int v = 1, s = 0;
    CHECK_MPI(MPI_Comm_dup(dup, &c));
    CHECK_MPI(MPI_Allreduce(&v, &s, 1, MPI_INT, MPI_SUM, c));
    CHECK(s == n, "allreduce on dup #%d = %d", i, s);
    CHECK_MPI(MPI_Comm_free(&c));
    CHECK(c == MPI_COMM_NULL, "Comm_free did not null the handle");
  }
  MPI_Comm_free(&half);
  MPI_Comm_free(&rev);
  MPI_Comm_free(&dup);
  return sft_finish("communicators");
}
