// Shared declarations of the sfnative addon. Errors go to JavaScript as exceptions whose message
// says what failed; with NAPI_DISABLE_CPP_EXCEPTIONS a thrower returns an undefined value that the
// caller returns at once.
#pragma once

#include <napi.h>

#include <string>

#include <time.h>

namespace sf {

// Milliseconds on the monotonic clock, for timings and deadlines.
inline double NowMs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

Napi::Value ThrowError(Napi::Env env, const std::string& message);
Napi::Value ThrowType(Napi::Env env, const std::string& message);
Napi::Value ThrowRange(Napi::Env env, const std::string& message);
// Appends ": <strerror(errno)>" and sets err.code to the errno name ("EAGAIN").
Napi::Value ThrowErrno(Napi::Env env, const std::string& what);

Napi::Value ForkClones(const Napi::CallbackInfo& info);
Napi::Value ReleaseClones(const Napi::CallbackInfo& info);
Napi::Value PassStartGate(const Napi::CallbackInfo& info);
Napi::Object InitCloneWatch(Napi::Env env, Napi::Object exports);
Napi::Object InitMemory(Napi::Env env, Napi::Object exports);
Napi::Object InitExit(Napi::Env env, Napi::Object exports);
Napi::Object InitControl(Napi::Env env, Napi::Object exports);

}  // namespace sf
