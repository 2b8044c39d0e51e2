// rt/ticker.hpp — a repeating timer (Go's time.Ticker and time.Tick).
//
//   rt::ticker tk(100ms);                     // ticks every 100 ms until stopped or destroyed
//   for (int i = 0; i < 3; ++i) tk.c().recv();
//   tk.reset(1s);                             // slower from now on
//   for (auto now : rt::tick(1s)) report(now);  // unowned: stops once the channel is dropped
//
// Guarantees:
// - Ticks come in order, at most one waiting: c() has capacity 1, and a tick that finds it full
//   is dropped (a slow receiver misses ticks, as in Go). A ticker that fell behind skips the
//   ticks it missed instead of firing them in a burst.
// - A ticker is its timer's only owner (move-only): its destructor stops it, so a ticker nobody
//   owns cannot tick forever. Copies of c() may outlive it; they then stay silent.
// - Go 1.23 semantics: once stop() or reset() has returned, no tick sent before it can be
//   received from c().
// - rt::tick's ticker holds its channel weakly: once no handle to the channel is left, the next
//   tick finds it gone and the ticker frees itself.
// - Outside rt::run, starting or resetting one throws rt::runtime_error naming the entry point;
//   stop() and the destructor work anywhere. When rt::run returns, tickers stop ticking.
#pragma once

#include <chrono>
#include <memory>

#include "rt/chan.hpp"
#include "rt/chan_direction.hpp"
#include "rt/detail/deadline.hpp"
#include "rt/timer.hpp"

namespace rt {

// A repeating timer that sends the current time on c() every d.
class ticker {
 public:
  using time_point = std::chrono::steady_clock::time_point;

  // Starts ticking: the first tick d from now. Throws rt::runtime_error("rt::ticker:
  // non-positive interval") if d <= 0, and rt::runtime_error outside rt::run.
  explicit ticker(std::chrono::nanoseconds d);
  template <class Rep, class Period>
  explicit ticker(std::chrono::duration<Rep, Period> d) : ticker(detail::saturating_ns(d)) {}
  // Moves ownership; the moved-from ticker is empty (nil channel; stop does nothing).
  ticker(ticker&& o) noexcept = default;
  // Stops the ticker this one owned, then takes o's.
  ticker& operator=(ticker&& o) noexcept;
  ticker(const ticker&) = delete;
  ticker& operator=(const ticker&) = delete;
  // Stops it.
  ~ticker();

  // The channel ticks are sent on (Go's t.C): capacity 1.
  recv_chan<time_point> c() const;
  // Stops ticking; a tick sent and not yet received is drained. Stopping twice is harmless.
  void stop();
  // Stops it, then ticks every d, the first d from now (a stopped ticker starts again). Throws
  // rt::runtime_error if d <= 0 or the ticker is empty (moved from).
  void reset(std::chrono::nanoseconds d);
  template <class Rep, class Period>
  void reset(std::chrono::duration<Rep, Period> d) {
    reset(detail::saturating_ns(d));
  }

 private:
  std::shared_ptr<detail::timer_state> s_;
};

// A channel that receives the time every d, from a ticker nobody owns (Go's time.Tick): it stops
// by itself once no handle to the channel is left. d <= 0 gives the nil channel. Throws
// rt::runtime_error outside rt::run.
recv_chan<std::chrono::steady_clock::time_point> tick(std::chrono::nanoseconds d);
template <class Rep, class Period>
recv_chan<std::chrono::steady_clock::time_point> tick(std::chrono::duration<Rep, Period> d) {
  return tick(detail::saturating_ns(d));
}

}  // namespace rt
