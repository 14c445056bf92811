// CloneWatch: the origin's view of one clone. It holds a pidfd (readable once the clone has
// exited, whoever else waits) and the parent's end of the clone's channel (where the clone writes
// its exit value), and reports both together: { code, signal, data } once the channel has reached
// end-of-file and the clone has been reaped. Asynchronously through the event loop (watch), or
// blocking (waitSync) where MPI users expect a blocking finalize.
//
// Contract: after a fork, the child must close() every CloneWatch it inherited; it is not the
// parent of those clones, and the handles belong to the parent's loop.

#include "addon.h"

#include <uv.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <string>

#include <poll.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

namespace sf {
namespace {

int PidfdOpen(pid_t pid) { return static_cast<int>(syscall(SYS_pidfd_open, pid, 0)); }

class CloneWatch : public Napi::ObjectWrap<CloneWatch> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "CloneWatch",
                       {InstanceMethod<&CloneWatch::Watch>("watch"),
                        InstanceMethod<&CloneWatch::WaitSync>("waitSync"),
                        InstanceMethod<&CloneWatch::Signal>("signal"),
                        InstanceMethod<&CloneWatch::Close>("close"),
                        InstanceAccessor<&CloneWatch::Pid>("pid")});
  }

  // new CloneWatch(pid, channelFd): takes ownership of channelFd.
  explicit CloneWatch(const Napi::CallbackInfo& info) : Napi::ObjectWrap<CloneWatch>(info) {
    Napi::Env env = info.Env();
    if (info.Length() < 2 || !info[0].IsNumber() || !info[1].IsNumber()) {
      ThrowType(env, "new CloneWatch(pid, channelFd): both must be numbers");
      return;
    }
    pid_ = info[0].As<Napi::Number>().Int32Value();
    channel_fd_ = info[1].As<Napi::Number>().Int32Value();
    pidfd_ = PidfdOpen(pid_);
    if (pidfd_ < 0) {
      ThrowErrno(env, "pidfd_open(" + std::to_string(pid_) + ")");
      return;
    }
  }

  ~CloneWatch() override { CloseFds(); }

 private:
  // watch(callback): callback({ code, signal, data }) once the clone is gone.
  Napi::Value Watch(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsFunction())
      return ThrowType(env, "CloneWatch.watch(callback): callback must be a function");
    if (done_ || pidfd_ < 0) return ThrowError(env, "CloneWatch.watch: the clone was already reaped");
    if (watching_) return ThrowError(env, "CloneWatch.watch: already watching");
    uv_loop_t* loop = nullptr;
    if (napi_get_uv_event_loop(env, &loop) != napi_ok)
      return ThrowError(env, "CloneWatch.watch: cannot get the event loop");
    callback_ = Napi::Persistent(info[0].As<Napi::Function>());
    context_ = std::make_unique<Napi::AsyncContext>(env, "sfmpi.CloneWatch");
    pid_poll_ = new uv_poll_t;
    chan_poll_ = channel_fd_ >= 0 ? new uv_poll_t : nullptr;
    int rc = uv_poll_init(loop, pid_poll_, pidfd_);
    if (rc == 0 && chan_poll_ != nullptr) rc = uv_poll_init(loop, chan_poll_, channel_fd_);
    if (rc != 0) {
      delete pid_poll_;
      delete chan_poll_;
      pid_poll_ = chan_poll_ = nullptr;
      return ThrowError(env, std::string("CloneWatch.watch: uv_poll_init: ") + uv_strerror(rc));
    }
    pid_poll_->data = this;
    uv_poll_start(pid_poll_, UV_READABLE, OnPidReadable);
    if (chan_poll_ != nullptr) {
      chan_poll_->data = this;
      uv_poll_start(chan_poll_, UV_READABLE | UV_DISCONNECT, OnChannelReadable);
    }
    watching_ = true;
    Ref();  // stay alive while the loop holds our handles
    return env.Undefined();
  }

  // waitSync(timeoutMs = -1) -> { code, signal, data } | null on timeout. Blocks.
  Napi::Value WaitSync(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    int timeout_ms = -1;
    if (info.Length() > 0 && info[0].IsNumber()) timeout_ms = info[0].As<Napi::Number>().Int32Value();
    if (done_) return Outcome(env);
    if (pidfd_ < 0) return ThrowError(env, "CloneWatch.waitSync: the watch is closed");
    StopPolling();
    double deadline = timeout_ms < 0 ? -1 : NowMs() + timeout_ms;
    while (!(exited_ && channel_fd_ < 0)) {
      pollfd fds[2];
      int n = 0;
      if (!exited_) fds[n++] = {pidfd_, POLLIN, 0};
      if (channel_fd_ >= 0) fds[n++] = {channel_fd_, POLLIN, 0};
      int wait = -1;
      if (deadline >= 0) {
        wait = static_cast<int>(deadline - NowMs());
        if (wait <= 0) return env.Null();
      }
      int rc = poll(fds, n, wait);
      if (rc < 0) {
        if (errno == EINTR) continue;
        return ThrowErrno(env, "CloneWatch.waitSync: poll");
      }
      if (rc == 0) return env.Null();
      if (!exited_ && (fds[0].revents & POLLIN)) Reap();
      if (channel_fd_ >= 0) DrainChannel();
    }
    done_ = true;
    CloseFds();
    return Outcome(env);
  }

  // signal(signo): sends a signal through the pidfd (never to a recycled pid).
  Napi::Value Signal(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    int sig = SIGKILL;
    if (info.Length() > 0 && info[0].IsNumber()) sig = info[0].As<Napi::Number>().Int32Value();
    if (exited_ || pidfd_ < 0) return Napi::Boolean::New(env, false);
    if (syscall(SYS_pidfd_send_signal, pidfd_, sig, nullptr, 0) != 0) {
      if (errno == ESRCH) return Napi::Boolean::New(env, false);
      return ThrowErrno(env, "pidfd_send_signal(clone pid " + std::to_string(pid_) + ")");
    }
    return Napi::Boolean::New(env, true);
  }

  // close(): forget the clone without reaping it (used by a fresh clone on what it inherited).
  Napi::Value Close(const Napi::CallbackInfo& info) {
    StopPolling();
    CloseFds();
    return info.Env().Undefined();
  }

  Napi::Value Pid(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), pid_); }

  Napi::Value Outcome(Napi::Env env) {
    Napi::Object out = Napi::Object::New(env);
    out.Set("pid", pid_);
    out.Set("code", code_ >= 0 ? Napi::Value(Napi::Number::New(env, code_)) : env.Null());
    out.Set("signal", signal_ > 0 ? Napi::Value(Napi::Number::New(env, signal_)) : env.Null());
    out.Set("data", Napi::Buffer<char>::Copy(env, data_.data(), data_.size()));
    return out;
  }

  void Reap() {
    siginfo_t si;
    memset(&si, 0, sizeof si);
    int rc;
    do {
      rc = waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(pidfd_), &si, WEXITED | WNOHANG);
    } while (rc < 0 && errno == EINTR);
    if (rc < 0) {
      // ECHILD: someone else reaped it (not our child any more); report what we cannot know.
      exited_ = true;
      code_ = -1;
      signal_ = 0;
      return;
    }
    if (si.si_pid == 0) return;  // not yet
    exited_ = true;
    if (si.si_code == CLD_EXITED) {
      code_ = si.si_status;
    } else {
      signal_ = si.si_status;
    }
  }

  void DrainChannel() {
    char buf[65536];
    for (;;) {
      ssize_t n = read(channel_fd_, buf, sizeof buf);
      if (n > 0) {
        data_.append(buf, static_cast<size_t>(n));
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
      // EOF, or an error: either way the channel is finished.
      StopChannelPoll();
      close(channel_fd_);
      channel_fd_ = -1;
      return;
    }
  }

  static void OnPidReadable(uv_poll_t* handle, int status, int events) {
    auto* self = static_cast<CloneWatch*>(handle->data);
    self->Reap();
    if (self->exited_) {
      uv_poll_stop(handle);
      // A clone killed by a signal may leave its channel open in a grandchild it spawned; the
      // exit status is what counts, so take what is there and stop.
      if (self->channel_fd_ >= 0) {
        self->DrainChannel();
        if (self->channel_fd_ >= 0 && self->signal_ > 0) {
          self->StopChannelPoll();
          close(self->channel_fd_);
          self->channel_fd_ = -1;
        }
      }
    }
    self->MaybeFinish();
  }

  static void OnChannelReadable(uv_poll_t* handle, int status, int events) {
    auto* self = static_cast<CloneWatch*>(handle->data);
    self->DrainChannel();
    self->MaybeFinish();
  }

  void MaybeFinish() {
    if (!exited_ || channel_fd_ >= 0 || done_) return;
    done_ = true;
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    Napi::Value outcome = Outcome(env);
    StopPolling();
    CloseFds();
    Napi::FunctionReference callback = std::move(callback_);
    std::unique_ptr<Napi::AsyncContext> context = std::move(context_);
    callback.MakeCallback(env.Global(), {outcome}, *context);
    Unref();
  }

  void StopChannelPoll() {
    if (chan_poll_ == nullptr) return;
    uv_close(reinterpret_cast<uv_handle_t*>(chan_poll_),
             [](uv_handle_t* h) { delete reinterpret_cast<uv_poll_t*>(h); });
    chan_poll_ = nullptr;
  }

  void StopPolling() {
    StopChannelPoll();
    if (pid_poll_ != nullptr) {
      uv_close(reinterpret_cast<uv_handle_t*>(pid_poll_),
               [](uv_handle_t* h) { delete reinterpret_cast<uv_poll_t*>(h); });
      pid_poll_ = nullptr;
    }
    if (watching_) {
      watching_ = false;
      if (!done_) Unref();
    }
  }

  void CloseFds() {
    if (pidfd_ >= 0) close(pidfd_);
    if (channel_fd_ >= 0) close(channel_fd_);
    pidfd_ = channel_fd_ = -1;
  }

  pid_t pid_ = -1;
  int pidfd_ = -1;
  int channel_fd_ = -1;
  bool watching_ = false;
  bool exited_ = false;
  bool done_ = false;
  int code_ = -1;
  int signal_ = 0;
  std::string data_;
  uv_poll_t* pid_poll_ = nullptr;
  uv_poll_t* chan_poll_ = nullptr;
  Napi::FunctionReference callback_;
  std::unique_ptr<Napi::AsyncContext> context_;
};

}  // namespace

Napi::Object InitCloneWatch(Napi::Env env, Napi::Object exports) {
  exports.Set("CloneWatch", CloneWatch::Define(env));
  return exports;
}

}  // namespace sf
