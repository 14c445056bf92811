// Memory regions: page-aligned anonymous memory exposed as an ArrayBuffer. Large regions are
// aligned to 2 MiB and advised MADV_HUGEPAGE before anything is written, so that a fork copies a
// few hundred page-table entries per GiB instead of 262144 (1 GiB forked in ~2 ms, not ~10).

#include "addon.h"

#include <cerrno>
#include <cstdint>
#include <cstring>

#include <sys/mman.h>
#include <unistd.h>

namespace sf {
namespace {

constexpr size_t kHuge = 2u << 20;

struct Region {
  void* base;   // what mmap returned
  size_t size;  // what mmap mapped
};

void FreeRegion(Napi::Env, void*, Region* region) {
  munmap(region->base, region->size);
  delete region;
}

// allocRegion(bytes, { hugePages = true }) -> ArrayBuffer (zero-filled)
Napi::Value AllocRegion(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber())
    return ThrowType(env, "allocRegion(bytes): bytes must be a number");
  double requested = info[0].As<Napi::Number>().DoubleValue();
  if (!(requested >= 1) || requested > 1e15 || requested != static_cast<double>(static_cast<size_t>(requested)))
    return ThrowRange(env, "allocRegion(bytes): bytes must be a positive integer, got " +
                               std::to_string(requested));
  bool huge = true;
  if (info.Length() > 1 && info[1].IsObject()) {
    Napi::Object opts = info[1].As<Napi::Object>();
    if (opts.Has("hugePages")) huge = opts.Get("hugePages").ToBoolean();
  }
  size_t bytes = static_cast<size_t>(requested);
  size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  huge = huge && bytes >= kHuge;
  size_t align = huge ? kHuge : page;
  size_t length = (bytes + align - 1) / align * align;
  size_t mapped = huge ? length + kHuge : length;
  void* base = mmap(nullptr, mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (base == MAP_FAILED) return ThrowErrno(env, "allocRegion: mmap of " + std::to_string(mapped) + " bytes");
  char* data = static_cast<char*>(base);
  if (huge) {
    uintptr_t addr = reinterpret_cast<uintptr_t>(base);
    uintptr_t aligned = (addr + kHuge - 1) & ~(static_cast<uintptr_t>(kHuge) - 1);
    size_t head = aligned - addr;
    size_t tail = mapped - head - length;
    if (head > 0) munmap(base, head);
    if (tail > 0) munmap(reinterpret_cast<char*>(aligned) + length, tail);
    base = reinterpret_cast<void*>(aligned);
    mapped = length;
    data = static_cast<char*>(base);
    // Best effort: THP may be disabled ("never"); the region still works with small pages.
    madvise(base, length, MADV_HUGEPAGE);
  }
  auto* region = new Region{base, mapped};
  return Napi::ArrayBuffer::New(env, data, bytes, FreeRegion, region);
}

}  // namespace

Napi::Object InitHugePages(Napi::Env env, Napi::Object exports);  // hugepages.cc

Napi::Object InitMemory(Napi::Env env, Napi::Object exports) {
  exports.Set("allocRegion", Napi::Function::New(env, AllocRegion, "allocRegion"));
  return InitHugePages(env, exports);
}

}  // namespace sf
