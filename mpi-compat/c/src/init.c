/*
 * init.c: MPI_Init is the fork point; finalize, thread levels, time, names, versions, memory.
 *
 * Flow (docs/launcher-protocol.md):
 *   1. MPI_Init reads SFMPI_SIZE (absent: 1 rank), creates the shared job region, flushes stdio
 *      and forks SFMPI_SIZE-1 clones of this process (clone id = rank).
 *   2. Every rank wires its stdio and reports to the launcher (jobctl.c); the origin watches
 *      its clones.
 *   3. MPI_Finalize: final barrier, then the rank is marked finished; it keeps running.
 *   4. At exit the origin reaps every clone and reports (jobctl.c).
 */
#include "sfmpi.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

sfm_state sfm = {0};

/* Thread levels: the data plane's job handle is used from one thread at a time, so libsfmpi
 * provides up to MPI_THREAD_SERIALIZED (several threads may call MPI, never at the same time).
 * MPI_THREAD_MULTIPLE is not provided: a lock around every call would deadlock a thread
 * blocked in MPI_Recv against the thread that must send the message it waits for. */
static int sfm_thread_level = MPI_THREAD_SINGLE;
static pthread_t sfm_main_thread;

static int sfm_parse_int(const char *s, long lo, long hi, long *out) {
  char *end;
  long v;
  if (s == NULL || *s == '\0') return -1;
  errno = 0;
  v = strtol(s, &end, 10);
  if (errno || *end || v < lo || v > hi) return -1;
  *out = v;
  return 0;
}

int MPI_Init_thread(int *argc, char ***argv, int required, int *provided) {
  long size = 1, fd = -1;
  const char *s;
  sf_job_options o;
  int rc;
  (void)argc;
  if (sfm.initialized) return sfm_error(MPI_COMM_WORLD, "MPI_Init", MPI_ERR_OTHER, "MPI_Init called twice");
  sfm.ctl_fd = -1;
  s = getenv("SFMPI_CONTROL_FD");
  if (s && *s) {
    if (sfm_parse_int(s, 0, 1 << 20, &fd) < 0 || fcntl((int)fd, F_GETFD) < 0) {
      fprintf(stderr, "sfmpi: MPI_Init: SFMPI_CONTROL_FD=%s is not an open fd\n", s);
      _exit(1);
    }
    sfm.ctl_fd = (int)fd;
  }
  s = getenv("SFMPI_SIZE");
  if (s && *s && sfm_parse_int(s, 1, SF_MAX_RANKS, &size) < 0) {
    char msg[128];
    snprintf(msg, sizeof msg, "SFMPI_SIZE=%.20s is not a number of ranks in 1..%d", s, SF_MAX_RANKS);
    sfm_init_fail(msg);
  }
  memset(&o, 0, sizeof o);
  o.size = (int)size;
  sfm_jobctl_join(&o); /* a job that spans hosts: where every rank lives, from dom0 */
  size = o.size;
  sfm_jobctl_admit(o.host_of ? sfm_jobctl_local_count(&o) : (int)size);
  if (sf_job_create(&sfm.job, &o) < 0) sfm_init_fail(sf_last_error());
  sfm.size = (int)size;
  sfm.t_fork = sf_now();
  rc = sf_job_fork(sfm.job);
  if (rc < 0) sfm_init_fail(sf_last_error());
  sfm.rank = rc;
  sfm_jobctl_links();
  sfm_jobctl_started();
  sfm.next_ctx = 2 * (int)SFM_CTX_BLOCK; /* after MPI_COMM_WORLD's and MPI_COMM_SELF's blocks */
  sfm_thread_level = required > MPI_THREAD_SERIALIZED ? MPI_THREAD_SERIALIZED : required < 0 ? MPI_THREAD_SINGLE : required;
  if (sfm_comms_init() < 0 || sfm_types_init() < 0 || sfm_ops_init() < 0 ||
      sfm_info_init(argv && *argv && **argv ? (*argv)[0] : NULL, sfm_thread_level) < 0)
    sfm_init_fail("out of memory");
  sfm_progress_init();
  sfm_main_thread = pthread_self();
  sfm.initialized = 1;
  if (provided) *provided = sfm_thread_level;
  return MPI_SUCCESS;
}

int MPI_Init(int *argc, char ***argv) { return MPI_Init_thread(argc, argv, MPI_THREAD_SINGLE, NULL); }

int MPI_Initialized(int *flag) {
  if (flag) *flag = sfm.initialized;
  return MPI_SUCCESS;
}

int MPI_Finalized(int *flag) {
  if (flag) *flag = sfm.finalized;
  return MPI_SUCCESS;
}

int MPI_Query_thread(int *provided) {
  if (provided) *provided = sfm_thread_level;
  return MPI_SUCCESS;
}

int MPI_Is_thread_main(int *flag) {
  SFM_INIT_CHECK("MPI_Is_thread_main");
  if (flag) *flag = pthread_equal(pthread_self(), sfm_main_thread) != 0;
  return MPI_SUCCESS;
}

/* Profiling control: no profiler is attached, so every level means nothing to do (MPI 14.2.4). */
int MPI_Pcontrol(const int level, ...) {
  (void)level;
  return MPI_SUCCESS;
}

int MPI_Finalize(void) {
  sfm_comm *w;
  sf_group g;
  int rc;
  SFM_INIT_CHECK("MPI_Finalize");
  /* MPI_Finalize first deletes MPI_COMM_SELF's attributes, a hook libraries use (MPI 8.7.1) */
  rc = sfm_attrs_clear(SFM_OBJ_COMM, MPI_COMM_SELF, &sfm_comm_get(MPI_COMM_SELF)->attrs);
  if (rc != MPI_SUCCESS) return sfm_error(MPI_COMM_WORLD, "MPI_Finalize", rc, "an attribute delete callback of MPI_COMM_SELF failed");
  rc = sfm_drain_detached("MPI_Finalize");
  if (rc != MPI_SUCCESS) return rc;
  w = sfm_comm_get(MPI_COMM_WORLD);
  g = sfm_coll_group(w);
  sf_job_set_label(sfm.job, "MPI_Finalize");
  rc = sf_barrier(sfm.job, &g);
  sf_job_set_label(sfm.job, NULL);
  if (rc < 0) return sfm_dp_error(MPI_COMM_WORLD, "MPI_Finalize", rc);
  sf_job_mark_finished(sfm.job);
  sfm.finalized = 1;
  sfm_jobctl_finalized();
  fflush(stdout);
  return MPI_SUCCESS;
}

double MPI_Wtime(void) { return sf_now(); }
double MPI_Wtick(void) { return 1e-9; }

int MPI_Get_processor_name(char *name, int *len) {
  if (name == NULL || len == NULL) return sfm_error(MPI_COMM_WORLD, "MPI_Get_processor_name", MPI_ERR_ARG, "NULL argument");
  if (gethostname(name, MPI_MAX_PROCESSOR_NAME) != 0) snprintf(name, MPI_MAX_PROCESSOR_NAME, "localhost");
  name[MPI_MAX_PROCESSOR_NAME - 1] = '\0';
  *len = (int)strlen(name);
  return MPI_SUCCESS;
}

int MPI_Get_version(int *version, int *subversion) {
  if (version) *version = MPI_VERSION;
  if (subversion) *subversion = MPI_SUBVERSION;
  return MPI_SUCCESS;
}

int MPI_Get_library_version(char *version, int *len) {
  if (version == NULL || len == NULL) return MPI_ERR_ARG;
  *len = snprintf(version, MPI_MAX_LIBRARY_VERSION_STRING, "sfmpi libsfmpi %d (fork-at-MPI_Init, shared-memory data plane v%d)",
                  1, SF_DATAPLANE_VERSION);
  return MPI_SUCCESS;
}

int MPI_Alloc_mem(MPI_Aint size, MPI_Info info, void *baseptr) {
  void *p;
  (void)info;
  if (size < 0 || baseptr == NULL) return sfm_error(MPI_COMM_WORLD, "MPI_Alloc_mem", MPI_ERR_ARG, "bad size or pointer");
  p = malloc(size ? (size_t)size : 1);
  if (p == NULL) return sfm_error(MPI_COMM_WORLD, "MPI_Alloc_mem", MPI_ERR_NO_MEM, "cannot allocate %ld bytes", (long)size);
  *(void **)baseptr = p;
  return MPI_SUCCESS;
}

int MPI_Free_mem(void *base) {
  free(base);
  return MPI_SUCCESS;
}
