/*
 * attr.c: attribute caching on communicators, datatypes and windows (keyvals, set/get/delete,
 * the copy callbacks run by MPI_Comm_dup/MPI_Type_dup, the delete callbacks run by frees), the
 * MPI-1 forms (MPI_Keyval_create, MPI_Attr_get...), and the predefined attributes.
 *
 * Keyvals 1..31 are the predefined ones (mpi.h); the program's start at SFM_KEYVAL_FIRST. A
 * keyval freed by the program stays valid for the objects that still carry it (MPI 6.7.2).
 */
#include "sfmpi.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SFM_KEYVAL_FIRST 32

static const char *sfm_kind_name(int kind) {
  return kind == SFM_OBJ_TYPE ? "datatype" : kind == SFM_OBJ_WIN ? "window" : "communicator";
}

static sfm_keyval *sfm_keyval_get(int keyval, int kind) {
  if (keyval < SFM_KEYVAL_FIRST || keyval >= sfm.nkeyvals || !sfm.keyvals[keyval].used) return NULL;
  if (sfm.keyvals[keyval].kind != kind) return NULL;
  return &sfm.keyvals[keyval];
}

static void sfm_keyval_unref(int keyval) {
  if (keyval >= SFM_KEYVAL_FIRST && keyval < sfm.nkeyvals && --sfm.keyvals[keyval].refs <= 0)
    memset(&sfm.keyvals[keyval], 0, sizeof sfm.keyvals[keyval]);
}

static int sfm_keyval_create(int kind, void (*copy_fn)(void), void (*delete_fn)(void), int *keyval, void *extra,
                             const char *fn) {
  int i;
  SFM_INIT_CHECK(fn);
  if (keyval == NULL) return sfm_error(MPI_COMM_WORLD, fn, MPI_ERR_ARG, "keyval is NULL");
  while (sfm.nkeyvals < SFM_KEYVAL_FIRST)
    if (sfm_grow((void **)&sfm.keyvals, &sfm.nkeyvals, sizeof *sfm.keyvals) < 0)
      return sfm_error(MPI_COMM_WORLD, fn, MPI_ERR_NO_MEM, "out of memory");
  for (i = SFM_KEYVAL_FIRST; i < sfm.nkeyvals; i++)
    if (!sfm.keyvals[i].used) break;
  if (i >= sfm.nkeyvals && sfm_grow((void **)&sfm.keyvals, &sfm.nkeyvals, sizeof *sfm.keyvals) < 0)
    return sfm_error(MPI_COMM_WORLD, fn, MPI_ERR_NO_MEM, "out of memory");
  sfm.keyvals[i].used = 1;
  sfm.keyvals[i].kind = kind;
  sfm.keyvals[i].refs = 1;
  sfm.keyvals[i].copy_fn = copy_fn;
  sfm.keyvals[i].delete_fn = delete_fn;
  sfm.keyvals[i].extra = extra;
  *keyval = i;
  return MPI_SUCCESS;
}

static int sfm_keyval_free(int kind, int *keyval, const char *fn) {
  SFM_INIT_CHECK(fn);
  if (keyval == NULL || sfm_keyval_get(*keyval, kind) == NULL)
    return sfm_error(MPI_COMM_WORLD, fn, MPI_ERR_KEYVAL, "invalid %s keyval %d", sfm_kind_name(kind), keyval ? *keyval : -1);
  sfm_keyval_unref(*keyval);
  *keyval = MPI_KEYVAL_INVALID;
  return MPI_SUCCESS;
}

/* The program's delete callback for (kind, handle, keyval, value); its MPI code. */
static int sfm_call_delete(int kind, int handle, int keyval, void *val) {
  sfm_keyval *k = &sfm.keyvals[keyval];
  if (k->delete_fn == NULL) return MPI_SUCCESS;
  switch (kind) {
  case SFM_OBJ_TYPE: return ((MPI_Type_delete_attr_function *)k->delete_fn)(handle, keyval, val, k->extra);
  case SFM_OBJ_WIN: return ((MPI_Win_delete_attr_function *)k->delete_fn)(handle, keyval, val, k->extra);
  default: return ((MPI_Comm_delete_attr_function *)k->delete_fn)(handle, keyval, val, k->extra);
  }
}

static int sfm_call_copy(int kind, int handle, int keyval, void *in, void **out, int *flag) {
  sfm_keyval *k = &sfm.keyvals[keyval];
  *flag = 0;
  if (k->copy_fn == NULL) return MPI_SUCCESS; /* MPI_*_NULL_COPY_FN: not copied */
  switch (kind) {
  case SFM_OBJ_TYPE: return ((MPI_Type_copy_attr_function *)k->copy_fn)(handle, keyval, k->extra, in, out, flag);
  case SFM_OBJ_WIN: return ((MPI_Win_copy_attr_function *)k->copy_fn)(handle, keyval, k->extra, in, out, flag);
  default: return ((MPI_Comm_copy_attr_function *)k->copy_fn)(handle, keyval, k->extra, in, out, flag);
  }
}

int sfmpi_attr_dup_fn(int handle, int keyval, void *extra_state, void *in, void *out, int *flag) {
  (void)handle;
  (void)keyval;
  (void)extra_state;
  *(void **)out = in;
  *flag = 1;
  return MPI_SUCCESS;
}

/* An object's attribute table lives in the object, which can move when its table grows:
 * every call below finds it again through sfm_attrs_of after running a callback. */
static sfm_attrs *sfm_attrs_of(int kind, int handle) {
  switch (kind) {
  case SFM_OBJ_COMM: {
    sfm_comm *c = sfm_comm_get(handle);
    return c ? &c->attrs : NULL;
  }
  case SFM_OBJ_TYPE: {
    sfm_type *t = sfm_type_get(handle);
    return t ? &t->attrs : NULL;
  }
  case SFM_OBJ_WIN: return sfm_win_attrs(handle);
  default: return NULL;
  }
}

static int sfm_attr_find(const sfm_attrs *a, int keyval) {
  for (int i = 0; i < a->n; i++)
    if (a->a[i].keyval == keyval) return i;
  return -1;
}

static int sfm_attr_store(sfm_attrs *a, int keyval, void *val) {
  int i = sfm_attr_find(a, keyval);
  if (i >= 0) {
    a->a[i].val = val;
    return 0;
  }
  if (a->n == a->cap) {
    int nc = a->cap ? a->cap * 2 : 4;
    sfm_attr *p = realloc(a->a, (size_t)nc * sizeof *p);
    if (p == NULL) return -1;
    a->a = p;
    a->cap = nc;
  }
  a->a[a->n].keyval = keyval;
  a->a[a->n].val = val;
  a->n++;
  sfm.keyvals[keyval].refs++;
  return 0;
}

static void sfm_attr_remove(sfm_attrs *a, int i) {
  int keyval = a->a[i].keyval;
  a->a[i] = a->a[--a->n];
  sfm_keyval_unref(keyval);
}

/* Copy the attributes of (kind, from) to `to` through their copy callbacks (MPI_Comm_dup,
 * MPI_Type_dup). Returns an MPI class, not raised. */
int sfm_attrs_copy(int kind, int from, int to, sfm_attrs *src, sfm_attrs *dst) {
  int n = src->n;
  sfm_attr *copy;
  (void)dst;
  if (n == 0) return MPI_SUCCESS;
  copy = malloc((size_t)n * sizeof *copy);
  if (copy == NULL) return MPI_ERR_NO_MEM;
  memcpy(copy, src->a, (size_t)n * sizeof *copy);
  for (int i = 0; i < n; i++) {
    void *out = NULL;
    int flag = 0, rc = sfm_call_copy(kind, from, copy[i].keyval, copy[i].val, &out, &flag);
    if (rc != MPI_SUCCESS) {
      free(copy);
      return rc & 0xff ? rc & 0xff : MPI_ERR_OTHER;
    }
    if (flag) {
      sfm_attrs *d = sfm_attrs_of(kind, to);
      if (d == NULL || sfm_attr_store(d, copy[i].keyval, out) < 0) {
        free(copy);
        return MPI_ERR_NO_MEM;
      }
    }
  }
  free(copy);
  return MPI_SUCCESS;
}

/* Delete every attribute of (kind, handle) through its delete callback (a free). */
int sfm_attrs_clear(int kind, int handle, sfm_attrs *a) {
  int rc = MPI_SUCCESS;
  while (a && a->n > 0) {
    int keyval = a->a[a->n - 1].keyval, r;
    void *val = a->a[a->n - 1].val;
    r = sfm_call_delete(kind, handle, keyval, val);
    if (r != MPI_SUCCESS && rc == MPI_SUCCESS) rc = r & 0xff ? r & 0xff : MPI_ERR_OTHER;
    a = sfm_attrs_of(kind, handle);
    if (a == NULL) break;
    int i = sfm_attr_find(a, keyval);
    if (i >= 0) sfm_attr_remove(a, i);
  }
  a = sfm_attrs_of(kind, handle);
  if (a) {
    free(a->a);
    memset(a, 0, sizeof *a);
  }
  return rc;
}

static int sfm_attr_set(int kind, int handle, int keyval, void *val, const char *fn) {
  sfm_attrs *a;
  int i;
  SFM_INIT_CHECK(fn);
  a = sfm_attrs_of(kind, handle);
  if (a == NULL) return sfm_error(MPI_COMM_WORLD, fn, kind == SFM_OBJ_TYPE ? MPI_ERR_TYPE : kind == SFM_OBJ_WIN ? MPI_ERR_WIN : MPI_ERR_COMM,
                                  "invalid %s %d", sfm_kind_name(kind), handle);
  if (sfm_keyval_get(keyval, kind) == NULL)
    return sfm_error_on(kind == SFM_OBJ_TYPE ? SFM_OBJ_COMM : kind, kind == SFM_OBJ_TYPE ? MPI_COMM_WORLD : handle, fn,
                        MPI_ERR_KEYVAL, "keyval %d is not a %s keyval made by the program", keyval, sfm_kind_name(kind));
  i = sfm_attr_find(a, keyval);
  if (i >= 0) { /* replacing: the old value is deleted first */
    int rc = sfm_call_delete(kind, handle, keyval, a->a[i].val);
    if (rc != MPI_SUCCESS) return sfm_error(MPI_COMM_WORLD, fn, rc & 0xff, "the delete callback of keyval %d failed", keyval);
    a = sfm_attrs_of(kind, handle);
  }
  if (sfm_attr_store(a, keyval, val) < 0) return sfm_error(MPI_COMM_WORLD, fn, MPI_ERR_NO_MEM, "out of memory");
  return MPI_SUCCESS;
}

static int sfm_attr_delete(int kind, int handle, int keyval, const char *fn) {
  sfm_attrs *a;
  int i, rc;
  SFM_INIT_CHECK(fn);
  a = sfm_attrs_of(kind, handle);
  if (a == NULL) return sfm_error(MPI_COMM_WORLD, fn, MPI_ERR_ARG, "invalid %s %d", sfm_kind_name(kind), handle);
  if (keyval < SFM_KEYVAL_FIRST || keyval >= sfm.nkeyvals || (i = sfm_attr_find(a, keyval)) < 0)
    return sfm_error(MPI_COMM_WORLD, fn, MPI_ERR_KEYVAL, "keyval %d has no value on %s %d", keyval, sfm_kind_name(kind), handle);
  rc = sfm_call_delete(kind, handle, keyval, a->a[i].val);
  if (rc != MPI_SUCCESS) return sfm_error(MPI_COMM_WORLD, fn, rc & 0xff, "the delete callback of keyval %d failed", keyval);
  a = sfm_attrs_of(kind, handle);
  i = sfm_attr_find(a, keyval);
  if (i >= 0) sfm_attr_remove(a, i);
  return MPI_SUCCESS;
}

/* The predefined attributes of communicators: values live in statics, the caller gets a
 * pointer to them (MPI 8.1.2). */
static int sfm_comm_predef(int keyval, void *val) {
  static int tag_ub = SF_TAG_MAX, host = MPI_PROC_NULL, io, wtime_global = 1, universe, appnum = 0, lastcode;
  universe = sfm.size;
  io = sfm.rank;
  lastcode = sfm_last_used_code();
  switch (keyval) {
  case MPI_TAG_UB: *(int **)val = &tag_ub; return 1;
  case MPI_HOST: *(int **)val = &host; return 1;
  case MPI_IO: *(int **)val = &io; return 1;
  case MPI_WTIME_IS_GLOBAL: *(int **)val = &wtime_global; return 1; /* one host: one clock */
  case MPI_UNIVERSE_SIZE: *(int **)val = &universe; return 1;
  case MPI_APPNUM: *(int **)val = &appnum; return 1;
  case MPI_LASTUSEDCODE: *(int **)val = &lastcode; return 1;
  default: return 0;
  }
}

static int sfm_attr_get(int kind, int handle, int keyval, void *val, int *flag, const char *fn) {
  sfm_attrs *a;
  int i;
  SFM_INIT_CHECK(fn);
  a = sfm_attrs_of(kind, handle);
  if (a == NULL) return sfm_error(MPI_COMM_WORLD, fn, kind == SFM_OBJ_TYPE ? MPI_ERR_TYPE : kind == SFM_OBJ_WIN ? MPI_ERR_WIN : MPI_ERR_COMM,
                                  "invalid %s %d", sfm_kind_name(kind), handle);
  if (val == NULL || flag == NULL) return sfm_error(MPI_COMM_WORLD, fn, MPI_ERR_ARG, "NULL argument");
  *flag = 0;
  if (keyval < SFM_KEYVAL_FIRST) {
    if (kind == SFM_OBJ_COMM) *flag = sfm_comm_predef(keyval, val);
    if (kind == SFM_OBJ_WIN) *flag = sfm_win_predef(handle, keyval, val);
    return MPI_SUCCESS;
  }
  if (keyval >= sfm.nkeyvals || !sfm.keyvals[keyval].used || sfm.keyvals[keyval].kind != kind)
    return sfm_error(MPI_COMM_WORLD, fn, MPI_ERR_KEYVAL, "invalid %s keyval %d", sfm_kind_name(kind), keyval);
  i = sfm_attr_find(a, keyval);
  if (i >= 0) {
    *(void **)val = a->a[i].val;
    *flag = 1;
  }
  return MPI_SUCCESS;
}

int MPI_Comm_create_keyval(MPI_Comm_copy_attr_function *copy_fn, MPI_Comm_delete_attr_function *delete_fn, int *keyval,
                           void *extra) {
  return sfm_keyval_create(SFM_OBJ_COMM, (void (*)(void))copy_fn, (void (*)(void))delete_fn, keyval, extra,
                           "MPI_Comm_create_keyval");
}
int MPI_Comm_free_keyval(int *keyval) { return sfm_keyval_free(SFM_OBJ_COMM, keyval, "MPI_Comm_free_keyval"); }
int MPI_Comm_set_attr(MPI_Comm comm, int keyval, void *val) {
  return sfm_attr_set(SFM_OBJ_COMM, comm, keyval, val, "MPI_Comm_set_attr");
}
int MPI_Comm_get_attr(MPI_Comm comm, int keyval, void *val, int *flag) {
  return sfm_attr_get(SFM_OBJ_COMM, comm, keyval, val, flag, "MPI_Comm_get_attr");
}
int MPI_Comm_delete_attr(MPI_Comm comm, int keyval) {
  return sfm_attr_delete(SFM_OBJ_COMM, comm, keyval, "MPI_Comm_delete_attr");
}
int MPI_Type_create_keyval(MPI_Type_copy_attr_function *copy_fn, MPI_Type_delete_attr_function *delete_fn, int *keyval,
                           void *extra) {
  return sfm_keyval_create(SFM_OBJ_TYPE, (void (*)(void))copy_fn, (void (*)(void))delete_fn, keyval, extra,
                           "MPI_Type_create_keyval");
}
int MPI_Type_free_keyval(int *keyval) { return sfm_keyval_free(SFM_OBJ_TYPE, keyval, "MPI_Type_free_keyval"); }
int MPI_Type_set_attr(MPI_Datatype t, int keyval, void *val) {
  return sfm_attr_set(SFM_OBJ_TYPE, t, keyval, val, "MPI_Type_set_attr");
}
int MPI_Type_get_attr(MPI_Datatype t, int keyval, void *val, int *flag) {
  return sfm_attr_get(SFM_OBJ_TYPE, t, keyval, val, flag, "MPI_Type_get_attr");
}
int MPI_Type_delete_attr(MPI_Datatype t, int keyval) {
  return sfm_attr_delete(SFM_OBJ_TYPE, t, keyval, "MPI_Type_delete_attr");
}
int MPI_Win_create_keyval(MPI_Win_copy_attr_function *copy_fn, MPI_Win_delete_attr_function *delete_fn, int *keyval,
                          void *extra) {
  return sfm_keyval_create(SFM_OBJ_WIN, (void (*)(void))copy_fn, (void (*)(void))delete_fn, keyval, extra,
                           "MPI_Win_create_keyval");
}
int MPI_Win_free_keyval(int *keyval) { return sfm_keyval_free(SFM_OBJ_WIN, keyval, "MPI_Win_free_keyval"); }
int MPI_Win_set_attr(MPI_Win win, int keyval, void *val) { return sfm_attr_set(SFM_OBJ_WIN, win, keyval, val, "MPI_Win_set_attr"); }
int MPI_Win_get_attr(MPI_Win win, int keyval, void *val, int *flag) {
  return sfm_attr_get(SFM_OBJ_WIN, win, keyval, val, flag, "MPI_Win_get_attr");
}
int MPI_Win_delete_attr(MPI_Win win, int keyval) { return sfm_attr_delete(SFM_OBJ_WIN, win, keyval, "MPI_Win_delete_attr"); }

/* MPI-1 forms (deprecated, still in MPI-3.1): the communicator ones under older names. */
int MPI_Keyval_create(MPI_Copy_function *copy_fn, MPI_Delete_function *delete_fn, int *keyval, void *extra) {
  return sfm_keyval_create(SFM_OBJ_COMM, (void (*)(void))copy_fn, (void (*)(void))delete_fn, keyval, extra,
                           "MPI_Keyval_create");
}
int MPI_Keyval_free(int *keyval) { return sfm_keyval_free(SFM_OBJ_COMM, keyval, "MPI_Keyval_free"); }
int MPI_Attr_put(MPI_Comm comm, int keyval, void *val) { return sfm_attr_set(SFM_OBJ_COMM, comm, keyval, val, "MPI_Attr_put"); }
int MPI_Attr_get(MPI_Comm comm, int keyval, void *val, int *flag) {
  return sfm_attr_get(SFM_OBJ_COMM, comm, keyval, val, flag, "MPI_Attr_get");
}
int MPI_Attr_delete(MPI_Comm comm, int keyval) { return sfm_attr_delete(SFM_OBJ_COMM, comm, keyval, "MPI_Attr_delete"); }
