/*
 * typector.c: derived datatype constructors. A type is flattened when it is built: byte blocks
 * (merged when adjacent) and basic-element runs (datatype.c says how they are used), its bounds
 * and true bounds.
 */
#include "sfmpi.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- building derived types ------------------------------------------------------------- */

typedef struct {
  sfm_type t;
  int cap_blocks, cap_runs;
  int have_bounds;
  MPI_Aint lb, ub;
  int homog_set;
} sfm_builder;

/* Room for entry n of an array of *cap entries (doubling, 8 at first). */
static int sfm_reserve(void **arr, int *cap, int n, size_t elem) {
  void *p;
  int nc;
  if (n < *cap) return 0;
  nc = *cap ? *cap * 2 : 8;
  p = realloc(*arr, (size_t)nc * elem);
  if (p == NULL) return -1;
  *arr = p;
  *cap = nc;
  return 0;
}

static int sfm_b_block(sfm_builder *b, MPI_Aint disp, size_t len) {
  sfm_type *t = &b->t;
  if (len == 0) return 0;
  if (t->nblocks > 0) {
    sfm_block *last = &t->blocks[t->nblocks - 1];
    if (last->disp + (MPI_Aint)last->len == disp) {
      last->len += len;
      return 0;
    }
  }
  if (sfm_reserve((void **)&t->blocks, &b->cap_blocks, t->nblocks, sizeof *t->blocks) < 0) return -1;
  t->blocks[t->nblocks].disp = disp;
  t->blocks[t->nblocks].len = len;
  t->nblocks++;
  return 0;
}

static int sfm_b_run(sfm_builder *b, MPI_Aint disp, int basic, size_t count, size_t esize) {
  sfm_type *t = &b->t;
  if (count == 0) return 0;
  if (!b->homog_set) {
    t->homog = basic;
    b->homog_set = 1;
  } else if (t->homog != basic) {
    t->homog = -1;
  }
  t->nbasic += count;
  if (t->nruns > 0) {
    sfm_run *last = &t->runs[t->nruns - 1];
    if (last->basic == basic && last->disp + (MPI_Aint)(last->count * esize) == disp) {
      last->count += count;
      return 0;
    }
  }
  if (sfm_reserve((void **)&t->runs, &b->cap_runs, t->nruns, sizeof *t->runs) < 0) return -1;
  t->runs[t->nruns].disp = disp;
  t->runs[t->nruns].basic = basic;
  t->runs[t->nruns].count = count;
  t->nruns++;
  return 0;
}

static size_t sfm_basic_size(int basic, const sfm_type *src, int run) {
  /* size of one element of a run: runs of a predefined type hold elements of that type */
  if (basic >= 0) return sf_dtype_size((sf_dtype)basic);
  return src->runs[run].count ? src->size / (src->nbasic ? src->nbasic : 1) : 1;
}

/* Append `count` items of `src` laid out from byte offset `off`, `stride` bytes apart. */
static int sfm_b_append(sfm_builder *b, const sfm_type *src, size_t count, MPI_Aint off, MPI_Aint stride) {
  for (size_t i = 0; i < count; i++) {
    MPI_Aint base = off + (MPI_Aint)i * stride;
    MPI_Aint lb = base + src->lb, ub = lb + src->extent;
    for (int k = 0; k < src->nblocks; k++)
      if (sfm_b_block(b, base + src->blocks[k].disp, src->blocks[k].len) < 0) return -1;
    for (int k = 0; k < src->nruns; k++) {
      size_t es = sfm_basic_size(src->runs[k].basic, src, k);
      if (sfm_b_run(b, base + src->runs[k].disp, src->runs[k].basic, src->runs[k].count, es) < 0) return -1;
    }
    b->t.size += src->size;
    if (!b->have_bounds || lb < b->lb) b->lb = lb;
    if (!b->have_bounds || ub > b->ub) b->ub = ub;
    if (!b->have_bounds || base + src->true_lb < b->t.true_lb) b->t.true_lb = base + src->true_lb;
    if (!b->have_bounds || base + src->true_ub > b->t.true_ub) b->t.true_ub = base + src->true_ub;
    b->have_bounds = 1;
  }
  return 0;
}

static int sfm_b_finish(sfm_builder *b, MPI_Datatype *out, const char *fn) {
  int i = sfm_type_slot();
  sfm_type *t;
  if (i < 0) goto nomem;
  t = &sfm.types[i];
  *t = b->t;
  t->used = 1;
  t->predefined = 0;
  t->committed = 0;
  t->refs = 0;
  t->freed = 0;
  t->name[0] = '\0';
  memset(&t->attrs, 0, sizeof t->attrs);
  if (!b->have_bounds) {
    b->lb = b->ub = 0;
  }
  t->lb = b->lb;
  t->extent = b->ub - b->lb;
  if (!b->homog_set) t->homog = -1;
  t->contig = t->lb == 0 && (t->nblocks == 0 || (t->nblocks == 1 && t->blocks[0].disp == 0)) &&
              (MPI_Aint)t->size == t->extent;
  *out = i;
  return MPI_SUCCESS;
nomem:
  free(b->t.blocks);
  free(b->t.runs);
  return sfm_error(MPI_COMM_WORLD, fn, MPI_ERR_NO_MEM, "out of memory");
}

#define SFM_OLD(fn, old, o, count)                                                                \
  SFM_INIT_CHECK(fn);                                                                             \
  sfm_type *o = sfm_type_get(old);                                                                \
  if (o == NULL) return sfm_error(MPI_COMM_WORLD, fn, MPI_ERR_TYPE, "invalid datatype %d", (int)(old)); \
  if ((count) < 0) return sfm_error(MPI_COMM_WORLD, fn, MPI_ERR_COUNT, "count %d is negative", (int)(count)); \
  if (newtype == NULL) return sfm_error(MPI_COMM_WORLD, fn, MPI_ERR_ARG, "newtype is NULL");       \
  sfm_builder b;                                                                                  \
  memset(&b, 0, sizeof b)

#define SFM_FAIL_NOMEM(fn)                                                     \
  do {                                                                         \
    free(b.t.blocks);                                                          \
    free(b.t.runs);                                                            \
    return sfm_error(MPI_COMM_WORLD, fn, MPI_ERR_NO_MEM, "out of memory");     \
  } while (0)

int MPI_Type_contiguous(int count, MPI_Datatype old, MPI_Datatype *newtype) {
  SFM_OLD("MPI_Type_contiguous", old, o, count);
  if (sfm_b_append(&b, o, (size_t)count, 0, o->extent) < 0) SFM_FAIL_NOMEM("MPI_Type_contiguous");
  return sfm_b_finish(&b, newtype, "MPI_Type_contiguous");
}

int MPI_Type_create_hvector(int count, int blocklength, MPI_Aint stride, MPI_Datatype old, MPI_Datatype *newtype) {
  SFM_OLD("MPI_Type_create_hvector", old, o, count);
  if (blocklength < 0) return sfm_error(MPI_COMM_WORLD, "MPI_Type_create_hvector", MPI_ERR_ARG, "blocklength %d is negative", blocklength);
  for (int i = 0; i < count; i++)
    if (sfm_b_append(&b, o, (size_t)blocklength, (MPI_Aint)i * stride, o->extent) < 0) SFM_FAIL_NOMEM("MPI_Type_create_hvector");
  return sfm_b_finish(&b, newtype, "MPI_Type_create_hvector");
}

int MPI_Type_vector(int count, int blocklength, int stride, MPI_Datatype old, MPI_Datatype *newtype) {
  sfm_type *o = sfm_type_get(old);
  if (o == NULL) return sfm_error(MPI_COMM_WORLD, "MPI_Type_vector", MPI_ERR_TYPE, "invalid datatype %d", (int)old);
  return MPI_Type_create_hvector(count, blocklength, (MPI_Aint)stride * o->extent, old, newtype);
}

int MPI_Type_create_hindexed(int count, const int blocklengths[], const MPI_Aint displs[], MPI_Datatype old,
                             MPI_Datatype *newtype) {
  SFM_OLD("MPI_Type_create_hindexed", old, o, count);
  for (int i = 0; i < count; i++) {
    if (blocklengths[i] < 0) {
      free(b.t.blocks);
      free(b.t.runs);
      return sfm_error(MPI_COMM_WORLD, "MPI_Type_create_hindexed", MPI_ERR_ARG, "blocklengths[%d] = %d is negative", i, blocklengths[i]);
    }
    if (sfm_b_append(&b, o, (size_t)blocklengths[i], displs[i], o->extent) < 0) SFM_FAIL_NOMEM("MPI_Type_create_hindexed");
  }
  return sfm_b_finish(&b, newtype, "MPI_Type_create_hindexed");
}

int MPI_Type_indexed(int count, const int blocklengths[], const int displs[], MPI_Datatype old, MPI_Datatype *newtype) {
  SFM_OLD("MPI_Type_indexed", old, o, count);
  for (int i = 0; i < count; i++) {
    if (blocklengths[i] < 0) {
      free(b.t.blocks);
      free(b.t.runs);
      return sfm_error(MPI_COMM_WORLD, "MPI_Type_indexed", MPI_ERR_ARG, "blocklengths[%d] = %d is negative", i, blocklengths[i]);
    }
    if (sfm_b_append(&b, o, (size_t)blocklengths[i], (MPI_Aint)displs[i] * o->extent, o->extent) < 0)
      SFM_FAIL_NOMEM("MPI_Type_indexed");
  }
  return sfm_b_finish(&b, newtype, "MPI_Type_indexed");
}

int MPI_Type_create_indexed_block(int count, int blocklength, const int displs[], MPI_Datatype old,
                                  MPI_Datatype *newtype) {
  SFM_OLD("MPI_Type_create_indexed_block", old, o, count);
  for (int i = 0; i < count; i++)
    if (sfm_b_append(&b, o, (size_t)blocklength, (MPI_Aint)displs[i] * o->extent, o->extent) < 0)
      SFM_FAIL_NOMEM("MPI_Type_create_indexed_block");
  return sfm_b_finish(&b, newtype, "MPI_Type_create_indexed_block");
}

int MPI_Type_create_struct(int count, const int blocklengths[], const MPI_Aint displs[], const MPI_Datatype types[],
                           MPI_Datatype *newtype) {
  MPI_Aint maxalign = 1;
  SFM_OLD("MPI_Type_create_struct", MPI_BYTE, o, count);
  (void)o;
  for (int i = 0; i < count; i++) {
    sfm_type *t = sfm_type_get(types[i]);
    if (t == NULL || blocklengths[i] < 0) {
      free(b.t.blocks);
      free(b.t.runs);
      return sfm_error(MPI_COMM_WORLD, "MPI_Type_create_struct", t == NULL ? MPI_ERR_TYPE : MPI_ERR_ARG,
                       "types[%d] / blocklengths[%d] invalid", i, i);
    }
    if (sfm_b_append(&b, t, (size_t)blocklengths[i], displs[i], t->extent) < 0) SFM_FAIL_NOMEM("MPI_Type_create_struct");
    if (t->predefined && (MPI_Aint)t->size > maxalign && t->size <= 16) maxalign = (MPI_Aint)t->size;
  }
  /* Pad the extent to the alignment of the largest member, as C does for structs (MPI's
   * implementation-defined epsilon; MPICH and Open MPI do the same). */
  if (b.have_bounds) {
    if (maxalign > 8) maxalign = 8;
    MPI_Aint ext = b.ub - b.lb;
    if (ext % maxalign) b.ub += maxalign - ext % maxalign;
  }
  return sfm_b_finish(&b, newtype, "MPI_Type_create_struct");
}

int MPI_Type_create_resized(MPI_Datatype old, MPI_Aint lb, MPI_Aint extent, MPI_Datatype *newtype) {
  SFM_OLD("MPI_Type_create_resized", old, o, 1);
  if (sfm_b_append(&b, o, 1, 0, o->extent) < 0) SFM_FAIL_NOMEM("MPI_Type_create_resized");
  b.lb = lb;
  b.ub = lb + extent;
  b.have_bounds = 1;
  return sfm_b_finish(&b, newtype, "MPI_Type_create_resized");
}

int MPI_Type_dup(MPI_Datatype old, MPI_Datatype *newtype) {
  int rc;
  SFM_OLD("MPI_Type_dup", old, o, 1);
  if (sfm_b_append(&b, o, 1, 0, o->extent) < 0) SFM_FAIL_NOMEM("MPI_Type_dup");
  b.lb = o->lb;
  b.ub = o->lb + o->extent;
  rc = sfm_b_finish(&b, newtype, "MPI_Type_dup");
  if (rc != MPI_SUCCESS) return rc;
  sfm.types[*newtype].committed = sfm_type_get(old)->committed;
  rc = sfm_attrs_copy(SFM_OBJ_TYPE, old, *newtype, &sfm_type_get(old)->attrs, &sfm_type_get(*newtype)->attrs);
  if (rc != MPI_SUCCESS) return sfm_error(MPI_COMM_WORLD, "MPI_Type_dup", rc, "an attribute copy callback failed");
  return MPI_SUCCESS;
}


int MPI_Type_create_hindexed_block(int count, int blocklength, const MPI_Aint displs[], MPI_Datatype old,
                                   MPI_Datatype *newtype) {
  SFM_OLD("MPI_Type_create_hindexed_block", old, o, count);
  if (blocklength < 0)
    return sfm_error(MPI_COMM_WORLD, "MPI_Type_create_hindexed_block", MPI_ERR_ARG, "blocklength %d is negative", blocklength);
  for (int i = 0; i < count; i++)
    if (sfm_b_append(&b, o, (size_t)blocklength, displs[i], o->extent) < 0) SFM_FAIL_NOMEM("MPI_Type_create_hindexed_block");
  return sfm_b_finish(&b, newtype, "MPI_Type_create_hindexed_block");
}

/* ---- array types: subarray and darray ------------------------------------------------------- */

/* The elements an array type selects, dimension by dimension: runs (first index, length) of
 * the indices it holds in that dimension, ascending. Dimensions are in C order (the last one
 * varies fastest); a Fortran-order type is given reversed. */
typedef struct { int start, len; } sfm_irun;
typedef struct { int n; sfm_irun *r; } sfm_dimsel;

/* Append the product of the selections: every owned index tuple in row-major order, the last
 * dimension's runs as blocks of `len` items. */
static int sfm_b_array(sfm_builder *b, const sfm_type *o, int ndims, const int *gsizes, const sfm_dimsel *sel) {
  MPI_Aint *stride = malloc((size_t)ndims * sizeof *stride);
  int *pos = calloc((size_t)ndims, sizeof *pos), *off = calloc((size_t)ndims, sizeof *off), rc = 0;
  if (stride == NULL || pos == NULL || off == NULL) {
    rc = -1;
    goto out;
  }
  stride[ndims - 1] = o->extent;
  for (int d = ndims - 2; d >= 0; d--) stride[d] = stride[d + 1] * gsizes[d + 1];
  for (int d = 0; d < ndims; d++)
    if (sel[d].n == 0) goto out; /* nothing selected in some dimension: an empty type */
  /* pos[d]: run index in dimension d (outer dimensions), off[d]: index inside that run */
  for (;;) {
    MPI_Aint base = 0;
    int d;
    for (d = 0; d < ndims - 1; d++) base += (MPI_Aint)(sel[d].r[pos[d]].start + off[d]) * stride[d];
    for (int k = 0; k < sel[ndims - 1].n; k++) {
      const sfm_irun *r = &sel[ndims - 1].r[k];
      if (sfm_b_append(b, o, (size_t)r->len, base + (MPI_Aint)r->start * stride[ndims - 1], o->extent) < 0) {
        rc = -1;
        goto out;
      }
    }
    for (d = ndims - 2; d >= 0; d--) { /* next tuple of the outer dimensions */
      if (++off[d] < sel[d].r[pos[d]].len) break;
      off[d] = 0;
      if (++pos[d] < sel[d].n) break;
      pos[d] = 0;
    }
    if (d < 0) break;
  }
out:
  free(stride);
  free(pos);
  free(off);
  return rc;
}

/* Finish an array type: lb 0 (the old type's), extent the whole array. */
static int sfm_b_array_finish(sfm_builder *b, const sfm_type *o, int ndims, const int *gsizes, MPI_Datatype *newtype,
                              const char *fn) {
  MPI_Aint total = o->extent;
  for (int d = 0; d < ndims; d++) total *= gsizes[d];
  b->lb = o->lb;
  b->ub = o->lb + total;
  b->have_bounds = 1;
  return sfm_b_finish(b, newtype, fn);
}

static void sfm_sel_free(sfm_dimsel *sel, int ndims) {
  if (sel == NULL) return;
  for (int d = 0; d < ndims; d++) free(sel[d].r);
  free(sel);
}

int MPI_Type_create_subarray(int ndims, const int sizes[], const int subsizes[], const int starts[], int order,
                             MPI_Datatype old, MPI_Datatype *newtype) {
  const char *fn = "MPI_Type_create_subarray";
  int *g = NULL, rc;
  sfm_dimsel *sel = NULL;
  SFM_OLD(fn, old, o, ndims);
  if (ndims < 1) return sfm_error(MPI_COMM_WORLD, fn, MPI_ERR_DIMS, "ndims %d must be at least 1", ndims);
  if (order != MPI_ORDER_C && order != MPI_ORDER_FORTRAN)
    return sfm_error(MPI_COMM_WORLD, fn, MPI_ERR_ARG, "order %d is neither MPI_ORDER_C nor MPI_ORDER_FORTRAN", order);
  for (int d = 0; d < ndims; d++)
    if (sizes[d] < 1 || subsizes[d] < 1 || subsizes[d] > sizes[d] || starts[d] < 0 || starts[d] > sizes[d] - subsizes[d])
      return sfm_error(MPI_COMM_WORLD, fn, MPI_ERR_ARG,
                       "dimension %d: size %d, subsize %d, start %d do not describe a subarray", d, sizes[d], subsizes[d],
                       starts[d]);
  g = malloc((size_t)ndims * sizeof *g);
  sel = calloc((size_t)ndims, sizeof *sel);
  if (g == NULL || sel == NULL) goto nomem;
  for (int d = 0; d < ndims; d++) {
    int s = order == MPI_ORDER_C ? d : ndims - 1 - d;
    g[d] = sizes[s];
    sel[d].r = malloc(sizeof *sel[d].r);
    if (sel[d].r == NULL) goto nomem;
    sel[d].n = 1;
    sel[d].r[0].start = starts[s];
    sel[d].r[0].len = subsizes[s];
  }
  if (sfm_b_array(&b, o, ndims, g, sel) < 0) goto nomem;
  rc = sfm_b_array_finish(&b, o, ndims, g, newtype, fn);
  free(g);
  sfm_sel_free(sel, ndims);
  return rc;
nomem:
  free(g);
  sfm_sel_free(sel, ndims);
  SFM_FAIL_NOMEM(fn);
}

/* The indices of [0, g) that process coordinate c of p holds under distribution `dist`. */
static int sfm_darray_dim(int g, int dist, int darg, int p, int c, sfm_dimsel *out, const char *fn, int d) {
  int cap = 0;
  out->n = 0;
  out->r = NULL;
  if (dist == MPI_DISTRIBUTE_NONE) {
    if (p != 1)
      return sfm_error(MPI_COMM_WORLD, fn, MPI_ERR_ARG, "dimension %d: MPI_DISTRIBUTE_NONE needs psizes[%d] = 1, not %d", d, d, p);
    darg = g;
    dist = MPI_DISTRIBUTE_BLOCK;
  }
  if (dist == MPI_DISTRIBUTE_BLOCK) {
    int b = darg == MPI_DISTRIBUTE_DFLT_DARG ? (g + p - 1) / p : darg;
    if (b < 1 || (long long)b * p < g)
      return sfm_error(MPI_COMM_WORLD, fn, MPI_ERR_ARG, "dimension %d: block size %d times %d processes does not cover %d", d,
                       b, p, g);
    out->r = malloc(sizeof *out->r);
    if (out->r == NULL) return sfm_error(MPI_COMM_WORLD, fn, MPI_ERR_NO_MEM, "out of memory");
    if ((long long)c * b < g) {
      out->r[0].start = c * b;
      out->r[0].len = (c + 1) * b > g ? g - c * b : b;
      out->n = 1;
    }
    return MPI_SUCCESS;
  }
  if (dist == MPI_DISTRIBUTE_CYCLIC) {
    int b = darg == MPI_DISTRIBUTE_DFLT_DARG ? 1 : darg;
    if (b < 1) return sfm_error(MPI_COMM_WORLD, fn, MPI_ERR_ARG, "dimension %d: cyclic block size %d must be positive", d, b);
    for (long long s = (long long)c * b; s < g; s += (long long)p * b) {
      if (out->n == cap) {
        int nc = cap ? cap * 2 : 8;
        sfm_irun *q = realloc(out->r, (size_t)nc * sizeof *q);
        if (q == NULL) return sfm_error(MPI_COMM_WORLD, fn, MPI_ERR_NO_MEM, "out of memory");
        out->r = q;
        cap = nc;
      }
      out->r[out->n].start = (int)s;
      out->r[out->n].len = s + b > g ? (int)(g - s) : b;
      out->n++;
    }
    return MPI_SUCCESS;
  }
  return sfm_error(MPI_COMM_WORLD, fn, MPI_ERR_ARG, "dimension %d: distribution %d is not MPI_DISTRIBUTE_BLOCK, CYCLIC or NONE", d,
                   dist);
}

int MPI_Type_create_darray(int size, int rank, int ndims, const int gsizes[], const int distribs[], const int dargs[],
                           const int psizes[], int order, MPI_Datatype old, MPI_Datatype *newtype) {
  const char *fn = "MPI_Type_create_darray";
  int *g = NULL, *coord = NULL, rc, procs = 1, r;
  sfm_dimsel *sel = NULL;
  SFM_OLD(fn, old, o, ndims);
  if (ndims < 1) return sfm_error(MPI_COMM_WORLD, fn, MPI_ERR_DIMS, "ndims %d must be at least 1", ndims);
  if (order != MPI_ORDER_C && order != MPI_ORDER_FORTRAN)
    return sfm_error(MPI_COMM_WORLD, fn, MPI_ERR_ARG, "order %d is neither MPI_ORDER_C nor MPI_ORDER_FORTRAN", order);
  for (int d = 0; d < ndims; d++) {
    if (gsizes[d] < 1 || psizes[d] < 1)
      return sfm_error(MPI_COMM_WORLD, fn, MPI_ERR_ARG, "dimension %d: gsize %d and psize %d must be positive", d, gsizes[d],
                       psizes[d]);
    procs *= psizes[d];
  }
  if (procs != size || rank < 0 || rank >= size)
    return sfm_error(MPI_COMM_WORLD, fn, MPI_ERR_ARG, "the process grid has %d processes, size is %d (rank %d)", procs, size,
                     rank);
  g = malloc((size_t)ndims * sizeof *g);
  coord = malloc((size_t)ndims * sizeof *coord);
  sel = calloc((size_t)ndims, sizeof *sel);
  if (g == NULL || coord == NULL || sel == NULL) goto nomem;
  /* The process grid is numbered in row-major order whatever the array order (MPI 4.1.4). */
  r = rank;
  for (int d = ndims - 1; d >= 0; d--) {
    coord[d] = r % psizes[d];
    r /= psizes[d];
  }
  for (int d = 0; d < ndims; d++) {
    int s = order == MPI_ORDER_C ? d : ndims - 1 - d;
    g[d] = gsizes[s];
    rc = sfm_darray_dim(gsizes[s], distribs[s], dargs[s], psizes[s], coord[s], &sel[d], fn, s);
    if (rc != MPI_SUCCESS) {
      free(g);
      free(coord);
      sfm_sel_free(sel, ndims);
      free(b.t.blocks);
      free(b.t.runs);
      return rc;
    }
  }
  if (sfm_b_array(&b, o, ndims, g, sel) < 0) goto nomem;
  rc = sfm_b_array_finish(&b, o, ndims, g, newtype, fn);
  free(g);
  free(coord);
  sfm_sel_free(sel, ndims);
  return rc;
nomem:
  free(g);
  free(coord);
  sfm_sel_free(sel, ndims);
  SFM_FAIL_NOMEM(fn);
}
