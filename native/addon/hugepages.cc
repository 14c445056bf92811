// Large ArrayBuffer backing stores on transparent huge pages, so that a program holding a plain
// `new Float64Array(1 << 27)` forks as fast as one holding a region (docs/forking-node.md, "Plain
// arrays").
//
// Why: fork() copies one page-table entry per 4 KiB page and takes a reference on every page:
// about 9 ms per GiB per clone here, and the clone's exit gives them back. On 2 MiB pages it is
// one entry and one reference per 2 MiB. Node allocates an ArrayBuffer's memory with calloc (or
// malloc when it need not be zeroed); glibc maps a large block with mmap of its own and does not
// touch it (a fresh mapping is already zero), so advising MADV_HUGEPAGE right after the
// allocation, before JavaScript writes it, makes the kernel fault it in as 2 MiB pages. THP in
// "madvise" mode honours the advice, "always" needs none, "never" leaves 4 KiB pages.
//
// How: Node offers no hook into the isolate's v8::ArrayBuffer::Allocator, so we give that object
// (a node::NodeArrayBufferAllocator) a copy of its own vtable in which Allocate and
// AllocateUninitialized call Node's functions and then advise the block. Free and Reallocate stay
// Node's: who owns the memory and how it is counted do not change. The object is rewired only if
// every check holds: its vtable is the one Node exports, the two slots hold the functions Node
// exports, and the vtable's size is known from its symbol. Otherwise nothing is changed and
// hugePages().reason says which check failed (e.g. --debug-arraybuffer-allocations, whose
// allocator is another class). Slot numbers come from the Itanium C++ ABI's member-pointer form.
//
// Contract: only the allocators of isolates that load the addon are rewired (the main thread's,
// and a worker thread's that imports sfmpi). Memory allocated before the addon was loaded keeps
// the pages it has.

#include "addon.h"

#include <v8.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>

#include <dlfcn.h>
#include <link.h>
#include <sys/mman.h>

namespace sf {
namespace {

constexpr uintptr_t kHuge = 2u << 20;
// Below two huge pages a block may hold no aligned 2 MiB at all, and forking it is cheap anyway.
constexpr size_t kMinAdvised = 2 * kHuge;
// The copied vtable, in words: Node 20's has 11 (offset-to-top, RTTI, 9 slots).
constexpr size_t kMaxVtableWords = 64;

using AllocateFn = void* (*)(v8::ArrayBuffer::Allocator*, size_t);

AllocateFn node_allocate = nullptr;
AllocateFn node_allocate_uninitialized = nullptr;
void* patched_vtable[kMaxVtableWords];
void** patched_vptr = nullptr;  // what rewired objects point to (address point of the copy)
bool hooked = false;
std::string reason = "not tried";
std::atomic<uint64_t> advised_buffers{0};
std::atomic<uint64_t> advised_bytes{0};

// Advises the 2 MiB-aligned inside of [p, p + n): the only part a huge page can back.
void AdviseHuge(void* p, size_t n) {
  if (p == nullptr || n < kMinAdvised) return;
  uintptr_t start = (reinterpret_cast<uintptr_t>(p) + kHuge - 1) & ~(kHuge - 1);
  uintptr_t end = (reinterpret_cast<uintptr_t>(p) + n) & ~(kHuge - 1);
  if (end <= start) return;
  // Best effort: EINVAL where THP is compiled out; the buffer works on 4 KiB pages regardless.
  if (madvise(reinterpret_cast<void*>(start), end - start, MADV_HUGEPAGE) != 0) return;
  advised_buffers.fetch_add(1, std::memory_order_relaxed);
  advised_bytes.fetch_add(end - start, std::memory_order_relaxed);
}

void* HugeAllocate(v8::ArrayBuffer::Allocator* self, size_t n) {
  void* p = node_allocate(self, n);
  AdviseHuge(p, n);
  return p;
}

void* HugeAllocateUninitialized(v8::ArrayBuffer::Allocator* self, size_t n) {
  void* p = node_allocate_uninitialized(self, n);
  AdviseHuge(p, n);
  return p;
}

// The vtable slot (in words from the address point) of a virtual member function, from the
// Itanium C++ ABI member-pointer representation; -1 if `pmf` is not virtual.
template <typename PMF>
ptrdiff_t SlotOf(PMF pmf) {
  struct Rep {
    ptrdiff_t ptr, adj;
  } rep;
  static_assert(sizeof(pmf) == sizeof(rep), "unexpected member-pointer size");
  memcpy(&rep, &pmf, sizeof rep);
#if defined(__arm__) || defined(__aarch64__)
  // ARM's variant keeps the virtual bit in adj and the byte offset in ptr.
  if ((rep.adj & 1) == 0) return -1;
  return rep.ptr / static_cast<ptrdiff_t>(sizeof(void*));
#else
  if ((rep.ptr & 1) == 0) return -1;
  return (rep.ptr - 1) / static_cast<ptrdiff_t>(sizeof(void*));
#endif
}

// Rewires `allocator` if it is Node's; returns "" or why it did not.
std::string Hook(v8::ArrayBuffer::Allocator* allocator) {
  if (allocator == nullptr) return "the isolate has no ArrayBuffer allocator";
  void** vptr = *reinterpret_cast<void***>(allocator);
  if (vptr == patched_vptr && patched_vptr != nullptr) return "";  // already ours
  void* vtable = dlsym(RTLD_DEFAULT, "_ZTVN4node24NodeArrayBufferAllocatorE");
  void* allocate = dlsym(RTLD_DEFAULT, "_ZN4node24NodeArrayBufferAllocator8AllocateEm");
  void* uninit = dlsym(RTLD_DEFAULT, "_ZN4node24NodeArrayBufferAllocator21AllocateUninitializedEm");
  if (vtable == nullptr || allocate == nullptr || uninit == nullptr)
    return "this node binary does not export node::NodeArrayBufferAllocator";
  void** address_point = static_cast<void**>(vtable) + 2;  // after offset-to-top and RTTI
  if (vptr != address_point) return "the isolate's ArrayBuffer allocator is not Node's default one";
  if (patched_vptr != nullptr) {  // another isolate (a worker thread) loading us: same class
    __atomic_store_n(reinterpret_cast<void***>(allocator), patched_vptr, __ATOMIC_RELEASE);
    return "";
  }
  Dl_info info;
  ElfW(Sym)* sym = nullptr;
  if (dladdr1(vtable, &info, reinterpret_cast<void**>(&sym), RTLD_DL_SYMENT) == 0 || sym == nullptr ||
      sym->st_size == 0 || sym->st_size % sizeof(void*) != 0 || sym->st_size / sizeof(void*) > kMaxVtableWords)
    return "the size of Node's allocator vtable is unknown";
  size_t words = sym->st_size / sizeof(void*);
  ptrdiff_t slot_allocate = SlotOf(&v8::ArrayBuffer::Allocator::Allocate);
  ptrdiff_t slot_uninit = SlotOf(&v8::ArrayBuffer::Allocator::AllocateUninitialized);
  if (slot_allocate < 0 || slot_uninit < 0 || static_cast<size_t>(slot_allocate) + 2 >= words ||
      static_cast<size_t>(slot_uninit) + 2 >= words)
    return "unexpected vtable layout";
  if (address_point[slot_allocate] != allocate || address_point[slot_uninit] != uninit)
    return "Node's allocator vtable does not hold Allocate where the V8 headers say";
  memcpy(patched_vtable, vtable, sym->st_size);
  void** copy_point = patched_vtable + 2;
  node_allocate = reinterpret_cast<AllocateFn>(address_point[slot_allocate]);
  node_allocate_uninitialized = reinterpret_cast<AllocateFn>(address_point[slot_uninit]);
  copy_point[slot_allocate] = reinterpret_cast<void*>(&HugeAllocate);
  copy_point[slot_uninit] = reinterpret_cast<void*>(&HugeAllocateUninitialized);
  patched_vptr = copy_point;
  // One aligned word: a thread allocating right now sees the old vtable or the new, both valid.
  __atomic_store_n(reinterpret_cast<void***>(allocator), copy_point, __ATOMIC_RELEASE);
  return "";
}

std::string ThpMode() {
  FILE* f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "re");
  if (f == nullptr) return "unsupported";
  char line[128] = {0};
  bool got = fgets(line, sizeof line, f) != nullptr;
  fclose(f);
  if (!got) return "unknown";
  const char* open = strchr(line, '[');
  const char* close = open ? strchr(open, ']') : nullptr;
  if (open == nullptr || close == nullptr) return "unknown";
  return std::string(open + 1, close);
}

// hugePages() -> { mode, hooked, reason, buffers, bytes }
//   mode: the kernel's THP mode ('always' | 'madvise' | 'never' | 'unsupported' | 'unknown')
//   hooked: large ArrayBuffers of this isolate are advised; reason: why not, when not
//   buffers, bytes: how many were advised so far, and how many bytes of them
Napi::Value HugePages(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object out = Napi::Object::New(env);
  out.Set("mode", ThpMode());
  out.Set("hooked", hooked);
  out.Set("reason", hooked ? std::string() : reason);
  out.Set("buffers", static_cast<double>(advised_buffers.load()));
  out.Set("bytes", static_cast<double>(advised_bytes.load()));
  return out;
}

// hugePageBytes(view) -> bytes of the view's memory that the kernel backs with huge pages, from
// the AnonHugePages of the mappings it lies in (each counted up to the part the view covers).
// `view`: a typed array, DataView, ArrayBuffer or SharedArrayBuffer (N-API in Node 20 cannot
// read a SharedArrayBuffer, so V8 is asked directly).
Napi::Value HugePageBytes(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1) return ThrowType(env, "hugePageBytes(view): view is missing");
  // napi_value is a v8::Local<v8::Value> in Node's implementation (v8impl::V8LocalValueFromJsValue).
  napi_value raw = info[0];
  v8::Local<v8::Value> value;
  static_assert(sizeof(value) == sizeof(raw), "napi_value is not a v8::Local");
  memcpy(static_cast<void*>(&value), &raw, sizeof(raw));
  uintptr_t start = 0;
  size_t length = 0;
  if (value->IsArrayBufferView()) {
    v8::Local<v8::ArrayBufferView> view = value.As<v8::ArrayBufferView>();
    start = reinterpret_cast<uintptr_t>(view->Buffer()->Data()) + view->ByteOffset();
    length = view->ByteLength();
  } else if (value->IsArrayBuffer()) {
    start = reinterpret_cast<uintptr_t>(value.As<v8::ArrayBuffer>()->Data());
    length = value.As<v8::ArrayBuffer>()->ByteLength();
  } else if (value->IsSharedArrayBuffer()) {
    start = reinterpret_cast<uintptr_t>(value.As<v8::SharedArrayBuffer>()->Data());
    length = value.As<v8::SharedArrayBuffer>()->ByteLength();
  } else {
    return ThrowType(env, "hugePageBytes(view): view must be a typed array, a DataView or an ArrayBuffer");
  }
  uintptr_t end = start + length;
  FILE* smaps = fopen("/proc/self/smaps", "re");
  if (smaps == nullptr) return ThrowErrno(env, "hugePageBytes: open /proc/self/smaps");
  char line[512];
  uintptr_t vma_start = 0, vma_end = 0;
  double total = 0;
  while (fgets(line, sizeof line, smaps) != nullptr) {
    unsigned long a = 0, b = 0;
    if (sscanf(line, "%lx-%lx ", &a, &b) == 2) {  // a mapping's first line
      vma_start = a;
      vma_end = b;
      continue;
    }
    unsigned long kb = 0;
    if (sscanf(line, "AnonHugePages: %lu kB", &kb) != 1) continue;
    if (vma_end <= start || vma_start >= end) continue;
    uintptr_t overlap = (vma_end < end ? vma_end : end) - (vma_start > start ? vma_start : start);
    double huge = static_cast<double>(kb) * 1024;
    total += huge < overlap ? huge : static_cast<double>(overlap);
  }
  fclose(smaps);
  return Napi::Number::New(env, total);
}

}  // namespace

Napi::Object InitHugePages(Napi::Env env, Napi::Object exports) {
  // The first isolate to load the addon (the main thread's, in practice) decides what
  // hugePages() reports; a worker thread's isolate is rewired too when it loads the addon.
  std::string why = Hook(v8::Isolate::GetCurrent()->GetArrayBufferAllocator());
  if (!hooked) {
    reason = why;
    hooked = why.empty();
  }
  exports.Set("hugePages", Napi::Function::New(env, HugePages, "hugePages"));
  exports.Set("hugePageBytes", Napi::Function::New(env, HugePageBytes, "hugePageBytes"));
  return exports;
}

}  // namespace sf
