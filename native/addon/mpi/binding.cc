// The data plane (native/include/sf_dataplane.h) bound to Node for mpi-compat/ts: the job's life
// cycle, its health, labels and control lines. Point-to-point is in p2p.cc, requests in
// requests.cc, collectives in coll.cc.
//
// One job per process, created by MPI.init on the main thread before the fork point and
// attached in every rank after it. Blocking calls are synchronous: the data plane spins briefly,
// then sleeps. A message carries its element type in the data plane's frame (the wire id of
// datatype.ts), so a typed receive of another type is an error, not garbage, and an object
// receive of unknown size gets a buffer allocated when its message matches: a small message is
// copied twice, into the link and out of it, as in MPICH.

#include <cstring>

#include <sys/mman.h>
#include <time.h>

#include "../addon.h"
#include "dtype.h"
#include "progress.h"
#include "state.h"

namespace sf::mpi {

Process g_proc;

Env* GetEnv(Napi::Env env) { return env.GetInstanceData<Env>(); }

sf_job* RequireJob(Napi::Env env, const char* what) {
  Env* e = GetEnv(env);
  if (e == nullptr || !e->main) {
    ThrowMPI(env, "ERR_NOT_MAIN_THREAD",
             std::string(what) + ": MPI calls are only possible on the main thread (a worker thread has no rank: fork copies the calling thread only)");
    return nullptr;
  }
  if (g_proc.job == nullptr) {
    ThrowMPI(env, "ERR_NOT_INITIALIZED", std::string(what) + ": the data plane is not created (call MPI.init() first)");
    return nullptr;
  }
  return g_proc.job;
}

bool Bytes(const Napi::CallbackInfo& info, size_t i, uint8_t** ptr, size_t* len) {
  napi_value v = info[i];
  napi_typedarray_type type;
  size_t length = 0;
  void* data = nullptr;
  if (napi_get_typedarray_info(info.Env(), v, &type, &length, &data, nullptr, nullptr) == napi_ok) {
    *ptr = static_cast<uint8_t*>(data);
    *len = length * NapiElementSize(type);
    return true;
  }
  if (info[i].IsNull() || info[i].IsUndefined()) {
    *ptr = nullptr;
    *len = 0;
    return true;
  }
  ThrowType(info.Env(), "buffer must be a typed array");
  return false;
}

void SetStatus(Env* e, int source, int tag, size_t nbytes, int dtype, int refused) {
  e->status_data[0] = source;
  e->status_data[1] = tag;
  e->status_data[2] = static_cast<double>(nbytes);
  e->status_data[3] = dtype;
  e->status_data[4] = refused;
}

void SetRecvStatus(Env* e, const sf_status& st, int expect) {
  if (st.source == SF_PROC_NULL) {
    SetStatus(e, SF_PROC_NULL, SF_ANY_TAG, 0, expect < 0 ? 0 : expect);
  } else if (st.error == SF_ETRUNCATE || st.error == SF_ETYPE) {
    SetStatus(e, st.source, st.tag, st.size, static_cast<int>(st.dtype), st.error == SF_ETYPE ? kTypeMismatch : kTruncated);
  } else {
    SetStatus(e, st.source, st.tag, st.count, static_cast<int>(st.dtype));
  }
}

namespace {

constexpr size_t kSlotsBytes = sizeof(CollSlot) * SF_MAX_RANKS * kSlotBuckets;

// setErrorFactory(fn, isMainThread, onSettled) -> status array. Called once per environment
// when mpi-compat/ts loads.
Napi::Value SetErrorFactory(const Napi::CallbackInfo& info) {
  Env* e = GetEnv(info.Env());
  if (!info[0].IsFunction()) return ThrowType(info.Env(), "setErrorFactory(fn, isMainThread, onSettled): fn must be a function");
  e->error_factory = Napi::Persistent(info[0].As<Napi::Function>());
  e->main = info[1].ToBoolean();
  if (info[2].IsFunction()) e->on_settled = Napi::Persistent(info[2].As<Napi::Function>());
  Napi::Float64Array st = Napi::Float64Array::New(info.Env(), 5);
  e->status = Napi::Persistent(st);
  e->status_data = st.Data();
  return st;
}

void StopWatch() {
  if (g_proc.watch == nullptr) return;
  sf_watch_reap(g_proc.watch, 0);
  sf_watch_free(g_proc.watch);
  g_proc.watch = nullptr;
}

void DestroyJob(Env* e) {
  if (g_proc.job == nullptr) return;
  StopWatch();
  DropRequests(e);
  sf_job_destroy(g_proc.job);
  g_proc.job = nullptr;
  if (g_proc.slots != nullptr) {
    munmap(g_proc.slots, kSlotsBytes);
    g_proc.slots = nullptr;
  }
  g_proc.coll_seq.clear();
}

// join(fd) -> { size, host, hostOf: Int32Array, links: Int32Array [local, peer, fd, ...] }: a
// host's first rank of a job that spans hosts reads its part from dom0 (sf_join_read), up to
// dom0's go. Blocks: there is nothing else this process can do before its fork point.
Napi::Value Join(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  sf_join j;
  int rc = sf_join_read(Int(info, 0), -1, &j);
  if (rc < 0) return ThrowRc(env, rc, "MPI.init");
  Napi::Object out = Napi::Object::New(env);
  Napi::Int32Array host_of = Napi::Int32Array::New(env, j.size);
  for (int r = 0; r < j.size; r++) host_of[r] = j.host_of[r];
  Napi::Int32Array links = Napi::Int32Array::New(env, 3 * static_cast<size_t>(j.nlinks));
  for (int i = 0; i < j.nlinks; i++) {
    links[3 * i] = j.links[i].local;
    links[3 * i + 1] = j.links[i].peer;
    links[3 * i + 2] = j.links[i].fd;
  }
  out.Set("size", j.size);
  out.Set("host", j.host);
  out.Set("hostOf", host_of);
  out.Set("links", links);
  sf_join_free(&j);
  return out;
}

// addLink(peer, fd): this rank's link to a rank on another host (sf_job_add_link_fd).
Napi::Value AddLink(const Napi::CallbackInfo& info) {
  sf_job* job = RequireJob(info.Env(), "MPI.init");
  if (job == nullptr) return info.Env().Undefined();
  int rc = sf_job_add_link_fd(job, Int(info, 0), Int(info, 1));
  if (rc < 0) return ThrowRc(info.Env(), rc, "MPI.init: the link to rank " + std::to_string(Int(info, 0)));
  return info.Env().Undefined();
}

// local() -> [host, localRank, localCount, ...world ranks of the host's ranks]
Napi::Value Local(const Napi::CallbackInfo& info) {
  sf_job* job = RequireJob(info.Env(), "local");
  if (job == nullptr) return info.Env().Undefined();
  int n = sf_job_local_count(job);
  Napi::Int32Array a = Napi::Int32Array::New(info.Env(), 2 + static_cast<size_t>(n));
  a[0] = sf_job_host(job);
  a[1] = n;
  for (int l = 0; l < n; l++) a[2 + l] = sf_job_local_world(job, l);
  return a;
}

// create(size, ringBytes, eagerLimit, waitTimeoutMs, spinUs, cma, hostOf?: Int32Array, host?)
Napi::Value Create(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Env* e = GetEnv(env);
  if (!e->main) return ThrowMPI(env, "ERR_NOT_MAIN_THREAD", "MPI.init: MPI can only be initialized on the main thread");
  if (g_proc.job != nullptr) return ThrowMPI(env, "ERR_OTHER", "MPI.init: the data plane exists already (init called twice?)");
  sf_job_options o;
  memset(&o, 0, sizeof o);
  o.size = Int(info, 0);
  o.ring_bytes = static_cast<size_t>(info[1].As<Napi::Number>().DoubleValue());
  o.eager_limit = static_cast<size_t>(info[2].As<Napi::Number>().DoubleValue());
  o.wait_timeout_ms = Int(info, 3);
  o.spin_us = Int(info, 4);
  o.cma = Int(info, 5);
  std::vector<int> host_of;
  if (info.Length() > 6 && info[6].IsTypedArray()) {
    Napi::Int32Array h = info[6].As<Napi::Int32Array>();
    host_of.assign(h.Data(), h.Data() + h.ElementLength());
    if (static_cast<int>(host_of.size()) != o.size) return ThrowRange(env, "MPI.init: the host map does not cover every rank");
    o.host_of = host_of.data();
    o.host = Int(info, 7);
  }
  int rc = sf_job_create(&g_proc.job, &o);
  if (rc < 0) {
    g_proc.job = nullptr;
    return ThrowRc(env, rc, "MPI.init: creating the shared-memory data plane for " + std::to_string(o.size) + " ranks");
  }
  void* slots = mmap(nullptr, kSlotsBytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  g_proc.slots = slots == MAP_FAILED ? nullptr : static_cast<CollSlot*>(slots);  // a diagnostic only
  g_proc.coll_seq.clear();
  return env.Undefined();
}

Napi::Value SetPid(const Napi::CallbackInfo& info) {
  sf_job* job = RequireJob(info.Env(), "setPid");
  if (job == nullptr) return info.Env().Undefined();
  int rc = sf_job_set_pid(job, Int(info, 0), Int(info, 1));
  if (rc < 0) return ThrowRc(info.Env(), rc, "MPI.init: recording the pid of rank " + std::to_string(Int(info, 0)));
  return info.Env().Undefined();
}

Napi::Value Attach(const Napi::CallbackInfo& info) {
  sf_job* job = RequireJob(info.Env(), "attach");
  if (job == nullptr) return info.Env().Undefined();
  int rc = sf_job_attach(job, Int(info, 0));
  if (rc < 0) return ThrowRc(info.Env(), rc, "MPI.init: attaching rank " + std::to_string(Int(info, 0)));
  return info.Env().Undefined();
}

Napi::Value Destroy(const Napi::CallbackInfo& info) {
  Env* e = GetEnv(info.Env());
  if (e->main) DestroyJob(e);
  return info.Env().Undefined();
}

Napi::Value Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!GetEnv(env)->main || g_proc.job == nullptr) return env.Null();
  Napi::Array a = Napi::Array::New(env, 2);
  a.Set(0u, Napi::Number::New(env, sf_job_rank(g_proc.job)));
  a.Set(1u, Napi::Number::New(env, sf_job_size(g_proc.job)));
  return a;
}

Napi::Value Pid(const Napi::CallbackInfo& info) {
  sf_job* job = RequireJob(info.Env(), "pid");
  if (job == nullptr) return info.Env().Undefined();
  return Napi::Number::New(info.Env(), sf_job_pid(job, Int(info, 0)));
}

Napi::Value MarkFinished(const Napi::CallbackInfo& info) {
  if (!GetEnv(info.Env())->main || g_proc.job == nullptr) return info.Env().Undefined();
  int rc = sf_job_mark_finished(g_proc.job);
  if (rc < 0) return ThrowRc(info.Env(), rc, "MPI.finalize");
  return info.Env().Undefined();
}

Napi::Value MarkFailReported(const Napi::CallbackInfo& info) {
  if (GetEnv(info.Env())->main && g_proc.job != nullptr) sf_job_mark_fail_reported(g_proc.job, Int(info, 0));
  return info.Env().Undefined();
}

Napi::Value FailReported(const Napi::CallbackInfo& info) {
  bool v = GetEnv(info.Env())->main && g_proc.job != nullptr && sf_job_fail_reported(g_proc.job, Int(info, 0));
  return Napi::Boolean::New(info.Env(), v);
}

Napi::Value Abort(const Napi::CallbackInfo& info) {
  if (GetEnv(info.Env())->main && g_proc.job != nullptr) {
    std::string cause = info[1].IsString() ? info[1].As<Napi::String>().Utf8Value() : std::string("abort");
    sf_job_abort(g_proc.job, Int(info, 0), cause.c_str());
  }
  return info.Env().Undefined();
}

// aborted() -> [rank, code, cause] | null
Napi::Value Aborted(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!GetEnv(env)->main || g_proc.job == nullptr) return env.Null();
  int rank = -1, code = 0;
  char cause[512] = {0};
  if (!sf_job_aborted(g_proc.job, &rank, &code, cause, sizeof cause)) return env.Null();
  Napi::Array a = Napi::Array::New(env, 3);
  a.Set(0u, Napi::Number::New(env, rank));
  a.Set(1u, Napi::Number::New(env, code));
  a.Set(2u, Napi::String::New(env, cause));
  return a;
}

Napi::Value PeerDeath(const Napi::CallbackInfo& info) {
  if (!GetEnv(info.Env())->main || g_proc.job == nullptr) return info.Env().Null();
  char buf[256];
  if (!sf_job_peer_death(g_proc.job, Int(info, 0), buf, sizeof buf)) return info.Env().Null();
  return Napi::String::New(info.Env(), buf);
}

// health() -> null | [code, message, rank]: has the job been aborted, or has a peer died?
// For waits that the data plane does not run itself (an awaited request).
Napi::Value Health(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!GetEnv(env)->main || g_proc.job == nullptr) return env.Null();
  sf_job* job = g_proc.job;
  auto out = [&](const char* code, const std::string& msg, int rank) {
    Napi::Array a = Napi::Array::New(env, 3);
    a.Set(0u, Napi::String::New(env, code));
    a.Set(1u, Napi::String::New(env, msg));
    a.Set(2u, Napi::Number::New(env, rank));
    return a;
  };
  int rank = -1, code = 0;
  char cause[512] = {0};
  int me = sf_job_rank(job);
  if (sf_job_aborted(job, &rank, &code, cause, sizeof cause))
    return out("ERR_ABORTED", "job aborted by rank " + std::to_string(rank) + ": " + cause, rank);
  char buf[256];
  for (int r = 0; r < sf_job_size(job); r++) {
    if (r != me && sf_job_peer_death(job, r, buf, sizeof buf)) return out("ERR_PROC_FAILED", "rank " + std::to_string(r) + " " + buf, r);
  }
  return env.Null();
}

// setLabel(name): the name of the next collectives in data-plane timeout messages. Labels must
// outlive the call: every distinct label ever set is kept (a handful).
Napi::Value SetLabel(const Napi::CallbackInfo& info) {
  Env* e = GetEnv(info.Env());
  if (!info[0].IsString()) {
    e->coll_label = nullptr;
    return info.Env().Undefined();
  }
  std::string s = info[0].As<Napi::String>().Utf8Value();
  for (const std::string& l : e->labels)
    if (l == s) {
      e->coll_label = l.c_str();
      return info.Env().Undefined();
    }
  e->labels.push_back(s);
  e->coll_label = e->labels.back().c_str();
  return info.Env().Undefined();
}

Napi::Value Wtime(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), sf_now()); }

// ctlFork(fd, rank, pid, ms) / ctlExit(fd, rank, code) / ctlFail(fd, rank, code, signal, cause) /
// ctlFailOnce(fd, rank, code, signal, cause) -> bool: the launcher's control lines, written by
// the one encoder of native/control (docs/launcher-protocol.md).
Napi::Value CtlFork(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), sf_ctl_fork(Int(info, 0), Int(info, 1), Int(info, 2), info[3].As<Napi::Number>().DoubleValue()));
}
Napi::Value CtlExit(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), sf_ctl_exit(Int(info, 0), Int(info, 1), Int(info, 2)));
}
Napi::Value CtlFail(const Napi::CallbackInfo& info) {
  std::string cause = info[4].As<Napi::String>().Utf8Value();
  return Napi::Number::New(info.Env(), sf_ctl_fail(Int(info, 0), Int(info, 1), Int(info, 2), Int(info, 3), cause.c_str()));
}
Napi::Value CtlFailOnce(const Napi::CallbackInfo& info) {
  std::string cause = info[4].As<Napi::String>().Utf8Value();
  sf_job* job = GetEnv(info.Env())->main ? g_proc.job : nullptr;
  return Napi::Boolean::New(info.Env(), sf_ctl_fail_once(job, Int(info, 0), Int(info, 1), Int(info, 2), Int(info, 3), cause.c_str()) == 1);
}

// watchClones(ctlFd, ranks: Int32Array, pids: Int32Array): the origin hands its clones to the
// process module's watcher (a thread: deaths reach the data plane and the launcher at once).
Napi::Value WatchClones(const Napi::CallbackInfo& info) {
  sf_job* job = RequireJob(info.Env(), "MPI.init");
  if (job == nullptr) return info.Env().Undefined();
  if (g_proc.watch != nullptr) return ThrowMPI(info.Env(), "ERR_OTHER", "MPI.init: the clones are watched already");
  Napi::Int32Array ranks = info[1].As<Napi::Int32Array>(), pids = info[2].As<Napi::Int32Array>();
  std::vector<pid_t> p(pids.Data(), pids.Data() + pids.ElementLength());
  int rc = sf_watch_start(&g_proc.watch, job, Int(info, 0), ranks.Data(), p.data(), static_cast<int>(ranks.ElementLength()),
                          nullptr /* the launcher's line names the exit only, as for the origin */, nullptr, nullptr);
  if (rc < 0) return ThrowRc(info.Env(), rc, "MPI.init: watching the clones");
  return info.Env().Undefined();
}

// watchFinished(): this rank finalized; clones that end now are reaped at once.
Napi::Value WatchFinished(const Napi::CallbackInfo& info) {
  if (g_proc.watch != nullptr) sf_watch_finished(g_proc.watch);
  return info.Env().Undefined();
}

// reapClones(graceMs, reportDead) -> number of clones that failed: reaps every clone (killing
// what is left after graceMs; -1 waits), reporting each to the launcher. reportDead: report
// deaths not yet reported before killing (the root cause of a failing job).
Napi::Value ReapClones(const Napi::CallbackInfo& info) {
  if (g_proc.watch == nullptr) return Napi::Number::New(info.Env(), 0);
  if (info[1].ToBoolean()) sf_watch_report_dead(g_proc.watch);
  int failed = sf_watch_reap(g_proc.watch, Int(info, 0));
  return Napi::Number::New(info.Env(), failed);
}

// errorClass(code) -> "ERR_TIMEOUT": the data plane's table, for TypeScript's own checks.
Napi::Value ErrorClass(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), sf_error_class(Int(info, 0)));
}

const std::vector<Fn> kLifeFns = {
    {"setErrorFactory", SetErrorFactory}, {"create", Create}, {"setPid", SetPid}, {"attach", Attach},
    {"destroy", Destroy}, {"info", Info}, {"pid", Pid}, {"markFinished", MarkFinished},
    {"markFailReported", MarkFailReported}, {"failReported", FailReported}, {"abort", Abort},
    {"aborted", Aborted}, {"peerDeath", PeerDeath}, {"health", Health}, {"setLabel", SetLabel},
    {"wtime", Wtime}, {"ctlFork", CtlFork}, {"ctlExit", CtlExit}, {"ctlFail", CtlFail},
    {"ctlFailOnce", CtlFailOnce}, {"errorClass", ErrorClass}, {"watchClones", WatchClones},
    {"watchFinished", WatchFinished}, {"reapClones", ReapClones}, {"join", Join}, {"addLink", AddLink},
    {"local", Local},
};

// The environment goes away (its thread ends, or the process exits): only the main thread's
// environment owns the job.
void FreeEnv(napi_env, void* data, void*) {
  Env* e = static_cast<Env*>(data);
  if (e->main) DestroyJob(e);
  delete e;
}

}  // namespace

}  // namespace sf::mpi

namespace sf {

// Adds `exports.mpi`. Called from addon.cc's Init, once per environment.
Napi::Object InitMpi(Napi::Env env, Napi::Object exports) {
  using namespace sf::mpi;
  Env* e = new Env();
  e->napi = env;
  if (napi_set_instance_data(env, e, FreeEnv, nullptr) != napi_ok) {
    delete e;
    Napi::Error::New(env, "sfnative: cannot set the MPI binding's per-environment data").ThrowAsJavaScriptException();
    return exports;
  }
  Napi::Object m = Napi::Object::New(env);
  for (const std::vector<Fn>* table : {&kLifeFns, &kP2pFns, &kRequestFns, &kCollFns, &kSchedFns, &kWinFns})
    for (const Fn& f : *table) m.Set(f.name, Napi::Function::New(env, f.fn, f.name));
  m.Set("ANY_SOURCE", Napi::Number::New(env, SF_ANY_SOURCE));
  m.Set("ANY_TAG", Napi::Number::New(env, SF_ANY_TAG));
  m.Set("PROC_NULL", Napi::Number::New(env, SF_PROC_NULL));
  m.Set("TAG_MAX", Napi::Number::New(env, SF_TAG_MAX));
  m.Set("MAX_RANKS", Napi::Number::New(env, SF_MAX_RANKS));
  exports.Set("mpi", m);
  return exports;
}

}  // namespace sf
