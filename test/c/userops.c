/* userops.c: user-defined reduction operations (MPI_Op_create) give the right answer in rank
 * order for a non-commutative op (2x2 matrix product) and for a commutative op on a struct
 * type, through Reduce, Allreduce, Scan and Exscan; MPI_Op_free works. */
#include "sft.h"

typedef struct { long a, b, c, d; } mat;

static void matmul(void *in, void *inout, int *len, MPI_Datatype *dt) {
  mat *x = in, *y = inout;
  (void)dt;
  for (int i = 0; i < *len; i++) {
    mat z = {x[i].a * y[i].a + x[i].b * y[i].c, x[i].a * y[i].b + x[i].b * y[i].d,
             x[i].c * y[i].a + x[i].d * y[i].c, x[i].c * y[i].b + x[i].d * y[i].d};
    y[i] = z; /* inout = in * inout: lower ranks on the left */
  }
}

static mat rank_mat(int q, int k) {
  mat m = {1, q + k + 1, 0, 1};
  if (q % 2) m.c = 1; /* odd ranks: not upper triangular, so order matters */
  return m;
}

static mat mul(mat x, mat y) {
  mat z = {x.a * y.a + x.b * y.c, x.a * y.b + x.b * y.d, x.c * y.a + x.d * y.c, x.c * y.b + x.d * y.d};
  return z;
}

typedef struct { double sum; int count; } stat;
static void statadd(void *in, void *inout, int *len, MPI_Datatype *dt) {
  stat *x = in, *y = inout;
  (void)dt;
  for (int i = 0; i < *len; i++) y[i].sum += x[i].sum, y[i].count += x[i].count;
}

int main(int argc, char **argv) {
  int n, r;
  MPI_Op op, sop;
  MPI_Datatype mt, st;
  sft_init(&argc, &argv);
  n = sft_size;
  r = sft_rank;
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  CHECK_MPI(MPI_Type_contiguous(4, MPI_LONG, &mt));
  CHECK_MPI(MPI_Type_commit(&mt));
  CHECK_MPI(MPI_Op_create(matmul, 0, &op));
  {
    int commute = 1;
    MPI_Op_commutative(op, &commute);
    CHECK(commute == 0, "Op_commutative says %d", commute);
  }
  {
    mat in[3], out[3];
    for (int k = 0; k < 3; k++) in[k] = rank_mat(r, k);
    for (int root = 0; root < n; root++) {
      memset(out, 0, sizeof out);
      CHECK_MPI(MPI_Reduce(in, out, 3, mt, op, root, MPI_COMM_WORLD));
      if (r == root)
        for (int k = 0; k < 3; k++) {
          mat want = rank_mat(0, k);
          for (int q = 1; q < n; q++) want = mul(want, rank_mat(q, k));
          CHECK(out[k].a == want.a && out[k].b == want.b && out[k].c == want.c && out[k].d == want.d,
                "reduce root %d k %d: [%ld %ld %ld %ld] want [%ld %ld %ld %ld]", root, k, out[k].a, out[k].b, out[k].c,
                out[k].d, want.a, want.b, want.c, want.d);
        }
    }
    CHECK_MPI(MPI_Allreduce(in, out, 3, mt, op, MPI_COMM_WORLD));
    {
      mat want = rank_mat(0, 2);
      for (int q = 1; q < n; q++) want = mul(want, rank_mat(q, 2));
      CHECK(out[2].a == want.a && out[2].b == want.b && out[2].c == want.c && out[2].d == want.d, "allreduce matmul");
    }
    CHECK_MPI(MPI_Scan(in, out, 1, mt, op, MPI_COMM_WORLD));
    {
      mat want = rank_mat(0, 0);
      for (int q = 1; q <= r; q++) want = mul(want, rank_mat(q, 0));
      CHECK(out[0].a == want.a && out[0].b == want.b && out[0].c == want.c && out[0].d == want.d, "scan matmul");
    }
    CHECK_MPI(MPI_Exscan(in, out, 1, mt, op, MPI_COMM_WORLD));
    if (r > 0) {
      mat want = rank_mat(0, 0);
      for (int q = 1; q < r; q++) want = mul(want, rank_mat(q, 0));
      CHECK(out[0].a == want.a && out[0].b == want.b && out[0].c == want.c && out[0].d == want.d, "exscan matmul");
    }
  }
  /* Commutative user op on a struct datatype, big count (rendezvous). */
  {
    int bl[2] = {1, 1}, cnt = 20000;
    MPI_Aint disp[2] = {offsetof(stat, sum), offsetof(stat, count)};
    MPI_Datatype ty[2] = {MPI_DOUBLE, MPI_INT};
    stat *in = malloc(sizeof(stat) * (size_t)cnt), *out = malloc(sizeof(stat) * (size_t)cnt);
    CHECK_MPI(MPI_Type_create_struct(2, bl, disp, ty, &st));
    CHECK_MPI(MPI_Type_commit(&st));
    CHECK_MPI(MPI_Op_create(statadd, 1, &sop));
    for (int i = 0; i < cnt; i++) in[i].sum = r + i, in[i].count = 1;
    CHECK_MPI(MPI_Allreduce(in, out, cnt, st, sop, MPI_COMM_WORLD));
    for (int i = 0; i < cnt; i += 1999)
      CHECK(out[i].sum == n * (n - 1) / 2.0 + (double)n * i && out[i].count == n, "stat[%d] = %g/%d", i, out[i].sum, out[i].count);
    CHECK_MPI(MPI_Op_free(&sop));
    CHECK(sop == MPI_OP_NULL, "Op_free did not null the handle");
    MPI_Type_free(&st);
    free(in);
    free(out);
  }
  /* A predefined op on a type it does not apply to is MPI_ERR_OP naming both. */
  {
    double d = 1, e;
    int rc = MPI_Allreduce(&d, &e, 1, MPI_DOUBLE, MPI_BAND, MPI_COMM_WORLD), cls = -1, len;
    char msg[MPI_MAX_ERROR_STRING];
    MPI_Error_class(rc, &cls);
    MPI_Error_string(rc, msg, &len);
    CHECK(cls == MPI_ERR_OP && (!SFMPI_DETAIL || (strstr(msg, "MPI_BAND") && strstr(msg, "MPI_DOUBLE"))), "BAND on double: %s", msg);
  }
  MPI_Op_free(&op);
  MPI_Type_free(&mt);
  return sft_finish("userops");
}
