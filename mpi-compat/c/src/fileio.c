/*
 * fileio.c: MPI-IO data access: file views (MPI_File_set_view with derived etypes and
 * filetypes), reads and writes at explicit offsets and at the individual file pointer (each
 * also as _all and as the i- forms), the ordered forms (shared file pointer), seeks, positions.
 *
 * A view is the filetype tiled from disp: tile k starts at disp + k * extent(filetype), and
 * the data a rank sees is the filetype's blocks in typemap order, tile after tile, counted in
 * etypes. An access maps its range of that data stream onto file byte runs and reads or writes
 * each with pread/pwrite; data in memory of a non-contiguous type goes through a packed buffer.
 *
 * Collective (_all) accesses are independent accesses here: every rank's file descriptor sees
 * the others' writes at once on one host, so there is nothing to aggregate. The non-blocking
 * forms do their access at once and return a completed request (allowed: MPI makes no promise
 * about when the transfer happens). In atomic mode (MPI_File_set_atomicity) each access holds
 * an fcntl lock on its byte range, so concurrent accesses are each seen whole.
 */
#include "file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- views -------------------------------------------------------------------------------------- */

int MPI_File_set_view(MPI_File fh, MPI_Offset disp, MPI_Datatype etype, MPI_Datatype filetype, const char *datarep,
                      MPI_Info info) {
  const char *fn = "MPI_File_set_view";
  sfm_type *e, *t;
  SFM_FILE(fn, fh, f);
  if (datarep == NULL || strcmp(datarep, "native") != 0)
    return sfm_ferror(f, fn, MPI_ERR_UNSUPPORTED_DATAREP, "data representation \"%s\": only \"native\" is supported",
                      datarep ? datarep : "(null)");
  if (disp == MPI_DISPLACEMENT_CURRENT)
    return sfm_ferror(f, fn, MPI_ERR_ARG, "MPI_DISPLACEMENT_CURRENT is for files opened with MPI_MODE_SEQUENTIAL");
  if (disp < 0) return sfm_ferror(f, fn, MPI_ERR_ARG, "disp %lld is negative", (long long)disp);
  e = sfm_type_get(etype);
  t = sfm_type_get(filetype);
  if (e == NULL || !e->committed || t == NULL || !t->committed)
    return sfm_ferror(f, fn, MPI_ERR_TYPE, "etype %d and filetype %d must be committed datatypes", (int)etype, (int)filetype);
  if (e->size == 0 || t->size % e->size)
    return sfm_ferror(f, fn, MPI_ERR_TYPE, "the filetype's %zu bytes are not a whole number of %zu-byte etypes", t->size, e->size);
  for (int b = 0; b < t->nblocks; b++)
    if (t->blocks[b].disp < 0 || (b > 0 && t->blocks[b].disp < t->blocks[b - 1].disp + (MPI_Aint)t->blocks[b - 1].len))
      return sfm_ferror(f, fn, MPI_ERR_TYPE, "a filetype's displacements must be non-negative and increasing (MPI 13.3)");
  if (t->size > 0 && t->extent <= 0) return sfm_ferror(f, fn, MPI_ERR_TYPE, "the filetype's extent must be positive");
  if (info != MPI_INFO_NULL) MPI_File_set_info(fh, info);
  sfm_type_ref(etype);
  sfm_type_ref(filetype);
  sfm_type_unref(f->etype);
  sfm_type_unref(f->filetype);
  f->disp = disp;
  f->etype = etype;
  f->filetype = filetype;
  f->pos = 0;
  f->shared = 0;
  return MPI_SUCCESS;
}

/* A view type as a handle the program owns: predefined types as they are, derived ones dup'ed
 * (MPI 13.3: the program frees what MPI_File_get_view returns). */
static int sfm_view_type(MPI_Datatype t, MPI_Datatype *out) {
  sfm_type *ty = sfm_type_get(t);
  if (ty && ty->predefined) {
    *out = t;
    return MPI_SUCCESS;
  }
  return MPI_Type_dup(t, out);
}

int MPI_File_get_view(MPI_File fh, MPI_Offset *disp, MPI_Datatype *etype, MPI_Datatype *filetype, char *datarep) {
  int rc;
  SFM_FILE("MPI_File_get_view", fh, f);
  if (disp) *disp = f->disp;
  if (etype && (rc = sfm_view_type(f->etype, etype)) != MPI_SUCCESS) return rc;
  if (filetype && (rc = sfm_view_type(f->filetype, filetype)) != MPI_SUCCESS) return rc;
  if (datarep) snprintf(datarep, MPI_MAX_DATAREP_STRING, "native");
  return MPI_SUCCESS;
}

int MPI_File_get_type_extent(MPI_File fh, MPI_Datatype dt, MPI_Aint *extent) {
  sfm_type *t;
  SFM_FILE("MPI_File_get_type_extent", fh, f);
  t = sfm_type_get(dt);
  if (t == NULL || extent == NULL) return sfm_ferror(f, "MPI_File_get_type_extent", MPI_ERR_TYPE, "invalid datatype %d", (int)dt);
  *extent = t->extent; /* "native": as in memory */
  return MPI_SUCCESS;
}

/* The file byte holding data byte d of the view, and how many data bytes follow it contiguously
 * in the file (to the end of its filetype block). */
static MPI_Offset sfm_view_map(const sfm_file *f, MPI_Offset d, MPI_Offset *run) {
  const sfm_type *t = sfm_type_get(f->filetype);
  MPI_Offset tile, in;
  if (t->contig) {
    *run = (MPI_Offset)1 << 62;
    return f->disp + d;
  }
  tile = d / (MPI_Offset)t->size;
  in = d % (MPI_Offset)t->size;
  for (int b = 0; b < t->nblocks; b++) {
    if (in < (MPI_Offset)t->blocks[b].len) {
      *run = (MPI_Offset)t->blocks[b].len - in;
      return f->disp + tile * t->extent + t->blocks[b].disp + in;
    }
    in -= (MPI_Offset)t->blocks[b].len;
  }
  *run = 0; /* unreachable: in < size */
  return -1;
}

/* Data bytes of the view that lie before file byte `end` (for MPI_SEEK_END). */
static MPI_Offset sfm_view_data_before(const sfm_file *f, MPI_Offset end) {
  const sfm_type *t = sfm_type_get(f->filetype);
  MPI_Offset span = end - f->disp, tiles, d;
  if (span <= 0) return 0;
  if (t->contig) return span;
  tiles = span / t->extent;
  d = tiles * (MPI_Offset)t->size;
  span -= tiles * t->extent;
  for (int b = 0; b < t->nblocks; b++) {
    if (t->blocks[b].disp >= span) break;
    d += t->blocks[b].disp + (MPI_Offset)t->blocks[b].len <= span ? (MPI_Offset)t->blocks[b].len : span - t->blocks[b].disp;
  }
  return d;
}

/* ---- transfers ---------------------------------------------------------------------------------- */

static int sfm_range_lock(sfm_file *f, int write, MPI_Offset from, MPI_Offset to, int lock) {
  struct flock fl;
  memset(&fl, 0, sizeof fl);
  fl.l_type = lock ? (write ? F_WRLCK : F_RDLCK) : F_UNLCK;
  fl.l_whence = SEEK_SET;
  fl.l_start = (off_t)from;
  fl.l_len = (off_t)(to - from);
  while (fcntl(f->fd, F_OFD_SETLKW, &fl) != 0)
    if (errno != EINTR) return -1;
  return 0;
}

/* Read or write count items of dt at buf, at view position `pos` (etypes). *moved: bytes done
 * (a read stops early at the end of the file). Returns an MPI code, not raised. */
static int sfm_xfer(sfm_file *f, int write, MPI_Offset pos, void *buf, int count, MPI_Datatype dt, size_t *moved,
                    const char *fn) {
  sfm_type *t, *e = sfm_type_get(f->etype);
  size_t bytes, done = 0;
  unsigned char *mem;
  int code = MPI_SUCCESS, locked = 0;
  *moved = 0;
  if (write && (f->amode & MPI_MODE_RDONLY)) return sfm_code(MPI_ERR_READ_ONLY, "%s: %s is open read-only", fn, f->path);
  if (!write && (f->amode & MPI_MODE_WRONLY)) return sfm_code(MPI_ERR_ACCESS, "%s: %s is open write-only", fn, f->path);
  if ((code = sfm_type_check(MPI_COMM_SELF, fn, dt, count)) != MPI_SUCCESS) return code;
  if (pos < 0) return sfm_code(MPI_ERR_ARG, "%s: offset %lld is negative", fn, (long long)pos);
  t = sfm_type_get(dt);
  bytes = t->size * (size_t)count;
  if (bytes % e->size)
    return sfm_code(MPI_ERR_TYPE, "%s: %zu bytes are not a whole number of the view's %zu-byte etypes", fn, bytes, e->size);
  if (bytes == 0) return MPI_SUCCESS;
  mem = t->contig ? buf : malloc(bytes);
  if (mem == NULL) return sfm_code(MPI_ERR_NO_MEM, "%s: out of memory for %zu bytes", fn, bytes);
  if (write && !t->contig) sfm_pack(t, buf, count, mem);
  if (f->atomic) {
    MPI_Offset run, first = sfm_view_map(f, pos * (MPI_Offset)e->size, &run), last, lrun;
    last = sfm_view_map(f, pos * (MPI_Offset)e->size + (MPI_Offset)bytes - 1, &lrun) + 1;
    locked = sfm_range_lock(f, write, first, last, 1) == 0;
  }
  while (done < bytes) {
    MPI_Offset run, at = sfm_view_map(f, pos * (MPI_Offset)e->size + (MPI_Offset)done, &run);
    size_t n = bytes - done < (size_t)run ? bytes - done : (size_t)run;
    ssize_t k = write ? pwrite(f->fd, mem + done, n, (off_t)at) : pread(f->fd, mem + done, n, (off_t)at);
    if (k < 0 && errno == EINTR) continue;
    if (k < 0) {
      int err = errno;
      code = sfm_code(sfm_errno_class(err), "%s: %s %zu bytes at byte %lld of %s: %s", fn, write ? "writing" : "reading", n,
                      (long long)at, f->path, strerror(err));
      break;
    }
    done += (size_t)k;
    if (k == 0) break; /* end of file */
  }
  if (locked) {
    MPI_Offset run, first = sfm_view_map(f, pos * (MPI_Offset)e->size, &run), lrun;
    sfm_range_lock(f, write, first, sfm_view_map(f, pos * (MPI_Offset)e->size + (MPI_Offset)bytes - 1, &lrun) + 1, 0);
  }
  if (!write && !t->contig) sfm_unpack(t, mem, done, buf, count);
  if (mem != buf) free(mem);
  *moved = done;
  return code;
}

static void sfm_io_status(MPI_Status *st, size_t moved) {
  if (st == NULL) return;
  st->MPI_SOURCE = MPI_ANY_SOURCE;
  st->MPI_TAG = MPI_ANY_TAG;
  st->MPI_ERROR = MPI_SUCCESS;
  st->sf_cancelled = 0;
  st->sf_count = (long long)moved;
}

/* where: >= 0 an explicit offset, -1 the individual file pointer (then advanced). */
static int sfm_io(MPI_File fh, int write, MPI_Offset where, void *buf, int count, MPI_Datatype dt, MPI_Status *st,
                  MPI_Request *request, const char *fn) {
  size_t moved;
  int code;
  MPI_Offset pos;
  SFM_FILE(fn, fh, f);
  pos = where >= 0 ? where : f->pos;
  code = sfm_xfer(f, write, pos, buf, count, dt, &moved, fn);
  if (where < 0) f->pos += (MPI_Offset)(moved / sfm_type_get(f->etype)->size);
  if (request) {
    sfm_req *rq;
    if (code != MPI_SUCCESS) return sfm_raise_on(SFM_OBJ_FILE, fh, code);
    if (sfm_req_new(request, &rq) < 0) return sfm_ferror(f, fn, MPI_ERR_NO_MEM, "out of memory");
    rq->kind = SFM_RQ_DONE;
    rq->comm = MPI_COMM_WORLD;
    sfm_io_status(&rq->status, moved);
    return MPI_SUCCESS;
  }
  sfm_io_status(st, moved);
  if (code != MPI_SUCCESS && st) st->MPI_ERROR = code;
  return sfm_raise_on(SFM_OBJ_FILE, fh, code);
}

static int sfm_offset_ok(MPI_File fh, MPI_Offset offset, const char *fn) {
  if (offset < 0) return sfm_error_on(SFM_OBJ_FILE, fh, fn, MPI_ERR_ARG, "offset %lld is negative", (long long)offset);
  return MPI_SUCCESS;
}

#define SFM_AT(fn, write, buf, st, req)                                                            \
  int rc_ = sfm_offset_ok(fh, offset, fn);                                                          \
  if (rc_ != MPI_SUCCESS) return rc_;                                                               \
  return sfm_io(fh, write, offset, (void *)(buf), count, dt, st, req, fn)

int MPI_File_read_at(MPI_File fh, MPI_Offset offset, void *buf, int count, MPI_Datatype dt, MPI_Status *st) {
  SFM_AT("MPI_File_read_at", 0, buf, st, NULL);
}
int MPI_File_read_at_all(MPI_File fh, MPI_Offset offset, void *buf, int count, MPI_Datatype dt, MPI_Status *st) {
  SFM_AT("MPI_File_read_at_all", 0, buf, st, NULL);
}
int MPI_File_write_at(MPI_File fh, MPI_Offset offset, const void *buf, int count, MPI_Datatype dt, MPI_Status *st) {
  SFM_AT("MPI_File_write_at", 1, buf, st, NULL);
}
int MPI_File_write_at_all(MPI_File fh, MPI_Offset offset, const void *buf, int count, MPI_Datatype dt, MPI_Status *st) {
  SFM_AT("MPI_File_write_at_all", 1, buf, st, NULL);
}
int MPI_File_iread_at(MPI_File fh, MPI_Offset offset, void *buf, int count, MPI_Datatype dt, MPI_Request *request) {
  if (request == NULL) return sfm_error_on(SFM_OBJ_FILE, fh, "MPI_File_iread_at", MPI_ERR_ARG, "request is NULL");
  SFM_AT("MPI_File_iread_at", 0, buf, NULL, request);
}
int MPI_File_iwrite_at(MPI_File fh, MPI_Offset offset, const void *buf, int count, MPI_Datatype dt, MPI_Request *request) {
  if (request == NULL) return sfm_error_on(SFM_OBJ_FILE, fh, "MPI_File_iwrite_at", MPI_ERR_ARG, "request is NULL");
  SFM_AT("MPI_File_iwrite_at", 1, buf, NULL, request);
}
int MPI_File_iread_at_all(MPI_File fh, MPI_Offset offset, void *buf, int count, MPI_Datatype dt, MPI_Request *request) {
  if (request == NULL) return sfm_error_on(SFM_OBJ_FILE, fh, "MPI_File_iread_at_all", MPI_ERR_ARG, "request is NULL");
  SFM_AT("MPI_File_iread_at_all", 0, buf, NULL, request);
}
int MPI_File_iwrite_at_all(MPI_File fh, MPI_Offset offset, const void *buf, int count, MPI_Datatype dt,
                           MPI_Request *request) {
  if (request == NULL) return sfm_error_on(SFM_OBJ_FILE, fh, "MPI_File_iwrite_at_all", MPI_ERR_ARG, "request is NULL");
  SFM_AT("MPI_File_iwrite_at_all", 1, buf, NULL, request);
}

int MPI_File_read(MPI_File fh, void *buf, int count, MPI_Datatype dt, MPI_Status *st) {
  return sfm_io(fh, 0, -1, buf, count, dt, st, NULL, "MPI_File_read");
}
int MPI_File_read_all(MPI_File fh, void *buf, int count, MPI_Datatype dt, MPI_Status *st) {
  return sfm_io(fh, 0, -1, buf, count, dt, st, NULL, "MPI_File_read_all");
}
int MPI_File_write(MPI_File fh, const void *buf, int count, MPI_Datatype dt, MPI_Status *st) {
  return sfm_io(fh, 1, -1, (void *)buf, count, dt, st, NULL, "MPI_File_write");
}
int MPI_File_write_all(MPI_File fh, const void *buf, int count, MPI_Datatype dt, MPI_Status *st) {
  return sfm_io(fh, 1, -1, (void *)buf, count, dt, st, NULL, "MPI_File_write_all");
}
int MPI_File_iread(MPI_File fh, void *buf, int count, MPI_Datatype dt, MPI_Request *request) {
  if (request == NULL) return sfm_error_on(SFM_OBJ_FILE, fh, "MPI_File_iread", MPI_ERR_ARG, "request is NULL");
  return sfm_io(fh, 0, -1, buf, count, dt, NULL, request, "MPI_File_iread");
}
int MPI_File_iwrite(MPI_File fh, const void *buf, int count, MPI_Datatype dt, MPI_Request *request) {
  if (request == NULL) return sfm_error_on(SFM_OBJ_FILE, fh, "MPI_File_iwrite", MPI_ERR_ARG, "request is NULL");
  return sfm_io(fh, 1, -1, (void *)buf, count, dt, NULL, request, "MPI_File_iwrite");
}
int MPI_File_iread_all(MPI_File fh, void *buf, int count, MPI_Datatype dt, MPI_Request *request) {
  if (request == NULL) return sfm_error_on(SFM_OBJ_FILE, fh, "MPI_File_iread_all", MPI_ERR_ARG, "request is NULL");
  return sfm_io(fh, 0, -1, buf, count, dt, NULL, request, "MPI_File_iread_all");
}
int MPI_File_iwrite_all(MPI_File fh, const void *buf, int count, MPI_Datatype dt, MPI_Request *request) {
  if (request == NULL) return sfm_error_on(SFM_OBJ_FILE, fh, "MPI_File_iwrite_all", MPI_ERR_ARG, "request is NULL");
  return sfm_io(fh, 1, -1, (void *)buf, count, dt, NULL, request, "MPI_File_iwrite_all");
}

/* The ordered forms: rank order along the shared file pointer. The etypes each rank moves are
 * summed with an exclusive scan (where this rank starts) and an allreduce (how far the pointer
 * moves); every rank keeps the pointer itself, since only these collective calls move it. */
static int sfm_ordered(MPI_File fh, int write, void *buf, int count, MPI_Datatype dt, MPI_Status *st, const char *fn) {
  long long mine, before = 0, total = 0;
  int rank, rc;
  sfm_type *t;
  SFM_FILE(fn, fh, f);
  if ((rc = sfm_type_check(f->comm, fn, dt, count)) != MPI_SUCCESS) return rc;
  t = sfm_type_get(dt);
  mine = (long long)(t->size * (size_t)count / sfm_type_get(f->etype)->size);
  MPI_Comm_rank(f->comm, &rank);
  rc = MPI_Exscan(&mine, &before, 1, MPI_LONG_LONG, MPI_SUM, f->comm);
  if (rc == MPI_SUCCESS) rc = MPI_Allreduce(&mine, &total, 1, MPI_LONG_LONG, MPI_SUM, f->comm);
  if (rc != MPI_SUCCESS) return rc;
  if (rank == 0) before = 0;
  rc = sfm_io(fh, write, f->shared + before, buf, count, dt, st, NULL, fn);
  f = sfm_file_get(fh);
  if (f) f->shared += total;
  return rc;
}

int MPI_File_read_ordered(MPI_File fh, void *buf, int count, MPI_Datatype dt, MPI_Status *st) {
  return sfm_ordered(fh, 0, buf, count, dt, st, "MPI_File_read_ordered");
}
int MPI_File_write_ordered(MPI_File fh, const void *buf, int count, MPI_Datatype dt, MPI_Status *st) {
  return sfm_ordered(fh, 1, (void *)buf, count, dt, st, "MPI_File_write_ordered");
}

/* ---- file pointers ----------------------------------------------------------------------------- */

int MPI_File_seek(MPI_File fh, MPI_Offset offset, int whence) {
  MPI_Offset base;
  SFM_FILE("MPI_File_seek", fh, f);
  switch (whence) {
  case MPI_SEEK_SET: base = 0; break;
  case MPI_SEEK_CUR: base = f->pos; break;
  case MPI_SEEK_END: {
    struct stat sb;
    if (fstat(f->fd, &sb) != 0) {
      int e = errno;
      return sfm_ferror(f, "MPI_File_seek", sfm_errno_class(e), "fstat %s: %s", f->path, strerror(e));
    }
    base = sfm_view_data_before(f, (MPI_Offset)sb.st_size) / (MPI_Offset)sfm_type_get(f->etype)->size;
    break;
  }
  default: return sfm_ferror(f, "MPI_File_seek", MPI_ERR_ARG, "whence %d is not MPI_SEEK_SET, MPI_SEEK_CUR or MPI_SEEK_END", whence);
  }
  if (base + offset < 0)
    return sfm_ferror(f, "MPI_File_seek", MPI_ERR_ARG, "the position would be %lld, before the view's start", (long long)(base + offset));
  f->pos = base + offset;
  return MPI_SUCCESS;
}

int MPI_File_get_position(MPI_File fh, MPI_Offset *offset) {
  SFM_FILE("MPI_File_get_position", fh, f);
  if (offset == NULL) return sfm_ferror(f, "MPI_File_get_position", MPI_ERR_ARG, "offset is NULL");
  *offset = f->pos;
  return MPI_SUCCESS;
}

int MPI_File_get_byte_offset(MPI_File fh, MPI_Offset offset, MPI_Offset *disp) {
  MPI_Offset run;
  SFM_FILE("MPI_File_get_byte_offset", fh, f);
  if (disp == NULL || offset < 0) return sfm_ferror(f, "MPI_File_get_byte_offset", MPI_ERR_ARG, "bad offset or NULL disp");
  *disp = sfm_view_map(f, offset * (MPI_Offset)sfm_type_get(f->etype)->size, &run);
  return MPI_SUCCESS;
}
