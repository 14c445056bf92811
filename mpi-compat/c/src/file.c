/*
 * file.c: MPI-IO file handles: MPI_File_open/close/delete, sizes, preallocation, sync, groups,
 * access modes, hints, atomicity, error handlers (files default to MPI_ERRORS_RETURN).
 *
 * Opening is collective: rank 0 of the communicator opens first (creating the file when asked,
 * exclusively with MPI_MODE_EXCL) and tells the others how it went; they then open the same
 * path without creating it. Every rank learns whether all opened it, so they all return the
 * same error. Path prefixes naming a file system (ROMIO's "ufs:", "nfs:") are accepted and
 * stripped: there is one kind here. MPI_MODE_SEQUENTIAL is refused (it allows only the
 * shared-pointer calls that are not provided).
 */
#include "file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static MPI_Errhandler sfm_file_default_errh = MPI_ERRORS_RETURN;

sfm_file *sfm_file_get(MPI_File fh) {
  if (fh <= 0 || fh >= sfm.nfiles) return NULL;
  return sfm.files[fh];
}

MPI_Errhandler *sfm_file_errh(MPI_File fh) {
  sfm_file *f;
  if (fh == MPI_FILE_NULL) return &sfm_file_default_errh;
  f = sfm_file_get(fh);
  return f ? &f->errh : NULL;
}

int sfm_errno_class(int err) {
  switch (err) {
  case ENOENT: return MPI_ERR_NO_SUCH_FILE;
  case EACCES: case EPERM: return MPI_ERR_ACCESS;
  case EEXIST: return MPI_ERR_FILE_EXISTS;
  case ENOSPC: return MPI_ERR_NO_SPACE;
  case EROFS: return MPI_ERR_READ_ONLY;
  case EDQUOT: return MPI_ERR_QUOTA;
  case ENAMETOOLONG: case EISDIR: case ENOTDIR: case ELOOP: return MPI_ERR_BAD_FILE;
  default: return MPI_ERR_IO;
  }
}

static const char *sfm_strip_prefix(const char *name) {
  static const char *prefixes[] = {"ufs:", "nfs:", "lustre:", "gpfs:", "pvfs2:", "xfs:", "panfs:"};
  for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++)
    if (strncmp(name, prefixes[i], strlen(prefixes[i])) == 0) return name + strlen(prefixes[i]);
  return name;
}

static int sfm_amode_ok(int amode, char *why, size_t len) {
  int rw = !!(amode & MPI_MODE_RDONLY) + !!(amode & MPI_MODE_RDWR) + !!(amode & MPI_MODE_WRONLY);
  if (rw != 1) {
    snprintf(why, len, "amode %d needs exactly one of MPI_MODE_RDONLY, MPI_MODE_RDWR, MPI_MODE_WRONLY", amode);
    return MPI_ERR_AMODE;
  }
  if ((amode & MPI_MODE_RDONLY) && (amode & (MPI_MODE_CREATE | MPI_MODE_EXCL))) {
    snprintf(why, len, "MPI_MODE_RDONLY cannot go with MPI_MODE_CREATE or MPI_MODE_EXCL");
    return MPI_ERR_AMODE;
  }
  if (amode & MPI_MODE_SEQUENTIAL) {
    snprintf(why, len, "MPI_MODE_SEQUENTIAL is not supported (it allows only the shared file pointer calls)");
    return MPI_ERR_UNSUPPORTED_OPERATION;
  }
  if (amode & ~(MPI_MODE_RDONLY | MPI_MODE_RDWR | MPI_MODE_WRONLY | MPI_MODE_CREATE | MPI_MODE_EXCL | MPI_MODE_DELETE_ON_CLOSE |
                MPI_MODE_UNIQUE_OPEN | MPI_MODE_APPEND)) {
    snprintf(why, len, "amode %d has unknown bits", amode);
    return MPI_ERR_AMODE;
  }
  return MPI_SUCCESS;
}

static void sfm_file_release(sfm_file *f) {
  if (f == NULL) return;
  if (f->fd >= 0) close(f->fd);
  if (f->comm != MPI_COMM_NULL) MPI_Comm_free(&f->comm);
  if (f->info != MPI_INFO_NULL) MPI_Info_free(&f->info);
  sfm_type_unref(f->etype);
  sfm_type_unref(f->filetype);
  free(f->path);
  free(f);
}

int MPI_File_open(MPI_Comm comm, const char *filename, int amode, MPI_Info info, MPI_File *fh) {
  const char *fn = "MPI_File_open", *path;
  char why[256] = "";
  int cls, rc, rank, flags, err[2] = {0, 0}, i;
  sfm_file *f = NULL;
  SFM_COMM(fn, comm, c);
  (void)c;
  if (fh == NULL || filename == NULL)
    return sfm_error_on(SFM_OBJ_FILE, MPI_FILE_NULL, fn, MPI_ERR_ARG, "filename and fh are required");
  cls = sfm_amode_ok(amode, why, sizeof why);
  if (cls != MPI_SUCCESS) return sfm_error_on(SFM_OBJ_FILE, MPI_FILE_NULL, fn, cls, "%s", why);
  path = sfm_strip_prefix(filename);
  f = calloc(1, sizeof *f);
  if (f == NULL) return sfm_error_on(SFM_OBJ_FILE, MPI_FILE_NULL, fn, MPI_ERR_NO_MEM, "out of memory");
  f->fd = -1;
  f->comm = MPI_COMM_NULL;
  f->info = MPI_INFO_NULL;
  f->errh = sfm_file_default_errh;
  f->etype = f->filetype = MPI_BYTE;
  f->amode = amode;
  f->path = strdup(path);
  if (f->path == NULL || (info != MPI_INFO_NULL && MPI_Info_dup(info, &f->info) != MPI_SUCCESS)) {
    sfm_file_release(f);
    return sfm_error_on(SFM_OBJ_FILE, MPI_FILE_NULL, fn, MPI_ERR_NO_MEM, "out of memory");
  }
  rc = MPI_Comm_dup(comm, &f->comm);
  if (rc != MPI_SUCCESS) {
    sfm_file_release(f);
    return rc;
  }
  MPI_Comm_rank(f->comm, &rank);
  flags = (amode & MPI_MODE_RDONLY) ? O_RDONLY : (amode & MPI_MODE_WRONLY) ? O_WRONLY : O_RDWR;
  flags |= O_CLOEXEC;
  if (rank == 0) {
    int cflags = flags | ((amode & MPI_MODE_CREATE) ? O_CREAT : 0) | ((amode & MPI_MODE_EXCL) ? O_EXCL : 0);
    f->fd = open(path, cflags, 0666);
    if (f->fd < 0) err[0] = errno;
  }
  rc = MPI_Bcast(err, 1, MPI_INT, 0, f->comm);
  if (rc == MPI_SUCCESS && rank != 0 && err[0] == 0) {
    f->fd = open(path, flags);
    if (f->fd < 0) err[1] = errno;
  }
  if (rc == MPI_SUCCESS) {
    int mine = err[1], worst = 0;
    rc = MPI_Allreduce(&mine, &worst, 1, MPI_INT, MPI_MAX, f->comm);
    if (rc == MPI_SUCCESS && worst && !err[0]) err[1] = worst;
  }
  if (rc != MPI_SUCCESS) {
    sfm_file_release(f);
    return rc;
  }
  if (err[0] || err[1]) {
    int e = err[0] ? err[0] : err[1];
    sfm_file_release(f);
    return sfm_error_on(SFM_OBJ_FILE, MPI_FILE_NULL, fn, sfm_errno_class(e), "%s %s: %s", err[0] ? "opening" : "another rank opening",
                        path, strerror(e));
  }
  if (amode & MPI_MODE_APPEND) {
    struct stat sb;
    if (fstat(f->fd, &sb) == 0) f->pos = f->shared = (MPI_Offset)sb.st_size;
  }
  for (i = 1; i < sfm.nfiles; i++)
    if (sfm.files[i] == NULL) break;
  if (i >= sfm.nfiles && sfm_grow((void **)&sfm.files, &sfm.nfiles, sizeof *sfm.files) < 0) {
    sfm_file_release(f);
    return sfm_error_on(SFM_OBJ_FILE, MPI_FILE_NULL, fn, MPI_ERR_NO_MEM, "out of memory");
  }
  if (i == 0) i = 1;
  f->handle = i;
  sfm.files[i] = f;
  *fh = i;
  return MPI_SUCCESS;
}

int MPI_File_close(MPI_File *fh) {
  sfm_file *f;
  int rc, rank, del;
  char *path;
  SFM_INIT_CHECK("MPI_File_close");
  if (fh == NULL || (f = sfm_file_get(*fh)) == NULL)
    return sfm_error_on(SFM_OBJ_FILE, MPI_FILE_NULL, "MPI_File_close", MPI_ERR_FILE, "invalid file handle %d", fh ? *fh : -1);
  MPI_Comm_rank(f->comm, &rank);
  /* every rank's writes are in the file before anyone deletes it or the call returns */
  rc = MPI_Barrier(f->comm);
  if (rc != MPI_SUCCESS) return rc;
  del = (f->amode & MPI_MODE_DELETE_ON_CLOSE) && rank == 0;
  path = f->path;
  f->path = NULL;
  close(f->fd);
  f->fd = -1;
  if (del && unlink(path) != 0 && errno != ENOENT) {
    int e = errno;
    rc = sfm_error_on(SFM_OBJ_FILE, *fh, "MPI_File_close", sfm_errno_class(e), "deleting %s on close: %s", path, strerror(e));
  }
  free(path);
  sfm.files[*fh] = NULL;
  sfm_file_release(f);
  *fh = MPI_FILE_NULL;
  return rc;
}

int MPI_File_delete(const char *filename, MPI_Info info) {
  const char *path;
  (void)info;
  SFM_INIT_CHECK("MPI_File_delete");
  if (filename == NULL) return sfm_error_on(SFM_OBJ_FILE, MPI_FILE_NULL, "MPI_File_delete", MPI_ERR_ARG, "filename is NULL");
  path = sfm_strip_prefix(filename);
  if (unlink(path) != 0) {
    int e = errno;
    return sfm_error_on(SFM_OBJ_FILE, MPI_FILE_NULL, "MPI_File_delete", sfm_errno_class(e), "%s: %s", path, strerror(e));
  }
  return MPI_SUCCESS;
}

/* Rank 0 changes the size; everyone waits for it (collective; MPI wants the same size from
 * every rank and checks none of it: rank 0's value is the one applied). */
static int sfm_file_resize(MPI_File fh, MPI_Offset size, int grow_only, const char *fn) {
  int rank, rc, err = 0;
  SFM_FILE(fn, fh, f);
  if (size < 0) return sfm_ferror(f, fn, MPI_ERR_ARG, "size %lld is negative", (long long)size);
  if (f->amode & MPI_MODE_RDONLY) return sfm_ferror(f, fn, MPI_ERR_READ_ONLY, "%s is open read-only", f->path);
  MPI_Comm_rank(f->comm, &rank);
  if (rank == 0) {
    if (grow_only) {
      int e = size > 0 ? posix_fallocate(f->fd, 0, (off_t)size) : 0;
      err = e;
    } else if (ftruncate(f->fd, (off_t)size) != 0) {
      err = errno;
    }
  }
  /* an allreduce, not a broadcast: no rank returns before rank 0 has changed the size */
  {
    int mine = err;
    rc = MPI_Allreduce(&mine, &err, 1, MPI_INT, MPI_MAX, f->comm);
  }
  if (rc != MPI_SUCCESS) return rc;
  if (err) return sfm_ferror(f, fn, sfm_errno_class(err), "%s to %lld bytes: %s", grow_only ? "preallocating" : "resizing",
                             (long long)size, strerror(err));
  return MPI_SUCCESS;
}

int MPI_File_set_size(MPI_File fh, MPI_Offset size) { return sfm_file_resize(fh, size, 0, "MPI_File_set_size"); }
int MPI_File_preallocate(MPI_File fh, MPI_Offset size) { return sfm_file_resize(fh, size, 1, "MPI_File_preallocate"); }

int MPI_File_get_size(MPI_File fh, MPI_Offset *size) {
  struct stat sb;
  SFM_FILE("MPI_File_get_size", fh, f);
  if (size == NULL) return sfm_ferror(f, "MPI_File_get_size", MPI_ERR_ARG, "size is NULL");
  if (fstat(f->fd, &sb) != 0) {
    int e = errno;
    return sfm_ferror(f, "MPI_File_get_size", sfm_errno_class(e), "fstat %s: %s", f->path, strerror(e));
  }
  *size = (MPI_Offset)sb.st_size;
  return MPI_SUCCESS;
}

int MPI_File_sync(MPI_File fh) {
  int rc;
  SFM_FILE("MPI_File_sync", fh, f);
  if (fsync(f->fd) != 0 && errno != EINVAL) {
    int e = errno;
    return sfm_ferror(f, "MPI_File_sync", sfm_errno_class(e), "fsync %s: %s", f->path, strerror(e));
  }
  /* collective: after it, every rank's writes are visible to every rank */
  rc = MPI_Barrier(f->comm);
  return rc;
}

int MPI_File_get_group(MPI_File fh, MPI_Group *group) {
  SFM_FILE("MPI_File_get_group", fh, f);
  return MPI_Comm_group(f->comm, group);
}

int MPI_File_get_amode(MPI_File fh, int *amode) {
  SFM_FILE("MPI_File_get_amode", fh, f);
  if (amode == NULL) return sfm_ferror(f, "MPI_File_get_amode", MPI_ERR_ARG, "amode is NULL");
  *amode = f->amode;
  return MPI_SUCCESS;
}

int MPI_File_set_info(MPI_File fh, MPI_Info info) {
  SFM_FILE("MPI_File_set_info", fh, f);
  if (sfm_info_replace(&f->info, info) < 0) return sfm_ferror(f, "MPI_File_set_info", MPI_ERR_INFO, "invalid info %d", info);
  return MPI_SUCCESS;
}

int MPI_File_get_info(MPI_File fh, MPI_Info *info_used) {
  SFM_FILE("MPI_File_get_info", fh, f);
  if (info_used == NULL) return sfm_ferror(f, "MPI_File_get_info", MPI_ERR_ARG, "info_used is NULL");
  return sfm_info_used(f->info, info_used);
}

int MPI_File_set_atomicity(MPI_File fh, int flag) {
  SFM_FILE("MPI_File_set_atomicity", fh, f);
  f->atomic = flag != 0;
  return MPI_Barrier(f->comm); /* collective (MPI 13.6.1) */
}

int MPI_File_get_atomicity(MPI_File fh, int *flag) {
  SFM_FILE("MPI_File_get_atomicity", fh, f);
  if (flag == NULL) return sfm_ferror(f, "MPI_File_get_atomicity", MPI_ERR_ARG, "flag is NULL");
  *flag = f->atomic;
  return MPI_SUCCESS;
}
