// Collectives of the binding: the data plane's (hierarchical across hosts, shared memory within
// one), with predefined ops applied natively and user ops called back in JavaScript.

#include <cstdlib>
#include <cstring>

#include "../addon.h"
#include "dtype.h"
#include "state.h"

namespace sf::mpi {

namespace {

// The row of a rank in the shared "entered" table: its local rank on this host.
int SlotRow(int world) {
  for (int l = 0; l < sf_job_local_count(g_proc.job); l++)
    if (sf_job_local_world(g_proc.job, l) == world) return l;
  return 0;
}

// Collectives. Every collective gets (ranks: Int32Array | null, index, ctx) for its group.

struct Group {
  sf_group g;
  std::vector<int> ranks;
};

bool GetGroup(const Napi::CallbackInfo& info, size_t i, Group* out) {
  memset(&out->g, 0, sizeof out->g);
  if (info[i].IsNull()) {
    out->g.size = sf_job_size(g_proc.job);
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
  if (dtype <= 0 || dtype >= kTypeCount) dtype = 2;  // bytes
  size_t n = nbytes / kTypes[dtype].size;
  napi_typedarray_type t = kTypes[dtype].napi;
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

sf_dtype ToSfType(int dtype) { return dtype > 0 && dtype < kTypeCount ? kTypes[dtype].sf : SF_BYTE; }

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
  uint64_t seq = ++g_proc.coll_seq[gr.g.ctx];
  if (g_proc.slots != nullptr) {
    CollSlot* slot = &g_proc.slots[SlotRow(sf_job_rank(g_proc.job)) * kSlotBuckets + gr.g.ctx % kSlotBuckets];
    __atomic_store_n(&slot->ctx, gr.g.ctx, __ATOMIC_RELAXED);
    __atomic_store_n(&slot->seq, seq, __ATOMIC_RELEASE);
  }
  return seq;
}

// The members of the group that have not entered collective `seq` of its context.
std::vector<int> NotArrived(const Group& gr, uint64_t seq) {
  std::vector<int> out;
  if (g_proc.slots == nullptr) return out;
  for (int i = 0; i < gr.g.size; i++) {
    int w = gr.g.ranks ? gr.g.ranks[i] : i;
    if (w == sf_job_rank(g_proc.job) || sf_job_host_of(g_proc.job, w) != sf_job_host(g_proc.job)) continue;
    CollSlot* slot = &g_proc.slots[SlotRow(w) * kSlotBuckets + gr.g.ctx % kSlotBuckets];
    uint64_t s = __atomic_load_n(&slot->seq, __ATOMIC_ACQUIRE);
    if (__atomic_load_n(&slot->ctx, __ATOMIC_RELAXED) != gr.g.ctx || s < seq) out.push_back(w);
  }
  return out;
}

// The start of every collective: label the wait for timeout messages, check the job and the
// group, and record that this rank entered the collective. False with a JavaScript exception
// pending. (Pending non-blocking receives need nothing here: the data plane matches them during
// the collective's own progress.)
bool EnterCollective(const Napi::CallbackInfo& info, const char* what, Group* gr, uint64_t* seq) {
  Napi::Env env = info.Env();
  sf_job* job = RequireJob(env, what);
  if (job == nullptr) return false;
  sf_job_set_label(job, GetEnv(env)->coll_label);
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
  return CollResult(gr, seq, env, sf_barrier(g_proc.job, &gr.g), "barrier");
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
  return CollResult(gr, seq, env, sf_bcast(g_proc.job, &gr.g, p, len, Int(info, 4)), "bcast of " + std::to_string(len) + " bytes");
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
    case 0: rc = sf_reduce(g_proc.job, &gr.g, s, r, len, CombineFn(&c), CombineArg(&c), root); break;
    case 1: rc = sf_allreduce(g_proc.job, &gr.g, s, r, len, CombineFn(&c), CombineArg(&c)); break;
    case 2: rc = sf_scan(g_proc.job, &gr.g, s, r, len, CombineFn(&c), CombineArg(&c)); break;
    default: rc = sf_exscan(g_proc.job, &gr.g, s, r, len, CombineFn(&c), CombineArg(&c)); break;
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
    rc = sf_allgatherv(g_proc.job, &gr.g, s, slen, r, lens.data(), displs.data());
  } else {
    rc = sf_gatherv(g_proc.job, &gr.g, s, slen, r, lens.empty() ? nullptr : lens.data(), displs.empty() ? nullptr : displs.data(), Int(info, 7));
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
  int rc = sf_scatterv(g_proc.job, &gr.g, s, lens.empty() ? nullptr : lens.data(), displs.empty() ? nullptr : displs.data(), r, rlen,
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
  int rc = sf_alltoallv(g_proc.job, &gr.g, s, sl.data(), sd.data(), r, rl.data(), rd.data());
  return CollResult(gr, seq, env, rc, "alltoall");
}

// bcastObject(ranks, index, ctx, bytes | null, root) -> Buffer (non-roots) | undefined (root):
// an object collective's bytes of unknown size, in one call: the length, then the bytes.
Napi::Value BcastObject(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Group gr;
  uint64_t seq;
  if (!EnterCollective(info, "bcast", &gr, &seq)) return env.Undefined();
  uint8_t* p;
  size_t len;
  if (!Bytes(info, 3, &p, &len)) return env.Undefined();
  int root = Int(info, 4);
  bool is_root = gr.g.rank == root;
  // One step for small values: the length and the first bytes travel together in a block of
  // the size the data plane moves in one shared-memory step; only a longer rest goes after.
  constexpr size_t kFirst = SF_COLL_FAST_MAX - 8;
  uint8_t head[SF_COLL_FAST_MAX];
  uint64_t n = len;
  if (is_root) {
    memcpy(head, &n, 8);
    memcpy(head + 8, p, len < kFirst ? len : kFirst);
  }
  int rc = sf_bcast(g_proc.job, &gr.g, head, sizeof head, root);
  if (rc < 0) return CollResult(gr, seq, env, rc, "bcast");
  if (!is_root) memcpy(&n, head, 8);
  if (is_root) {
    if (len > kFirst) rc = sf_bcast(g_proc.job, &gr.g, p + kFirst, len - kFirst, root);
    return CollResult(gr, seq, env, rc, "bcast of " + std::to_string(len) + " bytes");
  }
  Env* e = GetEnv(env);
  if (e->staging_data != nullptr && n <= e->staging_len) {  // straight into the staging buffer
    memcpy(e->staging_data, head + 8, n < kFirst ? n : kFirst);
    if (n > kFirst) rc = sf_bcast(g_proc.job, &gr.g, e->staging_data + kFirst, n - kFirst, root);
    if (rc < 0) return CollResult(gr, seq, env, rc, "bcast of " + std::to_string(n) + " bytes");
    return Napi::Number::New(env, static_cast<double>(n));
  }
  uint8_t* data = static_cast<uint8_t*>(malloc(n ? n : 1));
  if (data == nullptr) return ThrowMPI(env, "ERR_NO_MEM", "bcast: out of memory for " + std::to_string(n) + " bytes");
  memcpy(data, head + 8, n < kFirst ? n : kFirst);
  if (n > kFirst) rc = sf_bcast(g_proc.job, &gr.g, data + kFirst, n - kFirst, root);
  if (rc < 0) {
    free(data);
    return CollResult(gr, seq, env, rc, "bcast of " + std::to_string(n) + " bytes");
  }
  return WrapReceived(env, data, n);
}

// allgatherObjects(ranks, index, ctx, bytes, lens: Float64Array(size)) -> Buffer | number:
// every member's bytes packed in rank order (a number: that many bytes in the staging buffer),
// member i's length in lens[i].
//
// One collective for small values instead of two (lengths, then bytes): every member's block
//
//     +----------+-------------------------------------+
//     | len: u32 | its first min(len, block - 4) bytes |   block bytes, zero-padded
//     +----------+-------------------------------------+
//
// (block: SF_COLL_FAST_MAX / n rounded down to 8, within 16..128) sits at offset rank * block
// of a zeroed buffer, and a BOR allreduce of that buffer leaves
// every block everywhere (each byte is non-zero on one member at most). That allreduce is the
// data plane's: one shared-memory step when the group is every rank of a host and the blocks fit
// a collective slot, recursive doubling (log2(n) exchanges) otherwise, hierarchical across
// hosts; a ring would take n - 1 latencies. Only values longer than their block send the rest,
// by one allgatherv that every member knows the sizes of from the first step.
Napi::Value AllgatherObjects(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Group gr;
  uint64_t seq;
  if (!EnterCollective(info, "allgather", &gr, &seq)) return env.Undefined();
  uint8_t* p;
  size_t len;
  if (!Bytes(info, 3, &p, &len)) return env.Undefined();
  if (!info[4].IsTypedArray() || info[4].As<Napi::TypedArray>().TypedArrayType() != napi_float64_array ||
      info[4].As<Napi::Float64Array>().ElementLength() != static_cast<size_t>(gr.g.size))
    return ThrowType(env, "allgatherObjects: lens must be a Float64Array of the group's size");
  Napi::Float64Array out_lens = info[4].As<Napi::Float64Array>();
  size_t n = static_cast<size_t>(gr.g.size), me = static_cast<size_t>(gr.g.rank);
  // The same on every member (a function of n only); a multiple of 8 for the 64-bit BOR.
  size_t block = (SF_COLL_FAST_MAX / n) & ~static_cast<size_t>(7);
  if (block < 16) block = 16;
  if (block > 128) block = 128;  // each member copies and combines n * block bytes: keep small values cheap
  const size_t first = block - 4;
  if (len > UINT32_MAX) return ThrowMPI(env, "ERR_COUNT", "allgather: a value of " + std::to_string(len) + " bytes exceeds 4 GiB");
  uint64_t on_stack[SF_COLL_FAST_MAX / 8 + 2];  // the common case allocates nothing
  std::vector<uint64_t> on_heap;
  uint64_t* words = on_stack;
  if (n * block > sizeof on_stack) {
    on_heap.resize(n * block / 8);
    words = on_heap.data();
  }
  uint8_t* all = reinterpret_cast<uint8_t*>(words);
  memset(all, 0, n * block);
  uint32_t mine = static_cast<uint32_t>(len);
  memcpy(all + me * block, &mine, 4);
  memcpy(all + me * block + 4, p, len < first ? len : first);
  sf_builtin_arg bor = {SF_OP_BOR, SF_UINT64};
  int rc = sf_allreduce(g_proc.job, &gr.g, nullptr, all, n * block, sf_builtin_combine, &bor);
  if (rc < 0) return CollResult(gr, seq, env, rc, "allgather");
  std::vector<size_t> sizes(4 * n);  // lengths, offsets, rests and where the rests go
  size_t *lens = sizes.data(), *offs = lens + n, *rest = offs + n, *rest_at = rest + n;
  size_t total = 0;
  bool long_values = false;
  for (size_t i = 0; i < n; i++) {
    uint32_t l;
    memcpy(&l, all + i * block, 4);
    lens[i] = l;
    offs[i] = total;
    total += l;
    rest[i] = l > first ? l - first : 0;
    rest_at[i] = offs[i] + (l > first ? first : l);
    long_values = long_values || rest[i] > 0;
  }
  Env* e = GetEnv(env);
  bool staged = e->staging_data != nullptr && total <= e->staging_len;
  Napi::Buffer<uint8_t> heap;
  uint8_t* dst = staged ? e->staging_data : nullptr;
  if (!staged) {
    heap = Napi::Buffer<uint8_t>::New(env, total);
    dst = heap.Data();
  }
  for (size_t i = 0; i < n; i++) {
    memcpy(dst + offs[i], all + i * block + 4, lens[i] < first ? lens[i] : first);
    out_lens[i] = static_cast<double>(lens[i]);
  }
  if (long_values) {
    rc = sf_allgatherv(g_proc.job, &gr.g, len > first ? p + first : p, rest[me], dst, rest, rest_at);
    if (rc < 0) return CollResult(gr, seq, env, rc, "allgather of " + std::to_string(len) + " bytes");
  }
  if (staged) return Napi::Number::New(env, static_cast<double>(total));
  return heap;
}

// opValid(op, dtype) -> bool
Napi::Value OpValid(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), sf_op_valid(static_cast<sf_op>(Int(info, 0)), ToSfType(Int(info, 1))) != 0);
}


}  // namespace

const std::vector<Fn> kCollFns = {
    {"barrier", Barrier}, {"bcast", Bcast}, {"reduce", Reduce}, {"gatherv", Gatherv},
    {"scatterv", Scatterv}, {"alltoallv", Alltoallv}, {"opValid", OpValid}, {"bcastObject", BcastObject},
    {"allgatherObjects", AllgatherObjects},
};

}  // namespace sf::mpi
