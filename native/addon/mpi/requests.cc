// Non-blocking operations of the binding, by id. A request is one data-plane request: a receive
// posted here is matched by the data plane during any progress, including the progress made
// while this rank blocks in an unrelated call (a collective, another wait), so MPI's progress
// rule holds without help from this layer.
//
// Awaited requests: `await request` asks awaitRequest(id); while any request is awaited, the
// rank's wake-up fd (sf_job_wakeup_fd) is watched by the event loop and armed, so a peer's frame
// wakes the loop at once; before the loop blocks (uv_prepare) and when the fd is readable, the
// data plane makes progress and every awaited request that completed is settled by calling
// onSettled(id) (given to setErrorFactory).

#include <cstdlib>

#include "../addon.h"
#include "dtype.h"
#include "state.h"

namespace sf::mpi {

namespace {

Request* FindReq(Napi::Env env, Env* e, const Napi::Value& v) {
  uint32_t id = v.As<Napi::Number>().Uint32Value();
  auto it = e->reqs.find(id);
  if (it == e->reqs.end()) {
    ThrowMPI(env, "ERR_REQUEST", "request " + std::to_string(id) + " is not active (freed, or completed and freed)");
    return nullptr;
  }
  return &it->second;
}

// Drops requests JavaScript let go of once the data plane is done with them.
void Collect(Env* e) {
  for (auto it = e->reqs.begin(); it != e->reqs.end();) {
    Request& r = it->second;
    if (r.freed && (r.req == nullptr || sf_req_done(r.req))) {
      if (r.req) sf_req_free(g_proc.job, r.req);
      it = e->reqs.erase(it);
    } else {
      ++it;
    }
  }
}

uint32_t AddReq(Env* e, Request&& r) {
  uint32_t id = e->next_req++;
  if (e->next_req == 0) e->next_req = 1;
  e->reqs.emplace(id, std::move(r));
  return id;
}

// isend(buf, dtype, dst, ctx, tag, sync) -> id. The buffer is kept alive until completion.
Napi::Value Isend(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Env* e = GetEnv(env);
  sf_job* job = RequireJob(env, "isend");
  if (job == nullptr) return env.Undefined();
  sf_job_set_label(job, nullptr);
  Collect(e);
  uint8_t* p;
  size_t len;
  if (!Bytes(info, 0, &p, &len)) return env.Undefined();
  int dtype = Int(info, 1), dst = Int(info, 2), tag = Int(info, 4), sync = Int(info, 5);
  Request r;
  r.kind = Request::kSend;
  r.src = dst;
  r.tag = tag;
  int rc = sf_isend_typed(job, p, len, static_cast<uint32_t>(dtype), dst, U32(info, 3), tag, sync, &r.req);
  if (rc < 0) return ThrowRc(env, rc, "isend of " + Elems(len, dtype) + " to rank " + std::to_string(dst) + " tag " + std::to_string(tag));
  if (!sf_req_done(r.req)) r.keep = Napi::Persistent(info[0]);
  return Napi::Number::New(env, AddReq(e, std::move(r)));
}

// irecv(buf | null, dtype (-1: object, any type and size), src, ctx, tag) -> id
Napi::Value Irecv(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Env* e = GetEnv(env);
  sf_job* job = RequireJob(env, "irecv");
  if (job == nullptr) return env.Undefined();
  sf_job_set_label(job, nullptr);
  Collect(e);
  Request r;
  uint8_t* p;
  if (!Bytes(info, 0, &p, &r.cap)) return env.Undefined();
  r.expect = Int(info, 1);
  r.src = Int(info, 2);
  r.tag = Int(info, 4);
  uint32_t ctx = U32(info, 3);
  int rc;
  if (info[0].IsNull() || info[0].IsUndefined()) {
    r.kind = Request::kRecvObject;
    r.expect = SF_ANY_DTYPE;
    rc = sf_irecv_alloc(job, r.src, ctx, r.tag, &r.req);
  } else {
    static uint8_t empty;
    r.kind = Request::kRecv;
    rc = sf_irecv_typed(job, p ? p : &empty, r.cap, r.expect, r.src, ctx, r.tag, &r.req);
    r.keep = Napi::Persistent(info[0]);
  }
  if (rc < 0) return ThrowRc(env, rc, "irecv tag " + std::to_string(r.tag));
  return Napi::Number::New(env, AddReq(e, std::move(r)));
}

// After completion: status array (a refused message shows there), the object's bytes, or the
// error thrown. False on error.
bool Complete(Napi::Env env, Env* e, Request* r, int rc, const sf_status& st) {
  const char* what = r->kind == Request::kSend ? "isend" : "irecv";
  if (rc < 0 && rc != SF_ETRUNCATE && rc != SF_ETYPE) {
    std::string peer = r->src == SF_ANY_SOURCE ? std::string("any rank") : "rank " + std::to_string(r->src);
    ThrowRc(env, rc, std::string(what) + (r->kind == Request::kSend ? " to " : " from ") + peer + " tag " +
                         (r->tag == SF_ANY_TAG ? std::string("any") : std::to_string(r->tag)));
    return false;
  }
  SetRecvStatus(e, st, r->expect);
  if (r->kind == Request::kRecvObject && r->result.IsEmpty() && st.source != SF_PROC_NULL) {
    Napi::Value v = TakeReceived(env, r->req, false);
    if (env.IsExceptionPending()) return false;
    r->result = Napi::Persistent(v);
  }
  r->keep.Reset();
  return true;
}

// test(id) -> bool (status filled when true)
Napi::Value Test(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Env* e = GetEnv(env);
  sf_job* job = RequireJob(env, "test");
  if (job == nullptr) return env.Undefined();
  sf_job_set_label(job, nullptr);
  Request* r = FindReq(env, e, info[0]);
  if (r == nullptr) return env.Undefined();
  sf_status st;
  int rc = sf_test(job, r->req, &st);
  if (rc == 0) return Napi::Boolean::New(env, false);
  if (!Complete(env, e, r, rc, st)) return env.Undefined();
  return Napi::Boolean::New(env, true);
}

// wait(id): blocks; status filled.
Napi::Value Wait(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Env* e = GetEnv(env);
  sf_job* job = RequireJob(env, "wait");
  if (job == nullptr) return env.Undefined();
  sf_job_set_label(job, nullptr);
  Request* r = FindReq(env, e, info[0]);
  if (r == nullptr) return env.Undefined();
  sf_status st;
  int rc = sf_wait(job, r->req, &st);
  Complete(env, e, r, rc, st);
  return env.Undefined();
}

// waitAny(Uint32Array ids) -> index of a completed request (status filled), -1 for none.
Napi::Value WaitAny(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Env* e = GetEnv(env);
  sf_job* job = RequireJob(env, "waitany");
  if (job == nullptr) return env.Undefined();
  sf_job_set_label(job, nullptr);
  Napi::Uint32Array ids = info[0].As<Napi::Uint32Array>();
  size_t n = ids.ElementLength();
  std::vector<Request*> rs(n);
  std::vector<sf_req*> qs(n);
  for (size_t i = 0; i < n; i++) {
    rs[i] = FindReq(env, e, Napi::Number::New(env, ids[i]));
    if (rs[i] == nullptr) return env.Undefined();
    qs[i] = rs[i]->req;
  }
  int index = -1;
  int rc = sf_wait_any(job, qs.data(), static_cast<int>(n), &index);
  if (rc < 0) return ThrowRc(env, rc, "waitany");
  if (index < 0) return Napi::Number::New(env, -1);
  sf_status st;
  rc = sf_test(job, rs[index]->req, &st);
  if (!Complete(env, e, rs[index], rc, st)) return env.Undefined();
  return Napi::Number::New(env, index);
}

// result(id) -> the received Buffer of an object receive (after completion)
Napi::Value Result(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Env* e = GetEnv(env);
  Request* r = FindReq(env, e, info[0]);
  if (r == nullptr || r->result.IsEmpty()) return env.Undefined();
  return r->result.Value();
}

void StopWakeups(Env* e);

// free(id): a completed request goes; a pending one is detached (its buffer stays referenced
// until the data plane is done with it).
Napi::Value Free(const Napi::CallbackInfo& info) {
  Env* e = GetEnv(info.Env());
  uint32_t id = info[0].As<Napi::Number>().Uint32Value();
  auto it = e->reqs.find(id);
  if (it == e->reqs.end()) return info.Env().Undefined();
  Request& r = it->second;
  if (r.awaited) {
    r.awaited = false;
    if (--e->awaited == 0) StopWakeups(e);
  }
  if (g_proc.job != nullptr && r.req != nullptr && !sf_req_done(r.req)) {
    r.freed = true;
    return info.Env().Undefined();
  }
  if (g_proc.job != nullptr && r.req != nullptr) sf_req_free(g_proc.job, r.req);
  e->reqs.erase(it);
  return info.Env().Undefined();
}

// ---- awaited requests ------------------------------------------------------------------------

// Progress, then settle every awaited request that is done (calls onSettled(id) for each).
void Settle(Env* e) {
  if (g_proc.job == nullptr || e->awaited == 0) return;
  Napi::Env env(e->napi);
  Napi::HandleScope scope(env);
  sf_job_wakeup_drain(g_proc.job);
  sf_progress(g_proc.job);  // a failure shows in the request's test (or the health check)
  std::vector<uint32_t> done;
  for (auto& kv : e->reqs)
    if (kv.second.awaited && (kv.second.req == nullptr || sf_req_done(kv.second.req))) done.push_back(kv.first);
  for (uint32_t id : done) {
    auto it = e->reqs.find(id);
    if (it == e->reqs.end() || !it->second.awaited) continue;
    it->second.awaited = false;
    if (--e->awaited == 0) StopWakeups(e);
    if (!e->on_settled.IsEmpty()) {
      // MakeCallback: the promise reactions (microtasks) run when it returns.
      e->on_settled.MakeCallback(env.Global(), {Napi::Number::New(env, id)});
      if (env.IsExceptionPending()) {
        Napi::Error err = env.GetAndClearPendingException();
        napi_fatal_exception(env, err.Value());
      }
    }
  }
}

void OnWakeReadable(uv_poll_t* h, int, int) { Settle(static_cast<Env*>(h->data)); }
void OnPrepare(uv_prepare_t* h) { Settle(static_cast<Env*>(h->data)); }

void StartWakeups(Napi::Env env, Env* e) {
  uv_loop_t* loop = nullptr;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok || loop == nullptr) return;
  int fd = sf_job_wakeup_fd(g_proc.job);
  if (fd >= 0 && e->wake_poll == nullptr) {
    e->wake_poll = new uv_poll_t;
    if (uv_poll_init(loop, e->wake_poll, fd) == 0) {
      e->wake_poll->data = e;
      uv_poll_start(e->wake_poll, UV_READABLE, OnWakeReadable);
    } else {
      delete e->wake_poll;
      e->wake_poll = nullptr;
    }
  }
  if (e->prepare == nullptr) {
    e->prepare = new uv_prepare_t;
    uv_prepare_init(loop, e->prepare);
    e->prepare->data = e;
    uv_prepare_start(e->prepare, OnPrepare);
    uv_unref(reinterpret_cast<uv_handle_t*>(e->prepare));  // the poll keeps the loop alive
  }
  sf_job_arm_wakeup(g_proc.job, 1);
}

void StopWakeups(Env* e) {
  if (g_proc.job != nullptr) sf_job_arm_wakeup(g_proc.job, 0);
  if (e->wake_poll != nullptr) {
    uv_poll_stop(e->wake_poll);
    uv_close(reinterpret_cast<uv_handle_t*>(e->wake_poll), [](uv_handle_t* h) { delete reinterpret_cast<uv_poll_t*>(h); });
    e->wake_poll = nullptr;
  }
  if (e->prepare != nullptr) {
    uv_prepare_stop(e->prepare);
    uv_close(reinterpret_cast<uv_handle_t*>(e->prepare), [](uv_handle_t* h) { delete reinterpret_cast<uv_prepare_t*>(h); });
    e->prepare = nullptr;
  }
}

// awaitRequest(id): settle this request from the event loop (onSettled(id)) once it completes.
Napi::Value AwaitRequest(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Env* e = GetEnv(env);
  if (RequireJob(env, "await") == nullptr) return env.Undefined();
  Request* r = FindReq(env, e, info[0]);
  if (r == nullptr || r->awaited) return env.Undefined();
  r->awaited = true;
  if (e->awaited++ == 0) StartWakeups(env, e);
  return env.Undefined();
}

}  // namespace

void DropRequests(Env* e) {
  StopWakeups(e);
  e->awaited = 0;
  for (auto& kv : e->reqs)
    if (kv.second.req && g_proc.job) sf_req_free(g_proc.job, kv.second.req);
  e->reqs.clear();
}

const std::vector<Fn> kRequestFns = {
    {"isend", Isend}, {"irecv", Irecv}, {"test", Test}, {"wait", Wait}, {"waitAny", WaitAny},
    {"result", Result}, {"free", Free}, {"awaitRequest", AwaitRequest},
};

}  // namespace sf::mpi
