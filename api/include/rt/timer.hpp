// rt/timer.hpp — a one-shot timer that can be stopped and reset (Go's time.Timer, time.AfterFunc).
//
//   rt::timer t(50ms);                                  // armed now: fires once, in 50 ms
//   switch (rt::select({rt::recv(t.c(), &when), rt::recv(work, &job)})) { ... }
//   if (!t.stop()) { /* it fired and its value was received */ }
//   t.reset(10ms);                                      // armed again; no stale value survives
//   rt::timer f = rt::after_func(1s, [] { std::puts("late"); });  // fn in a new fiber after 1 s
//
// Guarantees:
// - A timer is a handle: copies share one timer. An armed timer keeps itself alive; dropping
//   every handle does not stop it (it fires once, then is freed).
// - c() is a capacity-1, receive-only channel: the fire never blocks, whether or not anybody
//   receives.
// - Go 1.23 semantics: once stop() or reset() has returned, no value sent before it (a "stale"
//   value) can be received from c(), even if the timer was firing at that very moment.
// - stop() and reset() never park and never block for long (they may spin while a fire on another
//   worker finishes, a few instructions); from any fiber or plain thread.
// - When rt::run returns, armed timers are dropped unfired and freed; they never fire after it.
// - Outside rt::run, arming (the constructor, reset, after_func) throws rt::runtime_error naming
//   the entry point; stop() works anywhere (nothing is armed there).
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <type_traits>
#include <utility>

#include "rt/chan.hpp"
#include "rt/chan_direction.hpp"
#include "rt/detail/deadline.hpp"

namespace rt {

class timer;
class ticker;

namespace detail {

struct timer_state;  // runtime/ticker.cpp

// after_func's callable, type-erased (it may be move-only).
struct timer_func {
  virtual ~timer_func() = default;
  virtual void run() = 0;
};

rt::timer make_after_func(std::chrono::nanoseconds d, std::unique_ptr<timer_func> fn);

// Timer states alive now (timers, after_funcs, tickers, ticks), for tests: a timer nobody can
// reach any more (an unowned tick whose channel was dropped) must be freed, not leak.
long timer_states_alive() noexcept;

}  // namespace detail

// A one-shot timer: a copyable handle to shared state, like Go's *time.Timer.
class timer {
 public:
  using time_point = std::chrono::steady_clock::time_point;

  // A stopped timer with the nil channel (Go's zero Timer): stop() is false, reset() throws.
  timer() noexcept = default;
  // Starts a timer that sends the current time on c() once, after d (d <= 0: at once; a d too
  // long for the clock never fires). Throws rt::runtime_error outside rt::run.
  explicit timer(std::chrono::nanoseconds d);
  // Any other duration, converted to nanoseconds with saturation.
  template <class Rep, class Period>
  explicit timer(std::chrono::duration<Rep, Period> d) : timer(detail::saturating_ns(d)) {}

  // The channel the time is sent on (Go's t.C): capacity 1; nil for timer() and after_func.
  recv_chan<time_point> c() const;
  // Stops the timer: true if this call stopped it before its value was received (cancelled
  // before firing, or its unreceived value drained; after_func: fn was kept from starting).
  bool stop() const;
  // Stops it as stop() does (same return), then arms it again to fire after d.
  bool reset(std::chrono::nanoseconds d) const;
  template <class Rep, class Period>
  bool reset(std::chrono::duration<Rep, Period> d) const {
    return reset(detail::saturating_ns(d));
  }

  // False for timer() (the nil timer).
  explicit operator bool() const noexcept { return s_ != nullptr; }
  // True when both handles refer to the same timer.
  friend bool operator==(const timer& a, const timer& b) noexcept { return a.s_ == b.s_; }

 private:
  friend class ticker;
  friend timer detail::make_after_func(std::chrono::nanoseconds,
                                       std::unique_ptr<detail::timer_func>);
  explicit timer(std::shared_ptr<detail::timer_state> s) noexcept : s_(std::move(s)) {}
  std::shared_ptr<detail::timer_state> s_;
};

// Runs fn() in a new fiber after d (Go's time.AfterFunc). The returned timer's c() is nil;
// stop() is true if it kept fn from starting; reset() arms it again, so fn may run once more
// (and, if the first run has not finished, at the same time). fn is stored once and invoked as
// an lvalue on every run. Throws rt::runtime_error outside rt::run.
template <class Rep, class Period, class F>
timer after_func(std::chrono::duration<Rep, Period> d, F&& fn) {
  using fn_t = std::decay_t<F>;
  static_assert(std::is_invocable_v<fn_t&>, "rt::after_func: fn is not callable with no arguments");
  struct impl final : detail::timer_func {
    explicit impl(F&& f) : fn(std::forward<F>(f)) {}
    void run() override { std::invoke(fn); }
    fn_t fn;
  };
  return detail::make_after_func(detail::saturating_ns(d),
                                 std::make_unique<impl>(std::forward<F>(fn)));
}

}  // namespace rt
