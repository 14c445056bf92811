// The launcher's control lines for Node (dom0, the launcher of jobs across hosts), so that their
// reading and the job's outcome have one owner, the C that the native launcher of single-host
// jobs links (native/control/decode.c, outcome.c):
//
//   decodeControl(line) -> { ev, host, rank, ... } | null     (guest-daemon/control.ts types it)
//   const o = new JobOutcome(size);
//   o.event({ ev: 'fail', host, rank, code, signal, cause })  -> true at the job's first failure
//   o.lost(host, [ranks], why)                                 -> true at the job's first failure
//   o.timeout(seconds); o.failed(); o.result() -> { status, failure? }
//   rankList([ranks]) -> "rank 3" | "ranks 4-7" | "ranks 1, 3, 5"
#include <cstring>
#include <string>
#include <vector>

#include "addon.h"

extern "C" {
#include "sf_control.h"
}

namespace sf {
namespace {

std::vector<int> RankArray(const Napi::Env& env, const Napi::Value& v, const char* what, bool* ok) {
  std::vector<int> out;
  *ok = false;
  if (!v.IsArray()) {
    ThrowType(env, std::string(what) + ": ranks must be an array of integers");
    return out;
  }
  Napi::Array a = v.As<Napi::Array>();
  for (uint32_t i = 0; i < a.Length(); i++) {
    Napi::Value r = a.Get(i);
    if (!r.IsNumber()) {
      ThrowType(env, std::string(what) + ": ranks must be an array of integers");
      return out;
    }
    out.push_back(r.As<Napi::Number>().Int32Value());
  }
  *ok = true;
  return out;
}

// Copies a JS string into a fixed C field, cut to fit (the C side cuts the same way).
void CopyField(const Napi::Value& v, char* out, size_t cap) {
  std::string s = v.IsString() ? v.As<Napi::String>().Utf8Value() : std::string();
  size_t n = s.size() < cap - 1 ? s.size() : cap - 1;
  memcpy(out, s.data(), n);
  out[n] = '\0';
}

class JobOutcome : public Napi::ObjectWrap<JobOutcome> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "JobOutcome",
                       {InstanceMethod("event", &JobOutcome::Event), InstanceMethod("lost", &JobOutcome::Lost),
                        InstanceMethod("timeout", &JobOutcome::Timeout), InstanceMethod("failed", &JobOutcome::Failed),
                        InstanceMethod("result", &JobOutcome::Result)});
  }

  explicit JobOutcome(const Napi::CallbackInfo& info) : Napi::ObjectWrap<JobOutcome>(info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsNumber() || info[0].As<Napi::Number>().DoubleValue() < 0) {
      ThrowType(env, "JobOutcome: size must be a number of ranks >= 0");
      return;
    }
    o_ = sf_outcome_new(info[0].As<Napi::Number>().Int32Value());
    if (o_ == nullptr) ThrowError(env, "JobOutcome: out of memory");
  }

  ~JobOutcome() override { sf_outcome_free(o_); }

 private:
  bool Ready(const Napi::Env& env) {
    if (o_ != nullptr) return true;
    ThrowError(env, "JobOutcome: not constructed");
    return false;
  }

  // A decoded control line (guest-daemon/control.ts ControlMessage).
  Napi::Value Event(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!Ready(env)) return env.Undefined();
    if (info.Length() < 1 || !info[0].IsObject()) return ThrowType(env, "JobOutcome.event: a control message object is required");
    Napi::Object m = info[0].As<Napi::Object>();
    sf_ctl_msg msg;
    memset(&msg, 0, sizeof msg);
    std::string ev = m.Get("ev").IsString() ? m.Get("ev").As<Napi::String>().Utf8Value() : std::string();
    msg.ev = ev == "fail" ? SF_CTL_FAIL : ev == "exit" ? SF_CTL_EXIT : ev == "fork" ? SF_CTL_FORK : (sf_ctl_ev)0;
    if (msg.ev == 0) return ThrowType(env, "JobOutcome.event: ev must be 'fork', 'fail' or 'exit'");
    auto num = [&](const char* k) { Napi::Value v = m.Get(k); return v.IsNumber() ? v.As<Napi::Number>().Int32Value() : 0; };
    msg.rank = num("rank");
    msg.code = num("code");
    msg.signal = num("signal");
    msg.pid = num("pid");
    CopyField(m.Get("host"), msg.host, sizeof msg.host);
    Napi::Value cause = m.Get("cause");
    CopyField(cause.IsString() ? cause : Napi::String::New(env, "failed"), msg.cause, sizeof msg.cause);
    return Napi::Boolean::New(env, sf_outcome_event(o_, &msg, NowMs()) == 1);
  }

  Napi::Value Lost(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!Ready(env)) return env.Undefined();
    if (info.Length() < 3 || !info[0].IsString() || !info[2].IsString())
      return ThrowType(env, "JobOutcome.lost: (host: string, ranks: number[], why: string)");
    bool ok;
    std::vector<int> ranks = RankArray(env, info[1], "JobOutcome.lost", &ok);
    if (!ok) return env.Undefined();
    std::string host = info[0].As<Napi::String>().Utf8Value(), why = info[2].As<Napi::String>().Utf8Value();
    return Napi::Boolean::New(env, sf_outcome_lost(o_, host.c_str(), ranks.data(), (int)ranks.size(), why.c_str(), NowMs()) == 1);
  }

  Napi::Value Timeout(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!Ready(env)) return env.Undefined();
    if (info.Length() < 1 || !info[0].IsNumber()) return ThrowType(env, "JobOutcome.timeout: seconds must be a number");
    sf_outcome_timeout(o_, info[0].As<Napi::Number>().DoubleValue());
    return env.Undefined();
  }

  Napi::Value Failed(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!Ready(env)) return env.Undefined();
    return Napi::Boolean::New(env, sf_outcome_failed(o_) != 0);
  }

  // A job across hosts has no origin process of the launcher's own: wait status -1.
  Napi::Value Result(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!Ready(env)) return env.Undefined();
    std::vector<char> line(SF_CTL_MAX_LINE + 256);
    int status = sf_outcome_result(o_, -1, line.data(), line.size());
    Napi::Object out = Napi::Object::New(env);
    out.Set("status", status);
    if (line[0] != '\0') out.Set("failure", Napi::String::New(env, line.data()));
    return out;
  }

  sf_outcome* o_ = nullptr;
};

Napi::Value DecodeControl(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) return ThrowType(env, "decodeControl: line must be a string");
  std::string line = info[0].As<Napi::String>().Utf8Value();
  sf_ctl_msg m;
  if (sf_ctl_decode(line.data(), line.size(), &m) != 0) return env.Null();
  Napi::Object out = Napi::Object::New(env);
  out.Set("host", Napi::String::New(env, m.host));
  out.Set("rank", m.rank);
  switch (m.ev) {
    case SF_CTL_FORK:
      out.Set("ev", "fork");
      out.Set("pid", m.pid);
      out.Set("ms", m.ms);
      break;
    case SF_CTL_FAIL:
      out.Set("ev", "fail");
      out.Set("code", m.code);
      out.Set("signal", m.signal);
      out.Set("cause", Napi::String::New(env, m.cause));
      break;
    case SF_CTL_EXIT:
      out.Set("ev", "exit");
      out.Set("code", m.code);
      break;
    default:
      return env.Null();
  }
  return out;
}

Napi::Value RankList(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  bool ok;
  std::vector<int> ranks = RankArray(env, info.Length() ? info[0] : env.Undefined(), "rankList", &ok);
  if (!ok) return env.Undefined();
  std::vector<char> out(32 + ranks.size() * 12);
  sf_outcome_rank_list(ranks.data(), (int)ranks.size(), out.data(), out.size());
  return Napi::String::New(env, out.data());
}

}  // namespace

Napi::Object InitControl(Napi::Env env, Napi::Object exports) {
  exports.Set("decodeControl", Napi::Function::New(env, DecodeControl, "decodeControl"));
  exports.Set("JobOutcome", JobOutcome::Define(env));
  exports.Set("rankList", Napi::Function::New(env, RankList, "rankList"));
  return exports;
}

}  // namespace sf
