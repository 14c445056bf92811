/* groups.c: group construction and set operations with known members, rank translation and
 * comparison, MPI_Comm_create and MPI_Comm_create_group (called by the members only),
 * MPI_Comm_compare, MPI_Comm_split_type, attribute caching with copy and delete callbacks,
 * the predefined attributes, and MPI_Info objects. */
#include "sft.h"

static int deleted, copied;

static int copy_fn(MPI_Comm comm, int keyval, void *extra, void *in, void *out, int *flag) {
  (void)comm;
  (void)keyval;
  (void)extra;
  copied++;
  *(void **)out = (void *)((char *)in + 1); /* the copy's value is visibly different */
  *flag = 1;
  return MPI_SUCCESS;
}

static int delete_fn(MPI_Comm comm, int keyval, void *val, void *extra) {
  (void)comm;
  (void)keyval;
  (void)val;
  (*(int *)extra)++;
  deleted++;
  return MPI_SUCCESS;
}

static void groups(int n, int r) {
  MPI_Group world, evens, odds, u, i, d, rng, rngx, empty;
  int ne = (n + 1) / 2, *ev = malloc(sizeof(int) * (size_t)n), sz, rk, cmp;
  for (int k = 0; k < ne; k++) ev[k] = 2 * k;
  MPI_Comm_group(MPI_COMM_WORLD, &world);
  CHECK_MPI(MPI_Group_incl(world, ne, ev, &evens));
  CHECK_MPI(MPI_Group_excl(world, ne, ev, &odds));
  MPI_Group_size(evens, &sz);
  CHECK(sz == ne, "evens has %d members", sz);
  MPI_Group_rank(evens, &rk);
  CHECK(rk == (r % 2 == 0 ? r / 2 : MPI_UNDEFINED), "my rank among the evens: %d", rk);
  MPI_Group_size(odds, &sz);
  CHECK(sz == n - ne, "odds has %d members", sz);
  /* set operations */
  CHECK_MPI(MPI_Group_union(odds, evens, &u));
  MPI_Group_size(u, &sz);
  CHECK(sz == n, "union size %d", sz);
  {
    int first = -1, zero = 0;
    MPI_Group_translate_ranks(u, 1, &zero, world, &first);
    CHECK(first == (n > 1 ? 1 : 0), "a union lists group1's members first: %d", first);
  }
  CHECK_MPI(MPI_Group_compare(u, world, &cmp));
  CHECK(cmp == (n > 2 ? MPI_SIMILAR : MPI_IDENT) || (n == 2 && cmp == MPI_SIMILAR), "union vs world: %d", cmp);
  CHECK_MPI(MPI_Group_intersection(world, evens, &i));
  MPI_Group_compare(i, evens, &cmp);
  CHECK(cmp == MPI_IDENT, "world ^ evens = evens: %d", cmp);
  CHECK_MPI(MPI_Group_difference(world, evens, &d));
  MPI_Group_compare(d, odds, &cmp);
  CHECK(cmp == MPI_IDENT, "world - evens = odds: %d", cmp);
  CHECK_MPI(MPI_Group_difference(evens, world, &empty));
  MPI_Group_size(empty, &sz);
  CHECK(sz == 0, "evens - world is empty: %d", sz);
  /* ranges: (0, n-1, 2) is the evens; excluding it leaves the odds */
  {
    int tri[1][3] = {{0, n - 1, 2}};
    CHECK_MPI(MPI_Group_range_incl(world, 1, tri, &rng));
    MPI_Group_compare(rng, evens, &cmp);
    CHECK(cmp == MPI_IDENT, "range_incl (0,%d,2) = evens: %d", n - 1, cmp);
    CHECK_MPI(MPI_Group_range_excl(world, 1, tri, &rngx));
    MPI_Group_compare(rngx, odds, &cmp);
    CHECK(cmp == MPI_IDENT, "range_excl (0,%d,2) = odds: %d", n - 1, cmp);
  }
  /* translation, with MPI_PROC_NULL and a rank that is not in the other group */
  {
    int in[3] = {0, MPI_PROC_NULL, n > 1 ? 1 : 0}, out[3];
    CHECK_MPI(MPI_Group_translate_ranks(world, 3, in, evens, out));
    CHECK(out[0] == 0 && out[1] == MPI_PROC_NULL && out[2] == (n > 1 ? MPI_UNDEFINED : 0), "translate %d %d %d", out[0], out[1], out[2]);
  }
  /* a reversed world is similar, not identical */
  {
    int *rev = malloc(sizeof(int) * (size_t)n);
    MPI_Group rg;
    for (int k = 0; k < n; k++) rev[k] = n - 1 - k;
    MPI_Group_incl(world, n, rev, &rg);
    MPI_Group_compare(rg, world, &cmp);
    CHECK(cmp == (n == 1 ? MPI_IDENT : MPI_SIMILAR), "reversed world: %d", cmp);
    MPI_Group_free(&rg);
    free(rev);
  }
  /* communicators from groups: Comm_create (everyone calls), Comm_create_group (members) */
  {
    MPI_Comm ce, cg;
    int s = -1;
    CHECK_MPI(MPI_Comm_create(MPI_COMM_WORLD, evens, &ce));
    CHECK((ce == MPI_COMM_NULL) == (r % 2 == 1), "Comm_create membership");
    if (ce != MPI_COMM_NULL) {
      MPI_Allreduce(&r, &s, 1, MPI_INT, MPI_SUM, ce);
      CHECK(s == ne * (ne - 1), "sum over the evens' communicator %d", s);
      MPI_Comm_free(&ce);
    }
    if (r % 2 == 1) { /* only the odds call it */
      CHECK_MPI(MPI_Comm_create_group(MPI_COMM_WORLD, odds, 7, &cg));
      MPI_Comm_size(cg, &sz);
      MPI_Allreduce(&r, &s, 1, MPI_INT, MPI_SUM, cg);
      CHECK(sz == n - ne && s == (n - ne) * (n - ne), "Comm_create_group of the odds: size %d sum %d", sz, s);
      MPI_Comm_free(&cg);
    }
  }
  MPI_Group_free(&world);
  MPI_Group_free(&evens);
  MPI_Group_free(&odds);
  MPI_Group_free(&u);
  MPI_Group_free(&i);
  MPI_Group_free(&d);
  MPI_Group_free(&rng);
  MPI_Group_free(&rngx);
  MPI_Group_free(&empty);
  free(ev);
}

static void comms(int n, int r) {
  MPI_Comm dup, shared, rev;
  int cmp, sz;
  MPI_Comm_dup(MPI_COMM_WORLD, &dup);
  CHECK_MPI(MPI_Comm_compare(MPI_COMM_WORLD, MPI_COMM_WORLD, &cmp));
  CHECK(cmp == MPI_IDENT, "world vs itself %d", cmp);
  CHECK_MPI(MPI_Comm_compare(MPI_COMM_WORLD, dup, &cmp));
  CHECK(cmp == MPI_CONGRUENT, "world vs its dup %d", cmp);
  MPI_Comm_split(MPI_COMM_WORLD, 0, n - r, &rev);
  CHECK_MPI(MPI_Comm_compare(MPI_COMM_WORLD, rev, &cmp));
  CHECK(cmp == (n == 1 ? MPI_CONGRUENT : MPI_SIMILAR), "world vs reversed %d", cmp);
  /* one host: every rank shares memory with every other */
  CHECK_MPI(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, r, MPI_INFO_NULL, &shared));
  MPI_Comm_size(shared, &sz);
  CHECK(sz >= 1 && sz <= n, "MPI_COMM_TYPE_SHARED size %d", sz);
  {
    MPI_Comm none;
    CHECK_MPI(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_UNDEFINED, r, MPI_INFO_NULL, &none));
    CHECK(none == MPI_COMM_NULL, "split_type MPI_UNDEFINED gives MPI_COMM_NULL");
  }
  MPI_Comm_free(&shared);
  MPI_Comm_free(&rev);
  MPI_Comm_free(&dup);
}

static void attributes(void) {
  int key, *tagub, flag = 0, dels = 0, val = 0, *wg;
  void *got;
  MPI_Comm d1, d2;
  CHECK_MPI(MPI_Comm_get_attr(MPI_COMM_WORLD, MPI_TAG_UB, &tagub, &flag));
  CHECK(flag && *tagub >= 32767, "MPI_TAG_UB %d", flag ? *tagub : -1);
  CHECK_MPI(MPI_Comm_get_attr(MPI_COMM_WORLD, MPI_WTIME_IS_GLOBAL, &wg, &flag));
  CHECK(!flag || *wg == 0 || *wg == 1, "MPI_WTIME_IS_GLOBAL is a boolean");
  CHECK_MPI(MPI_Comm_create_keyval(copy_fn, delete_fn, &key, &dels));
  CHECK_MPI(MPI_Comm_set_attr(MPI_COMM_WORLD, key, &val));
  CHECK_MPI(MPI_Comm_get_attr(MPI_COMM_WORLD, key, &got, &flag));
  CHECK(flag && got == &val, "get_attr returns what set_attr stored");
  /* a dup runs the copy callback; freeing it runs the delete callback */
  MPI_Comm_dup(MPI_COMM_WORLD, &d1);
  CHECK_MPI(MPI_Comm_get_attr(d1, key, &got, &flag));
  CHECK(flag && got == (char *)&val + 1 && copied == 1, "the dup holds the copy callback's value");
  MPI_Comm_free(&d1);
  CHECK(dels == 1, "freeing the dup deleted its attribute (%d)", dels);
  /* MPI_COMM_NULL_COPY_FN: not copied */
  {
    int k2, v2 = 3;
    MPI_Comm_create_keyval(MPI_COMM_NULL_COPY_FN, MPI_COMM_NULL_DELETE_FN, &k2, NULL);
    MPI_Comm_set_attr(MPI_COMM_WORLD, k2, &v2);
    MPI_Comm_dup(MPI_COMM_WORLD, &d2);
    MPI_Comm_get_attr(d2, k2, &got, &flag);
    CHECK(!flag, "MPI_COMM_NULL_COPY_FN attributes are not copied");
    MPI_Comm_free(&d2); /* d2 got `key` through its copy callback too: deleted now */
    CHECK(dels == 2 && copied == 2, "the second dup copied and deleted `key` (%d, %d)", copied, dels);
    MPI_Comm_delete_attr(MPI_COMM_WORLD, k2);
    MPI_Comm_free_keyval(&k2);
  }
  /* replacing and deleting run the delete callback; the keyval survives MPI_Comm_free_keyval
   * while an object still holds it */
  CHECK_MPI(MPI_Comm_set_attr(MPI_COMM_WORLD, key, &flag));
  CHECK(dels == 3, "replacing an attribute deleted the old value (%d)", dels);
  CHECK_MPI(MPI_Comm_free_keyval(&key));
  CHECK(key == MPI_KEYVAL_INVALID, "free_keyval resets the key");
  CHECK(deleted == 3, "delete callbacks ran %d times", deleted);
  /* datatype attributes */
  {
    int tk, tv = 9, *tg;
    MPI_Datatype t, t2;
    MPI_Type_contiguous(2, MPI_INT, &t);
    MPI_Type_create_keyval(MPI_TYPE_DUP_FN, MPI_TYPE_NULL_DELETE_FN, &tk, NULL);
    CHECK_MPI(MPI_Type_set_attr(t, tk, &tv));
    MPI_Type_dup(t, &t2);
    CHECK_MPI(MPI_Type_get_attr(t2, tk, &tg, &flag));
    CHECK(flag && tg == &tv, "MPI_TYPE_DUP_FN copies the attribute to the dup");
    MPI_Type_free(&t);
    MPI_Type_free(&t2);
    MPI_Type_free_keyval(&tk);
  }
}

static void infos(void) {
  MPI_Info in, dup;
  int nk, flag, len;
  char v[64], k[MPI_MAX_INFO_KEY + 1];
  CHECK_MPI(MPI_Info_create(&in));
  CHECK_MPI(MPI_Info_set(in, "cb_nodes", "4"));
  CHECK_MPI(MPI_Info_set(in, "striping_unit", "1048576"));
  CHECK_MPI(MPI_Info_set(in, "cb_nodes", "8")); /* replaces */
  MPI_Info_get_nkeys(in, &nk);
  CHECK(nk == 2, "%d keys", nk);
  CHECK_MPI(MPI_Info_get(in, "cb_nodes", 63, v, &flag));
  CHECK(flag && strcmp(v, "8") == 0, "cb_nodes = %s", v);
  CHECK_MPI(MPI_Info_get_valuelen(in, "striping_unit", &len, &flag));
  CHECK(flag && len == 7, "valuelen %d", len);
  CHECK_MPI(MPI_Info_get_nthkey(in, 1, k));
  CHECK(strcmp(k, "striping_unit") == 0, "second key %s", k);
  CHECK_MPI(MPI_Info_dup(in, &dup));
  CHECK_MPI(MPI_Info_delete(in, "cb_nodes"));
  MPI_Info_get(in, "cb_nodes", 63, v, &flag);
  CHECK(!flag, "deleted key is gone");
  MPI_Info_get(dup, "cb_nodes", 63, v, &flag);
  CHECK(flag, "the dup kept it");
  MPI_Info_free(&in);
  MPI_Info_free(&dup);
  CHECK(in == MPI_INFO_NULL, "Info_free sets MPI_INFO_NULL");
}

int main(int argc, char **argv) {
  sft_init(&argc, &argv);
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  groups(sft_size, sft_rank);
  comms(sft_size, sft_rank);
  attributes();
  infos();
  return sft_finish("groups");
}
