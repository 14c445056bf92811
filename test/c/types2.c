/* types2.c: the MPI-2/3 datatype constructors and queries with known layouts: subarrays (C and
 * Fortran order), darrays (block and cyclic), hindexed(_block), resized types as strides,
 * true extents, addresses, names, dups, the _x queries, MPI_Reduce_local and
 * MPI_Status_set_elements, and a type freed while an operation using it is pending. Layouts are
 * checked by sending the type to a contiguous buffer. */
#include "sft.h"

/* The ints of `t` at `src` in the order the type lists them, via a message to oneself. */
static void flatten(const int *src, MPI_Datatype t, int *out, int nints) {
  MPI_Request q;
  MPI_Irecv(out, nints, MPI_INT, 0, 0, MPI_COMM_SELF, &q);
  MPI_Send(src, 1, t, 0, 0, MPI_COMM_SELF);
  MPI_Wait(&q, MPI_STATUS_IGNORE);
}

static void sub_and_dar(void) {
  int a[6 * 8], out[48];
  for (int i = 0; i < 48; i++) a[i] = i; /* a 6 x 8 array, row-major: a[i][j] = 8i + j */
  {
    int sizes[2] = {6, 8}, sub[2] = {2, 3}, start[2] = {1, 4}, sz;
    MPI_Datatype t;
    MPI_Aint lb, ext;
    CHECK_MPI(MPI_Type_create_subarray(2, sizes, sub, start, MPI_ORDER_C, MPI_INT, &t));
    MPI_Type_commit(&t);
    MPI_Type_size(t, &sz);
    MPI_Type_get_extent(t, &lb, &ext);
    CHECK(sz == 6 * (int)sizeof(int) && lb == 0 && ext == 48 * (MPI_Aint)sizeof(int), "C subarray size %d extent %ld", sz, (long)ext);
    flatten(a, t, out, 6);
    CHECK(out[0] == 12 && out[2] == 14 && out[3] == 20 && out[5] == 22, "C subarray rows 1-2, cols 4-6: %d %d %d %d", out[0],
          out[2], out[3], out[5]);
    MPI_Type_free(&t);
  }
  {
    /* Fortran order: dimension 0 varies fastest; the same memory seen as an 8 x 6 array */
    int sizes[2] = {8, 6}, sub[2] = {3, 2}, start[2] = {4, 1};
    MPI_Datatype t;
    CHECK_MPI(MPI_Type_create_subarray(2, sizes, sub, start, MPI_ORDER_FORTRAN, MPI_INT, &t));
    MPI_Type_commit(&t);
    flatten(a, t, out, 6);
    CHECK(out[0] == 12 && out[1] == 13 && out[2] == 14 && out[3] == 20, "Fortran subarray %d %d %d %d", out[0], out[1], out[2], out[3]);
    MPI_Type_free(&t);
  }
  {
    /* 6 x 8 over a 2 x 2 grid: process (1, 0) = rank 2 has rows 3-5 (block) and columns
     * {0,1, 4,5} (cyclic blocks of 2) */
    int gs[2] = {6, 8}, dist[2] = {MPI_DISTRIBUTE_BLOCK, MPI_DISTRIBUTE_CYCLIC}, darg[2] = {MPI_DISTRIBUTE_DFLT_DARG, 2};
    int ps[2] = {2, 2}, sz, k = 0, bad = 0;
    MPI_Datatype t;
    MPI_Aint lb, ext;
    CHECK_MPI(MPI_Type_create_darray(4, 2, 2, gs, dist, darg, ps, MPI_ORDER_C, MPI_INT, &t));
    MPI_Type_commit(&t);
    MPI_Type_size(t, &sz);
    MPI_Type_get_extent(t, &lb, &ext);
    CHECK(sz == 12 * (int)sizeof(int) && ext == 48 * (MPI_Aint)sizeof(int), "darray size %d extent %ld", sz, (long)ext);
    flatten(a, t, out, 12);
    for (int i = 3; i < 6; i++)
      for (int j = 0; j < 8; j++)
        if ((j / 2) % 2 == 0 && out[k++] != 8 * i + j) bad++;
    CHECK(bad == 0 && k == 12, "darray elements: %d wrong", bad);
    MPI_Type_free(&t);
  }
}

static void hindexed_resized(void) {
  int a[20], out[8];
  for (int i = 0; i < 20; i++) a[i] = 100 + i;
  {
    int bl[3] = {2, 1, 3};
    MPI_Aint dis[3] = {0, 5 * sizeof(int), 10 * sizeof(int)};
    MPI_Datatype t;
    CHECK_MPI(MPI_Type_create_hindexed(3, bl, dis, MPI_INT, &t));
    MPI_Type_commit(&t);
    flatten(a, t, out, 6);
    CHECK(out[0] == 100 && out[1] == 101 && out[2] == 105 && out[3] == 110 && out[5] == 112, "hindexed %d %d %d %d", out[0], out[2],
          out[3], out[5]);
    MPI_Type_free(&t);
  }
  {
    MPI_Aint dis[3] = {12 * sizeof(int), 2 * sizeof(int), 7 * sizeof(int)};
    MPI_Datatype t;
    CHECK_MPI(MPI_Type_create_hindexed_block(3, 2, dis, MPI_INT, &t));
    MPI_Type_commit(&t);
    flatten(a, t, out, 6);
    CHECK(out[0] == 112 && out[1] == 113 && out[2] == 102 && out[4] == 107, "hindexed_block %d %d %d", out[0], out[2], out[4]);
    MPI_Type_free(&t);
  }
  {
    /* an int resized to an extent of 3 ints: count 4 of it takes every third int */
    MPI_Datatype t;
    MPI_Aint lb, ext, tlb, text;
    MPI_Request q;
    CHECK_MPI(MPI_Type_create_resized(MPI_INT, 0, 3 * sizeof(int), &t));
    MPI_Type_commit(&t);
    MPI_Type_get_extent(t, &lb, &ext);
    MPI_Type_get_true_extent(t, &tlb, &text);
    CHECK(ext == 3 * (MPI_Aint)sizeof(int) && tlb == 0 && text == (MPI_Aint)sizeof(int), "resized extent %ld, true extent %ld",
          (long)ext, (long)text);
    MPI_Irecv(out, 4, MPI_INT, 0, 1, MPI_COMM_SELF, &q);
    MPI_Send(a, 4, t, 0, 1, MPI_COMM_SELF);
    MPI_Wait(&q, MPI_STATUS_IGNORE);
    CHECK(out[0] == 100 && out[1] == 103 && out[3] == 109, "count 4 of a resized int: %d %d %d", out[0], out[1], out[3]);
    MPI_Type_free(&t);
  }
  {
    /* true extent of a vector ignores the resized bounds */
    MPI_Datatype v, r;
    MPI_Aint tlb, text;
    MPI_Type_vector(3, 2, 4, MPI_INT, &v);
    MPI_Type_create_resized(v, -4, 100, &r);
    MPI_Type_get_true_extent(r, &tlb, &text);
    CHECK(tlb == 0 && text == 10 * (MPI_Aint)sizeof(int), "true extent of a resized vector: %ld %ld", (long)tlb, (long)text);
    MPI_Type_free(&v);
    MPI_Type_free(&r);
  }
}

static void queries(void) {
  struct { char c; double d; int i; } s = {0, 0, 0};
  MPI_Aint a0, a1, a2;
  char name[MPI_MAX_OBJECT_NAME];
  int len;
  MPI_Get_address(&s, &a0);
  MPI_Get_address(&s.d, &a1);
  MPI_Get_address(&s.i, &a2);
  CHECK(MPI_Aint_diff(a1, a0) == (MPI_Aint)((char *)&s.d - (char *)&s), "Aint_diff %ld", (long)MPI_Aint_diff(a1, a0));
  CHECK(MPI_Aint_add(a0, MPI_Aint_diff(a2, a0)) == a2, "Aint_add");
  CHECK_MPI(MPI_Type_get_name(MPI_INT, name, &len));
  CHECK(strcmp(name, "MPI_INT") == 0 && len == 7, "the name of MPI_INT is %s", name);
  {
    MPI_Datatype t, d;
    int flag = 0, sz;
    MPI_Count sx, lbx, ex;
    MPI_Type_contiguous(3, MPI_DOUBLE, &t);
    CHECK_MPI(MPI_Type_set_name(t, "triple"));
    MPI_Type_get_name(t, name, &len);
    CHECK(strcmp(name, "triple") == 0, "set_name/get_name: %s", name);
    MPI_Type_commit(&t);
    CHECK_MPI(MPI_Type_dup(t, &d));
    MPI_Type_size(d, &sz);
    CHECK(sz == 3 * (int)sizeof(double), "dup size %d", sz);
    {
      double x[3] = {1, 2, 3}, y[3] = {0, 0, 0};
      MPI_Request q;
      MPI_Irecv(y, 1, d, 0, 2, MPI_COMM_SELF, &q); /* a dup of a committed type is committed */
      MPI_Send(x, 1, t, 0, 2, MPI_COMM_SELF);
      MPI_Wait(&q, MPI_STATUS_IGNORE);
      CHECK(y[2] == 3, "a message through a dup");
    }
    CHECK_MPI(MPI_Type_size_x(t, &sx));
    CHECK_MPI(MPI_Type_get_extent_x(t, &lbx, &ex));
    CHECK(sx == 3 * (MPI_Count)sizeof(double) && lbx == 0 && ex == sx, "size_x %lld extent_x %lld", (long long)sx, (long long)ex);
    (void)flag;
    MPI_Type_free(&t);
    MPI_Type_free(&d);
  }
}

static void sum_pairs(void *in, void *inout, int *len, MPI_Datatype *dt) {
  int *a = in, *b = inout;
  (void)dt;
  for (int i = 0; i < 2 * *len; i++) b[i] += a[i] * 10;
}

static void locals(void) {
  int a[4] = {1, 2, 3, 4}, b[4] = {10, 20, 30, 40}, cnt;
  MPI_Status st;
  CHECK_MPI(MPI_Reduce_local(a, b, 4, MPI_INT, MPI_SUM));
  CHECK(b[0] == 11 && b[3] == 44, "Reduce_local SUM %d %d", b[0], b[3]);
  CHECK_MPI(MPI_Reduce_local(a, b, 4, MPI_INT, MPI_MAX));
  CHECK(b[0] == 11, "Reduce_local MAX %d", b[0]);
  {
    MPI_Op op;
    MPI_Datatype pair;
    MPI_Type_contiguous(2, MPI_INT, &pair);
    MPI_Type_commit(&pair);
    MPI_Op_create(sum_pairs, 0, &op);
    CHECK_MPI(MPI_Reduce_local(a, b, 2, pair, op));
    CHECK(b[0] == 21 && b[3] == 84, "Reduce_local with a user op: %d %d", b[0], b[3]);
    MPI_Op_free(&op);
    MPI_Type_free(&pair);
  }
  CHECK_MPI(MPI_Status_set_elements(&st, MPI_INT, 3));
  MPI_Get_elements(&st, MPI_INT, &cnt);
  CHECK(cnt == 3, "Status_set_elements then Get_elements: %d", cnt);
  MPI_Get_count(&st, MPI_INT, &cnt);
  CHECK(cnt == 3, "... and Get_count: %d", cnt);
  {
    MPI_Count cx;
    MPI_Status_set_elements_x(&st, MPI_DOUBLE, 5);
    MPI_Get_elements_x(&st, MPI_DOUBLE, &cx);
    CHECK(cx == 5, "Status_set_elements_x / Get_elements_x: %lld", (long long)cx);
  }
}

/* MPI lets a program free a datatype while a non-blocking operation uses it: the operation
 * completes as if it had not been freed, even when a type made since takes the freed slot. */
static void freed_in_flight(void) {
  int src[12], dst[24], back[12];
  for (int i = 0; i < 12; i++) src[i] = 100 + i;
  for (int i = 0; i < 24; i++) dst[i] = -1;
  MPI_Datatype v, w, u;
  MPI_Request q, r;
  MPI_Type_vector(12, 1, 2, MPI_INT, &v); /* every other int */
  MPI_Type_commit(&v);
  MPI_Irecv(dst, 1, v, 0, 7, MPI_COMM_SELF, &q);
  MPI_Type_free(&v);
  CHECK(v == MPI_DATATYPE_NULL, "Type_free sets the handle to MPI_DATATYPE_NULL");
  MPI_Type_contiguous(3, MPI_INT, &w); /* may reuse the freed type's slot */
  MPI_Type_commit(&w);
  MPI_Send(src, 12, MPI_INT, 0, 7, MPI_COMM_SELF);
  MPI_Wait(&q, MPI_STATUS_IGNORE);
  int ok = 1;
  for (int i = 0; i < 12; i++) ok &= dst[2 * i] == 100 + i && dst[2 * i + 1] == -1;
  CHECK(ok, "a receive whose vector type was freed while pending unpacked as the vector: %d %d %d", dst[0], dst[1], dst[2]);
  /* The send side: a strided Isend whose type is freed before it completes. */
  MPI_Type_vector(12, 1, 2, MPI_INT, &u);
  MPI_Type_commit(&u);
  MPI_Isend(dst, 1, u, 0, 8, MPI_COMM_SELF, &r);
  MPI_Type_free(&u);
  MPI_Recv(back, 12, MPI_INT, 0, 8, MPI_COMM_SELF, MPI_STATUS_IGNORE);
  MPI_Wait(&r, MPI_STATUS_IGNORE);
  ok = 1;
  for (int i = 0; i < 12; i++) ok &= back[i] == 100 + i;
  CHECK(ok, "a send whose vector type was freed while pending packed as the vector: %d %d", back[0], back[11]);
  MPI_Type_free(&w);
}

int main(int argc, char **argv) {
  sft_init(&argc, &argv);
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  MPI_Comm_set_errhandler(MPI_COMM_SELF, MPI_ERRORS_RETURN);
  sub_and_dar();
  hindexed_resized();
  queries();
  locals();
  freed_in_flight();
  return sft_finish("datatypes2");
}
