// One-sided windows of mpi-compat/ts (win.ts), over native/onesided (sf_onesided.h has the two
// paths, the contexts and the wire format). Windows are kept by id; the progress hook
// (progress.cc) runs every window's engines.
//
// Target-side progress from the event loop: a member reached by messages (another host's, or
// one of this host's when the kernel refuses direct access) needs this rank to take its
// requests. Inside any blocking MPI call the hook does it; while the JavaScript of this rank
// runs to its end or awaits something, an unreferenced watch of the data plane's wake-up fd
// does: a TCP frame makes it readable at once, and this rank stays armed (sf_job_arm_wakeup) so
// that frames of this host's ranks ring it too (a direct lock holder's WAKE among them); a
// 25 ms timer re-arms it (requests.cc disarms when its last awaited request settles) and makes
// progress. A rank busy in a long synchronous computation takes requests at its next MPI call:
// a native progress thread would need the data plane to lock every call (it is single-threaded
// by design), so that is not done. A window whose members all reach each other directly needs
// none of this.
#include <unistd.h>

#include <cstring>
#include <memory>
#include <unordered_map>

#include "../addon.h"
#include "dtype.h"
#include "progress.h"

namespace sf::mpi {

namespace {

struct Win {
  sf_win* w = nullptr;
  Napi::Reference<Napi::Value> keep;                    // the caller's memory (create)
  std::vector<Napi::Reference<Napi::ArrayBuffer>> views; // arrays over the shared mapping: detached at free
  // Result arrays of gets and fetches by messages: written when the answer arrives, so kept
  // alive until a call completes every operation of this rank.
  std::vector<Napi::Reference<Napi::Value>> pending;
  bool needs_loop = false;                               // some member is reached by messages
};

std::unordered_map<uint32_t, std::unique_ptr<Win>> g_wins;
uint32_t g_next = 1;

// The event loop's part (see the header comment).
uv_poll_t* g_poll = nullptr;
uv_timer_t* g_timer = nullptr;
int g_poll_fd = -1;

void LoopProgress() {
  if (g_proc.job == nullptr) return;
  sf_job_wakeup_drain(g_proc.job);
  sf_progress(g_proc.job);  // the hook runs the engines; a failure shows at the window's next call
}

void StopLoop() {
  if (g_poll != nullptr) {
    uv_poll_stop(g_poll);
    uv_close(reinterpret_cast<uv_handle_t*>(g_poll), [](uv_handle_t* h) { delete reinterpret_cast<uv_poll_t*>(h); });
    g_poll = nullptr;
  }
  if (g_poll_fd >= 0) {
    close(g_poll_fd);
    g_poll_fd = -1;
  }
  if (g_timer != nullptr) {
    uv_timer_stop(g_timer);
    uv_close(reinterpret_cast<uv_handle_t*>(g_timer), [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
    g_timer = nullptr;
  }
}

void UpdateLoop(Napi::Env env) {
  bool need = false;
  for (auto& kv : g_wins) need |= kv.second->needs_loop;
  uv_loop_t* loop = nullptr;
  if (!need || g_proc.job == nullptr || napi_get_uv_event_loop(env, &loop) != napi_ok || loop == nullptr) {
    bool was = g_poll != nullptr || g_timer != nullptr;
    StopLoop();
    // Disarm, unless requests.cc's awaited requests still want the wake-ups.
    if (was && g_proc.job != nullptr && GetEnv(env)->awaited == 0) sf_job_arm_wakeup(g_proc.job, 0);
    return;
  }
  if (g_poll == nullptr) {
    int fd = sf_job_wakeup_fd(g_proc.job);
    // A duplicate: requests.cc may watch the same fd, and one loop cannot watch one fd twice.
    g_poll_fd = fd >= 0 ? dup(fd) : -1;
    if (g_poll_fd >= 0) {
      g_poll = new uv_poll_t;
      if (uv_poll_init(loop, g_poll, g_poll_fd) == 0) {
        uv_poll_start(g_poll, UV_READABLE, [](uv_poll_t*, int, int) { LoopProgress(); });
        uv_unref(reinterpret_cast<uv_handle_t*>(g_poll));
      } else {
        delete g_poll;
        g_poll = nullptr;
      }
    }
  }
  if (g_timer == nullptr) {
    g_timer = new uv_timer_t;
    uv_timer_init(loop, g_timer);
    uv_timer_start(g_timer, [](uv_timer_t*) {
      if (g_proc.job != nullptr) sf_job_arm_wakeup(g_proc.job, 1);
      LoopProgress();
    }, SF_TICK_MS, SF_TICK_MS);
    uv_unref(reinterpret_cast<uv_handle_t*>(g_timer));
  }
  sf_job_arm_wakeup(g_proc.job, 1);
}

// The MPI error class of a window failure; the message is the module's.
Napi::Value ThrowWin(Napi::Env env, int rc, const std::string& what) {
  const char* code = rc == SF_ESTATE ? "ERR_OTHER" : rc == SF_ERANGE ? "ERR_ARG" : sf_error_class(rc);
  return ThrowMPI(env, code, what + ": " + sf_win_last_error(), FailedRank(rc));
}

Win* Get(const Napi::CallbackInfo& info, const char* what) {
  Napi::Env env = info.Env();
  if (RequireJob(env, what) == nullptr) return nullptr;
  auto it = g_wins.find(info[0].As<Napi::Number>().Uint32Value());
  if (it == g_wins.end()) {
    ThrowMPI(env, "ERR_ARG", std::string(what) + ": the window has been freed");
    return nullptr;
  }
  return it->second.get();
}

size_t Size(const Napi::Value& v) { return static_cast<size_t>(v.As<Napi::Number>().DoubleValue()); }

// winCreate(ranks: Int32Array | null, index, ctx, flavor, memory: TypedArray | null, bytes,
//           dispUnit, direct, label) -> id
Napi::Value WinCreate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Env* e = GetEnv(env);
  sf_job* job = RequireJob(env, "Win.create");
  if (job == nullptr) return env.Undefined();
  sf_win_options o;
  memset(&o, 0, sizeof o);
  std::vector<int> ranks;
  if (info[0].IsNull()) {
    o.group.size = sf_job_size(job);
  } else {
    Napi::Int32Array a = info[0].As<Napi::Int32Array>();
    ranks.assign(a.Data(), a.Data() + a.ElementLength());
    o.group.size = static_cast<int>(ranks.size());
    o.group.ranks = ranks.data();
  }
  o.group.rank = Int(info, 1);
  o.group.ctx = U32(info, 2);
  o.flavor = Int(info, 3);
  uint8_t* p = nullptr;
  size_t len = 0;
  if (!Bytes(info, 4, &p, &len)) return env.Undefined();
  o.base = p;
  o.bytes = o.flavor == SF_WIN_CREATE ? len : Size(info[5]);
  o.disp_unit = Size(info[6]);
  o.direct = info[7].ToBoolean() ? 1 : 0;
  EnsureProgressHook(e);
  auto win = std::make_unique<Win>();
  int rc = sf_win_create(job, &o, &win->w);
  if (rc < 0) return ThrowWin(env, rc, info[8].IsString() ? info[8].As<Napi::String>().Utf8Value() : std::string("Win.create"));
  if (o.flavor == SF_WIN_CREATE && !info[4].IsNull()) win->keep = Napi::Persistent(info[4]);
  for (int t = 0; t < o.group.size; t++)
    if (!sf_win_direct(win->w, t)) win->needs_loop = true;
  uint32_t id = g_next++;
  g_wins.emplace(id, std::move(win));
  UpdateLoop(env);
  return Napi::Number::New(env, id);
}

// winInfo(id) -> [bytes: Float64Array, units: Float64Array, direct: Uint8Array]
Napi::Value WinInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Win* w = Get(info, "win");
  if (w == nullptr) return env.Undefined();
  int n = 0;
  while (sf_win_disp_unit(w->w, n) > 0) n++;
  Napi::Float64Array bytes = Napi::Float64Array::New(env, n), units = Napi::Float64Array::New(env, n);
  Napi::Uint8Array direct = Napi::Uint8Array::New(env, n);
  for (int i = 0; i < n; i++) {
    bytes[i] = static_cast<double>(sf_win_bytes(w->w, i));
    units[i] = static_cast<double>(sf_win_disp_unit(w->w, i));
    direct[i] = static_cast<uint8_t>(sf_win_direct(w->w, i));
  }
  Napi::Array out = Napi::Array::New(env, 3);
  out.Set(0u, bytes);
  out.Set(1u, units);
  out.Set(2u, direct);
  return out;
}

// winMemory(id, rank, dtype) -> a typed array over the member's memory as mapped here, or null
Napi::Value WinMemory(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Win* w = Get(info, "win.memory");
  if (w == nullptr) return env.Undefined();
  int dtype = Int(info, 2);
  size_t bytes = 0;
  void* p = sf_win_memory(w->w, Int(info, 1), &bytes);
  if (p == nullptr && bytes > 0) return env.Null();
  if (dtype <= 0 || dtype >= kTypeCount) dtype = 2;
  static uint8_t empty[8];
  // External: V8 never frees it; win.free detaches it before the mapping goes.
  Napi::ArrayBuffer ab = Napi::ArrayBuffer::New(env, p ? p : empty, p ? bytes : 0);
  napi_value out;
  if (napi_create_typedarray(env, kTypes[dtype].napi, bytes / kTypes[dtype].size, ab, 0, &out) != napi_ok) return env.Undefined();
  w->views.push_back(Napi::Persistent(ab));
  return Napi::Value(env, out);
}

void Release(Napi::Env env, Win* w) {
  for (auto& v : w->views) {
    if (!v.IsEmpty()) napi_detach_arraybuffer(env, v.Value());
    v.Reset();
  }
  w->views.clear();
  w->keep.Reset();
  w->pending.clear();
}

// winFree(id): collective; the arrays over the window's shared memory are detached.
Napi::Value WinFree(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Win* w = Get(info, "win.free");
  if (w == nullptr) return env.Undefined();
  uint32_t id = info[0].As<Napi::Number>().Uint32Value();
  int rc = sf_win_free(w->w);
  w->w = nullptr;
  Release(env, w);
  g_wins.erase(id);
  UpdateLoop(env);
  if (rc < 0) return ThrowWin(env, rc, "win.free");
  return env.Undefined();
}

bool Buf(const Napi::CallbackInfo& info, size_t i, uint8_t** p, size_t* len) { return Bytes(info, i, p, len); }

// winPut(id, buf, target, disp) / winGet(id, buf, target, disp)
Napi::Value WinPut(const Napi::CallbackInfo& info) {
  Win* w = Get(info, "win.Put");
  if (w == nullptr) return info.Env().Undefined();
  uint8_t* p;
  size_t len;
  if (!Buf(info, 1, &p, &len)) return info.Env().Undefined();
  int rc = sf_win_put(w->w, p, len, Int(info, 2), Size(info[3]));
  if (rc < 0) return ThrowWin(info.Env(), rc, "win.Put");
  return info.Env().Undefined();
}

Napi::Value WinGet(const Napi::CallbackInfo& info) {
  Win* w = Get(info, "win.Get");
  if (w == nullptr) return info.Env().Undefined();
  uint8_t* p;
  size_t len;
  if (!Buf(info, 1, &p, &len)) return info.Env().Undefined();
  int rc = sf_win_get(w->w, p, len, Int(info, 2), Size(info[3]));
  if (rc < 0) return ThrowWin(info.Env(), rc, "win.Get");
  if (!sf_win_direct(w->w, Int(info, 2))) w->pending.push_back(Napi::Persistent(info[1]));
  return info.Env().Undefined();
}

// winAcc(id, buf | null, result | null, dtype, op, target, disp, len)
Napi::Value WinAcc(const Napi::CallbackInfo& info) {
  Win* w = Get(info, "win.Accumulate");
  if (w == nullptr) return info.Env().Undefined();
  uint8_t *p, *r;
  size_t len, rlen;
  if (!Buf(info, 1, &p, &len) || !Buf(info, 2, &r, &rlen)) return info.Env().Undefined();
  int dtype = Int(info, 3);
  sf_dtype t = dtype > 0 && dtype < kTypeCount ? kTypes[dtype].sf : SF_BYTE;
  int rc = sf_win_get_accumulate(w->w, p, r, Size(info[7]), t, static_cast<sf_op>(Int(info, 4)), Int(info, 5), Size(info[6]));
  if (rc < 0) return ThrowWin(info.Env(), rc, r ? "win.Get_accumulate" : "win.Accumulate");
  if (r && !sf_win_direct(w->w, Int(info, 5))) w->pending.push_back(Napi::Persistent(info[2]));
  return info.Env().Undefined();
}

// winCas(id, buf, compare, result, dtype, target, disp)
Napi::Value WinCas(const Napi::CallbackInfo& info) {
  Win* w = Get(info, "win.Compare_and_swap");
  if (w == nullptr) return info.Env().Undefined();
  uint8_t *p, *c, *r;
  size_t l1, l2, l3;
  if (!Buf(info, 1, &p, &l1) || !Buf(info, 2, &c, &l2) || !Buf(info, 3, &r, &l3)) return info.Env().Undefined();
  int dtype = Int(info, 4);
  sf_dtype t = dtype > 0 && dtype < kTypeCount ? kTypes[dtype].sf : SF_BYTE;
  int rc = sf_win_compare_and_swap(w->w, p, c, r, t, Int(info, 5), Size(info[6]));
  if (rc < 0) return ThrowWin(info.Env(), rc, "win.Compare_and_swap");
  if (!sf_win_direct(w->w, Int(info, 5))) w->pending.push_back(Napi::Persistent(info[3]));
  return info.Env().Undefined();
}

// The synchronisation calls of winSync, by number (win.ts's SYNC has the same order).
enum Sync { kFence, kLock, kUnlock, kLockAll, kUnlockAll, kFlush, kFlushAll, kFlushLocal, kFlushLocalAll, kPost, kStart, kComplete, kWait, kTest, kSyncMem, kSyncCount };
const char* const kSyncNames[kSyncCount] = {"win.Fence", "win.Lock", "win.Unlock", "win.Lock_all", "win.Unlock_all", "win.Flush", "win.Flush_all",
                                            "win.Flush_local", "win.Flush_local_all", "win.Post", "win.Start", "win.Complete", "win.Wait", "win.Test", "win.Sync"};

// winSync(id, call, a?, b?, c?) -> number: a synchronisation call (a: an assertion, a rank or
// the ranks of a group; b: a rank or an assertion; c: an assertion).
Napi::Value WinSync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int call = Int(info, 1);
  if (call < 0 || call >= kSyncCount) return ThrowType(env, "winSync: unknown call " + std::to_string(call));
  Win* w = Get(info, kSyncNames[call]);
  if (w == nullptr) return env.Undefined();
  size_t n = info.Length();
  int a = n > 2 && info[2].IsNumber() ? Int(info, 2) : 0;
  int b = n > 3 && info[3].IsNumber() ? Int(info, 3) : 0;
  int c = n > 4 && info[4].IsNumber() ? Int(info, 4) : 0;
  const int* ranks = nullptr;
  int nranks = 0;
  if (n > 2 && info[2].IsTypedArray()) {
    Napi::Int32Array g = info[2].As<Napi::Int32Array>();
    ranks = g.Data();
    nranks = static_cast<int>(g.ElementLength());
  }
  int rc;
  switch (call) {
    case kFence: rc = sf_win_fence(w->w, a); break;
    case kLock: rc = sf_win_lock(w->w, a, b, c); break;
    case kUnlock: rc = sf_win_unlock(w->w, a); break;
    case kLockAll: rc = sf_win_lock_all(w->w, a); break;
    case kUnlockAll: rc = sf_win_unlock_all(w->w); break;
    case kFlush: rc = sf_win_flush(w->w, a, 0); break;
    case kFlushAll: rc = sf_win_flush(w->w, -1, 0); break;
    case kFlushLocal: rc = sf_win_flush(w->w, a, 1); break;
    case kFlushLocalAll: rc = sf_win_flush(w->w, -1, 1); break;
    case kPost: rc = sf_win_post(w->w, ranks, nranks, b); break;
    case kStart: rc = sf_win_start(w->w, ranks, nranks, b); break;
    case kComplete: rc = sf_win_complete(w->w); break;
    case kWait: rc = sf_win_wait(w->w, 1); break;
    case kTest: rc = sf_win_wait(w->w, 0); break;
    default: sf_win_sync(w->w); rc = 0; break;
  }
  if (rc < 0) return ThrowWin(env, rc, kSyncNames[call]);
  if (call == kFence || call == kUnlockAll || call == kComplete || call == kFlushAll || call == kFlushLocalAll) w->pending.clear();
  return Napi::Number::New(env, rc);
}

}  // namespace

bool ProgressWindows() {
  bool rang = false;
  for (auto& kv : g_wins)
    if (kv.second->w != nullptr) rang |= sf_win_progress(kv.second->w) != 0;
  return rang;
}

void DropWindows() {
  // The job is gone or going: leave the windows' memory to the process's end.
  for (auto& kv : g_wins) {
    kv.second->views.clear();
    kv.second->keep.Reset();
  }
  g_wins.clear();
  // The loop is going too: its handles are Node's to close now.
  g_poll = nullptr;
  g_timer = nullptr;
  g_poll_fd = -1;
}

const std::vector<Fn> kWinFns = {
    {"winCreate", WinCreate}, {"winInfo", WinInfo}, {"winMemory", WinMemory}, {"winFree", WinFree},
    {"winPut", WinPut}, {"winGet", WinGet}, {"winAcc", WinAcc}, {"winCas", WinCas}, {"winSync", WinSync},
};

}  // namespace sf::mpi
