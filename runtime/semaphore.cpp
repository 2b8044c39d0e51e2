// runtime/semaphore.cpp — see api/include/rt/semaphore.hpp.
//
// Everything is under lock_: cur_ (units held) and the FIFO of waiters, each with its weight in
// waiter::slot. A waiter is granted only by grant_locked(), which pops it, adds its weight to
// cur_ and sets success, all under lock_; so "granted" and "still queued" are never both true.
//
// Stop (acquire(st, n)): a std::stop_callback on the waiter's frame. It takes lock_ and sets
// `stopped`; if the waiter is still queued it takes it off the queue and wakes it with success
// false, so nothing was added to cur_ for it. If a grant popped the waiter first, the callback
// finds it not queued and does nothing: success stays true and the units are the caller's.
// Either way exactly one outcome, decided under lock_. The callback may also run before the
// waiter is queued (stop requested while the callback is being registered, possibly inline in
// its constructor): the acquirer checks `stopped` under lock_ before it queues. The waiter's
// frame outlives any running callback: the frame's ~stop_callback waits for a callback running
// on another thread to return (and the callback touches nothing of the frame after wake()).
// A cancelled head may have been what blocked the waiters behind it: the callback re-runs
// grant_locked() then, as x/sync's notifyWaiters does.
#include "rt/semaphore.hpp"

#include <string>

#include "rt/errors.hpp"

namespace rt {

struct semaphore::stop_wait {
  semaphore* sem;
  std::int64_t n;
  detail::waiter w;
  bool stopped = false;  // under sem->lock_: stop was requested (the callback ran)

  struct canceller {
    stop_wait* self;
    void operator()() const noexcept { self->cancel(); }
  };

  void cancel() noexcept {
    semaphore* s = sem;
    // We may wake fibers from a plain thread (request_stop called there).
    detail::plain_thread_scope scope;
    s->lock_.lock();
    stopped = true;
    if (!w.queued) {  // granted already, or not queued yet (the acquirer sees `stopped`)
      s->lock_.unlock();
      return;
    }
    const bool was_front = s->waiters_.front() == &w;
    s->waiters_.remove(&w);
    w.success = false;
    detail::waiter* granted = was_front ? s->grant_locked() : nullptr;
    s->lock_.unlock();
    wake_list(granted);
    detail::wake(w);  // last touch of this frame: the acquirer may return now
  }
};

semaphore::semaphore(std::int64_t n) : size_(n) {
  if (n < 0) {
    throw rt::runtime_error("rt::semaphore: negative size (" + std::to_string(n) + ")");
  }
}

semaphore::~semaphore() {
  // A leftover fiber of a finished rt::run may still be queued here (see waiter_queue's
  // detach_all); the scope keeps this from overlapping a shutdown that unlinks it.
  detail::plain_thread_scope scope;
  lock_.lock();
  waiters_.detach_all();
  lock_.unlock();
}

void semaphore::check_weight(std::int64_t n, const char* who) {
  if (n < 0) {
    throw rt::runtime_error(std::string(who) + ": negative weight (" + std::to_string(n) + ")");
  }
}

detail::waiter* semaphore::grant_locked() noexcept {
  detail::waiter* head = nullptr;
  detail::waiter* tail = nullptr;
  while (detail::waiter* w = waiters_.front()) {
    const std::int64_t need = *static_cast<const std::int64_t*>(w->slot);
    if (size_ - cur_ < need) break;  // head-of-line: nobody behind it may overtake
    cur_ += need;
    waiters_.pop_front();
    w->success = true;
    w->next = nullptr;  // popped: the link is ours now, reused for the wake list
    (tail ? tail->next : head) = w;
    tail = w;
  }
  return head;
}

void semaphore::wake_list(detail::waiter* list) noexcept {
  while (list) {
    detail::waiter* next = list->next;  // read before wake(): the waiter's frame may vanish
    detail::wake(*list);
    list = next;
  }
}

bool semaphore::try_acquire(std::int64_t n) {
  check_weight(n, "rt::semaphore::try_acquire");
  lock_.lock();
  const bool ok = size_ - cur_ >= n && waiters_.empty();
  if (ok) cur_ += n;
  lock_.unlock();
  return ok;
}

void semaphore::acquire(std::int64_t n) {
  detail::chaos_point();
  check_weight(n, "rt::semaphore::acquire");
  if (n > size_) {
    throw rt::runtime_error("rt::semaphore::acquire: weight " + std::to_string(n) +
                            " exceeds the semaphore's size " + std::to_string(size_) +
                            " (it could never be acquired)");
  }
  lock_.lock();
  if (size_ - cur_ >= n && waiters_.empty()) {
    cur_ += n;
    lock_.unlock();
    return;
  }
  detail::waiter w;
  w.slot = &n;
  waiters_.push_back(&w, lock_);
  detail::block(w, lock_, detail::wait_reason::semaphore);
  // Only a grant wakes a waiter without a stop token: the units are ours.
}

bool semaphore::acquire(std::stop_token st, std::int64_t n) {
  detail::chaos_point();
  check_weight(n, "rt::semaphore::acquire");
  if (st.stop_requested()) return false;
  if (try_acquire(n)) return true;
  stop_wait sw{this, n, {}};
  sw.w.slot = &sw.n;
  // Registered before queueing; may run right here if stop was requested meanwhile.
  std::stop_callback<stop_wait::canceller> cb(std::move(st), stop_wait::canceller{&sw});
  lock_.lock();
  if (sw.stopped) {
    lock_.unlock();
    return false;
  }
  if (size_ - cur_ >= n && waiters_.empty()) {
    cur_ += n;
    lock_.unlock();
    return true;
  }
  waiters_.push_back(&sw.w, lock_);
  detail::block(sw.w, lock_, detail::wait_reason::semaphore);
  // success: granted (the stop callback, if it runs, finds us not queued). Otherwise the
  // callback took us off the queue; nothing is held. ~stop_callback (cb) waits for a callback
  // still returning on another thread.
  return sw.w.success;
}

void semaphore::release(std::int64_t n) {
  detail::chaos_point_nothrow();
  check_weight(n, "rt::semaphore::release");
  detail::plain_thread_scope scope;  // we may wake fibers from a plain thread
  lock_.lock();
  if (n > cur_) {
    const std::int64_t held = cur_;
    lock_.unlock();
    throw rt::runtime_error("semaphore: released more than held (rt::semaphore::release(" +
                            std::to_string(n) + ") with " + std::to_string(held) + " held)");
  }
  cur_ -= n;
  detail::waiter* granted = grant_locked();
  lock_.unlock();
  wake_list(granted);
}

}  // namespace rt
