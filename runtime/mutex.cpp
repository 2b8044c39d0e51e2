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

#include <cstdio>

#include "fatal.hpp"
#include "fiber.hpp"
#include "futex.hpp"
#include "scheduler.hpp"
#include "timer.hpp"

namespace rt {

namespace detail {
namespace {

// A plain thread's identity as a mutex holder (its address differs per thread). Read only on
// plain threads, which do not migrate.
thread_local char t_thread_tag;
// The holder of a mutex whose fiber exited without unlocking it.
const char exited_fiber_tag = 0;

const void* self_identity(fiber* f) noexcept {
  return f ? static_cast<const void*>(f) : &t_thread_tag;
}

// Who `who` is, for a misuse report: "fiber N", or the kind of holder.
void describe(const void* who, char* buf, std::size_t n) noexcept {
  if (who == nullptr) {
    std::snprintf(buf, n, "nobody");
  } else if (who == &exited_fiber_tag) {
    std::snprintf(buf, n, "a fiber that has exited");
  } else if (who == &t_thread_tag) {
    std::snprintf(buf, n, "a thread that is not a fiber");
  } else if (runtime* rt = current_runtime(); rt && rt->owns_control_block(who)) {
    std::snprintf(buf, n, "fiber %llu",
                  static_cast<unsigned long long>(static_cast<const fiber*>(who)->id));
  } else {
    std::snprintf(buf, n, "another thread that is not a fiber");
  }
}

}  // namespace

void release_abandoned_mutex(mutex& m, fiber* f) noexcept {
  m.unlink_from(f);
  m.lock_.lock();
  waiter* w = m.waiters_.pop_front();  // a plain thread: leftover fibers were unlinked first
  if (!w) {
    m.owner_.store(nullptr, std::memory_order_relaxed);
    m.locked_.store(false, std::memory_order_release);
    m.lock_.unlock();
    return;
  }
  m.hand_to(w);
  m.lock_.unlock();
  wake(*w);
}

void forget_held_mutexes(fiber* f) noexcept {
  while (mutex* m = f->held_mutexes) {
    m->unlink_from(f);
    m->owner_.store(&exited_fiber_tag, std::memory_order_relaxed);
  }
}

}  // namespace detail

mutex::~mutex() {
  if (locked_.load(std::memory_order_relaxed)) {
    detail::fatal_error("rt::mutex destroyed while locked (a fiber or thread still holds it)");
  }
}

void mutex::link_to(detail::fiber* f) noexcept {
  held_prev_ = nullptr;
  held_next_ = f->held_mutexes;
  if (held_next_) held_next_->held_prev_ = this;
  f->held_mutexes = this;
}

void mutex::unlink_from(detail::fiber* f) noexcept {
  if (held_prev_) {
    held_prev_->held_next_ = held_next_;
  } else if (f->held_mutexes == this) {
    f->held_mutexes = held_next_;
  }
  if (held_next_) held_next_->held_prev_ = held_prev_;
  held_prev_ = held_next_ = nullptr;
}

void mutex::acquired_by(detail::fiber* f) noexcept {
  owner_.store(detail::self_identity(f), std::memory_order_relaxed);
  if (f) link_to(f);
}

void mutex::hand_to(detail::waiter* w) noexcept {
  // A fiber waiter is parked until the wake() that follows: its list is ours to extend, and
  // the wakeup orders these writes before it runs again.
  if (w->owner) {
    owner_.store(w->owner, std::memory_order_relaxed);
    link_to(w->owner);
  } else {
    owner_.store(w->slot, std::memory_order_relaxed);  // the thread's tag (see lock())
  }
}

bool mutex::try_lock() noexcept {
  bool expected = false;
  // acquire: pairs with unlock()'s release, making the previous holder's writes visible.
  if (!locked_.compare_exchange_strong(expected, true, std::memory_order_acquire)) return false;
  acquired_by(detail::current_fiber());
  return true;
}

void mutex::lock() {
  detail::chaos_point();
  if (try_lock()) return;
  detail::fiber* f = detail::current_fiber();
  lock_.lock();
  if (try_lock()) {
    lock_.unlock();
    return;
  }
  detail::waiter w;
  if (!f) w.slot = &detail::t_thread_tag;  // who unlock() hands the mutex to (hand_to)
  waiters_.push_back(&w, lock_);
  detail::block(w, lock_, detail::wait_reason::mutex);
  // Woken by unlock(): ownership was handed to us (owner_ and our held list already say so).
}

void mutex::unlock() {
  detail::chaos_point_nothrow();
  unlock_holding_spinlock();
}

void mutex::unlock_holding_spinlock() {
  detail::fiber* f = detail::current_fiber();
  const void* self = detail::self_identity(f);
  const void* holder = owner_.load(std::memory_order_relaxed);
  if (!locked_.load(std::memory_order_relaxed)) {
    detail::fatal_error("sync: unlock of unlocked mutex (rt::mutex::unlock)");
  }
  if (holder != self) {
    char me[64], them[64];
    detail::describe(self, me, sizeof me);
    detail::describe(holder, them, sizeof them);
    detail::fatal_error(
        "sync: unlock of mutex held by another (rt::mutex::unlock called by %s; %s holds it)", me,
        them);
  }
  if (f) unlink_from(f);
  detail::plain_thread_scope scope;
  lock_.lock();
  detail::waiter* w = waiters_.pop_front();
  if (!w) {
    owner_.store(nullptr, std::memory_order_relaxed);
    // release: publishes the critical section to the next try_lock's acquire.
    locked_.store(false, std::memory_order_release);
    lock_.unlock();
    return;
  }
  hand_to(w);
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
  static void arm_then_unlock(void* p) noexcept {
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

condition_variable::~condition_variable() {
  // A leftover fiber of a finished rt::run may still be queued here (see waiter_queue's
  // detach_all); the scope keeps this from overlapping a shutdown that unlinks it.
  detail::plain_thread_scope scope;
  lock_.lock();
  waiters_.detach_all();
  lock_.unlock();
}

void condition_variable::wait(std::unique_lock<rt::mutex>& lk) {
  detail::chaos_point();
  require_locked(lk);
  // Entered before lock_ is taken, never under it: unlocking the mutex below wakes its next
  // holder, which needs the scope, and a plain thread that waited for a shutdown while holding
  // lock_ would hang the shutdown, which takes lock_ to unlink leftover fibers.
  detail::plain_thread_scope scope;
  detail::waiter w;
  lock_.lock();
  waiters_.push_back(&w, lock_);
  unlock_holding_spinlock(lk);
  detail::block(w, lock_, detail::wait_reason::cond_var);
  lk.lock();
}

std::cv_status condition_variable::wait_until(std::unique_lock<rt::mutex>& lk,
                                              std::chrono::steady_clock::time_point t) {
  require_locked(lk);
  detail::fiber* f = detail::current_fiber();
  if (!f) {
    // A plain thread: the runtime's timers belong to workers; wait in slices instead.
    detail::waiter w;
    {
      detail::plain_thread_scope scope;  // before lock_, as in wait()
      lock_.lock();
      waiters_.push_back(&w, lock_);
      unlock_holding_spinlock(lk);
      lock_.unlock();
    }
    detail::note_plain_thread_use();
    for (;;) {
      if (w.thread_woken.load(std::memory_order_acquire) != 0) break;
      auto now = std::chrono::steady_clock::now();
      if (now >= t) {
        // Only our own waiter is touched here (no scope needed; lock_ is never held while
        // waiting for anything).
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
  waiters_.push_back(&w, lock_);
  unlock_holding_spinlock(lk);
  detail::block_with(w, timed_park::arm_then_unlock, &park, detail::wait_reason::cond_var);
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
  detail::wake_all(list);
}

}  // namespace rt
