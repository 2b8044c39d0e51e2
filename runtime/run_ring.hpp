// runtime/run_ring.hpp — a worker's local run queue: a bounded ring that its owner alone pushes
// to (FIFO) and that the owner and thieves take from. The design of Go's per-P runq (proc.go:
// runqput, runqget, runqgrab), written afresh for C++ atomics.
//
// Why not a general MPMC queue: a yield is a push and a pop of this queue, and a general queue
// (moodycamel::ConcurrentQueue, which this replaced) spends ~70 instructions on the pair in its
// block and index bookkeeping. Here a push is a load, a store and a release store; a pop is two
// loads and a CAS; a steal of half the ring is one CAS for the whole batch.
//
// Guarantees: every pushed element is returned exactly once, by one pop(), one steal_half() or
// one take_oldest_half(); the owner alone calls push(), push_bulk(), pop() and
// take_oldest_half(); any thread
// may call steal_half() and size(). push() refuses (returns false, nothing changed) when the ring
// is full: the owner then moves half of it elsewhere (runtime::push_local: to the global queue,
// as Go's runqputslow), so the ring never grows and a fiber never waits behind an unbounded
// backlog on one worker while others could take it.
//
// Memory-ordering argument (head and tail only grow, modulo 2^32; the live elements are
// [head, tail)):
//   - Only the owner writes `tail`. push writes the slot (relaxed), then publishes it with a
//     release store of `tail`; a thief's acquire load of `tail` therefore sees the slot, and
//     everything the owner wrote to the fiber before pushing it (its saved context).
//   - Every consumer, the owner included, claims elements by a CAS on `head` from the value it
//     read to that value + k. Of two consumers that read the same head, one CAS fails: an element
//     is claimed once. The CAS is acq_rel: release, so that the consumer's slot reads happen
//     before the owner's push (which loads `head` with acquire) can reuse those slots; acquire,
//     for the next consumer's reads.
//   - A consumer's slot read may be stale: after it loaded head, others may have claimed those
//     elements and the owner may have reused their slots. But then `head` moved, and the CAS
//     fails; the stale value is discarded. Slots are atomics (relaxed) so the read is no race.
//   - The owner never overwrites a live slot: push refuses when tail - head == capacity, with
//     head loaded (acquire) after every claim that freed a slot it reuses.
//   - A thief reads head, then tail: tail - head may exceed the capacity if the owner pushed and
//     others popped in between (head is stale). The thief then retries; it never takes more than
//     half of what it saw.
//   - ABA on head needs 2^32 claims between a consumer's load and its CAS: as Go, not guarded.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace rt::detail {

template <class T, std::uint32_t Capacity>
class run_ring {
  static_assert(Capacity >= 2 && (Capacity & (Capacity - 1)) == 0,
                "capacity must be a power of two");

 public:
  static constexpr std::uint32_t capacity = Capacity;

  // Owner: adds `v` at the tail; false (nothing changed) when full.
  bool push(T* v) noexcept {
    // acquire: pairs with a consumer's CAS, so its read of the slot we reuse happened before.
    const std::uint32_t h = head_.load(std::memory_order_acquire);
    const std::uint32_t t = tail_.load(std::memory_order_relaxed);  // only we write it
    if (t - h >= Capacity) return false;
    slot(t).store(v, std::memory_order_relaxed);
    // release: publishes the slot (and the fiber behind it) to consumers' acquire loads.
    tail_.store(t + 1, std::memory_order_release);
    return true;
  }

  // Owner: adds vs[0..n) at the tail, in order, as far as there is room (one release store for
  // the whole batch); how many it added.
  std::uint32_t push_bulk(T* const* vs, std::uint32_t n) noexcept {
    // acquire: as in push().
    const std::uint32_t h = head_.load(std::memory_order_acquire);
    const std::uint32_t t = tail_.load(std::memory_order_relaxed);  // only we write it
    const std::uint32_t room = Capacity - (t - h);
    const std::uint32_t k = n < room ? n : room;
    for (std::uint32_t i = 0; i < k; ++i) slot(t + i).store(vs[i], std::memory_order_relaxed);
    // release: publishes the k slots, as push()'s store publishes one.
    tail_.store(t + k, std::memory_order_release);
    return k;
  }

  // Owner: removes and returns the oldest element, or nullptr when empty.
  T* pop() noexcept {
    std::uint32_t h = head_.load(std::memory_order_acquire);
    for (;;) {
      const std::uint32_t t = tail_.load(std::memory_order_relaxed);  // only we write it
      if (t == h) return nullptr;
      T* v = slot(h).load(std::memory_order_relaxed);
      // acq_rel: see the argument above. On failure h is reloaded (acquire) and we retry.
      if (head_.compare_exchange_weak(h, h + 1, std::memory_order_acq_rel,
                                      std::memory_order_acquire)) {
        return v;
      }
    }
  }

  // Any thread: takes up to half (rounded up) of the elements, at most `max`, oldest first, into
  // out[]; how many.
  std::uint32_t steal_half(T** out, std::uint32_t max) noexcept {
    for (;;) {
      std::uint32_t h = head_.load(std::memory_order_acquire);
      // acquire: pairs with push's release store; the slots below t are written.
      const std::uint32_t t = tail_.load(std::memory_order_acquire);
      const std::uint32_t n = t - h;
      if (n > Capacity) continue;  // head was stale (see the argument above): look again
      std::uint32_t k = n - n / 2;
      if (k > max) k = max;
      if (k == 0) return 0;
      for (std::uint32_t i = 0; i < k; ++i) out[i] = slot(h + i).load(std::memory_order_relaxed);
      if (head_.compare_exchange_strong(h, h + k, std::memory_order_acq_rel,
                                        std::memory_order_relaxed)) {
        return k;
      }
    }
  }

  // Owner: takes the oldest half of a full ring (or of whatever it holds) into out[] (room for
  // Capacity / 2); how many. A steal by the owner itself, so it races thieves the same way.
  std::uint32_t take_oldest_half(T** out) noexcept { return steal_half(out, Capacity / 2); }

  // Any thread: how many elements it holds (exact for the owner between its own operations;
  // a snapshot for others).
  std::uint32_t size() const noexcept {
    const std::uint32_t h = head_.load(std::memory_order_acquire);
    const std::uint32_t t = tail_.load(std::memory_order_acquire);
    const std::uint32_t n = t - h;
    // A stale head (consumers moved it between the two loads): some elements were there. Never
    // report empty then: a parking worker's re-check (scheduler.hpp) must not miss work.
    return n > Capacity ? Capacity : n;
  }

 private:
  std::atomic<T*>& slot(std::uint32_t i) noexcept { return slots_[i & (Capacity - 1)]; }

  // Consumers' index, on its own line: thieves CAS it while the owner pushes at `tail_`.
  alignas(64) std::atomic<std::uint32_t> head_{0};
  alignas(64) std::atomic<std::uint32_t> tail_{0};
  std::atomic<T*> slots_[Capacity] = {};
};

}  // namespace rt::detail
