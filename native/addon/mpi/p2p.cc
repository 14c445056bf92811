// Blocking point-to-point of the binding: one data-plane message per MPI message, its element
// type in the frame. Results go to the shared status array [source, tag, nbytes, dtype].

#include <cstdlib>
#include <cstring>

#include <v8.h>

#include "../addon.h"
#include "dtype.h"
#include "state.h"

namespace sf::mpi {

namespace {

std::string From(int src, int tag) {
  return (src == SF_ANY_SOURCE ? std::string("any rank") : "rank " + std::to_string(src)) + " tag " +
         (tag == SF_ANY_TAG ? std::string("any") : std::to_string(tag));
}

// send(buf, dtype, dst, ctx, tag, sync): the caller's memory goes straight into the link
// (blocking: it cannot change meanwhile).
Napi::Value Send(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  sf_job* job = RequireJob(env, "send");
  if (job == nullptr) return env.Undefined();
  sf_job_set_label(job, nullptr);
  uint8_t* p;
  size_t len;
  if (!Bytes(info, 0, &p, &len)) return env.Undefined();
  int dtype = Int(info, 1), dst = Int(info, 2), tag = Int(info, 4), sync = Int(info, 5);
  if (dst == SF_PROC_NULL) return env.Undefined();
  sf_req* q;
  int rc = sf_isend_typed(job, p, len, static_cast<uint32_t>(dtype), dst, U32(info, 3), tag, sync, &q);
  if (rc >= 0) {
    rc = sf_wait(job, q, nullptr);
    sf_req_free(job, q);  // detached if the wait failed: it completes or dies with the job
  }
  if (rc < 0) return ThrowRc(env, rc, "send of " + Elems(len, dtype) + " to rank " + std::to_string(dst) + " tag " + std::to_string(tag));
  return env.Undefined();
}

// Waits for a receive and fills the status array (a refused message is not an exception here:
// the status says so, for the TypeScript layer to word in the communicator's ranks); throws
// for every other failure.
bool FinishRecv(Napi::Env env, Env* e, sf_job* job, sf_req* q, int expect, int src, int tag, const char* what) {
  sf_status st;
  int rc = sf_wait(job, q, &st);
  if (rc < 0 && rc != SF_ETRUNCATE && rc != SF_ETYPE) {
    ThrowRc(env, rc, std::string(what) + " from " + From(src, tag));
    return false;
  }
  SetRecvStatus(e, st, expect);
  return true;
}

// recv(buf, dtype, src, ctx, tag): into the caller's typed array, of that element type only.
Napi::Value Recv(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Env* e = GetEnv(env);
  sf_job* job = RequireJob(env, "recv");
  if (job == nullptr) return env.Undefined();
  sf_job_set_label(job, nullptr);
  uint8_t* p;
  size_t len;
  if (!Bytes(info, 0, &p, &len)) return env.Undefined();
  static uint8_t empty;
  int expect = Int(info, 1), src = Int(info, 2), tag = Int(info, 4);
  sf_req* q;
  int rc = sf_irecv_typed(job, p ? p : &empty, len, expect, src, U32(info, 3), tag, &q);
  if (rc < 0) return ThrowRc(env, rc, "recv from " + From(src, tag));
  FinishRecv(env, e, job, q, expect, src, tag, "recv");
  sf_req_free(job, q);
  return env.Undefined();
}

// recvObject(src, ctx, tag) -> Buffer | null (PROC_NULL): a message of any type and size; the
// status's dtype tells an object message from a typed-array one.
Napi::Value RecvObject(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Env* e = GetEnv(env);
  sf_job* job = RequireJob(env, "recv");
  if (job == nullptr) return env.Undefined();
  sf_job_set_label(job, nullptr);
  int src = Int(info, 0), tag = Int(info, 2);
  sf_req* q;
  int rc = sf_irecv_alloc(job, src, U32(info, 1), tag, &q);
  if (rc < 0) return ThrowRc(env, rc, "recv from " + From(src, tag));
  Napi::Value out = env.Undefined();
  if (FinishRecv(env, e, job, q, SF_ANY_DTYPE, src, tag, "recv")) {
    out = TakeReceived(env, q, true);
  }
  sf_req_free(job, q);
  return out;
}

// sendrecvObject(bytes, dtype, dst, sendtag, src, recvtag, ctx) -> Buffer | null: sends and
// receives a message of any size at once (deadlock-free exchange), in one call.
Napi::Value SendrecvObject(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Env* e = GetEnv(env);
  sf_job* job = RequireJob(env, "sendrecv");
  if (job == nullptr) return env.Undefined();
  sf_job_set_label(job, nullptr);
  uint8_t* p;
  size_t len;
  if (!Bytes(info, 0, &p, &len)) return env.Undefined();
  int dtype = Int(info, 1), dst = Int(info, 2), stag = Int(info, 3), src = Int(info, 4), rtag = Int(info, 5);
  uint32_t ctx = U32(info, 6);
  sf_req *rq, *sq = nullptr;
  int rc = sf_irecv_alloc(job, src, ctx, rtag, &rq);
  if (rc < 0) return ThrowRc(env, rc, "sendrecv: receive from " + From(src, rtag));
  if (dst != SF_PROC_NULL) rc = sf_isend_typed(job, p, len, static_cast<uint32_t>(dtype), dst, ctx, stag, 0, &sq);
  if (rc < 0) {
    sf_req_free(job, rq);
    return ThrowRc(env, rc, "sendrecv: send to rank " + std::to_string(dst) + " tag " + std::to_string(stag));
  }
  Napi::Value out = env.Undefined();
  if (FinishRecv(env, e, job, rq, SF_ANY_DTYPE, src, rtag, "sendrecv")) {
    out = TakeReceived(env, rq, true);
  }
  sf_req_free(job, rq);
  if (sq != nullptr) {
    if (!env.IsExceptionPending()) {
      rc = sf_wait(job, sq, nullptr);
      if (rc < 0) ThrowRc(env, rc, "sendrecv: send to rank " + std::to_string(dst) + " tag " + std::to_string(stag));
    }
    sf_req_free(job, sq);
  }
  return env.IsExceptionPending() ? env.Undefined() : out;
}

// iprobe(src, ctx, tag) -> bool; probe(src, ctx, tag). Status in the status array: the
// message's source, tag, full size and element type, without receiving it.
Napi::Value ProbeImpl(const Napi::CallbackInfo& info, bool blocking) {
  Napi::Env env = info.Env();
  Env* e = GetEnv(env);
  sf_job* job = RequireJob(env, "probe");
  if (job == nullptr) return env.Undefined();
  sf_job_set_label(job, nullptr);
  int src = Int(info, 0), tag = Int(info, 2);
  sf_status st;
  int rc = blocking ? sf_probe(job, src, U32(info, 1), tag, &st) : sf_iprobe(job, src, U32(info, 1), tag, &st);
  if (rc < 0) return ThrowRc(env, rc, std::string(blocking ? "probe" : "iprobe") + " from " + From(src, tag));
  if (!blocking && rc == 0) return Napi::Boolean::New(env, false);
  if (st.source == SF_PROC_NULL)
    SetStatus(e, SF_PROC_NULL, SF_ANY_TAG, 0, 0);
  else
    SetStatus(e, st.source, st.tag, st.size, static_cast<int>(st.dtype));
  return Napi::Boolean::New(env, true);
}
Napi::Value Iprobe(const Napi::CallbackInfo& info) { return ProbeImpl(info, false); }
Napi::Value Probe(const Napi::CallbackInfo& info) { return ProbeImpl(info, true); }

}  // namespace

// Received bytes as a Buffer: small ones copied into V8's heap (cheaper than an external
// buffer's finalizer), large ones handed over without a copy and freed by V8.
Napi::Value WrapReceived(Napi::Env env, uint8_t* data, size_t n) {
  if (data == nullptr) return Napi::Buffer<uint8_t>::New(env, 0);
  if (n <= 4096) {
    Napi::Buffer<uint8_t> b = Napi::Buffer<uint8_t>::Copy(env, data, n);
    free(data);
    return b;
  }
  return Napi::Buffer<uint8_t>::New(env, data, n, [](Napi::Env, uint8_t* p) { free(p); });
}

namespace {
void FreeBacking(void* data, size_t, void*) { free(data); }
}  // namespace

// A typed message becomes a typed array over an ArrayBuffer that takes the data plane's buffer
// over: no copy and no zero-filled allocation. At 1 KiB that costs the same as a fresh ArrayBuffer
// and one copy (measured: the ArrayBuffer itself, about 0.5 us, is the floor); large messages save
// the copy. Built with V8's own API because N-API's external ArrayBuffer adds a finalizer callback
// per buffer that costs three times as much (measured for 1 KiB: 1.6-2.0 us against 0.5-0.9 us).
// V8 calls the deleter when it frees the backing store, possibly on a GC thread (free() is
// thread-safe).
Napi::Value TakeReceived(Napi::Env env, sf_req* q, bool blocking) {
  const sf_status* st = sf_req_status(q);
  if (st->source == SF_PROC_NULL) return env.Null();
  size_t n = 0;
  uint8_t* data = static_cast<uint8_t*>(sf_req_take_buffer(q, &n));
  int t = static_cast<int>(st->dtype);
  if (t == kObjectType) return blocking ? WrapBlocking(env, data, n) : WrapReceived(env, data, n);
  if (t >= kTypeCount || n % kTypes[t].size != 0) {
    free(data);
    return ThrowMPI(env, "ERR_TYPE", "received " + std::to_string(n) + " bytes from rank " + std::to_string(st->source) + " tag " +
                                         std::to_string(st->tag) + " with datatype id " + std::to_string(t) +
                                         (t >= kTypeCount ? ": no such datatype" : ": not a whole number of " + std::string(kTypes[t].name) + " elements"));
  }
  if (data == nullptr) data = static_cast<uint8_t*>(malloc(1));  // taken already (a second completion)
  if (data == nullptr) return ThrowMPI(env, "ERR_NO_MEM", "out of memory receiving a message");
  // napi_value is a v8::Local<v8::Value> in Node (v8impl::JsValueFromV8LocalValue).
  v8::Local<v8::Value> ab = v8::ArrayBuffer::New(v8::Isolate::GetCurrent(), v8::ArrayBuffer::NewBackingStore(data, n, FreeBacking, nullptr));
  static_assert(sizeof(napi_value) == sizeof(ab), "napi_value is a v8::Local");
  napi_value abv, out;
  memcpy(&abv, &ab, sizeof abv);
  napi_status s = napi_create_typedarray(env, kTypes[t].napi, n / kTypes[t].size, abv, 0, &out);
  if (s != napi_ok) return ThrowMPI(env, "ERR_INTERN", "napi_create_typedarray failed for a received " + std::string(kTypes[t].name) + " message");
  return Napi::Value(env, out);
}

Napi::Value WrapBlocking(Napi::Env env, uint8_t* data, size_t n) {
  Env* e = GetEnv(env);
  if (data != nullptr && e->staging_data != nullptr && n <= e->staging_len) {
    memcpy(e->staging_data, data, n);
    free(data);
    return Napi::Number::New(env, static_cast<double>(n));
  }
  return WrapReceived(env, data, n);
}

// setStaging(buffer): where small received messages of blocking calls go (see WrapBlocking).
Napi::Value SetStaging(const Napi::CallbackInfo& info) {
  Env* e = GetEnv(info.Env());
  if (!info[0].IsBuffer()) return ThrowType(info.Env(), "setStaging(buffer): buffer must be a Buffer");
  Napi::Buffer<uint8_t> b = info[0].As<Napi::Buffer<uint8_t>>();
  e->staging = Napi::Persistent(info[0]);
  e->staging_data = b.Data();
  e->staging_len = b.Length();
  return info.Env().Undefined();
}

const std::vector<Fn> kP2pFns = {
    {"send", Send}, {"recv", Recv}, {"recvObject", RecvObject}, {"iprobe", Iprobe}, {"probe", Probe},
    {"sendrecvObject", SendrecvObject}, {"setStaging", SetStaging},
};

}  // namespace sf::mpi
