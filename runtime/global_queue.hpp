// runtime/global_queue.hpp — the runtime's global run queue: fibers no worker owns yet (a full
// local queue's older half, spawns from plain threads, the main fiber). Go's sched.runq: a FIFO
// under one lock, taken from in batches.
//
// Why a lock and not a lock-free queue: every use moves a batch. A spawn burst on a worker sends
// half of its full `spawned` deque here at a time (32 fibers), and a worker that looks here takes
// up to 32 (runtime::take_global); plain threads and the main fiber add one at a time, rarely.
// So the lock is taken once per batch, held for a copy of at most 32 pointers, and a fiber's
// round trip through the queue costs a few instructions. moodycamel::ConcurrentQueue, which this
// replaced, spent about 25 instructions per fiber on it (block and producer bookkeeping, and a
// malloc per 32 queued fibers in a burst; issue 13's counts).
//
// Guarantees: every pushed element is taken exactly once, oldest first; any thread may call
// every member. The queue is a list of 256-element segments: it grows a segment at a time (no
// copy of what is queued, so the lock is never held for long), and keeps used-up segments as
// spares, as moodycamel kept its blocks: a burst of n queued fibers keeps n pointers of memory.
// It never refuses: if a segment cannot be allocated, the process ends with a message (a
// runnable fiber must not be lost).
//
// Memory-ordering argument: every access to the segments is under `lock_` (a spinlock: acquire on
// lock, release on unlock), so a taker sees each slot, and what the pusher wrote to the fiber
// before pushing it. `size_` is written under the lock and read outside it (relaxed) only as a
// hint — "is there anything" — by workers deciding whether to take the lock; the wake protocol
// ("Why no wakeup is lost", scheduler.hpp) puts a seq_cst fence between a pusher's store of
// `size_` and its load of the idle counters, and between a parking worker's store of those
// counters and its load of `size_`: one of the two always sees the other.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <mutex>
#include <new>
#include <utility>

#include "fatal.hpp"
#include "rt/detail/wait.hpp"  // spinlock

namespace rt::detail {

template <class T>
class global_queue {
 public:
  // Elements per segment: a segment is 2 KiB, and a burst allocates one per 256 queued fibers.
  static constexpr std::size_t segment_size = 256;

  global_queue() = default;
  global_queue(const global_queue&) = delete;
  global_queue& operator=(const global_queue&) = delete;
  ~global_queue() {
    free_list(head_);
    free_list(spare_);
  }

  // Adds v at the back.
  void push(T* v) noexcept { push_bulk(&v, 1); }

  // Adds vs[0..n) at the back, in that order.
  void push_bulk(T* const* vs, std::size_t n) noexcept {
    std::lock_guard lk(lock_);
    for (std::size_t done = 0; done < n;) {
      if (!tail_ || tail_pos_ == segment_size) append_segment();
      const std::size_t k = std::min(n - done, segment_size - tail_pos_);
      copy(vs + done, k, &tail_->slots[tail_pos_]);
      tail_pos_ += k;
      done += k;
    }
    size_.store(size_.load(std::memory_order_relaxed) + n,
                std::memory_order_relaxed);  // relaxed: see the argument at the top
  }

  // Removes up to `max` of the oldest elements into out (oldest first); returns how many.
  std::size_t take_bulk(T** out, std::size_t max) noexcept {
    std::lock_guard lk(lock_);
    const std::size_t count = size_.load(std::memory_order_relaxed);
    const std::size_t want = std::min(max, count);
    for (std::size_t done = 0; done < want;) {
      if (head_pos_ == segment_size) drop_head_segment();
      const std::size_t end = head_ == tail_ ? tail_pos_ : segment_size;
      const std::size_t k = std::min(want - done, end - head_pos_);
      copy(&head_->slots[head_pos_], k, out + done);
      head_pos_ += k;
      done += k;
    }
    size_.store(count - want, std::memory_order_relaxed);
    return want;
  }

  // How many elements there are: exact under no concurrent change, else a recent value.
  std::size_t size() const noexcept { return size_.load(std::memory_order_relaxed); }

 private:
  struct segment {
    T* slots[segment_size];
    segment* next;
  };

  static void copy(T* const* from, std::size_t n, T** to) noexcept {
    for (std::size_t i = 0; i < n; ++i) to[i] = from[i];
  }

  static void free_list(segment* s) noexcept {
    while (s) delete std::exchange(s, s->next);
  }

  // Lock held: a fresh segment at the tail (a spare one if there is one). With the queue empty
  // and its one segment used up, that segment is reused in place.
  void append_segment() noexcept {
    if (tail_ && head_ == tail_ && head_pos_ == tail_pos_) {
      head_pos_ = tail_pos_ = 0;
      return;
    }
    segment* s = spare_;
    if (s) {
      spare_ = s->next;
    } else {
      // The plain operator new, matching free_list's delete (a program may replace that pair
      // alone, as select_order_test does to count allocations).
      try {
        s = new segment;
      } catch (const std::bad_alloc&) {
        fatal_error("out of memory growing the global run queue past %zu fibers", size());
      }
    }
    s->next = nullptr;
    if (tail_) {
      tail_->next = s;
    } else {
      head_ = s;
      head_pos_ = 0;
    }
    tail_ = s;
    tail_pos_ = 0;
  }

  // Lock held: the head segment is used up and more follow; it becomes a spare. Spares are kept
  // (as moodycamel kept its blocks) so a steady stream of bursts allocates nothing.
  void drop_head_segment() noexcept {
    segment* s = head_;
    head_ = s->next;
    head_pos_ = 0;
    s->next = spare_;
    spare_ = s;
  }

  // The lock and the segment list on one cache line, `size_` on another: workers looking for
  // work poll size() and should not pull the line a pusher holds (spawn_million run at two
  // workers, 30 alternations: 147.8 ms with one line, 139.4 ms with two; stop 20: 145.0 ms).
  alignas(64) spinlock lock_;
  segment* head_ = nullptr;                       // the oldest element's segment; lock_
  std::size_t head_pos_ = 0;                      // its slot there; lock_
  segment* tail_ = nullptr;                       // where the next element goes; lock_
  std::size_t tail_pos_ = 0;                      // its slot there; lock_
  segment* spare_ = nullptr;                      // used-up segments, kept for reuse; lock_
  alignas(64) std::atomic<std::size_t> size_{0};  // written under lock_; see the top
};

}  // namespace rt::detail
