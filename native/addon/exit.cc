// How a clone leaves. A forked Node.js child cannot take Node's own way out: when its loop runs
// empty, Node drains the platform's worker tasks, and in a clone the tasks that parked the
// workers at fork time are counted as outstanding forever (the workers do not exist there), so
// the clone would hang; process.exit() joins threads that do not exist and crashes.
//
// So a clone keeps its loop alive with a handle of ours (the keeper) and looks, before each poll,
// whether anything else would keep the loop alive. When nothing would, it runs what Node would
// run (onEmpty: 'beforeExit'), looks again, and if the loop is still empty calls onExit, which
// runs the 'exit' listeners and ends the process with exitNow().

#include "addon.h"

#include <uv.h>

#include <cstdio>

#include <unistd.h>

namespace sf {
namespace {

struct Keeper {
  uv_async_t hold;       // referenced, never sent: keeps uv_run from returning
  uv_prepare_t look;     // unreferenced: runs before every poll
  Napi::FunctionReference on_empty;
  Napi::FunctionReference on_exit;
  std::unique_ptr<Napi::AsyncContext> context;
  napi_env env;
  bool busy = false;
};

Keeper* keeper = nullptr;

bool AliveWithoutKeeper(uv_loop_t* loop) {
  uv_unref(reinterpret_cast<uv_handle_t*>(&keeper->hold));
  bool alive = uv_loop_alive(loop) != 0;
  uv_ref(reinterpret_cast<uv_handle_t*>(&keeper->hold));
  return alive;
}

void OnPrepare(uv_prepare_t* handle) {
  if (keeper == nullptr || keeper->busy) return;
  uv_loop_t* loop = handle->loop;
  if (AliveWithoutKeeper(loop)) return;
  keeper->busy = true;
  Napi::Env env(keeper->env);
  Napi::HandleScope scope(env);
  keeper->on_empty.MakeCallback(env.Global(), {}, *keeper->context);
  if (!AliveWithoutKeeper(loop)) keeper->on_exit.MakeCallback(env.Global(), {}, *keeper->context);
  keeper->busy = false;
}

// installExitKeeper(onEmpty, onExit): in a clone, right after the fork.
Napi::Value InstallExitKeeper(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsFunction() || !info[1].IsFunction())
    return ThrowType(env, "installExitKeeper(onEmpty, onExit): both must be functions");
  if (keeper != nullptr) return ThrowError(env, "installExitKeeper: already installed");
  uv_loop_t* loop = nullptr;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok)
    return ThrowError(env, "installExitKeeper: cannot get the event loop");
  keeper = new Keeper;
  keeper->env = env;
  keeper->on_empty = Napi::Persistent(info[0].As<Napi::Function>());
  keeper->on_exit = Napi::Persistent(info[1].As<Napi::Function>());
  keeper->context = std::make_unique<Napi::AsyncContext>(env, "sfmpi.exitKeeper");
  int rc = uv_async_init(loop, &keeper->hold, nullptr);
  if (rc == 0) rc = uv_prepare_init(loop, &keeper->look);
  if (rc == 0) rc = uv_prepare_start(&keeper->look, OnPrepare);
  if (rc != 0) return ThrowError(env, std::string("installExitKeeper: ") + uv_strerror(rc));
  uv_unref(reinterpret_cast<uv_handle_t*>(&keeper->look));
  return env.Undefined();
}

// exitNow(code): leaves the process at once, after flushing C stdio.
Napi::Value ExitNow(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsNumber())
    return ThrowType(info.Env(), "exitNow(code): code must be a number");
  int code = info[0].As<Napi::Number>().Int32Value();
  fflush(nullptr);
  _exit(code & 0xff);
}

}  // namespace

Napi::Object InitExit(Napi::Env env, Napi::Object exports) {
  exports.Set("installExitKeeper", Napi::Function::New(env, InstallExitKeeper, "installExitKeeper"));
  exports.Set("exitNow", Napi::Function::New(env, ExitNow, "exitNow"));
  return exports;
}

}  // namespace sf
