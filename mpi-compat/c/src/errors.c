/*
 * errors.c: error codes with detail, classes and strings, and error handlers: the objects
 * (MPI_Comm_create_errhandler ...) and their application to a failing call (sfm_error).
 *
 * A returned code is `class | slot << 8`: the slot holds the call's one-line message (naming the
 * faulty argument), which MPI_Error_string appends to the class name.
 */
#include "sfmpi.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* ---- error codes with detail -------------------------------------------------------------- */

#define SFM_NSLOTS 64
static char sfm_msgs[SFM_NSLOTS][MPI_MAX_ERROR_STRING];
static int sfm_msg_next;

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
  case MPI_ERR_ARG: return "MPI_ERR_ARG: invalid argument";
  case MPI_ERR_UNKNOWN: return "MPI_ERR_UNKNOWN: unknown error";
  case MPI_ERR_TRUNCATE: return "MPI_ERR_TRUNCATE: message truncated";
  case MPI_ERR_OTHER: return "MPI_ERR_OTHER: other error";
  case MPI_ERR_INTERN: return "MPI_ERR_INTERN: internal error";
  case MPI_ERR_IN_STATUS: return "MPI_ERR_IN_STATUS: error code in status";
  case MPI_ERR_PENDING: return "MPI_ERR_PENDING: pending request";
  case MPI_ERR_NO_MEM: return "MPI_ERR_NO_MEM: out of memory";
  case MPI_ERR_UNSUPPORTED_OPERATION: return "MPI_ERR_UNSUPPORTED_OPERATION: not supported by sfmpi";
  case MPI_ERR_PROC_FAILED: return "MPI_ERR_PROC_FAILED: a peer rank died";
  case MPI_ERR_TIMEOUT: return "MPI_ERR_TIMEOUT: wait timed out";
  case MPI_ERR_ABORTED: return "MPI_ERR_ABORTED: the job was aborted";
  default: return NULL;
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
  if (slot >= 0 && slot < SFM_NSLOTS && sfm_msgs[slot][0])
    *len = snprintf(s, MPI_MAX_ERROR_STRING, "%s (%s)", name, sfm_msgs[slot]);
  else
    *len = snprintf(s, MPI_MAX_ERROR_STRING, "%s", name);
  if (*len >= MPI_MAX_ERROR_STRING) *len = MPI_MAX_ERROR_STRING - 1;
  return MPI_SUCCESS;
}

static int sfm_store(int cls, const char *msg) {
  int slot = sfm_msg_next;
  sfm_msg_next = (sfm_msg_next + 1) % SFM_NSLOTS;
  snprintf(sfm_msgs[slot], sizeof sfm_msgs[slot], "%s", msg);
  return cls | ((slot + 1) << 8);
}

static int sfm_apply_errh(MPI_Comm comm, int code, const char *msg) {
  sfm_comm *c = sfm_comm_get(comm);
  MPI_Errhandler eh;
  if (c == NULL) c = sfm_comm_get(MPI_COMM_WORLD);
  eh = c ? c->errh : MPI_ERRORS_ARE_FATAL;
  if (eh == MPI_ERRORS_RETURN) return code;
  if (eh > MPI_ERRORS_ABORT && eh < sfm.nerrhs && sfm.errhs[eh].used) {
    MPI_Comm cc = c ? comm : MPI_COMM_WORLD;
    sfm.errhs[eh].fn(&cc, &code);
    return code;
  }
  sfm_fatal(code, msg);
}

int sfm_error(MPI_Comm comm, const char *fn, int cls, const char *fmt, ...) {
  char body[MPI_MAX_ERROR_STRING - 64], msg[MPI_MAX_ERROR_STRING];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(body, sizeof body, fmt, ap);
  va_end(ap);
  snprintf(msg, sizeof msg, "%s: %s", fn, body);
  return sfm_apply_errh(comm, sfm_store(cls, msg), msg);
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

int sfm_raise(MPI_Comm comm, int code) {
  int slot = code > 0 ? (code >> 8) - 1 : -1;
  const char *msg = slot >= 0 && slot < SFM_NSLOTS ? sfm_msgs[slot] : "error";
  if (code == MPI_SUCCESS) return code;
  return sfm_apply_errh(comm, code, msg);
}

int sfm_dp_error(MPI_Comm comm, const char *fn, int rc) { return sfm_raise(comm, sfm_dp_code(fn, rc)); }

int sfm_code(int cls, const char *fmt, ...) {
  char msg[MPI_MAX_ERROR_STRING];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return sfm_store(cls, msg);
}

/* ---- error handlers ---------------------------------------------------------------------- */

int MPI_Comm_set_errhandler(MPI_Comm comm, MPI_Errhandler eh) {
  SFM_COMM("MPI_Comm_set_errhandler", comm, c);
  if (eh <= 0 || eh >= sfm.nerrhs || !sfm.errhs[eh].used)
    return sfm_error(comm, "MPI_Comm_set_errhandler", MPI_ERR_ARG, "invalid error handler %d", eh);
  c->errh = eh;
  return MPI_SUCCESS;
}

int MPI_Comm_get_errhandler(MPI_Comm comm, MPI_Errhandler *eh) {
  SFM_COMM("MPI_Comm_get_errhandler", comm, c);
  if (eh) *eh = c->errh;
  return MPI_SUCCESS;
}

int MPI_Comm_create_errhandler(MPI_Comm_errhandler_function *fn, MPI_Errhandler *eh) {
  int i;
  SFM_INIT_CHECK("MPI_Comm_create_errhandler");
  if (fn == NULL || eh == NULL) return sfm_error(MPI_COMM_WORLD, "MPI_Comm_create_errhandler", MPI_ERR_ARG, "NULL argument");
  for (i = 4; i < sfm.nerrhs; i++)
    if (!sfm.errhs[i].used) break;
  if (i >= sfm.nerrhs && sfm_grow((void **)&sfm.errhs, &sfm.nerrhs, sizeof *sfm.errhs) < 0)
    return sfm_error(MPI_COMM_WORLD, "MPI_Comm_create_errhandler", MPI_ERR_NO_MEM, "out of memory");
  sfm.errhs[i].used = 1;
  sfm.errhs[i].fn = fn;
  *eh = i;
  return MPI_SUCCESS;
}

int MPI_Errhandler_free(MPI_Errhandler *eh) {
  if (eh == NULL) return MPI_ERR_ARG;
  if (*eh > MPI_ERRORS_ABORT && *eh < sfm.nerrhs) sfm.errhs[*eh].used = 0;
  *eh = MPI_ERRHANDLER_NULL;
  return MPI_SUCCESS;
}

int MPI_Comm_call_errhandler(MPI_Comm comm, int code) {
  char msg[MPI_MAX_ERROR_STRING];
  int len;
  SFM_COMM("MPI_Comm_call_errhandler", comm, c);
  MPI_Error_string(code, msg, &len);
  if (c->errh == MPI_ERRORS_RETURN) return MPI_SUCCESS;
  if (c->errh > MPI_ERRORS_ABORT) {
    sfm.errhs[c->errh].fn(&comm, &code);
    return MPI_SUCCESS;
  }
  sfm_fatal(code, msg);
}
