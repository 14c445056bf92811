// The sfmcast addon: multicast distribution of region pages (native/lazy/multicast.c) for
// TypeScript (xen/mcast.ts). A Sender multicasts pages of regions; a Receiver runs the receiver
// thread over plain ArrayBuffers, each with a page map, so that tests and benchmarks install
// into real memory without the lazy layer (a seed plugs sf_lazy_install into the same C API).
//
// Errors reach JavaScript as exceptions: TypeError for a wrong type, RangeError for a value out
// of range, Error with the C layer's message (and `code`, the SF_MCAST_E* name) for a failure.
// Both classes are closed from an environment cleanup hook, so a worker's or the process's exit
// never leaves a thread or socket behind. A Receiver writes into its ArrayBuffers from its own
// thread: they must stay attached (never transferred) until close().
//
// A separate addon rather than part of sfnative: it links libcrypto (HMAC-SHA256), which the
// rest of the core does not need.

#include <napi.h>

extern "C" {
#include "sf_mcast.h"
}

#include <atomic>
#include <cerrno>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include <time.h>

namespace {

Napi::Value Fail(Napi::Error e) {
  e.ThrowAsJavaScriptException();
  return e.Env().Undefined();
}
Napi::Value ThrowType(Napi::Env env, const std::string& m) { return Fail(Napi::TypeError::New(env, m)); }
Napi::Value ThrowRange(Napi::Env env, const std::string& m) { return Fail(Napi::RangeError::New(env, m)); }

const char* CodeName(long code) {
  switch (code) {
    case SF_MCAST_EINVAL: return "SF_MCAST_EINVAL";
    case SF_MCAST_ENOMEM: return "SF_MCAST_ENOMEM";
    case SF_MCAST_ESYS: return "SF_MCAST_ESYS";
    case SF_MCAST_ECRYPTO: return "SF_MCAST_ECRYPTO";
    case SF_MCAST_ECLOSED: return "SF_MCAST_ECLOSED";
    case SF_MCAST_ETIMEDOUT: return "SF_MCAST_ETIMEDOUT";
    case SF_MCAST_EINSTALL: return "SF_MCAST_EINSTALL";
    default: return "SF_MCAST_E?";
  }
}

Napi::Error McastError(Napi::Env env, long code, const std::string& message) {
  Napi::Error e = Napi::Error::New(env, message);
  e.Set("code", Napi::String::New(env, CodeName(code)));
  return e;
}

Napi::Value ThrowC(Napi::Env env, long code) { return Fail(McastError(env, code, sf_mcast_last_error())); }

// Option readers: each names the option in its message and returns false after throwing.
bool GetString(Napi::Object o, const char* key, std::string* out, bool required = true) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() && !required) return true;
  if (!v.IsString()) {
    ThrowType(o.Env(), std::string("options.") + key + " must be a string");
    return false;
  }
  *out = v.As<Napi::String>().Utf8Value();
  return true;
}

bool GetUint(Napi::Object o, const char* key, double max, double* out, bool required = false) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() && !required) return true;
  if (!v.IsNumber()) {
    ThrowType(o.Env(), std::string("options.") + key + " must be a number");
    return false;
  }
  double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= 0 && d <= max) || d != static_cast<double>(static_cast<uint64_t>(d))) {
    ThrowRange(o.Env(), std::string("options.") + key + " must be an integer 0.." + std::to_string(static_cast<uint64_t>(max)) +
                            ", got " + v.ToString().Utf8Value());
    return false;
  }
  *out = d;
  return true;
}

bool GetKeyJob(Napi::Object o, unsigned char key[SF_MCAST_KEY_BYTES], uint64_t* job, uint32_t* session) {
  Napi::Env env = o.Env();
  Napi::Value k = o.Get("key"), j = o.Get("job");
  if (!k.IsBuffer()) {
    ThrowType(env, "options.key must be a Buffer");
    return false;
  }
  Napi::Buffer<unsigned char> kb = k.As<Napi::Buffer<unsigned char>>();
  if (kb.Length() != SF_MCAST_KEY_BYTES) {
    ThrowRange(env, "options.key must be " + std::to_string(SF_MCAST_KEY_BYTES) + " bytes, got " + std::to_string(kb.Length()));
    return false;
  }
  memcpy(key, kb.Data(), SF_MCAST_KEY_BYTES);
  if (!j.IsBigInt()) {
    ThrowType(env, "options.job must be a bigint");
    return false;
  }
  bool lossless = false;
  *job = j.As<Napi::BigInt>().Uint64Value(&lossless);
  if (!lossless) {
    ThrowRange(env, "options.job must fit 64 unsigned bits");
    return false;
  }
  double s = 0;
  if (!GetUint(o, "session", 4294967295.0, &s)) return false;
  *session = static_cast<uint32_t>(s);
  return true;
}

bool ArgUint(const Napi::CallbackInfo& info, size_t i, const char* what, double max, uint32_t* out) {
  if (info.Length() <= i || !info[i].IsNumber()) {
    ThrowType(info.Env(), std::string(what) + " must be a number");
    return false;
  }
  double d = info[i].As<Napi::Number>().DoubleValue();
  if (!(d >= 0 && d <= max) || d != static_cast<double>(static_cast<uint64_t>(d))) {
    ThrowRange(info.Env(), std::string(what) + " must be an integer 0.." + std::to_string(static_cast<uint64_t>(max)) + ", got " +
                               info[i].ToString().Utf8Value());
    return false;
  }
  *out = static_cast<uint32_t>(d);
  return true;
}

// The bytes of an ArrayBuffer or a view.
bool Bytes(Napi::Value v, const char* what, unsigned char** data, size_t* len) {
  if (v.IsArrayBuffer()) {
    Napi::ArrayBuffer ab = v.As<Napi::ArrayBuffer>();
    *data = static_cast<unsigned char*>(ab.Data());
    *len = ab.ByteLength();
    return true;
  }
  if (v.IsTypedArray() || v.IsDataView()) {
    napi_value ab;
    void* base = nullptr;
    size_t n = 0, off = 0;
    napi_status st;
    if (v.IsTypedArray()) {
      napi_typedarray_type t;
      size_t count = 0;
      st = napi_get_typedarray_info(v.Env(), v, &t, &count, &base, &ab, &off);
      n = v.As<Napi::TypedArray>().ByteLength();
    } else {
      st = napi_get_dataview_info(v.Env(), v, &n, &base, &ab, &off);
    }
    if (st != napi_ok) {
      ThrowType(v.Env(), std::string(what) + ": cannot read the view");
      return false;
    }
    *data = static_cast<unsigned char*>(base);
    *len = n;
    return true;
  }
  ThrowType(v.Env(), std::string(what) + " must be an ArrayBuffer or a view of one");
  return false;
}

Napi::Number Num(Napi::Env env, double v) { return Napi::Number::New(env, v); }

// ------------------------------------------------------------------ Sender

class Sender : public Napi::ObjectWrap<Sender> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "Sender",
                       {InstanceMethod<&Sender::AddRegion>("addRegion"), InstanceMethod<&Sender::Send>("send"),
                        InstanceMethod<&Sender::End>("end"), InstanceMethod<&Sender::Recent>("recent"),
                        InstanceMethod<&Sender::Stats>("stats"), InstanceMethod<&Sender::Close>("close")});
  }

  explicit Sender(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Sender>(info), env_(info.Env()) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsObject()) {
      ThrowType(env, "new Sender(options): options must be an object");
      return;
    }
    Napi::Object o = info[0].As<Napi::Object>();
    sf_mcast_sender_opts so;
    memset(&so, 0, sizeof so);
    std::string group, iface;
    double port = 0, mtu = 0, chunk = 0, rate = 0, min_rate = 0, lockstep = 0, report = 0, sndbuf = 0, timeout = 0;
    if (!GetString(o, "group", &group) || !GetString(o, "iface", &iface) || !GetUint(o, "port", 65535, &port, true) ||
        !GetKeyJob(o, so.key, &so.job, &so.session) || !GetUint(o, "mtu", 65536, &mtu) || !GetUint(o, "chunk", 65427, &chunk) ||
        !GetUint(o, "rate", 1e12, &rate) || !GetUint(o, "minRate", 1e12, &min_rate) ||
        !GetUint(o, "lockstepMs", 4294967295.0, &lockstep) || !GetUint(o, "reportPort", 65535, &report) ||
        !GetUint(o, "sndbuf", 1 << 30, &sndbuf) || !GetUint(o, "timeoutMs", 3600000, &timeout))
      return;
    Napi::Value gso = o.Get("gso"), loop = o.Get("loopback");
    so.gso = gso.IsUndefined() ? -1 : gso.ToBoolean().Value() ? 1 : 0;
    so.loopback = loop.IsUndefined() ? 0 : loop.ToBoolean().Value();
    so.group = group.c_str();
    so.iface = iface.c_str();
    so.port = static_cast<uint16_t>(port);
    so.mtu = static_cast<unsigned>(mtu);
    so.chunk = static_cast<unsigned>(chunk);
    so.rate = rate;
    so.min_rate = min_rate;
    so.lockstep_ms = static_cast<unsigned>(lockstep);
    so.report_port = static_cast<uint16_t>(report);
    so.sndbuf = static_cast<unsigned>(sndbuf);
    so.timeout_ms = static_cast<unsigned>(timeout);
    int rc = sf_mcast_sender_open(&so, &s_);
    memset(so.key, 0, sizeof so.key);
    if (rc < 0) {
      ThrowC(env, rc);
      return;
    }
    napi_add_env_cleanup_hook(env, Cleanup, this);
  }

  ~Sender() override { Shut(true); }

  // Called at the end of every send worker's Execute (on its thread).
  void Done() { inflight_.fetch_sub(1); }
  sf_mcast_sender* handle() const { return s_; }

 private:
  static void Cleanup(void* arg) { static_cast<Sender*>(arg)->Shut(false); }

  // Aborts running sends, waits for their workers to leave the C sender, frees it.
  void Shut(bool unhook) {
    if (s_ == nullptr) return;
    sf_mcast_sender_abort(s_);
    while (inflight_.load() > 0) {
      timespec ts = {0, 1000000};
      nanosleep(&ts, nullptr);
    }
    sf_mcast_sender_close(s_);
    s_ = nullptr;
    if (unhook) napi_remove_env_cleanup_hook(env_, Cleanup, this);
  }

  bool Open(Napi::Env env) {
    if (s_ != nullptr) return true;
    Fail(McastError(env, SF_MCAST_ECLOSED, "multicast sender: closed"));
    return false;
  }

  // addRegion(id, pages, pageSize)
  Napi::Value AddRegion(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    uint32_t id, pages, psz;
    if (!ArgUint(info, 0, "addRegion(id, pages, pageSize): id", 4294967295.0, &id) ||
        !ArgUint(info, 1, "addRegion(id, pages, pageSize): pages", 4294967295.0, &pages) ||
        !ArgUint(info, 2, "addRegion(id, pages, pageSize): pageSize", 4294967295.0, &psz) || !Open(env))
      return env.Undefined();
    int rc = sf_mcast_sender_add_region(s_, id, pages, psz);
    if (rc < 0) return ThrowC(env, rc);
    regions_.push_back({id, psz});
    return env.Undefined();
  }

  // send(region, first, data, force) -> Promise<{ sent, skipped }>; data holds whole pages.
  Napi::Value Send(const Napi::CallbackInfo& info);

  // end(region, first, count): the END mark, three times over 10 ms.
  Napi::Value End(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    uint32_t region, first, count;
    if (!ArgUint(info, 0, "end(region, first, count): region", 4294967295.0, &region) ||
        !ArgUint(info, 1, "end(region, first, count): first", 4294967295.0, &first) ||
        !ArgUint(info, 2, "end(region, first, count): count", 4294967295.0, &count) || !Open(env))
      return env.Undefined();
    int rc = sf_mcast_send_end(s_, region, first, count);
    if (rc < 0) return ThrowC(env, rc);
    return env.Undefined();
  }

  Napi::Value Recent(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    uint32_t region, page;
    if (!ArgUint(info, 0, "recent(region, page): region", 4294967295.0, &region) ||
        !ArgUint(info, 1, "recent(region, page): page", 4294967295.0, &page) || !Open(env))
      return env.Undefined();
    return Napi::Boolean::New(env, sf_mcast_recent(s_, region, page) != 0);
  }

  Napi::Value Stats(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!Open(env)) return env.Undefined();
    sf_mcast_sender_stats st;
    sf_mcast_sender_stats_get(s_, &st);
    Napi::Object o = Napi::Object::New(env);
    o.Set("datagrams", Num(env, st.datagrams));
    o.Set("bytes", Num(env, st.bytes));
    o.Set("wireBytes", Num(env, st.wire_bytes));
    o.Set("pages", Num(env, st.pages));
    o.Set("suppressed", Num(env, st.suppressed));
    o.Set("calls", Num(env, st.calls));
    o.Set("retries", Num(env, st.retries));
    o.Set("reports", Num(env, st.reports));
    o.Set("badReports", Num(env, st.bad_reports));
    o.Set("cuts", Num(env, st.cuts));
    o.Set("rate", Num(env, st.rate));
    o.Set("chunk", Num(env, st.chunk));
    o.Set("mtu", Num(env, st.mtu));
    o.Set("gso", Napi::Boolean::New(env, st.gso != 0));
    return o;
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    Shut(true);
    return info.Env().Undefined();
  }

  friend class SendWorker;
  napi_env env_;
  sf_mcast_sender* s_ = nullptr;
  std::atomic<int> inflight_{0};
  std::vector<std::pair<uint32_t, uint32_t>> regions_;  // (id, page size), to count a send's pages
};

class SendWorker : public Napi::AsyncWorker {
 public:
  SendWorker(Napi::Env env, Sender* sender, Napi::Object self, Napi::Value data, uint32_t region, uint32_t first,
             uint32_t count, const unsigned char* bytes, unsigned flags)
      : Napi::AsyncWorker(env, "sfmcast.send"),
        deferred_(Napi::Promise::Deferred::New(env)),
        sender_(sender),
        region_(region),
        first_(first),
        count_(count),
        bytes_(bytes),
        flags_(flags),
        skipped_(count) {
    self_ = Napi::Persistent(self);
    data_ = Napi::Persistent(data.As<Napi::Object>());
  }

  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override {
    long n = sf_mcast_send(sender_->handle(), region_, first_, count_, bytes_, flags_, skipped_.data());
    if (n < 0) {
      code_ = n;
      SetError(sf_mcast_last_error());
    } else {
      sent_ = n;
    }
    sender_->Done();
  }

  void OnOK() override {
    Napi::Env env = Env();
    Napi::Object o = Napi::Object::New(env);
    uint32_t skipped = 0;
    for (unsigned char c : skipped_) skipped += c;
    o.Set("sent", Num(env, static_cast<double>(sent_)));
    o.Set("skipped", Num(env, skipped));
    deferred_.Resolve(o);
  }

  void OnError(const Napi::Error& e) override { deferred_.Reject(McastError(Env(), code_, e.Message()).Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  Sender* sender_;
  Napi::ObjectReference self_, data_;
  uint32_t region_, first_, count_;
  const unsigned char* bytes_;
  unsigned flags_;
  std::vector<unsigned char> skipped_;
  long sent_ = 0, code_ = SF_MCAST_EINVAL;
};

Napi::Value Sender::Send(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t region, first;
  unsigned char* bytes = nullptr;
  size_t len = 0;
  if (!ArgUint(info, 0, "send(region, first, data): region", 4294967295.0, &region) ||
      !ArgUint(info, 1, "send(region, first, data): first", 4294967295.0, &first) ||
      !Bytes(info[2], "send(region, first, data): data", &bytes, &len) || !Open(env))
    return env.Undefined();
  bool force = info.Length() > 3 && info[3].ToBoolean().Value();
  uint32_t psz = 0;
  for (auto& r : regions_)
    if (r.first == region) psz = r.second;
  if (psz == 0) return ThrowRange(env, "send: region " + std::to_string(region) + " was not added (addRegion)");
  if (len == 0 || len % psz != 0 || len / psz > 0xffffffffu)
    return ThrowRange(env, "send: data must be a whole number of " + std::to_string(psz) + "-byte pages, got " +
                               std::to_string(len) + " bytes");
  uint32_t count = static_cast<uint32_t>(len / psz);
  inflight_.fetch_add(1);
  auto* w = new SendWorker(env, this, Value(), info[2], region, first, count, bytes, force ? SF_MCAST_FORCE : 0);
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

// ------------------------------------------------------------------ Receiver

// The install target: ArrayBuffers with a page map each, filled where still missing.
struct Target {
  struct Region {
    uint32_t id, psz, npages;
    unsigned char* base;
    std::vector<unsigned char> have;
  };
  std::mutex lock;
  std::vector<Region> regions;

  Region* find(uint32_t id) {
    for (auto& r : regions)
      if (r.id == id) return &r;
    return nullptr;
  }

  static int Install(void* ctx, uint32_t region, uint32_t first, uint32_t count, const void* data) {
    Target* t = static_cast<Target*>(ctx);
    std::lock_guard<std::mutex> g(t->lock);
    Region* r = t->find(region);
    if (r == nullptr || static_cast<uint64_t>(first) + count > r->npages) return -1;
    int k = 0;
    for (uint32_t i = 0; i < count; i++) {
      if (r->have[first + i]) continue;
      memcpy(r->base + static_cast<size_t>(first + i) * r->psz, static_cast<const unsigned char*>(data) + static_cast<size_t>(i) * r->psz,
             r->psz);
      r->have[first + i] = 1;
      k++;
    }
    return k;
  }

  static int Present(void* ctx, uint32_t region, uint32_t page) {
    Target* t = static_cast<Target*>(ctx);
    std::lock_guard<std::mutex> g(t->lock);
    Region* r = t->find(region);
    return r != nullptr && page < r->npages && r->have[page];
  }
};

class Receiver : public Napi::ObjectWrap<Receiver> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "Receiver",
                       {InstanceMethod<&Receiver::Stats>("stats"), InstanceMethod<&Receiver::Missing>("missing"),
                        InstanceMethod<&Receiver::Install>("install"), InstanceMethod<&Receiver::LastEnd>("lastEnd"),
                        InstanceMethod<&Receiver::Present>("present"), InstanceMethod<&Receiver::Close>("close")});
  }

  explicit Receiver(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Receiver>(info), env_(info.Env()) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsObject()) {
      ThrowType(env, "new Receiver(options): options must be an object");
      return;
    }
    Napi::Object o = info[0].As<Napi::Object>();
    sf_mcast_receiver_opts ro;
    memset(&ro, 0, sizeof ro);
    std::string group, iface, report_addr;
    double port = 0, rcvbuf = 0, report_port = 0;
    if (!GetString(o, "group", &group) || !GetString(o, "iface", &iface) || !GetUint(o, "port", 65535, &port, true) ||
        !GetKeyJob(o, ro.key, &ro.job, &ro.session) || !GetUint(o, "rcvbuf", 1 << 30, &rcvbuf) ||
        !GetString(o, "reportAddr", &report_addr, false) || !GetUint(o, "reportPort", 65535, &report_port))
      return;
    Napi::Value rv = o.Get("regions");
    if (!rv.IsArray() || rv.As<Napi::Array>().Length() == 0) {
      ThrowType(env, "options.regions must be a non-empty array of { id, pageSize, buffer }");
      return;
    }
    Napi::Array ra = rv.As<Napi::Array>();
    std::vector<sf_mcast_region> regions;
    target_ = std::make_unique<Target>();
    for (uint32_t i = 0; i < ra.Length(); i++) {
      Napi::Value e = ra.Get(i);
      std::string at = "options.regions[" + std::to_string(i) + "]";
      if (!e.IsObject()) {
        ThrowType(env, at + " must be an object");
        return;
      }
      Napi::Object g = e.As<Napi::Object>();
      double id = 0, psz = 0;
      if (!GetUint(g, "id", 4294967295.0, &id, true) || !GetUint(g, "pageSize", 1u << 21, &psz, true)) return;
      Napi::Value b = g.Get("buffer");
      if (!b.IsArrayBuffer()) {
        ThrowType(env, at + ".buffer must be an ArrayBuffer");
        return;
      }
      Napi::ArrayBuffer ab = b.As<Napi::ArrayBuffer>();
      size_t bytes = ab.ByteLength();
      uint32_t p = static_cast<uint32_t>(psz);
      if (p == 0 || (p & (p - 1)) != 0 || bytes == 0 || bytes % p != 0 || bytes / p > 0xffffffffu) {
        ThrowRange(env, at + ".buffer must be a whole, non-zero number of " + std::to_string(p) + "-byte pages, got " +
                            std::to_string(bytes) + " bytes");
        return;
      }
      Target::Region tr;
      tr.id = static_cast<uint32_t>(id);
      tr.psz = p;
      tr.npages = static_cast<uint32_t>(bytes / p);
      tr.base = static_cast<unsigned char*>(ab.Data());
      tr.have.assign(tr.npages, 0);
      target_->regions.push_back(std::move(tr));
      regions.push_back({static_cast<uint32_t>(id), static_cast<uint32_t>(bytes / p), p});
      buffers_.push_back(Napi::Persistent(ab.As<Napi::Object>()));
    }
    ro.group = group.c_str();
    ro.iface = iface.c_str();
    ro.port = static_cast<uint16_t>(port);
    ro.rcvbuf = static_cast<unsigned>(rcvbuf);
    ro.report_addr = report_addr.empty() ? nullptr : report_addr.c_str();
    ro.report_port = static_cast<uint16_t>(report_port);
    ro.regions = regions.data();
    ro.nregions = regions.size();
    ro.install = Target::Install;
    ro.present = Target::Present;
    ro.ctx = target_.get();
    int rc = sf_mcast_receiver_open(&ro, &r_);
    memset(ro.key, 0, sizeof ro.key);
    if (rc < 0) {
      ThrowC(env, rc);
      return;
    }
    napi_add_env_cleanup_hook(env, Cleanup, this);
  }

  ~Receiver() override { Shut(true); }

 private:
  static void Cleanup(void* arg) { static_cast<Receiver*>(arg)->Shut(false); }

  void Shut(bool unhook) {
    if (r_ == nullptr) return;
    sf_mcast_receiver_close(r_);  // joins the thread: nothing writes the buffers after this
    r_ = nullptr;
    if (unhook) napi_remove_env_cleanup_hook(env_, Cleanup, this);
  }

  bool Open(Napi::Env env) {
    if (r_ != nullptr) return true;
    Fail(McastError(env, SF_MCAST_ECLOSED, "multicast receiver: closed"));
    return false;
  }

  Napi::Value Stats(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!Open(env)) return env.Undefined();
    sf_mcast_receiver_stats st;
    sf_mcast_receiver_stats_get(r_, &st);
    Napi::Object o = Napi::Object::New(env);
    o.Set("datagrams", Num(env, st.datagrams));
    o.Set("accepted", Num(env, st.accepted));
    o.Set("bytes", Num(env, st.bytes));
    o.Set("installed", Num(env, st.installed));
    o.Set("duplicates", Num(env, st.duplicates));
    o.Set("dropped", Num(env, st.dropped));
    o.Set("malformed", Num(env, st.malformed));
    o.Set("otherJob", Num(env, st.other_job));
    o.Set("forged", Num(env, st.forged));
    o.Set("otherInterface", Num(env, st.other_if));
    o.Set("overflow", Num(env, st.overflow));
    o.Set("gaps", Num(env, st.gaps));
    o.Set("incomplete", Num(env, st.incomplete));
    o.Set("ends", Num(env, st.ends));
    o.Set("reports", Num(env, st.reports));
    o.Set("endInstalled", Num(env, st.end_installed));
    o.Set("rcvbuf", Num(env, st.rcvbuf));
    o.Set("error", Napi::String::New(env, st.failed ? sf_mcast_receiver_error(r_) : ""));
    return o;
  }

  // missing(region) -> Uint32Array of (first, count) pairs
  Napi::Value Missing(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    uint32_t region;
    if (!ArgUint(info, 0, "missing(region): region", 4294967295.0, &region) || !Open(env)) return env.Undefined();
    std::vector<uint32_t> runs(64);
    size_t n = 0;
    for (;;) {
      long rc = sf_mcast_receiver_missing(r_, region, runs.data(), runs.size() / 2, &n);
      if (rc < 0) return ThrowC(env, rc);
      if (n <= runs.size() / 2) break;
      runs.resize(2 * n + 64);  // pages arriving meanwhile may split runs: room to spare
    }
    Napi::Uint32Array out = Napi::Uint32Array::New(env, 2 * n);
    if (n) memcpy(out.Data(), runs.data(), 2 * n * sizeof(uint32_t));
    return out;
  }

  // install(region, first, data) -> pages installed (the end game's unicast pages)
  Napi::Value Install(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    uint32_t region, first;
    unsigned char* bytes = nullptr;
    size_t len = 0;
    if (!ArgUint(info, 0, "install(region, first, data): region", 4294967295.0, &region) ||
        !ArgUint(info, 1, "install(region, first, data): first", 4294967295.0, &first) ||
        !Bytes(info[2], "install(region, first, data): data", &bytes, &len) || !Open(env))
      return env.Undefined();
    Target::Region* tr = target_->find(region);
    if (tr == nullptr) return ThrowRange(env, "install: region " + std::to_string(region) + " is not one of this receiver's");
    if (len % tr->psz != 0)
      return ThrowRange(env, "install: data must be whole " + std::to_string(tr->psz) + "-byte pages, got " + std::to_string(len) + " bytes");
    int k = sf_mcast_receiver_install(r_, region, first, static_cast<uint32_t>(len / tr->psz), bytes);
    if (k < 0) return ThrowC(env, k);
    return Num(env, k);
  }

  Napi::Value LastEnd(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    uint32_t region, first = 0, count = 0;
    if (!ArgUint(info, 0, "lastEnd(region): region", 4294967295.0, &region) || !Open(env)) return env.Undefined();
    if (!sf_mcast_receiver_last_end(r_, region, &first, &count)) return env.Null();
    Napi::Object o = Napi::Object::New(env);
    o.Set("first", Num(env, first));
    o.Set("count", Num(env, count));
    return o;
  }

  Napi::Value Present(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    uint32_t region, page;
    if (!ArgUint(info, 0, "present(region, page): region", 4294967295.0, &region) ||
        !ArgUint(info, 1, "present(region, page): page", 4294967295.0, &page) || !Open(env))
      return env.Undefined();
    return Napi::Boolean::New(env, Target::Present(target_.get(), region, page) != 0);
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    Shut(true);
    return info.Env().Undefined();
  }

  napi_env env_;
  sf_mcast_receiver* r_ = nullptr;
  std::unique_ptr<Target> target_;
  std::vector<Napi::ObjectReference> buffers_;
};

// pack(fields, payload, key) -> Buffer: one datagram, for the hostile-peer tests.
Napi::Value Pack(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 3 || !info[0].IsObject())
    return ThrowType(env, "pack(fields, payload, key): fields must be an object");
  Napi::Object f = info[0].As<Napi::Object>();
  sf_mcast_dgram d;
  memset(&d, 0, sizeof d);
  double type = 0, shift = 0, session = 0, region = 0, page = 0, offset = 0, count = 0;
  if (!GetUint(f, "type", 255, &type, true) || !GetUint(f, "pageShift", 255, &shift, true) ||
      !GetUint(f, "session", 4294967295.0, &session) || !GetUint(f, "region", 4294967295.0, &region) ||
      !GetUint(f, "page", 4294967295.0, &page) || !GetUint(f, "offset", 4294967295.0, &offset) ||
      !GetUint(f, "count", 4294967295.0, &count))
    return env.Undefined();
  Napi::Value job = f.Get("job"), seq = f.Get("seq");
  bool lossless = true;
  if (!job.IsBigInt()) return ThrowType(env, "fields.job must be a bigint");
  d.job = job.As<Napi::BigInt>().Uint64Value(&lossless);
  if (!seq.IsUndefined()) {
    if (!seq.IsBigInt()) return ThrowType(env, "fields.seq must be a bigint");
    d.seq = seq.As<Napi::BigInt>().Uint64Value(&lossless);
  }
  d.type = static_cast<uint8_t>(type);
  d.page_shift = static_cast<uint8_t>(shift);
  d.session = static_cast<uint32_t>(session);
  d.region = static_cast<uint32_t>(region);
  d.page = static_cast<uint32_t>(page);
  d.offset = static_cast<uint32_t>(offset);
  d.count = static_cast<uint32_t>(count);
  unsigned char* payload = nullptr;
  size_t len = 0;
  if (!Bytes(info[1], "pack: payload", &payload, &len)) return env.Undefined();
  if (!info[2].IsBuffer() || info[2].As<Napi::Buffer<unsigned char>>().Length() != SF_MCAST_KEY_BYTES)
    return ThrowType(env, "pack: key must be a 32-byte Buffer");
  Napi::Buffer<unsigned char> out = Napi::Buffer<unsigned char>::New(env, SF_MCAST_HEADER + len);
  long n = sf_mcast_pack(&d, payload, len, info[2].As<Napi::Buffer<unsigned char>>().Data(), out.Data(), out.Length());
  if (n < 0) return ThrowC(env, n);
  return out;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("Sender", Sender::Define(env));
  exports.Set("Receiver", Receiver::Define(env));
  exports.Set("pack", Napi::Function::New(env, Pack, "pack"));
  exports.Set("headerBytes", Num(env, SF_MCAST_HEADER));
  exports.Set("version", Num(env, SF_MCAST_VERSION));
  return exports;
}

}  // namespace

NODE_API_MODULE(sfmcast, Init)
