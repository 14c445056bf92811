/*
 * group.c: groups (lists of world ranks): construction from communicators and other groups,
 * comparison, rank translation.
 */
#include "sfmpi.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

sfm_group *sfm_group_get(MPI_Group g) {
  if (g <= 0 || g >= sfm.ngroups || !sfm.groups[g].used) return NULL;
  return &sfm.groups[g];
}

int sfm_group_new(int size, const int *world, MPI_Group *out) {
  int i;
  for (i = 2; i < sfm.ngroups; i++)
    if (!sfm.groups[i].used) break;
  if (i >= sfm.ngroups && sfm_grow((void **)&sfm.groups, &sfm.ngroups, sizeof *sfm.groups) < 0) return -1;
  sfm.groups[i].world = malloc((size_t)(size ? size : 1) * sizeof(int));
  if (sfm.groups[i].world == NULL) return -1;
  if (size) memcpy(sfm.groups[i].world, world, (size_t)size * sizeof(int));
  sfm.groups[i].size = size;
  sfm.groups[i].used = 1;
  *out = i;
  return 0;
}

int sfm_cmp_lists(const int *a, int na, const int *b, int nb) {
  int same_order = 1, same_set = 1;
  if (na != nb) return MPI_UNEQUAL;
  for (int i = 0; i < na; i++) {
    int found = 0;
    if (a[i] != b[i]) same_order = 0;
    for (int j = 0; j < nb; j++)
      if (a[i] == b[j]) found = 1;
    if (!found) same_set = 0;
  }
  return same_order ? MPI_IDENT : same_set ? MPI_SIMILAR : MPI_UNEQUAL;
}

int MPI_Comm_group(MPI_Comm comm, MPI_Group *group) {
  SFM_COMM("MPI_Comm_group", comm, c);
  if (group == NULL) return sfm_error(comm, "MPI_Comm_group", MPI_ERR_ARG, "group is NULL");
  if (sfm_group_new(c->size, sfm_comm_get(comm)->world, group) < 0)
    return sfm_error(comm, "MPI_Comm_group", MPI_ERR_NO_MEM, "out of memory");
  return MPI_SUCCESS;
}

#define SFM_GROUP(fn, grp, g)                                                                      \
  SFM_INIT_CHECK(fn);                                                                            \
  sfm_group *g = (grp) == MPI_GROUP_EMPTY ? &sfm.groups[MPI_GROUP_EMPTY] : sfm_group_get(grp);   \
  if (g == NULL) return sfm_error(MPI_COMM_WORLD, fn, MPI_ERR_GROUP, "invalid group %d", (int)(grp))

int MPI_Group_size(MPI_Group group, int *size) {
  SFM_GROUP("MPI_Group_size", group, g);
  if (size) *size = g->size;
  return MPI_SUCCESS;
}

int MPI_Group_rank(MPI_Group group, int *rank) {
  SFM_GROUP("MPI_Group_rank", group, g);
  if (rank == NULL) return MPI_ERR_ARG;
  *rank = MPI_UNDEFINED;
  for (int i = 0; i < g->size; i++)
    if (g->world[i] == sfm.rank) *rank = i;
  return MPI_SUCCESS;
}

int MPI_Group_incl(MPI_Group group, int n, const int ranks[], MPI_Group *newgroup) {
  int *w;
  SFM_GROUP("MPI_Group_incl", group, g);
  if (n < 0 || n > g->size || newgroup == NULL)
    return sfm_error(MPI_COMM_WORLD, "MPI_Group_incl", MPI_ERR_ARG, "n %d out of range for a group of size %d", n, g->size);
  if (n == 0) {
    *newgroup = MPI_GROUP_EMPTY;
    return MPI_SUCCESS;
  }
  w = malloc((size_t)n * sizeof(int));
  if (w == NULL) return sfm_error(MPI_COMM_WORLD, "MPI_Group_incl", MPI_ERR_NO_MEM, "out of memory");
  for (int i = 0; i < n; i++) {
    if (ranks[i] < 0 || ranks[i] >= g->size) {
      free(w);
      return sfm_error(MPI_COMM_WORLD, "MPI_Group_incl", MPI_ERR_RANK, "rank %d out of range for a group of size %d",
                       ranks[i], g->size);
    }
    w[i] = g->world[ranks[i]];
  }
  if (sfm_group_new(n, w, newgroup) < 0) {
    free(w);
    return sfm_error(MPI_COMM_WORLD, "MPI_Group_incl", MPI_ERR_NO_MEM, "out of memory");
  }
  free(w);
  return MPI_SUCCESS;
}

int MPI_Group_excl(MPI_Group group, int n, const int ranks[], MPI_Group *newgroup) {
  int *w, k = 0;
  SFM_GROUP("MPI_Group_excl", group, g);
  if (n < 0 || n > g->size || newgroup == NULL)
    return sfm_error(MPI_COMM_WORLD, "MPI_Group_excl", MPI_ERR_ARG, "n %d out of range for a group of size %d", n, g->size);
  w = malloc((size_t)(g->size ? g->size : 1) * sizeof(int));
  if (w == NULL) return sfm_error(MPI_COMM_WORLD, "MPI_Group_excl", MPI_ERR_NO_MEM, "out of memory");
  for (int i = 0; i < g->size; i++) {
    int ex = 0;
    for (int j = 0; j < n; j++)
      if (ranks[j] == i) ex = 1;
    if (!ex) w[k++] = g->world[i];
  }
  if (k == 0) {
    *newgroup = MPI_GROUP_EMPTY;
  } else if (sfm_group_new(k, w, newgroup) < 0) {
    free(w);
    return sfm_error(MPI_COMM_WORLD, "MPI_Group_excl", MPI_ERR_NO_MEM, "out of memory");
  }
  free(w);
  return MPI_SUCCESS;
}

int MPI_Group_translate_ranks(MPI_Group group1, int n, const int ranks1[], MPI_Group group2, int ranks2[]) {
  SFM_GROUP("MPI_Group_translate_ranks", group1, a);
  sfm_group *b = group2 == MPI_GROUP_EMPTY ? &sfm.groups[MPI_GROUP_EMPTY] : sfm_group_get(group2);
  if (b == NULL) return sfm_error(MPI_COMM_WORLD, "MPI_Group_translate_ranks", MPI_ERR_GROUP, "invalid group %d", group2);
  for (int i = 0; i < n; i++) {
    if (ranks1[i] == MPI_PROC_NULL) {
      ranks2[i] = MPI_PROC_NULL;
      continue;
    }
    if (ranks1[i] < 0 || ranks1[i] >= a->size)
      return sfm_error(MPI_COMM_WORLD, "MPI_Group_translate_ranks", MPI_ERR_RANK, "rank %d out of range for a group of size %d",
                       ranks1[i], a->size);
    ranks2[i] = MPI_UNDEFINED;
    for (int j = 0; j < b->size; j++)
      if (b->world[j] == a->world[ranks1[i]]) ranks2[i] = j;
  }
  return MPI_SUCCESS;
}

int MPI_Group_compare(MPI_Group group1, MPI_Group group2, int *result) {
  SFM_GROUP("MPI_Group_compare", group1, a);
  sfm_group *b = group2 == MPI_GROUP_EMPTY ? &sfm.groups[MPI_GROUP_EMPTY] : sfm_group_get(group2);
  if (b == NULL || result == NULL) return sfm_error(MPI_COMM_WORLD, "MPI_Group_compare", MPI_ERR_GROUP, "invalid group");
  *result = sfm_cmp_lists(a->world, a->size, b->world, b->size);
  return MPI_SUCCESS;
}

int MPI_Group_free(MPI_Group *group) {
  sfm_group *g;
  SFM_INIT_CHECK("MPI_Group_free");
  if (group == NULL) return sfm_error(MPI_COMM_WORLD, "MPI_Group_free", MPI_ERR_GROUP, "group is NULL");
  if (*group == MPI_GROUP_EMPTY) {
    *group = MPI_GROUP_NULL;
    return MPI_SUCCESS;
  }
  g = sfm_group_get(*group);
  if (g == NULL) return sfm_error(MPI_COMM_WORLD, "MPI_Group_free", MPI_ERR_GROUP, "invalid group %d", *group);
  free(g->world);
  memset(g, 0, sizeof *g);
  *group = MPI_GROUP_NULL;
  return MPI_SUCCESS;
}
