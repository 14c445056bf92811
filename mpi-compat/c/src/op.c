/*
 * op.c: reduction operations (predefined and MPI_Op_create) and the set-up every reduction
 * shares: which combine function runs, and whether the data travels packed.
 *
 * Predefined ops run in the data plane (sf_builtin_combine); user ops are called on the data
 * in the datatype's own layout, lower ranks as `invec`.
 */
#include "sfmpi.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int sfm_ops_init(void) {
  sfm.nops = 32;
  sfm.ops = calloc((size_t)sfm.nops, sizeof *sfm.ops);
  if (sfm.ops == NULL) return -1;
  for (int i = 1; i <= MPI_NO_OP; i++) {
    sfm.ops[i].used = 1;
    sfm.ops[i].commute = 1;
  }
  return 0;
}

const char *sfm_op_name(MPI_Op op) {
  static const char *names[] = {"MPI_OP_NULL", "MPI_MAX", "MPI_MIN", "MPI_SUM", "MPI_PROD", "MPI_LAND", "MPI_BAND",
                                "MPI_LOR", "MPI_BOR", "MPI_LXOR", "MPI_BXOR", "MPI_MAXLOC", "MPI_MINLOC",
                                "MPI_REPLACE", "MPI_NO_OP"};
  return op >= 0 && op <= MPI_NO_OP ? names[op] : "user op";
}

int MPI_Op_create(MPI_User_function *fn, int commute, MPI_Op *op) {
  int i;
  SFM_INIT_CHECK("MPI_Op_create");
  if (fn == NULL || op == NULL) return sfm_error(MPI_COMM_WORLD, "MPI_Op_create", MPI_ERR_ARG, "NULL function or op");
  for (i = MPI_NO_OP + 1; i < sfm.nops; i++)
    if (!sfm.ops[i].used) break;
  if (i >= sfm.nops) {
    int nn = sfm.nops * 2;
    sfm_op *p = realloc(sfm.ops, (size_t)nn * sizeof *p);
    if (p == NULL) return sfm_error(MPI_COMM_WORLD, "MPI_Op_create", MPI_ERR_NO_MEM, "out of memory");
    memset(p + sfm.nops, 0, (size_t)(nn - sfm.nops) * sizeof *p);
    sfm.ops = p;
    sfm.nops = nn;
  }
  sfm.ops[i].used = 1;
  sfm.ops[i].fn = fn;
  sfm.ops[i].commute = commute;
  *op = i;
  return MPI_SUCCESS;
}

int MPI_Op_free(MPI_Op *op) {
  SFM_INIT_CHECK("MPI_Op_free");
  if (op == NULL || *op <= MPI_NO_OP || *op >= sfm.nops || !sfm.ops[*op].used)
    return sfm_error(MPI_COMM_WORLD, "MPI_Op_free", MPI_ERR_OP, "invalid or predefined op %d", op ? *op : -1);
  sfm.ops[*op].used = 0;
  *op = MPI_OP_NULL;
  return MPI_SUCCESS;
}

int MPI_Op_commutative(MPI_Op op, int *commute) {
  if (op <= 0 || op >= sfm.nops || !sfm.ops[op].used || commute == NULL)
    return sfm_error(MPI_COMM_WORLD, "MPI_Op_commutative", MPI_ERR_OP, "invalid op %d", op);
  *commute = sfm.ops[op].commute;
  return MPI_SUCCESS;
}

/* ---- reduction set-up -------------------------------------------------------------------- */


static int sfm_user_combine(const void *in, void *inout, size_t nbytes, void *arg) {
  sfm_red *r = arg;
  int n = (int)(nbytes / r->unit);
  MPI_Datatype d = r->dt;
  r->ufn((void *)in, inout, &n, &d);
  return 0;
}

int sfm_red_setup(MPI_Comm comm, const char *fn, MPI_Datatype dt, MPI_Op op, int count, sfm_red *r) {
  int rc = sfm_type_check(comm, fn, dt, count);
  if (rc != MPI_SUCCESS) return rc;
  memset(r, 0, sizeof *r);
  r->t = sfm_type_get(dt);
  r->dt = dt;
  if (op <= 0 || op >= sfm.nops || !sfm.ops[op].used) return sfm_error(comm, fn, MPI_ERR_OP, "invalid op %d", op);
  if (op <= MPI_NO_OP) {
    if (r->t->homog < 0 || !sf_op_valid((sf_op)(op - 1), (sf_dtype)r->t->homog))
      return sfm_error(comm, fn, MPI_ERR_OP, "%s is not defined for %s", sfm_op_name(op), sfm_type_name(dt));
    r->b.op = (sf_op)(op - 1);
    r->b.type = (sf_dtype)r->t->homog;
    r->fn = sf_builtin_combine;
    r->arg = &r->b;
    r->packed = !r->t->contig;
    r->unit = r->t->size;
  } else {
    r->ufn = sfm.ops[op].fn;
    r->fn = sfm_user_combine;
    r->arg = r;
    r->packed = 0;
    r->unit = (size_t)r->t->extent;
    if (r->unit == 0) r->unit = 1;
  }
  return MPI_SUCCESS;
}

/* Input in wire layout: the user's buffer, or a packed copy (*tmp). */
const void *sfm_red_in(sfm_red *r, const void *buf, int count, void **tmp) {
  *tmp = NULL;
  if (!r->packed) return buf;
  *tmp = malloc(r->unit * (size_t)count + 1);
  if (*tmp == NULL) return NULL;
  sfm_pack(r->t, buf, count, *tmp);
  return *tmp;
}


/* inout = in (op) inout on this rank alone: the combine a reduction would run, in the same
 * wire layout (packed for a predefined op on a non-contiguous type). */
int MPI_Reduce_local(const void *inbuf, void *inoutbuf, int count, MPI_Datatype dt, MPI_Op op) {
  sfm_red r;
  void *tin = NULL, *tio = NULL;
  const void *in;
  void *io = inoutbuf;
  int rc;
  SFM_INIT_CHECK("MPI_Reduce_local");
  rc = sfm_red_setup(MPI_COMM_WORLD, "MPI_Reduce_local", dt, op, count, &r);
  if (rc != MPI_SUCCESS || count == 0) return rc;
  in = sfm_red_in(&r, inbuf, count, &tin);
  if (r.packed) io = (void *)sfm_red_in(&r, inoutbuf, count, &tio); /* a packed copy (tio), written then unpacked */
  if ((r.packed && (in == NULL || io == NULL)) || in == NULL) {
    free(tin);
    free(tio);
    return sfm_error(MPI_COMM_WORLD, "MPI_Reduce_local", MPI_ERR_NO_MEM, "out of memory");
  }
  rc = r.fn(in, io, r.unit * (size_t)count, r.arg);
  if (rc >= 0 && r.packed) sfm_unpack(r.t, io, r.unit * (size_t)count, inoutbuf, count);
  free(tin);
  free(tio);
  return rc < 0 ? sfm_dp_error(MPI_COMM_WORLD, "MPI_Reduce_local", rc) : MPI_SUCCESS;
}

/* Does op commute (predefined ops all do; a user op as MPI_Op_create was told)? */
int sfm_red_commutes(MPI_Op op) { return op > 0 && op < sfm.nops && sfm.ops[op].used && sfm.ops[op].commute; }
