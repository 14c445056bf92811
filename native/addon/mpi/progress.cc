// The binding's progress hook: one per job (sf_job_set_progress_hook), installed on first use
// of a schedule or a window. It never blocks and never frees a request that a caller waits for.
#include "progress.h"

namespace sf::mpi {

namespace {

sf_job* g_hooked = nullptr;  // the job the hook is on (a job per process, but init may retry)

int Hook(sf_job* job, void* arg) {
  Env* e = static_cast<Env*>(arg);
  bool rang = ProgressSchedules(e);
  rang |= ProgressWindows();
  // A schedule that finished (or a window's wait that can end) sent its doorbell to this rank:
  // take it in now (a nested
  // sf_progress does not run the hook again), so the request it completes is done when the
  // progress call that finished the schedule returns.
  if (rang) sf_progress(job);
  return 0;
}

// The job goes away with the environment: forget everything without touching it.
void Cleanup(void*) {
  DropSchedules();
  DropWindows();
  g_hooked = nullptr;
}

}  // namespace

void EnsureProgressHook(Env* e) {
  if (g_proc.job == nullptr || g_hooked == g_proc.job) return;
  if (g_hooked == nullptr) napi_add_env_cleanup_hook(e->napi, Cleanup, nullptr);
  g_hooked = g_proc.job;
  sf_job_set_progress_hook(g_proc.job, Hook, e);
}

}  // namespace sf::mpi
