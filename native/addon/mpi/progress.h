// The binding's one progress hook (progress.cc) and the engines it drives: the schedules of
// non-blocking and neighbourhood collectives (sched.cc) and one-sided windows (win.cc, over
// native/onesided). The data plane runs the hook at the end of every sf_progress, including
// the progress made inside every blocking wait and when an awaiting event loop wakes
// (requests.cc's Settle), so these engines move while JavaScript blocks in any MPI call or
// awaits anything.
#pragma once

#include "state.h"

extern "C" {
#include "sf_onesided.h"
}

namespace sf::mpi {

// Installs the hook on the job (once per job). Call before starting any engine.
void EnsureProgressHook(Env* e);

// sched.cc: advance every schedule; true when a schedule finished (it sent its doorbell, which
// the hook then drains so that the waiting request completes in this same progress).
bool ProgressSchedules(Env* e);
// sched.cc / win.cc: drop everything without touching the job (it is gone or going).
void DropSchedules();
void DropWindows();
// win.cc: the engines of every window; true when a window's wait rang its doorbell.
bool ProgressWindows();

// Function tables of the parts, registered in binding.cc next to the others.
extern const std::vector<Fn> kSchedFns, kWinFns;

}  // namespace sf::mpi
