/*
 * file.h: MPI-IO file handles, private to file.c (opening, closing, sizes, hints, handlers)
 * and fileio.c (views, reads and writes, file pointers).
 *
 * A file is one POSIX open file per rank on the local file system (a directory shared between
 * hosts is the multi-host case: the same calls, the file system keeps the ranks' writes
 * coherent). Collective calls are collective over a private duplicate of the communicator, so
 * their synchronisation never meets the program's own messages.
 */
#ifndef SFMPI_FILE_H
#define SFMPI_FILE_H

#include "sfmpi.h"

typedef struct sfm_file {
  MPI_File handle;
  int fd;
  int amode;
  MPI_Comm comm;        /* the file's own duplicate of the communicator it was opened on */
  char *path;
  MPI_Errhandler errh;
  MPI_Info info;
  int atomic;           /* MPI_File_set_atomicity: accesses take an fcntl lock on their range */
  /* the view: filetype tiled from disp, data counted in etypes */
  MPI_Offset disp;
  MPI_Datatype etype, filetype; /* referenced while they are the view */
  MPI_Offset pos;       /* individual file pointer, in etypes of the view */
  MPI_Offset shared;    /* shared file pointer (moved only by the ordered calls, so every rank
                           keeps the same value itself), in etypes */
} sfm_file;

sfm_file *sfm_file_get(MPI_File fh);

#define SFM_FILE(fn, fh, f)                                                                        \
  SFM_INIT_CHECK(fn);                                                                             \
  sfm_file *f = sfm_file_get(fh);                                                                 \
  if (f == NULL) return sfm_error_on(SFM_OBJ_FILE, MPI_FILE_NULL, fn, MPI_ERR_FILE, "invalid file handle %d", (int)(fh))
#define sfm_ferror(f, fn, cls, ...) sfm_error_on(SFM_OBJ_FILE, (f)->handle, fn, cls, __VA_ARGS__)

int sfm_errno_class(int err); /* an errno as an MPI-IO error class */

#endif
