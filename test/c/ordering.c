/* ordering.c: messages from one sender on one communicator are non-overtaking, whatever mix of
 * eager and rendezvous sizes, blocking or non-blocking sends, and tag filters is used. */
#include "sft.h"

#define N 200

static int msg_len(int i) { return (i % 7 == 0) ? 100000 + i : (i % 3 == 0) ? 70000 : 1 + i % 50; }

int main(int argc, char **argv) {
  int *buf = malloc(200000 * sizeof(int));
  sft_init(&argc, &argv);
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  /* Every rank sends N numbered messages to every other rank (mixed sizes), then receives
   * them all with tag MPI_ANY_TAG and checks the sequence numbers come in order. */
  {
    MPI_Request *reqs = malloc(sizeof(MPI_Request) * (size_t)N * (size_t)sft_size);
    int **payload = malloc(sizeof(int *) * N);
    int nr = 0;
    for (int i = 0; i < N; i++) {
      int len = msg_len(i);
      payload[i] = malloc(sizeof(int) * (size_t)len);
      for (int k = 0; k < len; k++) payload[i][k] = i;
    }
    for (int d = 0; d < sft_size; d++) {
      if (d == sft_rank) continue;
      for (int i = 0; i < N; i++)
        CHECK_MPI(MPI_Isend(payload[i], msg_len(i), MPI_INT, d, i % 5, MPI_COMM_WORLD, &reqs[nr++]));
    }
    for (int s = 0; s < sft_size; s++) {
      if (s == sft_rank) continue;
      for (int i = 0; i < N; i++) {
        MPI_Status st;
        int cnt = -1;
        CHECK_MPI(MPI_Recv(buf, 200000, MPI_INT, s, MPI_ANY_TAG, MPI_COMM_WORLD, &st));
        MPI_Get_count(&st, MPI_INT, &cnt);
        CHECK(cnt == msg_len(i) && buf[0] == i && buf[cnt - 1] == i && st.MPI_TAG == i % 5,
              "from %d: message %d arrived as #%d (count %d tag %d)", s, i, buf[0], cnt, st.MPI_TAG);
      }
    }
    CHECK_MPI(MPI_Waitall(nr, reqs, MPI_STATUSES_IGNORE));
    for (int i = 0; i < N; i++) free(payload[i]);
    free(payload);
    free(reqs);
  }
  MPI_Barrier(MPI_COMM_WORLD);
  /* A burst around the shared-memory limits (600 B..8.2 KiB: eager, by rendezvous with a claim,
   * eagerly behind a waiting rendezvous, by rendezvous again): in order and intact, whether the
   * receives were posted before the burst (pass 0) or only after it (pass 1). Ranks 0 -> 1; the
   * others only join the barriers. */
  if (sft_size >= 2) {
    enum { B = 64 };
    static const int lens[4] = {150, 1100, 2048, 2049}; /* ints */
    MPI_Request r[B];
    int *msgs = malloc(sizeof(int) * 2049 * B);
    for (int pass = 0; pass < 2; pass++) {
      int posted_first = pass == 0;
      for (int i = 0; i < B; i++)
        for (int k = 0; k < 2049; k++) msgs[i * 2049 + k] = sft_rank == 0 ? i * 100000 + k : -1;
      if (sft_rank == 1 && posted_first)
        for (int i = 0; i < B; i++) CHECK_MPI(MPI_Irecv(&msgs[i * 2049], 2049, MPI_INT, 0, 7, MPI_COMM_WORLD, &r[i]));
      if (sft_rank == 0)
        for (int i = 0; i < B; i++) CHECK_MPI(MPI_Isend(&msgs[i * 2049], lens[i % 4], MPI_INT, 1, 7, MPI_COMM_WORLD, &r[i]));
      MPI_Barrier(MPI_COMM_WORLD);
      if (sft_rank == 1 && !posted_first)
        for (int i = 0; i < B; i++) CHECK_MPI(MPI_Irecv(&msgs[i * 2049], 2049, MPI_INT, 0, 7, MPI_COMM_WORLD, &r[i]));
      if (sft_rank < 2) CHECK_MPI(MPI_Waitall(B, r, MPI_STATUSES_IGNORE));
      if (sft_rank == 1)
        for (int i = 0; i < B; i++) {
          int n = lens[i % 4], *m = &msgs[i * 2049];
          CHECK(m[0] == i * 100000 && m[n / 2] == i * 100000 + n / 2 && m[n - 1] == i * 100000 + n - 1 && (n == 2049 || m[n] == -1),
                "burst pass %d: message %d of %d ints arrived as [%d, %d, %d]", pass, i, n, m[0], m[n / 2], m[n - 1]);
        }
    }
    free(msgs);
  }
  MPI_Barrier(MPI_COMM_WORLD);
  /* Tag filtering keeps order within a tag: receive all tag-1 messages first, then tag-0. */
  if (sft_size >= 2) {
    if (sft_rank == 0) {
      for (int i = 0; i < 40; i++) {
        int v[2] = {i, i % 2};
        CHECK_MPI(MPI_Send(v, 2, MPI_INT, 1, i % 2, MPI_COMM_WORLD));
      }
    } else if (sft_rank == 1) {
      for (int t = 1; t >= 0; t--)
        for (int i = t; i < 40; i += 2) {
          int v[2] = {-1, -1};
          CHECK_MPI(MPI_Recv(v, 2, MPI_INT, 0, t, MPI_COMM_WORLD, MPI_STATUS_IGNORE));
          CHECK(v[0] == i && v[1] == t, "tag %d: expected message %d, got %d", t, i, v[0]);
        }
    }
  }
  free(buf);
  return sft_finish("ordering");
}
