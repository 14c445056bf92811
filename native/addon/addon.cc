// Entry point of the sfnative addon: fork of the live process, clone watching, process-level
// helpers (exit, dup2) and page-aligned memory regions.

#include "addon.h"

extern "C" {
#include "sf_proc.h"
}

#include <cerrno>
#include <cstdio>
#include <cstring>

#include <vector>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

namespace sf {

static Napi::Value Throw(Napi::Error error) {
  error.ThrowAsJavaScriptException();
  return error.Env().Undefined();
}

Napi::Value ThrowError(Napi::Env env, const std::string& message) {
  return Throw(Napi::Error::New(env, message));
}

Napi::Value ThrowType(Napi::Env env, const std::string& message) {
  return Throw(Napi::TypeError::New(env, message));
}

Napi::Value ThrowRange(Napi::Env env, const std::string& message) {
  return Throw(Napi::RangeError::New(env, message));
}

Napi::Value ThrowErrno(Napi::Env env, const std::string& what) {
  int err = errno;
  Napi::Error error = Napi::Error::New(env, what + ": " + strerror(err));
  const char* name = strerrorname_np(err);
  error.Set("code", Napi::String::New(env, name ? name : "EUNKNOWN"));
  error.Set("errno", Napi::Number::New(env, err));
  return Throw(error);
}

static bool RequireInt(const Napi::CallbackInfo& info, size_t i, const char* what, int* out) {
  if (info.Length() <= i || !info[i].IsNumber()) {
    ThrowType(info.Env(), std::string(what) + " must be a number");
    return false;
  }
  *out = info[i].As<Napi::Number>().Int32Value();
  return true;
}

// dieWithParent(parentPid): SIGKILL this process when its parent (the launcher) dies; if the
// parent is already gone, die now. So that killing sfmpirun never leaves a job running.
static Napi::Value DieWithParent(const Napi::CallbackInfo& info) {
  int parent = 0;
  if (!RequireInt(info, 0, "dieWithParent(parentPid): parentPid", &parent)) return info.Env().Undefined();
  if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) return ThrowErrno(info.Env(), "prctl(PR_SET_PDEATHSIG)");
  if (getppid() != parent) kill(getpid(), SIGKILL);
  return info.Env().Undefined();
}

static Napi::Value GetPid(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), getpid());
}

static Napi::Value Dup2(const Napi::CallbackInfo& info) {
  int from = 0, to = 0;
  if (!RequireInt(info, 0, "dup2(from, to): from", &from)) return info.Env().Undefined();
  if (!RequireInt(info, 1, "dup2(from, to): to", &to)) return info.Env().Undefined();
  if (dup2(from, to) < 0)
    return ThrowErrno(info.Env(), "dup2(" + std::to_string(from) + ", " + std::to_string(to) + ")");
  return info.Env().Undefined();
}

static Napi::Value CloseFd(const Napi::CallbackInfo& info) {
  int fd = 0;
  if (!RequireInt(info, 0, "closeFd(fd): fd", &fd)) return info.Env().Undefined();
  if (close(fd) < 0 && errno != EBADF)
    return ThrowErrno(info.Env(), "close(" + std::to_string(fd) + ")");
  return info.Env().Undefined();
}

// setCloexec(fd, on): fds handed to a program by the launcher must not leak into what it spawns.
static Napi::Value SetCloexec(const Napi::CallbackInfo& info) {
  int fd = 0;
  if (!RequireInt(info, 0, "setCloexec(fd, on): fd", &fd)) return info.Env().Undefined();
  bool on = info.Length() < 2 || info[1].ToBoolean();
  int flags = fcntl(fd, F_GETFD);
  if (flags < 0 || fcntl(fd, F_SETFD, on ? (flags | FD_CLOEXEC) : (flags & ~FD_CLOEXEC)) < 0)
    return ThrowErrno(info.Env(), "fcntl(" + std::to_string(fd) + ", F_SETFD)");
  return info.Env().Undefined();
}

// admissionLimit() -> number: the host's limit of live clones (RangeError for a malformed
// SFMPI_MAX_CLONES). admissionReserve(slots, limit = -1) -> id (RangeError: refused).
// admissionRelease(id). admissionUsed() -> slots in use on this host. (native/proc/admission.c)
static Napi::Value AdmissionLimit(const Napi::CallbackInfo& info) {
  char err[256];
  long n = sf_admission_limit(err, sizeof err);
  if (n < 0) return ThrowRange(info.Env(), err);
  return Napi::Number::New(info.Env(), static_cast<double>(n));
}

static Napi::Value AdmissionReserve(const Napi::CallbackInfo& info) {
  int slots = 0;
  if (!RequireInt(info, 0, "admissionReserve(slots, limit): slots", &slots)) return info.Env().Undefined();
  long limit = info.Length() > 1 && info[1].IsNumber() ? static_cast<long>(info[1].As<Napi::Number>().DoubleValue()) : -1;
  char err[300];
  long id = sf_admission_reserve(slots, limit, err, sizeof err);
  if (id < 0) return strncmp(err, "admission refused", 17) == 0 ? ThrowRange(info.Env(), err) : ThrowError(info.Env(), err);
  return Napi::Number::New(info.Env(), static_cast<double>(id));
}

static Napi::Value AdmissionRelease(const Napi::CallbackInfo& info) {
  if (info.Length() > 0 && info[0].IsNumber()) sf_admission_release(static_cast<long>(info[0].As<Napi::Number>().DoubleValue()));
  return info.Env().Undefined();
}

static Napi::Value AdmissionUsed(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(sf_admission_used()));
}

// bufferAddress(arrayBuffer) -> bigint: where its memory starts (for the region table).
static Napi::Value BufferAddress(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsArrayBuffer()) return ThrowType(info.Env(), "bufferAddress(buffer): buffer must be an ArrayBuffer");
  void* data = info[0].As<Napi::ArrayBuffer>().Data();
  return Napi::BigInt::New(info.Env(), static_cast<uint64_t>(reinterpret_cast<uintptr_t>(data)));
}

// pageSize() -> number: the base page size of this host.
static Napi::Value PageSize(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(sysconf(_SC_PAGESIZE)));
}

// socketPair() -> [ours, theirs]: a Unix stream socket pair; ours is close-on-exec, theirs is
// not (it is handed to a child: dom0's join socket for the ranks it starts).
static Napi::Value SocketPair(const Napi::CallbackInfo& info) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) return ThrowErrno(info.Env(), "socketpair");
  int flags = fcntl(sv[1], F_GETFD);
  if (flags < 0 || fcntl(sv[1], F_SETFD, flags & ~FD_CLOEXEC) < 0) {
    int e = errno;
    close(sv[0]);
    close(sv[1]);
    errno = e;
    return ThrowErrno(info.Env(), "fcntl of a socket pair");
  }
  Napi::Array a = Napi::Array::New(info.Env(), 2);
  a.Set(0u, sv[0]);
  a.Set(1u, sv[1]);
  return a;
}

// sendFds(fd, data: Buffer, fds: number[]): one sendmsg of `data` with `fds` attached
// (SCM_RIGHTS), blocking until it is all written.
static Napi::Value SendFds(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = 0;
  if (!RequireInt(info, 0, "sendFds(fd, data, fds): fd", &fd)) return env.Undefined();
  if (info.Length() < 3 || !info[1].IsBuffer() || !info[2].IsArray()) return ThrowType(env, "sendFds(fd, data, fds): data must be a Buffer, fds an array");
  Napi::Buffer<uint8_t> data = info[1].As<Napi::Buffer<uint8_t>>();
  Napi::Array list = info[2].As<Napi::Array>();
  std::vector<int> fds;
  for (uint32_t i = 0; i < list.Length(); i++) fds.push_back(list.Get(i).As<Napi::Number>().Int32Value());
  std::vector<char> ctl(CMSG_SPACE(sizeof(int) * (fds.empty() ? 1 : fds.size())));
  struct iovec iov = {data.Data(), data.Length()};
  struct msghdr m = {};
  m.msg_iov = &iov;
  m.msg_iovlen = 1;
  if (!fds.empty()) {
    m.msg_control = ctl.data();
    m.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
    struct cmsghdr* c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
  }
  ssize_t n;
  // A non-blocking socket (one Node also reads) may be full for a moment: wait for room, with
  // a bound, rather than fail a message half sent.
  auto writable = [fd]() {
    struct pollfd p = {fd, POLLOUT, 0};
    int r;
    do {
      r = poll(&p, 1, 10000);
    } while (r < 0 && errno == EINTR);
    return r > 0;
  };
  for (;;) {
    n = sendmsg(fd, &m, MSG_NOSIGNAL);
    if (n >= 0) break;
    if (errno == EINTR) continue;
    if ((errno == EAGAIN || errno == EWOULDBLOCK) && writable()) continue;
    return ThrowErrno(env, "sendmsg of " + std::to_string(fds.size()) + " descriptors");
  }
  size_t done = static_cast<size_t>(n);
  while (done < data.Length()) {  // the fds went with the first byte; the rest is plain
    ssize_t w = send(fd, data.Data() + done, data.Length() - done, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) && writable()) continue;
    if (w < 0) return ThrowErrno(env, "send");
    done += static_cast<size_t>(w);
  }
  return env.Undefined();
}

// recvMsg(fd, maxBytes, timeoutMs) -> { data: Buffer, fds: number[] } of one recvmsg, after
// waiting up to timeoutMs for the socket to be readable (-1: no bound); data is empty at the
// peer's end. fds arrive close-on-exec. Throws ETIMEDOUT naming the wait. For the blocking
// side of a Unix socket whose peer sends descriptors (the share channel: dom0/share.ts).
static Napi::Value RecvMsg(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = 0, max = 0, timeout = -1;
  if (!RequireInt(info, 0, "recvMsg(fd, maxBytes, timeoutMs): fd", &fd)) return env.Undefined();
  if (!RequireInt(info, 1, "recvMsg(fd, maxBytes, timeoutMs): maxBytes", &max)) return env.Undefined();
  if (info.Length() > 2 && info[2].IsNumber()) timeout = info[2].As<Napi::Number>().Int32Value();
  if (max < 1) return ThrowType(env, "recvMsg: maxBytes must be positive");
  struct pollfd p = {fd, POLLIN, 0};
  int r;
  do {
    r = poll(&p, 1, timeout);
  } while (r < 0 && errno == EINTR);
  if (r < 0) return ThrowErrno(env, "poll of fd " + std::to_string(fd));
  if (r == 0) {
    errno = ETIMEDOUT;
    return ThrowErrno(env, "recvMsg: nothing arrived on fd " + std::to_string(fd) + " within " + std::to_string(timeout) + " ms");
  }
  constexpr int kMaxFds = 16;
  std::vector<uint8_t> buf(static_cast<size_t>(max));
  std::vector<char> ctl(CMSG_SPACE(sizeof(int) * kMaxFds));
  struct iovec iov = {buf.data(), buf.size()};
  struct msghdr m = {};
  m.msg_iov = &iov;
  m.msg_iovlen = 1;
  m.msg_control = ctl.data();
  m.msg_controllen = ctl.size();
  ssize_t n;
  do {
    n = recvmsg(fd, &m, MSG_CMSG_CLOEXEC);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return ThrowErrno(env, "recvmsg on fd " + std::to_string(fd));
  Napi::Array fds = Napi::Array::New(env);
  uint32_t k = 0;
  for (struct cmsghdr* c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < count; i++) {
      int got;
      memcpy(&got, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
      fds.Set(k++, Napi::Number::New(env, got));
    }
  }
  if (m.msg_flags & MSG_CTRUNC) {
    for (uint32_t i = 0; i < k; i++) close(fds.Get(i).As<Napi::Number>().Int32Value());
    return ThrowType(env, "recvMsg: more than 16 descriptors in one message (they were closed)");
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("data", Napi::Buffer<uint8_t>::Copy(env, buf.data(), static_cast<size_t>(n)));
  out.Set("fds", fds);
  return out;
}

// dupFd(fd) -> a close-on-exec duplicate (a socket taken out of Node's hands keeps living).
static Napi::Value DupFd(const Napi::CallbackInfo& info) {
  int fd = 0;
  if (!RequireInt(info, 0, "dupFd(fd): fd", &fd)) return info.Env().Undefined();
  int d = fcntl(fd, F_DUPFD_CLOEXEC, 3);
  if (d < 0) return ThrowErrno(info.Env(), "dup of fd " + std::to_string(fd));
  return Napi::Number::New(info.Env(), d);
}

// describeExit(code, signal, finished) -> the one sentence for how a process ended
// (native/proc: "was killed by signal 11 (SIGSEGV)", "exited with code 3 before MPI_Finalize").
static Napi::Value DescribeExit(const Napi::CallbackInfo& info) {
  int code = info[0].IsNumber() ? info[0].As<Napi::Number>().Int32Value() : 0;
  int sig = info[1].IsNumber() ? info[1].As<Napi::Number>().Int32Value() : 0;
  bool finished = info.Length() > 2 && info[2].ToBoolean();
  int wstatus = sig > 0 ? (sig & 0x7f) : ((code & 0xff) << 8);
  char buf[160];
  sf_proc_describe(wstatus, finished, "MPI_Finalize", buf, sizeof buf);
  return Napi::String::New(info.Env(), buf);
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("forkClones", Napi::Function::New(env, ForkClones, "forkClones"));
  exports.Set("releaseClones", Napi::Function::New(env, ReleaseClones, "releaseClones"));
  exports.Set("passStartGate", Napi::Function::New(env, PassStartGate, "passStartGate"));
  exports.Set("dieWithParent", Napi::Function::New(env, DieWithParent, "dieWithParent"));
  exports.Set("getpid", Napi::Function::New(env, GetPid, "getpid"));
  exports.Set("dup2", Napi::Function::New(env, Dup2, "dup2"));
  exports.Set("closeFd", Napi::Function::New(env, CloseFd, "closeFd"));
  exports.Set("setCloexec", Napi::Function::New(env, SetCloexec, "setCloexec"));
  exports.Set("describeExit", Napi::Function::New(env, DescribeExit, "describeExit"));
  exports.Set("socketPair", Napi::Function::New(env, SocketPair, "socketPair"));
  exports.Set("sendFds", Napi::Function::New(env, SendFds, "sendFds"));
  exports.Set("recvMsg", Napi::Function::New(env, RecvMsg, "recvMsg"));
  exports.Set("dupFd", Napi::Function::New(env, DupFd, "dupFd"));
  exports.Set("bufferAddress", Napi::Function::New(env, BufferAddress, "bufferAddress"));
  exports.Set("pageSize", Napi::Function::New(env, PageSize, "pageSize"));
  exports.Set("admissionLimit", Napi::Function::New(env, AdmissionLimit, "admissionLimit"));
  exports.Set("admissionReserve", Napi::Function::New(env, AdmissionReserve, "admissionReserve"));
  exports.Set("admissionRelease", Napi::Function::New(env, AdmissionRelease, "admissionRelease"));
  exports.Set("admissionUsed", Napi::Function::New(env, AdmissionUsed, "admissionUsed"));
  InitCloneWatch(env, exports);
  InitMemory(env, exports);
  InitExit(env, exports);
  InitControl(env, exports);  // decodeControl, JobOutcome, rankList: native/addon/control.cc
  { Napi::Object InitMpi(Napi::Env, Napi::Object); InitMpi(env, exports); }  // exports.mpi: native/addon/mpi.cc
  { Napi::Object InitLazy(Napi::Env, Napi::Object); InitLazy(env, exports); }  // exports.lazy: native/addon/lazy.cc
  return exports;
}

}  // namespace sf

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) { return sf::Init(env, exports); }

NODE_API_MODULE(sfnative, InitAddon)
