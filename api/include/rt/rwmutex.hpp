// rt/rwmutex.hpp — a reader/writer lock that parks fibers (Go's sync.RWMutex).
//
//   rt::rwmutex mu;
//   std::map<std::string, int> table;
//   rt::go([&] { std::shared_lock lk(mu); use(table.at("x")); });  // readers share
//   rt::go([&] { std::unique_lock lk(mu); table["x"] = 1; });      // a writer is alone
//
// Guarantees:
// - Meets SharedLockable (std::shared_lock, std::unique_lock, std::lock_guard, std::scoped_lock
//   work): any number of readers, or one writer, never both.
// - Go's rule: a waiting writer blocks new readers, so a stream of readers cannot starve it.
//   More: waiters are served in arrival order (FIFO); when the lock frees, it is handed to the
//   oldest waiter — a writer, or the whole run of consecutive readers at the head of the queue.
//   try_lock() / try_lock_shared() succeed only if they would not overtake a waiter.
// - Not owned (as in Go): any fiber or thread may unlock what another locked. Unlocking what is
//   not locked that way is a fatal error ("sync: Unlock of unlocked RWMutex", "sync: RUnlock of
//   unlocked RWMutex"), as in Go, since exclusion would be broken from then on.
// - Fibers park; plain threads (inside rt::run) block. A deadlock report shows "[rwmutex read
//   lock]" / "[rwmutex write lock]".
// - An rwmutex held by a fiber that rt::run's shutdown abandons stays held (readers are not
//   recorded, unlike rt::mutex's holder): see docs/reliability.md section 18.
#pragma once

#include <cstdint>

#include "rt/detail/wait.hpp"

namespace rt {

class rwmutex {
 public:
  rwmutex() = default;
  rwmutex(const rwmutex&) = delete;
  rwmutex& operator=(const rwmutex&) = delete;
  ~rwmutex();

  // Acquires it exclusively (Go's Lock), waiting for readers, the writer and earlier waiters.
  void lock();
  // Acquires it exclusively if it is free and nobody waits; never waits.
  bool try_lock() noexcept;
  // Releases the exclusive hold, handing the lock to the oldest waiter(s).
  void unlock();
  // Acquires a shared hold (Go's RLock), waiting while a writer holds it or anybody waits.
  void lock_shared();
  // Acquires a shared hold if no writer holds it and nobody waits; never waits.
  bool try_lock_shared() noexcept;
  // Releases one shared hold; the last one hands the lock to the oldest waiter.
  void unlock_shared();

 private:
  enum kind : std::uintptr_t { reader = 1, writer = 2 };  // what a waiter's slot says
  // Hands the free lock to the head of the queue (lock_ held): a writer, or every reader up to
  // the next writer. Returns them linked by `next`, to be woken after unlocking.
  detail::waiter* grant_locked() noexcept;
  void wait_locked(kind k);

  detail::spinlock lock_;     // guards everything below
  std::int64_t readers_ = 0;  // shared holds
  bool writer_ = false;       // an exclusive hold
  detail::waiter_queue waiters_;
};

// The standard name for the same thing.
using shared_mutex = rwmutex;

}  // namespace rt
