// runtime/once.cpp — see api/include/rt/once.hpp.
//
// State under lock_: running_ (someone runs fn) and the queue of callers waiting for it.
// done_ is set, under lock_, by the runner that completed fn, before it wakes the waiters; the
// fast path reads it without the lock. A waiter learns the outcome from waiter::success:
// true — fn completed, return; false — the runner threw and handed the run to this waiter
// (running_ stays true, so no newcomer can start a second run meanwhile).
#include "rt/once.hpp"

namespace rt {

once::~once() {
  // A leftover fiber of a finished rt::run may still be queued here (see waiter_queue's
  // detach_all); the scope keeps this from overlapping a shutdown that unlinks it.
  detail::plain_thread_scope scope;
  lock_.lock();
  waiters_.detach_all();
  lock_.unlock();
}

bool once::begin() {
  detail::chaos_point();
  lock_.lock();
  if (done_.load(std::memory_order_relaxed)) {  // written under lock_, which we hold
    lock_.unlock();
    return false;
  }
  if (!running_) {
    running_ = true;
    lock_.unlock();
    return true;
  }
  detail::waiter w;
  waiters_.push_back(&w, lock_);
  detail::block(w, lock_, detail::wait_reason::once);
  // success: fn completed (done_ was stored before our wakeup, which orders it for us).
  // Otherwise the runner threw and the run is ours.
  return !w.success;
}

void once::finish(bool ok) noexcept {
  detail::chaos_point_nothrow();
  detail::plain_thread_scope scope;  // we may wake fibers from a plain thread
  lock_.lock();
  if (!ok) {
    detail::waiter* next = waiters_.pop_front();
    if (!next) {
      running_ = false;  // the next caller to arrive runs fn
      lock_.unlock();
      return;
    }
    next->success = false;  // running_ stays true: the run passes to `next`
    lock_.unlock();
    detail::wake(*next);
    return;
  }
  // release: the fast path's acquire load of done_ then sees fn's writes.
  done_.store(true, std::memory_order_release);
  running_ = false;
  detail::waiter* list = waiters_.take_all();
  for (detail::waiter* w = list; w; w = w->next) {
    w->queued = false;
    w->success = true;
  }
  lock_.unlock();
  detail::wake_all(list);
}

}  // namespace rt
