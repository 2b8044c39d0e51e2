// runtime/wait_group.cpp — rt::wait_group.
//
// Protocol (after Go's sync.WaitGroup): `state_` packs the counter and the number of registered
// waiters. wait() registers itself with a CAS (only while the counter is non-zero) and from then
// on returns only once released by the add() that brings the counter to zero. That add() sees
// the registered count in its own fetch_add result: zero means nobody to wake, and it touches
// nothing more — which is what lets a waiter destroy the wait_group as soon as wait() returns.
// Otherwise it resets the state, wakes the waiters that have parked, and leaves `releases_`
// tokens (under the lock) for those registered but not yet parked; each of those takes a token
// instead of parking. Either way the releasing add() is done with the object once it unlocks,
// before any waiter can return.
//
// Misuse (Go panics on it; here it is a fatal error, as the counter is already lost): an add()
// that lands between the done() that brought the counter to zero and that done()'s release of
// the waiters — the wait_group reused before the previous wait() has returned. The adder sees it
// in its own fetch_add result (counter == delta with waiters still registered); the releaser
// sees it as a state that is no longer the one it brought to zero. Before the releaser checked,
// it reset the state unconditionally and so wiped the new count.
#include "rt/wait_group.hpp"

#include "fatal.hpp"
#include "rt/errors.hpp"

namespace rt {
namespace {

constexpr int counter_shift = 32;

std::int32_t counter_of(std::uint64_t state) {
  return static_cast<std::int32_t>(state >> counter_shift);
}
std::uint32_t waiters_of(std::uint64_t state) {
  return static_cast<std::uint32_t>(state);
}

}  // namespace

namespace {

[[noreturn, gnu::noinline, gnu::cold]] void throw_negative_counter() {
  throw rt::runtime_error("negative wait_group counter");
}

[[noreturn, gnu::noinline, gnu::cold]] void report_add_during_release() {
  detail::fatal_error(
      "sync: WaitGroup misuse: Add called concurrently with Wait (rt::wait_group::add: the "
      "wait_group was reused before the previous wait() returned)");
}

}  // namespace

void wait_group::add(int delta) {
  // The chaos point as a tail call: the common case then keeps no registers across a call.
  if (detail::chaos_enabled.load(std::memory_order_relaxed)) [[unlikely]] {
    add_after_chaos_point(delta);
    return;
  }
  add_now(delta);
}

// add(-1) with the delta known here (done() is most fibers' last call): the compiler drops
// add_now's branches for a positive delta.
void wait_group::done() {
  if (detail::chaos_enabled.load(std::memory_order_relaxed)) [[unlikely]] {
    add_after_chaos_point(-1);
    return;
  }
  add_now(-1);
}

[[gnu::noinline]] void wait_group::add_after_chaos_point(int delta) {
  detail::chaos_yield_nothrow();
  add_now(delta);
}

[[gnu::always_inline]] inline void wait_group::add_now(int delta) {
  const std::uint64_t step = static_cast<std::uint64_t>(static_cast<std::int64_t>(delta))
                             << counter_shift;
  std::uint64_t now;
  if (delta >= 0) {
    now = state_.fetch_add(step) + step;
    // The counter was zero with waiters registered: a done() is releasing them right now.
    if (delta > 0 && waiters_of(now) != 0 && counter_of(now) == delta) [[unlikely]]
      report_add_during_release();
  } else {
    // Never store a negative counter, even briefly: a concurrent valid done() must not see it.
    std::uint64_t s = state_.load();
    do {
      if (counter_of(s) + delta < 0) [[unlikely]]
        throw_negative_counter();
    } while (!state_.compare_exchange_weak(s, s + step));
    now = s + step;
  }
  if (counter_of(now) != 0 || waiters_of(now) == 0 || delta == 0) return;
  release_waiters(now);
}

// Out of line, so that add()'s common case (nobody to wake) keeps a small frame.
[[gnu::noinline]] void wait_group::release_waiters(std::uint64_t now) {
  // The counter reached zero with registered waiters: none of them can return until released
  // here, so the object is alive until we unlock.
  // Chaos: the window in which a misused add() lands (see the top of this file).
  detail::chaos_point_nothrow();
  detail::plain_thread_scope scope;
  lock_.lock();
  // Nobody can register meanwhile (wait() registers only while the counter is non-zero), so the
  // state is still `now` unless an add() came in: reset it only then, never wiping a new count.
  std::uint64_t expected = now;
  if (!state_.compare_exchange_strong(expected, 0)) {
    lock_.unlock();
    detail::fatal_error(
        "sync: WaitGroup is reused before previous Wait has returned (rt::wait_group::add/done: "
        "add() raced the done() that released wait())");
  }
  const std::uint32_t registered = waiters_of(now);
  detail::waiter* woken = waiters_.take_all();
  std::uint32_t parked = 0;
  for (detail::waiter* w = woken; w; w = w->next) {
    w->queued = false;
    ++parked;
  }
  releases_ += registered - parked;
  lock_.unlock();
  detail::wake_all(woken);
}

void wait_group::wait() {
  detail::chaos_point();
  for (std::uint64_t s = state_.load();;) {
    if (counter_of(s) == 0) return;
    if (state_.compare_exchange_weak(s, s + 1)) break;  // registered: now we must be released
  }
  detail::waiter w;
  lock_.lock();
  if (releases_ > 0) {  // released between registering and parking
    --releases_;
    lock_.unlock();
    return;
  }
  waiters_.push_back(&w, lock_);
  detail::block(w, lock_, detail::wait_reason::wait_group);
}

wait_group::~wait_group() {
  // A leftover fiber of a finished rt::run may still be queued here (see waiter_queue's
  // detach_all); the scope keeps this from overlapping a shutdown that unlinks it.
  detail::plain_thread_scope scope;
  lock_.lock();
  waiters_.detach_all();
  lock_.unlock();
}

}  // namespace rt
