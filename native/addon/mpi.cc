// The data plane (native/include/sf_dataplane.h) bound to Node for mpi-compat/ts.
//
// One job per process (the TypeScript layer creates it before the fork point and attaches after).
// Blocking calls are synchronous: the data plane spins briefly, then sleeps on its futex.
//
// Message protocol of this layer on top of the data plane. The data plane moves bytes; MPI for
// TypeScript also needs each message's element type (so that a receive into an Int32Array of a
// Float64Array message is an error, not garbage) and object messages of unknown size. So every
// message starts with a 24-byte header frame on the communicator's context:
//
//     0      4      5      6      8      12     16                  24
//     +------+------+------+------+------+------+-------------------+---------------------+
//     | magic| kind | dtype| 0    | seq  | 0    | nbytes (u64)      | payload (inline)... |
//     +------+------+------+------+------+------+-------------------+---------------------+
//
//   kind 1 (inline): the payload (nbytes <= kInlineMax) follows in the same frame; small messages
//                    cost one data-plane message and two small copies.
//   kind 2 (follow): the payload is a separate data-plane message on context kDataCtx with tag
//                    `seq` (a per-destination sequence number), sent straight from the caller's
//                    typed array and received straight into the receiver's (zero copies beyond
//                    what the data plane does: one process_vm_readv for large messages).
// The data frames live on their own context with a unique tag, so no header receive (ANY_TAG,
// ANY_SOURCE) can ever match one, and requests completed out of order still pair correctly.
//
// Errors are thrown as MPIError objects built by the factory that errors.ts hands to
// setErrorFactory(); every message names the operation, ranks, tag and sizes involved.

#include "addon.h"

extern "C" {
#include "sf_dataplane.h"
}

#include <cerrno>
#include <cstring>
#include <deque>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include <sys/mman.h>
#include <time.h>

namespace sf {
namespace {

constexpr uint32_t kMagic = 0x314d4653;  // "SFM1"
constexpr uint8_t kInline = 1;
constexpr uint8_t kFollow = 2;
constexpr size_t kHeader = 24;
constexpr size_t kInlineMax = 16384 - kHeader;
constexpr uint32_t kDataCtx = 0xfffffff0u;
constexpr int kObjectType = 0;

const char* const kTypeNames[] = {"object", "int8", "uint8", "uint8clamped", "int16", "uint16", "int32",
                                  "uint32", "float32", "float64", "bigint64", "biguint64"};
const size_t kTypeSizes[] = {1, 1, 1, 1, 2, 2, 4, 4, 4, 8, 8, 8};
constexpr int kTypeCount = 12;

struct Header {
  uint32_t magic;
  uint8_t kind;
  uint8_t dtype;
  uint16_t zero;
  uint32_t seq;
  uint32_t zero2;
  uint64_t nbytes;
};
static_assert(sizeof(Header) == kHeader, "header is 24 bytes");

// A header received by probe: consumed from the data plane and kept for the next matching
// receive (the data plane cannot peek into a message, and probe must report the payload size).
struct Peeked {
  int source;
  uint32_t ctx;
  int tag;
  std::vector<uint8_t> frame;
};

struct Request {
  enum Kind { kSend, kRecv } kind;
  int stage = 0;            // recv: 0 = waiting for the header, 1 = waiting for data, 2 = done
  sf_req* hdr = nullptr;    // header (send/recv)
  sf_req* data = nullptr;   // data frame of a follow message
  std::vector<uint8_t> frame;  // staging: the header frame (and inline payload)
  Napi::Reference<Napi::Value> keep;  // the caller's typed array, kept alive while in flight
  uint8_t* buf = nullptr;   // caller's receive buffer (null: object receive, allocated later)
  size_t cap = 0;
  int dtype = 0;            // expected type of a buffer receive; -1 = object receive (any)
  int src = 0;
  uint32_t ctx = 0;
  int tag = 0;
  // Result.
  bool done = false;
  int source = -1, rtag = -1, rtype = 0;
  size_t nbytes = 0;
  Napi::Reference<Napi::Value> result;  // object receive: the Buffer
  bool failed = false;
  std::string err_code, err_msg;
  int err_rank = -1;
};

struct State {
  sf_job* job = nullptr;
  Napi::FunctionReference error_factory;
  Napi::Reference<Napi::Float64Array> status;  // [source, tag, nbytes, dtype]
  double* status_data = nullptr;
  std::vector<uint8_t> staging;  // blocking operations' header frame
  std::vector<uint32_t> seq;     // next data tag per destination
  std::deque<Peeked> peeked;
  std::unordered_map<uint32_t, std::unique_ptr<Request>> reqs;
  uint32_t next_req = 1;
  const char* coll_label = nullptr;  // set by setLabel, applied when a collective starts
  // Which collective each rank has entered, per communicator (see Enter): shared by all ranks.
  struct CollSlot {
    uint32_t ctx;
    uint32_t pad;
    uint64_t seq;
  }* slots = nullptr;
  std::unordered_map<uint32_t, uint64_t> coll_seq;  // this rank's count per collective context
};

constexpr int kSlotBuckets = 16;
constexpr size_t kSlotsBytes = sizeof(State::CollSlot) * SF_MAX_RANKS * kSlotBuckets;

State* g = nullptr;

int ProgressWait(Napi::Env env, sf_req* target, sf_status* st);
void ProgressAll(Napi::Env env);

bool HasPendingRecv() {
  for (auto& kv : g->reqs)
    if (kv.second->kind == Request::kRecv && !kv.second->done) return true;
  return false;
}

// A blocking receive that keeps pending non-blocking receives moving (see ProgressWait).
int BlockingRecv(Napi::Env env, void* buf, size_t cap, int src, uint32_t ctx, int tag, sf_status* st) {
  if (!HasPendingRecv()) return sf_recv(g->job, buf, cap, src, ctx, tag, st);
  sf_req* q = nullptr;
  int rc = sf_irecv(g->job, buf, cap, src, ctx, tag, &q);
  if (rc < 0) return rc;
  rc = ProgressWait(env, q, st);
  sf_req_free(g->job, q);
  return rc;
}

const char* ErrCode(int rc) {
  switch (rc) {
    case SF_EINVAL: return "ERR_ARG";
    case SF_ENOMEM: return "ERR_INTERN";
    case SF_ESYS: return "ERR_OTHER";
    case SF_ETIMEDOUT: return "ERR_TIMEOUT";
    case SF_EPEERDIED: return "ERR_PROC_FAILED";
    case SF_EABORTED: return "ERR_ABORTED";
    case SF_ETRUNCATE: return "ERR_TRUNCATE";
    case SF_EPROTO: return "ERR_INTERN";
    case SF_ERANGE: return "ERR_ARG";
    case SF_ESTATE: return "ERR_OTHER";
    default: return "ERR_INTERN";
  }
}

// Throws an MPIError(code, message, rank) through the factory; returns undefined.
Napi::Value ThrowMPI(Napi::Env env, const char* code, const std::string& message, int rank = -1,
                     const std::vector<int>* ranks = nullptr) {
  if (g == nullptr || g->error_factory.IsEmpty()) return ThrowError(env, message);
  Napi::Value list = env.Undefined();
  if (ranks != nullptr) {
    Napi::Array a = Napi::Array::New(env, ranks->size());
    for (size_t i = 0; i < ranks->size(); i++) a.Set(static_cast<uint32_t>(i), Napi::Number::New(env, (*ranks)[i]));
    list = a;
  }
  Napi::Value err = g->error_factory.Call({Napi::String::New(env, code), Napi::String::New(env, message),
                                           Napi::Number::New(env, rank), list});
  if (env.IsExceptionPending()) return env.Undefined();
  Napi::Error(env, err).ThrowAsJavaScriptException();
  return env.Undefined();
}

// The world rank a failure is about: the aborting rank, or the first dead peer.
int FailedRank(int rc) {
  if (g == nullptr || g->job == nullptr) return -1;
  int rank = -1;
  if (rc == SF_EABORTED && sf_job_aborted(g->job, &rank, nullptr, nullptr, 0)) return rank;
  if (rc == SF_EPEERDIED) {
    char buf[128];
    for (int r = 0; r < sf_job_size(g->job); r++)
      if (sf_job_peer_death(g->job, r, buf, sizeof buf)) return r;
  }
  return -1;
}

Napi::Value ThrowRc(Napi::Env env, int rc, const std::string& what) {
  std::string msg = sf_last_error();
  if (msg.empty()) msg = sf_error_name(rc);
  if (!what.empty()) msg = what + ": " + msg;
  return ThrowMPI(env, ErrCode(rc), msg, FailedRank(rc));
}

bool RequireJob(Napi::Env env, const char* what) {
  if (g != nullptr && g->job != nullptr) return true;
  ThrowMPI(env, "ERR_NOT_INITIALIZED", std::string(what) + ": the data plane is not created (call MPI.init() first)");
  return false;
}

int Int(const Napi::CallbackInfo& info, size_t i) { return info[i].As<Napi::Number>().Int32Value(); }
uint32_t U32(const Napi::CallbackInfo& info, size_t i) { return info[i].As<Napi::Number>().Uint32Value(); }

// Bytes of a typed array argument (the TypeScript layer has checked the type). One
// napi_get_typedarray_info call: its data pointer already includes the view's byte offset.
bool Bytes(const Napi::CallbackInfo& info, size_t i, uint8_t** ptr, size_t* len) {
  napi_value v = info[i];
  napi_typedarray_type type;
  size_t length = 0;
  void* data = nullptr;
  if (napi_get_typedarray_info(info.Env(), v, &type, &length, &data, nullptr, nullptr) == napi_ok) {
    static const size_t kSize[] = {1, 1, 1, 2, 2, 4, 4, 4, 8, 8, 8};  // napi_typedarray_type order
    *ptr = static_cast<uint8_t*>(data);
    *len = length * (type <= napi_biguint64_array ? kSize[type] : 1);
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

const char* TypeName(int t) { return t >= 0 && t < kTypeCount ? kTypeNames[t] : "unknown"; }

std::string Elems(size_t nbytes, int t) {
  if (t <= 0 || t >= kTypeCount) return std::to_string(nbytes) + " bytes";
  return std::to_string(nbytes) + " bytes (" + std::to_string(nbytes / kTypeSizes[t]) + " " + kTypeNames[t] + ")";
}

void FillHeader(uint8_t* p, uint8_t kind, int dtype, uint32_t seq, uint64_t nbytes) {
  Header h{kMagic, kind, static_cast<uint8_t>(dtype), 0, seq, 0, nbytes};
  memcpy(p, &h, kHeader);
}

void SetStatus(int source, int tag, size_t nbytes, int dtype) {
  g->status_data[0] = source;
  g->status_data[1] = tag;
  g->status_data[2] = static_cast<double>(nbytes);
  g->status_data[3] = dtype;
}

// ---------------------------------------------------------------------------------------------
// Life cycle

Napi::Value SetErrorFactory(const Napi::CallbackInfo& info) {
  if (!info[0].IsFunction()) return ThrowType(info.Env(), "setErrorFactory(fn): fn must be a function");
  g->error_factory = Napi::Persistent(info[0].As<Napi::Function>());
  Napi::Float64Array st = Napi::Float64Array::New(info.Env(), 4);
  g->status = Napi::Persistent(st);
  g->status_data = st.Data();
  return st;
}

// create(size, ringBytes, eagerLimit, waitTimeoutMs, spinUs, cma)
Napi::Value Create(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (g->job != nullptr) return ThrowMPI(env, "ERR_OTHER", "MPI.init: the data plane exists already (init called twice?)");
  sf_job_options o;
  memset(&o, 0, sizeof o);
  o.size = Int(info, 0);
  o.ring_bytes = static_cast<size_t>(info[1].As<Napi::Number>().DoubleValue());
  o.eager_limit = static_cast<size_t>(info[2].As<Napi::Number>().DoubleValue());
  o.wait_timeout_ms = Int(info, 3);
  o.spin_us = Int(info, 4);
  o.cma = Int(info, 5);
  int rc = sf_job_create(&g->job, &o);
  if (rc < 0) {
    g->job = nullptr;
    return ThrowRc(env, rc, "MPI.init: creating the shared-memory data plane for " + std::to_string(o.size) + " ranks");
  }
  g->seq.assign(o.size, 1);
  g->staging.resize(kHeader + kInlineMax);
  // A small shared table (made before the fork, like the data plane) where each rank records
  // the collectives it enters, so a collective that times out can name who never came.
  void* slots = mmap(nullptr, kSlotsBytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  g->slots = slots == MAP_FAILED ? nullptr : static_cast<State::CollSlot*>(slots);
  g->coll_seq.clear();
  return env.Undefined();
}

Napi::Value SetPid(const Napi::CallbackInfo& info) {
  if (!RequireJob(info.Env(), "setPid")) return info.Env().Undefined();
  int rc = sf_job_set_pid(g->job, Int(info, 0), Int(info, 1));
  if (rc < 0) return ThrowRc(info.Env(), rc, "MPI.init: recording the pid of rank " + std::to_string(Int(info, 0)));
  return info.Env().Undefined();
}

Napi::Value Attach(const Napi::CallbackInfo& info) {
  if (!RequireJob(info.Env(), "attach")) return info.Env().Undefined();
  int rc = sf_job_attach(g->job, Int(info, 0));
  if (rc < 0) return ThrowRc(info.Env(), rc, "MPI.init: attaching rank " + std::to_string(Int(info, 0)));
  return info.Env().Undefined();
}

void DropRequests() {
  for (auto& kv : g->reqs) {
    Request* r = kv.second.get();
    if (r->hdr) sf_req_free(g->job, r->hdr);
    if (r->data) sf_req_free(g->job, r->data);
  }
  g->reqs.clear();
}

Napi::Value Destroy(const Napi::CallbackInfo& info) {
  if (g->job != nullptr) {
    DropRequests();
    sf_job_destroy(g->job);
    g->job = nullptr;
    g->peeked.clear();
  }
  return info.Env().Undefined();
}

Napi::Value Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (g->job == nullptr) return env.Null();
  Napi::Array a = Napi::Array::New(env, 2);
  a.Set(0u, Napi::Number::New(env, sf_job_rank(g->job)));
  a.Set(1u, Napi::Number::New(env, sf_job_size(g->job)));
  return a;
}

Napi::Value Pid(const Napi::CallbackInfo& info) {
  if (!RequireJob(info.Env(), "pid")) return info.Env().Undefined();
  return Napi::Number::New(info.Env(), sf_job_pid(g->job, Int(info, 0)));
}

Napi::Value MarkFinished(const Napi::CallbackInfo& info) {
  if (g->job == nullptr) return info.Env().Undefined();
  int rc = sf_job_mark_finished(g->job);
  if (rc < 0) return ThrowRc(info.Env(), rc, "MPI.finalize");
  return info.Env().Undefined();
}

Napi::Value MarkFailReported(const Napi::CallbackInfo& info) {
  if (g->job != nullptr) sf_job_mark_fail_reported(g->job, Int(info, 0));
  return info.Env().Undefined();
}

Napi::Value FailReported(const Napi::CallbackInfo& info) {
  bool v = g->job != nullptr && sf_job_fail_reported(g->job, Int(info, 0));
  return Napi::Boolean::New(info.Env(), v);
}

Napi::Value Abort(const Napi::CallbackInfo& info) {
  if (g->job != nullptr) {
    std::string cause = info[1].IsString() ? info[1].As<Napi::String>().Utf8Value() : std::string("abort");
    sf_job_abort(g->job, Int(info, 0), cause.c_str());
  }
  return info.Env().Undefined();
}

// aborted() -> [rank, code, cause] | null
Napi::Value Aborted(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (g->job == nullptr) return env.Null();
  int rank = -1, code = 0;
  char cause[512] = {0};
  if (!sf_job_aborted(g->job, &rank, &code, cause, sizeof cause)) return env.Null();
  Napi::Array a = Napi::Array::New(env, 3);
  a.Set(0u, Napi::Number::New(env, rank));
  a.Set(1u, Napi::Number::New(env, code));
  a.Set(2u, Napi::String::New(env, cause));
  return a;
}

Napi::Value PeerDeath(const Napi::CallbackInfo& info) {
  if (g->job == nullptr) return info.Env().Null();
  char buf[256];
  if (!sf_job_peer_death(g->job, Int(info, 0), buf, sizeof buf)) return info.Env().Null();
  return Napi::String::New(info.Env(), buf);
}

// health() -> null | [code, message, rank]: has the job been aborted, or has a peer died?
// For waits that the data plane does not run itself (a request awaited by polling test()).
Napi::Value Health(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (g->job == nullptr) return env.Null();
  auto out = [&](const char* code, const std::string& msg, int rank) {
    Napi::Array a = Napi::Array::New(env, 3);
    a.Set(0u, Napi::String::New(env, code));
    a.Set(1u, Napi::String::New(env, msg));
    a.Set(2u, Napi::Number::New(env, rank));
    return a;
  };
  int rank = -1, code = 0;
  char cause[512] = {0};
  int me = sf_job_rank(g->job);
  if (sf_job_aborted(g->job, &rank, &code, cause, sizeof cause))
    return out("ERR_ABORTED", "job aborted by rank " + std::to_string(rank) + ": " + cause, rank);
  char buf[256];
  for (int r = 0; r < sf_job_size(g->job); r++) {
    if (r != me && sf_job_peer_death(g->job, r, buf, sizeof buf)) return out("ERR_PROC_FAILED", "rank " + std::to_string(r) + " " + buf, r);
  }
  return env.Null();
}

// setLabel(name): the name of the next collectives in data-plane timeout messages. Labels must
// outlive the call: every distinct label ever set is kept. Point-to-point calls reset the data
// plane's label (their own messages name the operation), collectives apply this one.
Napi::Value SetLabel(const Napi::CallbackInfo& info) {
  static std::deque<std::string> labels;
  if (!info[0].IsString()) {
    g->coll_label = nullptr;
    return info.Env().Undefined();
  }
  std::string s = info[0].As<Napi::String>().Utf8Value();
  for (const std::string& l : labels)
    if (l == s) {
      g->coll_label = l.c_str();
      return info.Env().Undefined();
    }
  labels.push_back(s);
  g->coll_label = labels.back().c_str();
  return info.Env().Undefined();
}

Napi::Value Wtime(const Napi::CallbackInfo& info) {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return Napi::Number::New(info.Env(), ts.tv_sec + ts.tv_nsec * 1e-9);
}

// ---------------------------------------------------------------------------------------------
// Point-to-point

// Starts the frames of one message; *hdr/*data get the requests (data stays null for inline).
// `frame` receives the header (and inline payload) and must live until completion.
int StartSend(const uint8_t* buf, size_t len, int dtype, int dst, uint32_t ctx, int tag, int sync,
              std::vector<uint8_t>& frame, sf_req** hdr, sf_req** data) {
  *hdr = nullptr;
  *data = nullptr;
  if (dst == SF_PROC_NULL) return sf_isend(g->job, nullptr, 0, dst, ctx, tag, 0, hdr);
  if (len <= kInlineMax) {
    frame.resize(kHeader + len);
    FillHeader(frame.data(), kInline, dtype, 0, len);
    if (len) memcpy(frame.data() + kHeader, buf, len);
    return sf_isend(g->job, frame.data(), frame.size(), dst, ctx, tag, sync, hdr);
  }
  uint32_t seq = g->seq[dst]++;
  if (g->seq[dst] > SF_TAG_MAX) g->seq[dst] = 1;
  frame.resize(kHeader);
  FillHeader(frame.data(), kFollow, dtype, seq, len);
  int rc = sf_isend(g->job, frame.data(), kHeader, dst, ctx, tag, 0, hdr);
  if (rc < 0) return rc;
  rc = sf_isend(g->job, buf, len, dst, kDataCtx, static_cast<int>(seq), sync, data);
  if (rc < 0) {
    // The header went out without its data: the receiver would wait for the data frame until
    // its timeout. This happens only when the job is failing anyway.
    sf_req_free(g->job, *hdr);
    *hdr = nullptr;
  }
  return rc;
}

// send(buf, dtype, dst, ctx, tag, sync)
Napi::Value Send(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!RequireJob(env, "send")) return env.Undefined();
  sf_job_set_label(g->job, nullptr);
  uint8_t* p;
  size_t len;
  if (!Bytes(info, 0, &p, &len)) return env.Undefined();
  int dtype = Int(info, 1), dst = Int(info, 2), tag = Int(info, 4), sync = Int(info, 5);
  uint32_t ctx = U32(info, 3);
  if (dst == SF_PROC_NULL) return env.Undefined();
  int rc;
  if (len <= kInlineMax) {
    uint8_t* f = g->staging.data();
    FillHeader(f, kInline, dtype, 0, len);
    if (len) memcpy(f + kHeader, p, len);
    rc = sf_send(g->job, f, kHeader + len, dst, ctx, tag, sync);
  } else {
    std::vector<uint8_t> frame;
    sf_req *hdr, *data;
    rc = StartSend(p, len, dtype, dst, ctx, tag, sync, frame, &hdr, &data);
    if (rc >= 0) {
      rc = ProgressWait(env, data, nullptr);
      if (rc >= 0) rc = ProgressWait(env, hdr, nullptr);
      sf_req_free(g->job, hdr);
      sf_req_free(g->job, data);
    }
  }
  if (rc < 0) {
    return ThrowRc(env, rc, "send of " + Elems(len, dtype) + " to rank " + std::to_string(dst) + " tag " + std::to_string(tag));
  }
  return env.Undefined();
}

// Checks a received header against the receive; returns an error message or "".
std::string CheckHeader(const Header& h, size_t frame_len, int expect_type, size_t cap, int source, int tag) {
  if (frame_len < kHeader || h.magic != kMagic || (h.kind != kInline && h.kind != kFollow) ||
      (h.kind == kInline && frame_len != kHeader + h.nbytes)) {
    return "malformed message from rank " + std::to_string(source) + " tag " + std::to_string(tag) +
           " (not sent by MPI for TypeScript?)";
  }
  if (expect_type >= 0 && h.dtype != expect_type) {
    return std::string("type mismatch: rank ") + std::to_string(source) + " sent " +
           (h.dtype == kObjectType ? "an object message (send)" : std::string(TypeName(h.dtype)) + " elements") +
           " with tag " + std::to_string(tag) + ", but the receive " +
           (expect_type == kObjectType ? "expects an object" : std::string("buffer is ") + TypeName(expect_type)) +
           (h.dtype == kObjectType ? " (use recv for object messages)" : expect_type == kObjectType ? "" : "");
  }
  if (expect_type > 0 && h.nbytes > cap) {
    return "message truncated: rank " + std::to_string(source) + " sent " + Elems(h.nbytes, h.dtype) + " with tag " +
           std::to_string(tag) + ", but the receive buffer holds " + Elems(cap, expect_type);
  }
  return "";
}

// Takes a probed header matching (src, ctx, tag), if any.
bool TakePeeked(int src, uint32_t ctx, int tag, Peeked* out) {
  for (auto it = g->peeked.begin(); it != g->peeked.end(); ++it) {
    if (it->ctx != ctx) continue;
    if (src != SF_ANY_SOURCE && it->source != src) continue;
    if (tag != SF_ANY_TAG && it->tag != tag) continue;
    *out = std::move(*it);
    g->peeked.erase(it);
    return true;
  }
  return false;
}

// Drains the data frame of a follow message that cannot be received (truncation, type).
void DiscardData(int source, uint32_t seq) {
  sf_status st;
  sf_recv(g->job, nullptr, 0, source, kDataCtx, static_cast<int>(seq), &st);
}

// Receives one message (blocking). buf == null: object receive, result Buffer returned.
// expect_type: the typed array's type id, or -1 for an object receive (accepts any).
Napi::Value RecvImpl(Napi::Env env, uint8_t* buf, size_t cap, int expect_type, int src, uint32_t ctx, int tag,
                     const char* what) {
  Peeked pk;
  const uint8_t* frame;
  size_t frame_len;
  int source, rtag;
  if (TakePeeked(src, ctx, tag, &pk)) {
    frame = pk.frame.data();
    frame_len = pk.frame.size();
    source = pk.source;
    rtag = pk.tag;
  } else {
    sf_status st;
    int rc = BlockingRecv(env, g->staging.data(), g->staging.size(), src, ctx, tag, &st);
    if (rc < 0) {
      return ThrowRc(env, rc, std::string(what) + " from " + (src == SF_ANY_SOURCE ? std::string("any rank") : "rank " + std::to_string(src)) +
                                  " tag " + (tag == SF_ANY_TAG ? std::string("any") : std::to_string(tag)));
    }
    if (st.source == SF_PROC_NULL) {
      SetStatus(SF_PROC_NULL, SF_ANY_TAG, 0, expect_type < 0 ? 0 : expect_type);
      return env.Null();
    }
    frame = g->staging.data();
    frame_len = st.count;
    source = st.source;
    rtag = st.tag;
  }
  Header h;
  memcpy(&h, frame, kHeader);
  std::string bad = CheckHeader(h, frame_len, expect_type, cap, source, rtag);
  if (!bad.empty()) {
    if (h.magic == kMagic && h.kind == kFollow) DiscardData(source, h.seq);
    const char* code = bad.rfind("type", 0) == 0 ? "ERR_TYPE" : bad.rfind("message truncated", 0) == 0 ? "ERR_TRUNCATE" : "ERR_INTERN";
    return ThrowMPI(env, code, std::string(what) + ": " + bad, source);
  }
  Napi::Value result = env.Undefined();
  uint8_t* dst = buf;
  if (buf == nullptr) {
    Napi::Buffer<uint8_t> b = Napi::Buffer<uint8_t>::New(env, h.nbytes);
    dst = b.Data();
    result = b;
  }
  if (h.kind == kInline) {
    if (h.nbytes) memcpy(dst, frame + kHeader, h.nbytes);
  } else {
    sf_status st;
    int rc = BlockingRecv(env, dst, h.nbytes, source, kDataCtx, static_cast<int>(h.seq), &st);
    if (rc < 0) return ThrowRc(env, rc, std::string(what) + ": data of " + Elems(h.nbytes, h.dtype) + " from rank " + std::to_string(source));
  }
  SetStatus(source, rtag, h.nbytes, h.dtype);
  return result;
}

// recv(buf, dtype, src, ctx, tag): into the caller's typed array; status in the status array.
Napi::Value Recv(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!RequireJob(env, "recv")) return env.Undefined();
  sf_job_set_label(g->job, nullptr);
  uint8_t* p;
  size_t len;
  if (!Bytes(info, 0, &p, &len)) return env.Undefined();
  static uint8_t empty;
  RecvImpl(env, p ? p : &empty, len, Int(info, 1), Int(info, 2), U32(info, 3), Int(info, 4), "recv");
  return env.Undefined();
}

// recvObject(src, ctx, tag) -> Buffer (payload); status dtype tells object vs typed array.
Napi::Value RecvObject(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!RequireJob(env, "recv")) return env.Undefined();
  sf_job_set_label(g->job, nullptr);
  return RecvImpl(env, nullptr, 0, -1, Int(info, 0), U32(info, 1), Int(info, 2), "recv");
}

// iprobe(src, ctx, tag) -> bool; probe(src, ctx, tag). Status in the status array.
Napi::Value ProbeImpl(const Napi::CallbackInfo& info, bool blocking) {
  Napi::Env env = info.Env();
  if (!RequireJob(env, "probe")) return env.Undefined();
  sf_job_set_label(g->job, nullptr);
  int src = Int(info, 0), tag = Int(info, 2);
  uint32_t ctx = U32(info, 1);
  for (const Peeked& pk : g->peeked) {
    if (pk.ctx != ctx || (src != SF_ANY_SOURCE && pk.source != src) || (tag != SF_ANY_TAG && pk.tag != tag)) continue;
    Header h;
    memcpy(&h, pk.frame.data(), kHeader);
    SetStatus(pk.source, pk.tag, h.nbytes, h.dtype);
    return Napi::Boolean::New(env, true);
  }
  sf_status st;
  int rc = blocking ? sf_probe(g->job, src, ctx, tag, &st) : sf_iprobe(g->job, src, ctx, tag, &st);
  if (rc < 0) return ThrowRc(env, rc, std::string(blocking ? "probe" : "iprobe") + " tag " + std::to_string(tag));
  if (!blocking && rc == 0) return Napi::Boolean::New(env, false);
  if (st.source == SF_PROC_NULL) {
    SetStatus(SF_PROC_NULL, SF_ANY_TAG, 0, 0);
    return Napi::Boolean::New(env, true);
  }
  // Consume the header so that its payload size is known, and keep it for the next receive.
  // Every earlier message from the same source in this context is consumed first, in order:
  // a later receive with ANY_TAG must still get them before this one (non-overtaking), and the
  // peeked list is matched in arrival order.
  for (;;) {
    sf_status s1;
    rc = sf_iprobe(g->job, st.source, ctx, SF_ANY_TAG, &s1);
    if (rc < 0) return ThrowRc(env, rc, "probe");
    if (rc == 0) return ThrowMPI(env, "ERR_INTERN", "probe: the probed message from rank " + std::to_string(st.source) + " disappeared");
    Peeked pk;
    pk.source = s1.source;
    pk.ctx = ctx;
    pk.tag = s1.tag;
    pk.frame.resize(s1.size);
    sf_status s2;
    rc = sf_recv(g->job, pk.frame.data(), pk.frame.size(), s1.source, ctx, s1.tag, &s2);
    if (rc < 0) return ThrowRc(env, rc, "probe");
    bool target = tag == SF_ANY_TAG || s1.tag == tag;
    Header h;
    memcpy(&h, pk.frame.data(), kHeader);
    g->peeked.push_back(std::move(pk));
    if (target) {
      SetStatus(s1.source, s1.tag, h.nbytes, h.dtype);
      return Napi::Boolean::New(env, true);
    }
  }
}
Napi::Value Iprobe(const Napi::CallbackInfo& info) { return ProbeImpl(info, false); }
Napi::Value Probe(const Napi::CallbackInfo& info) { return ProbeImpl(info, true); }

// ---------------------------------------------------------------------------------------------
// Requests

Request* FindReq(Napi::Env env, const Napi::Value& v) {
  uint32_t id = v.As<Napi::Number>().Uint32Value();
  auto it = g->reqs.find(id);
  if (it == g->reqs.end()) {
    ThrowMPI(env, "ERR_REQUEST", "request " + std::to_string(id) + " is not active (freed, or completed and freed)");
    return nullptr;
  }
  return it->second.get();
}

uint32_t AddReq(std::unique_ptr<Request> r) {
  uint32_t id = g->next_req++;
  if (g->next_req == 0) g->next_req = 1;
  g->reqs.emplace(id, std::move(r));
  return id;
}

// isend(buf, dtype, dst, ctx, tag, sync) -> id
Napi::Value Isend(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!RequireJob(env, "isend")) return env.Undefined();
  sf_job_set_label(g->job, nullptr);
  uint8_t* p;
  size_t len;
  if (!Bytes(info, 0, &p, &len)) return env.Undefined();
  int dtype = Int(info, 1), dst = Int(info, 2), tag = Int(info, 4), sync = Int(info, 5);
  auto r = std::make_unique<Request>();
  r->kind = Request::kSend;
  int rc = StartSend(p, len, dtype, dst, U32(info, 3), tag, sync, r->frame, &r->hdr, &r->data);
  if (rc < 0) return ThrowRc(env, rc, "isend of " + Elems(len, dtype) + " to rank " + std::to_string(dst) + " tag " + std::to_string(tag));
  if (r->data) r->keep = Napi::Persistent(info[0]);
  r->source = dst;
  r->rtag = tag;
  r->nbytes = len;
  r->rtype = dtype;
  return Napi::Number::New(env, AddReq(std::move(r)));
}

// irecv(buf|null, dtype(-1 = object), src, ctx, tag) -> id
Napi::Value Irecv(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!RequireJob(env, "irecv")) return env.Undefined();
  sf_job_set_label(g->job, nullptr);
  auto r = std::make_unique<Request>();
  r->kind = Request::kRecv;
  if (!Bytes(info, 0, &r->buf, &r->cap)) return env.Undefined();
  r->dtype = Int(info, 1);
  r->src = Int(info, 2);
  r->ctx = U32(info, 3);
  r->tag = Int(info, 4);
  if (!info[0].IsNull()) r->keep = Napi::Persistent(info[0]);
  Peeked pk;
  if (TakePeeked(r->src, r->ctx, r->tag, &pk)) {
    r->frame = std::move(pk.frame);
    r->source = pk.source;
    r->rtag = pk.tag;
    r->stage = -1;  // header already here: advanced on the first test/wait
  } else {
    r->frame.resize(kHeader + kInlineMax);
    int rc = sf_irecv(g->job, r->frame.data(), r->frame.size(), r->src, r->ctx, r->tag, &r->hdr);
    if (rc < 0) return ThrowRc(env, rc, "irecv tag " + std::to_string(r->tag));
  }
  return Napi::Number::New(env, AddReq(std::move(r)));
}

// Records a failure on a request; it is thrown when the program tests or waits on it (requests
// are also advanced in the background, while this rank blocks elsewhere).
void SetErr(Request* r, const char* code, const std::string& msg, int rank) {
  r->err_code = code;
  r->err_msg = msg;
  r->err_rank = rank;
  r->failed = true;
  r->done = true;
  r->stage = 2;
}

void SetRcErr(Request* r, int rc, const std::string& what) {
  std::string msg = sf_last_error();
  if (msg.empty()) msg = sf_error_name(rc);
  SetErr(r, ErrCode(rc), what + ": " + msg, FailedRank(rc));
}

// A receive's header arrived: check it, copy an inline payload, or post the data receive.
// Returns false with r->failed set on error.
bool OnHeader(Napi::Env env, Request* r, size_t frame_len) {
  Header h;
  memcpy(&h, r->frame.data(), kHeader);
  std::string bad = CheckHeader(h, frame_len, r->dtype, r->cap, r->source, r->rtag);
  if (!bad.empty()) {
    if (h.magic == kMagic && h.kind == kFollow) DiscardData(r->source, h.seq);
    const char* code = bad.rfind("type", 0) == 0 ? "ERR_TYPE" : bad.rfind("message truncated", 0) == 0 ? "ERR_TRUNCATE" : "ERR_INTERN";
    SetErr(r, code, "irecv: " + bad, r->source);
    return false;
  }
  r->rtype = h.dtype;
  r->nbytes = h.nbytes;
  uint8_t* dst = r->buf;
  if (r->dtype < 0) {
    Napi::Buffer<uint8_t> b = Napi::Buffer<uint8_t>::New(env, h.nbytes);
    dst = b.Data();
    r->result = Napi::Persistent(Napi::Value(b));
  }
  if (h.kind == kInline) {
    if (h.nbytes) memcpy(dst, r->frame.data() + kHeader, h.nbytes);
    r->stage = 2;
    r->done = true;
    return true;
  }
  int rc = sf_irecv(g->job, dst, h.nbytes, r->source, kDataCtx, static_cast<int>(h.seq), &r->data);
  if (rc < 0) {
    SetRcErr(r, rc, "irecv: data of " + Elems(h.nbytes, h.dtype) + " from rank " + std::to_string(r->source));
    return false;
  }
  r->stage = 1;
  return true;
}

int ProgressWait(Napi::Env env, sf_req* target, sf_status* st);

// Makes progress on one request; blocking = wait. Returns 1 done, 0 pending, -1 failed (r->failed).
int Advance(Napi::Env env, Request* r, bool blocking) {
  if (r->done) return r->failed ? -1 : 1;
  if (r->kind == Request::kSend) {
    sf_req* rs[2] = {r->hdr, r->data};
    for (sf_req* q : rs) {
      if (q == nullptr) continue;
      int rc = blocking ? ProgressWait(env, q, nullptr) : sf_test(g->job, q, nullptr);
      if (rc < 0) {
        SetRcErr(r, rc, "isend to rank " + std::to_string(r->source) + " tag " + std::to_string(r->rtag));
        return -1;
      }
      if (!blocking && rc == 0) return 0;
    }
    r->done = true;
    return 1;
  }
  for (;;) {
    if (r->stage == -1) {
      if (!OnHeader(env, r, r->frame.size())) return -1;
      continue;
    }
    if (r->stage == 0) {
      sf_status st;
      int rc = blocking ? ProgressWait(env, r->hdr, &st) : sf_test(g->job, r->hdr, &st);
      if (rc < 0) {
        SetRcErr(r, rc, "irecv from " + (r->src == SF_ANY_SOURCE ? std::string("any rank") : "rank " + std::to_string(r->src)) + " tag " +
                            (r->tag == SF_ANY_TAG ? std::string("any") : std::to_string(r->tag)));
        return -1;
      }
      if (!blocking && rc == 0) return 0;
      sf_req_free(g->job, r->hdr);
      r->hdr = nullptr;
      if (st.source == SF_PROC_NULL) {
        r->source = SF_PROC_NULL;
        r->rtag = SF_ANY_TAG;
        r->nbytes = 0;
        r->rtype = r->dtype < 0 ? 0 : r->dtype;
        r->done = true;
        r->stage = 2;
        return 1;
      }
      r->source = st.source;
      r->rtag = st.tag;
      if (!OnHeader(env, r, st.count)) return -1;
      continue;
    }
    if (r->stage == 1) {
      int rc = blocking ? ProgressWait(env, r->data, nullptr) : sf_test(g->job, r->data, nullptr);
      if (rc < 0) {
        SetRcErr(r, rc, "irecv: data from rank " + std::to_string(r->source));
        return -1;
      }
      if (!blocking && rc == 0) return 0;
      r->stage = 2;
      r->done = true;
    }
    return 1;
  }
}

// Waits for `target` while advancing every pending receive whose header may arrive meanwhile:
// a peer blocked in a large Send to us needs our data receive posted, which only happens when
// its header is seen (the deadlock Irecv(A); Send(B) <-> Irecv(B); Send(A) would hang otherwise).
int ProgressWait(Napi::Env env, sf_req* target, sf_status* st) {
  static int depth = 0;
  std::vector<sf_req*> list;
  std::vector<Request*> owners;
  for (;;) {
    list.clear();
    owners.clear();
    list.push_back(target);
    owners.push_back(nullptr);
    if (depth == 0) {
      for (auto& kv : g->reqs) {
        Request* r = kv.second.get();
        if (r->kind == Request::kRecv && !r->done && r->stage == 0 && r->hdr != nullptr && r->hdr != target) {
          list.push_back(r->hdr);
          owners.push_back(r);
        }
      }
    }
    if (list.size() == 1) return sf_wait(g->job, target, st);
    int index = -1;
    int rc = sf_wait_any(g->job, list.data(), static_cast<int>(list.size()), &index);
    if (rc < 0) return rc;
    if (index <= 0) return sf_wait(g->job, target, st);
    depth++;
    Advance(env, owners[index], false);  // errors stay on that request
    depth--;
  }
}

// Advances every pending receive once without blocking (before entering a native collective).
void ProgressAll(Napi::Env env) {
  for (auto& kv : g->reqs) {
    Request* r = kv.second.get();
    if (r->kind == Request::kRecv && !r->done) Advance(env, r, false);
  }
}

void ReqStatus(Request* r) { SetStatus(r->source, r->rtag, r->nbytes, r->rtype); }

Napi::Value ThrowReq(Napi::Env env, Request* r) {
  return ThrowMPI(env, r->err_code.c_str(), r->err_msg, r->err_rank);
}

// test(id) -> bool (status filled when true)
Napi::Value Test(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (g->job != nullptr) sf_job_set_label(g->job, nullptr);
  Request* r = FindReq(env, info[0]);
  if (r == nullptr) return env.Undefined();
  int rc = Advance(env, r, false);
  if (rc < 0) return ThrowReq(env, r);
  if (rc == 1) ReqStatus(r);
  return Napi::Boolean::New(env, rc == 1);
}

// wait(id): blocks; status filled.
Napi::Value Wait(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (g->job != nullptr) sf_job_set_label(g->job, nullptr);
  Request* r = FindReq(env, info[0]);
  if (r == nullptr) return env.Undefined();
  if (Advance(env, r, true) < 0) return ThrowReq(env, r);
  ReqStatus(r);
  return env.Undefined();
}

// waitAny(Uint32Array ids) -> index of a completed request (status filled)
Napi::Value WaitAny(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (g->job != nullptr) sf_job_set_label(g->job, nullptr);
  Napi::Uint32Array ids = info[0].As<Napi::Uint32Array>();
  size_t n = ids.ElementLength();
  std::vector<Request*> rs(n);
  for (size_t i = 0; i < n; i++) {
    rs[i] = FindReq(env, Napi::Number::New(env, ids[i]));
    if (rs[i] == nullptr) return env.Undefined();
  }
  for (;;) {
    std::vector<sf_req*> pending;
    for (size_t i = 0; i < n; i++) {
      int rc = Advance(env, rs[i], false);
      if (rc < 0) return ThrowReq(env, rs[i]);
      if (rc == 1) {
        ReqStatus(rs[i]);
        return Napi::Number::New(env, static_cast<double>(i));
      }
      Request* r = rs[i];
      sf_req* q = r->kind == Request::kSend ? (r->hdr && !sf_req_done(r->hdr) ? r->hdr : r->data) : (r->stage == 0 ? r->hdr : r->data);
      if (q) pending.push_back(q);
    }
    for (auto& kv : g->reqs) {  // other receives progress too (see ProgressWait)
      Request* r = kv.second.get();
      if (r->kind == Request::kRecv && !r->done && r->stage == 0 && r->hdr) pending.push_back(r->hdr);
    }
    if (pending.empty()) return Napi::Number::New(env, -1);
    int index = -1;
    int rc = sf_wait_any(g->job, pending.data(), static_cast<int>(pending.size()), &index);
    if (rc < 0) return ThrowRc(env, rc, "waitany");
    ProgressAll(env);
  }
}

// result(id) -> the received Buffer of an object receive (after completion)
Napi::Value Result(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Request* r = FindReq(env, info[0]);
  if (r == nullptr || r->result.IsEmpty()) return env.Undefined();
  return r->result.Value();
}

// free(id): a pending request is detached (it completes in the background).
Napi::Value Free(const Napi::CallbackInfo& info) {
  uint32_t id = info[0].As<Napi::Number>().Uint32Value();
  auto it = g->reqs.find(id);
  if (it == g->reqs.end()) return info.Env().Undefined();
  Request* r = it->second.get();
  if (g->job != nullptr) {
    // A detached pending receive would write into a buffer the program may reuse; the
    // TypeScript layer only frees completed requests or cancels at finalize.
    if (r->hdr) sf_req_free(g->job, r->hdr);
    if (r->data) sf_req_free(g->job, r->data);
  }
  g->reqs.erase(it);
  return info.Env().Undefined();
}

// ---------------------------------------------------------------------------------------------
// Collectives. Every collective gets (ranks: Int32Array | null, index, ctx) for its group.

struct Group {
  sf_group g;
  std::vector<int> ranks;
};

bool GetGroup(const Napi::CallbackInfo& info, size_t i, Group* out) {
  memset(&out->g, 0, sizeof out->g);
  if (info[i].IsNull()) {
    out->g.size = sf_job_size(g->job);
    out->g.ranks = nullptr;
  } else {
    Napi::Int32Array a = info[i].As<Napi::Int32Array>();
    out->ranks.assign(a.Data(), a.Data() + a.ElementLength());
    out->g.size = static_cast<int>(out->ranks.size());
    out->g.ranks = out->ranks.data();
  }
  out->g.rank = Int(info, i + 1);
  out->g.ctx = U32(info, i + 2);
  return true;
}

// Combine for reductions: a predefined (op, type), or a JS function (in, inout) on typed arrays.
struct Combine {
  sf_builtin_arg builtin;
  bool js = false;
  Napi::Env env = nullptr;
  Napi::Function fn;
  int dtype = 0;
  bool failed = false;
};

Napi::Value MakeView(Napi::Env env, int dtype, void* p, size_t nbytes, Napi::ArrayBuffer* ab) {
  *ab = Napi::ArrayBuffer::New(env, p, nbytes);
  size_t n = nbytes / kTypeSizes[dtype];
  napi_typedarray_type t;
  switch (dtype) {
    case 1: t = napi_int8_array; break;
    case 2: t = napi_uint8_array; break;
    case 3: t = napi_uint8_clamped_array; break;
    case 4: t = napi_int16_array; break;
    case 5: t = napi_uint16_array; break;
    case 6: t = napi_int32_array; break;
    case 7: t = napi_uint32_array; break;
    case 8: t = napi_float32_array; break;
    case 9: t = napi_float64_array; break;
    case 10: t = napi_bigint64_array; break;
    case 11: t = napi_biguint64_array; break;
    default: t = napi_uint8_array; n = nbytes; break;
  }
  napi_value out;
  if (napi_create_typedarray(env, t, n, *ab, 0, &out) != napi_ok) return env.Undefined();
  return Napi::Value(env, out);
}

int JsCombine(const void* in, void* inout, size_t nbytes, void* arg) {
  Combine* c = static_cast<Combine*>(arg);
  if (c->failed) return SF_EINVAL;
  Napi::Env env = c->env;
  Napi::HandleScope scope(env);
  Napi::ArrayBuffer ain, aio;
  Napi::Value vin = MakeView(env, c->dtype, const_cast<void*>(in), nbytes, &ain);
  Napi::Value vio = MakeView(env, c->dtype, inout, nbytes, &aio);
  c->fn.Call({vin, vio});
  // The views point into the data plane's memory: detach them so that nothing keeps them.
  napi_detach_arraybuffer(env, ain);
  napi_detach_arraybuffer(env, aio);
  if (env.IsExceptionPending()) {
    c->failed = true;
    return SF_EINVAL;
  }
  return 0;
}

sf_dtype ToSfType(int dtype) {
  switch (dtype) {
    case 1: return SF_INT8;
    case 2: case 3: return SF_UINT8;
    case 4: return SF_INT16;
    case 5: return SF_UINT16;
    case 6: return SF_INT32;
    case 7: return SF_UINT32;
    case 8: return SF_FLOAT;
    case 9: return SF_DOUBLE;
    case 10: return SF_INT64;
    case 11: return SF_UINT64;
    default: return SF_BYTE;
  }
}

// The combine argument at info[i]: a number (sf_op, applied natively on the element type
// info[i+1]) or a JS function (in, inout) => void writing inout.
bool GetCombine(const Napi::CallbackInfo& info, size_t i, Combine* c) {
  c->dtype = Int(info, i + 1);
  if (info[i].IsFunction()) {
    c->js = true;
    c->env = info.Env();
    c->fn = info[i].As<Napi::Function>();
    return true;
  }
  c->builtin.op = static_cast<sf_op>(Int(info, i));
  c->builtin.type = ToSfType(c->dtype);
  return true;
}

sf_combine_fn CombineFn(Combine* c) { return c->js ? JsCombine : sf_builtin_combine; }
void* CombineArg(Combine* c) { return c->js ? static_cast<void*>(c) : static_cast<void*>(&c->builtin); }

// Records that this rank entered collective number `seq` of the group's context.
uint64_t Enter(const Group& gr) {
  uint64_t seq = ++g->coll_seq[gr.g.ctx];
  if (g->slots != nullptr) {
    State::CollSlot* slot = &g->slots[sf_job_rank(g->job) * kSlotBuckets + gr.g.ctx % kSlotBuckets];
    __atomic_store_n(&slot->ctx, gr.g.ctx, __ATOMIC_RELAXED);
    __atomic_store_n(&slot->seq, seq, __ATOMIC_RELEASE);
  }
  return seq;
}

// The members of the group that have not entered collective `seq` of its context.
std::vector<int> NotArrived(const Group& gr, uint64_t seq) {
  std::vector<int> out;
  if (g->slots == nullptr) return out;
  for (int i = 0; i < gr.g.size; i++) {
    int w = gr.g.ranks ? gr.g.ranks[i] : i;
    if (w == sf_job_rank(g->job)) continue;
    State::CollSlot* slot = &g->slots[w * kSlotBuckets + gr.g.ctx % kSlotBuckets];
    uint64_t s = __atomic_load_n(&slot->seq, __ATOMIC_ACQUIRE);
    if (__atomic_load_n(&slot->ctx, __ATOMIC_RELAXED) != gr.g.ctx || s < seq) out.push_back(w);
  }
  return out;
}

// The start of every collective: progress pending receives (a peer may be blocked sending to us),
// label the wait for timeout messages, check the job and the group, and record that this rank
// entered the collective. False with a JavaScript exception pending.
bool EnterCollective(const Napi::CallbackInfo& info, const char* what, Group* gr, uint64_t* seq) {
  Napi::Env env = info.Env();
  if (g->job != nullptr) {
    ProgressAll(env);
    sf_job_set_label(g->job, g->coll_label);
  }
  if (!RequireJob(env, what)) return false;
  if (!GetGroup(info, 0, gr)) return false;
  *seq = Enter(*gr);
  return true;
}

Napi::Value CollResult(const Group& gr, uint64_t seq, Napi::Env env, int rc, const std::string& what) {
  if (env.IsExceptionPending()) return env.Undefined();  // a JS combine threw
  if (rc == SF_ETIMEDOUT) {
    std::vector<int> missing = NotArrived(gr, seq);
    std::string msg = what + ": " + sf_last_error();
    if (!missing.empty()) {
      msg += "; never entered it: rank";
      if (missing.size() > 1) msg += "s";
      for (size_t i = 0; i < missing.size(); i++) msg += (i ? ", " : " ") + std::to_string(missing[i]);
    }
    return ThrowMPI(env, "ERR_TIMEOUT", msg, missing.size() == 1 ? missing[0] : -1, missing.empty() ? nullptr : &missing);
  }
  if (rc < 0) return ThrowRc(env, rc, what);
  return env.Undefined();
}

// barrier(ranks, index, ctx)
Napi::Value Barrier(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Group gr;
  uint64_t seq;
  if (!EnterCollective(info, "barrier", &gr, &seq)) return env.Undefined();
  return CollResult(gr, seq, env, sf_barrier(g->job, &gr.g), "barrier");
}

// bcast(ranks, index, ctx, buf, root)
Napi::Value Bcast(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Group gr;
  uint64_t seq;
  if (!EnterCollective(info, "bcast", &gr, &seq)) return env.Undefined();
  uint8_t* p;
  size_t len;
  if (!Bytes(info, 3, &p, &len)) return env.Undefined();
  return CollResult(gr, seq, env, sf_bcast(g->job, &gr.g, p, len, Int(info, 4)), "bcast of " + std::to_string(len) + " bytes");
}

// reduce(ranks, index, ctx, sbuf|null, rbuf|null, op|fn, dtype, root, kind)
// kind: 0 reduce, 1 allreduce, 2 scan, 3 exscan
Napi::Value Reduce(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Group gr;
  uint64_t seq;
  if (!EnterCollective(info, "reduce", &gr, &seq)) return env.Undefined();
  uint8_t *s, *r;
  size_t slen, rlen;
  if (!Bytes(info, 3, &s, &slen) || !Bytes(info, 4, &r, &rlen)) return env.Undefined();
  Combine c;
  GetCombine(info, 5, &c);
  int root = Int(info, 7), kind = Int(info, 8);
  size_t len = s ? slen : rlen;
  int rc;
  static const char* names[] = {"reduce", "allreduce", "scan", "exscan"};
  switch (kind) {
    case 0: rc = sf_reduce(g->job, &gr.g, s, r, len, CombineFn(&c), CombineArg(&c), root); break;
    case 1: rc = sf_allreduce(g->job, &gr.g, s, r, len, CombineFn(&c), CombineArg(&c)); break;
    case 2: rc = sf_scan(g->job, &gr.g, s, r, len, CombineFn(&c), CombineArg(&c)); break;
    default: rc = sf_exscan(g->job, &gr.g, s, r, len, CombineFn(&c), CombineArg(&c)); break;
  }
  return CollResult(gr, seq, env, rc, std::string(names[kind & 3]) + " of " + Elems(len, c.dtype));
}

std::vector<size_t> Sizes(const Napi::Value& v) {
  std::vector<size_t> out;
  if (!v.IsTypedArray()) return out;
  Napi::Float64Array a = v.As<Napi::Float64Array>();
  out.reserve(a.ElementLength());
  for (size_t i = 0; i < a.ElementLength(); i++) out.push_back(static_cast<size_t>(a[i]));
  return out;
}

// gatherv(ranks, index, ctx, sbuf|null, rbuf|null, lens: Float64Array|null, displs|null, root, all)
Napi::Value Gatherv(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Group gr;
  uint64_t seq;
  if (!EnterCollective(info, "gather", &gr, &seq)) return env.Undefined();
  uint8_t *s, *r;
  size_t slen, rlen;
  if (!Bytes(info, 3, &s, &slen) || !Bytes(info, 4, &r, &rlen)) return env.Undefined();
  std::vector<size_t> lens = Sizes(info[5]), displs = Sizes(info[6]);
  bool all = info[8].ToBoolean();
  int rc;
  if (all) {
    rc = sf_allgatherv(g->job, &gr.g, s, slen, r, lens.data(), displs.data());
  } else {
    rc = sf_gatherv(g->job, &gr.g, s, slen, r, lens.empty() ? nullptr : lens.data(), displs.empty() ? nullptr : displs.data(), Int(info, 7));
  }
  return CollResult(gr, seq, env, rc, all ? "allgather" : "gather");
}

// scatterv(ranks, index, ctx, sbuf|null, lens|null, displs|null, rbuf|null, root)
Napi::Value Scatterv(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Group gr;
  uint64_t seq;
  if (!EnterCollective(info, "scatter", &gr, &seq)) return env.Undefined();
  uint8_t *s, *r;
  size_t slen, rlen;
  if (!Bytes(info, 3, &s, &slen) || !Bytes(info, 6, &r, &rlen)) return env.Undefined();
  std::vector<size_t> lens = Sizes(info[4]), displs = Sizes(info[5]);
  int rc = sf_scatterv(g->job, &gr.g, s, lens.empty() ? nullptr : lens.data(), displs.empty() ? nullptr : displs.data(), r, rlen,
                       Int(info, 7));
  return CollResult(gr, seq, env, rc, "scatter");
}

// alltoallv(ranks, index, ctx, sbuf, slens, sdispls, rbuf, rlens, rdispls)
Napi::Value Alltoallv(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Group gr;
  uint64_t seq;
  if (!EnterCollective(info, "alltoall", &gr, &seq)) return env.Undefined();
  uint8_t *s, *r;
  size_t slen, rlen;
  if (!Bytes(info, 3, &s, &slen) || !Bytes(info, 6, &r, &rlen)) return env.Undefined();
  std::vector<size_t> sl = Sizes(info[4]), sd = Sizes(info[5]), rl = Sizes(info[7]), rd = Sizes(info[8]);
  int rc = sf_alltoallv(g->job, &gr.g, s, sl.data(), sd.data(), r, rl.data(), rd.data());
  return CollResult(gr, seq, env, rc, "alltoall");
}

// opValid(op, dtype) -> bool
Napi::Value OpValid(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), sf_op_valid(static_cast<sf_op>(Int(info, 0)), ToSfType(Int(info, 1))) != 0);
}

// ctlFork(fd, rank, pid, ms) / ctlExit(fd, rank, code) / ctlFail(fd, rank, code, signal, cause):
// one JSON line per write(2) on the launcher's control socket (docs/launcher-protocol.md).
Napi::Value CtlFork(const Napi::CallbackInfo& info) {
  int rc = sf_ctl_fork(Int(info, 0), Int(info, 1), Int(info, 2), info[3].As<Napi::Number>().DoubleValue());
  return Napi::Number::New(info.Env(), rc);
}
Napi::Value CtlExit(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), sf_ctl_exit(Int(info, 0), Int(info, 1), Int(info, 2)));
}
Napi::Value CtlFail(const Napi::CallbackInfo& info) {
  std::string cause = info[4].As<Napi::String>().Utf8Value();
  return Napi::Number::New(info.Env(), sf_ctl_fail(Int(info, 0), Int(info, 1), Int(info, 2), Int(info, 3), cause.c_str()));
}

void Cleanup(void*) {
  if (g == nullptr) return;
  if (g->job != nullptr) {
    DropRequests();
    sf_job_destroy(g->job);
    g->job = nullptr;
  }
}

}  // namespace

// Adds `exports.mpi`. Called from addon.cc's Init.
Napi::Object InitMpi(Napi::Env env, Napi::Object exports) {
  if (g == nullptr) g = new State();
  napi_add_env_cleanup_hook(env, Cleanup, nullptr);
  Napi::Object m = Napi::Object::New(env);
  struct Fn { const char* name; Napi::Value (*fn)(const Napi::CallbackInfo&); };
  static const Fn fns[] = {
      {"setErrorFactory", SetErrorFactory}, {"create", Create}, {"setPid", SetPid}, {"attach", Attach},
      {"destroy", Destroy}, {"info", Info}, {"pid", Pid}, {"markFinished", MarkFinished},
      {"markFailReported", MarkFailReported}, {"failReported", FailReported}, {"abort", Abort},
      {"aborted", Aborted}, {"peerDeath", PeerDeath}, {"health", Health}, {"setLabel", SetLabel}, {"wtime", Wtime},
      {"send", Send}, {"recv", Recv}, {"recvObject", RecvObject}, {"iprobe", Iprobe}, {"probe", Probe},
      {"isend", Isend}, {"irecv", Irecv}, {"test", Test}, {"wait", Wait}, {"waitAny", WaitAny},
      {"result", Result}, {"free", Free}, {"barrier", Barrier}, {"bcast", Bcast}, {"reduce", Reduce},
      {"gatherv", Gatherv}, {"scatterv", Scatterv}, {"alltoallv", Alltoallv}, {"opValid", OpValid},
      {"ctlFork", CtlFork}, {"ctlExit", CtlExit}, {"ctlFail", CtlFail},
  };
  for (const Fn& f : fns) m.Set(f.name, Napi::Function::New(env, f.fn, f.name));
  m.Set("ANY_SOURCE", Napi::Number::New(env, SF_ANY_SOURCE));
  m.Set("ANY_TAG", Napi::Number::New(env, SF_ANY_TAG));
  m.Set("PROC_NULL", Napi::Number::New(env, SF_PROC_NULL));
  m.Set("TAG_MAX", Napi::Number::New(env, SF_TAG_MAX));
  m.Set("MAX_RANKS", Napi::Number::New(env, SF_MAX_RANKS));
  exports.Set("mpi", m);
  return exports;
}

}  // namespace sf
