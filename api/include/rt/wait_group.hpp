// rt/wait_group.hpp — waits for a collection of fibers to finish (Go's sync.WaitGroup).
//
//   rt::wait_group wg;
//   for (auto& job : jobs) {
//     wg.add(1);
//     rt::go([&wg, &job] { job.run(); wg.done(); });
//   }
//   wg.wait();  // returns once every job called done()
#pragma once

#include <atomic>
#include <cstdint>

#include "rt/detail/wait.hpp"

namespace rt {

// A counter that wait() blocks on until it reaches zero. Works from fibers and plain threads.
// Not copyable or movable: share it by reference. As with std::latch, it may be destroyed as soon
// as wait() has returned, even while the done() that released it is still returning.
class wait_group {
 public:
  wait_group() = default;
  wait_group(const wait_group&) = delete;
  wait_group& operator=(const wait_group&) = delete;
  ~wait_group();

  // Adds delta (may be negative) to the counter; at zero, wakes every waiter. Throws
  // rt::runtime_error("negative wait_group counter") if it would go below zero.
  void add(int delta = 1);
  // Decrements the counter by one: add(-1).
  void done();
  // Blocks until the counter is zero.
  void wait();

 private:
  // add() without its chaos point, and with it first (wait_group.cpp).
  void add_now(int delta);
  void add_after_chaos_point(int delta);
  // The add() that brought the counter to zero wakes the registered waiters.
  void release_waiters(std::uint64_t now);

  // High 32 bits: the counter. Low 32 bits: waiters registered since the counter last reached
  // zero (each will block until released). One word, so that done() can tell from its own
  // atomic operation whether it has anybody to wake — and touch nothing else if not.
  std::atomic<std::uint64_t> state_{0};
  detail::spinlock lock_;         // guards waiters_ and releases_
  detail::waiter_queue waiters_;  // registered waiters that have parked
  std::uint32_t releases_ = 0;    // registered waiters released before they could park
};

}  // namespace rt
