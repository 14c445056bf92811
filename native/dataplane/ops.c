/*
 * ops.c: predefined reduction operations on predefined element types.
 *
 * Semantics follow MPI: arithmetic ops (MAX MIN SUM PROD) on integer and floating types,
 * logical ops (LAND LOR LXOR) on integers and bool, bitwise ops (BAND BOR BXOR) on integers and
 * bytes, MAXLOC/MINLOC on the value-index pair types (ties keep the lower index).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "internal.h"

#include <stdbool.h>
#include <string.h>
#include <wchar.h>

typedef struct { float v; int i; } sf__float_int;
typedef struct { double v; int i; } sf__double_int;
typedef struct { long v; int i; } sf__long_int;
typedef struct { int v; int i; } sf__2int;
typedef struct { short v; int i; } sf__short_int;
typedef struct { long double v; int i; } sf__ldouble_int;

static const size_t sf__sizes[SF_DTYPE_COUNT] = {
  sizeof(char), sizeof(signed char), sizeof(unsigned char), sizeof(short), sizeof(unsigned short),
  sizeof(int), sizeof(unsigned), sizeof(long), sizeof(unsigned long), sizeof(long long),
  sizeof(unsigned long long), sizeof(float), sizeof(double), sizeof(long double), 1, 1, 2, 2, 4, 4,
  8, 8, sizeof(bool), 1, sizeof(wchar_t),
  sizeof(sf__float_int), sizeof(sf__double_int), sizeof(sf__long_int), sizeof(sf__2int),
  sizeof(sf__short_int), sizeof(sf__ldouble_int),
};

static const char *const sf__op_names[SF_OP_COUNT] = {
  "MAX", "MIN", "SUM", "PROD", "LAND", "BAND", "LOR", "BOR", "LXOR", "BXOR", "MAXLOC", "MINLOC", "REPLACE", "NO_OP",
};

size_t sf_dtype_size(sf_dtype t) { return (unsigned)t < SF_DTYPE_COUNT ? sf__sizes[t] : 0; }

static int sf__is_pair(sf_dtype t) { return t >= SF_FLOAT_INT && t <= SF_LDOUBLE_INT; }
static int sf__is_float(sf_dtype t) { return t == SF_FLOAT || t == SF_DOUBLE || t == SF_LDOUBLE; }

int sf_op_valid(sf_op op, sf_dtype t) {
  if ((unsigned)op >= SF_OP_COUNT || (unsigned)t >= SF_DTYPE_COUNT) return 0;
  if (op == SF_OP_REPLACE || op == SF_OP_NO_OP) return 1;
  if (op == SF_OP_MAXLOC || op == SF_OP_MINLOC) return sf__is_pair(t);
  if (sf__is_pair(t)) return 0;
  switch (op) {
  case SF_OP_MAX: case SF_OP_MIN: return t != SF_BOOL && t != SF_BYTE;
  case SF_OP_SUM: case SF_OP_PROD: return t != SF_BOOL && t != SF_BYTE;
  case SF_OP_LAND: case SF_OP_LOR: case SF_OP_LXOR: return !sf__is_float(t) && t != SF_BYTE;
  case SF_OP_BAND: case SF_OP_BOR: case SF_OP_BXOR: return !sf__is_float(t) && t != SF_BOOL;
  default: return 0;
  }
}

#define SF__ARITH(T)                                                                        \
  do {                                                                                      \
    const T *a = in;                                                                        \
    T *b = inout;                                                                           \
    switch (op) {                                                                           \
    case SF_OP_MAX: for (size_t i = 0; i < n; i++) if (a[i] > b[i]) b[i] = a[i]; break;     \
    case SF_OP_MIN: for (size_t i = 0; i < n; i++) if (a[i] < b[i]) b[i] = a[i]; break;     \
    case SF_OP_SUM: for (size_t i = 0; i < n; i++) b[i] = (T)(a[i] + b[i]); break;          \
    case SF_OP_PROD: for (size_t i = 0; i < n; i++) b[i] = (T)(a[i] * b[i]); break;         \
    case SF_OP_LAND: for (size_t i = 0; i < n; i++) b[i] = (T)(a[i] && b[i]); break;        \
    case SF_OP_LOR: for (size_t i = 0; i < n; i++) b[i] = (T)(a[i] || b[i]); break;         \
    case SF_OP_LXOR: for (size_t i = 0; i < n; i++) b[i] = (T)(!a[i] != !b[i]); break;      \
    default: return -1;                                                                     \
    }                                                                                       \
  } while (0)

#define SF__INT(T)                                                                          \
  do {                                                                                      \
    if (op == SF_OP_BAND || op == SF_OP_BOR || op == SF_OP_BXOR) {                          \
      const T *a = in;                                                                      \
      T *b = inout;                                                                         \
      if (op == SF_OP_BAND) for (size_t i = 0; i < n; i++) b[i] = (T)(a[i] & b[i]);         \
      if (op == SF_OP_BOR) for (size_t i = 0; i < n; i++) b[i] = (T)(a[i] | b[i]);          \
      if (op == SF_OP_BXOR) for (size_t i = 0; i < n; i++) b[i] = (T)(a[i] ^ b[i]);         \
    } else {                                                                                \
      SF__ARITH(T);                                                                         \
    }                                                                                       \
  } while (0)

/* MAXLOC/MINLOC: `in` is from lower ranks; ties keep the lower index (MPI). */
#define SF__LOC(T)                                                                          \
  do {                                                                                      \
    const T *a = in;                                                                        \
    T *b = inout;                                                                           \
    for (size_t i = 0; i < n; i++) {                                                        \
      int better = op == SF_OP_MAXLOC ? a[i].v > b[i].v : a[i].v < b[i].v;                  \
      if (better) b[i] = a[i];                                                              \
      else if (a[i].v == b[i].v && a[i].i < b[i].i) b[i].i = a[i].i;                        \
    }                                                                                       \
  } while (0)

static int sf__apply(sf_op op, sf_dtype t, const void *in, void *inout, size_t n) {
  switch (t) {
  case SF_CHAR: SF__INT(char); break;
  case SF_SCHAR: SF__INT(signed char); break;
  case SF_UCHAR: SF__INT(unsigned char); break;
  case SF_SHORT: SF__INT(short); break;
  case SF_USHORT: SF__INT(unsigned short); break;
  case SF_INT: SF__INT(int); break;
  case SF_UINT: SF__INT(unsigned); break;
  case SF_LONG: SF__INT(long); break;
  case SF_ULONG: SF__INT(unsigned long); break;
  case SF_LLONG: SF__INT(long long); break;
  case SF_ULLONG: SF__INT(unsigned long long); break;
  case SF_FLOAT: SF__ARITH(float); break;
  case SF_DOUBLE: SF__ARITH(double); break;
  case SF_LDOUBLE: SF__ARITH(long double); break;
  case SF_INT8: SF__INT(int8_t); break;
  case SF_UINT8: case SF_BYTE: SF__INT(uint8_t); break;
  case SF_INT16: SF__INT(int16_t); break;
  case SF_UINT16: SF__INT(uint16_t); break;
  case SF_INT32: SF__INT(int32_t); break;
  case SF_UINT32: SF__INT(uint32_t); break;
  case SF_INT64: SF__INT(int64_t); break;
  case SF_UINT64: SF__INT(uint64_t); break;
  case SF_BOOL: {
    const bool *a = in;
    bool *b = inout;
    switch (op) {
    case SF_OP_LAND: for (size_t i = 0; i < n; i++) b[i] = a[i] && b[i]; break;
    case SF_OP_LOR: for (size_t i = 0; i < n; i++) b[i] = a[i] || b[i]; break;
    case SF_OP_LXOR: for (size_t i = 0; i < n; i++) b[i] = a[i] != b[i]; break;
    default: return -1;
    }
    break;
  }
  case SF_WCHAR: SF__INT(wchar_t); break;
  case SF_FLOAT_INT: SF__LOC(sf__float_int); break;
  case SF_DOUBLE_INT: SF__LOC(sf__double_int); break;
  case SF_LONG_INT: SF__LOC(sf__long_int); break;
  case SF_2INT: SF__LOC(sf__2int); break;
  case SF_SHORT_INT: SF__LOC(sf__short_int); break;
  case SF_LDOUBLE_INT: SF__LOC(sf__ldouble_int); break;
  default: return -1;
  }
  return 0;
}

int sf_op_apply(sf_op op, sf_dtype t, const void *in, void *inout, size_t count) {
  if (!sf_op_valid(op, t))
    return sf__err(SF_EINVAL, "operation %s is not defined on type %d",
                   (unsigned)op < SF_OP_COUNT ? sf__op_names[op] : "?", (int)t);
  if (op == SF_OP_NO_OP) return 0;
  if (op == SF_OP_REPLACE) {
    /* inout = in? No: MPI_REPLACE keeps the later (higher-rank) value, which is inout. */
    return 0;
  }
  if (sf__apply(op, t, in, inout, count) < 0)
    return sf__err(SF_EINVAL, "operation %s is not defined on type %d", sf__op_names[op], (int)t);
  return 0;
}

int sf_builtin_combine(const void *in, void *inout, size_t nbytes, void *arg) {
  const sf_builtin_arg *a = arg;
  size_t es;
  if (a == NULL) return sf__err(SF_EINVAL, "sf_builtin_combine: arg is NULL");
  es = sf_dtype_size(a->type);
  if (es == 0 || nbytes % es != 0)
    return sf__err(SF_EINVAL, "sf_builtin_combine: %zu bytes is not a whole number of elements of type %d", nbytes,
                   (int)a->type);
  return sf_op_apply(a->op, a->type, in, inout, nbytes / es);
}
