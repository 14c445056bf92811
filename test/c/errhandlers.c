/* errhandlers.c: with MPI_ERRORS_RETURN, bad arguments return the right error class and a
 * message naming the argument; user error handlers are called; a receive that can never match
 * and mismatched collectives end with a timeout error naming the operation and ranks (set
 * SFMPI_WAIT_TIMEOUT_MS low). With argument "fatal", a bad call under MPI_ERRORS_ARE_FATAL
 * ends the job (the runner checks exit status and message). */
#include "sft.h"

static int handler_calls, handler_code;
static void handler(MPI_Comm *comm, int *code, ...) {
  (void)comm;
  handler_calls++;
  handler_code = *code;
}

static int cls_of(int rc) {
  int c = -1;
  MPI_Error_class(rc, &c);
  return c;
}

static void expect(int rc, int cls, const char *needle, const char *what) {
  char msg[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, msg, &len);
  CHECK(cls_of(rc) == cls, "%s: class %d want %d (%s)", what, cls_of(rc), cls, msg);
  CHECK(!SFMPI_DETAIL || needle == NULL || strstr(msg, needle), "%s: message \"%s\" lacks \"%s\"", what, msg, needle);
}

int main(int argc, char **argv) {
  int n, r, x[4] = {0};
  sft_init(&argc, &argv);
  n = sft_size;
  r = sft_rank;
  if (argc > 1 && strcmp(argv[1], "fatal") == 0) {
    /* Default handler: this ends the job with a message naming rank, call and argument. */
    if (r == n - 1) MPI_Send(x, 1, MPI_INT, n + 5, 0, MPI_COMM_WORLD);
    MPI_Barrier(MPI_COMM_WORLD);
    printf("not reached on rank %d\n", r);
    MPI_Finalize();
    return 0;
  }
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  {
    MPI_Errhandler eh = MPI_ERRHANDLER_NULL;
    MPI_Comm_get_errhandler(MPI_COMM_WORLD, &eh);
    CHECK(eh == MPI_ERRORS_RETURN, "get_errhandler %d", eh);
  }
  {
    char want[64];
    snprintf(want, sizeof want, "dest %d out of range for a communicator of size %d", n + 5, n);
    expect(MPI_Send(x, 1, MPI_INT, n + 5, 0, MPI_COMM_WORLD), MPI_ERR_RANK, want, "bad dest");
  }
  expect(MPI_Send(x, 1, MPI_INT, 0, -4, MPI_COMM_WORLD), MPI_ERR_TAG, "tag -4", "negative tag");
  expect(MPI_Send(x, -1, MPI_INT, 0, 0, MPI_COMM_WORLD), MPI_ERR_COUNT, "count -1", "negative count");
  expect(MPI_Send(x, 1, (MPI_Datatype)9999, 0, 0, MPI_COMM_WORLD), MPI_ERR_TYPE, "datatype", "bad datatype");
  expect(MPI_Bcast(x, 1, MPI_INT, n, MPI_COMM_WORLD), MPI_ERR_ROOT, "root", "bad root");
  expect(MPI_Allreduce(x, x + 1, 1, MPI_INT, (MPI_Op)999, MPI_COMM_WORLD), MPI_ERR_OP, "op", "bad op");
  {
    int rc = MPI_Send(x, 1, MPI_INT, 0, 0, (MPI_Comm)12345), cls = cls_of(rc);
    CHECK(cls == MPI_ERR_COMM, "bad communicator: class %d", cls);
  }
  {
    char s[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(MPI_ERR_TRUNCATE, s, &len);
    CHECK(len > 0 && (int)strlen(s) == len, "Error_string length %d", len);
  }
  /* A user error handler on a dup is called with the code; the world handler is untouched. */
  {
    MPI_Comm d;
    MPI_Errhandler eh;
    int rc;
    MPI_Comm_dup(MPI_COMM_WORLD, &d);
    CHECK_MPI(MPI_Comm_create_errhandler(handler, &eh));
    CHECK_MPI(MPI_Comm_set_errhandler(d, eh));
    rc = MPI_Send(x, 1, MPI_INT, n + 1, 0, d);
    CHECK(handler_calls == 1 && cls_of(handler_code) == MPI_ERR_RANK && rc == handler_code, "user handler calls %d class %d",
          handler_calls, cls_of(handler_code));
    MPI_Errhandler_free(&eh);
    MPI_Comm_free(&d);
  }
  /* A receive nothing matches times out, naming the operation, this rank and the peer. All
   * ranks wait at the same time, so nobody else's wait is stretched by it. */
  if (n >= 2) {
    char want[96];
    snprintf(want, sizeof want, "MPI_Recv on rank %d timed out after", r);
    expect(MPI_Recv(x, 1, MPI_INT, (r + 1) % n, 999, MPI_COMM_WORLD, MPI_STATUS_IGNORE), MPI_ERR_TIMEOUT, want,
           "unmatched recv");
    snprintf(want, sizeof want, "waiting for rank %d (tag 999)", (r + 1) % n);
    expect(MPI_Recv(x, 1, MPI_INT, (r + 1) % n, 999, MPI_COMM_WORLD, MPI_STATUS_IGNORE), MPI_ERR_TIMEOUT, want,
           "unmatched recv peer");
  }
  MPI_Barrier(MPI_COMM_WORLD);
  /* Mismatched collectives: rank 0 reduces to root 1 while the others broadcast from 0. Every
   * rank ends with an error naming its own operation, not a hang and not a wrong answer. */
  if (n >= 2) {
    int v = 1, w = 0, rc;
    MPI_Comm c = MPI_COMM_NULL;
    CHECK_MPI(MPI_Comm_dup(MPI_COMM_WORLD, &c)); /* keep the leftovers away from the world */
    MPI_Comm_set_errhandler(c, MPI_ERRORS_RETURN);
    if (r == 0) {
      rc = MPI_Reduce(&v, &w, 1, MPI_INT, MPI_SUM, 1, c);
      expect(rc, cls_of(rc) == MPI_ERR_OTHER ? MPI_ERR_OTHER : MPI_ERR_TIMEOUT, "MPI_Reduce on rank 0", "mismatched reduce");
    } else {
      rc = MPI_Bcast(&v, 1, MPI_INT, 0, c);
      expect(rc, cls_of(rc) == MPI_ERR_OTHER ? MPI_ERR_OTHER : MPI_ERR_TIMEOUT, "MPI_Bcast on rank", "mismatched bcast");
    }
    /* The error is a timeout (the data went different ways) or, where the calls met in shared
     * memory, an immediate "called a different collective": never a silent success. */
    CHECK(rc != MPI_SUCCESS, "mismatched collectives returned success");
  }
  return sft_finish("errhandlers");
}
