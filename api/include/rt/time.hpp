// rt/time.hpp — sleeping and timeouts (Go's time.Sleep and time.After).
//
//   rt::sleep_for(10ms);                        // this fiber sleeps; its worker runs others
//   rt::select(rt::recv(results, use),
//              rt::recv(rt::after(1s), [](auto) { std::puts("timed out"); }));
//
// A sleeping fiber occupies no worker: it sits in its worker's timer heap, and an idle worker
// sleeps in the kernel exactly until its next timer is due.
#pragma once

#include <chrono>

#include "rt/chan.hpp"
#include "rt/chan_direction.hpp"
#include "rt/detail/deadline.hpp"

namespace rt {

// Suspends the calling fiber for at least d (a plain thread: std::this_thread::sleep_for). A d
// too long for the clock (nanoseconds::max(), 300 years) sleeps until the clock's end: forever.
void sleep_for(std::chrono::nanoseconds d);
// Suspends the calling fiber until t (a plain thread: std::this_thread::sleep_until).
void sleep_until(std::chrono::steady_clock::time_point t);
// A channel that receives the current time once, after d (Go's time.After). Buffered: the timer
// never blocks, whether or not anybody receives. Receive-only, so nobody can close it under the
// timer. A d too long for the clock never fires. Throws rt::runtime_error outside rt::run.
recv_chan<std::chrono::steady_clock::time_point> after(std::chrono::nanoseconds d);

// Any other duration (seconds, hours, years, floating point): converted to nanoseconds with
// saturation — a duration longer than nanoseconds can hold (about 292 years) is "forever", not
// an overflow into the past.
template <class Rep, class Period>
void sleep_for(std::chrono::duration<Rep, Period> d) {
  sleep_for(detail::saturating_ns(d));
}
template <class Rep, class Period>
recv_chan<std::chrono::steady_clock::time_point> after(std::chrono::duration<Rep, Period> d) {
  return after(detail::saturating_ns(d));
}

}  // namespace rt
