// runtime/stack_pool.hpp — fiber stacks carved from large mmap'd slabs.
//
// Guarantees:
// - One mapping per slab (hundreds of stacks), never one per stack, so a million live fibers fit
//   under the default vm.max_map_count (65530).
// - Every stack has a guard region below it, options::guard_size bytes (64 KiB by default:
//   a frame of up to 64 KiB built without -fstack-clash-protection cannot jump it into the
//   neighbouring stack) — installed with MADV_GUARD_INSTALL, which neither splits the slab's
//   mapping nor costs memory, or, where the kernel lacks it, with mprotect up to a budget of
//   mappings and a canary word beyond it (see rt::guard_policy). A guarded overflow faults; the
//   SIGSEGV handler in fatal.cpp reports a fault anywhere in the guard region.
// - Pages are only touched by the fiber that runs on them: a parked fiber whose frames fit in a
//   page costs one page of RSS.
// - Stacks are recycled through a per-worker cache (no lock, no syscall in the common case).
//   When a worker goes idle, the stacks it caches beyond the high-water mark are
//   madvise(MADV_DONTNEED)'d in batches and moved to a shared cold list, so RSS falls again
//   after a burst (the scheduler does it at once when the whole runtime is idle, else after the
//   worker slept stack_trim_delay_ns unwoken). Releasing at idle rather than at every give()
//   avoids a churn where stacks are released and faulted in again while the burst is still
//   running. A cache that grows past 16x the mark (fibers started elsewhere end here) hands the
//   excess over the mark to a shared warm list (at most 8x the mark, resident, taken before cold
//   stacks) and releases the rest.
// - Under Valgrind, every stack is registered as a stack when it is carved and deregistered
//   before its slab is unmapped (runtime/valgrind.hpp), so Memcheck follows fiber switches.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <vector>

#include "rt/options.hpp"

namespace rt::detail {

// A stack as the pool hands it out: the slot's lowest address (page aligned) plus a flag bit that
// says it has a canary instead of a guard page.
struct stack_slot {
  std::uintptr_t bits = 0;
  char* base() const noexcept { return reinterpret_cast<char*>(bits & ~std::uintptr_t{1}); }
  bool has_canary() const noexcept { return bits & 1; }
};

class stack_pool;

// A worker's private cache of warm stacks. Only its worker touches it.
class stack_cache {
 public:
  // Takes a stack: a warm one when cached, else a batch from the shared pool. (Inline: the
  // cached case is on every fiber's first run.)
  stack_slot take(stack_pool& pool) {
    if (stacks_.empty()) [[unlikely]]
      refill(pool);
    const stack_slot s = stacks_.back();
    stacks_.pop_back();
    return s;
  }
  // Gives a stack back (kept warm for reuse). Inline: on every fiber's exit; defined below.
  void give(stack_pool& pool, stack_slot s);
  // Releases the cached stacks beyond the high-water mark to the OS (the worker is going idle).
  void trim(stack_pool& pool);
  // Cached stacks now.
  std::size_t size() const noexcept { return stacks_.size(); }
  // Owner: publishes size() for other threads (rt::stats), at idle transitions only — never on
  // the spawn path. relaxed: a figure read alone.
  void publish_size() noexcept { published_.store(stacks_.size(), std::memory_order_relaxed); }
  // Any thread (rt::stats): the cached stacks as last published by the owner.
  std::size_t published_size() const noexcept { return published_.load(std::memory_order_relaxed); }

 private:
  void refill(stack_pool& pool);        // takes a batch from the shared pool
  void share_excess(stack_pool& pool);  // hands the coldest beyond the high-water mark down
  std::vector<stack_slot> stacks_;
  std::atomic<std::size_t> published_{0};
};

// The stacks of one runtime: slabs, guard policy, and the cold list shared by all workers.
class stack_pool {
 public:
  explicit stack_pool(const options& opts);
  ~stack_pool();
  stack_pool(const stack_pool&) = delete;
  stack_pool& operator=(const stack_pool&) = delete;

  // Stacks a worker keeps cached when it trims (options::stack_pool_high_water, adjusted).
  std::size_t high_water() const noexcept { return high_water_; }
  // Usable bytes per stack (options::stack_size rounded up to pages).
  std::size_t usable_size() const noexcept { return usable_; }
  // Bytes below the usable part of each stack: the guard region (options::guard_size).
  std::size_t guard_size() const noexcept { return guard_; }
  // The usable stack's lowest and one-past-highest addresses.
  char* bottom(stack_slot s) const noexcept { return s.base() + guard_; }
  char* top(stack_slot s) const noexcept { return s.base() + guard_ + usable_; }
  // The kind of guard that stacks get from now on, for docs and tests.
  const char* guard_kind() const noexcept;
  // The canary value written at a canary stack's lowest word.
  static constexpr std::uint64_t canary_value = 0x5ca1ab1e0ddba11ull;

 private:
  friend class stack_cache;
  // Appends up to n stacks to out: cold ones first, then freshly carved ones.
  void take_batch(std::vector<stack_slot>& out, std::size_t n);
  // Releases the pages of these stacks to the OS and keeps them on the cold list.
  void release(const stack_slot* stacks, std::size_t n);
  // Keeps these resident stacks on the shared warm list, releasing what does not fit.
  void share_warm(const stack_slot* stacks, std::size_t n);

 public:
  // Releases the shared warm list to the OS (the runtime is idle).
  void trim_shared();
  // The shared lists and the slabs, for rt::stats (takes the pool's mutex).
  struct shared_counts {
    std::size_t warm = 0, cold = 0;  // stacks on the shared warm and cold lists
    std::size_t mapped_bytes = 0;    // every slab, guards included
  };
  shared_counts counts();
  // Bytes of one stack slot: its usable part and its guard region.
  std::size_t slot_size() const noexcept { return slot_; }

 private:
  // Maps a new slab; called with mu_ held.
  void map_slab();
  // Installs guard pages on the slab's first slots; returns how many got one (the rest get a
  // canary).
  std::size_t guard_slab(char* slab, std::size_t nslots);

  std::size_t usable_;
  std::size_t guard_;
  std::size_t slot_;        // guard + usable
  std::size_t slab_slots_;  // slots per slab
  std::size_t high_water_;
  guard_policy policy_;        // becomes mprotect/canary when the kernel lacks a feature
  std::size_t mprotect_left_;  // mprotect guards still allowed

  std::mutex mu_;  // guards everything below
  std::vector<std::pair<char*, std::size_t>> slabs_;
  char* carve_slab_ = nullptr;     // the newest slab
  std::size_t carve_index_ = 0;    // its next uncarved slot
  std::size_t carve_guarded_ = 0;  // its slots [0, carve_guarded_) have guard pages
  std::vector<stack_slot> cold_;
  // Resident stacks that a worker with too many handed over (at most warm_cap_), taken before
  // cold ones: when fibers start on one worker and exit on another, stacks flow one way, and
  // would otherwise go round through MADV_DONTNEED and page faults.
  std::vector<stack_slot> warm_;
  std::size_t warm_cap_;
  bool process_madvise_ok_ = true;
  std::vector<unsigned> valgrind_ids_;  // stacks registered with Valgrind (only under Valgrind)
};

inline void stack_cache::give(stack_pool& pool, stack_slot s) {
  stacks_.push_back(s);
  if (stacks_.size() > 16 * pool.high_water()) [[unlikely]]
    share_excess(pool);
}

}  // namespace rt::detail
