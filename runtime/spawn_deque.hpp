// runtime/spawn_deque.hpp — a worker's deque of freshly spawned fibers: the owner pushes and
// pops the newest end (LIFO), thieves take the oldest end (FIFO). A bounded work-stealing deque
// after Chase and Lev, with the C++ memory orders of Lê, Pop, Cohen and Zappa Nardelli,
// "Correct and efficient work-stealing for weak memory models" (PPoPP 2013).
//
// Why LIFO for the owner: a tree of spawns (skynet, fork-join) then runs depth first. Only the
// fibers on the current path and their pending siblings are alive — a few hundred — and their
// stacks stay cache-warm; FIFO would start a whole level of the tree before finishing any of it
// (skynet: 110,000 parked inner fibers and a fresh stack page each, instead of about 60).
// Why FIFO for thieves: the oldest entry is the root of the largest pending subtree, so one
// steal moves a big piece of work and the thief goes on depth first on its own.
//
// Guarantees: every pushed element is returned exactly once, by pop() or by one steal(); the
// owner alone calls push(), pop() and take_oldest(); any thread may call steal() and size().
//
// Memory-ordering argument (indices only grow; the live elements are [top, bottom)):
//   - push writes the slot, then publishes it with a release store of `bottom`; steal's acquire
//     load of `bottom` therefore sees the slot and everything the owner wrote to the fiber.
//   - pop first lowers `bottom` to b (claiming slot b), then a seq_cst fence, then reads `top`;
//     steal reads `top` (t), then a seq_cst fence, then reads `bottom`. The two fences are
//     totally ordered: if the owner's comes first, the thief's read of `bottom` sees b and the
//     thief only takes slots below b; if the thief's comes first, the owner's read of `top` sees
//     every CAS that thief completed before its fence. Either way an element other than the last
//     is claimed by one party only; the last one (top == b) is decided by a CAS on `top` that
//     both parties must win (the paper proves the whole algorithm under exactly these orders).
//   - A thief's slot read may be stale (the owner may have reused the slot after the element was
//     taken); the thief's CAS on `top` then fails, because taking that element moved `top`.
//     The owner never overwrites a live slot: push refuses when bottom - top == capacity.
//   - take_oldest moves `top` by k with one CAS, exactly as k steals would, leaving at least one
//     element so that it never races pop() over the last one (the owner does not race itself).
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>

namespace rt::detail {

template <class T, std::size_t Capacity>
class spawn_deque {
  static_assert((Capacity & (Capacity - 1)) == 0, "capacity must be a power of two");

 public:
  // Owner: adds `v` at the newest end; false (nothing changed) when full.
  bool push(T* v) noexcept {
    const std::int64_t b = bottom_.load(std::memory_order_relaxed);
    // acquire: pairs with a thief's successful CAS, so its read of the slot happened before we
    // overwrite that slot.
    const std::int64_t t = top_.load(std::memory_order_acquire);
    if (b - t >= static_cast<std::int64_t>(Capacity)) return false;
    slot(b).store(v, std::memory_order_relaxed);
    // release: publishes the slot (and the fiber behind it) to steal()'s acquire load.
    bottom_.store(b + 1, std::memory_order_release);
    return true;
  }

  // Owner: removes and returns the newest element, or nullptr when empty.
  T* pop() noexcept {
    const std::int64_t b = bottom_.load(std::memory_order_relaxed) - 1;
    bottom_.store(b, std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_seq_cst);  // see the argument at the top
    std::int64_t t = top_.load(std::memory_order_relaxed);
    if (t > b) {  // empty
      bottom_.store(b + 1, std::memory_order_relaxed);
      return nullptr;
    }
    T* v = slot(b).load(std::memory_order_relaxed);
    if (t == b) {  // the last element: a thief may be taking it too; the CAS decides
      if (!top_.compare_exchange_strong(t, t + 1, std::memory_order_seq_cst,
                                        std::memory_order_relaxed)) {
        v = nullptr;
      }
      bottom_.store(b + 1, std::memory_order_relaxed);
    }
    return v;
  }

  // Any thread: removes and returns the oldest element, or nullptr when empty or when another
  // party took it first.
  T* steal() noexcept {
    std::int64_t t = top_.load(std::memory_order_acquire);
    std::atomic_thread_fence(std::memory_order_seq_cst);  // see the argument at the top
    // acquire: pairs with push()'s release store of bottom.
    const std::int64_t b = bottom_.load(std::memory_order_acquire);
    if (t >= b) return nullptr;
    T* v = slot(t).load(std::memory_order_relaxed);
    if (!top_.compare_exchange_strong(t, t + 1, std::memory_order_seq_cst,
                                      std::memory_order_relaxed)) {
      return nullptr;  // lost to the owner or another thief
    }
    return v;
  }

  // Owner: removes up to `max` of the oldest elements into `out` (oldest first), always leaving
  // the newest in place; returns how many. For moving work to where more thieves can see it.
  std::size_t take_oldest(T** out, std::size_t max) noexcept {
    for (;;) {
      std::int64_t t = top_.load(std::memory_order_acquire);
      const std::int64_t b = bottom_.load(std::memory_order_relaxed);
      const std::int64_t avail = b - t - 1;  // leave the newest: pop() owns the last-element race
      if (avail <= 0) return 0;
      const std::size_t k = std::min<std::size_t>(max, static_cast<std::size_t>(avail));
      for (std::size_t i = 0; i < k; ++i) {
        out[i] = slot(t + static_cast<std::int64_t>(i)).load(std::memory_order_relaxed);
      }
      if (top_.compare_exchange_strong(t, t + static_cast<std::int64_t>(k),
                                       std::memory_order_seq_cst, std::memory_order_relaxed)) {
        return k;
      }
      // A thief took the oldest meanwhile: read again.
    }
  }

  // Any thread: how many elements there are (a snapshot; exact only for the owner at rest).
  std::size_t size() const noexcept {
    const std::int64_t b = bottom_.load(std::memory_order_acquire);
    const std::int64_t t = top_.load(std::memory_order_acquire);
    return b > t ? static_cast<std::size_t>(b - t) : 0;
  }

  // Owner, with no thief about (shutdown): forgets every element.
  void clear() noexcept { top_.store(bottom_.load(std::memory_order_relaxed)); }

 private:
  std::atomic<T*>& slot(std::int64_t i) noexcept {
    return slots_[static_cast<std::size_t>(i) & (Capacity - 1)];
  }

  alignas(64) std::atomic<std::int64_t> top_{0};     // thieves' end: the oldest element
  alignas(64) std::atomic<std::int64_t> bottom_{0};  // owner's end: one past the newest
  std::atomic<T*> slots_[Capacity] = {};
};

}  // namespace rt::detail
