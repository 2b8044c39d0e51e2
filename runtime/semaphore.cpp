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
//
// Waiters that never return. A fiber abandoned by rt::run's shutdown while parked in
// acquire(st) would leave its callback registered in the stop state, pointing into a stack that
// is freed (never unwound): a later request_stop would run it there. So the fiber sets
// fiber::on_abandon while parked and shutdown unregisters the callback before freeing anything;
// a callback for a fiber's waiter never waits for a teardown (it would wait for the very
// shutdown that waits for it), it gives up instead. Likewise ~semaphore unregisters the
// callbacks of waiters it strands (a leftover fiber parked on a semaphore that main destroyed).
#include "rt/semaphore.hpp"

#include <optional>
#include <string>

#include "fiber.hpp"
#include "rt/errors.hpp"

namespace rt {

// One waiter of acquire(): its slot points to this.
struct semaphore::stop_wait {
  stop_wait(semaphore* owner, std::int64_t weight) : sem(owner), n(weight) {}

  semaphore* sem;
  std::int64_t n;
  detail::waiter w;
  bool stopped = false;  // under sem->lock_: stop was requested (the callback ran)
  // The acquirer is a fiber (its callback may have to give up during a teardown, see cancel()).
  bool on_fiber = false;

  struct canceller {
    stop_wait* self;
    void operator()() const noexcept { self->cancel(); }
  };
  // Engaged while registered; reset by the acquirer's return, by ~semaphore (for a waiter it
  // strands) or by shutdown (for an abandoned fiber; see fiber::on_abandon). Each of these
  // waits for a callback running on another thread, so the callback always finds this frame and
  // the semaphore alive.
  std::optional<std::stop_callback<canceller>> cb;

  void cancel() noexcept {
    if (!on_fiber) {
      // A plain thread waits: nobody unregisters this callback in a teardown, so it may wait for
      // one to end like any plain-thread operation (we may be on a plain thread ourselves).
      detail::plain_thread_scope scope;
      cancel_in_scope();
      return;
    }
    // A fiber waits. While rt::run tears down, shutdown is about to abandon it and unregisters
    // this callback first, waiting for us: we must not wait for the teardown in turn. Nothing
    // needs doing then (the fiber will never run again and its waiter is unlinked by shutdown).
    detail::try_plain_thread_scope scope;
    if (scope) cancel_in_scope();
  }

  void cancel_in_scope() noexcept {
    semaphore* s = sem;
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
    detail::wake_all(granted);
    detail::wake(w);  // last touch of this frame from here (the acquirer may return now)
  }

  // shutdown's hook for an abandoned fiber parked in acquire(st): its stack is going away.
  static void unregister(void* p) noexcept { static_cast<stop_wait*>(p)->cb.reset(); }
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
  detail::waiter* stranded = waiters_.take_all();
  for (detail::waiter* w = stranded; w; w = w->next) w->queued = false;
  lock_.unlock();
  // Their stop callbacks point to this semaphore: unregister them (waiting for one running), or
  // a stop request after this destructor would use it. Those waiters are never woken: only a
  // leftover of a finished rt::run may legitimately be here.
  for (detail::waiter* w = stranded; w; w = w->next) static_cast<stop_wait*>(w->slot)->cb.reset();
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
    const std::int64_t need = static_cast<const stop_wait*>(w->slot)->n;
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
  stop_wait sw(this, n);
  sw.w.slot = &sw;
  waiters_.push_back(&sw.w, lock_);
  detail::block(sw.w, lock_, detail::wait_reason::semaphore);
  // Only a grant wakes a waiter without a stop token: the units are ours.
}

bool semaphore::acquire(std::stop_token st, std::int64_t n) {
  detail::chaos_point();
  check_weight(n, "rt::semaphore::acquire");
  if (st.stop_requested()) return false;
  if (try_acquire(n)) return true;
  stop_wait sw(this, n);
  sw.w.slot = &sw;
  detail::fiber* f = detail::current_fiber();
  sw.on_fiber = f != nullptr;
  // Registered before queueing; may run right here if stop was requested meanwhile.
  sw.cb.emplace(std::move(st), stop_wait::canceller{&sw});
  lock_.lock();
  if (sw.stopped) {
    lock_.unlock();
    return false;  // sw.cb's destructor unregisters the callback
  }
  if (size_ - cur_ >= n && waiters_.empty()) {
    cur_ += n;
    lock_.unlock();
    return true;
  }
  waiters_.push_back(&sw.w, lock_);
  if (f) {
    f->on_abandon = stop_wait::unregister;
    f->on_abandon_arg = &sw;
  }
  detail::block(sw.w, lock_, detail::wait_reason::semaphore);
  if (f) f->on_abandon = nullptr;  // f: a fiber never changes control block, even migrating
  // success: granted (the stop callback, if it runs, finds us not queued). Otherwise the
  // callback took us off the queue; nothing is held. sw.cb's destructor waits for a callback
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
  detail::wake_all(granted);
}

std::error_code semaphore::acquire(const context& ctx, std::int64_t n) {
  if (acquire(ctx.stop_token(), n)) return {};
  return ctx.err();  // set before the stop request that made acquire give up (context.cpp)
}

}  // namespace rt
