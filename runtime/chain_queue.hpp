// runtime/chain_queue.hpp — the runtime's global run queue: a lock-free MPMC queue of *chains*
// of fibers (moodycamel::ConcurrentQueue of chain heads, the chain linked through each fiber's
// `next`), so that moving a batch costs one queue operation, not one per fiber.
//
// Why chains: the global queue takes the overflow of workers' queues in batches (a burst of
// spawns sends 32 fibers at a time there, a full local ring 128), and a worker takes a fair share
// back in one go. Enqueued one by one, each fiber cost ~40 instructions of moodycamel's block and
// index bookkeeping on the way in and out (spawn_million run: ~45 of ~525 per spawned fiber);
// as a chain, the batch costs one enqueue and one dequeue plus a link per fiber. Go's global
// runq is also a linked list that takes and gives batches (proc.go: globrunqputbatch,
// globrunqget), under a lock; a chain here needs none.
//
// Guarantees: every fiber pushed is handed to exactly one taker, exactly once (moodycamel hands
// each chain head to one dequeuer; a chain belongs to whoever holds its head, and the rest of a
// split chain is queued again whole). Chains come out in the order each producer pushed them
// (moodycamel is FIFO per producer), fibers in chain order, except that the rest of a chain a
// taker split goes to the tail. Any thread may push and take.
//
// Memory ordering: a producer links the chain (plain stores to `next`), then enqueues its head;
// moodycamel's enqueue releases and its dequeue acquires the element, so the taker sees the
// links and everything written to the fibers before the push. The fiber count is a hint
// (relaxed): it is raised *before* the enqueue and lowered *after* the dequeue, so it is never
// below the number of fibers queued — a reader that sees 0 may skip the queue, and the wake
// protocol's fences (scheduler.hpp, "Why no wakeup is lost") order the raise before the
// submitter's counter loads exactly as they ordered the enqueue before.
#pragma once

#include <concurrentqueue/concurrentqueue.h>

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace rt::detail {

// A queue of chains of T, linked through T::next (T* next; nullptr ends a chain).
template <class T>
class chain_queue {
 public:
  // Appends one element.
  void push(T* v) noexcept {
    v->next = nullptr;
    push_chain(v, 1);
  }
  // Appends n elements: first, first->next, ..., the last with next == nullptr.
  void push_chain(T* first, std::size_t n) noexcept {
    count_.fetch_add(static_cast<std::int64_t>(n),
                     std::memory_order_relaxed);  // before: never below the true count
    chains_.enqueue(first);
  }
  // Links n elements of `items` into a chain (in array order) and appends it; n > 0.
  void push_array(T* const* items, std::size_t n) noexcept {
    for (std::size_t i = 0; i + 1 < n; ++i) items[i]->next = items[i + 1];
    items[n - 1]->next = nullptr;
    push_chain(items[0], n);
  }
  // Takes up to `want` elements, oldest first, as one chain (nullptr-terminated; its length in
  // `got`, 0 with nullptr when the queue looks empty). A chain longer than what is still wanted
  // is split: its rest goes back to the queue's tail, behind the chains queued meanwhile.
  T* take(std::size_t want, std::size_t& got) noexcept {
    T* first = nullptr;
    T** link = &first;  // where the next chain taken is linked in
    got = 0;
    T* v = nullptr;
    while (got < want && chains_.try_dequeue(v)) {
      *link = v;
      T* last = v;
      ++got;
      while (got < want && last->next) {
        last = last->next;
        ++got;
      }
      if (T* rest = last->next) chains_.enqueue(rest);  // still counted: the count stays above
      last->next = nullptr;
      link = &last->next;
    }
    if (got != 0) count_.fetch_sub(static_cast<std::int64_t>(got), std::memory_order_relaxed);
    return first;
  }
  // About how many elements are queued: never fewer than are (see above); 0 means "skip it".
  std::size_t size() const noexcept {
    const auto n = static_cast<std::int64_t>(count_.load(std::memory_order_relaxed));
    return n > 0 ? static_cast<std::size_t>(n) : 0;
  }

 private:
  // Room for this many chains before the first allocation.
  static constexpr std::size_t initial_chains = 256;
  moodycamel::ConcurrentQueue<T*> chains_{initial_chains};
  // relaxed: a hint (see the top of this file); signed so that no interleaving can make it
  // look huge.
  std::atomic<std::int64_t> count_{0};
};

}  // namespace rt::detail
