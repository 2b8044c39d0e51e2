// rt/semaphore.hpp — a weighted semaphore (golang.org/x/sync/semaphore).
//
//   rt::semaphore sem(rt::maxprocs());  // at most one CPU-bound job per worker at a time
//   for (auto& job : jobs) {
//     sem.acquire();
//     rt::go([&sem, &job] { job.run(); sem.release(); });
//   }
//   sem.acquire(rt::maxprocs());  // waits for every job to release its unit
//
// Guarantees:
// - The weight held never exceeds the size: acquire(n) returns only once n units are free.
// - FIFO: waiters are served in arrival order, and a waiter that does not fit blocks those
//   behind it even if they would (x/sync's head-of-line rule: a big request is not starved by a
//   stream of small ones). acquire() and try_acquire() never overtake a waiter.
// - acquire(ctx, n) is acquire(ctx.stop_token(), n) reporting ctx.err(): the context's stop is
//   requested only after its err() is set, so a failed acquire always has an error to return.
// - acquire(st, n) returns false, holding nothing, if stop was or gets requested on st before
//   the units were granted; when a grant and a stop request race, exactly one wins: true with n
//   units held, or false with none. Waiters behind a cancelled one are re-examined.
// - Fibers park; plain threads (inside rt::run) block.
// - Misuse throws rt::runtime_error naming the call: a negative weight or size; releasing more
//   than is held ("semaphore: released more than held"); acquire(n) with n > size (it could
//   never succeed). acquire(st, n) with n > size waits for stop instead (blocking the waiters
//   behind it meanwhile), as x/sync waits for ctx.Done(); try_acquire(n) then returns false.
// - A deadlock report shows a parked acquirer as "[semaphore acquire]".
#pragma once

#include <cstdint>
#include <stop_token>
#include <system_error>

#include "rt/context.hpp"
#include "rt/detail/wait.hpp"

namespace rt {

class semaphore {
 public:
  // A semaphore of `n` units (n >= 0; negative throws rt::runtime_error).
  explicit semaphore(std::int64_t n);
  semaphore(const semaphore&) = delete;
  semaphore& operator=(const semaphore&) = delete;
  ~semaphore();

  // Acquires n units, waiting until they are free and every earlier waiter has been served.
  void acquire(std::int64_t n = 1);
  // As acquire(n), but gives up when stop is requested on st: false means nothing is held.
  bool acquire(std::stop_token st, std::int64_t n = 1);
  // x/sync's Acquire(ctx, n): n units, or gives up when ctx is done — {} with n units held, or
  // ctx.err() (canceled, deadline_exceeded) with nothing held.
  std::error_code acquire(const context& ctx, std::int64_t n = 1);
  // Acquires n units if they are free and nobody waits; never waits.
  bool try_acquire(std::int64_t n = 1);
  // Returns n units, waking the waiters at the head of the queue that now fit.
  void release(std::int64_t n = 1);

 private:
  struct stop_wait;
  friend struct stop_wait;
  // Grants units to the waiters at the head that fit (lock_ held); returns them as a list
  // linked by `next`, to be woken after unlocking.
  detail::waiter* grant_locked() noexcept;
  // Throws for a negative weight, naming `who`.
  static void check_weight(std::int64_t n, const char* who);

  const std::int64_t size_;
  detail::spinlock lock_;         // guards cur_ and waiters_
  std::int64_t cur_ = 0;          // units held
  detail::waiter_queue waiters_;  // each waiter's slot points to its weight (std::int64_t)
};

}  // namespace rt
