// Errors of the binding: every failure becomes an MPIError built by errors.ts's factory, with the
// class from the data plane's one table (sf_error_class) and a message that names the operation,
// the ranks, the tag and the sizes.
#include "state.h"

namespace sf::mpi {

Napi::Value ThrowMPI(Napi::Env env, const char* code, const std::string& message, int rank,
                     const std::vector<int>* ranks) {
  Env* e = GetEnv(env);
  if (e == nullptr || e->error_factory.IsEmpty()) {
    Napi::Error::New(env, message).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::Value list = env.Undefined();
  if (ranks != nullptr) {
    Napi::Array a = Napi::Array::New(env, ranks->size());
    for (size_t i = 0; i < ranks->size(); i++) a.Set(static_cast<uint32_t>(i), Napi::Number::New(env, (*ranks)[i]));
    list = a;
  }
  Napi::Value err = e->error_factory.Call({Napi::String::New(env, code), Napi::String::New(env, message),
                                           Napi::Number::New(env, rank), list});
  if (env.IsExceptionPending()) return env.Undefined();
  Napi::Error(env, err).ThrowAsJavaScriptException();
  return env.Undefined();
}

int FailedRank(int rc) {
  sf_job* job = g_proc.job;
  if (job == nullptr) return -1;
  int rank = -1;
  if (rc == SF_EABORTED && sf_job_aborted(job, &rank, nullptr, nullptr, 0)) return rank;
  if (rc == SF_EPEERDIED) {
    char buf[128];
    for (int r = 0; r < sf_job_size(job); r++)
      if (sf_job_peer_death(job, r, buf, sizeof buf)) return r;
  }
  return -1;
}

Napi::Value ThrowRc(Napi::Env env, int rc, const std::string& what) {
  std::string msg = sf_last_error();
  if (msg.empty()) msg = sf_error_name(rc);
  if (!what.empty()) msg = what + ": " + msg;
  return ThrowMPI(env, sf_error_class(rc), msg, FailedRank(rc));
}

}  // namespace sf::mpi
