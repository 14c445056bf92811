/* dataplane_malformed.c: a hostile sender. Rank 0 writes frames that break the ring format
 * straight into ring[0][1] (bad magic, then a length beyond the ring); rank 1's receive must
 * fail with SF_EPROTO and a message naming the sender, never crash; the connection to that
 * sender is then closed both ways (a send back fails with SF_EPROTO too). Uses the data plane directly (with its private layout) and prints
 * "VERDICT malformed PASS" or FAIL with the reason. */
#define _GNU_SOURCE
#include "internal.h"

#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

static int check_one(int rank, sf_job *job, uint16_t magic, uint32_t len, const char *want) {
  if (rank == 0) {
    sf__ring_hdr *r = sf__ring(job, 0, 1);
    unsigned char *data = (unsigned char *)(r + 1);
    uint64_t head = atomic_load(&r->head);
    sf__frame f = {magic, SF__FRAME_VERSION, SF__F_EAGER, 0, 1, 0, 7, len, 0, 0};
    memcpy(data + (head & (job->ring_bytes - 1)), &f, sizeof f);
    atomic_store(&r->head, head + 64);
    sf__wake(job, 1);
    return 0;
  } else {
    char buf[64];
    int rc = sf_recv(job, buf, sizeof buf, 0, 0, 7, NULL);
    if (rc != SF_EPROTO || strstr(sf_last_error(), want) == NULL || strstr(sf_last_error(), "from rank 0") == NULL) {
      printf("VERDICT malformed FAIL: rc %s, message \"%s\", wanted \"%s\"\n", sf_error_name(rc), sf_last_error(), want);
      return 1;
    }
    return 0;
  }
}

int main(void) {
  sf_job_options o;
  sf_job *jobs[2];
  int fails = 0;
  memset(&o, 0, sizeof o);
  o.size = 2;
  o.wait_timeout_ms = 5000;
  /* two jobs: one per kind of damage (a broken ring stays closed) */
  for (int k = 0; k < 2; k++)
    if (sf_job_create(&jobs[k], &o) < 0) {
      printf("VERDICT malformed FAIL: create: %s\n", sf_last_error());
      return 1;
    }
  int rank = 0;
  pid_t pid = fork();
  if (pid < 0) return 1;
  rank = pid == 0 ? 1 : 0;
  for (int k = 0; k < 2; k++) {
    if (rank == 1) sf_job_set_pid(jobs[k], 0, getppid());
    else sf_job_set_pid(jobs[k], 1, pid);
    sf_job_attach(jobs[k], rank);
  }
  fails += check_one(rank, jobs[0], 0xdead, 8, "bad magic");
  fails += check_one(rank, jobs[1], 0x5346, 1u << 30, "bad length");
  /* The damaged connection is closed both ways; a fresh job between the same processes works. */
  if (rank == 1) {
    int x = 42, rc = sf_send(jobs[0], &x, sizeof x, 0, 0, 8, 0);
    if (rc != SF_EPROTO || !strstr(sf_last_error(), "send to rank 0"))
      printf("VERDICT malformed FAIL: send back on the closed connection: %s\n", sf_error_name(rc)), fails++;
    sf_job_mark_finished(jobs[0]);
    sf_job_mark_finished(jobs[1]);
    return fails ? 1 : 0;
  }
  {
    int status = 0;
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) fails++;
    if (!fails) printf("VERDICT malformed PASS\n");
  }
  sf_job_destroy(jobs[0]);
  sf_job_destroy(jobs[1]);
  return fails ? 1 : 0;
}
