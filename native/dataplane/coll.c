/*
 * coll.c: collectives over point-to-point in a context reserved for the group's collectives.
 *
 * Hierarchical: a group whose members live on several hosts runs barrier, bcast, reduce and
 * allreduce in phases: within each host (on shared memory), then between one leader per host
 * (over the network), then within each host again. A group of one host's ranks runs the flat
 * algorithms, and when it holds exactly every rank of the host, small payloads take the
 * whole-host fast path: every rank posts into its shared slot, one shared-memory barrier, every
 * rank reads what it needs.
 *
 * Flat algorithms (every transfer on one host is one memcpy or one process_vm_readv):
 * dissemination barrier, binomial bcast, binomial reduce in rank order (so non-commutative
 * combines are correct), recursive-doubling allreduce for power-of-two groups (reduce + bcast
 * otherwise), chain scan/exscan, linear gather/scatter at the root, ring allgather, pairwise
 * all-to-all. Each collective kind uses its own tag, so a mismatched call sequence ends in a
 * wait timeout that names the operation and the awaited rank.
 *
 * Order of reductions across hosts: the hierarchy combines each host's members first, which is
 * rank order only when every host's members are a contiguous range of group ranks (block
 * placement); otherwise reduce and allreduce stay flat, so non-commutative ops stay correct.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "internal.h"

#include <stdlib.h>
#include <string.h>

enum {
  SF__T_BARRIER = 1, SF__T_BCAST, SF__T_REDUCE, SF__T_REDUCE_ROOT, SF__T_ALLREDUCE, SF__T_SCAN,
  SF__T_GATHER, SF__T_SCATTER, SF__T_ALLGATHER, SF__T_ALLTOALL,
  /* phases of the hierarchical algorithms */
  SF__T_H_BARRIER = 16, SF__T_H_BCAST, SF__T_H_REDUCE, SF__T_H_ROOT,
};

static inline int W(const sf_group *g, int i) { return g->ranks ? g->ranks[i] : i; }

static int sf__check_group(sf_job *job, const sf_group *g, const char *fn) {
  if (job == NULL || g == NULL) return sf__err(SF_EINVAL, "%s: job and group are required", fn);
  if (job->rank < 0) return sf__err(SF_ESTATE, "%s: job not attached", fn);
  if (g->size < 1 || g->size > job->size || g->rank < 0 || g->rank >= g->size)
    return sf__err(SF_ERANGE, "%s: group rank %d / size %d out of range", fn, g->rank, g->size);
  if (W(g, g->rank) != job->rank)
    return sf__err(SF_EINVAL, "%s: group member %d is rank %d, not this rank %d", fn, g->rank, W(g, g->rank), job->rank);
  return 0;
}

static int sf__sendrecv(sf_job *job, const void *sb, size_t sl, int dst, void *rb, size_t rl, int src,
                        uint32_t ctx, int tag) {
  sf_req *rr = NULL, *sr = NULL;
  int rc = sf_irecv(job, rb, rl, src, ctx, tag, &rr);
  if (rc < 0) return rc;
  rc = sf_isend(job, sb, sl, dst, ctx, tag, 0, &sr);
  if (rc < 0) goto done;
  rc = sf__wait_req(job, sr, NULL);
  if (rc < 0) goto done;
  rc = sf__wait_req(job, rr, NULL);
done:
  if (sr) sf_req_free(job, sr);
  sf_req_free(job, rr);
  return rc;
}

static int sf__waitall(sf_job *job, sf_req **reqs, int n) {
  int rc = 0;
  for (int i = 0; i < n; i++) {
    if (reqs[i] == NULL) continue;
    if (rc == 0) rc = sf__wait_req(job, reqs[i], NULL);
    sf_req_free(job, reqs[i]);
    reqs[i] = NULL;
  }
  return rc;
}

#define SF__LABEL(job, name)                    \
  const char *saved_label = (job)->label;       \
  if ((job)->label == NULL) (job)->label = name
#define SF__UNLABEL(job) ((job)->label = saved_label)

static int sf__cond_sense(sf_job *job, void *arg) {
  return atomic_load_explicit(&job->ctl->bar_sense, memory_order_acquire) == *(const uint32_t *)arg;
}

/* Whole-host barrier in shared memory: one atomic add per rank instead of log2(n) rounds of
 * messages. The caller has checked that the group is every rank of this host, in order. */
static int sf__shm_barrier(sf_job *job) {
  uint32_t target = job->bar_sense ^ 1u;
  job->bar_sense = target;
  if (atomic_fetch_add(&job->ctl->bar_count, 1) == (uint32_t)job->nlocal - 1) {
    atomic_store(&job->ctl->bar_count, 0);
    atomic_store_explicit(&job->ctl->bar_sense, target, memory_order_release);
    atomic_thread_fence(memory_order_seq_cst); /* pairs with the sleeper's fence (see sf__block) */
    for (int l = 0; l < job->nlocal; l++)
      if (l != job->me && atomic_load_explicit(&sf__slot_of(job, l)->sleeping, memory_order_relaxed)) sf__wake_local(job, l);
    return 0;
  }
  job->wait_peer = -3;
  job->wait_tag = -1;
  return sf__block(job, sf__cond_sense, &target, "sf_barrier");
}

/* Is the group exactly every rank of this host, in local order? */
static int sf__whole_host(const sf_job *job, const sf_group *g) {
  if (g->size != job->nlocal) return 0;
  for (int i = 0; i < g->size; i++)
    if (W(g, i) != job->local_world[i]) return 0;
  return 1;
}

/* Small collectives of the whole host through shared slots: every rank writes its slot of the
 * current set, one shared-memory barrier, then every rank reads what it needs. Two slot sets
 * alternate, and each use is separated by a barrier, so a slot is never rewritten while a slow
 * rank may still read it (reaching set k again takes a barrier that rank must enter first). */
static unsigned char *sf__coll_slot(sf_job *job, uint32_t gen, int local) {
  return (unsigned char *)job->ctl + job->ctl->coll_off + ((size_t)(gen & 1u) * (size_t)job->nlocal + (size_t)local) * SF__COLL_SLOT;
}

static const char *const sf__coll_names[] = {"?", "barrier", "bcast", "reduce", "reduce", "allreduce"};

/* Post this rank's header for collective `gen`; returns its payload area. */
static unsigned char *sf__coll_post(sf_job *job, uint32_t gen, uint32_t kind, int root, size_t len) {
  sf__coll_hdr *h = (sf__coll_hdr *)sf__coll_slot(job, gen, job->me);
  h->gen = gen;
  h->kind = kind;
  h->root = root;
  h->len = (uint32_t)len;
  return (unsigned char *)(h + 1);
}

/* After the barrier: did every member post the same collective? */
static int sf__coll_check(sf_job *job, uint32_t gen, const sf__coll_hdr *mine) {
  for (int l = 0; l < job->nlocal; l++) {
    const sf__coll_hdr *h = (const sf__coll_hdr *)sf__coll_slot(job, gen, l);
    if (h->gen == gen && h->kind == mine->kind && h->root == mine->root && h->len == mine->len) continue;
    return sf__err(SF_EMISMATCH,
                   "%s on rank %d: rank %d called a different collective (%s, root %d, %u bytes; here %s, root %d, "
                   "%u bytes): collectives must be called in the same order on every rank",
                   sf__label(job, "collective"), job->rank, job->local_world[l], h->kind < 6 ? sf__coll_names[h->kind] : "?",
                   h->root, h->len, sf__coll_names[mine->kind], mine->root, mine->len);
  }
  return 0;
}

/* Post, meet at the barrier, check. Returns the payload area of rank `r` via sf__coll_slot. */
static int sf__coll_meet(sf_job *job, uint32_t gen, uint32_t kind, int root, size_t len, const void *data) {
  sf__coll_hdr mine = {gen, kind, root, (uint32_t)len};
  unsigned char *p = sf__coll_post(job, gen, kind, root, len);
  int rc;
  if (data && len) memcpy(p, data, len);
  rc = sf__shm_barrier(job);
  if (rc < 0) return rc;
  return sf__coll_check(job, gen, &mine);
}

static const unsigned char *sf__coll_data(sf_job *job, uint32_t gen, int local) {
  return sf__coll_slot(job, gen, local) + sizeof(sf__coll_hdr);
}

/* Fold the slots in rank order (lower ranks are `in`): acc = s[0] op s[1] op ... op s[last]. */
static int sf__coll_fold(sf_job *job, uint32_t gen, int last, size_t len, sf_combine_fn combine, void *arg, void *out) {
  _Alignas(64) unsigned char a[SF__COLL_MAX], b[SF__COLL_MAX];
  unsigned char *acc = a, *tmp = b, *t;
  memcpy(acc, sf__coll_data(job, gen, 0), len);
  for (int r = 1; r <= last; r++) {
    int rc;
    memcpy(tmp, sf__coll_data(job, gen, r), len);
    rc = combine(acc, tmp, len, arg);
    if (rc < 0) return rc;
    t = acc;
    acc = tmp;
    tmp = t;
  }
  memcpy(out, acc, len);
  return 0;
}


/* ---- hierarchy ------------------------------------------------------------------------------ */

/* How a group's members sit on hosts, from this member's point of view. */
typedef struct sf__topo {
  int nhosts;                 /* hosts with members */
  int nnode;                  /* members on my host */
  int me_in_node;             /* my index among them (0 = my host's leader) */
  int node[SF_MAX_RANKS];     /* world ranks of my host's members, in group order */
  int leaders[SF_MAX_RANKS];  /* world rank of each host's leader (its lowest group rank) */
  int my_host_pos;            /* index of my host in leaders */
  int contiguous;             /* every host's members form one range of group ranks */
} sf__topo;

/* Does the group span hosts with more than one member on some host (else flat is as good)? */
static int sf__hier(const sf_job *job, const sf_group *g) {
  int h0;
  if (job->nremote == 0) return 0;
  h0 = job->host_of[W(g, 0)];
  for (int i = 1; i < g->size; i++)
    if (job->host_of[W(g, i)] != h0) {
      /* spans hosts: worth it when some host holds two members */
      int seen[SF_MAX_RANKS] = {0};
      for (int k = 0; k < g->size; k++)
        if (seen[job->host_of[W(g, k)]]++) return 1;
      return 0;
    }
  return 0;
}

/* sf__hier, and every host's members are one range of group ranks (so phases keep rank order). */
static int sf__hier_ordered(const sf_job *job, const sf_group *g) {
  int seen[SF_MAX_RANKS] = {0}, last = -1;
  if (!sf__hier(job, g)) return 0;
  for (int i = 0; i < g->size; i++) {
    int h = job->host_of[W(g, i)];
    if (h != last && seen[h]) return 0;
    seen[h] = 1;
    last = h;
  }
  return 1;
}

static void sf__topo_of(const sf_job *job, const sf_group *g, sf__topo *t) {
  int leader_of_host[SF_MAX_RANKS], last_host = -1;
  int myhost = job->host;
  memset(leader_of_host, -1, sizeof leader_of_host);
  t->nhosts = 0;
  t->nnode = 0;
  t->me_in_node = -1;
  t->contiguous = 1;
  for (int i = 0; i < g->size; i++) {
    int w = W(g, i), h = job->host_of[w];
    if (leader_of_host[h] < 0) {
      leader_of_host[h] = t->nhosts;
      if (h == myhost) t->my_host_pos = t->nhosts;
      t->leaders[t->nhosts++] = w;
    } else if (h != last_host) {
      t->contiguous = 0; /* this host's members are split by another host's */
    }
    last_host = h;
    if (h == myhost) {
      if (i == g->rank) t->me_in_node = t->nnode;
      t->node[t->nnode++] = w;
    }
  }
}

static int sf__h_barrier(sf_job *job, const sf_group *g) {
  sf__topo t;
  int rc;
  sf__topo_of(job, g, &t);
  {
    sf_group node = {t.nnode, t.me_in_node, t.node, g->ctx};
    sf_group lead = {t.nhosts, t.my_host_pos, t.leaders, g->ctx};
    rc = sf_barrier(job, &node);
    if (rc >= 0 && t.me_in_node == 0) rc = sf_barrier(job, &lead);
    if (rc >= 0) rc = sf_barrier(job, &node);
  }
  return rc;
}

static int sf__h_bcast(sf_job *job, const sf_group *g, void *buf, size_t len, int root) {
  sf__topo t;
  int rc = 0, root_host = job->host_of[W(g, root)], root_pos = 0;
  sf__topo_of(job, g, &t);
  for (int k = 0; k < t.nhosts; k++)
    if (job->host_of[t.leaders[k]] == root_host) root_pos = k;
  {
    sf_group node = {t.nnode, t.me_in_node, t.node, g->ctx};
    sf_group lead = {t.nhosts, t.my_host_pos, t.leaders, g->ctx};
    if (job->host == root_host) {
      int root_in_node = 0;
      for (int k = 0; k < t.nnode; k++)
        if (t.node[k] == W(g, root)) root_in_node = k;
      rc = sf_bcast(job, &node, buf, len, root_in_node);
    }
    if (rc >= 0 && t.me_in_node == 0) rc = sf_bcast(job, &lead, buf, len, root_pos);
    if (rc >= 0 && job->host != root_host) rc = sf_bcast(job, &node, buf, len, 0);
  }
  return rc;
}

/* Reduce (to `root`, or to every member when root < 0) in phases; the topology must be
 * contiguous (rank order). sbuf NULL: in place (input in rbuf). */
static int sf__h_reduce(sf_job *job, const sf_group *g, const void *sbuf, void *rbuf, size_t len, sf_combine_fn combine,
                        void *arg, int root) {
  sf__topo t;
  unsigned char *part = NULL;
  int rc = 0;
  const void *in = sbuf ? sbuf : rbuf;
  sf__topo_of(job, g, &t);
  part = malloc(len ? len : 1);
  if (part == NULL) return sf__err(SF_ENOMEM, "out of memory for a %zu-byte reduction", len);
  {
    sf_group node = {t.nnode, t.me_in_node, t.node, g->ctx};
    sf_group lead = {t.nhosts, t.my_host_pos, t.leaders, g->ctx};
    /* 1. each host's members, in rank order, to the host's leader */
    rc = sf_reduce(job, &node, in, part, len, combine, arg, 0);
    if (rc < 0) goto done;
    if (root < 0) {
      /* 2. leaders combine their hosts' parts, 3. each leader gives the result to its host */
      if (t.me_in_node == 0) rc = sf_allreduce(job, &lead, NULL, part, len, combine, arg);
      if (rc >= 0) rc = sf_bcast(job, &node, part, len, 0);
      if (rc >= 0) memcpy(rbuf, part, len);
    } else {
      int root_w = W(g, root), root_host = job->host_of[root_w], root_pos = 0;
      for (int k = 0; k < t.nhosts; k++)
        if (job->host_of[t.leaders[k]] == root_host) root_pos = k;
      if (t.me_in_node == 0) rc = sf_reduce(job, &lead, NULL, part, len, combine, arg, root_pos);
      if (rc < 0) goto done;
      /* the result is at the root host's leader: hand it to the root */
      if (job->rank == t.leaders[root_pos] && root_w != job->rank)
        rc = sf_send(job, part, len, root_w, g->ctx, SF__T_H_ROOT, 0);
      else if (job->rank == root_w && root_w != t.leaders[root_pos])
        rc = sf_recv(job, rbuf, len, t.leaders[root_pos], g->ctx, SF__T_H_ROOT, NULL);
      else if (job->rank == root_w)
        memcpy(rbuf, part, len);
    }
  }
done:
  free(part);
  return rc;
}

int sf_barrier(sf_job *job, const sf_group *g) {
  int rc = sf__check_group(job, g, "sf_barrier");
  if (rc < 0) return rc;
  SF__LABEL(job, "sf_barrier");
  if (sf__hier(job, g)) {
    rc = sf__h_barrier(job, g);
    SF__UNLABEL(job);
    return rc;
  }
  if (g->size > 1 && sf__whole_host(job, g)) {
    rc = sf__coll_meet(job, job->coll_gen++, 1, 0, 0, NULL);
    SF__UNLABEL(job);
    return rc;
  }
  for (int k = 1; k < g->size; k <<= 1) {
    char s = 0, r;
    rc = sf__sendrecv(job, &s, 0, W(g, (g->rank + k) % g->size), &r, 0,
                      W(g, (g->rank - k + g->size) % g->size), g->ctx, SF__T_BARRIER);
    if (rc < 0) break;
  }
  SF__UNLABEL(job);
  return rc;
}

static int sf__bcast(sf_job *job, const sf_group *g, void *buf, size_t len, int root, int tag) {
  int n = g->size, vr = (g->rank - root + n) % n, mask = 1, rc = 0, nreq = 0;
  sf_req *reqs[32];
  while (mask < n) {
    if (vr & mask) {
      rc = sf_recv(job, buf, len, W(g, (vr - mask + root) % n), g->ctx, tag, NULL);
      if (rc < 0) return rc;
      break;
    }
    mask <<= 1;
  }
  mask >>= 1;
  while (mask > 0) {
    if (vr + mask < n) {
      rc = sf_isend(job, buf, len, W(g, (vr + mask + root) % n), g->ctx, tag, 0, &reqs[nreq]);
      if (rc < 0) break;
      nreq++;
    }
    mask >>= 1;
  }
  {
    int rc2 = sf__waitall(job, reqs, nreq);
    return rc < 0 ? rc : rc2;
  }
}

int sf_bcast(sf_job *job, const sf_group *g, void *buf, size_t len, int root) {
  int rc = sf__check_group(job, g, "sf_bcast");
  if (rc < 0) return rc;
  if (root < 0 || root >= g->size) return sf__err(SF_ERANGE, "root %d out of range for a group of size %d", root, g->size);
  if (g->size == 1) return 0;
  SF__LABEL(job, "sf_bcast");
  if (sf__hier(job, g)) {
    rc = sf__h_bcast(job, g, buf, len, root);
    SF__UNLABEL(job);
    return rc;
  }
  if (len <= SF__COLL_MAX && sf__whole_host(job, g)) {
    uint32_t gen = job->coll_gen++;
    rc = sf__coll_meet(job, gen, 2, root, len, g->rank == root ? buf : NULL);
    if (rc >= 0 && g->rank != root) memcpy(buf, sf__coll_data(job, gen, root), len);
    SF__UNLABEL(job);
    return rc;
  }
  rc = sf__bcast(job, g, buf, len, root, SF__T_BCAST);
  SF__UNLABEL(job);
  return rc;
}

/* Binomial reduce to group rank 0, in rank order. On return, rank 0's result is in *acc_out
 * (malloc'd, caller frees); others get NULL. */
static int sf__reduce0(sf_job *job, const sf_group *g, const void *in, size_t len, sf_combine_fn combine,
                       void *arg, unsigned char **acc_out) {
  int n = g->size, r = g->rank, rc = 0;
  unsigned char *acc = malloc(len ? len : 1), *tmp = malloc(len ? len : 1), *t;
  *acc_out = NULL;
  if (acc == NULL || tmp == NULL) {
    rc = sf__err(SF_ENOMEM, "out of memory for a %zu-byte reduction", len);
    goto fail;
  }
  memcpy(acc, in, len);
  for (int mask = 1; mask < n; mask <<= 1) {
    if (r & mask) {
      rc = sf_send(job, acc, len, W(g, r - mask), g->ctx, SF__T_REDUCE, 0);
      if (rc < 0) goto fail;
      break;
    }
    if (r + mask < n) {
      rc = sf_recv(job, tmp, len, W(g, r + mask), g->ctx, SF__T_REDUCE, NULL);
      if (rc < 0) goto fail;
      rc = combine(acc, tmp, len, arg); /* tmp = acc (lower ranks) op tmp (higher) */
      if (rc < 0) goto fail;
      t = acc;
      acc = tmp;
      tmp = t;
    }
  }
  free(tmp);
  if (r == 0)
    *acc_out = acc;
  else
    free(acc);
  return 0;
fail:
  free(acc);
  free(tmp);
  return rc;
}

int sf_reduce(sf_job *job, const sf_group *g, const void *sbuf, void *rbuf, size_t len, sf_combine_fn combine,
              void *arg, int root) {
  unsigned char *acc = NULL;
  int rc = sf__check_group(job, g, "sf_reduce");
  if (rc < 0) return rc;
  if (root < 0 || root >= g->size) return sf__err(SF_ERANGE, "root %d out of range for a group of size %d", root, g->size);
  if (combine == NULL) return sf__err(SF_EINVAL, "sf_reduce: combine is NULL");
  if (sbuf == NULL) sbuf = rbuf;
  if (g->size == 1) {
    if (rbuf != sbuf && len) memmove(rbuf, sbuf, len);
    return 0;
  }
  SF__LABEL(job, "sf_reduce");
  if (sf__hier_ordered(job, g)) {
    rc = sf__h_reduce(job, g, sbuf, rbuf, len, combine, arg, root);
    SF__UNLABEL(job);
    return rc;
  }
  if (len <= SF__COLL_MAX && sf__whole_host(job, g)) {
    uint32_t gen = job->coll_gen++;
    rc = sf__coll_meet(job, gen, 3, root, len, sbuf);
    if (rc >= 0 && g->rank == root) rc = sf__coll_fold(job, gen, g->size - 1, len, combine, arg, rbuf);
    SF__UNLABEL(job);
    return rc;
  }
  rc = sf__reduce0(job, g, sbuf, len, combine, arg, &acc);
  if (rc < 0) goto done;
  if (root == 0) {
    if (g->rank == 0) memcpy(rbuf, acc, len);
  } else if (g->rank == 0) {
    rc = sf_send(job, acc, len, W(g, root), g->ctx, SF__T_REDUCE_ROOT, 0);
  } else if (g->rank == root) {
    rc = sf_recv(job, rbuf, len, W(g, 0), g->ctx, SF__T_REDUCE_ROOT, NULL);
  }
done:
  free(acc);
  SF__UNLABEL(job);
  return rc;
}

int sf_allreduce(sf_job *job, const sf_group *g, const void *sbuf, void *rbuf, size_t len, sf_combine_fn combine,
                 void *arg) {
  int n, rc = sf__check_group(job, g, "sf_allreduce");
  unsigned char *tmp = NULL, *acc = NULL;
  if (rc < 0) return rc;
  if (combine == NULL) return sf__err(SF_EINVAL, "sf_allreduce: combine is NULL");
  if (sbuf != NULL && sbuf != rbuf && len) memcpy(rbuf, sbuf, len);
  n = g->size;
  if (n == 1 || len == 0) return 0;
  SF__LABEL(job, "sf_allreduce");
  if (sf__hier_ordered(job, g)) {
    rc = sf__h_reduce(job, g, NULL, rbuf, len, combine, arg, -1);
    SF__UNLABEL(job);
    return rc;
  }
  if (len <= SF__COLL_MAX && sf__whole_host(job, g)) {
    uint32_t gen = job->coll_gen++;
    rc = sf__coll_meet(job, gen, 5, -1, len, rbuf);
    if (rc >= 0) rc = sf__coll_fold(job, gen, n - 1, len, combine, arg, rbuf);
    SF__UNLABEL(job);
    return rc;
  }
  if ((n & (n - 1)) == 0) {
    /* Recursive doubling keeps rank order: the lower half's value is always `in`. */
    tmp = malloc(len);
    if (tmp == NULL) {
      rc = sf__err(SF_ENOMEM, "out of memory for a %zu-byte allreduce", len);
      goto done;
    }
    acc = rbuf;
    for (int mask = 1; mask < n; mask <<= 1) {
      int partner = g->rank ^ mask;
      rc = sf__sendrecv(job, acc, len, W(g, partner), tmp, len, W(g, partner), g->ctx, SF__T_ALLREDUCE);
      if (rc < 0) goto done;
      if (partner < g->rank) {
        rc = combine(tmp, acc, len, arg);
      } else {
        rc = combine(acc, tmp, len, arg);
        if (rc >= 0) memcpy(acc, tmp, len);
      }
      if (rc < 0) goto done;
    }
  } else {
    rc = sf__reduce0(job, g, rbuf, len, combine, arg, &acc);
    if (rc < 0) goto done;
    if (g->rank == 0) memcpy(rbuf, acc, len);
    free(acc);
    rc = sf__bcast(job, g, rbuf, len, 0, SF__T_BCAST);
  }
done:
  free(tmp);
  SF__UNLABEL(job);
  return rc;
}

static int sf__scan(sf_job *job, const sf_group *g, const void *sbuf, void *rbuf, size_t len, sf_combine_fn combine,
                    void *arg, int exclusive) {
  int r = g->rank, n = g->size, rc = 0;
  unsigned char *mine = NULL, *prefix = NULL;
  if (combine == NULL) return sf__err(SF_EINVAL, "scan: combine is NULL");
  if (sbuf == NULL) sbuf = rbuf;
  mine = malloc(len ? len : 1);
  prefix = malloc(len ? len : 1);
  if (mine == NULL || prefix == NULL) {
    rc = sf__err(SF_ENOMEM, "out of memory for a %zu-byte scan", len);
    goto done;
  }
  memcpy(mine, sbuf, len);
  if (r > 0) {
    rc = sf_recv(job, prefix, len, W(g, r - 1), g->ctx, SF__T_SCAN, NULL);
    if (rc < 0) goto done;
  }
  /* mine becomes prefix(0..r): prefix (lower) op mine */
  if (r > 0) {
    if (exclusive) memcpy(rbuf, prefix, len);
    rc = combine(prefix, mine, len, arg);
    if (rc < 0) goto done;
  }
  if (!exclusive) memcpy(rbuf, mine, len);
  if (r < n - 1) rc = sf_send(job, mine, len, W(g, r + 1), g->ctx, SF__T_SCAN, 0);
done:
  free(mine);
  free(prefix);
  return rc;
}

int sf_scan(sf_job *job, const sf_group *g, const void *sbuf, void *rbuf, size_t len, sf_combine_fn combine, void *arg) {
  int rc = sf__check_group(job, g, "sf_scan");
  if (rc < 0) return rc;
  SF__LABEL(job, "sf_scan");
  rc = sf__scan(job, g, sbuf, rbuf, len, combine, arg, 0);
  SF__UNLABEL(job);
  return rc;
}

int sf_exscan(sf_job *job, const sf_group *g, const void *sbuf, void *rbuf, size_t len, sf_combine_fn combine,
              void *arg) {
  int rc = sf__check_group(job, g, "sf_exscan");
  if (rc < 0) return rc;
  SF__LABEL(job, "sf_exscan");
  rc = sf__scan(job, g, sbuf, rbuf, len, combine, arg, 1);
  SF__UNLABEL(job);
  return rc;
}

static int sf__reqs(sf_job *job, int n, sf_req ***out) {
  (void)job;
  *out = calloc((size_t)n, sizeof **out);
  return *out ? 0 : sf__err(SF_ENOMEM, "out of memory for %d requests", n);
}

int sf_gatherv(sf_job *job, const sf_group *g, const void *sbuf, size_t slen, void *rbuf, const size_t *lens,
               const size_t *displs, int root) {
  sf_req **reqs = NULL;
  int rc = sf__check_group(job, g, "sf_gatherv");
  if (rc < 0) return rc;
  if (root < 0 || root >= g->size) return sf__err(SF_ERANGE, "root %d out of range for a group of size %d", root, g->size);
  SF__LABEL(job, "sf_gatherv");
  if (g->rank != root) {
    rc = sf_send(job, sbuf, slen, W(g, root), g->ctx, SF__T_GATHER, 0);
    goto done;
  }
  if ((rc = sf__reqs(job, g->size, &reqs)) < 0) goto done;
  for (int i = 0; i < g->size && rc >= 0; i++) {
    if (i == root) continue;
    rc = sf_irecv(job, (char *)rbuf + displs[i], lens[i], W(g, i), g->ctx, SF__T_GATHER, &reqs[i]);
  }
  if (rc >= 0 && sbuf != NULL) {
    if (slen > lens[root]) rc = sf__err(SF_ETRUNCATE, "gather: root's own block of %zu bytes exceeds %zu", slen, lens[root]);
    else memmove((char *)rbuf + displs[root], sbuf, slen);
  }
  {
    int rc2 = sf__waitall(job, reqs, g->size);
    if (rc >= 0) rc = rc2;
  }
done:
  free(reqs);
  SF__UNLABEL(job);
  return rc;
}

int sf_scatterv(sf_job *job, const sf_group *g, const void *sbuf, const size_t *lens, const size_t *displs, void *rbuf,
                size_t rlen, int root) {
  sf_req **reqs = NULL;
  int rc = sf__check_group(job, g, "sf_scatterv");
  if (rc < 0) return rc;
  if (root < 0 || root >= g->size) return sf__err(SF_ERANGE, "root %d out of range for a group of size %d", root, g->size);
  SF__LABEL(job, "sf_scatterv");
  if (g->rank != root) {
    rc = sf_recv(job, rbuf, rlen, W(g, root), g->ctx, SF__T_SCATTER, NULL);
    goto done;
  }
  if ((rc = sf__reqs(job, g->size, &reqs)) < 0) goto done;
  for (int i = 0; i < g->size && rc >= 0; i++) {
    if (i == root) continue;
    rc = sf_isend(job, (const char *)sbuf + displs[i], lens[i], W(g, i), g->ctx, SF__T_SCATTER, 0, &reqs[i]);
  }
  if (rc >= 0 && rbuf != NULL) {
    if (lens[root] > rlen) rc = sf__err(SF_ETRUNCATE, "scatter: root's own block of %zu bytes exceeds %zu", lens[root], rlen);
    else memmove(rbuf, (const char *)sbuf + displs[root], lens[root]);
  }
  {
    int rc2 = sf__waitall(job, reqs, g->size);
    if (rc >= 0) rc = rc2;
  }
done:
  free(reqs);
  SF__UNLABEL(job);
  return rc;
}

int sf_allgatherv(sf_job *job, const sf_group *g, const void *sbuf, size_t slen, void *rbuf, const size_t *lens,
                  const size_t *displs) {
  int n, r, rc = sf__check_group(job, g, "sf_allgatherv");
  if (rc < 0) return rc;
  n = g->size;
  r = g->rank;
  if (sbuf != NULL) {
    if (slen > lens[r]) return sf__err(SF_ETRUNCATE, "allgather: own block of %zu bytes exceeds %zu", slen, lens[r]);
    memmove((char *)rbuf + displs[r], sbuf, slen);
  }
  SF__LABEL(job, "sf_allgatherv");
  for (int s = 0; s < n - 1; s++) {
    int sb = (r - s + n) % n, rb = (r - s - 1 + n) % n;
    rc = sf__sendrecv(job, (char *)rbuf + displs[sb], lens[sb], W(g, (r + 1) % n), (char *)rbuf + displs[rb], lens[rb],
                      W(g, (r - 1 + n) % n), g->ctx, SF__T_ALLGATHER);
    if (rc < 0) break;
  }
  SF__UNLABEL(job);
  return rc;
}

int sf_alltoallv(sf_job *job, const sf_group *g, const void *sbuf, const size_t *slens, const size_t *sdispls,
                 void *rbuf, const size_t *rlens, const size_t *rdispls) {
  sf_req **reqs = NULL;
  int n, r, rc = sf__check_group(job, g, "sf_alltoallv");
  if (rc < 0) return rc;
  n = g->size;
  r = g->rank;
  if (slens[r] > rlens[r]) return sf__err(SF_ETRUNCATE, "alltoall: own block of %zu bytes exceeds %zu", slens[r], rlens[r]);
  SF__LABEL(job, "sf_alltoallv");
  if ((rc = sf__reqs(job, 2 * n, &reqs)) < 0) goto done;
  for (int k = 1; k < n && rc >= 0; k++) {
    int from = (r - k + n) % n;
    rc = sf_irecv(job, (char *)rbuf + rdispls[from], rlens[from], W(g, from), g->ctx, SF__T_ALLTOALL, &reqs[2 * k]);
  }
  for (int k = 1; k < n && rc >= 0; k++) {
    int to = (r + k) % n;
    rc = sf_isend(job, (const char *)sbuf + sdispls[to], slens[to], W(g, to), g->ctx, SF__T_ALLTOALL, 0,
                  &reqs[2 * k + 1]);
  }
  if (rc >= 0) memmove((char *)rbuf + rdispls[r], (const char *)sbuf + sdispls[r], slens[r]);
  {
    int rc2 = sf__waitall(job, reqs, 2 * n);
    if (rc >= 0) rc = rc2;
  }
done:
  free(reqs);
  SF__UNLABEL(job);
  return rc;
}
