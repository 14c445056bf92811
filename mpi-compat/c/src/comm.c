/*
 * comm.c: communicators: the table, context ids, dup/split/create/free, compare, names,
 * predefined attributes.
 *
 * A communicator is a list of world ranks plus a block of SFM_CTX_BLOCK context ids: the
 * program's point-to-point messages, the data plane's collectives, schedules (non-blocking and
 * neighbourhood collectives) and libsfmpi's own exchanges each have one (sfmpi.h). New blocks
 * are agreed by an allreduce(MAX) of every member's next free id over the parent, so all
 * members pick the same one without a central allocator.
 */
#include "sfmpi.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int sfm_grow(void **arr, int *n, size_t elem) {
  int nn = *n ? *n * 2 : 16;
  void *p = realloc(*arr, (size_t)nn * elem);
  if (p == NULL) return -1;
  memset((char *)p + (size_t)*n * elem, 0, (size_t)(nn - *n) * elem);
  *arr = p;
  *n = nn;
  return 0;
}

sfm_comm *sfm_comm_get(MPI_Comm c) {
  if (c <= 0 || c >= sfm.ncomms || !sfm.comms[c].used) return NULL;
  return &sfm.comms[c];
}

sf_group sfm_coll_group(const sfm_comm *c) {
  sf_group g;
  g.size = c->size;
  g.rank = c->rank;
  g.ranks = c->world;
  g.ctx = c->ctx + SFM_CTX_COLL;
  return g;
}

/* Fills a free slot as a communicator over `world` (world ranks, in group order). */
static int sfm_comm_fill(sfm_comm *c, int size, int rank, const int *world, uint32_t ctx) {
  memset(c, 0, sizeof *c);
  c->world = malloc((size_t)size * sizeof(int));
  c->inv = malloc((size_t)sfm.size * sizeof(int));
  if (c->world == NULL || c->inv == NULL) {
    free(c->world);
    free(c->inv);
    c->world = c->inv = NULL;
    return -1;
  }
  memcpy(c->world, world, (size_t)size * sizeof(int));
  for (int r = 0; r < sfm.size; r++) c->inv[r] = -1;
  for (int r = 0; r < size; r++) c->inv[world[r]] = r;
  c->size = size;
  c->rank = rank;
  c->ctx = ctx;
  c->errh = MPI_ERRORS_ARE_FATAL;
  c->used = 1;
  return 0;
}

int sfm_comm_new(int size, int rank, const int *world, uint32_t ctx, MPI_Comm *out) {
  int i;
  for (i = 3; i < sfm.ncomms; i++)
    if (!sfm.comms[i].used) break;
  if (i >= sfm.ncomms && sfm_grow((void **)&sfm.comms, &sfm.ncomms, sizeof *sfm.comms) < 0) return -1;
  if (sfm_comm_fill(&sfm.comms[i], size, rank, world, ctx) < 0) return -1;
  *out = i;
  return 0;
}

/* The predefined communicators, groups and error handlers; -1 when out of memory. */
int sfm_comms_init(void) {
  int *world = malloc((size_t)sfm.size * sizeof(int));
  if (world == NULL) return -1;
  for (int r = 0; r < sfm.size; r++) world[r] = r;
  int rc = 0;
  while (rc == 0 && sfm.ncomms < 3) rc = sfm_grow((void **)&sfm.comms, &sfm.ncomms, sizeof *sfm.comms);
  if (rc == 0) rc = sfm_comm_fill(&sfm.comms[MPI_COMM_WORLD], sfm.size, sfm.rank, world, 0);
  if (rc == 0) rc = sfm_comm_fill(&sfm.comms[MPI_COMM_SELF], 1, 0, &sfm.rank, SFM_CTX_BLOCK);
  free(world);
  if (rc < 0) return -1;
  snprintf(sfm.comms[MPI_COMM_WORLD].name, sizeof sfm.comms[MPI_COMM_WORLD].name, "MPI_COMM_WORLD");
  snprintf(sfm.comms[MPI_COMM_SELF].name, sizeof sfm.comms[MPI_COMM_SELF].name, "MPI_COMM_SELF");
  while (sfm.ngroups < 2)
    if (sfm_grow((void **)&sfm.groups, &sfm.ngroups, sizeof *sfm.groups) < 0) return -1;
  sfm.groups[MPI_GROUP_EMPTY].used = 1;
  while (sfm.nerrhs < 4)
    if (sfm_grow((void **)&sfm.errhs, &sfm.nerrhs, sizeof *sfm.errhs) < 0) return -1;
  for (int i = 1; i < 4; i++) sfm.errhs[i].used = 1;
  return 0;
}

int MPI_Comm_rank(MPI_Comm comm, int *rank) {
  SFM_COMM("MPI_Comm_rank", comm, c);
  if (rank == NULL) return sfm_error(comm, "MPI_Comm_rank", MPI_ERR_ARG, "rank is NULL");
  *rank = c->rank;
  return MPI_SUCCESS;
}

int MPI_Comm_size(MPI_Comm comm, int *size) {
  SFM_COMM("MPI_Comm_size", comm, c);
  if (size == NULL) return sfm_error(comm, "MPI_Comm_size", MPI_ERR_ARG, "size is NULL");
  *size = c->size;
  return MPI_SUCCESS;
}

int sfm_agree_ctx(MPI_Comm parent, uint32_t *ctx) {
  sfm_comm *c = sfm_comm_get(parent);
  sf_group g = sfm_coll_group(c);
  int mine = sfm.next_ctx, agreed;
  sf_builtin_arg a = {SF_OP_MAX, SF_INT};
  int rc = sf_allreduce(sfm.job, &g, &mine, &agreed, sizeof agreed, sf_builtin_combine, &a);
  if (rc < 0) return rc;
  *ctx = (uint32_t)agreed;
  sfm.next_ctx = agreed + (int)SFM_CTX_BLOCK;
  return 0;
}

/* What a new communicator inherits from its parent: the error handler. */
static void sfm_comm_inherit(MPI_Comm parent, MPI_Comm child) { sfm.comms[child].errh = sfm_comm_get(parent)->errh; }

int MPI_Comm_dup(MPI_Comm comm, MPI_Comm *newcomm) {
  uint32_t ctx;
  int rc;
  SFM_COMM("MPI_Comm_dup", comm, c);
  if (newcomm == NULL) return sfm_error(comm, "MPI_Comm_dup", MPI_ERR_ARG, "newcomm is NULL");
  sf_job_set_label(sfm.job, "MPI_Comm_dup");
  rc = sfm_agree_ctx(comm, &ctx);
  sf_job_set_label(sfm.job, NULL);
  if (rc < 0) return sfm_dp_error(comm, "MPI_Comm_dup", rc);
  c = sfm_comm_get(comm); /* the table may have moved */
  if (sfm_comm_new(c->size, c->rank, c->world, ctx, newcomm) < 0)
    return sfm_error(comm, "MPI_Comm_dup", MPI_ERR_NO_MEM, "out of memory");
  sfm_comm_inherit(comm, *newcomm);
  /* a duplicate keeps the topology, the info hints and (through their copy callbacks) the
   * attributes */
  if (sfm_comm_get(comm)->topo && (sfm_comm_get(*newcomm)->topo = sfm_topo_dup(sfm_comm_get(comm)->topo)) == NULL)
    return sfm_error(comm, "MPI_Comm_dup", MPI_ERR_NO_MEM, "out of memory");
  if (sfm_comm_get(comm)->info != MPI_INFO_NULL && MPI_Info_dup(sfm_comm_get(comm)->info, &sfm.comms[*newcomm].info) != MPI_SUCCESS)
    return sfm_error(comm, "MPI_Comm_dup", MPI_ERR_NO_MEM, "out of memory");
  rc = sfm_attrs_copy(SFM_OBJ_COMM, comm, *newcomm, &sfm_comm_get(comm)->attrs, &sfm_comm_get(*newcomm)->attrs);
  if (rc != MPI_SUCCESS) return sfm_error(comm, "MPI_Comm_dup", rc, "an attribute copy callback failed");
  return MPI_SUCCESS;
}

int MPI_Comm_dup_with_info(MPI_Comm comm, MPI_Info info, MPI_Comm *newcomm) {
  int rc = MPI_Comm_dup(comm, newcomm);
  if (rc == MPI_SUCCESS && info != MPI_INFO_NULL) rc = MPI_Comm_set_info(*newcomm, info);
  return rc;
}

typedef struct { int color, key, rank; } sfm_ck;
static int sfm_ck_cmp(const void *a, const void *b) {
  const sfm_ck *x = a, *y = b;
  if (x->key != y->key) return x->key < y->key ? -1 : 1;
  return x->rank - y->rank;
}

int MPI_Comm_split(MPI_Comm comm, int color, int key, MPI_Comm *newcomm) {
  uint32_t ctx;
  int rc, n, mine[2] = {color, key}, *all = NULL, cnt = 0, myidx = -1, *world = NULL;
  size_t *lens = NULL, *displs = NULL;
  sfm_ck *v = NULL;
  sf_group g;
  SFM_COMM("MPI_Comm_split", comm, c);
  if (newcomm == NULL) return sfm_error(comm, "MPI_Comm_split", MPI_ERR_ARG, "newcomm is NULL");
  if (color < 0 && color != MPI_UNDEFINED)
    return sfm_error(comm, "MPI_Comm_split", MPI_ERR_ARG, "color %d must be >= 0 or MPI_UNDEFINED", color);
  n = c->size;
  g = sfm_coll_group(c);
  all = malloc((size_t)n * 2 * sizeof(int));
  lens = malloc((size_t)n * sizeof(size_t));
  displs = malloc((size_t)n * sizeof(size_t));
  v = malloc((size_t)n * sizeof *v);
  world = malloc((size_t)n * sizeof(int));
  if (!all || !lens || !displs || !v || !world) {
    rc = sfm_error(comm, "MPI_Comm_split", MPI_ERR_NO_MEM, "out of memory");
    goto done;
  }
  for (int i = 0; i < n; i++) {
    lens[i] = 2 * sizeof(int);
    displs[i] = (size_t)i * 2 * sizeof(int);
  }
  sf_job_set_label(sfm.job, "MPI_Comm_split");
  rc = sf_allgatherv(sfm.job, &g, mine, sizeof mine, all, lens, displs);
  if (rc >= 0) rc = sfm_agree_ctx(comm, &ctx);
  sf_job_set_label(sfm.job, NULL);
  if (rc < 0) {
    rc = sfm_dp_error(comm, "MPI_Comm_split", rc);
    goto done;
  }
  if (color == MPI_UNDEFINED) {
    *newcomm = MPI_COMM_NULL;
    rc = MPI_SUCCESS;
    goto done;
  }
  c = sfm_comm_get(comm);
  for (int i = 0; i < n; i++)
    if (all[2 * i] == color) {
      v[cnt].color = color;
      v[cnt].key = all[2 * i + 1];
      v[cnt].rank = i;
      cnt++;
    }
  qsort(v, (size_t)cnt, sizeof *v, sfm_ck_cmp);
  for (int i = 0; i < cnt; i++) {
    world[i] = c->world[v[i].rank];
    if (v[i].rank == c->rank) myidx = i;
  }
  if (sfm_comm_new(cnt, myidx, world, ctx, newcomm) < 0) {
    rc = sfm_error(comm, "MPI_Comm_split", MPI_ERR_NO_MEM, "out of memory");
    goto done;
  }
  sfm_comm_inherit(comm, *newcomm);
  rc = MPI_SUCCESS;
done:
  free(all);
  free(lens);
  free(displs);
  free(v);
  free(world);
  return rc;
}

int MPI_Comm_create(MPI_Comm comm, MPI_Group group, MPI_Comm *newcomm) {
  uint32_t ctx;
  int rc, me = -1;
  sfm_group *gr;
  SFM_COMM("MPI_Comm_create", comm, c);
  gr = group == MPI_GROUP_EMPTY ? &sfm.groups[MPI_GROUP_EMPTY] : sfm_group_get(group);
  if (gr == NULL || newcomm == NULL) return sfm_error(comm, "MPI_Comm_create", MPI_ERR_GROUP, "invalid group %d", group);
  for (int i = 0; i < gr->size; i++) {
    if (c->inv[gr->world[i]] < 0)
      return sfm_error(comm, "MPI_Comm_create", MPI_ERR_GROUP, "group member %d is not in the communicator", i);
    if (gr->world[i] == sfm.rank) me = i;
  }
  sf_job_set_label(sfm.job, "MPI_Comm_create");
  rc = sfm_agree_ctx(comm, &ctx);
  sf_job_set_label(sfm.job, NULL);
  if (rc < 0) return sfm_dp_error(comm, "MPI_Comm_create", rc);
  if (me < 0) {
    *newcomm = MPI_COMM_NULL;
    return MPI_SUCCESS;
  }
  gr = group == MPI_GROUP_EMPTY ? &sfm.groups[MPI_GROUP_EMPTY] : sfm_group_get(group);
  if (sfm_comm_new(gr->size, me, gr->world, ctx, newcomm) < 0)
    return sfm_error(comm, "MPI_Comm_create", MPI_ERR_NO_MEM, "out of memory");
  sfm_comm_inherit(comm, *newcomm);
  return MPI_SUCCESS;
}

/* Collective over the group's members only (not the whole parent): they agree on a context
 * block among themselves, in the parent's internal context. `tag` tells concurrent calls with
 * overlapping groups apart in MPI; here such calls are ordered by each member's program order
 * instead, so they must be made in the same order on every member. */
int MPI_Comm_create_group(MPI_Comm comm, MPI_Group group, int tag, MPI_Comm *newcomm) {
  int me = -1, rc, mine, agreed;
  sfm_group *gr;
  sf_group g;
  sf_builtin_arg a = {SF_OP_MAX, SF_INT};
  SFM_COMM("MPI_Comm_create_group", comm, c);
  gr = group == MPI_GROUP_EMPTY ? &sfm.groups[MPI_GROUP_EMPTY] : sfm_group_get(group);
  if (gr == NULL || newcomm == NULL) return sfm_error(comm, "MPI_Comm_create_group", MPI_ERR_GROUP, "invalid group %d", group);
  if (tag < 0 || tag > SF_TAG_MAX)
    return sfm_error(comm, "MPI_Comm_create_group", MPI_ERR_TAG, "tag %d out of range 0..%d", tag, SF_TAG_MAX);
  for (int i = 0; i < gr->size; i++) {
    if (c->inv[gr->world[i]] < 0)
      return sfm_error(comm, "MPI_Comm_create_group", MPI_ERR_GROUP, "group member %d is not in the communicator", i);
    if (gr->world[i] == sfm.rank) me = i;
  }
  if (me < 0) {
    *newcomm = MPI_COMM_NULL;
    return MPI_SUCCESS; /* not a member: nothing to agree on */
  }
  g.size = gr->size;
  g.rank = me;
  g.ranks = gr->world;
  g.ctx = c->ctx + SFM_CTX_INT;
  mine = sfm.next_ctx;
  sf_job_set_label(sfm.job, "MPI_Comm_create_group");
  rc = sf_allreduce(sfm.job, &g, &mine, &agreed, sizeof agreed, sf_builtin_combine, &a);
  sf_job_set_label(sfm.job, NULL);
  if (rc < 0) return sfm_dp_error(comm, "MPI_Comm_create_group", rc);
  sfm.next_ctx = agreed + (int)SFM_CTX_BLOCK;
  gr = group == MPI_GROUP_EMPTY ? &sfm.groups[MPI_GROUP_EMPTY] : sfm_group_get(group);
  if (sfm_comm_new(gr->size, me, gr->world, (uint32_t)agreed, newcomm) < 0)
    return sfm_error(comm, "MPI_Comm_create_group", MPI_ERR_NO_MEM, "out of memory");
  sfm_comm_inherit(comm, *newcomm);
  return MPI_SUCCESS;
}

/* One host: every rank shares memory with every other, so MPI_COMM_TYPE_SHARED keeps them all
 * (ordered by key). A job across hosts will colour by host here. */
int MPI_Comm_split_type(MPI_Comm comm, int split_type, int key, MPI_Info info, MPI_Comm *newcomm) {
  (void)info;
  SFM_COMM("MPI_Comm_split_type", comm, c);
  (void)c;
  if (split_type != MPI_COMM_TYPE_SHARED && split_type != MPI_UNDEFINED)
    return sfm_error(comm, "MPI_Comm_split_type", MPI_ERR_ARG,
                     "split_type %d is neither MPI_COMM_TYPE_SHARED nor MPI_UNDEFINED", split_type);
  return MPI_Comm_split(comm, split_type == MPI_UNDEFINED ? MPI_UNDEFINED : 0, key, newcomm);
}

int MPI_Comm_free(MPI_Comm *comm) {
  sfm_comm *c;
  int rc;
  SFM_INIT_CHECK("MPI_Comm_free");
  if (comm == NULL || (c = sfm_comm_get(*comm)) == NULL)
    return sfm_error(MPI_COMM_WORLD, "MPI_Comm_free", MPI_ERR_COMM, "invalid communicator");
  if (*comm == MPI_COMM_WORLD || *comm == MPI_COMM_SELF)
    return sfm_error(*comm, "MPI_Comm_free", MPI_ERR_COMM, "cannot free %s", c->name);
  rc = sfm_attrs_clear(SFM_OBJ_COMM, *comm, &c->attrs);
  if (rc != MPI_SUCCESS) return sfm_error(*comm, "MPI_Comm_free", rc, "an attribute delete callback failed");
  c = sfm_comm_get(*comm);
  if (c->info != MPI_INFO_NULL) MPI_Info_free(&c->info);
  sfm_topo_free(c->topo);
  free(c->world);
  free(c->inv);
  memset(c, 0, sizeof *c);
  *comm = MPI_COMM_NULL;
  return MPI_SUCCESS;
}

int MPI_Comm_compare(MPI_Comm comm1, MPI_Comm comm2, int *result) {
  sfm_comm *a, *b;
  int r;
  SFM_INIT_CHECK("MPI_Comm_compare");
  a = sfm_comm_get(comm1);
  b = sfm_comm_get(comm2);
  if (a == NULL || b == NULL || result == NULL)
    return sfm_error(MPI_COMM_WORLD, "MPI_Comm_compare", MPI_ERR_COMM, "invalid communicator");
  if (comm1 == comm2) {
    *result = MPI_IDENT;
    return MPI_SUCCESS;
  }
  r = sfm_cmp_lists(a->world, a->size, b->world, b->size);
  *result = r == MPI_IDENT ? MPI_CONGRUENT : r;
  return MPI_SUCCESS;
}

int MPI_Comm_test_inter(MPI_Comm comm, int *flag) {
  SFM_COMM("MPI_Comm_test_inter", comm, c);
  (void)c;
  if (flag) *flag = 0;
  return MPI_SUCCESS;
}

int MPI_Comm_set_name(MPI_Comm comm, const char *name) {
  SFM_COMM("MPI_Comm_set_name", comm, c);
  snprintf(c->name, sizeof c->name, "%s", name ? name : "");
  return MPI_SUCCESS;
}

int MPI_Comm_get_name(MPI_Comm comm, char *name, int *len) {
  SFM_COMM("MPI_Comm_get_name", comm, c);
  if (name == NULL || len == NULL) return sfm_error(comm, "MPI_Comm_get_name", MPI_ERR_ARG, "NULL argument");
  *len = snprintf(name, MPI_MAX_OBJECT_NAME, "%s", c->name);
  return MPI_SUCCESS;
}


int MPI_Comm_set_info(MPI_Comm comm, MPI_Info info) {
  SFM_COMM("MPI_Comm_set_info", comm, c);
  if (sfm_info_replace(&c->info, info) < 0)
    return sfm_error(comm, "MPI_Comm_set_info", MPI_ERR_INFO, "invalid info %d", info);
  return MPI_SUCCESS;
}

/* The hints in use: the ones set (libsfmpi acts on none of them, so every one is kept as given). */
int MPI_Comm_get_info(MPI_Comm comm, MPI_Info *info_used) {
  SFM_COMM("MPI_Comm_get_info", comm, c);
  if (info_used == NULL) return sfm_error(comm, "MPI_Comm_get_info", MPI_ERR_ARG, "info_used is NULL");
  return sfm_info_used(c->info, info_used);
}
