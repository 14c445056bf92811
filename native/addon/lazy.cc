// exports.lazy: the memory server and lazy regions of native/lazy (sf_lazy.h) for JavaScript.
// Typed and documented in xen/lazy.ts; this file checks arguments and turns failures into
// exceptions whose message says what failed (the C layer writes that line).
//
//   available() -> { ok, reason }
//   useDevice(fd)
//   zeroMap(view) -> Uint8Array
//   serverStart([{ id, view }], { zeroMaps }) -> server handle (an object, below)
//   serverPid(h), serverGive(h, fd), serverCounters(h), serverZeroMap(h, index, timeoutMs),
//   serverAlive(h) -> { alive, code, signal }, serverStop(h, timeoutMs) -> { code, signal }
//   map({ id, length, pageSize, zeroMap?, fd, server, timeoutMs?, readAhead?, check? })
//     -> ArrayBuffer over the region (external: unmapped when collected, or by close)
//   hint(buffer, byteOffset, byteLength) -> pages avoided
//   counters(buffer), close(buffer), install(id, firstPage, data) -> pages installed
//   workingSet() -> Uint8Array, prefetch(list) -> pages queued, prefetchPending() -> pages
//   receive({ group, port, iface, key, job, session, regions: [{ id, pages }], reportAddr?,
//             reportPort?, waitMs }) -> this seed's multicast receiver (one per process, it
//             installs with sf_lazy_install; one per state), receiverStats(i) -> the i-th
//             one's counters or null
#include "addon.h"

extern "C" {
#include "sf_lazy.h"
#include "sf_mcast.h"
}

#include <cerrno>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include <sys/wait.h>

namespace sf {
namespace {

std::string ErrText(const char* err, int rc) {
  return err[0] ? std::string(err) : std::string(strerror(-rc));
}

Napi::Value ThrowRc(Napi::Env env, const std::string& what, const char* err, int rc) {
  Napi::Error e = Napi::Error::New(env, what.empty() ? ErrText(err, rc) : what + ": " + ErrText(err, rc));
  const char* name = strerrorname_np(-rc);
  e.Set("code", Napi::String::New(env, name ? name : "EUNKNOWN"));
  e.Set("errno", Napi::Number::New(env, -rc));
  e.ThrowAsJavaScriptException();
  return env.Undefined();
}

// The bytes of an ArrayBuffer or a view; false (and a TypeError thrown) for anything else.
bool BytesOf(const Napi::Value& v, const char* what, uint8_t** data, size_t* len) {
  if (v.IsArrayBuffer()) {
    Napi::ArrayBuffer b = v.As<Napi::ArrayBuffer>();
    *data = static_cast<uint8_t*>(b.Data());
    *len = b.ByteLength();
    return true;
  }
  if (v.IsTypedArray()) {
    Napi::TypedArray t = v.As<Napi::TypedArray>();
    *data = static_cast<uint8_t*>(t.ArrayBuffer().Data()) + t.ByteOffset();
    *len = t.ByteLength();
    return true;
  }
  if (v.IsDataView()) {
    Napi::DataView d = v.As<Napi::DataView>();
    *data = static_cast<uint8_t*>(d.ArrayBuffer().Data()) + d.ByteOffset();
    *len = d.ByteLength();
    return true;
  }
  ThrowType(v.Env(), std::string(what) + " must be an ArrayBuffer, a typed array or a DataView");
  return false;
}

bool GetNumber(const Napi::Object& o, const char* key, const char* what, double* out, bool required) {
  if (!o.Has(key) || o.Get(key).IsUndefined()) {
    if (required) ThrowType(o.Env(), std::string(what) + "." + key + " is required");
    return !required;
  }
  Napi::Value v = o.Get(key);
  if (!v.IsNumber()) {
    ThrowType(o.Env(), std::string(what) + "." + key + " must be a number");
    return false;
  }
  *out = v.As<Napi::Number>().DoubleValue();
  return true;
}

bool IsUint(double v, double max) { return v >= 0 && v <= max && v == static_cast<double>(static_cast<uint64_t>(v)); }

// ---- memory server ------------------------------------------------------------------------

struct Server {
  sf_memsrv* s = nullptr;
  int count = 0;
};

void FinalizeServer(Napi::Env, Server* srv) {
  if (srv->s) sf_memsrv_stop(srv->s, 200, nullptr);  // forgotten without stop: end it anyway
  delete srv;
}

Server* GetServer(const Napi::CallbackInfo& info, const char* what) {
  if (info.Length() < 1 || !info[0].IsExternal()) {
    ThrowType(info.Env(), std::string(what) + ": not a memory server handle");
    return nullptr;
  }
  Server* srv = info[0].As<Napi::External<Server>>().Data();
  if (srv->s == nullptr) {
    ThrowError(info.Env(), std::string(what) + ": the memory server was stopped");
    return nullptr;
  }
  return srv;
}

Napi::Value ServerStart(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsArray())
    return ThrowType(env, "startMemoryServer(ranges): ranges must be an array of { id, view }");
  Napi::Array list = info[0].As<Napi::Array>();
  std::vector<sf_memsrv_range> ranges;
  for (uint32_t i = 0; i < list.Length(); i++) {
    std::string what = "startMemoryServer: ranges[" + std::to_string(i) + "]";
    if (!list.Get(i).IsObject()) return ThrowType(env, what + " must be an object { id, view }");
    Napi::Object o = list.Get(i).As<Napi::Object>();
    double id = 0;
    if (!GetNumber(o, "id", what.c_str(), &id, true)) return env.Undefined();
    if (!IsUint(id, 4294967295.0)) return ThrowRange(env, what + ".id must be an integer from 0 to 2^32-1");
    uint8_t* data = nullptr;
    size_t len = 0;
    if (!BytesOf(o.Get("view"), (what + ".view").c_str(), &data, &len)) return env.Undefined();
    if (len == 0) return ThrowRange(env, what + ".view is empty");
    ranges.push_back({static_cast<uint32_t>(id), data, len});
  }
  sf_memsrv_options opts = {};
  opts.zero_maps = 1;
  opts.connections_from = -1;
  if (info.Length() > 1 && info[1].IsObject()) {
    Napi::Object o = info[1].As<Napi::Object>();
    if (o.Has("zeroMaps")) opts.zero_maps = o.Get("zeroMaps").ToBoolean() ? 1 : 0;
    if (o.Has("connectionsFrom") && o.Get("connectionsFrom").IsNumber()) opts.connections_from = o.Get("connectionsFrom").As<Napi::Number>().Int32Value();
  }
  char err[400] = "";
  sf_memsrv* s = nullptr;
  int rc = sf_memsrv_start(ranges.data(), static_cast<int>(ranges.size()), &opts, &s, err, sizeof err);
  if (rc < 0) return ThrowRc(env, "", err, rc);
  auto* srv = new Server{s, static_cast<int>(ranges.size())};
  return Napi::External<Server>::New(env, srv, FinalizeServer);
}

Napi::Value ServerPid(const Napi::CallbackInfo& info) {
  Server* srv = GetServer(info, "memory server pid");
  if (!srv) return info.Env().Undefined();
  return Napi::Number::New(info.Env(), sf_memsrv_pid(srv->s));
}

Napi::Value ServerGive(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Server* srv = GetServer(info, "MemoryServer.addConnection");
  if (!srv) return env.Undefined();
  if (info.Length() < 2 || !info[1].IsNumber()) return ThrowType(env, "MemoryServer.addConnection(fd): fd must be a number");
  char err[300] = "";
  int rc = sf_memsrv_give(srv->s, info[1].As<Napi::Number>().Int32Value(), err, sizeof err);
  if (rc < 0) return ThrowRc(env, "", err, rc);
  return env.Undefined();
}

Napi::Value ServerCounters(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Server* srv = GetServer(info, "MemoryServer.counters");
  if (!srv) return env.Undefined();
  sf_memsrv_counters c;
  std::vector<sf_memsrv_region_counters> r(static_cast<size_t>(srv->count));
  int n = sf_memsrv_counters_get(srv->s, &c, r.data(), srv->count);
  Napi::Object o = Napi::Object::New(env);
  o.Set("connections", static_cast<double>(c.connections));
  o.Set("open", static_cast<double>(c.open));
  o.Set("malformed", static_cast<double>(c.malformed));
  o.Set("failed", static_cast<double>(c.failed));
  o.Set("requests", static_cast<double>(c.requests));
  Napi::Array regions = Napi::Array::New(env, static_cast<size_t>(n));
  for (int i = 0; i < n; i++) {
    Napi::Object x = Napi::Object::New(env);
    x.Set("id", r[i].id);
    x.Set("length", static_cast<double>(r[i].length));
    x.Set("requests", static_cast<double>(r[i].requests));
    x.Set("pages", static_cast<double>(r[i].pages));
    x.Set("sent", static_cast<double>(r[i].sent));
    x.Set("zeroPages", static_cast<double>(r[i].zero_pages));
    x.Set("bytes", static_cast<double>(r[i].bytes));
    x.Set("multicast", static_cast<double>(r[i].multicast));
    x.Set("deferred", static_cast<double>(r[i].deferred));
    regions.Set(static_cast<uint32_t>(i), x);
  }
  o.Set("regions", regions);
  sf_memsrv_mcast_counters m;
  sf_memsrv_mcast_get(srv->s, &m);
  Napi::Object mc = Napi::Object::New(env);
  mc.Set("state", m.state == SF_MEMSRV_MCAST_ON ? "on" : m.state == SF_MEMSRV_MCAST_FAILED ? "failed" : "off");
  mc.Set("datagrams", static_cast<double>(m.datagrams));
  mc.Set("wireBytes", static_cast<double>(m.wire_bytes));
  mc.Set("pages", static_cast<double>(m.pages));
  mc.Set("suppressed", static_cast<double>(m.suppressed));
  mc.Set("cuts", static_cast<double>(m.cuts));
  mc.Set("reports", static_cast<double>(m.reports));
  mc.Set("rate", m.rate);
  mc.Set("error", m.error);
  o.Set("multicast", mc);
  return o;
}

Napi::Value ServerZeroMap(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Server* srv = GetServer(info, "MemoryServer.zeroMap");
  if (!srv) return env.Undefined();
  if (info.Length() < 2 || !info[1].IsNumber()) return ThrowType(env, "MemoryServer.zeroMap(index): index must be a number");
  int index = info[1].As<Napi::Number>().Int32Value();
  int timeout = info.Length() > 2 && info[2].IsNumber() ? info[2].As<Napi::Number>().Int32Value() : -1;
  const uint8_t* bits = nullptr;
  uint64_t bytes = 0;
  char err[400] = "";
  int rc = sf_memsrv_zero_map(srv->s, index, timeout, &bits, &bytes, err, sizeof err);
  if (rc < 0) return ThrowRc(env, "", err, rc);
  Napi::Uint8Array out = Napi::Uint8Array::New(env, static_cast<size_t>(bytes));
  memcpy(out.Data(), bits, static_cast<size_t>(bytes));
  return out;
}

Napi::Object ExitOf(Napi::Env env, int status) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("code", WIFEXITED(status) ? Napi::Value(Napi::Number::New(env, WEXITSTATUS(status))) : env.Null());
  o.Set("signal", WIFSIGNALED(status) ? Napi::Value(Napi::Number::New(env, WTERMSIG(status))) : env.Null());
  return o;
}

Napi::Value ServerAlive(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Server* srv = GetServer(info, "MemoryServer.alive");
  if (!srv) return env.Undefined();
  int status = 0;
  bool alive = sf_memsrv_alive(srv->s, &status) != 0;
  Napi::Object o = alive ? Napi::Object::New(env) : ExitOf(env, status);
  o.Set("alive", alive);
  return o;
}

Napi::Value ServerStop(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Server* srv = GetServer(info, "MemoryServer.close");
  if (!srv) return env.Undefined();
  int timeout = info.Length() > 1 && info[1].IsNumber() ? info[1].As<Napi::Number>().Int32Value() : 2000;
  int status = 0;
  sf_memsrv_stop(srv->s, timeout, &status);
  srv->s = nullptr;
  return ExitOf(env, status);
}

// ---- lazy regions -------------------------------------------------------------------------

// A mapped region as JavaScript holds it; keyed by its first byte, which is the ArrayBuffer's.
struct Lazy {
  sf_lazy_region* r;
  bool closed = false;
};
std::mutex lazy_mu;
std::map<void*, Lazy*> lazies;

void FinalizeLazy(Napi::Env, void* data, Lazy* lz) {
  {
    std::lock_guard<std::mutex> l(lazy_mu);
    auto it = lazies.find(data);
    if (it != lazies.end() && it->second == lz) lazies.erase(it);
  }
  if (!lz->closed) sf_lazy_unmap(lz->r);
  delete lz;
}

Lazy* GetLazy(const Napi::CallbackInfo& info, const char* what) {
  if (info.Length() < 1 || !info[0].IsArrayBuffer()) {
    ThrowType(info.Env(), std::string(what) + ": not a lazy region's ArrayBuffer");
    return nullptr;
  }
  void* data = info[0].As<Napi::ArrayBuffer>().Data();
  std::lock_guard<std::mutex> l(lazy_mu);
  auto it = data ? lazies.find(data) : lazies.end();
  if (it == lazies.end() || it->second->closed) {
    ThrowError(info.Env(), std::string(what) + (data ? ": not a lazy region (or it was closed)" : ": the lazy region was closed"));
    return nullptr;
  }
  return it->second;
}

Napi::Value Available(const Napi::CallbackInfo& info) {
  char reason[400] = "";
  int ok = sf_lazy_available(reason, sizeof reason);
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("ok", ok != 0);
  o.Set("reason", reason);
  return o;
}

Napi::Value UseDevice(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) return ThrowType(env, "useUserfaultfdDevice(fd): fd must be a number");
  char err[300] = "";
  int rc = sf_lazy_use_device(info[0].As<Napi::Number>().Int32Value(), err, sizeof err);
  if (rc < 0) return ThrowRc(env, "", err, rc);
  return env.Undefined();
}

Napi::Value ZeroMap(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint8_t* data = nullptr;
  size_t len = 0;
  if (info.Length() < 1 || !BytesOf(info[0], "zeroMap(view): view", &data, &len)) return env.Undefined();
  if (len == 0) return ThrowRange(env, "zeroMap(view): view is empty");
  uint32_t ps = static_cast<uint32_t>(sysconf(_SC_PAGESIZE));
  Napi::Uint8Array out = Napi::Uint8Array::New(env, static_cast<size_t>(sf_zero_map_bytes(len, ps)));
  char err[300] = "";
  int64_t rc = sf_zero_map(data, len, ps, out.Data(), err, sizeof err);
  if (rc < 0) return ThrowRc(env, "", err, static_cast<int>(rc));
  return out;
}

Napi::Value Map(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* what = "mapLazyRegion(spec): spec";
  if (info.Length() < 1 || !info[0].IsObject()) return ThrowType(env, "mapLazyRegion(spec): spec must be an object");
  Napi::Object o = info[0].As<Napi::Object>();
  double id = 0, length = 0, page = 0, fd = 0, timeout = 0, ra = 0;
  if (!GetNumber(o, "id", what, &id, true) || !GetNumber(o, "length", what, &length, true) ||
      !GetNumber(o, "pageSize", what, &page, true) || !GetNumber(o, "fd", what, &fd, true) ||
      !GetNumber(o, "timeoutMs", what, &timeout, false) || !GetNumber(o, "readAhead", what, &ra, false))
    return env.Undefined();
  if (!IsUint(id, 4294967295.0)) return ThrowRange(env, "mapLazyRegion: spec.id must be an integer from 0 to 2^32-1");
  if (!IsUint(length, 9007199254740991.0) || length < 1) return ThrowRange(env, "mapLazyRegion: spec.length must be a positive integer");
  if (!IsUint(page, 1 << 30)) return ThrowRange(env, "mapLazyRegion: spec.pageSize must be a positive integer");
  if (!IsUint(fd, 1 << 30)) return ThrowRange(env, "mapLazyRegion: spec.fd must be a file descriptor");
  if (!IsUint(timeout, 3600e3)) return ThrowRange(env, "mapLazyRegion: spec.timeoutMs must be 0 to 3600000 ms");
  if (!IsUint(ra, SF_LAZY_MAX_BATCH))
    return ThrowRange(env, "mapLazyRegion: spec.readAhead must be 0 to " + std::to_string(SF_LAZY_MAX_BATCH) + " pages");
  std::string server = o.Has("server") && o.Get("server").IsString() ? o.Get("server").As<Napi::String>().Utf8Value() : "";
  sf_lazy_spec spec = {};
  spec.id = static_cast<uint32_t>(id);
  spec.length = static_cast<uint64_t>(length);
  spec.page_size = static_cast<uint32_t>(page);
  spec.fd = static_cast<int>(fd);
  spec.server = server.c_str();
  spec.timeout_ms = static_cast<int>(timeout);
  spec.readahead = static_cast<uint32_t>(ra);
  spec.check = o.Has("check") && o.Get("check").ToBoolean();
  if (o.Has("zeroMap") && !o.Get("zeroMap").IsUndefined() && !o.Get("zeroMap").IsNull()) {
    uint8_t* zm = nullptr;
    size_t zl = 0;
    if (!BytesOf(o.Get("zeroMap"), "mapLazyRegion: spec.zeroMap", &zm, &zl)) return env.Undefined();
    spec.zero_map = zm;
    spec.zero_map_bytes = zl;
  }
  char err[400] = "";
  sf_lazy_region* r = nullptr;
  int rc = sf_lazy_map(&spec, &r, err, sizeof err);
  if (rc < 0) return ThrowRc(env, "", err, rc);
  auto* lz = new Lazy{r};
  void* base = sf_lazy_base(r);
  {
    std::lock_guard<std::mutex> l(lazy_mu);
    lazies[base] = lz;
  }
  return Napi::ArrayBuffer::New(env, base, static_cast<size_t>(sf_lazy_length(r)), FinalizeLazy, lz);
}

Napi::Value Hint(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Lazy* lz = GetLazy(info, "LazyRegion.hintOverwrite");
  if (!lz) return env.Undefined();
  if (info.Length() < 3 || !info[1].IsNumber() || !info[2].IsNumber())
    return ThrowType(env, "LazyRegion.hintOverwrite(offset, length): both must be numbers");
  double off = info[1].As<Napi::Number>().DoubleValue(), len = info[2].As<Napi::Number>().DoubleValue();
  double size = static_cast<double>(sf_lazy_length(lz->r));
  if (!IsUint(off, size) || !IsUint(len, size) || off + len > size)
    return ThrowRange(env, "LazyRegion.hintOverwrite: bytes " + std::to_string(static_cast<uint64_t>(off)) + "+" +
                               std::to_string(static_cast<uint64_t>(len)) + " lie outside the region's " +
                               std::to_string(static_cast<uint64_t>(size)));
  char* base = static_cast<char*>(sf_lazy_base(lz->r));
  int64_t n = sf_lazy_hint_overwrite(lz->r, base + static_cast<size_t>(off), static_cast<size_t>(len));
  if (n < 0) {
    char none[1] = "";
    return ThrowRc(env, "LazyRegion.hintOverwrite", none, static_cast<int>(n));
  }
  return Napi::Number::New(env, static_cast<double>(n));
}

Napi::Value Counters(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Lazy* lz = GetLazy(info, "LazyRegion.counters");
  if (!lz) return env.Undefined();
  sf_lazy_counters c;
  sf_lazy_counters_get(lz->r, &c);
  Napi::Object o = Napi::Object::New(env);
  o.Set("pages", static_cast<double>(c.pages));
  o.Set("faults", static_cast<double>(c.faults));
  o.Set("fetched", static_cast<double>(c.fetched));
  o.Set("prefetched", static_cast<double>(c.prefetched));
  o.Set("zeroFilled", static_cast<double>(c.zero_filled));
  o.Set("avoided", static_cast<double>(c.avoided));
  o.Set("multicast", static_cast<double>(c.multicast));
  o.Set("requests", static_cast<double>(c.requests));
  o.Set("bytes", static_cast<double>(c.bytes));
  o.Set("fetchMs", static_cast<double>(c.fetch_ns) / 1e6);
  o.Set("cloneFaults", static_cast<double>(c.clone_faults));
  o.Set("clones", static_cast<double>(c.clones));
  o.Set("cached", static_cast<double>(c.cached));
  o.Set("awaited", static_cast<double>(c.awaited));
  o.Set("late", static_cast<double>(c.late));
  return o;
}

Napi::Value Close(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsArrayBuffer()) return ThrowType(env, "LazyRegion.close: not a lazy region's ArrayBuffer");
  Napi::ArrayBuffer buf = info[0].As<Napi::ArrayBuffer>();
  void* data = buf.Data();
  Lazy* lz = nullptr;
  {
    std::lock_guard<std::mutex> l(lazy_mu);
    auto it = data ? lazies.find(data) : lazies.end();
    if (it != lazies.end() && !it->second->closed) lz = it->second;
  }
  if (lz == nullptr) return env.Undefined();  // closed already: idempotent
  // Unmapped, then detached before any JavaScript runs again, so that no view reaches the
  // memory; in this order because detaching may run the finalizer (which frees lz) at once.
  lz->closed = true;
  sf_lazy_unmap(lz->r);
  if (napi_detach_arraybuffer(env, buf) != napi_ok) return ThrowError(env, "LazyRegion.close: the ArrayBuffer cannot be detached");
  return env.Undefined();
}

Napi::Value Install(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 3 || !info[0].IsNumber() || !info[1].IsNumber())
    return ThrowType(env, "installPages(id, firstPage, data): id and firstPage must be numbers");
  uint8_t* data = nullptr;
  size_t len = 0;
  if (!BytesOf(info[2], "installPages: data", &data, &len)) return env.Undefined();
  size_t ps = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  if (len == 0 || len % ps != 0)
    return ThrowRange(env, "installPages: data must be whole pages of " + std::to_string(ps) + " bytes, got " + std::to_string(len));
  double id = info[0].As<Napi::Number>().DoubleValue(), first = info[1].As<Napi::Number>().DoubleValue();
  if (!IsUint(id, 4294967295.0) || !IsUint(first, 9007199254740991.0)) return ThrowRange(env, "installPages: bad id or firstPage");
  int64_t n = sf_lazy_install(static_cast<uint32_t>(id), static_cast<uint64_t>(first), static_cast<uint32_t>(len / ps), data);
  if (n == -EEXIST) return Napi::Number::New(env, 0);
  if (n < 0) {
    std::string why = n == -ENOENT ? "region " + std::to_string(static_cast<uint64_t>(id)) + " is not mapped here"
                    : n == -ERANGE ? "pages beyond the region"
                                   : std::string(strerror(static_cast<int>(-n)));
    return ThrowError(env, "installPages: " + why);
  }
  return Napi::Number::New(env, static_cast<double>(n));
}

Napi::Value WorkingSet(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t n = sf_lazy_working_set(nullptr, 0);
  for (;;) {
    Napi::Uint8Array out = Napi::Uint8Array::New(env, static_cast<size_t>(n));
    int64_t m = sf_lazy_working_set(out.Data(), static_cast<size_t>(n));
    if (m <= n) return m == n ? out : Napi::Uint8Array::New(env, static_cast<size_t>(m), out.ArrayBuffer(), 0);
    n = m;  // it grew meanwhile
  }
}

Napi::Value Prefetch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint8_t* data = nullptr;
  size_t len = 0;
  if (info.Length() < 1 || !BytesOf(info[0], "prefetch(list): list", &data, &len)) return env.Undefined();
  char err[400] = "";
  int64_t n = sf_lazy_prefetch(data, len, err, sizeof err);
  if (n < 0) return ThrowRc(env, "", err, static_cast<int>(n));
  return Napi::Number::New(env, static_cast<double>(n));
}

Napi::Value PrefetchPending(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(sf_lazy_prefetch_pending()));
}

// ---- the seed's multicast receiver

// sf_mcast_receiver's install contract: pages installed (0..count), < 0 stops the receiver.
// sf_lazy_install says -EEXIST when every page was there already (a duplicate: 0 here) and
// -ENOENT for a region unmapped meanwhile (nothing to install into: 0 as well).
int McastInstall(void*, uint32_t region, uint32_t first, uint32_t count, const void* data) {
  int64_t n = sf_lazy_install(region, first, count, data);
  if (n == -EEXIST || n == -ENOENT) return 0;
  return static_cast<int>(n);
}

int McastPresent(void*, uint32_t region, uint32_t page) { return sf_lazy_present(region, page); }

// One receiver per state (each has its own session and key), for the process's life.
std::mutex rx_mu;
std::vector<sf_mcast_receiver*> rxs;
pid_t rx_pid = 0;

bool GetStr(Napi::Object o, const char* k, std::string* out) {
  Napi::Value v = o.Get(k);
  if (!v.IsString()) return ThrowType(o.Env(), std::string("receive(options): ") + k + " must be a string"), false;
  *out = v.As<Napi::String>().Utf8Value();
  return true;
}

bool GetNum(Napi::Object o, const char* k, double max, double* out, bool optional = false) {
  Napi::Value v = o.Get(k);
  if (optional && v.IsUndefined()) return true;
  if (!v.IsNumber() || !IsUint(v.As<Napi::Number>().DoubleValue(), max))
    return ThrowRange(o.Env(), std::string("receive(options): ") + k + " must be an integer 0.." + std::to_string(static_cast<uint64_t>(max))), false;
  *out = v.As<Napi::Number>().DoubleValue();
  return true;
}

Napi::Value Receive(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject()) return ThrowType(env, "receive(options): options must be an object");
  Napi::Object o = info[0].As<Napi::Object>();
  std::string group, iface, report;
  double port = 0, session = 0, wait = 0, rport = 0;
  if (!GetStr(o, "group", &group) || !GetStr(o, "iface", &iface) || !GetNum(o, "port", 65535, &port) ||
      !GetNum(o, "session", 4294967295.0, &session) || !GetNum(o, "waitMs", 10000, &wait) ||
      !GetNum(o, "reportPort", 65535, &rport, true))
    return env.Undefined();
  if (o.Get("reportAddr").IsString()) report = o.Get("reportAddr").As<Napi::String>().Utf8Value();
  sf_mcast_receiver_opts ro;
  memset(&ro, 0, sizeof ro);
  Napi::Value k = o.Get("key"), j = o.Get("job"), rl = o.Get("regions");
  if (!k.IsBuffer() || k.As<Napi::Buffer<uint8_t>>().Length() != SF_MCAST_KEY_BYTES)
    return ThrowType(env, "receive(options): key must be a 32-byte Buffer");
  memcpy(ro.key, k.As<Napi::Buffer<uint8_t>>().Data(), SF_MCAST_KEY_BYTES);
  bool lossless = false;
  if (!j.IsBigInt()) return ThrowType(env, "receive(options): job must be a bigint");
  ro.job = j.As<Napi::BigInt>().Uint64Value(&lossless);
  if (!lossless) return ThrowRange(env, "receive(options): job must fit 64 unsigned bits");
  if (!rl.IsArray()) return ThrowType(env, "receive(options): regions must be an array of { id, pages }");
  Napi::Array ra = rl.As<Napi::Array>();
  std::vector<sf_mcast_region> regions;
  uint32_t ps = static_cast<uint32_t>(sysconf(_SC_PAGESIZE));
  for (uint32_t i = 0; i < ra.Length(); i++) {
    if (!ra.Get(i).IsObject()) return ThrowType(env, "receive(options): regions[" + std::to_string(i) + "] must be { id, pages }");
    Napi::Object x = ra.Get(i).As<Napi::Object>();
    double id = 0, pages = 0;
    if (!GetNum(x, "id", 4294967295.0, &id) || !GetNum(x, "pages", 4294967295.0, &pages)) return env.Undefined();
    regions.push_back({static_cast<uint32_t>(id), static_cast<uint32_t>(pages), ps});
  }
  ro.group = group.c_str();
  ro.port = static_cast<uint16_t>(port);
  ro.iface = iface.c_str();
  ro.session = static_cast<uint32_t>(session);
  ro.regions = regions.data();
  ro.nregions = regions.size();
  ro.report_addr = report.empty() ? nullptr : report.c_str();
  ro.report_port = static_cast<uint16_t>(rport);
  ro.install = McastInstall;
  ro.present = McastPresent;
  std::lock_guard<std::mutex> l(rx_mu);
  if (rx_pid != getpid()) rxs.clear();  // a clone's copies of its seed's: not ours to use
  sf_mcast_receiver* r = nullptr;
  int rc = sf_mcast_receiver_open(&ro, &r);
  if (rc < 0) return ThrowError(env, std::string("multicast receiver: ") + sf_mcast_last_error());
  rxs.push_back(r);
  rx_pid = getpid();
  for (const sf_mcast_region& g : regions) sf_lazy_multicast(g.id, static_cast<int>(wait));
  return env.Undefined();
}

Napi::Value ReceiverStats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::lock_guard<std::mutex> l(rx_mu);
  size_t i = info.Length() > 0 && info[0].IsNumber() ? info[0].As<Napi::Number>().Uint32Value() : 0;
  if (rx_pid != getpid() || i >= rxs.size()) return env.Null();  // none, or a clone's copy of the seed's
  sf_mcast_receiver* rx = rxs[i];
  sf_mcast_receiver_stats st;
  sf_mcast_receiver_stats_get(rx, &st);
  Napi::Object o = Napi::Object::New(env);
  o.Set("datagrams", static_cast<double>(st.datagrams));
  o.Set("accepted", static_cast<double>(st.accepted));
  o.Set("installed", static_cast<double>(st.installed));
  o.Set("duplicates", static_cast<double>(st.duplicates));
  o.Set("dropped", static_cast<double>(st.dropped));
  o.Set("malformed", static_cast<double>(st.malformed));
  o.Set("otherJob", static_cast<double>(st.other_job));
  o.Set("forged", static_cast<double>(st.forged));
  o.Set("otherInterface", static_cast<double>(st.other_if));
  o.Set("overflow", static_cast<double>(st.overflow));
  o.Set("gaps", static_cast<double>(st.gaps));
  o.Set("incomplete", static_cast<double>(st.incomplete));
  o.Set("reports", static_cast<double>(st.reports));
  o.Set("rcvbuf", st.rcvbuf);
  o.Set("error", sf_mcast_receiver_error(rx));
  return o;
}

}  // namespace

Napi::Object InitLazy(Napi::Env env, Napi::Object exports) {
  Napi::Object l = Napi::Object::New(env);
  l.Set("available", Napi::Function::New(env, Available, "available"));
  l.Set("useDevice", Napi::Function::New(env, UseDevice, "useDevice"));
  l.Set("zeroMap", Napi::Function::New(env, ZeroMap, "zeroMap"));
  l.Set("serverStart", Napi::Function::New(env, ServerStart, "serverStart"));
  l.Set("serverPid", Napi::Function::New(env, ServerPid, "serverPid"));
  l.Set("serverGive", Napi::Function::New(env, ServerGive, "serverGive"));
  l.Set("serverCounters", Napi::Function::New(env, ServerCounters, "serverCounters"));
  l.Set("serverZeroMap", Napi::Function::New(env, ServerZeroMap, "serverZeroMap"));
  l.Set("serverAlive", Napi::Function::New(env, ServerAlive, "serverAlive"));
  l.Set("serverStop", Napi::Function::New(env, ServerStop, "serverStop"));
  l.Set("map", Napi::Function::New(env, Map, "map"));
  l.Set("hint", Napi::Function::New(env, Hint, "hint"));
  l.Set("counters", Napi::Function::New(env, Counters, "counters"));
  l.Set("close", Napi::Function::New(env, Close, "close"));
  l.Set("install", Napi::Function::New(env, Install, "install"));
  l.Set("workingSet", Napi::Function::New(env, WorkingSet, "workingSet"));
  l.Set("prefetch", Napi::Function::New(env, Prefetch, "prefetch"));
  l.Set("prefetchPending", Napi::Function::New(env, PrefetchPending, "prefetchPending"));
  l.Set("receive", Napi::Function::New(env, Receive, "receive"));
  l.Set("receiverStats", Napi::Function::New(env, ReceiverStats, "receiverStats"));
  exports.Set("lazy", l);
  return exports;
}

}  // namespace sf
