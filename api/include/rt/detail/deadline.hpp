// rt/detail/deadline.hpp — durations and deadlines that saturate instead of overflowing.
//
// `now() + d` overflows for a d near nanoseconds::max() (and converting 300 years to nanoseconds
// overflows before that: they hold about 292 years); an overflowed deadline lands in the past,
// and a "wait forever" returns at once. Every timeout API (sleep_for, after, the condition
// variable's wait_for) computes its deadline here: a duration too long for the clock means the
// clock's end — a deadline that never comes — and one too negative means its start.
#pragma once

#include <chrono>
#include <cstdint>
#include <ratio>
#include <type_traits>

namespace rt::detail {

// d in nanoseconds, clamped to nanoseconds::min()/max() when it does not fit.
template <class Rep, class Period>
constexpr std::chrono::nanoseconds saturating_ns(std::chrono::duration<Rep, Period> d) noexcept {
  using ns = std::chrono::nanoseconds;
  if constexpr (std::ratio_less_equal_v<Period, std::nano> && !std::is_floating_point_v<Rep>) {
    // A unit no coarser than a nanosecond only shrinks: it fits unless Rep is wider than ns's.
    if constexpr (sizeof(Rep) > sizeof(ns::rep)) {
      if (d > std::chrono::duration_cast<std::chrono::duration<Rep, Period>>(ns::max())) {
        return ns::max();
      }
      if (d < std::chrono::duration_cast<std::chrono::duration<Rep, Period>>(ns::min())) {
        return ns::min();
      }
    }
    return std::chrono::duration_cast<ns>(d);
  } else {
    // Compare in d's own unit (or in long double for floating Rep), where ns's limits truncate
    // towards zero and so stay representable both ways.
    using wide = std::conditional_t<std::is_floating_point_v<Rep>, long double, Rep>;
    using unit = std::chrono::duration<wide, Period>;
    constexpr unit hi = std::chrono::duration_cast<unit>(ns::max());
    const unit v = d;
    if constexpr (std::is_floating_point_v<Rep>) {
      if (!(v == v)) return ns::zero();  // NaN: no time at all
      if (v >= hi) return ns::max();     // rounding could carry a value at the limit over it
      if (v <= -hi) return ns::min();
    } else {
      if (v > hi) return ns::max();
      if constexpr (std::is_signed_v<Rep>) {
        if (v < -hi) return ns::min();
      }
    }
    return std::chrono::duration_cast<ns>(v);
  }
}

// now + d on the steady clock, clamped to the clock's first and last time point.
inline std::chrono::steady_clock::time_point deadline_after(std::chrono::nanoseconds d) noexcept {
  using clock = std::chrono::steady_clock;
  const clock::time_point now = clock::now();
  const clock::duration dd = std::chrono::duration_cast<clock::duration>(saturating_ns(d));
  if (dd > clock::duration::zero() && now.time_since_epoch() > clock::duration::max() - dd) {
    return clock::time_point::max();
  }
  if (dd < clock::duration::zero() && now.time_since_epoch() < clock::duration::min() - dd) {
    return clock::time_point::min();
  }
  return now + dd;
}

// A time point's nanoseconds since the steady clock's epoch (its representation already is).
inline std::int64_t deadline_ns(std::chrono::steady_clock::time_point t) noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(saturating_ns(t.time_since_epoch()))
      .count();
}

}  // namespace rt::detail
