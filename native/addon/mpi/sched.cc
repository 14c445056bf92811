// Schedules: the engine of the non-blocking and neighbourhood collectives of mpi-compat/ts
// (coll-nb.ts builds them; its header comment has the algorithms, the tags and the doorbell).
//
// A schedule is a list of rounds; a round is local steps (copy, combine), run when the round
// starts, then messages (sends and receives) posted when it starts; the next round starts once
// every message of the current one completed. The progress hook (progress.cc) advances every
// schedule in progress. Once done, a schedule sends its doorbell: a 4-byte message (int32 0, or
// 1 for a failure, whose message schedError gives) to this rank, which completes the receive
// the caller's Request stands for.
//
// The schedule keeps the caller's arrays referenced until it is done: a Request dropped
// unwaited cannot leave a schedule writing into freed memory. A user op (a JavaScript combine)
// runs from the hook, always on the JavaScript thread inside a call into the binding or the
// event loop's wake-up; its exception fails the collective, never the call it happened in.
#include <cstring>
#include <list>
#include <memory>
#include <unordered_map>

#include "../addon.h"
#include "dtype.h"
#include "progress.h"

namespace sf::mpi {

namespace {

enum Kind { kRound = 0, kSend = 1, kRecv = 2, kCopy = 3, kCombine = 4 };

struct Step {
  int kind;
  int peer, part;
  int a;
  size_t aoff;
  int b;
  size_t boff;
  size_t len;
  sf_req* req = nullptr;
};

struct Sched {
  uint32_t ctx = 0;
  int tag = 0;
  uint32_t door_ctx = 0;
  int door_tag = 0;
  std::string label;
  std::vector<Step> steps;
  std::vector<size_t> ends;  // round k is steps [ends[k-1], ends[k])
  int cur = -1;
  bool done = false;
  std::string err_code, err_msg;
  // A user op that threw: the schedule runs on (the other members wait for this rank's part),
  // and this rank's request fails with it.
  std::string op_code, op_msg;
  std::vector<uint8_t*> bufs;
  std::vector<size_t> buf_len;
  std::vector<Napi::Reference<Napi::Value>> keep;
  std::vector<std::unique_ptr<uint8_t[]>> temps;
  std::vector<size_t> temp_len;
  // combine
  bool js = false;
  sf_builtin_arg builtin{};
  Napi::FunctionReference fn;
  int dtype = 0;
  napi_env env = nullptr;
  // doorbell
  int32_t door_word = 0;
  sf_req* door_req = nullptr;
};

std::list<std::unique_ptr<Sched>> g_scheds;
// Failures of finished schedules, by doorbell tag, until schedError takes them.
std::unordered_map<int, std::pair<std::string, std::string>> g_errors;

uint8_t* Ptr(Sched* s, int id, size_t off) {
  if (id >= 0) return s->bufs[static_cast<size_t>(id)] + off;
  return s->temps[static_cast<size_t>(-1 - id)].get() + off;
}

size_t RoundFirst(const Sched* s, int k) { return k == 0 ? 0 : s->ends[static_cast<size_t>(k - 1)]; }

void Fail(Sched* s, const char* code, const std::string& msg) {
  if (s->err_code.empty()) {
    s->err_code = code;
    s->err_msg = msg;
  }
  if (s->cur >= 0 && s->cur < static_cast<int>(s->ends.size()))
    for (size_t i = RoundFirst(s, s->cur); i < s->ends[static_cast<size_t>(s->cur)]; i++)
      if (s->steps[i].req) {
        sf_req_free(g_proc.job, s->steps[i].req);  // withdrawn, or detached and left to finish
        s->steps[i].req = nullptr;
      }
  s->done = true;
}

Napi::Value View(Napi::Env env, int dtype, void* p, size_t nbytes, Napi::ArrayBuffer* ab) {
  *ab = Napi::ArrayBuffer::New(env, p, nbytes);
  if (dtype <= 0 || dtype >= kTypeCount) dtype = 2;
  napi_value out;
  if (napi_create_typedarray(env, kTypes[dtype].napi, nbytes / kTypes[dtype].size, *ab, 0, &out) != napi_ok) return env.Undefined();
  return Napi::Value(env, out);
}

// A combine step: inout = in op inout. False when the step failed (the schedule is failed); a
// JavaScript op that throws does not stop the schedule (see op_code).
bool Combine(Sched* s, const void* in, void* inout, size_t len) {
  if (!s->js) {
    int rc = sf_builtin_combine(in, inout, len, &s->builtin);
    if (rc < 0) {
      Fail(s, sf_error_class(rc), std::string("combining: ") + sf_last_error());
      return false;
    }
    return true;
  }
  Napi::Env env(s->env);
  Napi::HandleScope scope(env);
  Napi::ArrayBuffer ain, aio;
  Napi::Value vin = View(env, s->dtype, const_cast<void*>(in), len, &ain);
  Napi::Value vio = View(env, s->dtype, inout, len, &aio);
  s->fn.Call({vin, vio});
  // The views point into the schedule's memory: detach them so that nothing keeps them.
  napi_detach_arraybuffer(env, ain);
  napi_detach_arraybuffer(env, aio);
  if (env.IsExceptionPending()) {
    Napi::Error err = env.GetAndClearPendingException();
    if (s->op_code.empty()) {
      Napi::Value code = err.Value().IsObject() ? err.Value().As<Napi::Object>().Get("code") : env.Undefined();
      s->op_code = code.IsString() && code.As<Napi::String>().Utf8Value().rfind("ERR_", 0) == 0 ? code.As<Napi::String>().Utf8Value() : "ERR_OP";
      s->op_msg = "the op threw on this rank: " + err.Message();
    }
  }
  return true;
}

bool StartRound(Sched* s) {
  size_t first = RoundFirst(s, s->cur), end = s->ends[static_cast<size_t>(s->cur)];
  for (size_t i = first; i < end; i++) {
    Step& o = s->steps[i];
    if (o.kind == kCopy) memmove(Ptr(s, o.b, o.boff), Ptr(s, o.a, o.aoff), o.len);
    else if (o.kind == kCombine && !Combine(s, Ptr(s, o.a, o.aoff), Ptr(s, o.b, o.boff), o.len)) return false;
  }
  for (size_t i = first; i < end; i++) {
    Step& o = s->steps[i];
    int rc = 0;
    if (o.kind == kSend)
      rc = sf_isend(g_proc.job, Ptr(s, o.a, o.aoff), o.len, o.peer, s->ctx, s->tag | o.part, 0, &o.req);
    else if (o.kind == kRecv)
      rc = sf_irecv(g_proc.job, Ptr(s, o.a, o.aoff), o.len, o.peer, s->ctx, s->tag | o.part, &o.req);
    if (rc < 0) {
      Fail(s, sf_error_class(rc), std::string(o.kind == kSend ? "sending to rank " : "receiving from rank ") + std::to_string(o.peer) + ": " + sf_last_error());
      return false;
    }
  }
  return true;
}

// 1 when every message of the current round completed (and was released), 0 if not.
bool RoundDone(Sched* s) {
  size_t first = RoundFirst(s, s->cur), end = s->ends[static_cast<size_t>(s->cur)];
  for (size_t i = first; i < end; i++)
    if (s->steps[i].req && !sf_req_done(s->steps[i].req)) return false;
  for (size_t i = first; i < end; i++) {
    Step& o = s->steps[i];
    if (o.req == nullptr) continue;
    sf_status st;
    int rc = sf_test(g_proc.job, o.req, &st);
    if (rc < 0 && s->err_code.empty()) {
      // Complete but failed: a truncation (a member passed a larger buffer or count).
      s->err_code = "ERR_TRUNCATE";
      s->err_msg = "world rank " + std::to_string(o.peer) + " sent " + std::to_string(st.size) + " bytes where this rank's arguments hold " +
                   std::to_string(o.len) + " (every member must pass matching counts)";
    }
    sf_req_free(g_proc.job, o.req);
    o.req = nullptr;
  }
  return true;
}

void Advance(Sched* s) {
  while (!s->done) {
    if (s->cur >= 0 && s->cur < static_cast<int>(s->ends.size())) {
      if (!RoundDone(s)) return;
      if (!s->err_code.empty()) {
        Fail(s, s->err_code.c_str(), s->err_msg);
        return;
      }
    }
    if (++s->cur >= static_cast<int>(s->ends.size())) {
      s->done = true;
      return;
    }
    if (!StartRound(s)) return;
  }
}

// Done: record the failure and ring the doorbell. True when it rang.
bool Ring(Sched* s) {
  if (s->door_req != nullptr) return false;
  if (s->err_code.empty() && !s->op_code.empty()) {
    s->err_code = s->op_code;
    s->err_msg = s->op_msg;
  }
  s->door_word = s->err_code.empty() ? 0 : 1;
  if (s->door_word) g_errors[s->door_tag] = {s->err_code, s->err_msg};
  int rc = sf_isend_typed(g_proc.job, &s->door_word, sizeof s->door_word, 6 /* int32 */, sf_job_rank(g_proc.job), s->door_ctx,
                          s->door_tag, 0, &s->door_req);
  if (rc < 0) {
    // Cannot happen for an eager message to this rank's own loopback ring short of memory;
    // the waiter then times out naming this collective.
    s->door_req = nullptr;
    return false;
  }
  s->keep.clear();
  s->fn.Reset();
  return true;
}

std::string What(const Sched* s) {
  int k = s->cur, n = static_cast<int>(s->ends.size());
  std::string w = "round " + std::to_string(k + 1) + " of " + std::to_string(n);
  if (k < 0 || k >= n) return w;
  std::string from, to;
  for (size_t i = RoundFirst(s, k); i < s->ends[static_cast<size_t>(k)]; i++) {
    const Step& o = s->steps[i];
    if (o.req == nullptr || sf_req_done(o.req)) continue;
    std::string& list = o.kind == kRecv ? from : to;
    list += (list.empty() ? "" : ", ") + std::to_string(o.peer);
  }
  if (!from.empty()) w += ": a message from world rank " + from;
  else if (!to.empty()) w += ": world rank " + to + " to take a message";
  return w;
}

Sched* Find(int door_tag) {
  for (auto& s : g_scheds)
    if (s->door_tag == door_tag && s->door_req == nullptr) return s.get();
  return nullptr;
}

// schedStart(ctx, tag, doorCtx, doorTag, bufs[], temps: Float64Array, ops: Float64Array,
//            combine: number | fn, dtype, label)
Napi::Value SchedStart(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Env* e = GetEnv(env);
  sf_job* job = RequireJob(env, "schedule");
  if (job == nullptr) return env.Undefined();
  auto s = std::make_unique<Sched>();
  s->ctx = U32(info, 0);
  s->tag = Int(info, 1);
  s->door_ctx = U32(info, 2);
  s->door_tag = Int(info, 3);
  s->label = info[9].IsString() ? info[9].As<Napi::String>().Utf8Value() : std::string("collective");
  s->env = env;
  Napi::Array bufs = info[4].As<Napi::Array>();
  for (uint32_t i = 0; i < bufs.Length(); i++) {
    uint8_t* p;
    size_t len;
    Napi::Value v = bufs.Get(i);
    napi_typedarray_type t;
    size_t n;
    void* data;
    if (napi_get_typedarray_info(env, v, &t, &n, &data, nullptr, nullptr) != napi_ok) return ThrowType(env, s->label + ": a buffer is not a typed array");
    p = static_cast<uint8_t*>(data);
    len = n * NapiElementSize(t);
    s->bufs.push_back(p);
    s->buf_len.push_back(len);
    s->keep.push_back(Napi::Persistent(v));
  }
  Napi::Float64Array temps = info[5].As<Napi::Float64Array>();
  for (size_t i = 0; i < temps.ElementLength(); i++) {
    size_t n = static_cast<size_t>(temps[i]);
    s->temps.emplace_back(new (std::nothrow) uint8_t[n ? n : 1]);
    if (!s->temps.back()) return ThrowMPI(env, "ERR_NO_MEM", s->label + ": out of memory for a " + std::to_string(n) + "-byte temporary");
    s->temp_len.push_back(n);
  }
  // Every step is checked against its buffers here, once: the engine then trusts them.
  auto in_range = [&](int id, size_t off, size_t len) {
    if (id >= 0) return static_cast<size_t>(id) < s->bufs.size() && off <= s->buf_len[static_cast<size_t>(id)] && len <= s->buf_len[static_cast<size_t>(id)] - off;
    size_t t = static_cast<size_t>(-1 - id);
    return t < s->temps.size() && off <= s->temp_len[t] && len <= s->temp_len[t] - off;
  };
  Napi::Float64Array ops = info[6].As<Napi::Float64Array>();
  for (size_t i = 0; i + 8 <= ops.ElementLength(); i += 8) {
    Step o;
    o.kind = static_cast<int>(ops[i]);
    o.peer = static_cast<int>(ops[i + 1]);
    o.part = static_cast<int>(ops[i + 2]);
    o.a = static_cast<int>(ops[i + 3]);
    o.aoff = static_cast<size_t>(ops[i + 4]);
    o.b = static_cast<int>(ops[i + 5]);
    o.boff = static_cast<size_t>(ops[i + 6]);
    o.len = static_cast<size_t>(ops[i + 7]);
    if (o.kind == kRound) {
      s->ends.push_back(s->steps.size());
      continue;
    }
    bool ok = o.kind >= kSend && o.kind <= kCombine && in_range(o.a, o.aoff, o.len) && o.part >= 0 && o.part < 64 &&
              (o.kind <= kRecv ? o.peer >= 0 && o.peer < sf_job_size(job) : in_range(o.b, o.boff, o.len));
    if (!ok) return ThrowMPI(env, "ERR_INTERN", s->label + ": schedule step " + std::to_string(i / 8) + " is out of its buffers");
    s->steps.push_back(o);
  }
  if (s->ends.empty() || s->ends.back() != s->steps.size()) s->ends.push_back(s->steps.size());
  if (info[7].IsFunction()) {
    s->js = true;
    s->fn = Napi::Persistent(info[7].As<Napi::Function>());
  } else {
    s->builtin.op = static_cast<sf_op>(info[7].As<Napi::Number>().Int32Value());
  }
  s->dtype = Int(info, 8);
  if (s->dtype > 0 && s->dtype < kTypeCount) s->builtin.type = kTypes[s->dtype].sf;
  EnsureProgressHook(e);
  Sched* raw = s.get();
  g_scheds.push_back(std::move(s));
  Advance(raw);
  if (raw->done) Ring(raw);
  return env.Undefined();
}

// schedError(doorTag) -> [code, message] | null (taken once)
Napi::Value SchedError(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto it = g_errors.find(Int(info, 0));
  if (it == g_errors.end()) return env.Null();
  Napi::Array a = Napi::Array::New(env, 2);
  a.Set(0u, Napi::String::New(env, it->second.first));
  a.Set(1u, Napi::String::New(env, it->second.second));
  g_errors.erase(it);
  return a;
}

// schedWhat(doorTag) -> what a pending schedule waits for, or null
Napi::Value SchedWhat(const Napi::CallbackInfo& info) {
  Sched* s = Find(Int(info, 0));
  if (s == nullptr) return info.Env().Null();
  return Napi::String::New(info.Env(), What(s));
}

}  // namespace

bool ProgressSchedules(Env*) {
  bool rang = false;
  for (auto it = g_scheds.begin(); it != g_scheds.end();) {
    Sched* s = it->get();
    if (!s->done) Advance(s);
    if (s->done && s->door_req == nullptr) rang |= Ring(s);
    if (s->door_req != nullptr && sf_req_done(s->door_req)) {
      sf_req_free(g_proc.job, s->door_req);
      it = g_scheds.erase(it);
    } else {
      ++it;
    }
  }
  return rang;
}

void DropSchedules() {
  // The job is gone or going: its requests went with it.
  for (auto& s : g_scheds) {
    for (Step& o : s->steps) o.req = nullptr;
    s->door_req = nullptr;
  }
  g_scheds.clear();
  g_errors.clear();
}

const std::vector<Fn> kSchedFns = {
    {"schedStart", SchedStart}, {"schedError", SchedError}, {"schedWhat", SchedWhat},
};

}  // namespace sf::mpi
