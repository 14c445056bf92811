/* protocol.c: the data plane's protocol paths around their thresholds. Sizes on each side of the
 * direct-read threshold (4 KiB: eager below, rendezvous with one process_vm_readv above) and of
 * the eager limit (64 KiB: rendezvous messages up to it stay buffered, above it they wait for
 * their receive), delivered exactly with the receive posted first and with the send first, to
 * self, from MPI_ANY_SOURCE in sender order, and truncated with MPI_ERR_TRUNCATE (and, with
 * libsfmpi, the first bytes delivered). Validated with MPICH and Open MPI too. With libsfmpi
 * (SFMPI), also what eager buffering promises up to the eager limit: two ranks that send to each
 * other before receiving complete, and a message whose receive comes late (or was posted but not
 * progressed) still arrives once its sender took it back. */
#include "sft.h"

#include <time.h>

static const int sizes[] = {4095, 4096, 4097, 8192, 65535, 65536, 65537, 300000};
#define NSIZES ((int)(sizeof sizes / sizeof sizes[0]))

static void fill(unsigned char *b, int n, int seed) {
  for (int i = 0; i < n; i++) b[i] = (unsigned char)(i * 13 + seed * 5 + 3);
}
static int mismatch(const unsigned char *b, int n, int seed) {
  for (int i = 0; i < n; i++)
    if (b[i] != (unsigned char)(i * 13 + seed * 5 + 3)) return i + 1;
  return 0;
}

/* Busy-waits `ms` milliseconds without any MPI call: this rank makes no progress meanwhile. */
static void away(int ms) {
  struct timespec t0, t;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  do clock_gettime(CLOCK_MONOTONIC, &t);
  while ((t.tv_sec - t0.tv_sec) * 1000.0 + (t.tv_nsec - t0.tv_nsec) / 1e6 < ms);
}

int main(int argc, char **argv) {
  unsigned char *sb = malloc(300000), *rb = malloc(300000 + 64);
  int peer, cnt;
  MPI_Status st;
  MPI_Request rq;
  sft_init(&argc, &argv);
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  /* Pairs 0<->1, 2<->3, ...; a rank without a partner talks to itself. */
  peer = sft_rank ^ 1;
  if (peer >= sft_size) peer = sft_rank;

  for (int k = 0; k < NSIZES; k++) {
    int n = sizes[k], lower = sft_rank < peer || peer == sft_rank;
    /* Receive posted first: the receiver waits in the barrier with its Irecv posted. */
    if (lower) {
      MPI_Barrier(MPI_COMM_WORLD);
      fill(sb, n, k);
      if (peer == sft_rank) { /* to self: a blocking send of a rendezvous size would wait forever */
        CHECK_MPI(MPI_Isend(sb, n, MPI_BYTE, peer, k, MPI_COMM_WORLD, &rq));
        CHECK_MPI(MPI_Recv(rb, n, MPI_BYTE, peer, k, MPI_COMM_WORLD, &st));
        CHECK_MPI(MPI_Wait(&rq, MPI_STATUS_IGNORE));
      } else {
        CHECK_MPI(MPI_Send(sb, n, MPI_BYTE, peer, k, MPI_COMM_WORLD));
      }
    } else {
      memset(rb, 0xee, (size_t)n + 64);
      CHECK_MPI(MPI_Irecv(rb, n + 64, MPI_BYTE, peer, k, MPI_COMM_WORLD, &rq));
      MPI_Barrier(MPI_COMM_WORLD);
      CHECK_MPI(MPI_Wait(&rq, &st));
    }
    if (!lower || peer == sft_rank) {
      CHECK(mismatch(rb, n, k) == 0, "%d bytes, receive first: wrong byte at %d", n, mismatch(rb, n, k));
      MPI_Get_count(&st, MPI_BYTE, &cnt);
      CHECK(cnt == n && st.MPI_SOURCE == peer && st.MPI_TAG == k, "%d bytes, receive first: count %d source %d tag %d", n,
            cnt, st.MPI_SOURCE, st.MPI_TAG);
      if (peer != sft_rank) CHECK(rb[n] == 0xee, "%d bytes, receive first: written past the message", n);
    }
    /* Send first: the sender's Isend is out before the receiver posts. */
    if (lower) {
      fill(sb, n, k + 50);
      CHECK_MPI(MPI_Isend(sb, n, MPI_BYTE, peer, 100 + k, MPI_COMM_WORLD, &rq));
      MPI_Barrier(MPI_COMM_WORLD);
      if (peer == sft_rank) CHECK_MPI(MPI_Recv(rb, n, MPI_BYTE, peer, 100 + k, MPI_COMM_WORLD, &st));
      CHECK_MPI(MPI_Wait(&rq, MPI_STATUS_IGNORE));
    } else {
      MPI_Barrier(MPI_COMM_WORLD);
      CHECK_MPI(MPI_Recv(rb, n, MPI_BYTE, peer, 100 + k, MPI_COMM_WORLD, &st));
    }
    if (!lower || peer == sft_rank)
      CHECK(mismatch(rb, n, k + 50) == 0, "%d bytes, send first: wrong byte at %d", n, mismatch(rb, n, k + 50));
  }

  /* Truncation on the direct-read path: 8192 and 300000 bytes into 4096 (and into 4000, below
   * the threshold): MPI_ERR_TRUNCATE, the first bytes delivered. */
  for (int k = 0; k < 3; k++) {
    int n = k == 2 ? 300000 : 8192, cap = k == 1 ? 4000 : 4096;
    if (peer == sft_rank) break;
    if (sft_rank < peer) {
      fill(sb, n, 200 + k);
      CHECK_MPI(MPI_Send(sb, n, MPI_BYTE, peer, 200 + k, MPI_COMM_WORLD));
    } else {
      int rc = MPI_Recv(rb, cap, MPI_BYTE, peer, 200 + k, MPI_COMM_WORLD, &st), cls = 0;
      MPI_Error_class(rc, &cls);
      CHECK(cls == MPI_ERR_TRUNCATE, "%d bytes into %d: error class %d, expected MPI_ERR_TRUNCATE", n, cap, cls);
#ifdef SFMPI /* MPI leaves a truncated buffer undefined; libsfmpi fills it (MPICH does not) */
      CHECK(mismatch(rb, cap, 200 + k) == 0, "%d bytes into %d: wrong byte at %d", n, cap, mismatch(rb, cap, 200 + k));
#endif
    }
  }

  /* MPI_ANY_SOURCE across the thresholds: every other rank sends 8 B, 8 KiB, 300 KB, 8 B with
   * one tag; rank 0 receives them from any source, each sender's in its order. */
  if (sft_rank == 0) {
    int next[256] = {0};
    static const int seq[] = {8, 8192, 300000, 8};
    for (int i = 0; i < 4 * (sft_size - 1); i++) {
      int src, step;
      CHECK_MPI(MPI_Recv(rb, 300000, MPI_BYTE, MPI_ANY_SOURCE, 300, MPI_COMM_WORLD, &st));
      src = st.MPI_SOURCE;
      step = src > 0 && src < 256 ? next[src]++ : 0;
      MPI_Get_count(&st, MPI_BYTE, &cnt);
      CHECK(step < 4 && cnt == seq[step], "any source: message %d from rank %d has %d bytes, expected %d", step, src, cnt,
            step < 4 ? seq[step] : -1);
      if (step < 4 && cnt == seq[step])
        CHECK(mismatch(rb, cnt, src * 4 + step) == 0, "any source: message %d from rank %d: wrong byte at %d", step, src,
              mismatch(rb, cnt, src * 4 + step));
    }
  } else {
    static const int seq[] = {8, 8192, 300000, 8};
    unsigned char *b[4];
    MPI_Request r4[4];
    for (int i = 0; i < 4; i++) {
      b[i] = malloc((size_t)seq[i]);
      fill(b[i], seq[i], sft_rank * 4 + i);
      CHECK_MPI(MPI_Isend(b[i], seq[i], MPI_BYTE, 0, 300, MPI_COMM_WORLD, &r4[i]));
    }
    CHECK_MPI(MPI_Waitall(4, r4, MPI_STATUSES_IGNORE));
    for (int i = 0; i < 4; i++) free(b[i]);
  }

#ifdef SFMPI
  /* Eager buffering up to the eager limit, as before rendezvous reads began at 4 KiB. */
  if (peer != sft_rank) {
    for (int k = 0; k < NSIZES && sizes[k] <= 65536; k++) {
      int n = sizes[k];
      /* Both send first: each Send completes without the other's receive. */
      fill(sb, n, 400 + sft_rank);
      CHECK_MPI(MPI_Send(sb, n, MPI_BYTE, peer, 400 + k, MPI_COMM_WORLD));
      CHECK_MPI(MPI_Recv(rb, n, MPI_BYTE, peer, 400 + k, MPI_COMM_WORLD, &st));
      CHECK(mismatch(rb, n, 400 + peer) == 0, "%d bytes sent both ways first: wrong byte at %d", n, mismatch(rb, n, 400 + peer));
    }
    if (sft_rank < peer) {
      for (int k = 0; k < 3; k++) {
        fill(sb, 8192, 500 + k);
        CHECK_MPI(MPI_Send(sb, 8192, MPI_BYTE, peer, 500 + k, MPI_COMM_WORLD));
        memset(sb, 0, 8192); /* the send completed: the buffer is ours again */
      }
    } else {
      /* Posted, then no progress while the sender takes the message back. */
      memset(rb, 0, 8192);
      CHECK_MPI(MPI_Irecv(rb, 8192, MPI_BYTE, peer, 500, MPI_COMM_WORLD, &rq));
      away(20);
      CHECK_MPI(MPI_Wait(&rq, &st));
      CHECK(mismatch(rb, 8192, 500) == 0, "taken back after its receive was posted: wrong byte at %d", mismatch(rb, 8192, 500));
      /* Arrived (and taken back) before its receive: then truncated into 4096 bytes. */
      away(20);
      {
        int flag = 0, rc, cls = 0;
        CHECK_MPI(MPI_Iprobe(peer, 501, MPI_COMM_WORLD, &flag, &st));
        rc = MPI_Recv(rb, 4096, MPI_BYTE, peer, 501, MPI_COMM_WORLD, &st);
        MPI_Error_class(rc, &cls);
        CHECK(cls == MPI_ERR_TRUNCATE, "taken back, then truncated: error class %d", cls);
        CHECK(mismatch(rb, 4096, 501) == 0, "taken back, then truncated: wrong byte at %d", mismatch(rb, 4096, 501));
      }
      away(20);
      CHECK_MPI(MPI_Recv(rb, 8192, MPI_BYTE, peer, 502, MPI_COMM_WORLD, &st));
      CHECK(mismatch(rb, 8192, 502) == 0, "taken back before its receive: wrong byte at %d", mismatch(rb, 8192, 502));
    }
  }
#endif
  free(sb);
  free(rb);
  return sft_finish("protocol");
}
