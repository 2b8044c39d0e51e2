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
// Not copyable or movable: share it by reference.
class wait_group {
 public:
  wait_group() = default;
  wait_group(const wait_group&) = delete;
  wait_group& operator=(const wait_group&) = delete;
  ~wait_group() = default;

  // Adds delta (may be negative) to the counter; at zero, wakes every waiter. Throws
  // rt::runtime_error("negative wait_group counter") if it would go below zero.
  void add(int delta = 1);
  // Decrements the counter by one.
  void done() { add(-1); }
  // Blocks until the counter is zero.
  void wait();

 private:
  std::atomic<std::int64_t> count_{0};
  detail::spinlock lock_;
  detail::waiter_queue waiters_;
};

}  // namespace rt
