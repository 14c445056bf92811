/* rma.c: one-sided communication with known window contents, for windows of every flavour
 * (MPI_Win_create, MPI_Win_allocate, MPI_Win_allocate_shared) and every synchronisation mode:
 * fence, post/start/complete/wait, exclusive and shared locks, lock_all with flushes and
 * request-based operations; puts, gets, accumulates, fetch-and-op, compare-and-swap, small and
 * large, contiguous and strided; attributes, shared-memory queries, and range errors. */
#include "sft.h"

#define N 64       /* ints per window, besides the large area */
#define BIG 100000 /* ints: far above a request message, so the data travels apart */

enum { CREATE, ALLOCATE, SHARED };
static const char *flavour_name[] = {"Win_create", "Win_allocate", "Win_allocate_shared"};

static int *make_win(int flavour, MPI_Aint ints, MPI_Win *win) {
  int *base = NULL;
  MPI_Aint bytes = ints * (MPI_Aint)sizeof(int);
  if (flavour == CREATE) {
    MPI_Alloc_mem(bytes, MPI_INFO_NULL, &base);
    CHECK_MPI(MPI_Win_create(base, bytes, sizeof(int), MPI_INFO_NULL, MPI_COMM_WORLD, win));
  } else if (flavour == ALLOCATE) {
    CHECK_MPI(MPI_Win_allocate(bytes, sizeof(int), MPI_INFO_NULL, MPI_COMM_WORLD, &base, win));
  } else {
    CHECK_MPI(MPI_Win_allocate_shared(bytes, sizeof(int), MPI_INFO_NULL, MPI_COMM_WORLD, &base, win));
  }
  MPI_Win_set_errhandler(*win, MPI_ERRORS_RETURN);
  return base;
}

static void free_win(int flavour, MPI_Win *win, int *base) {
  CHECK_MPI(MPI_Win_free(win));
  CHECK(*win == MPI_WIN_NULL, "Win_free sets MPI_WIN_NULL");
  if (flavour == CREATE) MPI_Free_mem(base);
}

static void set_local(MPI_Win win, int *base, MPI_Aint n, int v) {
  /* local stores to one's own window: inside an exclusive lock of oneself (MPI 11.5.4) */
  int r;
  MPI_Comm_rank(MPI_COMM_WORLD, &r);
  MPI_Win_lock(MPI_LOCK_EXCLUSIVE, r, 0, win);
  for (MPI_Aint i = 0; i < n; i++) base[i] = v;
  MPI_Win_unlock(r, win);
}

static void fence_mode(int flavour, int n, int r) {
  MPI_Win win;
  int *w = make_win(flavour, N + BIG, &win), got[N], *big = malloc(sizeof(int) * BIG);
  int right = (r + 1) % n, left = (r + n - 1) % n;
  for (int i = 0; i < N + BIG; i++) w[i] = -1;
  CHECK_MPI(MPI_Win_fence(0, win));
  /* every rank writes its rank into slot r of every window; slot N-1 collects a sum */
  for (int t = 0; t < n; t++) {
    CHECK_MPI(MPI_Put(&r, 1, MPI_INT, t, r, 1, MPI_INT, win));
    int one = r + 1;
    CHECK_MPI(MPI_Accumulate(&one, 1, MPI_INT, t, N - 1, 1, MPI_INT, MPI_SUM, win));
  }
  for (int i = 0; i < BIG; i++) big[i] = r * 3 + i;
  CHECK_MPI(MPI_Put(big, BIG, MPI_INT, right, N, BIG, MPI_INT, win));
  CHECK_MPI(MPI_Win_fence(0, win));
  for (int i = 0; i < n; i++) CHECK(w[i] == i, "%s fence: slot %d = %d", flavour_name[flavour], i, w[i]);
  /* the sum started from -1 */
  CHECK(w[N - 1] == -1 + n * (n + 1) / 2, "%s fence: accumulated %d, want %d", flavour_name[flavour], w[N - 1], -1 + n * (n + 1) / 2);
  CHECK(w[N] == left * 3 && w[N + BIG - 1] == left * 3 + BIG - 1, "%s fence: large put %d..%d", flavour_name[flavour], w[N],
        w[N + BIG - 1]);
  /* gets of the neighbour's window, contiguous and strided (every 2nd slot), then large */
  memset(got, 0xff, sizeof got);
  CHECK_MPI(MPI_Get(got, n, MPI_INT, right, 0, n, MPI_INT, win));
  {
    MPI_Datatype every2;
    int strided[N];
    MPI_Type_vector(n / 2 + 1, 1, 2, MPI_INT, &every2);
    MPI_Type_commit(&every2);
    memset(strided, 0xff, sizeof strided);
    if (n >= 2) CHECK_MPI(MPI_Get(strided, n / 2 + 1, MPI_INT, right, 0, 1, every2, win));
    memset(big, 0xff, sizeof(int) * BIG);
    CHECK_MPI(MPI_Get(big, BIG, MPI_INT, left, N, BIG, MPI_INT, win));
    CHECK_MPI(MPI_Win_fence(0, win));
    for (int i = 0; i < n; i++) CHECK(got[i] == i, "%s get: slot %d = %d", flavour_name[flavour], i, got[i]);
    for (int i = 0; n >= 2 && i < n / 2 + 1 && 2 * i < N; i++)
      CHECK(strided[i] == (2 * i < n ? 2 * i : -1), "%s strided get %d = %d", flavour_name[flavour], i, strided[i]);
    CHECK(big[0] == ((left + n - 1) % n) * 3 && big[BIG - 1] == ((left + n - 1) % n) * 3 + BIG - 1, "%s large get %d",
          flavour_name[flavour], big[0]);
    MPI_Type_free(&every2);
  }
  /* a strided put (target type every 3rd slot) */
  {
    MPI_Datatype every3;
    int vals[4] = {r * 10, r * 10 + 1, r * 10 + 2, r * 10 + 3};
    MPI_Type_vector(4, 1, 3, MPI_INT, &every3);
    MPI_Type_commit(&every3);
    CHECK_MPI(MPI_Put(vals, 4, MPI_INT, right, 20, 1, every3, win));
    CHECK_MPI(MPI_Win_fence(MPI_MODE_NOSUCCEED, win));
    CHECK(w[20] == left * 10 && w[23] == left * 10 + 1 && w[29] == left * 10 + 3 && (n == 1 || w[21] != left * 10 + 1),
          "%s strided put %d %d %d", flavour_name[flavour], w[20], w[23], w[29]);
    MPI_Type_free(&every3);
  }
  free(big);
  free_win(flavour, &win, w);
}

static void pscw_mode(int flavour, int n, int r) {
  MPI_Win win;
  MPI_Group world, from, to;
  int *w = make_win(flavour, N, &win), right = (r + 1) % n, left = (r + n - 1) % n;
  set_local(win, w, N, -1);
  MPI_Barrier(MPI_COMM_WORLD);
  MPI_Comm_group(MPI_COMM_WORLD, &world);
  MPI_Group_incl(world, 1, &left, &from);
  MPI_Group_incl(world, 1, &right, &to);
  for (int it = 0; it < 3; it++) {
    int v[2] = {100 * it + r, -(100 * it + r)};
    CHECK_MPI(MPI_Win_post(from, 0, win)); /* my left neighbour will write to me */
    CHECK_MPI(MPI_Win_start(to, 0, win));  /* I write to my right neighbour */
    CHECK_MPI(MPI_Put(v, 2, MPI_INT, right, 2 * it, 2, MPI_INT, win));
    CHECK_MPI(MPI_Accumulate(&v[0], 1, MPI_INT, right, 10, 1, MPI_INT, MPI_MAX, win));
    CHECK_MPI(MPI_Win_complete(win));
    CHECK_MPI(MPI_Win_wait(win));
    CHECK(w[2 * it] == 100 * it + left && w[2 * it + 1] == -(100 * it + left), "%s PSCW iteration %d: %d %d", flavour_name[flavour],
          it, w[2 * it], w[2 * it + 1]);
    CHECK(w[10] == 100 * it + left, "%s PSCW accumulate MAX %d", flavour_name[flavour], w[10]);
  }
  /* MPI_Win_test polls the exposure epoch */
  {
    int flag = 0, v = r;
    CHECK_MPI(MPI_Win_post(from, 0, win));
    CHECK_MPI(MPI_Win_start(to, 0, win));
    CHECK_MPI(MPI_Put(&v, 1, MPI_INT, right, 30, 1, MPI_INT, win));
    CHECK_MPI(MPI_Win_complete(win));
    while (!flag) CHECK_MPI(MPI_Win_test(win, &flag));
    CHECK(w[30] == left, "%s Win_test epoch: %d", flavour_name[flavour], w[30]);
  }
  MPI_Group_free(&world);
  MPI_Group_free(&from);
  MPI_Group_free(&to);
  free_win(flavour, &win, w);
}

static void lock_mode(int flavour, int n, int r) {
  MPI_Win win;
  int *w = make_win(flavour, N, &win), right = (r + 1) % n;
  set_local(win, w, N, 0);
  if (r == 0) {
    MPI_Win_lock(MPI_LOCK_EXCLUSIVE, 0, 0, win);
    w[5] = -1; /* the compare-and-swap slot starts "free" */
    MPI_Win_unlock(0, win);
  }
  MPI_Barrier(MPI_COMM_WORLD);
  /* a counter on rank 0: fetch-and-add under an exclusive lock gives every rank a distinct
   * ticket, and 20 shared-lock accumulates from everyone add up */
  {
    int one = 1, ticket = -1, old = 0, all[256];
    CHECK_MPI(MPI_Win_lock(MPI_LOCK_EXCLUSIVE, 0, 0, win));
    CHECK_MPI(MPI_Fetch_and_op(&one, &ticket, MPI_INT, 0, 0, MPI_SUM, win));
    CHECK_MPI(MPI_Win_unlock(0, win));
    for (int i = 0; i < 20; i++) {
      CHECK_MPI(MPI_Win_lock(MPI_LOCK_SHARED, 0, 0, win));
      CHECK_MPI(MPI_Accumulate(&one, 1, MPI_INT, 0, 1, 1, MPI_INT, MPI_SUM, win));
      CHECK_MPI(MPI_Win_unlock(0, win));
    }
    /* compare-and-swap: exactly one rank takes the slot */
    {
      int mine = r, expect = -1;
      CHECK_MPI(MPI_Win_lock(MPI_LOCK_SHARED, 0, 0, win));
      CHECK_MPI(MPI_Compare_and_swap(&mine, &expect, &old, MPI_INT, 0, 5, win));
      CHECK_MPI(MPI_Win_unlock(0, win));
    }
    MPI_Allgather(&ticket, 1, MPI_INT, all, 1, MPI_INT, MPI_COMM_WORLD);
    for (int i = 0; i < n; i++)
      for (int j = 0; j < i; j++) CHECK(all[i] != all[j], "%s: ranks %d and %d got ticket %d", flavour_name[flavour], i, j, all[i]);
    {
      int won = old == -1, winners = 0;
      MPI_Allreduce(&won, &winners, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
      CHECK(winners == 1, "%s: %d ranks won the compare-and-swap", flavour_name[flavour], winners);
    }
    if (r == 0) {
      MPI_Win_lock(MPI_LOCK_EXCLUSIVE, 0, 0, win);
      CHECK(w[0] == n && w[1] == 20 * n, "%s lock: counter %d, sum %d", flavour_name[flavour], w[0], w[1]);
      CHECK(w[5] >= 0 && w[5] < n, "%s: the compare-and-swap slot holds %d", flavour_name[flavour], w[5]);
      MPI_Win_unlock(0, win);
    }
  }
  MPI_Barrier(MPI_COMM_WORLD);
  /* the target is blocked in an unrelated receive: its window still answers the others' locks
   * and accumulates, and only then does the message it waits for come */
  if (n >= 2) {
    int tok = -1, one = 1;
    MPI_Comm others;
    MPI_Comm_split(MPI_COMM_WORLD, r == 0 ? MPI_UNDEFINED : 1, r, &others);
    if (r == 0) {
      CHECK_MPI(MPI_Recv(&tok, 1, MPI_INT, n - 1, 99, MPI_COMM_WORLD, MPI_STATUS_IGNORE));
      MPI_Win_lock(MPI_LOCK_EXCLUSIVE, 0, 0, win);
      CHECK(w[2] == 3 * (n - 1), "%s: accumulates applied while the target was in MPI_Recv: %d", flavour_name[flavour], w[2]);
      MPI_Win_unlock(0, win);
    } else {
      for (int i = 0; i < 3; i++) {
        CHECK_MPI(MPI_Win_lock(MPI_LOCK_EXCLUSIVE, 0, 0, win));
        CHECK_MPI(MPI_Accumulate(&one, 1, MPI_INT, 0, 2, 1, MPI_INT, MPI_SUM, win));
        CHECK_MPI(MPI_Win_unlock(0, win));
      }
      MPI_Barrier(others); /* everyone but rank 0 is done: the last one tells rank 0 */
      if (r == n - 1) MPI_Send(&tok, 1, MPI_INT, 0, 99, MPI_COMM_WORLD);
      MPI_Comm_free(&others);
    }
  }
  MPI_Barrier(MPI_COMM_WORLD);
  /* Get_accumulate with MPI_NO_OP reads atomically; with MPI_REPLACE it swaps */
  {
    int newv = 1000 + r, oldv = -5, peek = -5;
    CHECK_MPI(MPI_Win_lock(MPI_LOCK_EXCLUSIVE, right, 0, win));
    CHECK_MPI(MPI_Get_accumulate(&newv, 1, MPI_INT, &oldv, 1, MPI_INT, right, 8, 1, MPI_INT, MPI_REPLACE, win));
    CHECK_MPI(MPI_Win_flush(right, win));
    CHECK_MPI(MPI_Get_accumulate(NULL, 0, MPI_INT, &peek, 1, MPI_INT, right, 8, 1, MPI_INT, MPI_NO_OP, win));
    CHECK_MPI(MPI_Win_unlock(right, win));
    CHECK(oldv == 0 && peek == 1000 + r, "%s Get_accumulate: old %d, now %d", flavour_name[flavour], oldv, peek);
  }
  MPI_Barrier(MPI_COMM_WORLD);
  /* lock_all: put to the right, flush, read it back; request-based put and get */
  {
    int v[3] = {r, r + 1, r + 2}, back[3] = {-1, -1, -1}, rb[3] = {-1, -1, -1};
    MPI_Request q[2];
    CHECK_MPI(MPI_Win_lock_all(0, win));
    CHECK_MPI(MPI_Put(v, 3, MPI_INT, right, 40, 3, MPI_INT, win));
    CHECK_MPI(MPI_Win_flush(right, win));
    CHECK_MPI(MPI_Get(back, 3, MPI_INT, right, 40, 3, MPI_INT, win));
    CHECK_MPI(MPI_Win_flush_all(win));
    CHECK(back[0] == r && back[2] == r + 2, "%s lock_all: read back %d %d", flavour_name[flavour], back[0], back[2]);
    CHECK_MPI(MPI_Rput(v, 3, MPI_INT, right, 50, 3, MPI_INT, win, &q[0]));
    CHECK_MPI(MPI_Wait(&q[0], MPI_STATUS_IGNORE));
    CHECK_MPI(MPI_Win_flush(right, win));
    CHECK_MPI(MPI_Rget(rb, 3, MPI_INT, right, 50, 3, MPI_INT, win, &q[1]));
    CHECK_MPI(MPI_Wait(&q[1], MPI_STATUS_IGNORE));
    CHECK(rb[0] == r && rb[2] == r + 2, "%s Rput/Rget: %d %d", flavour_name[flavour], rb[0], rb[2]);
    CHECK_MPI(MPI_Win_flush_local_all(win));
    CHECK_MPI(MPI_Win_unlock_all(win));
  }
  MPI_Barrier(MPI_COMM_WORLD);
  free_win(flavour, &win, w);
}

static void shared_memory(int n, int r) {
  MPI_Win win;
  int *mine, *theirs = NULL, du = 0, left = (r + n - 1) % n;
  MPI_Aint sz = 0;
  CHECK_MPI(MPI_Win_allocate_shared(N * sizeof(int), sizeof(int), MPI_INFO_NULL, MPI_COMM_WORLD, &mine, &win));
  CHECK_MPI(MPI_Win_shared_query(win, left, &sz, &du, &theirs));
  CHECK(sz == N * (MPI_Aint)sizeof(int) && du == (int)sizeof(int) && theirs != NULL, "Win_shared_query: size %ld unit %d",
        (long)sz, du);
  /* the default layout is contiguous: my memory follows my left neighbour's */
  if (r > 0) CHECK((char *)mine == (char *)theirs + N * sizeof(int), "shared segments are contiguous");
  CHECK_MPI(MPI_Win_lock_all(0, win));
  for (int i = 0; i < N; i++) mine[i] = r * 1000 + i; /* plain stores into shared memory */
  CHECK_MPI(MPI_Win_sync(win));
  MPI_Barrier(MPI_COMM_WORLD);
  CHECK_MPI(MPI_Win_sync(win));
  CHECK(theirs[0] == left * 1000 && theirs[N - 1] == left * 1000 + N - 1, "loads from the left neighbour's segment: %d", theirs[0]);
  CHECK_MPI(MPI_Win_unlock_all(win));
  MPI_Win_free(&win);
}

static void attributes(int n, int r) {
  MPI_Win win;
  int *base, *b2, flag = 0, *du, *flav, *model;
  MPI_Aint *size;
  MPI_Group g, wg;
  int cmp, len;
  char name[MPI_MAX_OBJECT_NAME];
  (void)r;
  MPI_Alloc_mem(40, MPI_INFO_NULL, &base);
  CHECK_MPI(MPI_Win_create(base, 40, 4, MPI_INFO_NULL, MPI_COMM_WORLD, &win));
  CHECK_MPI(MPI_Win_get_attr(win, MPI_WIN_BASE, &b2, &flag));
  CHECK(flag && b2 == base, "MPI_WIN_BASE");
  CHECK_MPI(MPI_Win_get_attr(win, MPI_WIN_SIZE, &size, &flag));
  CHECK(flag && *size == 40, "MPI_WIN_SIZE %ld", (long)*size);
  CHECK_MPI(MPI_Win_get_attr(win, MPI_WIN_DISP_UNIT, &du, &flag));
  CHECK(flag && *du == 4, "MPI_WIN_DISP_UNIT %d", *du);
  CHECK_MPI(MPI_Win_get_attr(win, MPI_WIN_CREATE_FLAVOR, &flav, &flag));
  CHECK(flag && *flav == MPI_WIN_FLAVOR_CREATE, "MPI_WIN_CREATE_FLAVOR %d", *flav);
  CHECK_MPI(MPI_Win_get_attr(win, MPI_WIN_MODEL, &model, &flag));
  CHECK(flag && (*model == MPI_WIN_UNIFIED || *model == MPI_WIN_SEPARATE), "MPI_WIN_MODEL %d", *model);
  CHECK_MPI(MPI_Win_get_group(win, &g));
  MPI_Comm_group(MPI_COMM_WORLD, &wg);
  MPI_Group_compare(g, wg, &cmp);
  CHECK(cmp == MPI_IDENT, "Win_get_group is the communicator's group");
  MPI_Group_free(&g);
  MPI_Group_free(&wg);
  CHECK_MPI(MPI_Win_set_name(win, "halo"));
  CHECK_MPI(MPI_Win_get_name(win, name, &len));
  CHECK(strcmp(name, "halo") == 0 && len == 4, "Win_get_name %s", name);
  /* an access outside the target's window is an error of class MPI_ERR_RMA_RANGE (MPI calls
   * the program erroneous; sfmpi says so, MPICH does not check) */
  MPI_Win_set_errhandler(win, MPI_ERRORS_RETURN);
  MPI_Win_fence(0, win);
  if (SFMPI_DETAIL) {
    int v = 1, rc = MPI_Put(&v, 1, MPI_INT, (r + 1) % n, 10, 1, MPI_INT, win), cls = -1;
    MPI_Error_class(rc, &cls);
    CHECK(rc != MPI_SUCCESS && cls == MPI_ERR_RMA_RANGE, "a put past the window: class %d", cls);
  }
  MPI_Win_fence(0, win);
  MPI_Win_free(&win);
  MPI_Free_mem(base);
}

int main(int argc, char **argv) {
  sft_init(&argc, &argv);
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  for (int f = CREATE; f <= SHARED; f++) {
    fence_mode(f, sft_size, sft_rank);
    pscw_mode(f, sft_size, sft_rank);
    lock_mode(f, sft_size, sft_rank);
  }
  shared_memory(sft_size, sft_rank);
  attributes(sft_size, sft_rank);
  return sft_finish("one-sided");
}
