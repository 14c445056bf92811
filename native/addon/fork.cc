// Forking a live Node.js process so that the child can keep running JavaScript.
//
// A plain fork() of Node is not enough (docs/forking-node.md has the details):
//  1. V8 marks its heap reservations MADV_DONTFORK; the child would fault on its first
//     JavaScript step. We clear that flag on every mapping before forking.
//  2. The platform's worker threads wait on a condition variable; a fork taken while they wait
//     leaves phantom waiters behind and the child hangs in pthread_cond_signal. We park every
//     worker in a task of ours, fork, then release them (in the parent only).
//  3. libuv's loop must be told about the fork (uv_loop_fork) with a loop pointer taken before it.
//  4. A clone must never outlive its parent: PR_SET_PDEATHSIG, and a check for the race where the
//     parent died before the flag was set.

#include "addon.h"

#include <node.h>
#include <v8-platform.h>
#include <v8.h>
#include <uv.h>

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <fcntl.h>
#include <signal.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <linux/futex.h>
#include <time.h>
#include <unistd.h>

namespace sf {
namespace {

// Clears MADV_DONTFORK on every mapping. Reading /proc/self/maps is cheap (unlike smaps, it does
// not walk page tables); madvise over a span that holds gaps still applies to every mapping in
// it and reports ENOMEM, which we accept. Kernel "special" mappings ([vvar], [vdso]) refuse the
// advice with EINVAL, so they split the address space into spans.
std::string EnableForkOfAllMappings() {
  FILE* maps = fopen("/proc/self/maps", "re");
  if (maps == nullptr) return std::string("open /proc/self/maps: ") + strerror(errno);
  struct Span { uintptr_t start, end; };
  std::vector<Span> spans;
  bool open_span = false;
  char line[4096];
  while (fgets(line, sizeof line, maps) != nullptr) {
    unsigned long start = 0, end = 0;
    if (sscanf(line, "%lx-%lx", &start, &end) != 2) continue;
    bool special = strstr(line, "[v") != nullptr;  // [vvar], [vdso], [vsyscall], [vvar_vclock]
    if (special) {
      open_span = false;
      continue;
    }
    if (open_span) {
      spans.back().end = end;
    } else {
      spans.push_back({start, end});
      open_span = true;
    }
  }
  fclose(maps);
  for (const Span& s : spans) {
    if (madvise(reinterpret_cast<void*>(s.start), s.end - s.start, MADV_DOFORK) == 0) continue;
    if (errno == ENOMEM) continue;  // gaps between mappings
    if (errno != EINVAL) return std::string("madvise(MADV_DOFORK): ") + strerror(errno);
    // A mapping in this span refuses the advice (VM_IO, a device mapping): go one by one.
    FILE* again = fopen("/proc/self/maps", "re");
    if (again == nullptr) return std::string("open /proc/self/maps: ") + strerror(errno);
    while (fgets(line, sizeof line, again) != nullptr) {
      unsigned long start = 0, end = 0;
      if (sscanf(line, "%lx-%lx", &start, &end) != 2) continue;
      if (start < s.start || end > s.end) continue;
      if (madvise(reinterpret_cast<void*>(start), end - start, MADV_DOFORK) != 0 &&
          errno != EINVAL && errno != ENOMEM) {
        fclose(again);
        return std::string("madvise(MADV_DOFORK): ") + strerror(errno);
      }
    }
    fclose(again);
  }
  return "";
}

// Holds the platform's worker threads still while the main thread forks. Shared by the tasks;
// the child never touches it again (its copy has waiters that do not exist there).
struct ParkGate {
  std::mutex mu;
  std::condition_variable cv;
  int parked = 0;
  bool released = false;
};

class ParkTask : public v8::Task {
 public:
  explicit ParkTask(std::shared_ptr<ParkGate> gate) : gate_(std::move(gate)) {}
  void Run() override {
    std::unique_lock<std::mutex> lock(gate_->mu);
    gate_->parked++;
    gate_->cv.notify_all();
    gate_->cv.wait(lock, [this] { return gate_->released; });
  }

 private:
  std::shared_ptr<ParkGate> gate_;
};

void Release(const std::shared_ptr<ParkGate>& gate) {
  if (!gate) return;
  std::lock_guard<std::mutex> lock(gate->mu);
  gate->released = true;
  gate->cv.notify_all();
}

// True in a clone: the platform's worker threads stayed behind in the process we came from.
bool workers_absent = false;
// The platform of the process we are about to fork has worker threads (Node started without
// --single-threaded): its clones will have none to run V8's background compile jobs.
bool forking_with_workers = false;

// Parks every platform worker thread; returns the gate to release them, or an error.
std::shared_ptr<ParkGate> ParkWorkers(v8::Isolate* isolate, int timeout_ms, std::string* error) {
  if (workers_absent) return std::make_shared<ParkGate>();  // nothing to park in a clone
  node::Environment* env = node::GetCurrentEnvironment(isolate->GetCurrentContext());
  node::MultiIsolatePlatform* platform = env ? node::GetMultiIsolatePlatform(env) : nullptr;
  if (platform == nullptr) {
    *error = "cannot reach the Node.js platform to park its worker threads";
    return nullptr;
  }
  // NumberOfWorkerThreads() also counts the delayed-task scheduler, which runs no tasks.
  int workers = platform->NumberOfWorkerThreads() - 1;
  forking_with_workers = workers > 0;
  auto gate = std::make_shared<ParkGate>();
  for (int i = 0; i < workers; i++) platform->CallOnWorkerThread(std::make_unique<ParkTask>(gate));
  std::unique_lock<std::mutex> lock(gate->mu);
  bool all = gate->cv.wait_for(lock, std::chrono::milliseconds(timeout_ms),
                               [&] { return gate->parked >= workers; });
  if (!all) {
    int parked = gate->parked;
    lock.unlock();
    Release(gate);
    *error = "only " + std::to_string(parked) + " of " + std::to_string(workers) +
             " platform worker threads parked within " + std::to_string(timeout_ms) +
             " ms (a long V8 background task is running); try again";
    return nullptr;
  }
  return gate;
}

int OpenDevNullOnStdin() {
  int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  int rc = dup2(fd, 0);
  close(fd);
  return rc < 0 ? -1 : 0;
}

// What a child does after fork, before it returns to JavaScript (its start gate comes later, in
// passStartGate). Only async-signal-safe calls until uv_loop_fork (after it, V8 may allocate:
// glibc's fork leaves malloc usable in the child); failures end the child at once (exit code 70,
// EX_SOFTWARE) with a line on stderr, since there is no JavaScript to carry them to yet.
void ChildAfterFork(uv_loop_t* loop, pid_t parent, const std::vector<int>& close_fds,
                    bool stdin_null) {
  auto die = [](const char* what) {
    char buf[256];
    int n = snprintf(buf, sizeof buf, "sfmpi: clone %d: %s: %s\n", getpid(), what, strerror(errno));
    if (n > 0) (void)!write(2, buf, static_cast<size_t>(n));
    _exit(70);
  };
  if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) die("prctl(PR_SET_PDEATHSIG)");
  if (getppid() != parent) _exit(70);  // the parent died before the flag was set
  workers_absent = true;
  forking_with_workers = false;  // our clones inherit concurrent OSR off, as we did
  for (int fd : close_fds) close(fd);
  if (stdin_null && OpenDevNullOnStdin() != 0) die("stdin to /dev/null");
  int rc = uv_loop_fork(loop);
  if (rc != 0) {
    errno = -rc;
    die("uv_loop_fork");
  }
}

// A hot loop is optimized by on-stack replacement, compiled on a worker thread when concurrent:
// in a clone without workers it would run unoptimized for good (10x slower here). Compiled on
// the main thread it takes a few ms. Other hot functions stay in baseline code, since V8 queues
// their optimization for workers whatever the flags say once the isolate runs; the launchers'
// --single-threaded avoids both. The origin turns the flag off for the instant of its forks and
// back on after them, so the clones inherit it off: set in each clone instead, the flag
// machinery's page faults cost each of them 0.15 ms before its first JavaScript step.
void SetConcurrentOsr(bool on) {
  if (forking_with_workers) v8::V8::SetFlagsFromString(on ? "--concurrent-osr" : "--no-concurrent-osr");
}

// The start gate: clones wait on it until the origin has forked them all, so that on a machine
// with fewer cores than clones the origin is not starved by its own clones while forking. A
// clone waits there only once its own start is done, native and JavaScript (passStartGate, at
// the end of becomeClone): that start, about 1 ms of CPU, then runs on another core while the
// origin forks the next clones, and what the program does next waits for the gate.
struct StartGate {
  uint32_t open;
};

StartGate* gate_page = nullptr;     // the origin's mapping of the gate of the last forkClones
StartGate* gate_ahead = nullptr;    // a clone's mapping of the gate it has yet to pass

void WaitAtGate(StartGate* g) {
  // Bounded: if the origin never opens the gate (it died), PDEATHSIG ends us anyway.
  timespec ts = {1, 0};
  for (int i = 0; i < 10 && __atomic_load_n(&g->open, __ATOMIC_ACQUIRE) == 0; i++)
    syscall(SYS_futex, &g->open, FUTEX_WAIT, 0, &ts, nullptr, 0);
}

void OpenGate(StartGate* g) {
  __atomic_store_n(&g->open, 1, __ATOMIC_RELEASE);
  syscall(SYS_futex, &g->open, FUTEX_WAKE, INT32_MAX, nullptr, nullptr, 0);
}

int gate_seat = -1;  // a clone's: its index among the clones of its ticket

// Waits at the gate on a core of its own turn (clone k on the k-th allowed CPU, round robin), then
// takes back every CPU it may run on. The futex wake puts each clone on the run queue of the core
// it last ran on, and a clone's start runs where the origin does not fork, so without this all
// of them queued on one core: the first ones to pass begin the program and keep that core until
// the next scheduler tick, and the clones behind them got a core one tick (4 ms) at a time.
void PassGate() {
  if (gate_ahead == nullptr) return;
  cpu_set_t allowed, seat;
  bool placed = false;
  if (sched_getaffinity(0, sizeof allowed, &allowed) == 0 && CPU_COUNT(&allowed) > 1 && gate_seat >= 0) {
    int want = gate_seat % CPU_COUNT(&allowed);
    for (int cpu = 0; cpu < CPU_SETSIZE; cpu++) {
      if (!CPU_ISSET(cpu, &allowed) || want-- > 0) continue;
      CPU_ZERO(&seat);
      CPU_SET(cpu, &seat);
      placed = sched_setaffinity(0, sizeof seat, &seat) == 0;
      break;
    }
  }
  WaitAtGate(gate_ahead);
  if (placed) (void)sched_setaffinity(0, sizeof allowed, &allowed);
  munmap(gate_ahead, sizeof(StartGate));
  gate_ahead = nullptr;
}

}  // namespace

// passStartGate(): in a clone, waits until its origin has forked every clone of the ticket.
// Idempotent; nothing to wait for in a process that is no fresh clone.
Napi::Value PassStartGate(const Napi::CallbackInfo& info) {
  PassGate();
  return info.Env().Undefined();
}

// releaseClones(): opens the start gate of the last forkClones (in the origin, once it has
// recorded its clones). Idempotent.
Napi::Value ReleaseClones(const Napi::CallbackInfo& info) {
  if (gate_page != nullptr) {
    OpenGate(gate_page);
    munmap(gate_page, sizeof(StartGate));
    gate_page = nullptr;
  }
  return info.Env().Undefined();
}

// forkClones(count, { stdinNull = true, parkTimeoutMs = 5000, closeInChild = [] })
//   -> in the parent: { id: 0, pids: number[], fds: number[], ms: number[], totalMs }
//   -> in clone k (1..count): { id: k, fd: number, pids: [], fds: [] }
// fds[k-1] is the parent's end of a socketpair whose other end clone k holds as `fd`.
Napi::Value ForkClones(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber())
    return ThrowType(env, "forkClones(count): count must be a number");
  int count = info[0].As<Napi::Number>().Int32Value();
  if (count < 1) return ThrowRange(env, "forkClones(count): count must be at least 1");
  bool stdin_null = true;
  int park_timeout_ms = 5000;
  std::vector<int> close_in_child;
  if (info.Length() > 1 && info[1].IsObject()) {
    Napi::Object opts = info[1].As<Napi::Object>();
    if (opts.Has("stdinNull")) stdin_null = opts.Get("stdinNull").ToBoolean();
    if (opts.Has("closeInChild") && opts.Get("closeInChild").IsArray()) {
      Napi::Array fds = opts.Get("closeInChild").As<Napi::Array>();
      for (uint32_t i = 0; i < fds.Length(); i++)
        close_in_child.push_back(fds.Get(i).As<Napi::Number>().Int32Value());
    }
    if (opts.Has("parkTimeoutMs"))
      park_timeout_ms = opts.Get("parkTimeoutMs").As<Napi::Number>().Int32Value();
  }

  PassGate();  // a clone that forks before it passed its own gate (not through becomeClone)
  uv_loop_t* loop = nullptr;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok || loop == nullptr)
    return ThrowError(env, "fork: cannot get the libuv event loop");

  double t0 = NowMs();
  std::string error = EnableForkOfAllMappings();
  if (!error.empty()) return ThrowError(env, "fork: " + error);

  // Channels first, so that a failure here leaves nothing forked.
  std::vector<int> parent_ends, child_ends;
  for (int i = 0; i < count; i++) {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
      int err = errno;
      for (int fd : parent_ends) close(fd);
      for (int fd : child_ends) close(fd);
      errno = err;
      return ThrowErrno(env, "fork: socketpair for clone " + std::to_string(i + 1));
    }
    parent_ends.push_back(sv[0]);
    child_ends.push_back(sv[1]);
  }

  if (gate_page != nullptr) {  // a previous forkClones was never released: release it now
    OpenGate(gate_page);
    munmap(gate_page, sizeof(StartGate));
    gate_page = nullptr;
  }
  void* page = mmap(nullptr, sizeof(StartGate), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (page == MAP_FAILED) {
    int err = errno;
    for (int fd : parent_ends) close(fd);
    for (int fd : child_ends) close(fd);
    errno = err;
    return ThrowErrno(env, "fork: mmap of the start gate");
  }
  auto* start_gate = static_cast<StartGate*>(page);
  start_gate->open = 0;

  std::shared_ptr<ParkGate> gate = ParkWorkers(v8::Isolate::GetCurrent(), park_timeout_ms, &error);
  if (!gate) {
    munmap(page, sizeof(StartGate));
    for (int fd : parent_ends) close(fd);
    for (int fd : child_ends) close(fd);
    return ThrowError(env, "fork: " + error);
  }
  fflush(nullptr);  // C stdio of addons: print once, not once per clone

  // What forkClones returns in a clone, made here with the shape it will have: in the clone only
  // two existing fields change, where building the object there (new strings, a new hidden
  // class, both on pages the clone must first copy) cost each clone 0.2 ms.
  Napi::String k_id = Napi::String::New(env, "id"), k_fd = Napi::String::New(env, "fd");
  Napi::Object child_out = Napi::Object::New(env);
  child_out.Set(k_id, 0);
  child_out.Set(k_fd, -1);
  child_out.Set("pids", Napi::Array::New(env));
  child_out.Set("fds", Napi::Array::New(env));
  SetConcurrentOsr(false);

  pid_t self = getpid();
  std::vector<pid_t> pids;
  std::vector<double> ms;
  for (int i = 0; i < count; i++) {
    pid_t pid = fork();
    if (pid == 0) {
      // Keep only our own end of our own channel.
      std::vector<int> others = close_in_child;
      for (int j = 0; j < count; j++) {
        others.push_back(parent_ends[j]);
        if (j != i) others.push_back(child_ends[j]);
      }
      ChildAfterFork(loop, self, others, stdin_null);
      gate_ahead = start_gate;
      gate_seat = i;
      child_out.Set(k_id, i + 1);
      child_out.Set(k_fd, child_ends[i]);
      return child_out;
    }
    if (pid < 0) {
      int err = errno;
      SetConcurrentOsr(true);
      Release(gate);
      munmap(page, sizeof(StartGate));
      // Clones already forked are killed: a partial ticket is no ticket.
      for (pid_t p : pids) kill(p, SIGKILL);
      for (int fd : parent_ends) close(fd);
      for (int fd : child_ends) close(fd);
      for (pid_t p : pids) {
        int status;
        while (waitpid(p, &status, 0) < 0 && errno == EINTR) {}
      }
      errno = err;
      return ThrowErrno(env, "fork: fork() of clone " + std::to_string(i + 1) + " of " +
                                 std::to_string(count));
    }
    pids.push_back(pid);
    ms.push_back(NowMs() - t0);
  }
  SetConcurrentOsr(true);
  Release(gate);
  gate_page = start_gate;
  for (int fd : child_ends) close(fd);
  for (int fd : parent_ends) {
    int flags = fcntl(fd, F_GETFL);
    if (flags >= 0) fcntl(fd, F_SETFL, flags | O_NONBLOCK);
  }

  Napi::Object out = Napi::Object::New(env);
  Napi::Array jpids = Napi::Array::New(env, count);
  Napi::Array jfds = Napi::Array::New(env, count);
  Napi::Array jms = Napi::Array::New(env, count);
  for (int i = 0; i < count; i++) {
    jpids.Set(i, pids[i]);
    jfds.Set(i, parent_ends[i]);
    jms.Set(i, ms[i]);
  }
  out.Set("id", 0);
  out.Set("pids", jpids);
  out.Set("fds", jfds);
  out.Set("ms", jms);
  out.Set("totalMs", NowMs() - t0);
  return out;
}

}  // namespace sf
