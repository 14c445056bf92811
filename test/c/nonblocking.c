/* nonblocking.c: Isend/Irecv/Issend complete through Wait, Waitall, Waitany, Waitsome, Test,
 * Testall, Testany, Testsome; Issend completes only once matched; Request_free and
 * MPI_REQUEST_NULL behave. */
#include "sft.h"

int main(int argc, char **argv) {
  int n = sft_size;
  sft_init(&argc, &argv);
  n = sft_size;
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  /* All-to-all with Irecv/Isend and Waitall, eager and rendezvous sizes. */
  for (int big = 0; big < 2; big++) {
    int len = big ? 40000 : 3;
    int *sb = malloc(sizeof(int) * (size_t)len * (size_t)n), *rb = malloc(sizeof(int) * (size_t)len * (size_t)n);
    MPI_Request *rq = malloc(sizeof(MPI_Request) * 2 * (size_t)n);
    MPI_Status *sts = malloc(sizeof(MPI_Status) * 2 * (size_t)n);
    for (int d = 0; d < n; d++)
      for (int k = 0; k < len; k++) sb[d * len + k] = sft_rank * 1000000 + d * 1000 + k % 1000;
    for (int s = 0; s < n; s++) CHECK_MPI(MPI_Irecv(rb + s * len, len, MPI_INT, s, 5, MPI_COMM_WORLD, &rq[s]));
    for (int d = 0; d < n; d++) CHECK_MPI(MPI_Isend(sb + d * len, len, MPI_INT, d, 5, MPI_COMM_WORLD, &rq[n + d]));
    CHECK_MPI(MPI_Waitall(2 * n, rq, sts));
    for (int s = 0; s < n; s++) {
      CHECK(rb[s * len] == s * 1000000 + sft_rank * 1000 && rb[s * len + len - 1] == s * 1000000 + sft_rank * 1000 + (len - 1) % 1000,
            "waitall: block from %d wrong", s);
      CHECK(sts[s].MPI_SOURCE == s && sts[s].MPI_TAG == 5, "waitall status %d: source %d", s, sts[s].MPI_SOURCE);
    }
    for (int i = 0; i < 2 * n; i++) CHECK(rq[i] == MPI_REQUEST_NULL, "request %d not set to MPI_REQUEST_NULL", i);
    free(sb);
    free(rb);
    free(rq);
    free(sts);
  }
  /* Waitany / Waitsome / Testany / Testsome: collect n receives one by one. */
  for (int mode = 0; mode < 4; mode++) {
    int *rb = malloc(sizeof(int) * (size_t)n), got = 0, *seen = calloc((size_t)n, sizeof(int));
    MPI_Request *rq = malloc(sizeof(MPI_Request) * (size_t)n), sr;
    int v = sft_rank * 10 + mode;
    for (int s = 0; s < n; s++) CHECK_MPI(MPI_Irecv(&rb[s], 1, MPI_INT, s, 20 + mode, MPI_COMM_WORLD, &rq[s]));
    for (int d = 0; d < n; d++) {
      CHECK_MPI(MPI_Isend(&v, 1, MPI_INT, d, 20 + mode, MPI_COMM_WORLD, &sr));
      CHECK_MPI(MPI_Request_free(&sr)); /* freed while maybe pending: must still be delivered */
      CHECK(sr == MPI_REQUEST_NULL, "Request_free did not null the handle");
    }
    while (got < n) {
      int idx = -1, flag = 0, outc = 0, ids[64];
      MPI_Status st, sts[64];
      if (mode == 0) {
        CHECK_MPI(MPI_Waitany(n, rq, &idx, &st));
        if (idx >= 0 && idx < n) seen[idx]++, got++;
      } else if (mode == 1) {
        CHECK_MPI(MPI_Waitsome(n, rq, &outc, ids, sts));
        for (int i = 0; i < outc; i++) seen[ids[i]]++, got++;
      } else if (mode == 2) {
        CHECK_MPI(MPI_Testany(n, rq, &idx, &flag, &st));
        if (flag && idx >= 0) seen[idx]++, got++;
      } else {
        CHECK_MPI(MPI_Testsome(n, rq, &outc, ids, sts));
        for (int i = 0; i < outc; i++) seen[ids[i]]++, got++;
      }
      if (got > n) break;
    }
    for (int s = 0; s < n; s++) {
      CHECK(seen[s] == 1, "mode %d: request %d completed %d times", mode, s, seen[s]);
      CHECK(rb[s] == s * 10 + mode, "mode %d: value from %d is %d", mode, s, rb[s]);
    }
    {
      int idx = 7, outc = 7;
      MPI_Waitany(n, rq, &idx, MPI_STATUS_IGNORE);
      CHECK(idx == MPI_UNDEFINED, "Waitany on all-null requests gave index %d", idx);
      MPI_Waitsome(n, rq, &outc, &idx, MPI_STATUSES_IGNORE);
      CHECK(outc == MPI_UNDEFINED, "Waitsome on all-null requests gave outcount %d", outc);
    }
    free(rb);
    free(rq);
    free(seen);
    MPI_Barrier(MPI_COMM_WORLD);
  }
  /* Issend completes only after the receive is posted; the receiver posts it only after a
   * "go" message that the sender sends after testing. */
  if (n >= 2 && sft_rank < 2) {
    int x = 42, y = 0, go = 1, flag = 1;
    MPI_Request r;
    if (sft_rank == 0) {
      CHECK_MPI(MPI_Issend(&x, 1, MPI_INT, 1, 30, MPI_COMM_WORLD, &r));
      flag = 0;
      for (int i = 0; i < 100 && !flag; i++) CHECK_MPI(MPI_Test(&r, &flag, MPI_STATUS_IGNORE));
      CHECK(flag == 0, "Issend completed before the receive was posted");
      CHECK_MPI(MPI_Send(&go, 1, MPI_INT, 1, 31, MPI_COMM_WORLD));
      if (!flag) CHECK_MPI(MPI_Wait(&r, MPI_STATUS_IGNORE));
    } else {
      CHECK_MPI(MPI_Recv(&go, 1, MPI_INT, 0, 31, MPI_COMM_WORLD, MPI_STATUS_IGNORE));
      CHECK_MPI(MPI_Recv(&y, 1, MPI_INT, 0, 30, MPI_COMM_WORLD, MPI_STATUS_IGNORE));
      CHECK(y == 42, "Issend payload %d", y);
    }
  }
  /* Test loop on a receive completes; Testall over a mixed set. */
  {
    int right = (sft_rank + 1) % n, left = (sft_rank - 1 + n) % n, a = sft_rank, b = -1, flag = 0, spins = 0;
    MPI_Request r[2];
    MPI_Status st[2];
    CHECK_MPI(MPI_Irecv(&b, 1, MPI_INT, left, 40, MPI_COMM_WORLD, &r[0]));
    CHECK_MPI(MPI_Isend(&a, 1, MPI_INT, right, 40, MPI_COMM_WORLD, &r[1]));
    while (!flag && spins++ < 50000000) CHECK_MPI(MPI_Testall(2, r, &flag, st));
    CHECK(flag && b == left && st[0].MPI_SOURCE == left, "Testall: flag %d value %d", flag, b);
    /* Wait/Test on MPI_REQUEST_NULL return at once with an empty status. */
    r[0] = MPI_REQUEST_NULL;
    CHECK_MPI(MPI_Wait(&r[0], &st[0]));
    CHECK(st[0].MPI_SOURCE == MPI_ANY_SOURCE && st[0].MPI_TAG == MPI_ANY_TAG, "empty status wrong");
    CHECK_MPI(MPI_Test(&r[0], &flag, &st[0]));
    CHECK(flag == 1, "Test on MPI_REQUEST_NULL not complete");
  }
  return sft_finish("nonblocking");
}
