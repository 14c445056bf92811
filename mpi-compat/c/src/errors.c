/*
 * errors.c: error codes with detail, classes and strings, and error handlers: the objects
 * (MPI_Comm_create_errhandler ...) and their application to a failing call (sfm_error).
 *
 * A returned code is `class | slot << 8`: the slot holds the call's one-line message (naming the
 * faulty argument), which MPI_Error_string appends to the class name. Slots 1..SFM_NSLOTS are a
 * ring of recent messages; codes made by MPI_Add_error_code use slots from SFM_USER_SLOT on,
 * whose strings stay. Classes 128..255 are the program's (MPI_Add_error_class).
 *
 * Every communicator, window and file has an error handler; a failing call applies the handler
 * of the object it was called on (communicators and windows default to MPI_ERRORS_ARE_FATAL,
 * files to MPI_ERRORS_RETURN, as MPI says).
 */
#include "sfmpi.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- error codes with detail -------------------------------------------------------------- */

#define SFM_NSLOTS 64
#define SFM_USER_SLOT 1024 /* first slot of MPI_Add_error_code's codes */
#define SFM_USER_CLASS 128 /* first class of MPI_Add_error_class */
static char sfm_msgs[SFM_NSLOTS][MPI_MAX_ERROR_STRING];
static int sfm_msg_next;

/* Classes and codes the program added: their strings (NULL until MPI_Add_error_string). */
static char *sfm_uclass_str[256 - SFM_USER_CLASS];
static int sfm_nuclass;
static struct { int cls; char *str; } *sfm_ucodes;
static int sfm_nucodes, sfm_capucodes;

static const char *sfm_class_name(int cls) {
  switch (cls) {
  case MPI_SUCCESS: return "MPI_SUCCESS: no error";
  case MPI_ERR_BUFFER: return "MPI_ERR_BUFFER: invalid buffer";
  case MPI_ERR_COUNT: return "MPI_ERR_COUNT: invalid count";
  case MPI_ERR_TYPE: return "MPI_ERR_TYPE: invalid datatype";
  case MPI_ERR_TAG: return "MPI_ERR_TAG: invalid tag";
  case MPI_ERR_COMM: return "MPI_ERR_COMM: invalid communicator";
  case MPI_ERR_RANK: return "MPI_ERR_RANK: invalid rank";
  case MPI_ERR_REQUEST: return "MPI_ERR_REQUEST: invalid request";
  case MPI_ERR_ROOT: return "MPI_ERR_ROOT: invalid root";
  case MPI_ERR_GROUP: return "MPI_ERR_GROUP: invalid group";
  case MPI_ERR_OP: return "MPI_ERR_OP: invalid operation";
  case MPI_ERR_TOPOLOGY: return "MPI_ERR_TOPOLOGY: invalid topology";
  case MPI_ERR_DIMS: return "MPI_ERR_DIMS: invalid dimensions";
  case MPI_ERR_ARG: return "MPI_ERR_ARG: invalid argument";
  case MPI_ERR_UNKNOWN: return "MPI_ERR_UNKNOWN: unknown error";
  case MPI_ERR_TRUNCATE: return "MPI_ERR_TRUNCATE: message truncated";
  case MPI_ERR_OTHER: return "MPI_ERR_OTHER: other error";
  case MPI_ERR_INTERN: return "MPI_ERR_INTERN: internal error";
  case MPI_ERR_IN_STATUS: return "MPI_ERR_IN_STATUS: error code in status";
  case MPI_ERR_PENDING: return "MPI_ERR_PENDING: pending request";
  case MPI_ERR_ACCESS: return "MPI_ERR_ACCESS: permission denied";
  case MPI_ERR_AMODE: return "MPI_ERR_AMODE: invalid access mode";
  case MPI_ERR_BAD_FILE: return "MPI_ERR_BAD_FILE: invalid file name";
  case MPI_ERR_CONVERSION: return "MPI_ERR_CONVERSION: data conversion failed";
  case MPI_ERR_DUP_DATAREP: return "MPI_ERR_DUP_DATAREP: data representation already defined";
  case MPI_ERR_FILE_EXISTS: return "MPI_ERR_FILE_EXISTS: file exists";
  case MPI_ERR_FILE_IN_USE: return "MPI_ERR_FILE_IN_USE: file in use";
  case MPI_ERR_FILE: return "MPI_ERR_FILE: invalid file handle";
  case MPI_ERR_INFO: return "MPI_ERR_INFO: invalid info object";
  case MPI_ERR_INFO_KEY: return "MPI_ERR_INFO_KEY: invalid info key";
  case MPI_ERR_INFO_VALUE: return "MPI_ERR_INFO_VALUE: invalid info value";
  case MPI_ERR_INFO_NOKEY: return "MPI_ERR_INFO_NOKEY: no such info key";
  case MPI_ERR_IO: return "MPI_ERR_IO: input/output error";
  case MPI_ERR_NAME: return "MPI_ERR_NAME: invalid name";
  case MPI_ERR_NO_MEM: return "MPI_ERR_NO_MEM: out of memory";
  case MPI_ERR_NOT_SAME: return "MPI_ERR_NOT_SAME: arguments differ between ranks";
  case MPI_ERR_NO_SPACE: return "MPI_ERR_NO_SPACE: no space left";
  case MPI_ERR_NO_SUCH_FILE: return "MPI_ERR_NO_SUCH_FILE: no such file";
  case MPI_ERR_PORT: return "MPI_ERR_PORT: invalid port";
  case MPI_ERR_QUOTA: return "MPI_ERR_QUOTA: quota exceeded";
  case MPI_ERR_READ_ONLY: return "MPI_ERR_READ_ONLY: read-only file or file system";
  case MPI_ERR_SERVICE: return "MPI_ERR_SERVICE: invalid service";
  case MPI_ERR_SPAWN: return "MPI_ERR_SPAWN: spawn failed";
  case MPI_ERR_UNSUPPORTED_DATAREP: return "MPI_ERR_UNSUPPORTED_DATAREP: data representation not supported";
  case MPI_ERR_WIN: return "MPI_ERR_WIN: invalid window";
  case MPI_ERR_BASE: return "MPI_ERR_BASE: invalid base address";
  case MPI_ERR_LOCKTYPE: return "MPI_ERR_LOCKTYPE: invalid lock type";
  case MPI_ERR_KEYVAL: return "MPI_ERR_KEYVAL: invalid attribute key";
  case MPI_ERR_RMA_CONFLICT: return "MPI_ERR_RMA_CONFLICT: conflicting one-sided accesses";
  case MPI_ERR_RMA_SYNC: return "MPI_ERR_RMA_SYNC: one-sided call outside an access epoch";
  case MPI_ERR_SIZE: return "MPI_ERR_SIZE: invalid size";
  case MPI_ERR_UNSUPPORTED_OPERATION: return "MPI_ERR_UNSUPPORTED_OPERATION: not supported by sfmpi";
  case MPI_ERR_DISP: return "MPI_ERR_DISP: invalid displacement";
  case MPI_ERR_ASSERT: return "MPI_ERR_ASSERT: invalid assertion";
  case MPI_ERR_RMA_RANGE: return "MPI_ERR_RMA_RANGE: target memory outside the window";
  case MPI_ERR_RMA_ATTACH: return "MPI_ERR_RMA_ATTACH: memory cannot be attached";
  case MPI_ERR_RMA_SHARED: return "MPI_ERR_RMA_SHARED: memory cannot be shared";
  case MPI_ERR_RMA_FLAVOR: return "MPI_ERR_RMA_FLAVOR: wrong window flavor";
  case MPI_ERR_PROC_FAILED: return "MPI_ERR_PROC_FAILED: a peer rank died";
  case MPI_ERR_TIMEOUT: return "MPI_ERR_TIMEOUT: wait timed out";
  case MPI_ERR_ABORTED: return "MPI_ERR_ABORTED: the job was aborted";
  default:
    if (cls >= SFM_USER_CLASS && cls < SFM_USER_CLASS + sfm_nuclass)
      return sfm_uclass_str[cls - SFM_USER_CLASS] ? sfm_uclass_str[cls - SFM_USER_CLASS] : "";
    return NULL;
  }
}

int MPI_Error_class(int code, int *cls) {
  if (cls == NULL) return MPI_ERR_ARG;
  *cls = code <= 0 ? code : (code & 0xff);
  return MPI_SUCCESS;
}

int MPI_Error_string(int code, char *s, int *len) {
  int cls = code <= 0 ? code : (code & 0xff), slot = code > 0 ? (code >> 8) - 1 : -1;
  const char *name = sfm_class_name(cls);
  if (s == NULL || len == NULL) return MPI_ERR_ARG;
  if (name == NULL) {
    *len = snprintf(s, MPI_MAX_ERROR_STRING, "unknown error code %d", code);
    return MPI_ERR_ARG;
  }
  if (slot >= SFM_USER_SLOT - 1 && slot - (SFM_USER_SLOT - 1) < sfm_nucodes)
    *len = snprintf(s, MPI_MAX_ERROR_STRING, "%s", sfm_ucodes[slot - (SFM_USER_SLOT - 1)].str
                                                       ? sfm_ucodes[slot - (SFM_USER_SLOT - 1)].str : name);
  else if (slot >= 0 && slot < SFM_NSLOTS && sfm_msgs[slot][0])
    *len = snprintf(s, MPI_MAX_ERROR_STRING, "%s (%s)", name, sfm_msgs[slot]);
  else
    *len = snprintf(s, MPI_MAX_ERROR_STRING, "%s", name);
  if (*len >= MPI_MAX_ERROR_STRING) *len = MPI_MAX_ERROR_STRING - 1;
  return MPI_SUCCESS;
}

int MPI_Add_error_class(int *errorclass) {
  SFM_INIT_CHECK("MPI_Add_error_class");
  if (errorclass == NULL) return sfm_error(MPI_COMM_WORLD, "MPI_Add_error_class", MPI_ERR_ARG, "errorclass is NULL");
  if (sfm_nuclass >= 256 - SFM_USER_CLASS)
    return sfm_error(MPI_COMM_WORLD, "MPI_Add_error_class", MPI_ERR_OTHER, "all %d user error classes are in use",
                     256 - SFM_USER_CLASS);
  *errorclass = SFM_USER_CLASS + sfm_nuclass++;
  return MPI_SUCCESS;
}

int MPI_Add_error_code(int errorclass, int *errorcode) {
  SFM_INIT_CHECK("MPI_Add_error_code");
  if (errorcode == NULL || errorclass < SFM_USER_CLASS || errorclass >= SFM_USER_CLASS + sfm_nuclass)
    return sfm_error(MPI_COMM_WORLD, "MPI_Add_error_code", MPI_ERR_ARG,
                     "errorclass %d is not a class made by MPI_Add_error_class", errorclass);
  if (sfm_nucodes == sfm_capucodes) {
    int nc = sfm_capucodes ? sfm_capucodes * 2 : 16;
    void *p = realloc(sfm_ucodes, (size_t)nc * sizeof *sfm_ucodes);
    if (p == NULL) return sfm_error(MPI_COMM_WORLD, "MPI_Add_error_code", MPI_ERR_NO_MEM, "out of memory");
    sfm_ucodes = p;
    sfm_capucodes = nc;
  }
  sfm_ucodes[sfm_nucodes].cls = errorclass;
  sfm_ucodes[sfm_nucodes].str = NULL;
  *errorcode = errorclass | ((SFM_USER_SLOT + sfm_nucodes) << 8);
  sfm_nucodes++;
  return MPI_SUCCESS;
}

int MPI_Add_error_string(int errorcode, const char *string) {
  int cls = errorcode & 0xff, slot = (errorcode >> 8) - SFM_USER_SLOT;
  char **where = NULL, *copy;
  SFM_INIT_CHECK("MPI_Add_error_string");
  if (string == NULL) return sfm_error(MPI_COMM_WORLD, "MPI_Add_error_string", MPI_ERR_ARG, "string is NULL");
  if (errorcode > 0 && (errorcode >> 8) == 0 && cls >= SFM_USER_CLASS && cls < SFM_USER_CLASS + sfm_nuclass)
    where = &sfm_uclass_str[cls - SFM_USER_CLASS];
  else if (errorcode > 0 && slot >= 0 && slot < sfm_nucodes)
    where = &sfm_ucodes[slot].str;
  if (where == NULL)
    return sfm_error(MPI_COMM_WORLD, "MPI_Add_error_string", MPI_ERR_ARG,
                     "%d is not an error class or code made by MPI_Add_error_class/code", errorcode);
  copy = strdup(string);
  if (copy == NULL) return sfm_error(MPI_COMM_WORLD, "MPI_Add_error_string", MPI_ERR_NO_MEM, "out of memory");
  free(*where);
  *where = copy;
  return MPI_SUCCESS;
}

/* The largest class the program may see (the MPI_LASTUSEDCODE attribute). */
int sfm_last_used_code(void) { return sfm_nuclass ? SFM_USER_CLASS + sfm_nuclass - 1 : MPI_ERR_LASTCODE; }

static int sfm_store(int cls, const char *msg) {
  int slot = sfm_msg_next;
  sfm_msg_next = (sfm_msg_next + 1) % SFM_NSLOTS;
  snprintf(sfm_msgs[slot], sizeof sfm_msgs[slot], "%s", msg);
  return cls | ((slot + 1) << 8);
}

/* ---- applying an object's error handler ---------------------------------------------------- */

/* Where the error handler of object (kind, handle) is kept, or NULL for an invalid handle. */
static MPI_Errhandler *sfm_errh_slot(int kind, int handle) {
  switch (kind) {
  case SFM_OBJ_COMM: {
    sfm_comm *c = sfm_comm_get(handle);
    return c ? &c->errh : NULL;
  }
  case SFM_OBJ_WIN: return sfm_win_errh(handle);
  case SFM_OBJ_FILE: return sfm_file_errh(handle);
  default: return NULL;
  }
}

static int sfm_apply_errh(int kind, int handle, int code, const char *msg) {
  MPI_Errhandler *slot = sfm_errh_slot(kind, handle), eh;
  if (slot == NULL && kind == SFM_OBJ_FILE && handle == MPI_FILE_NULL) slot = sfm_file_errh(MPI_FILE_NULL);
  if (slot == NULL) { /* an invalid handle: MPI_COMM_WORLD's handler decides */
    kind = SFM_OBJ_COMM;
    handle = MPI_COMM_WORLD;
    slot = sfm_errh_slot(kind, handle);
  }
  eh = slot ? *slot : MPI_ERRORS_ARE_FATAL;
  if (eh == MPI_ERRORS_RETURN) return code;
  if (eh > MPI_ERRORS_ABORT && eh < sfm.nerrhs && sfm.errhs[eh].used) {
    int h = handle;
    switch (kind) {
    case SFM_OBJ_WIN: ((MPI_Win_errhandler_function *)sfm.errhs[eh].fn)(&h, &code); break;
    case SFM_OBJ_FILE: ((MPI_File_errhandler_function *)sfm.errhs[eh].fn)(&h, &code); break;
    default: ((MPI_Comm_errhandler_function *)sfm.errhs[eh].fn)(&h, &code); break;
    }
    return code;
  }
  sfm_fatal(code, msg);
}

static const char *sfm_code_msg(int code) {
  int slot = code > 0 ? (code >> 8) - 1 : -1;
  return slot >= 0 && slot < SFM_NSLOTS ? sfm_msgs[slot] : "error";
}

int sfm_error_on(int kind, int handle, const char *fn, int cls, const char *fmt, ...) {
  char body[MPI_MAX_ERROR_STRING - 64], msg[MPI_MAX_ERROR_STRING];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(body, sizeof body, fmt, ap);
  va_end(ap);
  snprintf(msg, sizeof msg, "%s: %s", fn, body);
  return sfm_apply_errh(kind, handle, sfm_store(cls, msg), msg);
}

int sfm_class_of(int rc) {
  switch (rc) {
  case SF_ETIMEDOUT: return MPI_ERR_TIMEOUT;
  case SF_EPEERDIED: return MPI_ERR_PROC_FAILED;
  case SF_EABORTED: return MPI_ERR_ABORTED;
  case SF_ETRUNCATE: return MPI_ERR_TRUNCATE;
  case SF_ENOMEM: return MPI_ERR_NO_MEM;
  case SF_EPROTO: return MPI_ERR_INTERN;
  case SF_ERANGE: case SF_EINVAL: return MPI_ERR_ARG;
  case SF_EMISMATCH: return MPI_ERR_OTHER;
  default: return MPI_ERR_OTHER;
  }
}

int sfm_dp_code(const char *fn, int rc) {
  const char *m = sf_last_error();
  char msg[MPI_MAX_ERROR_STRING];
  if (strncmp(m, fn, strlen(fn)) == 0)
    snprintf(msg, sizeof msg, "%s", m);
  else
    snprintf(msg, sizeof msg, "%s: %s", fn, m);
  return sfm_store(sfm_class_of(rc), msg);
}

int sfm_raise_on(int kind, int handle, int code) {
  if (code == MPI_SUCCESS) return code;
  return sfm_apply_errh(kind, handle, code, sfm_code_msg(code));
}

int sfm_raise(MPI_Comm comm, int code) { return sfm_raise_on(SFM_OBJ_COMM, comm, code); }

int sfm_dp_error(MPI_Comm comm, const char *fn, int rc) { return sfm_raise(comm, sfm_dp_code(fn, rc)); }

int sfm_code(int cls, const char *fmt, ...) {
  char msg[MPI_MAX_ERROR_STRING];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return sfm_store(cls, msg);
}

/* ---- error handler objects ------------------------------------------------------------------ */

static const char *const sfm_obj_fn[][4] = {
  /* set, get, create, call */
  {"MPI_Comm_set_errhandler", "MPI_Comm_get_errhandler", "MPI_Comm_create_errhandler", "MPI_Comm_call_errhandler"},
  {"MPI_Win_set_errhandler", "MPI_Win_get_errhandler", "MPI_Win_create_errhandler", "MPI_Win_call_errhandler"},
  {"MPI_File_set_errhandler", "MPI_File_get_errhandler", "MPI_File_create_errhandler", "MPI_File_call_errhandler"},
};
static int sfm_obj_row(int kind) { return kind == SFM_OBJ_WIN ? 1 : kind == SFM_OBJ_FILE ? 2 : 0; }
static const char *sfm_obj_word(int kind) {
  return kind == SFM_OBJ_WIN ? "window" : kind == SFM_OBJ_FILE ? "file" : "communicator";
}

static int sfm_errh_set(int kind, int handle, MPI_Errhandler eh) {
  const char *fn = sfm_obj_fn[sfm_obj_row(kind)][0];
  MPI_Errhandler *slot;
  SFM_INIT_CHECK(fn);
  slot = sfm_errh_slot(kind, handle);
  if (slot == NULL && !(kind == SFM_OBJ_FILE && handle == MPI_FILE_NULL))
    return sfm_error_on(kind, handle, fn, kind == SFM_OBJ_WIN ? MPI_ERR_WIN : kind == SFM_OBJ_FILE ? MPI_ERR_FILE : MPI_ERR_COMM,
                        "invalid %s %d", sfm_obj_word(kind), handle);
  if (slot == NULL) slot = sfm_file_errh(MPI_FILE_NULL); /* the default for files opened later */
  if (eh <= 0 || eh >= sfm.nerrhs || !sfm.errhs[eh].used)
    return sfm_error_on(kind, handle, fn, MPI_ERR_ARG, "invalid error handler %d", eh);
  if (sfm.errhs[eh].kind && sfm.errhs[eh].kind != kind)
    return sfm_error_on(kind, handle, fn, MPI_ERR_ARG, "error handler %d was made for a %s, not a %s", eh,
                        sfm_obj_word(sfm.errhs[eh].kind), sfm_obj_word(kind));
  *slot = eh;
  return MPI_SUCCESS;
}

static int sfm_errh_get(int kind, int handle, MPI_Errhandler *eh) {
  const char *fn = sfm_obj_fn[sfm_obj_row(kind)][1];
  MPI_Errhandler *slot;
  SFM_INIT_CHECK(fn);
  slot = sfm_errh_slot(kind, handle);
  if (slot == NULL && kind == SFM_OBJ_FILE && handle == MPI_FILE_NULL) slot = sfm_file_errh(MPI_FILE_NULL);
  if (slot == NULL)
    return sfm_error_on(kind, handle, fn, kind == SFM_OBJ_WIN ? MPI_ERR_WIN : kind == SFM_OBJ_FILE ? MPI_ERR_FILE : MPI_ERR_COMM,
                        "invalid %s %d", sfm_obj_word(kind), handle);
  if (eh) *eh = *slot;
  return MPI_SUCCESS;
}

static int sfm_errh_create(int kind, void (*fn)(void), MPI_Errhandler *eh) {
  const char *name = sfm_obj_fn[sfm_obj_row(kind)][2];
  int i;
  SFM_INIT_CHECK(name);
  if (fn == NULL || eh == NULL) return sfm_error(MPI_COMM_WORLD, name, MPI_ERR_ARG, "NULL argument");
  for (i = 4; i < sfm.nerrhs; i++)
    if (!sfm.errhs[i].used) break;
  if (i >= sfm.nerrhs && sfm_grow((void **)&sfm.errhs, &sfm.nerrhs, sizeof *sfm.errhs) < 0)
    return sfm_error(MPI_COMM_WORLD, name, MPI_ERR_NO_MEM, "out of memory");
  sfm.errhs[i].used = 1;
  sfm.errhs[i].kind = kind;
  sfm.errhs[i].fn = fn;
  *eh = i;
  return MPI_SUCCESS;
}

/* MPI_*_call_errhandler: the handler runs; MPI_ERRORS_ARE_FATAL ends the job. */
static int sfm_errh_call(int kind, int handle, int code) {
  const char *fn = sfm_obj_fn[sfm_obj_row(kind)][3];
  char msg[MPI_MAX_ERROR_STRING];
  int len;
  MPI_Errhandler *slot;
  SFM_INIT_CHECK(fn);
  slot = sfm_errh_slot(kind, handle);
  if (slot == NULL)
    return sfm_error_on(kind, handle, fn, kind == SFM_OBJ_WIN ? MPI_ERR_WIN : kind == SFM_OBJ_FILE ? MPI_ERR_FILE : MPI_ERR_COMM,
                        "invalid %s %d", sfm_obj_word(kind), handle);
  MPI_Error_string(code, msg, &len);
  if (*slot == MPI_ERRORS_RETURN) return MPI_SUCCESS;
  sfm_apply_errh(kind, handle, code, msg);
  return MPI_SUCCESS;
}

int MPI_Comm_set_errhandler(MPI_Comm comm, MPI_Errhandler eh) { return sfm_errh_set(SFM_OBJ_COMM, comm, eh); }
int MPI_Comm_get_errhandler(MPI_Comm comm, MPI_Errhandler *eh) { return sfm_errh_get(SFM_OBJ_COMM, comm, eh); }
int MPI_Comm_create_errhandler(MPI_Comm_errhandler_function *fn, MPI_Errhandler *eh) {
  return sfm_errh_create(SFM_OBJ_COMM, (void (*)(void))fn, eh);
}
int MPI_Comm_call_errhandler(MPI_Comm comm, int code) { return sfm_errh_call(SFM_OBJ_COMM, comm, code); }
int MPI_Win_set_errhandler(MPI_Win win, MPI_Errhandler eh) { return sfm_errh_set(SFM_OBJ_WIN, win, eh); }
int MPI_Win_get_errhandler(MPI_Win win, MPI_Errhandler *eh) { return sfm_errh_get(SFM_OBJ_WIN, win, eh); }
int MPI_Win_create_errhandler(MPI_Win_errhandler_function *fn, MPI_Errhandler *eh) {
  return sfm_errh_create(SFM_OBJ_WIN, (void (*)(void))fn, eh);
}
int MPI_Win_call_errhandler(MPI_Win win, int code) { return sfm_errh_call(SFM_OBJ_WIN, win, code); }
int MPI_File_set_errhandler(MPI_File file, MPI_Errhandler eh) { return sfm_errh_set(SFM_OBJ_FILE, file, eh); }
int MPI_File_get_errhandler(MPI_File file, MPI_Errhandler *eh) { return sfm_errh_get(SFM_OBJ_FILE, file, eh); }
int MPI_File_create_errhandler(MPI_File_errhandler_function *fn, MPI_Errhandler *eh) {
  return sfm_errh_create(SFM_OBJ_FILE, (void (*)(void))fn, eh);
}
int MPI_File_call_errhandler(MPI_File file, int code) { return sfm_errh_call(SFM_OBJ_FILE, file, code); }

int MPI_Errhandler_free(MPI_Errhandler *eh) {
  if (eh == NULL) return MPI_ERR_ARG;
  if (*eh > MPI_ERRORS_ABORT && *eh < sfm.nerrhs) sfm.errhs[*eh].used = 0;
  *eh = MPI_ERRHANDLER_NULL;
  return MPI_SUCCESS;
}
