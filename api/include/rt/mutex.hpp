// rt/mutex.hpp — a mutual-exclusion lock that parks fibers instead of blocking worker threads.
//
//   rt::mutex mu;
//   int balance = 0;
//   rt::go([&] { std::lock_guard lk(mu); balance += 10; });
//
// Meets the standard Lockable requirements, so std::lock_guard, std::unique_lock and
// std::scoped_lock work. A fiber waiting for it is parked (its worker runs other fibers); a plain
// thread waiting for it blocks. Waiters get the lock in FIFO order: unlock() hands it directly to
// the oldest waiter, so nobody starves.
#pragma once

#include <atomic>

#include "rt/detail/wait.hpp"

namespace rt {

class mutex {
 public:
  mutex() = default;
  mutex(const mutex&) = delete;
  mutex& operator=(const mutex&) = delete;
  // Destroying a locked mutex is a fatal error (it would strand its waiters).
  ~mutex();

  // Acquires the lock, parking the caller while another holds it.
  void lock();
  // Acquires the lock if it is free; never blocks.
  bool try_lock() noexcept;
  // Releases the lock: to the oldest waiter, if any.
  void unlock();

 private:
  friend class condition_variable;
  // unlock() without its chaos point: for callers holding a spinlock, where a yield would let
  // another fiber on this worker spin on that spinlock forever.
  void unlock_holding_spinlock();

  std::atomic<bool> locked_{false};
  detail::spinlock lock_;  // guards waiters_
  detail::waiter_queue waiters_;
};

}  // namespace rt
