/* dataplane_hosts.c: a job of several "hosts" on one machine, through the public data-plane API
 * only. Each host is a process tree of its own with its own shared region; ranks on different
 * hosts talk over real loopback TCP connections handed in with sf_job_add_link_fd. Checks
 * point-to-point at eager and rendezvous sizes across and within hosts, wildcards, and every
 * collective (the hierarchical ones among them) against known answers, with block placement
 * (ranks of a host contiguous) or round robin. Then a rank on the last host dies, and a rank on
 * host 0 waiting for it must fail with SF_EPEERDIED naming it.
 *
 * Usage: dataplane_hosts <ranks per host, comma-separated> [rr]
 * World rank 0 prints "VERDICT hosts PASS" or "VERDICT hosts FAIL <first problem>". */
#define _GNU_SOURCE
#include "sf_dataplane.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static int fails;
static char first[300];
static int me = -1;

#define CHECK(cond, ...)                                                                  \
  do {                                                                                    \
    if (!(cond)) {                                                                        \
      if (fails++ == 0) {                                                                 \
        int n_ = snprintf(first, sizeof first, "rank %d line %d: ", me, __LINE__);       \
        snprintf(first + n_, sizeof first - (size_t)n_, __VA_ARGS__);                     \
      }                                                                                   \
      fprintf(stderr, "rank %d: FAIL line %d\n", me, __LINE__);                           \
    }                                                                                     \
  } while (0)
#define OK(call)                                                                        \
  do {                                                                                  \
    int rc_ = (call);                                                                   \
    CHECK(rc_ >= 0, "%s: %s: %s", #call, sf_error_name(rc_), sf_last_error());          \
  } while (0)

/* A connected loopback TCP pair. */
static int tcp_pair(int fd[2]) {
  struct sockaddr_in a;
  socklen_t len = sizeof a;
  int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof a) != 0 || listen(l, 1) != 0 ||
      getsockname(l, (struct sockaddr *)&a, &len) != 0)
    return -1;
  fd[0] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd[0] < 0 || connect(fd[0], (struct sockaddr *)&a, sizeof a) != 0) return -1;
  fd[1] = accept4(l, NULL, NULL, SOCK_CLOEXEC);
  close(l);
  return fd[1] < 0 ? -1 : 0;
}

static int sum_int(const void *in, void *inout, size_t n, void *arg) {
  (void)arg;
  for (size_t i = 0; i < n / sizeof(int); i++) ((int *)inout)[i] += ((const int *)in)[i];
  return 0;
}

/* Non-commutative: keeps the order of the operands as a string of digits (base 10 shifts). */
static int concat(const void *in, void *inout, size_t n, void *arg) {
  (void)arg;
  (void)n;
  long long a = *(const long long *)in, b = *(long long *)inout, p = 1;
  while (p <= b) p *= 10;
  *(long long *)inout = a * p + b;
  return 0;
}

static void tests(sf_job *job, int size, int rr) {
  const uint32_t P2P = 8, COLL = 9;
  int rank = sf_job_rank(job);
  sf_group g = {size, rank, NULL, COLL};
  /* 1. ring at eager and rendezvous sizes */
  size_t sizes[] = {8, 4000, 70000, 1 << 20};
  for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
    size_t n = sizes[k];
    unsigned char *sb = malloc(n), *rb = malloc(n);
    int right = (rank + 1) % size, left = (rank + size - 1) % size;
    sf_req *rr_, *sr;
    sf_status st;
    for (size_t i = 0; i < n; i++) sb[i] = (unsigned char)(rank * 31 + i);
    OK(sf_irecv(job, rb, n, left, P2P, (int)k, &rr_));
    OK(sf_isend_typed(job, sb, n, 7, right, P2P, (int)k, k == 2, &sr));
    OK(sf_wait(job, sr, NULL));
    OK(sf_wait(job, rr_, &st));
    CHECK(st.source == left && st.tag == (int)k && st.count == n && st.dtype == 7, "ring %zu: status %d/%d/%zu/%u", n,
          st.source, st.tag, st.count, st.dtype);
    for (size_t i = 0; i < n; i++)
      if (rb[i] != (unsigned char)(left * 31 + i)) {
        CHECK(0, "ring %zu bytes: wrong byte at %zu", n, i);
        break;
      }
    sf_req_free(job, sr);
    sf_req_free(job, rr_);
    free(sb);
    free(rb);
  }
  /* 2. everyone to rank 0 with wildcards, in order per sender; typed and allocating receives */
  {
    int v[2] = {rank, 0};
    for (int k = 0; k < 3; k++) {
      v[1] = k;
      OK(sf_send(job, v, sizeof v, 0, P2P, 100 + k, 0));
    }
    if (rank == 0) {
      int next[256] = {0};
      for (int m = 0; m < 3 * size; m++) {
        sf_req *q;
        sf_status st;
        int *got;
        size_t len = 0;
        OK(sf_irecv_alloc(job, SF_ANY_SOURCE, P2P, SF_ANY_TAG, &q));
        OK(sf_wait(job, q, &st));
        got = sf_req_take_buffer(q, &len);
        sf_req_free(job, q);
        CHECK(got && len == sizeof v && got[0] == st.source && st.tag == 100 + got[1] && got[1] == next[got[0]]++,
              "wildcard message %d: len %zu from %d tag %d", m, len, st.source, st.tag);
        free(got);
      }
    }
  }
  /* 3. collectives */
  {
    int x = rank + 1, y = 0, z[4] = {rank, 2 * rank, 3 * rank, 4 * rank}, w[4];
    long long c = rank, cr = 0, expect = 0;
    OK(sf_barrier(job, &g));
    OK(sf_allreduce(job, &g, &x, &y, sizeof x, sum_int, NULL));
    CHECK(y == size * (size + 1) / 2, "allreduce int: %d", y);
    OK(sf_allreduce(job, &g, z, w, sizeof z, sum_int, NULL));
    CHECK(w[3] == 4 * size * (size - 1) / 2, "allreduce 4 ints: %d", w[3]);
    for (int root = 0; root < size; root += size > 2 ? size - 2 : 1) {
      int b[64];
      for (int i = 0; i < 64; i++) b[i] = rank == root ? 1000 * root + i : -1;
      OK(sf_bcast(job, &g, b, sizeof b, root));
      CHECK(b[0] == 1000 * root && b[63] == 1000 * root + 63, "bcast from %d: %d", root, b[0]);
      y = 0;
      OK(sf_reduce(job, &g, &x, &y, sizeof x, sum_int, NULL, root));
      if (rank == root) CHECK(y == size * (size + 1) / 2, "reduce to %d: %d", root, y);
    }
    /* rank order of a non-commutative reduction, with 1-digit ranks */
    if (size <= 9) {
      for (int r = 0; r < size; r++) expect = expect * 10 + r;
      c = rank;
      OK(sf_allreduce(job, &g, &c, &cr, sizeof c, concat, NULL));
      CHECK(cr == expect, "non-commutative allreduce %lld, expected %lld (rr %d)", cr, expect, rr);
      cr = 0;
      OK(sf_reduce(job, &g, &c, &cr, sizeof c, concat, NULL, size - 1));
      if (rank == size - 1) CHECK(cr == expect, "non-commutative reduce %lld, expected %lld", cr, expect);
    }
    /* gather / allgather / scatter / alltoall of one int per rank */
    {
      int *all = calloc((size_t)size, sizeof(int)), *mine = malloc((size_t)size * sizeof(int)), got = -1;
      size_t *lens = malloc((size_t)size * sizeof(size_t)), *displs = malloc((size_t)size * sizeof(size_t));
      for (int i = 0; i < size; i++) {
        lens[i] = sizeof(int);
        displs[i] = (size_t)i * sizeof(int);
        mine[i] = rank * 100 + i;
      }
      OK(sf_allgatherv(job, &g, &x, sizeof x, all, lens, displs));
      for (int i = 0; i < size; i++) CHECK(all[i] == i + 1, "allgather[%d] = %d", i, all[i]);
      OK(sf_scatterv(job, &g, mine, lens, displs, &got, sizeof got, 0));
      CHECK(got == rank, "scatter: %d", got);
      OK(sf_alltoallv(job, &g, mine, lens, displs, all, lens, displs));
      for (int i = 0; i < size; i++) CHECK(all[i] == i * 100 + rank, "alltoall[%d] = %d", i, all[i]);
      free(all);
      free(mine);
      free(lens);
      free(displs);
    }
    OK(sf_barrier(job, &g));
  }
}

int main(int argc, char **argv) {
  int counts[16], nh = 0, size = 0, rr = argc > 2 && strcmp(argv[2], "rr") == 0;
  int host_of[256], (*pair)[256][2];
  char *s = argc > 1 ? argv[1] : "2,2";
  for (char *t = strtok(s, ","); t && nh < 16; t = strtok(NULL, ",")) counts[nh++] = atoi(t);
  for (int h = 0; h < nh; h++) size += counts[h];
  if (size < 2 || size > 64) return 2;
  /* Placement: block (host by host) or round robin. */
  {
    int left[16], r = 0;
    memcpy(left, counts, sizeof left);
    if (!rr) {
      for (int h = 0; h < nh; h++)
        for (int k = 0; k < counts[h]; k++) host_of[r++] = h;
    } else {
      while (r < size)
        for (int h = 0; h < nh && r < size; h++)
          if (left[h]-- > 0) host_of[r++] = h;
    }
  }
  /* A TCP connection per pair of ranks on different hosts: pair[a][b][0] is a's end. */
  pair = calloc(256, sizeof *pair);
  for (int a = 0; a < size; a++)
    for (int b = a + 1; b < size; b++) {
      int fd[2];
      if (host_of[a] == host_of[b]) continue;
      if (tcp_pair(fd) != 0) {
        perror("tcp pair");
        return 2;
      }
      pair[a][b][0] = fd[0];
      pair[a][b][1] = fd[1];
    }
  fflush(NULL);
  pid_t roots[16];
  for (int h = 0; h < nh; h++) {
    roots[h] = fork();
    if (roots[h] == 0) {
      sf_job *job;
      sf_job_options o;
      int rank;
      memset(&o, 0, sizeof o);
      o.size = size;
      o.host_of = host_of;
      o.host = h;
      o.wait_timeout_ms = 20000;
      if (sf_job_create(&job, &o) < 0) {
        fprintf(stderr, "host %d: create: %s\n", h, sf_last_error());
        _exit(2);
      }
      rank = sf_job_fork(job);
      if (rank < 0) {
        fprintf(stderr, "host %d: fork: %s\n", h, sf_last_error());
        _exit(2);
      }
      me = rank;
      /* Keep this rank's ends of its connections, close every other fd of the table. */
      for (int a = 0; a < size; a++)
        for (int b = a + 1; b < size; b++) {
          if (host_of[a] == host_of[b]) continue;
          if (a == rank) {
            OK(sf_job_add_link_fd(job, b, pair[a][b][0]));
            close(pair[a][b][1]);
          } else if (b == rank) {
            OK(sf_job_add_link_fd(job, a, pair[a][b][1]));
            close(pair[a][b][0]);
          } else {
            close(pair[a][b][0]);
            close(pair[a][b][1]);
          }
        }
      tests(job, size, rr);
      /* 4. a death across hosts: the last rank dies without finishing; rank 0 waits for a
       * message from it and must learn of the death from its link. */
      {
        int victim = size - 1, x, nf = fails, total = 0;
        sf_group g = {size, rank, NULL, 9};
        OK(sf_allreduce(job, &g, &nf, &total, sizeof nf, sum_int, NULL));
        /* Everyone else finishes first (a finished rank may exit without alarm); the victim
         * dies only when rank 0 says so, so no other wait can see its death first. */
        if (rank != 0 && rank != victim) sf_job_mark_finished(job);
        if (rank == victim) {
          OK(sf_recv(job, &x, sizeof x, 0, 8, 998, NULL));
          _exit(3);
        }
        if (rank == 0) {
          char want[32];
          int rc;
          x = 1;
          OK(sf_send(job, &x, sizeof x, victim, 8, 998, 0));
          rc = sf_recv(job, &x, sizeof x, victim, 8, 999, NULL);
          snprintf(want, sizeof want, "rank %d", victim);
          CHECK(rc == SF_EPEERDIED && strstr(sf_last_error(), want) != NULL, "waiting for the dead rank %d: %s: %s",
                victim, sf_error_name(rc), sf_last_error());
          if (total == 0 && fails == 0)
            printf("VERDICT hosts PASS\n");
          else
            printf("VERDICT hosts FAIL %d problems (first: %s)\n", total + fails, fails ? first : "on another rank");
          fflush(stdout);
        }
        if (fails) fprintf(stderr, "rank %d: %s\n", rank, first);
        if (sf_job_local_world(job, 0) == rank) /* the host's first rank reaps its clones */
          for (int l = 1; l < sf_job_local_count(job); l++) {
            int st;
            pid_t p = sf_job_pid(job, sf_job_local_world(job, l));
            if (p > 0) waitpid(p, &st, 0);
          }
        _exit(fails ? 1 : 0);
      }
    }
  }
  for (int a = 0; a < size; a++)
    for (int b = a + 1; b < size; b++)
      if (host_of[a] != host_of[b]) {
        close(pair[a][b][0]);
        close(pair[a][b][1]);
      }
  {
    int status, bad = 0;
    for (int h = 0; h < nh; h++) {
      int victim_root = -1;
      for (int r = 0; r < size; r++)
        if (host_of[r] == h) {
          victim_root = r == size - 1;
          break;
        }
      waitpid(roots[h], &status, 0);
      if (!WIFEXITED(status) || WEXITSTATUS(status) != (victim_root ? 3 : 0)) {
        fprintf(stderr, "host %d's first rank ended with status %#x\n", h, status);
        bad = 1;
      }
    }
    return bad;
  }
}
