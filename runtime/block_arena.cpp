// runtime/block_arena.cpp — see block_arena.hpp.
#include "block_arena.hpp"

#include <sys/mman.h>

#include <cstdint>

#include "sanitizer.hpp"

namespace rt::detail {

block_arena::~block_arena() {
  for (void* p : heap_) ::operator delete (p, std::align_val_t{alignment});
  for (char* s : slabs_) munmap(s, slab_bytes);
}

char* block_arena::map_slab() noexcept {
  // Twice the size, then the unaligned ends cut off: mmap guarantees only page alignment.
  void* p =
      mmap(nullptr, 2 * slab_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return nullptr;
  const auto raw = reinterpret_cast<std::uintptr_t>(p);
  const std::uintptr_t start = (raw + slab_bytes - 1) & ~(std::uintptr_t{slab_bytes} - 1);
  if (start != raw) munmap(p, start - raw);
  if (const std::uintptr_t tail = raw + 2 * slab_bytes - (start + slab_bytes); tail != 0)
    munmap(reinterpret_cast<void*>(start + slab_bytes), tail);
  // Advice only: without transparent huge pages (or with them off) it fails or does nothing,
  // and the slab is ordinary memory.
  (void)madvise(reinterpret_cast<void*>(start), slab_bytes, MADV_HUGEPAGE);
  return reinterpret_cast<char*>(start);
}

void* block_arena::take(std::size_t bytes) {
  bytes = (bytes + alignment - 1) & ~(alignment - 1);
  if (built_with_sanitizer || heap_.size() < heap_chunks || bytes > slab_bytes) {
    reserve_one_more(heap_);  // before the allocation: nothing leaks if this throws
    void* p = ::operator new (bytes, std::align_val_t{alignment});
    heap_.push_back(p);
    return p;
  }
  if (left_ < bytes) {
    reserve_one_more(slabs_);
    char* s = map_slab();
    if (!s) {  // no address space for a slab: maybe still for a chunk (else std::bad_alloc)
      reserve_one_more(heap_);
      void* p = ::operator new (bytes, std::align_val_t{alignment});
      heap_.push_back(p);
      return p;
    }
    slabs_.push_back(s);
    next_ = s;
    left_ = slab_bytes;
  }
  void* p = next_;
  next_ += bytes;
  left_ -= bytes;
  return p;
}

}  // namespace rt::detail
