/* wildcards.c: MPI_ANY_SOURCE / MPI_ANY_TAG receive every message exactly once with the true
 * source and tag in the status; Probe/Iprobe report source, tag and size before the receive. */
#include "sft.h"

int main(int argc, char **argv) {
  sft_init(&argc, &argv);
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  /* Everyone sends 5 messages to rank 0 with tags 10+k; rank 0 receives with wildcards.
   * Non-blocking sends: rank 0 sends to itself too, which a blocking send may not (MPI 3.5). */
  {
    int v[5][2];
    MPI_Request sq[5];
    for (int k = 0; k < 5; k++) {
      v[k][0] = sft_rank;
      v[k][1] = k;
      CHECK_MPI(MPI_Isend(v[k], 2, MPI_INT, 0, 10 + k, MPI_COMM_WORLD, &sq[k]));
    }
    if (sft_rank == 0) {
      int *seen = calloc((size_t)sft_size * 5, sizeof(int)), *next = calloc((size_t)sft_size, sizeof(int));
      for (int m = 0; m < 5 * sft_size; m++) {
        MPI_Status st;
        int r[2];
        CHECK_MPI(MPI_Recv(r, 2, MPI_INT, MPI_ANY_SOURCE, MPI_ANY_TAG, MPI_COMM_WORLD, &st));
        CHECK(st.MPI_SOURCE == r[0] && st.MPI_TAG == 10 + r[1], "status says %d/%d for a message from %d/%d",
              st.MPI_SOURCE, st.MPI_TAG, r[0], 10 + r[1]);
        if (r[0] >= 0 && r[0] < sft_size && r[1] >= 0 && r[1] < 5) {
          CHECK(seen[r[0] * 5 + r[1]]++ == 0, "message %d/%d received twice", r[0], r[1]);
          CHECK(next[r[0]]++ == r[1], "messages from %d out of order", r[0]);
        }
      }
      free(seen);
      free(next);
    }
    CHECK_MPI(MPI_Waitall(5, sq, MPI_STATUSES_IGNORE));
  }
  MPI_Barrier(MPI_COMM_WORLD);
  /* ANY_SOURCE with a fixed tag only matches that tag. */
  if (sft_size >= 3) {
    if (sft_rank == 1) {
      int x = 111;
      CHECK_MPI(MPI_Send(&x, 1, MPI_INT, 0, 1, MPI_COMM_WORLD));
    } else if (sft_rank == 2) {
      int x = 222;
      CHECK_MPI(MPI_Send(&x, 1, MPI_INT, 0, 2, MPI_COMM_WORLD));
    } else if (sft_rank == 0) {
      int x = 0;
      MPI_Status st;
      CHECK_MPI(MPI_Recv(&x, 1, MPI_INT, MPI_ANY_SOURCE, 2, MPI_COMM_WORLD, &st));
      CHECK(x == 222 && st.MPI_SOURCE == 2, "tag-2 wildcard got %d from %d", x, st.MPI_SOURCE);
      CHECK_MPI(MPI_Recv(&x, 1, MPI_INT, MPI_ANY_SOURCE, MPI_ANY_TAG, MPI_COMM_WORLD, &st));
      CHECK(x == 111 && st.MPI_SOURCE == 1 && st.MPI_TAG == 1, "then got %d from %d", x, st.MPI_SOURCE);
    }
  }
  MPI_Barrier(MPI_COMM_WORLD);
  /* Probe: size unknown to the receiver; probe, allocate, receive. Large and small. */
  {
    int right = (sft_rank + 1) % sft_size, left = (sft_rank - 1 + sft_size) % sft_size;
    int n = 1000 + 50000 * (sft_rank % 3), *out = malloc(sizeof(int) * (size_t)n);
    MPI_Request r;
    MPI_Status st;
    int cnt = -1, flag = 0;
    for (int i = 0; i < n; i++) out[i] = sft_rank + i;
    CHECK_MPI(MPI_Isend(out, n, MPI_INT, right, 77, MPI_COMM_WORLD, &r));
    CHECK_MPI(MPI_Probe(MPI_ANY_SOURCE, 77, MPI_COMM_WORLD, &st));
    MPI_Get_count(&st, MPI_INT, &cnt);
    CHECK(st.MPI_SOURCE == left && cnt == 1000 + 50000 * (left % 3), "probe: source %d count %d", st.MPI_SOURCE, cnt);
    CHECK_MPI(MPI_Iprobe(left, 77, MPI_COMM_WORLD, &flag, &st));
    CHECK(flag == 1, "Iprobe after Probe did not see the message");
    if (cnt > 0) {
      int *in = malloc(sizeof(int) * (size_t)cnt);
      CHECK_MPI(MPI_Recv(in, cnt, MPI_INT, st.MPI_SOURCE, st.MPI_TAG, MPI_COMM_WORLD, MPI_STATUS_IGNORE));
      CHECK(in[0] == left && in[cnt - 1] == left + cnt - 1, "probed message content wrong");
      free(in);
    }
    CHECK_MPI(MPI_Wait(&r, MPI_STATUS_IGNORE));
    CHECK_MPI(MPI_Iprobe(MPI_ANY_SOURCE, 77, MPI_COMM_WORLD, &flag, &st));
    CHECK(flag == 0, "Iprobe found a message already received");
    free(out);
  }
  return sft_finish("wildcards");
}
