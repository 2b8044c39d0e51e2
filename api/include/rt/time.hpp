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

namespace rt {

// Suspends the calling fiber for at least d (a plain thread: std::this_thread::sleep_for).
void sleep_for(std::chrono::nanoseconds d);
// Suspends the calling fiber until t (a plain thread: std::this_thread::sleep_until).
void sleep_until(std::chrono::steady_clock::time_point t);
// A channel that receives the current time once, after d (Go's time.After). Buffered: the timer
// never blocks, whether or not anybody receives.
chan<std::chrono::steady_clock::time_point> after(std::chrono::nanoseconds d);

}  // namespace rt
