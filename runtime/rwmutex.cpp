// runtime/rwmutex.cpp — see api/include/rt/rwmutex.hpp.
//
// One FIFO of waiters, readers and writers alike, and the holders (readers_, writer_), all
// under lock_. A newcomer takes the lock only if it is compatible with the holders AND the queue
// is empty: so a queued writer blocks every later reader (Go's no-starvation rule), and nobody
// overtakes a waiter. When holders leave, grant_locked() hands the lock to the head: a writer
// once it is free, or the run of readers up to the next writer (those behind that writer wait
// for it: FIFO). A grant sets the holder state for the waiter before waking it, so a woken
// waiter holds the lock already.
//
// Nothing but the queue itself records that somebody waits. So shutdown, which unlinks the
// waiters of an abandoned fiber from their queues (runtime/shutdown.cpp), leaves a consistent
// rwmutex behind: the state is the holders plus whoever is still queued. (A removed head may
// leave grantable readers queued behind current holders; the next release hands them the lock.)
// Holders are not recorded (Go's RWMutex has no owner), so a hold by an abandoned fiber is kept.
#include "rt/rwmutex.hpp"

#include "fatal.hpp"

namespace rt {

rwmutex::~rwmutex() {
  // A leftover fiber of a finished rt::run may still be queued here (see waiter_queue's
  // detach_all); the scope keeps this from overlapping a shutdown that unlinks it. No fatal
  // error for a held rwmutex (unlike rt::mutex): a fiber abandoned at shutdown may hold a
  // global one, and its destructor then runs at exit.
  detail::plain_thread_scope scope;
  lock_.lock();
  waiters_.detach_all();
  lock_.unlock();
}

detail::waiter* rwmutex::grant_locked() noexcept {
  detail::waiter* head = nullptr;
  detail::waiter* tail = nullptr;
  while (detail::waiter* w = waiters_.front()) {
    const bool wants_write = reinterpret_cast<std::uintptr_t>(w->slot) == writer;
    if (writer_ || (wants_write && readers_ != 0)) break;
    waiters_.pop_front();
    w->next = nullptr;  // popped: the link is ours now, reused for the wake list
    (tail ? tail->next : head) = w;
    tail = w;
    if (wants_write) {
      writer_ = true;
      break;
    }
    ++readers_;
  }
  return head;
}

void rwmutex::wait_locked(kind k) {
  detail::waiter w;
  w.slot = reinterpret_cast<void*>(static_cast<std::uintptr_t>(k));
  waiters_.push_back(&w, lock_);
  detail::block(
      w, lock_,
      k == writer ? detail::wait_reason::rwmutex_write : detail::wait_reason::rwmutex_read);
  // Woken by grant_locked(): the hold was taken for us.
}

bool rwmutex::try_lock() noexcept {
  lock_.lock();
  const bool ok = !writer_ && readers_ == 0 && waiters_.empty();
  if (ok) writer_ = true;
  lock_.unlock();
  return ok;
}

void rwmutex::lock() {
  detail::chaos_point();
  lock_.lock();
  if (!writer_ && readers_ == 0 && waiters_.empty()) {
    writer_ = true;
    lock_.unlock();
    return;
  }
  wait_locked(writer);
}

bool rwmutex::try_lock_shared() noexcept {
  lock_.lock();
  const bool ok = !writer_ && waiters_.empty();
  if (ok) ++readers_;
  lock_.unlock();
  return ok;
}

void rwmutex::lock_shared() {
  detail::chaos_point();
  lock_.lock();
  if (!writer_ && waiters_.empty()) {
    ++readers_;
    lock_.unlock();
    return;
  }
  wait_locked(reader);
}

void rwmutex::unlock() {
  detail::chaos_point_nothrow();
  detail::plain_thread_scope scope;  // we may wake fibers from a plain thread
  lock_.lock();
  if (!writer_) {
    lock_.unlock();
    detail::fatal_error("sync: Unlock of unlocked RWMutex (rt::rwmutex::unlock)");
  }
  writer_ = false;
  detail::waiter* granted = grant_locked();
  lock_.unlock();
  detail::wake_all(granted);
}

void rwmutex::unlock_shared() {
  detail::chaos_point_nothrow();
  detail::plain_thread_scope scope;
  lock_.lock();
  if (readers_ == 0) {
    lock_.unlock();
    detail::fatal_error("sync: RUnlock of unlocked RWMutex (rt::rwmutex::unlock_shared)");
  }
  detail::waiter* granted = --readers_ == 0 ? grant_locked() : nullptr;
  lock_.unlock();
  detail::wake_all(granted);
}

}  // namespace rt
