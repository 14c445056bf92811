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

/* A new group of world ranks w[0..n-1] (MPI_GROUP_EMPTY when n is 0); MPI code, raised. */
static int sfm_group_make(const char *fn, int n, const int *w, MPI_Group *newgroup) {
  if (n == 0) {
    *newgroup = MPI_GROUP_EMPTY;
    return MPI_SUCCESS;
  }
  if (sfm_group_new(n, w, newgroup) < 0) return sfm_error(MPI_COMM_WORLD, fn, MPI_ERR_NO_MEM, "out of memory");
  return MPI_SUCCESS;
}

/* Check a list of n distinct ranks of g (MPI_Group_incl/excl); marks them in seen[]. */
static int sfm_ranks_ok(const char *fn, const sfm_group *g, int n, const int *ranks, unsigned char *seen) {
  if (n < 0 || n > g->size)
    return sfm_error(MPI_COMM_WORLD, fn, MPI_ERR_ARG, "n %d out of range for a group of size %d", n, g->size);
  if (n > 0 && ranks == NULL) return sfm_error(MPI_COMM_WORLD, fn, MPI_ERR_ARG, "ranks is NULL");
  for (int i = 0; i < n; i++) {
    if (ranks[i] < 0 || ranks[i] >= g->size)
      return sfm_error(MPI_COMM_WORLD, fn, MPI_ERR_RANK, "ranks[%d] = %d out of range for a group of size %d", i, ranks[i],
                       g->size);
    if (seen[ranks[i]]) return sfm_error(MPI_COMM_WORLD, fn, MPI_ERR_RANK, "rank %d is listed twice", ranks[i]);
    seen[ranks[i]] = 1;
  }
  return MPI_SUCCESS;
}

/* incl: the listed ranks in list order; excl: the others in group order. */
static int sfm_group_pick(const char *fn, MPI_Group group, int n, const int *ranks, int excl, MPI_Group *newgroup) {
  int *w, k = 0, rc;
  unsigned char *seen;
  SFM_GROUP(fn, group, g);
  if (newgroup == NULL) return sfm_error(MPI_COMM_WORLD, fn, MPI_ERR_ARG, "newgroup is NULL");
  w = malloc((size_t)(g->size ? g->size : 1) * sizeof(int));
  seen = calloc((size_t)(g->size ? g->size : 1), 1);
  if (w == NULL || seen == NULL) {
    free(w);
    free(seen);
    return sfm_error(MPI_COMM_WORLD, fn, MPI_ERR_NO_MEM, "out of memory");
  }
  rc = sfm_ranks_ok(fn, g, n, ranks, seen);
  if (rc == MPI_SUCCESS) {
    if (excl) {
      for (int i = 0; i < g->size; i++)
        if (!seen[i]) w[k++] = g->world[i];
    } else {
      for (int i = 0; i < n; i++) w[k++] = g->world[ranks[i]];
    }
    rc = sfm_group_make(fn, k, w, newgroup);
  }
  free(w);
  free(seen);
  return rc;
}

int MPI_Group_incl(MPI_Group group, int n, const int ranks[], MPI_Group *newgroup) {
  return sfm_group_pick("MPI_Group_incl", group, n, ranks, 0, newgroup);
}

int MPI_Group_excl(MPI_Group group, int n, const int ranks[], MPI_Group *newgroup) {
  return sfm_group_pick("MPI_Group_excl", group, n, ranks, 1, newgroup);
}

/* Expand (first, last, stride) triplets into ranks of a group of `size`. */
static int sfm_ranges(const char *fn, int size, int n, int ranges[][3], int **out, int *nout) {
  int cap = 0, k = 0, *r = NULL;
  if (n < 0 || (n > 0 && ranges == NULL)) return sfm_error(MPI_COMM_WORLD, fn, MPI_ERR_ARG, "bad n %d or NULL ranges", n);
  for (int i = 0; i < n; i++) {
    int first = ranges[i][0], last = ranges[i][1], stride = ranges[i][2];
    if (stride == 0 || first < 0 || first >= size || last < 0 || last >= size || (stride > 0 && first > last) ||
        (stride < 0 && first < last)) {
      free(r);
      return sfm_error(MPI_COMM_WORLD, fn, MPI_ERR_RANK, "range %d (%d, %d, %d) does not fit a group of size %d", i, first,
                       last, stride, size);
    }
    for (int v = first; stride > 0 ? v <= last : v >= last; v += stride) {
      if (k == cap) {
        int nc = cap ? cap * 2 : 16;
        int *p = realloc(r, (size_t)nc * sizeof *p);
        if (p == NULL) {
          free(r);
          return sfm_error(MPI_COMM_WORLD, fn, MPI_ERR_NO_MEM, "out of memory");
        }
        r = p;
        cap = nc;
      }
      r[k++] = v;
    }
  }
  *out = r;
  *nout = k;
  return MPI_SUCCESS;
}

static int sfm_group_range(const char *fn, MPI_Group group, int n, int ranges[][3], int excl, MPI_Group *newgroup) {
  int *r = NULL, k = 0, rc;
  SFM_GROUP(fn, group, g);
  rc = sfm_ranges(fn, g->size, n, ranges, &r, &k);
  if (rc != MPI_SUCCESS) return rc;
  rc = sfm_group_pick(fn, group, k, r, excl, newgroup);
  free(r);
  return rc;
}

int MPI_Group_range_incl(MPI_Group group, int n, int ranges[][3], MPI_Group *newgroup) {
  return sfm_group_range("MPI_Group_range_incl", group, n, ranges, 0, newgroup);
}

int MPI_Group_range_excl(MPI_Group group, int n, int ranges[][3], MPI_Group *newgroup) {
  return sfm_group_range("MPI_Group_range_excl", group, n, ranges, 1, newgroup);
}

enum { SFM_UNION, SFM_INTERSECTION, SFM_DIFFERENCE };

static int sfm_in_list(const int *w, int n, int x) {
  for (int i = 0; i < n; i++)
    if (w[i] == x) return 1;
  return 0;
}

/* MPI 6.3.2: union = group1's members, then group2's not in group1; intersection and
 * difference keep group1's order. */
static int sfm_group_setop(const char *fn, int op, MPI_Group group1, MPI_Group group2, MPI_Group *newgroup) {
  int *w, k = 0, rc;
  SFM_GROUP(fn, group1, a);
  sfm_group *b = group2 == MPI_GROUP_EMPTY ? &sfm.groups[MPI_GROUP_EMPTY] : sfm_group_get(group2);
  if (b == NULL) return sfm_error(MPI_COMM_WORLD, fn, MPI_ERR_GROUP, "invalid group %d", group2);
  if (newgroup == NULL) return sfm_error(MPI_COMM_WORLD, fn, MPI_ERR_ARG, "newgroup is NULL");
  w = malloc((size_t)(a->size + b->size + 1) * sizeof(int));
  if (w == NULL) return sfm_error(MPI_COMM_WORLD, fn, MPI_ERR_NO_MEM, "out of memory");
  for (int i = 0; i < a->size; i++) {
    int inb = sfm_in_list(b->world, b->size, a->world[i]);
    if (op == SFM_UNION || (op == SFM_INTERSECTION && inb) || (op == SFM_DIFFERENCE && !inb)) w[k++] = a->world[i];
  }
  if (op == SFM_UNION)
    for (int i = 0; i < b->size; i++)
      if (!sfm_in_list(a->world, a->size, b->world[i])) w[k++] = b->world[i];
  rc = sfm_group_make(fn, k, w, newgroup);
  free(w);
  return rc;
}

int MPI_Group_union(MPI_Group group1, MPI_Group group2, MPI_Group *newgroup) {
  return sfm_group_setop("MPI_Group_union", SFM_UNION, group1, group2, newgroup);
}
int MPI_Group_intersection(MPI_Group group1, MPI_Group group2, MPI_Group *newgroup) {
  return sfm_group_setop("MPI_Group_intersection", SFM_INTERSECTION, group1, group2, newgroup);
}
int MPI_Group_difference(MPI_Group group1, MPI_Group group2, MPI_Group *newgroup) {
  return sfm_group_setop("MPI_Group_difference", SFM_DIFFERENCE, group1, group2, newgroup);
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
