/*
 * datatype.c: the datatype table (predefined types, references), pack/unpack, queries,
 * MPI_Get_count/Get_elements and the status setters.
 *
 * A derived type is flattened when it is built (typector.c): byte blocks (merged when adjacent)
 * drive pack/unpack, and basic-element runs drive reductions and MPI_Get_elements. A type whose
 * one block covers its whole extent from 0 is "contiguous" and is sent in place, without packing.
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
  {MPI_C_LONG_DOUBLE_COMPLEX, "MPI_C_LONG_DOUBLE_COMPLEX", sizeof(long double _Complex), -4},
  {MPI_CXX_BOOL, "MPI_CXX_BOOL", sizeof(bool), SF_BOOL}, /* C++'s bool: one byte, as C's on every ABI we build for */
  {MPI_CXX_FLOAT_COMPLEX, "MPI_CXX_FLOAT_COMPLEX", sizeof(float _Complex), -2},
  {MPI_CXX_DOUBLE_COMPLEX, "MPI_CXX_DOUBLE_COMPLEX", sizeof(double _Complex), -3},
  {MPI_CXX_LONG_DOUBLE_COMPLEX, "MPI_CXX_LONG_DOUBLE_COMPLEX", sizeof(long double _Complex), -4},
};
#define SFM_NPREDEF ((int)(sizeof sfm_predef / sizeof sfm_predef[0]))

sfm_type *sfm_type_get(MPI_Datatype t) {
  if (t <= 0 || t >= sfm.ntypes || !sfm.types[t].used) return NULL;
  return &sfm.types[t];
}

const char *sfm_type_name(MPI_Datatype t) {
  sfm_type *ty = sfm_type_get(t);
  return ty && ty->name[0] ? ty->name : "derived datatype";
}

/* A free slot for a new derived type (growing the table), or -1 when out of memory. */
int sfm_type_slot(void) {
  int i;
  for (i = SFM_NPREDEF + 1; i < sfm.ntypes; i++)
    if (!sfm.types[i].used) break;
  if (i >= sfm.ntypes) {
    int nn = sfm.ntypes * 2;
    sfm_type *p = realloc(sfm.types, (size_t)nn * sizeof *p);
    if (p == NULL) return -1;
    memset(p + sfm.ntypes, 0, (size_t)(nn - sfm.ntypes) * sizeof *p);
    sfm.types = p;
    sfm.ntypes = nn;
  }
  return i;
}

/* Pending operations hold a reference, so MPI_Type_free of a type in use (which MPI allows)
 * keeps it, and its slot, until the last of them completes. */
void sfm_type_ref(MPI_Datatype t) {
  sfm_type *ty = sfm_type_get(t);
  if (ty && !ty->predefined) ty->refs++;
}

static void sfm_type_release(sfm_type *ty) {
  free(ty->blocks);
  free(ty->runs);
  memset(ty, 0, sizeof *ty);
}

void sfm_type_unref(MPI_Datatype t) {
  sfm_type *ty = sfm_type_get(t);
  if (ty == NULL || ty->predefined) return;
  if (--ty->refs <= 0 && ty->freed) sfm_type_release(ty);
}

int sfm_types_init(void) {
  int n = 64;
  sfm.types = calloc((size_t)n, sizeof *sfm.types);
  if (sfm.types == NULL) return -1;
  sfm.ntypes = n;
  for (int i = 0; i < SFM_NPREDEF; i++) {
    sfm_type *t = &sfm.types[sfm_predef[i].h];
    t->used = t->predefined = t->committed = 1;
    snprintf(t->name, sizeof t->name, "%s", sfm_predef[i].name);
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
  if (t == NULL || (ty = sfm_type_get(*t)) == NULL || ty->freed)
    return sfm_error(MPI_COMM_WORLD, "MPI_Type_free", MPI_ERR_TYPE, "invalid datatype");
  if (ty->predefined) return sfm_error(MPI_COMM_WORLD, "MPI_Type_free", MPI_ERR_TYPE, "cannot free predefined %s", ty->name);
  sfm_attrs_clear(SFM_OBJ_TYPE, *t, &sfm_type_get(*t)->attrs);
  ty = sfm_type_get(*t);
  ty->freed = 1;
  if (ty->refs <= 0) sfm_type_release(ty);
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

int MPI_Type_set_name(MPI_Datatype t, const char *name) {
  sfm_type *ty = sfm_type_get(t);
  if (ty == NULL || name == NULL) return sfm_error(MPI_COMM_WORLD, "MPI_Type_set_name", MPI_ERR_TYPE, "invalid datatype %d or NULL name", (int)t);
  snprintf(ty->name, sizeof ty->name, "%s", name);
  return MPI_SUCCESS;
}

int MPI_Type_get_name(MPI_Datatype t, char *name, int *len) {
  sfm_type *ty = sfm_type_get(t);
  if (ty == NULL || name == NULL || len == NULL)
    return sfm_error(MPI_COMM_WORLD, "MPI_Type_get_name", MPI_ERR_TYPE, "invalid datatype %d or NULL argument", (int)t);
  *len = snprintf(name, MPI_MAX_OBJECT_NAME, "%s", ty->name);
  return MPI_SUCCESS;
}

int MPI_Type_size_x(MPI_Datatype t, MPI_Count *size) {
  sfm_type *ty = sfm_type_get(t);
  if (ty == NULL || size == NULL) return sfm_error(MPI_COMM_WORLD, "MPI_Type_size_x", MPI_ERR_TYPE, "invalid datatype %d", (int)t);
  *size = (MPI_Count)ty->size;
  return MPI_SUCCESS;
}

int MPI_Type_get_extent_x(MPI_Datatype t, MPI_Count *lb, MPI_Count *extent) {
  MPI_Aint l, e;
  int rc = MPI_Type_get_extent(t, &l, &e);
  if (rc != MPI_SUCCESS) return rc;
  if (lb) *lb = l;
  if (extent) *extent = e;
  return MPI_SUCCESS;
}

int MPI_Type_get_true_extent_x(MPI_Datatype t, MPI_Count *lb, MPI_Count *extent) {
  MPI_Aint l, e;
  int rc = MPI_Type_get_true_extent(t, &l, &e);
  if (rc != MPI_SUCCESS) return rc;
  if (lb) *lb = l;
  if (extent) *extent = e;
  return MPI_SUCCESS;
}

MPI_Aint MPI_Aint_add(MPI_Aint base, MPI_Aint disp) { return (MPI_Aint)((char *)base + disp); }
MPI_Aint MPI_Aint_diff(MPI_Aint a, MPI_Aint b) { return (MPI_Aint)((char *)a - (char *)b); }

int MPI_Get_elements_x(const MPI_Status *st, MPI_Datatype t, MPI_Count *count) {
  int n, rc = MPI_Get_elements(st, t, &n);
  if (rc == MPI_SUCCESS && count) *count = n;
  return rc;
}

/* The bytes a status must hold for MPI_Get_elements(t) to say `count`: whole items, then the
 * remaining basic elements in the type's order. */
static long long sfm_elements_bytes(const sfm_type *ty, MPI_Count count) {
  long long bytes, rem;
  if (ty->nbasic == 0) return 0;
  bytes = (long long)(count / (MPI_Count)ty->nbasic) * (long long)ty->size;
  rem = count % (MPI_Count)ty->nbasic;
  for (int k = 0; k < ty->nruns && rem > 0; k++) {
    size_t es = ty->runs[k].basic >= 0 ? sf_dtype_size((sf_dtype)ty->runs[k].basic) : ty->size / ty->nbasic;
    long long take = rem < (long long)ty->runs[k].count ? rem : (long long)ty->runs[k].count;
    bytes += take * (long long)es;
    rem -= take;
  }
  return bytes;
}

int MPI_Status_set_elements_x(MPI_Status *st, MPI_Datatype t, MPI_Count count) {
  sfm_type *ty = sfm_type_get(t);
  if (st == NULL || ty == NULL || count < 0)
    return sfm_error(MPI_COMM_WORLD, "MPI_Status_set_elements", MPI_ERR_ARG, "invalid status, datatype %d or count %lld",
                     (int)t, (long long)count);
  st->sf_count = sfm_elements_bytes(ty, count);
  return MPI_SUCCESS;
}

int MPI_Status_set_elements(MPI_Status *st, MPI_Datatype t, int count) { return MPI_Status_set_elements_x(st, t, count); }

int MPI_Status_set_cancelled(MPI_Status *st, int flag) {
  if (st == NULL) return sfm_error(MPI_COMM_WORLD, "MPI_Status_set_cancelled", MPI_ERR_ARG, "status is NULL");
  st->sf_cancelled = flag != 0;
  return MPI_SUCCESS;
}
