/* mpiio.c: MPI-IO round trips at any size: explicit offsets, individual file pointers and
 * seeks, collective writes through views of derived types (interleaved vectors, 2-D
 * subarrays, block darrays) read back through other views, ordered access, non-blocking
 * access, sizes, and the open errors MPI names. The file goes in $TMPDIR (or /tmp). */
#include "sft.h"

#include <unistd.h>

static char path[512];

static void checked_open(int amode, MPI_File *fh) {
  CHECK_MPI(MPI_File_open(MPI_COMM_WORLD, path, amode, MPI_INFO_NULL, fh));
}

int main(int argc, char **argv) {
  int n, r;
  MPI_File fh;
  MPI_Status st;
  sft_init(&argc, &argv);
  n = sft_size;
  r = sft_rank;
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  {
    const char *dir = getenv("TMPDIR");
    int id = (int)getpid();
    MPI_Bcast(&id, 1, MPI_INT, 0, MPI_COMM_WORLD);
    snprintf(path, sizeof path, "%s/sfmpi-mpiio-%d.dat", dir && *dir ? dir : "/tmp", id);
  }
  /* files default to MPI_ERRORS_RETURN (MPI 13.7) */
  {
    MPI_Errhandler eh;
    MPI_File_get_errhandler(MPI_FILE_NULL, &eh);
    CHECK(eh == MPI_ERRORS_RETURN, "the default file error handler is MPI_ERRORS_RETURN");
  }

  /* explicit offsets in bytes (the default view), each rank its own block */
  {
    enum { K = 1000 };
    int out[K], in[K], cnt;
    MPI_Offset size;
    for (int i = 0; i < K; i++) out[i] = r * K + i;
    checked_open(MPI_MODE_CREATE | MPI_MODE_RDWR, &fh);
    CHECK_MPI(MPI_File_write_at(fh, (MPI_Offset)r * K * sizeof(int), out, K, MPI_INT, &st));
    MPI_Get_count(&st, MPI_INT, &cnt);
    CHECK(cnt == K, "write_at count %d", cnt);
    /* MPI's recipe for seeing the others' writes: sync, barrier, sync (MPI 13.6.10) */
    CHECK_MPI(MPI_File_sync(fh));
    MPI_Barrier(MPI_COMM_WORLD);
    CHECK_MPI(MPI_File_sync(fh));
    CHECK_MPI(MPI_File_get_size(fh, &size));
    CHECK(size == (MPI_Offset)n * K * (MPI_Offset)sizeof(int), "file size %lld", (long long)size);
    /* read the left neighbour's block */
    CHECK_MPI(MPI_File_read_at(fh, (MPI_Offset)((r + n - 1) % n) * K * sizeof(int), in, K, MPI_INT, &st));
    CHECK(in[0] == ((r + n - 1) % n) * K && in[K - 1] == ((r + n - 1) % n) * K + K - 1, "read_at %d", in[0]);
    /* a read past the end is short: the status says how much */
    CHECK_MPI(MPI_File_read_at(fh, size - 2 * (MPI_Offset)sizeof(int), in, 10, MPI_INT, &st));
    MPI_Get_count(&st, MPI_INT, &cnt);
    CHECK(cnt == 2 && in[1] == n * K - 1, "a read at the end got %d ints (%d)", cnt, in[1]);
    CHECK_MPI(MPI_File_close(&fh));
    CHECK(fh == MPI_FILE_NULL, "close sets MPI_FILE_NULL");
  }

  /* individual file pointers, seeks, positions, non-blocking access */
  {
    int a[3] = {r, r + 1, r + 2}, b[3] = {-1, -1, -1}, cnt;
    MPI_Offset pos, byte;
    MPI_Request q;
    checked_open(MPI_MODE_RDWR, &fh);
    CHECK_MPI(MPI_File_set_view(fh, (MPI_Offset)r * 64, MPI_INT, MPI_INT, "native", MPI_INFO_NULL));
    CHECK_MPI(MPI_File_write(fh, a, 3, MPI_INT, &st));
    CHECK_MPI(MPI_File_get_position(fh, &pos));
    CHECK(pos == 3, "position after writing 3 ints: %lld etypes", (long long)pos);
    CHECK_MPI(MPI_File_get_byte_offset(fh, pos, &byte));
    CHECK(byte == (MPI_Offset)r * 64 + 12, "byte offset %lld", (long long)byte);
    CHECK_MPI(MPI_File_seek(fh, -2, MPI_SEEK_CUR));
    CHECK_MPI(MPI_File_read(fh, b, 2, MPI_INT, &st));
    CHECK(b[0] == r + 1 && b[1] == r + 2, "read after seek: %d %d", b[0], b[1]);
    CHECK_MPI(MPI_File_seek(fh, 0, MPI_SEEK_SET));
    CHECK_MPI(MPI_File_iread(fh, b, 3, MPI_INT, &q));
    CHECK_MPI(MPI_Wait(&q, &st));
    MPI_Get_count(&st, MPI_INT, &cnt);
    CHECK(cnt == 3 && b[0] == r, "iread %d ints", cnt);
    CHECK_MPI(MPI_File_iwrite_at(fh, 10, a, 1, MPI_INT, &q));
    CHECK_MPI(MPI_Wait(&q, MPI_STATUS_IGNORE));
    CHECK_MPI(MPI_File_iread_at(fh, 10, &b[2], 1, MPI_INT, &q));
    CHECK_MPI(MPI_Wait(&q, MPI_STATUS_IGNORE));
    CHECK(b[2] == r, "iwrite_at/iread_at: %d", b[2]);
    CHECK_MPI(MPI_File_close(&fh));
  }

  /* an interleaved view: rank r owns every n-th int from int r; a collective write of 50 ints
   * each fills the file 0, 1, 2, ...; read back contiguously and through the same view */
  {
    enum { M = 50 };
    int out[M], in[M], *all = malloc(sizeof(int) * M * (size_t)n);
    MPI_Datatype vec, ftype;
    MPI_Offset disp;
    MPI_Datatype et, ft;
    char rep[MPI_MAX_DATAREP_STRING];
    MPI_Type_vector(1, 1, n, MPI_INT, &vec);
    MPI_Type_create_resized(vec, 0, (MPI_Aint)n * sizeof(int), &ftype);
    MPI_Type_commit(&ftype);
    MPI_Type_free(&vec);
    for (int i = 0; i < M; i++) out[i] = i * n + r;
    checked_open(MPI_MODE_CREATE | MPI_MODE_RDWR, &fh);
    CHECK_MPI(MPI_File_set_size(fh, 0));
    CHECK_MPI(MPI_File_set_view(fh, (MPI_Offset)r * sizeof(int), MPI_INT, ftype, "native", MPI_INFO_NULL));
    MPI_Type_free(&ftype); /* the view keeps it */
    CHECK_MPI(MPI_File_write_all(fh, out, M, MPI_INT, &st));
    CHECK_MPI(MPI_File_get_view(fh, &disp, &et, &ft, rep));
    CHECK(disp == (MPI_Offset)r * sizeof(int) && et == MPI_INT && strcmp(rep, "native") == 0, "get_view");
    if (ft != MPI_INT) MPI_Type_free(&ft);
    CHECK_MPI(MPI_File_sync(fh));
    MPI_Barrier(MPI_COMM_WORLD);
    CHECK_MPI(MPI_File_sync(fh));
    memset(in, 0xff, sizeof in);
    CHECK_MPI(MPI_File_read_at_all(fh, 0, in, M, MPI_INT, &st));
    CHECK(memcmp(in, out, sizeof in) == 0, "reading the interleaved view back");
    CHECK_MPI(MPI_File_set_view(fh, 0, MPI_INT, MPI_INT, "native", MPI_INFO_NULL));
    CHECK_MPI(MPI_File_read_at(fh, 0, all, M * n, MPI_INT, &st));
    for (int i = 0; i < M * n; i++)
      if (all[i] != i) {
        CHECK(0, "the interleaved file holds %d at int %d", all[i], i);
        break;
      }
    /* the end of the file, through the interleaved view again */
    {
      MPI_Offset pos;
      MPI_Datatype vec2, ft2;
      MPI_Type_vector(1, 1, n, MPI_INT, &vec2);
      MPI_Type_create_resized(vec2, 0, (MPI_Aint)n * sizeof(int), &ft2);
      MPI_Type_commit(&ft2);
      CHECK_MPI(MPI_File_set_view(fh, (MPI_Offset)r * sizeof(int), MPI_INT, ft2, "native", MPI_INFO_NULL));
      CHECK_MPI(MPI_File_seek(fh, 0, MPI_SEEK_END));
      CHECK_MPI(MPI_File_get_position(fh, &pos));
      CHECK(pos == M, "MPI_SEEK_END through a view: %lld etypes", (long long)pos);
      MPI_Type_free(&vec2);
      MPI_Type_free(&ft2);
    }
    CHECK_MPI(MPI_File_close(&fh));
    free(all);
  }

  /* a 2-D array of ROWS x COLS ints, rank r writing a block of rows through a subarray view;
   * then each rank reads a block of columns through a darray (cyclic) view and checks it */
  {
    enum { COLS = 12 };
    int rows = 3 * n, lrows = 3, sizes[2] = {rows, COLS}, sub[2] = {lrows, COLS}, start[2] = {lrows * r, 0};
    int *mine = malloc(sizeof(int) * (size_t)(lrows * COLS)), *got;
    MPI_Datatype subarr, darr;
    int gs[2] = {rows, COLS}, dist[2] = {MPI_DISTRIBUTE_NONE, MPI_DISTRIBUTE_CYCLIC}, darg[2] = {MPI_DISTRIBUTE_DFLT_DARG, 2};
    int ps[2] = {1, n};
    int dsize, mycols = 0;
    for (int i = 0; i < lrows; i++)
      for (int j = 0; j < COLS; j++) mine[i * COLS + j] = (lrows * r + i) * 100 + j;
    MPI_Type_create_subarray(2, sizes, sub, start, MPI_ORDER_C, MPI_INT, &subarr);
    MPI_Type_commit(&subarr);
    checked_open(MPI_MODE_CREATE | MPI_MODE_RDWR, &fh);
    CHECK_MPI(MPI_File_set_size(fh, 0));
    CHECK_MPI(MPI_File_set_view(fh, 0, MPI_INT, subarr, "native", MPI_INFO_NULL));
    CHECK_MPI(MPI_File_write_all(fh, mine, lrows * COLS, MPI_INT, &st));
    CHECK_MPI(MPI_File_sync(fh));
    MPI_Barrier(MPI_COMM_WORLD);
    CHECK_MPI(MPI_File_sync(fh));
    /* columns in cyclic blocks of 2 over n processes: (j / 2) % n == r */
    MPI_Type_create_darray(n, r, 2, gs, dist, darg, ps, MPI_ORDER_C, MPI_INT, &darr);
    MPI_Type_commit(&darr);
    MPI_Type_size(darr, &dsize);
    for (int j = 0; j < COLS; j++) mycols += (j / 2) % n == r;
    CHECK(dsize == (int)sizeof(int) * rows * mycols, "darray size %d for %d columns", dsize, mycols);
    got = malloc((size_t)dsize + 1);
    CHECK_MPI(MPI_File_set_view(fh, 0, MPI_INT, darr, "native", MPI_INFO_NULL));
    CHECK_MPI(MPI_File_read_all(fh, got, dsize / (int)sizeof(int), MPI_INT, &st));
    {
      int k = 0, bad = 0;
      for (int i = 0; i < rows; i++)
        for (int j = 0; j < COLS; j++)
          if ((j / 2) % n == r && got[k++] != i * 100 + j) bad++;
      CHECK(bad == 0, "darray view read back %d wrong values", bad);
    }
    MPI_Type_free(&subarr);
    MPI_Type_free(&darr);
    CHECK_MPI(MPI_File_close(&fh));
    free(mine);
    free(got);
  }

  /* ordered access: rank r writes r+1 ints, in rank order, one after the other */
  {
    int out[16], in[16], cnt;
    for (int i = 0; i <= r; i++) out[i] = r;
    checked_open(MPI_MODE_CREATE | MPI_MODE_RDWR | MPI_MODE_DELETE_ON_CLOSE, &fh);
    CHECK_MPI(MPI_File_set_size(fh, 0));
    CHECK_MPI(MPI_File_set_view(fh, 0, MPI_INT, MPI_INT, "native", MPI_INFO_NULL));
    CHECK_MPI(MPI_File_write_ordered(fh, out, r + 1, MPI_INT, &st));
    CHECK_MPI(MPI_File_sync(fh));
    MPI_Barrier(MPI_COMM_WORLD);
    CHECK_MPI(MPI_File_sync(fh));
    CHECK_MPI(MPI_File_read_at(fh, (MPI_Offset)r * (r + 1) / 2, in, r + 1, MPI_INT, &st));
    MPI_Get_count(&st, MPI_INT, &cnt);
    CHECK(cnt == r + 1 && in[0] == r && in[r] == r, "write_ordered put rank %d's ints after the lower ranks'", r);
    CHECK_MPI(MPI_File_set_view(fh, 0, MPI_INT, MPI_INT, "native", MPI_INFO_NULL)); /* resets the shared pointer */
    memset(in, 0xff, sizeof in);
    CHECK_MPI(MPI_File_read_ordered(fh, in, r + 1, MPI_INT, &st));
    CHECK(in[0] == r && in[r] == r, "read_ordered %d %d", in[0], in[r]);
    CHECK_MPI(MPI_File_close(&fh)); /* MPI_MODE_DELETE_ON_CLOSE removes it */
    MPI_Barrier(MPI_COMM_WORLD);
    CHECK(access(path, F_OK) != 0, "MPI_MODE_DELETE_ON_CLOSE removed the file");
  }

  /* sizes, preallocation, access modes, and the errors MPI names */
  {
    MPI_Offset size;
    int amode, rc, cls;
    checked_open(MPI_MODE_CREATE | MPI_MODE_WRONLY, &fh);
    CHECK_MPI(MPI_File_preallocate(fh, 4096));
    CHECK_MPI(MPI_File_get_size(fh, &size));
    CHECK(size >= 4096, "preallocate: %lld bytes", (long long)size);
    MPI_Barrier(MPI_COMM_WORLD); /* everyone looked before the size changes again */
    CHECK_MPI(MPI_File_set_size(fh, 100));
    CHECK_MPI(MPI_File_get_size(fh, &size));
    CHECK(size == 100, "set_size: %lld bytes", (long long)size);
    CHECK_MPI(MPI_File_get_amode(fh, &amode));
    CHECK(amode == (MPI_MODE_CREATE | MPI_MODE_WRONLY), "get_amode %d", amode);
    CHECK_MPI(MPI_File_close(&fh));
    MPI_Barrier(MPI_COMM_WORLD);
    rc = MPI_File_open(MPI_COMM_WORLD, path, MPI_MODE_CREATE | MPI_MODE_EXCL | MPI_MODE_RDWR, MPI_INFO_NULL, &fh);
    MPI_Error_class(rc, &cls);
    CHECK(rc != MPI_SUCCESS && cls == MPI_ERR_FILE_EXISTS, "MPI_MODE_EXCL on an existing file: class %d", cls);
    if (r == 0) CHECK_MPI(MPI_File_delete(path, MPI_INFO_NULL));
    MPI_Barrier(MPI_COMM_WORLD);
    rc = MPI_File_open(MPI_COMM_WORLD, path, MPI_MODE_RDONLY, MPI_INFO_NULL, &fh);
    MPI_Error_class(rc, &cls);
    CHECK(rc != MPI_SUCCESS && cls == MPI_ERR_NO_SUCH_FILE, "opening a missing file: class %d", cls);
    rc = MPI_File_open(MPI_COMM_WORLD, path, MPI_MODE_RDONLY | MPI_MODE_CREATE, MPI_INFO_NULL, &fh);
    MPI_Error_class(rc, &cls);
    CHECK(rc != MPI_SUCCESS && cls == MPI_ERR_AMODE, "MPI_MODE_RDONLY with MPI_MODE_CREATE: class %d", cls);
  }
  return sft_finish("mpi-io");
}
