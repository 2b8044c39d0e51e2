// rt/condition_variable.hpp — waiting for a condition under an rt::mutex (std::condition_variable
// for fibers; Go's sync.Cond).
//
//   rt::mutex mu;
//   rt::condition_variable cv;
//   std::deque<job> q;
//   // consumer
//   std::unique_lock lk(mu);
//   cv.wait(lk, [&] { return !q.empty(); });
//   // producer
//   { std::lock_guard lk(mu); q.push_back(j); }
//   cv.notify_one();
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>

#include "rt/detail/deadline.hpp"
#include "rt/detail/wait.hpp"
#include "rt/mutex.hpp"

namespace rt {

class condition_variable {
 public:
  condition_variable() = default;
  condition_variable(const condition_variable&) = delete;
  condition_variable& operator=(const condition_variable&) = delete;
  ~condition_variable();

  // Releases lk, parks until notified, re-acquires lk. Spurious wakeups do not happen, but a
  // notification may find the condition already changed again: prefer the predicate form.
  void wait(std::unique_lock<rt::mutex>& lk);
  // Waits until pred() holds.
  template <class Pred>
  void wait(std::unique_lock<rt::mutex>& lk, Pred pred) {
    while (!pred()) wait(lk);
  }
  // As wait(), giving up at t: std::cv_status::timeout if no notification came by then.
  std::cv_status wait_until(std::unique_lock<rt::mutex>& lk,
                            std::chrono::steady_clock::time_point t);
  // As wait(lk, pred), giving up at t; returns pred().
  template <class Pred>
  bool wait_until(std::unique_lock<rt::mutex>& lk, std::chrono::steady_clock::time_point t,
                  Pred pred) {
    while (!pred()) {
      if (wait_until(lk, t) == std::cv_status::timeout) return pred();
    }
    return true;
  }
  // As wait_until(lk, now + d). The deadline saturates: a d too long for the clock
  // (nanoseconds::max(), 300 years) waits for a notification however long it takes.
  template <class Rep, class Period>
  std::cv_status wait_for(std::unique_lock<rt::mutex>& lk, std::chrono::duration<Rep, Period> d) {
    return wait_until(lk, detail::deadline_after(detail::saturating_ns(d)));
  }
  // As wait_until(lk, now + d, pred), with the same saturation.
  template <class Rep, class Period, class Pred>
  bool wait_for(std::unique_lock<rt::mutex>& lk, std::chrono::duration<Rep, Period> d, Pred pred) {
    return wait_until(lk, detail::deadline_after(detail::saturating_ns(d)), std::move(pred));
  }
  // Wakes the longest-waiting party, if any.
  void notify_one() noexcept;
  // Wakes every waiting party.
  void notify_all() noexcept;

 private:
  // Throws rt::runtime_error unless lk holds its mutex.
  static void require_locked(const std::unique_lock<rt::mutex>& lk);
  // lk.unlock() without the mutex's chaos point (the caller holds lock_, where a yield would let
  // another fiber on this worker spin on it forever).
  static void unlock_holding_spinlock(std::unique_lock<rt::mutex>& lk);

  detail::spinlock lock_;  // guards waiters_
  detail::waiter_queue waiters_;
};

}  // namespace rt
