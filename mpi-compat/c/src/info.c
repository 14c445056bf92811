/*
 * info.c: MPI_Info objects (ordered key/value strings) and MPI_INFO_ENV.
 *
 * libsfmpi reads no hint from them (every communicator, window and file keeps the hints it was
 * given, and MPI_*_get_info returns them); they exist so that programs passing hints run.
 * MPI_INFO_ENV holds what MPI 8.4 lists that is known here: command, maxprocs, thread_level.
 */
#include "sfmpi.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static sfm_info *sfm_info_get(MPI_Info info) {
  if (info <= 0 || info >= sfm.ninfos || !sfm.infos[info].used) return NULL;
  return &sfm.infos[info];
}

static int sfm_info_find(const sfm_info *in, const char *key) {
  for (int i = 0; i < in->n; i++)
    if (strcmp(in->kv[i].key, key) == 0) return i;
  return -1;
}

static int sfm_info_key_ok(const char *key) { return key && key[0] && strlen(key) <= MPI_MAX_INFO_KEY; }

/* Set key=value in `in`; -1 when out of memory. */
static int sfm_info_put(sfm_info *in, const char *key, const char *val) {
  int i = sfm_info_find(in, key);
  char *v = strdup(val);
  if (v == NULL) return -1;
  if (i >= 0) {
    free(in->kv[i].val);
    in->kv[i].val = v;
    return 0;
  }
  if (in->n == in->cap) {
    int nc = in->cap ? in->cap * 2 : 8;
    sfm_kv *p = realloc(in->kv, (size_t)nc * sizeof *p);
    if (p == NULL) {
      free(v);
      return -1;
    }
    in->kv = p;
    in->cap = nc;
  }
  in->kv[in->n].key = strdup(key);
  if (in->kv[in->n].key == NULL) {
    free(v);
    return -1;
  }
  in->kv[in->n].val = v;
  in->n++;
  return 0;
}

static int sfm_info_new(MPI_Info *out) {
  int i;
  for (i = 2; i < sfm.ninfos; i++)
    if (!sfm.infos[i].used) break;
  if (i >= sfm.ninfos && sfm_grow((void **)&sfm.infos, &sfm.ninfos, sizeof *sfm.infos) < 0) return -1;
  memset(&sfm.infos[i], 0, sizeof sfm.infos[i]);
  sfm.infos[i].used = 1;
  *out = i;
  return 0;
}

/* MPI_INFO_ENV, filled at MPI_Init. */
int sfm_info_init(const char *command, int thread_level) {
  static const char *levels[] = {"MPI_THREAD_SINGLE", "MPI_THREAD_FUNNELED", "MPI_THREAD_SERIALIZED", "MPI_THREAD_MULTIPLE"};
  char n[16];
  sfm_info *env;
  while (sfm.ninfos < 2)
    if (sfm_grow((void **)&sfm.infos, &sfm.ninfos, sizeof *sfm.infos) < 0) return -1;
  env = &sfm.infos[MPI_INFO_ENV];
  env->used = 1;
  snprintf(n, sizeof n, "%d", sfm.size);
  if (command && sfm_info_put(env, "command", command) < 0) return -1;
  if (sfm_info_put(env, "maxprocs", n) < 0) return -1;
  if (sfm_info_put(env, "thread_level", levels[thread_level]) < 0) return -1;
  return 0;
}

#define SFM_INFO(fn, info, in)                                                                   \
  SFM_INIT_CHECK(fn);                                                                          \
  sfm_info *in = sfm_info_get(info);                                                           \
  if (in == NULL) return sfm_error(MPI_COMM_WORLD, fn, MPI_ERR_INFO, "invalid info %d", (int)(info))

int MPI_Info_create(MPI_Info *info) {
  SFM_INIT_CHECK("MPI_Info_create");
  if (info == NULL) return sfm_error(MPI_COMM_WORLD, "MPI_Info_create", MPI_ERR_ARG, "info is NULL");
  if (sfm_info_new(info) < 0) return sfm_error(MPI_COMM_WORLD, "MPI_Info_create", MPI_ERR_NO_MEM, "out of memory");
  return MPI_SUCCESS;
}

int MPI_Info_set(MPI_Info info, const char *key, const char *value) {
  SFM_INFO("MPI_Info_set", info, in);
  if (info == MPI_INFO_ENV) return sfm_error(MPI_COMM_WORLD, "MPI_Info_set", MPI_ERR_INFO, "MPI_INFO_ENV cannot be changed");
  if (!sfm_info_key_ok(key))
    return sfm_error(MPI_COMM_WORLD, "MPI_Info_set", MPI_ERR_INFO_KEY, "key must be 1..%d characters", MPI_MAX_INFO_KEY);
  if (value == NULL || !value[0] || strlen(value) > MPI_MAX_INFO_VAL)
    return sfm_error(MPI_COMM_WORLD, "MPI_Info_set", MPI_ERR_INFO_VALUE, "the value of %s must be 1..%d characters", key,
                     MPI_MAX_INFO_VAL);
  if (sfm_info_put(in, key, value) < 0) return sfm_error(MPI_COMM_WORLD, "MPI_Info_set", MPI_ERR_NO_MEM, "out of memory");
  return MPI_SUCCESS;
}

int MPI_Info_get(MPI_Info info, const char *key, int valuelen, char *value, int *flag) {
  int i;
  SFM_INFO("MPI_Info_get", info, in);
  if (!sfm_info_key_ok(key) || flag == NULL || value == NULL || valuelen < 0)
    return sfm_error(MPI_COMM_WORLD, "MPI_Info_get", MPI_ERR_INFO_KEY, "invalid key, value, valuelen or flag");
  i = sfm_info_find(in, key);
  *flag = i >= 0;
  if (i >= 0) {
    /* at most valuelen characters, and the terminating NUL (MPI 9.1) */
    strncpy(value, in->kv[i].val, (size_t)valuelen);
    value[valuelen] = '\0';
  }
  return MPI_SUCCESS;
}

int MPI_Info_get_valuelen(MPI_Info info, const char *key, int *valuelen, int *flag) {
  int i;
  SFM_INFO("MPI_Info_get_valuelen", info, in);
  if (!sfm_info_key_ok(key) || flag == NULL || valuelen == NULL)
    return sfm_error(MPI_COMM_WORLD, "MPI_Info_get_valuelen", MPI_ERR_INFO_KEY, "invalid key, valuelen or flag");
  i = sfm_info_find(in, key);
  *flag = i >= 0;
  if (i >= 0) *valuelen = (int)strlen(in->kv[i].val);
  return MPI_SUCCESS;
}

int MPI_Info_get_nkeys(MPI_Info info, int *nkeys) {
  SFM_INFO("MPI_Info_get_nkeys", info, in);
  if (nkeys == NULL) return sfm_error(MPI_COMM_WORLD, "MPI_Info_get_nkeys", MPI_ERR_ARG, "nkeys is NULL");
  *nkeys = in->n;
  return MPI_SUCCESS;
}

int MPI_Info_get_nthkey(MPI_Info info, int n, char *key) {
  SFM_INFO("MPI_Info_get_nthkey", info, in);
  if (key == NULL || n < 0 || n >= in->n)
    return sfm_error(MPI_COMM_WORLD, "MPI_Info_get_nthkey", MPI_ERR_ARG, "n %d out of range for %d keys", n, in->n);
  snprintf(key, MPI_MAX_INFO_KEY + 1, "%s", in->kv[n].key);
  return MPI_SUCCESS;
}

int MPI_Info_delete(MPI_Info info, const char *key) {
  int i;
  SFM_INFO("MPI_Info_delete", info, in);
  if (!sfm_info_key_ok(key)) return sfm_error(MPI_COMM_WORLD, "MPI_Info_delete", MPI_ERR_INFO_KEY, "invalid key");
  i = sfm_info_find(in, key);
  if (i < 0) return sfm_error(MPI_COMM_WORLD, "MPI_Info_delete", MPI_ERR_INFO_NOKEY, "no key %s", key);
  free(in->kv[i].key);
  free(in->kv[i].val);
  memmove(&in->kv[i], &in->kv[i + 1], (size_t)(in->n - i - 1) * sizeof *in->kv);
  in->n--;
  return MPI_SUCCESS;
}

int MPI_Info_dup(MPI_Info info, MPI_Info *newinfo) {
  MPI_Info out;
  SFM_INFO("MPI_Info_dup", info, in);
  (void)in;
  if (newinfo == NULL) return sfm_error(MPI_COMM_WORLD, "MPI_Info_dup", MPI_ERR_ARG, "newinfo is NULL");
  if (sfm_info_new(&out) < 0) return sfm_error(MPI_COMM_WORLD, "MPI_Info_dup", MPI_ERR_NO_MEM, "out of memory");
  for (int i = 0; i < sfm.infos[info].n; i++)
    if (sfm_info_put(&sfm.infos[out], sfm.infos[info].kv[i].key, sfm.infos[info].kv[i].val) < 0) {
      MPI_Info_free(&out);
      return sfm_error(MPI_COMM_WORLD, "MPI_Info_dup", MPI_ERR_NO_MEM, "out of memory");
    }
  *newinfo = out;
  return MPI_SUCCESS;
}

int MPI_Info_free(MPI_Info *info) {
  SFM_INIT_CHECK("MPI_Info_free");
  if (info == NULL || sfm_info_get(*info) == NULL || *info == MPI_INFO_ENV)
    return sfm_error(MPI_COMM_WORLD, "MPI_Info_free", MPI_ERR_INFO, "invalid info %d", info ? *info : -1);
  for (int i = 0; i < sfm.infos[*info].n; i++) {
    free(sfm.infos[*info].kv[i].key);
    free(sfm.infos[*info].kv[i].val);
  }
  free(sfm.infos[*info].kv);
  memset(&sfm.infos[*info], 0, sizeof sfm.infos[*info]);
  *info = MPI_INFO_NULL;
  return MPI_SUCCESS;
}

int sfm_info_replace(MPI_Info *slot, MPI_Info info) {
  MPI_Info copy = MPI_INFO_NULL;
  if (info != MPI_INFO_NULL && MPI_Info_dup(info, &copy) != MPI_SUCCESS) return -1;
  if (*slot != MPI_INFO_NULL) MPI_Info_free(slot);
  *slot = copy;
  return 0;
}

int sfm_info_used(MPI_Info have, MPI_Info *out) {
  return have != MPI_INFO_NULL ? MPI_Info_dup(have, out) : MPI_Info_create(out);
}
