/* persist.c: persistent requests in every mode, reused many times (Start, Startall, Waitall,
 * Test and Waitany on inactive ones), MPI_Cancel of receives and of a send that was received,
 * MPI_Request_get_status, and matched probes (MPI_Mprobe/Improbe/Mrecv/Imrecv). */
#include "sft.h"

int main(int argc, char **argv) {
  int n, r, right, left;
  sft_init(&argc, &argv);
  n = sft_size;
  r = sft_rank;
  right = (r + 1) % n;
  left = (r + n - 1) % n;
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);

  /* a ring exchange with persistent requests, 20 times, new data each time */
  {
    int out[4], in[4];
    MPI_Request q[2];
    CHECK_MPI(MPI_Recv_init(in, 4, MPI_INT, left, 5, MPI_COMM_WORLD, &q[0]));
    CHECK_MPI(MPI_Send_init(out, 4, MPI_INT, right, 5, MPI_COMM_WORLD, &q[1]));
    for (int it = 0; it < 20; it++) {
      for (int i = 0; i < 4; i++) out[i] = 1000 * it + 10 * r + i;
      memset(in, 0xff, sizeof in);
      CHECK_MPI(MPI_Startall(2, q));
      CHECK_MPI(MPI_Waitall(2, q, MPI_STATUSES_IGNORE));
      CHECK(q[0] != MPI_REQUEST_NULL && q[1] != MPI_REQUEST_NULL, "a completed persistent request keeps its handle");
      CHECK(in[0] == 1000 * it + 10 * left && in[3] == 1000 * it + 10 * left + 3, "iteration %d got %d", it, in[0]);
    }
    /* inactive requests: Test says done at once, with an empty status; Wait returns at once */
    {
      int flag = 0;
      MPI_Status st;
      CHECK_MPI(MPI_Test(&q[0], &flag, &st));
      CHECK(flag && st.MPI_SOURCE == MPI_ANY_SOURCE && st.MPI_TAG == MPI_ANY_TAG, "Test of an inactive request");
      CHECK_MPI(MPI_Wait(&q[1], MPI_STATUS_IGNORE));
    }
    CHECK_MPI(MPI_Request_free(&q[0]));
    CHECK_MPI(MPI_Request_free(&q[1]));
    CHECK(q[0] == MPI_REQUEST_NULL && q[1] == MPI_REQUEST_NULL, "Request_free of persistent requests");
  }

  /* synchronous, ready and buffered persistent sends; one started with MPI_Start at a time */
  {
    int v = -1, w = r, bsz = 4 * (int)sizeof(int) + MPI_BSEND_OVERHEAD, k;
    void *buf = malloc((size_t)bsz), *old;
    MPI_Request s[3], rq;
    MPI_Buffer_attach(buf, bsz);
    CHECK_MPI(MPI_Ssend_init(&w, 1, MPI_INT, right, 6, MPI_COMM_WORLD, &s[0]));
    CHECK_MPI(MPI_Rsend_init(&w, 1, MPI_INT, right, 7, MPI_COMM_WORLD, &s[1]));
    CHECK_MPI(MPI_Bsend_init(&w, 1, MPI_INT, right, 8, MPI_COMM_WORLD, &s[2]));
    for (int mode = 0; mode < 3; mode++)
      for (int it = 0; it < 3; it++) {
        w = 100 * mode + 10 * it + r;
        CHECK_MPI(MPI_Irecv(&v, 1, MPI_INT, left, 6 + mode, MPI_COMM_WORLD, &rq));
        MPI_Barrier(MPI_COMM_WORLD); /* the receive is posted: a ready send is allowed now */
        CHECK_MPI(MPI_Start(&s[mode]));
        CHECK_MPI(MPI_Wait(&s[mode], MPI_STATUS_IGNORE));
        CHECK_MPI(MPI_Wait(&rq, MPI_STATUS_IGNORE));
        CHECK(v == 100 * mode + 10 * it + left, "mode %d iteration %d got %d", mode, it, v);
      }
    for (k = 0; k < 3; k++) MPI_Request_free(&s[k]);
    MPI_Buffer_detach(&old, &bsz);
    free(buf);
  }

  /* a persistent receive of a non-contiguous type, the type freed right after Recv_init */
  {
    MPI_Datatype every3;
    int got[9], val[3] = {r, r + 1, r + 2};
    MPI_Request q;
    MPI_Type_vector(3, 1, 3, MPI_INT, &every3);
    MPI_Type_commit(&every3);
    CHECK_MPI(MPI_Recv_init(got, 1, every3, left, 9, MPI_COMM_WORLD, &q));
    MPI_Type_free(&every3);
    for (int it = 0; it < 2; it++) {
      for (int i = 0; i < 9; i++) got[i] = -1;
      CHECK_MPI(MPI_Start(&q));
      CHECK_MPI(MPI_Send(val, 3, MPI_INT, right, 9, MPI_COMM_WORLD));
      CHECK_MPI(MPI_Wait(&q, MPI_STATUS_IGNORE));
      CHECK(got[0] == left && got[3] == left + 1 && got[6] == left + 2 && got[1] == -1, "vector receive %d %d %d %d", got[0],
            got[3], got[6], got[1]);
    }
    MPI_Request_free(&q);
  }

  /* Waitany over inactive persistent requests and an active one */
  {
    int x = -1, y = r, idx = -5;
    MPI_Request q[3];
    MPI_Send_init(&y, 1, MPI_INT, right, 10, MPI_COMM_WORLD, &q[0]);
    MPI_Recv_init(&x, 1, MPI_INT, left, 11, MPI_COMM_WORLD, &q[1]);
    MPI_Irecv(&x, 1, MPI_INT, left, 12, MPI_COMM_WORLD, &q[2]);
    MPI_Send(&y, 1, MPI_INT, right, 12, MPI_COMM_WORLD);
    CHECK_MPI(MPI_Waitany(3, q, &idx, MPI_STATUS_IGNORE));
    CHECK(idx == 2 && x == left, "Waitany skipped the inactive requests: index %d, value %d", idx, x);
    CHECK_MPI(MPI_Waitany(3, q, &idx, MPI_STATUS_IGNORE));
    CHECK(idx == MPI_UNDEFINED, "Waitany with only inactive requests: %d", idx);
    MPI_Request_free(&q[0]);
    MPI_Request_free(&q[1]);
  }

  /* cancel a receive nothing matches; the message sent later goes to the next receive */
  {
    int x = -1, flag = 0, y = r + 500;
    MPI_Request q;
    MPI_Status st;
    CHECK_MPI(MPI_Irecv(&x, 1, MPI_INT, left, 20, MPI_COMM_WORLD, &q));
    CHECK_MPI(MPI_Cancel(&q));
    CHECK_MPI(MPI_Wait(&q, &st));
    CHECK_MPI(MPI_Test_cancelled(&st, &flag));
    CHECK(flag, "a receive no message matched is cancelled");
    CHECK(x == -1, "a cancelled receive leaves its buffer: %d", x);
    MPI_Barrier(MPI_COMM_WORLD);
    CHECK_MPI(MPI_Isend(&y, 1, MPI_INT, right, 20, MPI_COMM_WORLD, &q));
    CHECK_MPI(MPI_Recv(&x, 1, MPI_INT, left, 20, MPI_COMM_WORLD, &st));
    CHECK_MPI(MPI_Wait(&q, MPI_STATUS_IGNORE));
    CHECK(x == left + 500, "the message after a cancel reached the next receive: %d", x);
    CHECK_MPI(MPI_Test_cancelled(&st, &flag));
    CHECK(!flag, "a normal receive is not cancelled");
  }
  /* cancel a persistent receive, then use it again */
  {
    int x = -1, y = r, flag = 0;
    MPI_Request q;
    MPI_Status st;
    MPI_Recv_init(&x, 1, MPI_INT, left, 21, MPI_COMM_WORLD, &q);
    MPI_Start(&q);
    CHECK_MPI(MPI_Cancel(&q));
    CHECK_MPI(MPI_Wait(&q, &st));
    MPI_Test_cancelled(&st, &flag);
    CHECK(flag, "a started persistent receive is cancelled");
    MPI_Barrier(MPI_COMM_WORLD);
    MPI_Start(&q);
    MPI_Send(&y, 1, MPI_INT, right, 21, MPI_COMM_WORLD);
    CHECK_MPI(MPI_Wait(&q, &st));
    MPI_Test_cancelled(&st, &flag);
    CHECK(!flag && x == left, "the persistent receive works after a cancel: %d", x);
    MPI_Request_free(&q);
  }
  /* a send whose message was received cannot be cancelled: it completes normally */
  {
    int y = r, x = -1, flag = 1;
    MPI_Request q;
    MPI_Status st;
    MPI_Isend(&y, 1, MPI_INT, right, 22, MPI_COMM_WORLD, &q);
    MPI_Recv(&x, 1, MPI_INT, left, 22, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    MPI_Barrier(MPI_COMM_WORLD);
    CHECK_MPI(MPI_Cancel(&q));
    CHECK_MPI(MPI_Wait(&q, &st));
    MPI_Test_cancelled(&st, &flag);
    CHECK(!flag && x == left, "a received send is not cancelled");
  }

  /* MPI_Request_get_status leaves the request to complete */
  {
    int x = -1, y = r, flag = 0;
    MPI_Request q;
    MPI_Status st;
    MPI_Irecv(&x, 1, MPI_INT, left, 30, MPI_COMM_WORLD, &q);
    MPI_Send(&y, 1, MPI_INT, right, 30, MPI_COMM_WORLD);
    while (!flag) CHECK_MPI(MPI_Request_get_status(q, &flag, &st));
    CHECK(q != MPI_REQUEST_NULL && st.MPI_SOURCE == left && st.MPI_TAG == 30, "Request_get_status: source %d tag %d", st.MPI_SOURCE,
          st.MPI_TAG);
    CHECK_MPI(MPI_Wait(&q, MPI_STATUS_IGNORE));
    CHECK(q == MPI_REQUEST_NULL && x == left, "Wait after Request_get_status");
  }

  /* matched probes: the probed message is received by the matching Mrecv, not by a receive
   * posted in between */
  {
    int y[2] = {r, r * 2}, x[2] = {-1, -1}, flag = 0, cnt;
    MPI_Message m;
    MPI_Status st;
    MPI_Request q, sq;
    MPI_Isend(y, 2, MPI_INT, right, 40, MPI_COMM_WORLD, &sq); /* to itself at 1 rank: not blocking */
    CHECK_MPI(MPI_Mprobe(MPI_ANY_SOURCE, 40, MPI_COMM_WORLD, &m, &st));
    CHECK(st.MPI_SOURCE == left, "Mprobe source %d", st.MPI_SOURCE);
    MPI_Get_count(&st, MPI_INT, &cnt);
    CHECK(cnt == 2, "Mprobe count %d", cnt);
    CHECK_MPI(MPI_Mrecv(x, 2, MPI_INT, &m, &st));
    CHECK(m == MPI_MESSAGE_NULL && x[0] == left && x[1] == 2 * left && st.MPI_TAG == 40, "Mrecv %d %d", x[0], x[1]);
    MPI_Wait(&sq, MPI_STATUS_IGNORE);
    MPI_Isend(y, 1, MPI_INT, right, 41, MPI_COMM_WORLD, &sq);
    while (!flag) CHECK_MPI(MPI_Improbe(left, 41, MPI_COMM_WORLD, &flag, &m, &st));
    CHECK_MPI(MPI_Imrecv(x, 1, MPI_INT, &m, &q));
    CHECK_MPI(MPI_Wait(&q, &st));
    CHECK(x[0] == left && st.MPI_SOURCE == left, "Improbe/Imrecv %d", x[0]);
    MPI_Wait(&sq, MPI_STATUS_IGNORE);
    CHECK_MPI(MPI_Mprobe(MPI_PROC_NULL, 0, MPI_COMM_WORLD, &m, &st));
    CHECK(m == MPI_MESSAGE_NO_PROC && st.MPI_SOURCE == MPI_PROC_NULL, "Mprobe of MPI_PROC_NULL");
    CHECK_MPI(MPI_Mrecv(x, 1, MPI_INT, &m, &st));
    CHECK(st.MPI_SOURCE == MPI_PROC_NULL, "Mrecv of MPI_MESSAGE_NO_PROC");
  }
  return sft_finish("persistent requests");
}
