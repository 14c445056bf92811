/*
 * datatype.c: predefined and derived datatypes, pack/unpack, MPI_Get_count/Get_elements.
 *
 * A derived type is flattened when it is built: byte blocks (merged when adjacent) drive
 * pack/unpack, and basic-element runs drive reductions and MPI_Get_elements. A type whose one
 * block covers its whole extent from 0 is "contiguous" and is sent in place, without packing.
 */
#include "sfmpi.h"

#include <complex.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

typedef struct { float v; int i; } sfm_float_int;
typedef struct { double v; int i; } sfm_double_int;
typedef struct { long v; int i; } sfm_long_int;
typedef struct { int v; int i; } sfm_2int;
typedef struct { short v; int i; } sfm_short_int;
typedef struct { long double v; int i; } sfm_ldouble_int;

static const struct { MPI_Datatype h; const char *name; size_t size; int basic; } sfm_predef[] = {
  {MPI_CHAR, "MPI_CHAR", sizeof(char), SF_CHAR},
  {MPI_SIGNED_CHAR, "MPI_SIGNED_CHAR", sizeof(signed char), SF_SCHAR},
  {MPI_UNSIGNED_CHAR, "MPI_UNSIGNED_CHAR", sizeof(unsigned char), SF_UCHAR},
  {MPI_BYTE, "MPI_BYTE", 1, SF_BYTE},
  {MPI_SHORT, "MPI_SHORT", sizeof(short), SF_SHORT},
  {MPI_UNSIGNED_SHORT, "MPI_UNSIGNED_SHORT", sizeof(unsigned short), SF_USHORT},
  {MPI_INT, "MPI_INT", sizeof(int), SF_INT},
  {MPI_UNSIGNED, "MPI_UNSIGNED", sizeof(unsigned), SF_UINT},
  {MPI_LONG, "MPI_LONG", sizeof(long), SF_LONG},
  {MPI_UNSIGNED_LONG, "MPI_UNSIGNED_LONG", sizeof(unsigned long), SF_ULONG},
  {MPI_LONG_LONG_INT, "MPI_LONG_LONG", sizeof(long long), SF_LLONG},
  {MPI_UNSIGNED_LONG_LONG, "MPI_UNSIGNED_LONG_LONG", sizeof(unsigned long long), SF_ULLONG},
  {MPI_FLOAT, "MPI_FLOAT", sizeof(float), SF_FLOAT},
  {MPI_DOUBLE, "MPI_DOUBLE", sizeof(double), SF_DOUBLE},
  {MPI_LONG_DOUBLE, "MPI_LONG_DOUBLE", sizeof(long double), SF_LDOUBLE},
  {MPI_WCHAR, "MPI_WCHAR", sizeof(wchar_t), SF_WCHAR},
  {MPI_C_BOOL, "MPI_C_BOOL", sizeof(bool), SF_BOOL},
  {MPI_INT8_T, "MPI_INT8_T", 1, SF_INT8},
  {MPI_UINT8_T, "MPI_UINT8_T", 1, SF_UINT8},
  {MPI_INT16_T, "MPI_INT16_T", 2, SF_INT16},
  {MPI_UINT16_T, "MPI_UINT16_T", 2, SF_UINT16},
  {MPI_INT32_T, "MPI_INT32_T", 4, SF_INT32},
  {MPI_UINT32_T, "MPI_UINT32_T", 4, SF_UINT32},
  {MPI_INT64_T, "MPI_INT64_T", 8, SF_INT64},
  {MPI_UINT64_T, "MPI_UINT64_T", 8, SF_UINT64},
  {MPI_PACKED, "MPI_PACKED", 1, SF_BYTE},
  {MPI_AINT, "MPI_AINT", sizeof(MPI_Aint), sizeof(MPI_Aint) == 8 ? SF_INT64 : SF_INT32},
  {MPI_OFFSET, "MPI_OFFSET", sizeof(MPI_Offset), SF_INT64},
  {MPI_COUNT, "MPI_COUNT", sizeof(MPI_Count), SF_INT64},
  {MPI_FLOAT_INT, "MPI_FLOAT_INT", sizeof(sfm_float_int), SF_FLOAT_INT},
  {MPI_DOUBLE_INT, "MPI_DOUBLE_INT", sizeof(sfm_double_int), SF_DOUBLE_INT},
  {MPI_LONG_INT, "MPI_LONG_INT", sizeof(sfm_long_int), SF_LONG_INT},
  {MPI_2INT, "MPI_2INT", sizeof(sfm_2int), SF_2INT},
  {MPI_SHORT_INT, "MPI_SHORT_INT", sizeof(sfm_short_int), SF_SHORT_INT},
  {MPI_LONG_DOUBLE_INT, "MPI_LONG_DOUBLE_INT", sizeof(sfm_ldouble_int), SF_LDOUBLE_INT},
  {MPI_C_FLOAT_COMPLEX, "MPI_C_FLOAT_COMPLEX", sizeof(float _Complex), -2},
  {MPI_C_DOUBLE_COMPLEX, "MPI_C_DOUBLE_COMPLEX", sizeof(double _Complex), -3},
};
#define SFM_NPREDEF ((int)(sizeof sfm_predef / sizeof sfm_predef[0]))

sfm_type *sfm_type_get(MPI_Datatype t) {
  if (t <= 0 || t >= sfm.ntypes || !sfm.types[t].used) return NULL;
  return &sfm.types[t];
}

const char *sfm_type_name(MPI_Datatype t) {
  sfm_type *ty = sfm_type_get(t);
  return ty && ty->name ? ty->name : "derived datatype";
}

int sfm_types_init(void) {
  int n = 64;
  sfm.types = calloc((size_t)n, sizeof *sfm.types);
  if (sfm.types == NULL) return -1;
  sfm.ntypes = n;
  for (int i = 0; i < SFM_NPREDEF; i++) {
    sfm_type *t = &sfm.types[sfm_predef[i].h];
    t->used = t->predefined = t->committed = 1;
    t->name = sfm_predef[i].name;
    t->size = sfm_predef[i].size;
    t->lb = 0;
    t->extent = (MPI_Aint)t->size;
    t->true_lb = 0;
    t->true_ub = t->extent;
    t->nblocks = 1;
    t->blocks = malloc(sizeof *t->blocks);
    t->nruns = 1;
    t->runs = malloc(sizeof *t->runs);
    if (!t->blocks || !t->runs) return -1;
    t->blocks[0].disp = 0;
    t->blocks[0].len = t->size;
    t->runs[0].disp = 0;
    t->runs[0].basic = sfm_predef[i].basic;
    t->runs[0].count = 1;
    t->nbasic = 1;
    t->homog = sfm_predef[i].basic;
    t->contig = 1;
  }
  return 0;
}

int sfm_type_check(MPI_Comm comm, const char *fn, MPI_Datatype t, int count) {
  sfm_type *ty = sfm_type_get(t);
  if (count < 0) return sfm_error(comm, fn, MPI_ERR_COUNT, "count %d is negative", count);
  if (ty == NULL) return sfm_error(comm, fn, MPI_ERR_TYPE, "invalid datatype %d", (int)t);
  if (!ty->committed) return sfm_error(comm, fn, MPI_ERR_TYPE, "datatype %d is not committed (MPI_Type_commit)", (int)t);
  return MPI_SUCCESS;
}

void sfm_pack(const sfm_type *t, const void *buf, int count, void *out) {
  unsigned char *o = out;
  for (int i = 0; i < count; i++) {
    const unsigned char *base = (const unsigned char *)buf + (MPI_Aint)i * t->extent;
    for (int b = 0; b < t->nblocks; b++) {
      memcpy(o, base + t->blocks[b].disp, t->blocks[b].len);
      o += t->blocks[b].len;
    }
  }
}

void sfm_unpack(const sfm_type *t, const void *in, size_t bytes, void *buf, int count) {
  const unsigned char *p = in;
  for (int i = 0; i < count && bytes > 0; i++) {
    unsigned char *base = (unsigned char *)buf + (MPI_Aint)i * t->extent;
    for (int b = 0; b < t->nblocks && bytes > 0; b++) {
      size_t n = t->blocks[b].len < bytes ? t->blocks[b].len : bytes;
      memcpy(base + t->blocks[b].disp, p, n);
      p += n;
      bytes -= n;
    }
  }
}

/* ---- building derived types ------------------------------------------------------------- */

typedef struct {
  sfm_type t;
  int cap_blocks, cap_runs;
  int have_bounds;
  MPI_Aint lb, ub;
  int homog_set;
} sfm_builder;

/* Room for entry n of an array of *cap entries (doubling, 8 at first). */
static int sfm_reserve(void **arr, int *cap, int n, size_t elem) {
  void *p;
  int nc;
  if (n < *cap) return 0;
  nc = *cap ? *cap * 2 : 8;
  p = realloc(*arr, (size_t)nc * elem);
  if (p == NULL) return -1;
  *arr = p;
  *cap = nc;
  return 0;
}

static int sfm_b_block(sfm_builder *b, MPI_Aint disp, size_t len) {
  sfm_type *t = &b->t;
  if (len == 0) return 0;
  if (t->nblocks > 0) {
    sfm_block *last = &t->blocks[t->nblocks - 1];
    if (last->disp + (MPI_Aint)last->len == disp) {
      last->len += len;
      return 0;
    }
  }
  if (sfm_reserve((void **)&t->blocks, &b->cap_blocks, t->nblocks, sizeof *t->blocks) < 0) return -1;
  t->blocks[t->nblocks].disp = disp;
  t->blocks[t->nblocks].len = len;
  t->nblocks++;
  return 0;
}

static int sfm_b_run(sfm_builder *b, MPI_Aint disp, int basic, size_t count, size_t esize) {
  sfm_type *t = &b->t;
  if (count == 0) return 0;
  if (!b->homog_set) {
    t->homog = basic;
    b->homog_set = 1;
  } else if (t->homog != basic) {
    t->homog = -1;
  }
  t->nbasic += count;
  if (t->nruns > 0) {
    sfm_run *last = &t->runs[t->nruns - 1];
    if (last->basic == basic && last->disp + (MPI_Aint)(last->count * esize) == disp) {
      last->count += count;
      return 0;
    }
  }
  if (sfm_reserve((void **)&t->runs, &b->cap_runs, t->nruns, sizeof *t->runs) < 0) return -1;
  t->runs[t->nruns].disp = disp;
  t->runs[t->nruns].basic = basic;
  t->runs[t->nruns].count = count;
  t->nruns++;
  return 0;
}

static size_t sfm_basic_size(int basic, const sfm_type *src, int run) {
  /* size of one element of a run: runs of a predefined type hold elements of that type */
  if (basic >= 0) return sf_dtype_size((sf_dtype)basic);
  return src->runs[run].count ? src->size / (src->nbasic ? src->nbasic : 1) : 1;
}

/* Append `count` items of `src` laid out from byte offset `off`, `stride` bytes apart. */
static int sfm_b_append(sfm_builder *b, const sfm_type *src, size_t count, MPI_Aint off, MPI_Aint stride) {
  for (size_t i = 0; i < count; i++) {
    MPI_Aint base = off + (MPI_Aint)i * stride;
    MPI_Aint lb = base + src->lb, ub = lb + src->extent;
    for (int k = 0; k < src->nblocks; k++)
      if (sfm_b_block(b, base + src->blocks[k].disp, src->blocks[k].len) < 0) return -1;
    for (int k = 0; k < src->nruns; k++) {
      size_t es = sfm_basic_size(src->runs[k].basic, src, k);
      if (sfm_b_run(b, base + src->runs[k].disp, src->runs[k].basic, src->runs[k].count, es) < 0) return -1;
    }
    b->t.size += src->size;
    if (!b->have_bounds || lb < b->lb) b->lb = lb;
    if (!b->have_bounds || ub > b->ub) b->ub = ub;
    if (!b->have_bounds || base + src->true_lb < b->t.true_lb) b->t.true_lb = base + src->true_lb;
    if (!b->have_bounds || base + src->true_ub > b->t.true_ub) b->t.true_ub = base + src->true_ub;
    b->have_bounds = 1;
  }
  return 0;
}

static int sfm_b_finish(sfm_builder *b, MPI_Datatype *out, const char *fn) {
  int i;
  sfm_type *t;
  for (i = SFM_NPREDEF + 1; i < sfm.ntypes; i++)
    if (!sfm.types[i].used) break;
  if (i >= sfm.ntypes) {
    int nn = sfm.ntypes * 2;
    sfm_type *p = realloc(sfm.types, (size_t)nn * sizeof *p);
    if (p == NULL) goto nomem;
    memset(p + sfm.ntypes, 0, (size_t)(nn - sfm.ntypes) * sizeof *p);
    sfm.types = p;
    sfm.ntypes = nn;
  }
  t = &sfm.types[i];
  *t = b->t;
  t->used = 1;
  t->predefined = 0;
  t->committed = 0;
  t->name = NULL;
  if (!b->have_bounds) {
    b->lb = b->ub = 0;
  }
  t->lb = b->lb;
  t->extent = b->ub - b->lb;
  if (!b->homog_set) t->homog = -1;
  t->contig = t->lb == 0 && (t->nblocks == 0 || (t->nblocks == 1 && t->blocks[0].disp == 0)) &&
              (MPI_Aint)t->size == t->extent;
  *out = i;
  return MPI_SUCCESS;
nomem:
  free(b->t.blocks);
  free(b->t.runs);
  return sfm_error(MPI_COMM_WORLD, fn, MPI_ERR_NO_MEM, "out of memory");
}

#define SFM_OLD(fn, old, o, count)                                                                \
  SFM_INIT_CHECK(fn);                                                                             \
  sfm_type *o = sfm_type_get(old);                                                                \
  if (o == NULL) return sfm_error(MPI_COMM_WORLD, fn, MPI_ERR_TYPE, "invalid datatype %d", (int)(old)); \
  if ((count) < 0) return sfm_error(MPI_COMM_WORLD, fn, MPI_ERR_COUNT, "count %d is negative", (int)(count)); \
  if (newtype == NULL) return sfm_error(MPI_COMM_WORLD, fn, MPI_ERR_ARG, "newtype is NULL");       \
  sfm_builder b;                                                                                  \
  memset(&b, 0, sizeof b)

#define SFM_FAIL_NOMEM(fn)                                                     \
  do {                                                                         \
    free(b.t.blocks);                                                          \
    free(b.t.runs);                                                            \
    return sfm_error(MPI_COMM_WORLD, fn, MPI_ERR_NO_MEM, "out of memory");     \
  } while (0)

int MPI_Type_contiguous(int count, MPI_Datatype old, MPI_Datatype *newtype) {
  SFM_OLD("MPI_Type_contiguous", old, o, count);
  if (sfm_b_append(&b, o, (size_t)count, 0, o->extent) < 0) SFM_FAIL_NOMEM("MPI_Type_contiguous");
  return sfm_b_finish(&b, newtype, "MPI_Type_contiguous");
}

int MPI_Type_create_hvector(int count, int blocklength, MPI_Aint stride, MPI_Datatype old, MPI_Datatype *newtype) {
  SFM_OLD("MPI_Type_create_hvector", old, o, count);
  if (blocklength < 0) return sfm_error(MPI_COMM_WORLD, "MPI_Type_create_hvector", MPI_ERR_ARG, "blocklength %d is negative", blocklength);
  for (int i = 0; i < count; i++)
    if (sfm_b_append(&b, o, (size_t)blocklength, (MPI_Aint)i * stride, o->extent) < 0) SFM_FAIL_NOMEM("MPI_Type_create_hvector");
  return sfm_b_finish(&b, newtype, "MPI_Type_create_hvector");
}

int MPI_Type_vector(int count, int blocklength, int stride, MPI_Datatype old, MPI_Datatype *newtype) {
  sfm_type *o = sfm_type_get(old);
  if (o == NULL) return sfm_error(MPI_COMM_WORLD, "MPI_Type_vector", MPI_ERR_TYPE, "invalid datatype %d", (int)old);
  return MPI_Type_create_hvector(count, blocklength, (MPI_Aint)stride * o->extent, old, newtype);
}

int MPI_Type_create_hindexed(int count, const int blocklengths[], const MPI_Aint displs[], MPI_Datatype old,
                             MPI_Datatype *newtype) {
  SFM_OLD("MPI_Type_create_hindexed", old, o, count);
  for (int i = 0; i < count; i++) {
    if (blocklengths[i] < 0) {
      free(b.t.blocks);
      free(b.t.runs);
      return sfm_error(MPI_COMM_WORLD, "MPI_Type_create_hindexed", MPI_ERR_ARG, "blocklengths[%d] = %d is negative", i, blocklengths[i]);
    }
    if (sfm_b_append(&b, o, (size_t)blocklengths[i], displs[i], o->extent) < 0) SFM_FAIL_NOMEM("MPI_Type_create_hindexed");
  }
  return sfm_b_finish(&b, newtype, "MPI_Type_create_hindexed");
}

int MPI_Type_indexed(int count, const int blocklengths[], const int displs[], MPI_Datatype old, MPI_Datatype *newtype) {
  SFM_OLD("MPI_Type_indexed", old, o, count);
  for (int i = 0; i < count; i++) {
    if (blocklengths[i] < 0) {
      free(b.t.blocks);
      free(b.t.runs);
      return sfm_error(MPI_COMM_WORLD, "MPI_Type_indexed", MPI_ERR_ARG, "blocklengths[%d] = %d is negative", i, blocklengths[i]);
    }
    if (sfm_b_append(&b, o, (size_t)blocklengths[i], (MPI_Aint)displs[i] * o->extent, o->extent) < 0)
      SFM_FAIL_NOMEM("MPI_Type_indexed");
  }
  return sfm_b_finish(&b, newtype, "MPI_Type_indexed");
}

int MPI_Type_create_indexed_block(int count, int blocklength, const int displs[], MPI_Datatype old,
                                  MPI_Datatype *newtype) {
  SFM_OLD("MPI_Type_create_indexed_block", old, o, count);
  for (int i = 0; i < count; i++)
    if (sfm_b_append(&b, o, (size_t)blocklength, (MPI_Aint)displs[i] * o->extent, o->extent) < 0)
      SFM_FAIL_NOMEM("MPI_Type_create_indexed_block");
  return sfm_b_finish(&b, newtype, "MPI_Type_create_indexed_block");
}

int MPI_Type_create_struct(int count, const int blocklengths[], const MPI_Aint displs[], const MPI_Datatype types[],
                           MPI_Datatype *newtype) {
  MPI_Aint maxalign = 1;
  SFM_OLD("MPI_Type_create_struct", MPI_BYTE, o, count);
  (void)o;
  for (int i = 0; i < count; i++) {
    sfm_type *t = sfm_type_get(types[i]);
    if (t == NULL || blocklengths[i] < 0) {
      free(b.t.blocks);
      free(b.t.runs);
      return sfm_error(MPI_COMM_WORLD, "MPI_Type_create_struct", t == NULL ? MPI_ERR_TYPE : MPI_ERR_ARG,
                       "types[%d] / blocklengths[%d] invalid", i, i);
    }
    if (sfm_b_append(&b, t, (size_t)blocklengths[i], displs[i], t->extent) < 0) SFM_FAIL_NOMEM("MPI_Type_create_struct");
    if (t->predefined && (MPI_Aint)t->size > maxalign && t->size <= 16) maxalign = (MPI_Aint)t->size;
  }
  /* Pad the extent to the alignment of the largest member, as C does for structs (MPI's
   * implementation-defined epsilon; MPICH and Open MPI do the same). */
  if (b.have_bounds) {
    if (maxalign > 8) maxalign = 8;
    MPI_Aint ext = b.ub - b.lb;
    if (ext % maxalign) b.ub += maxalign - ext % maxalign;
  }
  return sfm_b_finish(&b, newtype, "MPI_Type_create_struct");
}

int MPI_Type_create_resized(MPI_Datatype old, MPI_Aint lb, MPI_Aint extent, MPI_Datatype *newtype) {
  SFM_OLD("MPI_Type_create_resized", old, o, 1);
  if (sfm_b_append(&b, o, 1, 0, o->extent) < 0) SFM_FAIL_NOMEM("MPI_Type_create_resized");
  b.lb = lb;
  b.ub = lb + extent;
  b.have_bounds = 1;
  return sfm_b_finish(&b, newtype, "MPI_Type_create_resized");
}

int MPI_Type_dup(MPI_Datatype old, MPI_Datatype *newtype) {
  int rc;
  SFM_OLD("MPI_Type_dup", old, o, 1);
  if (sfm_b_append(&b, o, 1, 0, o->extent) < 0) SFM_FAIL_NOMEM("MPI_Type_dup");
  b.lb = o->lb;
  b.ub = o->lb + o->extent;
  rc = sfm_b_finish(&b, newtype, "MPI_Type_dup");
  if (rc == MPI_SUCCESS) sfm.types[*newtype].committed = o->committed;
  return rc;
}

int MPI_Type_commit(MPI_Datatype *t) {
  sfm_type *ty;
  SFM_INIT_CHECK("MPI_Type_commit");
  if (t == NULL || (ty = sfm_type_get(*t)) == NULL)
    return sfm_error(MPI_COMM_WORLD, "MPI_Type_commit", MPI_ERR_TYPE, "invalid datatype");
  ty->committed = 1;
  return MPI_SUCCESS;
}

int MPI_Type_free(MPI_Datatype *t) {
  sfm_type *ty;
  SFM_INIT_CHECK("MPI_Type_free");
  if (t == NULL || (ty = sfm_type_get(*t)) == NULL)
    return sfm_error(MPI_COMM_WORLD, "MPI_Type_free", MPI_ERR_TYPE, "invalid datatype");
  if (ty->predefined) return sfm_error(MPI_COMM_WORLD, "MPI_Type_free", MPI_ERR_TYPE, "cannot free predefined %s", ty->name);
  free(ty->blocks);
  free(ty->runs);
  memset(ty, 0, sizeof *ty);
  *t = MPI_DATATYPE_NULL;
  return MPI_SUCCESS;
}

int MPI_Type_size(MPI_Datatype t, int *size) {
  sfm_type *ty = sfm_type_get(t);
  if (ty == NULL || size == NULL) return sfm_error(MPI_COMM_WORLD, "MPI_Type_size", MPI_ERR_TYPE, "invalid datatype %d", (int)t);
  *size = (int)ty->size;
  return MPI_SUCCESS;
}

int MPI_Type_get_extent(MPI_Datatype t, MPI_Aint *lb, MPI_Aint *extent) {
  sfm_type *ty = sfm_type_get(t);
  if (ty == NULL) return sfm_error(MPI_COMM_WORLD, "MPI_Type_get_extent", MPI_ERR_TYPE, "invalid datatype %d", (int)t);
  if (lb) *lb = ty->lb;
  if (extent) *extent = ty->extent;
  return MPI_SUCCESS;
}

int MPI_Type_get_true_extent(MPI_Datatype t, MPI_Aint *lb, MPI_Aint *extent) {
  sfm_type *ty = sfm_type_get(t);
  if (ty == NULL) return sfm_error(MPI_COMM_WORLD, "MPI_Type_get_true_extent", MPI_ERR_TYPE, "invalid datatype %d", (int)t);
  if (lb) *lb = ty->true_lb;
  if (extent) *extent = ty->true_ub - ty->true_lb;
  return MPI_SUCCESS;
}

int MPI_Get_address(const void *location, MPI_Aint *address) {
  if (address) *address = (MPI_Aint)location;
  return MPI_SUCCESS;
}

int MPI_Get_count(const MPI_Status *st, MPI_Datatype t, int *count) {
  sfm_type *ty = sfm_type_get(t);
  if (st == NULL || count == NULL || ty == NULL)
    return sfm_error(MPI_COMM_WORLD, "MPI_Get_count", ty == NULL ? MPI_ERR_TYPE : MPI_ERR_ARG, "invalid argument");
  if (ty->size == 0)
    *count = 0;
  else if ((size_t)st->sf_count % ty->size)
    *count = MPI_UNDEFINED;
  else
    *count = (int)((size_t)st->sf_count / ty->size);
  return MPI_SUCCESS;
}

int MPI_Get_elements(const MPI_Status *st, MPI_Datatype t, int *count) {
  sfm_type *ty = sfm_type_get(t);
  size_t bytes, full, n;
  if (st == NULL || count == NULL || ty == NULL)
    return sfm_error(MPI_COMM_WORLD, "MPI_Get_elements", ty == NULL ? MPI_ERR_TYPE : MPI_ERR_ARG, "invalid argument");
  bytes = (size_t)st->sf_count;
  if (ty->size == 0) {
    *count = 0;
    return MPI_SUCCESS;
  }
  full = bytes / ty->size;
  bytes -= full * ty->size;
  n = full * ty->nbasic;
  for (int k = 0; k < ty->nruns && bytes > 0; k++) {
    size_t es = ty->runs[k].basic >= 0 ? sf_dtype_size((sf_dtype)ty->runs[k].basic) : ty->size / ty->nbasic;
    for (size_t j = 0; j < ty->runs[k].count && bytes >= es; j++) {
      n++;
      bytes -= es;
    }
    if (bytes > 0 && bytes < es) break;
  }
  *count = bytes ? MPI_UNDEFINED : (int)n;
  return MPI_SUCCESS;
}

int MPI_Pack_size(int incount, MPI_Datatype t, MPI_Comm comm, int *size) {
  sfm_type *ty = sfm_type_get(t);
  (void)comm;
  if (ty == NULL || size == NULL || incount < 0)
    return sfm_error(MPI_COMM_WORLD, "MPI_Pack_size", MPI_ERR_TYPE, "invalid datatype or count");
  *size = (int)(ty->size * (size_t)incount);
  return MPI_SUCCESS;
}

int MPI_Pack(const void *inbuf, int incount, MPI_Datatype t, void *outbuf, int outsize, int *position, MPI_Comm comm) {
  sfm_type *ty = sfm_type_get(t);
  size_t need;
  if (sfm_type_check(comm, "MPI_Pack", t, incount) != MPI_SUCCESS) return MPI_ERR_TYPE;
  need = ty->size * (size_t)incount;
  if (position == NULL || *position < 0 || (size_t)*position + need > (size_t)outsize)
    return sfm_error(comm, "MPI_Pack", MPI_ERR_TRUNCATE, "%zu bytes do not fit in the %d-byte buffer at position %d", need,
                     outsize, position ? *position : -1);
  sfm_pack(ty, inbuf, incount, (char *)outbuf + *position);
  *position += (int)need;
  return MPI_SUCCESS;
}

int MPI_Unpack(const void *inbuf, int insize, int *position, void *outbuf, int outcount, MPI_Datatype t, MPI_Comm comm) {
  sfm_type *ty = sfm_type_get(t);
  size_t need;
  if (sfm_type_check(comm, "MPI_Unpack", t, outcount) != MPI_SUCCESS) return MPI_ERR_TYPE;
  need = ty->size * (size_t)outcount;
  if (position == NULL || *position < 0 || (size_t)*position + need > (size_t)insize)
    return sfm_error(comm, "MPI_Unpack", MPI_ERR_TRUNCATE, "%zu bytes are not in the %d-byte buffer at position %d", need,
                     insize, position ? *position : -1);
  sfm_unpack(ty, (const char *)inbuf + *position, need, outbuf, outcount);
  *position += (int)need;
  return MPI_SUCCESS;
}
