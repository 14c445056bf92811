/* datatypes.c: derived datatypes (contiguous, vector, indexed, struct, resized) carry exactly
 * their elements between ranks and through collectives; sizes, extents, Get_count and
 * Get_elements (also for partial messages), Pack/Unpack. */
#include "sft.h"

struct particle { double x, y; int id; char tag; };

int main(int argc, char **argv) {
  int n, r, right, left, sz;
  MPI_Aint lb, ext;
  MPI_Status st;
  sft_init(&argc, &argv);
  n = sft_size;
  r = sft_rank;
  right = (r + 1) % n;
  left = (r - 1 + n) % n;
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);

  /* Column of a 10x8 matrix: vector(10, 1, 8). */
  {
    MPI_Datatype col;
    double m[10][8], recv[10][8];
    CHECK_MPI(MPI_Type_vector(10, 1, 8, MPI_DOUBLE, &col));
    CHECK_MPI(MPI_Type_commit(&col));
    MPI_Type_size(col, &sz);
    MPI_Type_get_extent(col, &lb, &ext);
    CHECK(sz == 80 && lb == 0 && ext == (9 * 8 + 1) * 8, "vector size %d extent %ld", sz, (long)ext);
    for (int i = 0; i < 10; i++)
      for (int j = 0; j < 8; j++) m[i][j] = r * 1000 + i * 10 + j, recv[i][j] = -1;
    CHECK_MPI(MPI_Sendrecv(&m[0][3], 1, col, right, 1, &recv[0][5], 1, col, left, 1, MPI_COMM_WORLD, &st));
    for (int i = 0; i < 10; i++)
      for (int j = 0; j < 8; j++)
        CHECK(recv[i][j] == (j == 5 ? left * 1000 + i * 10 + 3 : -1), "column recv[%d][%d] = %g", i, j, recv[i][j]);
    /* Receive the column as 10 contiguous doubles: type signatures match. */
    {
      double flat[10];
      int cnt = -1;
      CHECK_MPI(MPI_Sendrecv(&m[0][2], 1, col, right, 2, flat, 10, MPI_DOUBLE, left, 2, MPI_COMM_WORLD, &st));
      for (int i = 0; i < 10; i++) CHECK(flat[i] == left * 1000 + i * 10 + 2, "flat[%d] = %g", i, flat[i]);
      MPI_Get_count(&st, MPI_DOUBLE, &cnt);
      CHECK(cnt == 10, "Get_count of the column as doubles: %d", cnt);
    }
    /* Bcast of two columns with a resized column type (extent one double). */
    {
      MPI_Datatype col1;
      CHECK_MPI(MPI_Type_create_resized(col, 0, sizeof(double), &col1));
      CHECK_MPI(MPI_Type_commit(&col1));
      for (int i = 0; i < 10; i++)
        for (int j = 0; j < 8; j++) m[i][j] = r == 0 ? i * 10 + j : -1;
      CHECK_MPI(MPI_Bcast(&m[0][1], 2, col1, 0, MPI_COMM_WORLD));
      for (int i = 0; i < 10; i++)
        for (int j = 0; j < 8; j++) {
          double want = (r == 0 || j == 1 || j == 2) ? i * 10 + j : -1;
          CHECK(m[i][j] == want, "bcast resized col m[%d][%d] = %g", i, j, m[i][j]);
        }
      MPI_Type_free(&col1);
    }
    CHECK_MPI(MPI_Type_free(&col));
    CHECK(col == MPI_DATATYPE_NULL, "Type_free did not null the handle");
  }
  /* Indexed: upper triangle of a 6x6 int matrix, and Get_elements on a partial message. */
  {
    int bl[6], disp[6], m[36], out[36], cnt = -1, el = -1;
    MPI_Datatype tri;
    for (int i = 0; i < 6; i++) bl[i] = 6 - i, disp[i] = i * 6 + i;
    CHECK_MPI(MPI_Type_indexed(6, bl, disp, MPI_INT, &tri));
    CHECK_MPI(MPI_Type_commit(&tri));
    MPI_Type_size(tri, &sz);
    CHECK(sz == 21 * 4, "triangle size %d", sz);
    for (int i = 0; i < 36; i++) m[i] = r * 100 + i, out[i] = -1;
    CHECK_MPI(MPI_Sendrecv(m, 1, tri, right, 3, out, 1, tri, left, 3, MPI_COMM_WORLD, &st));
    for (int i = 0; i < 6; i++)
      for (int j = 0; j < 6; j++)
        CHECK(out[i * 6 + j] == (j >= i ? left * 100 + i * 6 + j : -1), "triangle out[%d][%d]=%d", i, j, out[i * 6 + j]);
    /* A 10-int message received into 1 triangle: Get_count undefined, Get_elements 10. */
    CHECK_MPI(MPI_Sendrecv(m, 10, MPI_INT, right, 4, out, 1, tri, left, 4, MPI_COMM_WORLD, &st));
    MPI_Get_count(&st, tri, &cnt);
    MPI_Get_elements(&st, tri, &el);
    CHECK(cnt == MPI_UNDEFINED && el == 10, "partial triangle: count %d elements %d", cnt, el);
    MPI_Type_free(&tri);
  }
  /* Struct matching a C struct, arrays of it, and through Gather. */
  {
    MPI_Datatype pt;
    int bl[3] = {2, 1, 1};
    MPI_Aint disp[3];
    MPI_Datatype types[3] = {MPI_DOUBLE, MPI_INT, MPI_CHAR};
    struct particle p[4], q[4], *all = malloc(sizeof(struct particle) * 4 * (size_t)n);
    disp[0] = offsetof(struct particle, x);
    disp[1] = offsetof(struct particle, id);
    disp[2] = offsetof(struct particle, tag);
    CHECK_MPI(MPI_Type_create_struct(3, bl, disp, types, &pt));
    CHECK_MPI(MPI_Type_commit(&pt));
    MPI_Type_size(pt, &sz);
    MPI_Type_get_extent(pt, &lb, &ext);
    CHECK(sz == 8 + 8 + 4 + 1 && ext == (MPI_Aint)sizeof(struct particle), "struct size %d extent %ld (C %zu)", sz, (long)ext,
          sizeof(struct particle));
    for (int i = 0; i < 4; i++) {
      p[i].x = r + i * 0.25;
      p[i].y = -r;
      p[i].id = r * 10 + i;
      p[i].tag = (char)('a' + i);
    }
    memset(q, 0, sizeof q);
    CHECK_MPI(MPI_Sendrecv(p, 4, pt, right, 5, q, 4, pt, left, 5, MPI_COMM_WORLD, &st));
    for (int i = 0; i < 4; i++)
      CHECK(q[i].x == left + i * 0.25 && q[i].y == -left && q[i].id == left * 10 + i && q[i].tag == 'a' + i, "struct q[%d]", i);
    {
      int el = -1;
      MPI_Get_elements(&st, pt, &el);
      CHECK(el == 16, "Get_elements of 4 structs: %d", el);
    }
    CHECK_MPI(MPI_Gather(p, 4, pt, all, 4, pt, 0, MPI_COMM_WORLD));
    if (r == 0)
      for (int k = 0; k < n; k++) CHECK(all[k * 4 + 3].id == k * 10 + 3 && all[k * 4 + 3].tag == 'd', "gathered struct %d", k);
    MPI_Type_free(&pt);
    free(all);
  }
  /* Contiguous of a vector, and Pack/Unpack round trip. */
  {
    MPI_Datatype v, cv;
    int src[40], dst[40], pos = 0, psz = 0;
    char packed[400];
    CHECK_MPI(MPI_Type_vector(3, 2, 4, MPI_INT, &v));
    CHECK_MPI(MPI_Type_contiguous(2, v, &cv));
    CHECK_MPI(MPI_Type_commit(&cv));
    MPI_Type_size(cv, &sz);
    CHECK(sz == 2 * 6 * 4, "contiguous(vector) size %d", sz);
    for (int i = 0; i < 40; i++) src[i] = i, dst[i] = -1;
    MPI_Pack_size(1, cv, MPI_COMM_WORLD, &psz);
    CHECK(psz >= 48, "Pack_size %d", psz);
    CHECK_MPI(MPI_Pack(src, 1, cv, packed, sizeof packed, &pos, MPI_COMM_WORLD));
    CHECK(pos == 48, "Pack position %d", pos);
    pos = 0;
    CHECK_MPI(MPI_Unpack(packed, sizeof packed, &pos, dst, 1, cv, MPI_COMM_WORLD));
    {
      /* vector extent is (2*4+2)*4 = 40 bytes = 10 ints; elements at 0,1,4,5,8,9 then +10 */
      int want_idx[12] = {0, 1, 4, 5, 8, 9, 10, 11, 14, 15, 18, 19};
      for (int i = 0; i < 12; i++) CHECK(dst[want_idx[i]] == want_idx[i], "unpack dst[%d] = %d", want_idx[i], dst[want_idx[i]]);
      CHECK(dst[2] == -1 && dst[12] == -1, "unpack wrote into a gap");
    }
    MPI_Type_free(&v);
    MPI_Type_free(&cv);
  }
  /* Using an uncommitted type is an error naming the problem, not garbage. */
  {
    MPI_Datatype t;
    int x[4] = {0}, rc, cls = -1, len;
    char msg[MPI_MAX_ERROR_STRING];
    MPI_Type_contiguous(4, MPI_INT, &t);
    rc = MPI_Send(x, 1, t, MPI_PROC_NULL, 0, MPI_COMM_WORLD);
    MPI_Error_class(rc, &cls);
    MPI_Error_string(rc, msg, &len);
    CHECK(cls == MPI_ERR_TYPE && (!SFMPI_DETAIL || strstr(msg, "not committed")), "uncommitted type: class %d %s", cls, msg);
    MPI_Type_free(&t);
  }
  return sft_finish("datatypes");
}
