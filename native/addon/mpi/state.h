// State of the Node binding of the data plane (mpi-compat/ts is its only user).
//
// Per environment, as better-sqlite3 keeps one Addon per env: every JavaScript environment that
// loads the addon (the main thread, each worker thread) gets its own Env, set as the env's
// instance data and freed with it. The data-plane job itself belongs to the process (fork
// makes one job per process) and to the main thread only: a worker thread may import the
// package, but its MPI calls throw a clear error and its exit leaves the main thread's job alone.
#pragma once

#include <napi.h>
#include <uv.h>

#include <cstdint>
#include <deque>
#include <string>
#include <unordered_map>
#include <vector>

extern "C" {
#include "sf_dataplane.h"
#include "sf_proc.h"
}

namespace sf::mpi {

// A non-blocking operation started from JavaScript.
struct Request {
  enum Kind { kSend, kRecv, kRecvObject } kind = kSend;
  sf_req* req = nullptr;
  Napi::Reference<Napi::Value> keep;  // the caller's typed array / encoded bytes, while in flight
  int expect = SF_ANY_DTYPE;          // typed receive: the element type it accepts
  size_t cap = 0;
  int src = 0, tag = 0;
  bool awaited = false;               // a promise waits for it (settled from the event loop)
  bool freed = false;                 // JavaScript let go of it while pending: drop once done
  Napi::Reference<Napi::Value> result; // object receive: the received bytes, once complete
};

// Which collective each rank has entered, per communicator context: a small table shared by
// the ranks of this host (made before the fork), so a timed-out collective names who never came.
struct CollSlot {
  uint32_t ctx;
  uint32_t pad;
  uint64_t seq;
};
constexpr int kSlotBuckets = 16;

// The process's job: created by MPI.init on the main thread before the fork point.
struct Process {
  sf_job* job = nullptr;
  sf_watch* watch = nullptr;  // the origin's watch over its clones (native/proc/watch.c)
  CollSlot* slots = nullptr;
  std::unordered_map<uint32_t, uint64_t> coll_seq;
};
extern Process g_proc;

struct Env {
  bool main = false;  // the main thread's environment: the only one that may reach the job
  Napi::FunctionReference error_factory;
  Napi::FunctionReference on_settled;    // (id) => void, for awaited requests
  Napi::Reference<Napi::Float64Array> status;  // [source, tag, nbytes, dtype, refused]
  double* status_data = nullptr;
  std::unordered_map<uint32_t, Request> reqs;
  uint32_t next_req = 1;
  const char* coll_label = nullptr;
  std::deque<std::string> labels;  // every label ever set (the data plane keeps pointers)
  // Small received messages of blocking calls land here instead of in a fresh Buffer each
  // (setStaging): the call returns their length.
  Napi::Reference<Napi::Value> staging;
  uint8_t* staging_data = nullptr;
  size_t staging_len = 0;
  // Event-loop wake-ups while requests are awaited (requests.cc).
  uv_poll_t* wake_poll = nullptr;
  uv_prepare_t* prepare = nullptr;
  int awaited = 0;
  napi_env napi = nullptr;
};

Env* GetEnv(Napi::Env env);

// The job for a call from JavaScript, or nullptr with an MPIError thrown (not the main thread,
// or no job yet).
sf_job* RequireJob(Napi::Env env, const char* what);

// Errors (errors.cc): MPIError(code, message, rank, ranks) through the factory errors.ts gave.
Napi::Value ThrowMPI(Napi::Env env, const char* code, const std::string& message, int rank = -1,
                     const std::vector<int>* ranks = nullptr);
// From a data-plane code: the class from sf_error_class, the message from sf_last_error.
Napi::Value ThrowRc(Napi::Env env, int rc, const std::string& what);
// The world rank a failure is about: the aborting rank, or the first dead peer.
int FailedRank(int rc);

inline int Int(const Napi::CallbackInfo& info, size_t i) { return info[i].As<Napi::Number>().Int32Value(); }
inline uint32_t U32(const Napi::CallbackInfo& info, size_t i) { return info[i].As<Napi::Number>().Uint32Value(); }

// Bytes of a typed-array argument (null/undefined: none). The data pointer already includes the
// view's byte offset. False with a TypeError thrown for anything else.
bool Bytes(const Napi::CallbackInfo& info, size_t i, uint8_t** ptr, size_t* len);

// Sets the shared status array. `refused`: 0, or why a receive refused its message (kTruncated,
// kTypeMismatch): the TypeScript layer words that error, in the communicator's ranks.
constexpr int kTruncated = 1, kTypeMismatch = 2;
void SetStatus(Env* e, int source, int tag, size_t nbytes, int dtype, int refused = 0);

// The status of a completed receive into the status array (refused messages included).
void SetRecvStatus(Env* e, const sf_status& st, int expect);

// Function tables of the parts (p2p.cc, requests.cc, coll.cc).
struct Fn {
  const char* name;
  Napi::Value (*fn)(const Napi::CallbackInfo&);
};
extern const std::vector<Fn> kP2pFns, kRequestFns, kCollFns;

// Received bytes (malloc'd by the data plane) as a Buffer that owns them (p2p.cc).
Napi::Value WrapReceived(Napi::Env env, uint8_t* data, size_t n);
// For blocking calls: copied into the staging buffer when they fit (returns their length as a
// number, and frees data), else as WrapReceived.
Napi::Value WrapBlocking(Napi::Env env, uint8_t* data, size_t n);

// The value of a completed receive of any type and size (sf_irecv_alloc): null from PROC_NULL; a
// typed message as a typed array of its element type over its own ArrayBuffer; an object
// message's encoded bytes as WrapBlocking (blocking calls) or WrapReceived. Throws (and returns
// undefined) for a typed message that is no whole number of its elements.
Napi::Value TakeReceived(Napi::Env env, sf_req* q, bool blocking);

// Requests: drop everything (job destroyed).
void DropRequests(Env* e);

}  // namespace sf::mpi
