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

class mutex;

namespace detail {
struct fiber;
// Shutdown: releases m, held by the abandoned fiber f, without running f's code (the mutex goes
// to its oldest waiter, if any, else is unlocked).
void release_abandoned_mutex(mutex& m, fiber* f) noexcept;
// A fiber exits holding m: the mutex stays locked, held by nobody who can unlock it.
void forget_held_mutexes(fiber* f) noexcept;
}  // namespace detail

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
  // Releases the lock: to the oldest waiter, if any. Only the fiber (or thread) that holds the
  // lock may release it: unlocking an unlocked mutex, or one held by somebody else, is a fatal
  // error ("fatal error: sync: unlock of unlocked mutex", as in Go), since mutual exclusion
  // would be broken from then on.
  void unlock();

 private:
  friend class condition_variable;
  friend void detail::release_abandoned_mutex(mutex& m, detail::fiber* f) noexcept;
  friend void detail::forget_held_mutexes(detail::fiber* f) noexcept;
  // unlock() without its chaos point: for callers holding a spinlock, where a yield would let
  // another fiber on this worker spin on that spinlock forever.
  void unlock_holding_spinlock();
  // Records that the calling fiber (f) or plain thread (f null) now holds the mutex.
  void acquired_by(detail::fiber* f) noexcept;
  // Hands the mutex to the waiter w just popped from waiters_ (lock_ held).
  void hand_to(detail::waiter* w) noexcept;
  // The holding fiber's list of held mutexes (fiber::held_mutexes).
  void link_to(detail::fiber* f) noexcept;
  void unlink_from(detail::fiber* f) noexcept;

  std::atomic<bool> locked_{false};
  detail::spinlock lock_;  // guards waiters_
  detail::waiter_queue waiters_;
  // Who holds it: a fiber's control block, a plain thread's tag, or a tag for "a fiber that
  // exited holding it"; null while unlocked. Relaxed: the holder reads back its own write (or
  // the hand-off's, ordered by the wakeup); other readers only report misuse.
  std::atomic<const void*> owner_{nullptr};
  // Links in the holding fiber's list; touched only by the holder (see fiber::held_mutexes).
  mutex* held_prev_ = nullptr;
  mutex* held_next_ = nullptr;
};

}  // namespace rt
