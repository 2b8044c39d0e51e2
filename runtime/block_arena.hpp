// runtime/block_arena.hpp — where a runtime's chunks of control blocks live.
//
//   block_arena arena;
//   void* chunk = arena.take(256 * sizeof(fiber));  // stays until the arena is destroyed
//
// Control blocks are never freed while a runtime lives (they go back to free lists), so chunk
// memory only grows, and its growth is a burst's cost: spawn_million queues up to a million
// fibers that have not run, 288 bytes each, and on the virtual machines we measure on the first
// touch of fresh memory, not the work, dominated that burst (perf: the spawning worker spent
// 40 % of its time in the loop that constructs new chunks, and 60 % in the kernel's page
// clearing with huge pages in some runs). Past the first few chunks, chunks are carved from 2 MiB
// slabs aligned to 2 MiB and advised MADV_HUGEPAGE, so that the kernel may back each with one
// huge page: one page fault per 7,000 control blocks instead of one per 14, and one TLB entry.
//
// Guarantees: take() returns memory aligned to 64 bytes (alignof(fiber) and more), not
// initialised, valid until the arena is destroyed; a program that never has more than
// `heap_chunks` chunks gets them from operator new as before (no 2 MiB of resident memory for a
// small program). Sanitizer builds take every chunk from operator new, so that ASan and TSan see
// control blocks as heap memory. When the kernel has no transparent huge pages (or refuses the
// advice), the slabs are ordinary memory: same behaviour, only the page faults differ.
// Not thread-safe: the runtime calls take() under chunks_mu.
#pragma once

#include <cstddef>
#include <new>
#include <vector>

namespace rt::detail {

// Makes room in v for one more element, growing it geometrically (reserve(size() + 1) alone would
// reallocate on every call). Call before an allocation that v must then record, so that recording
// it cannot throw.
template <class Vector>
void reserve_one_more(Vector& v) {
  if (v.size() == v.capacity()) v.reserve(v.capacity() < 8 ? 8 : 2 * v.capacity());
}

class block_arena {
 public:
  // How many chunks come from operator new before slabs are used.
  static constexpr std::size_t heap_chunks = 8;
  // A slab's size and alignment: one x86-64 huge page.
  static constexpr std::size_t slab_bytes = std::size_t{2} << 20;
  // The alignment of what take() returns.
  static constexpr std::size_t alignment = 64;

  block_arena() = default;
  block_arena(const block_arena&) = delete;
  block_arena& operator=(const block_arena&) = delete;
  // Frees every chunk and slab.
  ~block_arena();

  // `bytes` (at most slab_bytes) of memory for one chunk; throws std::bad_alloc when there is
  // none.
  void* take(std::size_t bytes);
  // The bytes of every slab mapped so far (memory outside malloc's accounts).
  std::size_t slab_bytes_mapped() const noexcept { return slabs_.size() * slab_bytes; }

 private:
  // A new slab, or nullptr when mmap refuses (take() then falls back to operator new).
  char* map_slab() noexcept;

  std::vector<void*> heap_;   // chunks from operator new
  std::vector<char*> slabs_;  // slabs, each slab_bytes long
  char* next_ = nullptr;      // the unused rest of the newest slab
  std::size_t left_ = 0;
};

}  // namespace rt::detail
