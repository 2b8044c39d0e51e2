// runtime/mutex.cpp — rt::mutex and rt::condition_variable.
//
// rt::mutex: `locked_` is taken by CAS on the fast path; waiters queue under `lock_`. unlock()
// with waiters hands ownership straight to the oldest (locked_ stays true), so a stream of
// newcomers cannot starve a parked fiber. No lost wakeup: the slow path re-tries the CAS and
// enqueues under lock_, and unlock() clears locked_ only under lock_ after seeing no waiter.
//
// rt::condition_variable: wait() enqueues under the cv's lock *before* releasing the user's
// mutex, and notify pops under that lock; so a notify after the waiter released the mutex
// always finds it. A timed wait arms a timer in the park's after-switch step; the timer and a
// notifier race to pop the waiter under the cv's lock, and only the one that pops it wakes it.
#include "rt/mutex.hpp"
#include "rt/condition_variable.hpp"

#include "rt/errors.hpp"

#include "fatal.hpp"
#include "fiber.hpp"
#include "futex.hpp"
#include "scheduler.hpp"
#include "timer.hpp"

namespace rt {

mutex::~mutex() {
  if (locked_.load(std::memory_order_relaxed)) {
    detail::fatal_error("rt::mutex destroyed while locked (a fiber or thread still holds it)");
  }
}

bool mutex::try_lock() noexcept {
  bool expected = false;
  // acquire: pairs with unlock()'s release, making the previous holder's writes visible.
  return locked_.compare_exchange_strong(expected, true, std::memory_order_acquire);
}

void mutex::lock() {
  detail::chaos_point();
  if (try_lock()) return;
  lock_.lock();
  if (try_lock()) {
    lock_.unlock();
    return;
  }
  detail::waiter w;
  waiters_.push_back(&w);
  try {
    detail::block(w, lock_, detail::wait_reason::mutex);
  } catch (...) {
    lock_.lock();
    const bool handed_over = !w.queued;
    waiters_.remove(&w);
    lock_.unlock();
    if (handed_over) unlock();  // unwinding after ownership arrived: pass it on
    throw;
  }
  // Woken by unlock(): ownership was handed to us.
}

void mutex::unlock() {
  detail::chaos_point_nothrow();
  unlock_holding_spinlock();
}

void mutex::unlock_holding_spinlock() {
  detail::plain_thread_scope scope;
  lock_.lock();
  detail::waiter* w = waiters_.pop_front();
  if (!w) {
    // release: publishes the critical section to the next try_lock's acquire.
    locked_.store(false, std::memory_order_release);
    lock_.unlock();
    return;
  }
  lock_.unlock();
  detail::wake(*w);  // locked_ stays true: the waiter owns the mutex now
}

namespace {

struct cv_timer : detail::timer {
  detail::spinlock* lock;
  detail::waiter_queue* queue;
  detail::waiter* w;
};

// The timeout of a timed wait: if the waiter is still queued, take it and wake it (timed out).
void cv_timeout(detail::timer* t) {
  auto* ct = static_cast<cv_timer*>(t);
  detail::waiter* w = ct->w;
  ct->lock->lock();
  const bool mine = w->queued;
  if (mine) {
    ct->queue->remove(w);
    w->success = false;
  }
  ct->lock->unlock();
  t->finish();  // from here the waiter may cancel_timer() and return; w is ours only if `mine`
  if (mine) detail::wake(*w);
}

struct timed_park {
  cv_timer* t;
  detail::spinlock* lock;
  static void arm_then_unlock(void* p) {
    auto* tp = static_cast<timed_park*>(p);
    detail::add_timer(tp->t);
    tp->lock->unlock();
  }
};

}  // namespace

void condition_variable::require_locked(const std::unique_lock<rt::mutex>& lk) {
  if (!lk.owns_lock()) {
    throw rt::runtime_error(
        "rt::condition_variable: wait called with a unique_lock that does not hold its mutex "
        "(lock it before waiting)");
  }
}

void condition_variable::unlock_holding_spinlock(std::unique_lock<rt::mutex>& lk) {
  rt::mutex* m = lk.release();
  m->unlock_holding_spinlock();
  lk = std::unique_lock<rt::mutex>(*m, std::defer_lock);
}

void condition_variable::wait(std::unique_lock<rt::mutex>& lk) {
  detail::chaos_point();
  require_locked(lk);
  detail::waiter w;
  lock_.lock();
  waiters_.push_back(&w);
  unlock_holding_spinlock(lk);
  try {
    detail::block(w, lock_, detail::wait_reason::cond_var);
  } catch (...) {
    lock_.lock();
    waiters_.remove(&w);
    lock_.unlock();
    throw;  // unwinding: the unique_lock stays unlocked, as after a throwing wait
  }
  lk.lock();
}

std::cv_status condition_variable::wait_until(std::unique_lock<rt::mutex>& lk,
                                              std::chrono::steady_clock::time_point t) {
  require_locked(lk);
  detail::fiber* f = detail::current_fiber();
  if (!f) {
    // A plain thread: the runtime's timers belong to workers; wait in slices instead.
    detail::waiter w;
    lock_.lock();
    waiters_.push_back(&w);
    unlock_holding_spinlock(lk);
    lock_.unlock();
    detail::note_plain_thread_use();
    for (;;) {
      if (w.thread_woken.load(std::memory_order_acquire) != 0) break;
      auto now = std::chrono::steady_clock::now();
      if (now >= t) {
        lock_.lock();
        const bool still_queued = w.queued;
        waiters_.remove(&w);
        lock_.unlock();
        if (still_queued) {
          lk.lock();
          return std::cv_status::timeout;
        }
        // A notifier popped us first: its wake is on the way.
        while (w.thread_woken.load(std::memory_order_acquire) == 0) {
          detail::futex_wait(&w.thread_woken, 0);
        }
        break;
      }
      auto d = std::chrono::duration_cast<std::chrono::nanoseconds>(t - now).count();
      timespec ts{static_cast<time_t>(d / 1000000000), static_cast<long>(d % 1000000000)};
      detail::futex_wait(&w.thread_woken, 0, &ts);
    }
    lk.lock();
    return std::cv_status::no_timeout;
  }
  detail::waiter w;
  cv_timer timer;
  timer.when = detail::deadline_ns(t);  // time_point::max() is no_deadline: it never fires
  timer.fire = cv_timeout;
  timer.lock = &lock_;
  timer.queue = &waiters_;
  timer.w = &w;
  timed_park park{&timer, &lock_};
  lock_.lock();
  waiters_.push_back(&w);
  unlock_holding_spinlock(lk);
  try {
    detail::block_with(w, timed_park::arm_then_unlock, &park, detail::wait_reason::cond_var);
  } catch (...) {
    detail::cancel_timer(&timer);
    lock_.lock();
    waiters_.remove(&w);
    lock_.unlock();
    throw;
  }
  detail::cancel_timer(&timer);
  lk.lock();
  return w.success ? std::cv_status::no_timeout : std::cv_status::timeout;
}

void condition_variable::notify_one() noexcept {
  detail::plain_thread_scope scope;
  lock_.lock();
  detail::waiter* w = waiters_.pop_front();
  if (w) w->success = true;
  lock_.unlock();
  if (w) detail::wake(*w);
}

void condition_variable::notify_all() noexcept {
  detail::plain_thread_scope scope;
  lock_.lock();
  detail::waiter* list = waiters_.take_all();
  for (detail::waiter* w = list; w; w = w->next) {
    w->queued = false;  // under the lock: a timed-out waiter's timer checks it
    w->success = true;
  }
  lock_.unlock();
  while (list) {
    detail::waiter* next = list->next;  // read before wake(): the waiter's frame may vanish
    detail::wake(*list);
    list = next;
  }
}

}  // namespace rt
