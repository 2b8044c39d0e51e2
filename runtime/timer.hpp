// runtime/timer.hpp — per-worker timer heaps.
//
// Guarantees:
// - A timer lives in the heap of the worker that armed it (from that worker's own thread: a
//   fiber's sleep arms it in the after-switch step of its park), so arming takes no shared lock
//   but the worker's own, rarely contended timer_lock. A plain thread (rt::timer, rt::ticker)
//   arms into some worker's heap under that worker's timer_lock: add_timer_on.
// - A worker runs its own due timers each time it looks for work; a searching worker also runs
//   the due timers of every other worker it visits (timer stealing). An idle worker sleeps in the
//   kernel at most until the earliest timer of *any* worker, then searches; and arming a timer
//   earlier than that makes an idle worker compute its sleep again (runtime::timer_armed). So a
//   worker held by a fiber that never yields delays its timers only while no other worker is
//   free (see "Timers" in scheduler.hpp for the protocol and why no timer is slept through).
// - A deadline of no_deadline (the steady clock's end, where saturated deadlines land) never
//   fires and wakes nobody.
// - cancel_timer() never returns while the timer's fire function may still touch it, so timers
//   can live on the stack of the fiber that waits on them.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <limits>

namespace rt::detail {

struct worker;

// Nanoseconds on the steady clock.
inline std::int64_t now_ns() noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}
inline constexpr std::int64_t no_deadline = std::numeric_limits<std::int64_t>::max();

struct timer {
  enum : std::uint8_t { idle, pending, firing, done };
  std::int64_t when = 0;           // due time, steady clock ns
  void (*fire)(timer*) = nullptr;  // runs on a worker's scheduler stack; ends with finish()
  void (*drop)(timer*) = nullptr;  // frees a timer still armed when the runtime shuts down
  worker* home = nullptr;          // whose heap it is in (while pending)
  std::size_t index = 0;           // its position in that heap (under home's timer_lock)
  std::atomic<std::uint8_t> state{idle};

  // Called by `fire` once it no longer touches the timer: cancel_timer() may then return.
  void finish() noexcept { state.store(done, std::memory_order_release); }
};

// An entry of a worker's timer heap.
struct timer_entry {
  std::int64_t when;
  timer* t;
};

// Arms t in the calling worker's heap. Call on a worker thread (fiber or scheduler context).
void add_timer(timer* t) noexcept;
// Arms t in w's heap from any thread, a plain one included (rt::timer, rt::ticker): the heap is
// only ever touched under w.timer_lock (thieves and cancel_timer already take it from other
// threads), and timer_armed's Dekker pair does not assume the armer is w: a parked w is told
// like any other idle worker. The caller keeps the runtime alive (a plain_thread_scope).
void add_timer_on(worker& w, timer* t) noexcept;
// Disarms t: true if it had not fired; false if it fired (waits until its fire has finished).
bool cancel_timer(timer* t) noexcept;
// Runs w's due timers (those with when <= now). `try_only`: give up if w's timer_lock is busy.
void run_due_timers(worker& w, std::int64_t now, bool try_only) noexcept;

}  // namespace rt::detail
