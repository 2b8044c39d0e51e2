// runtime/probes.hpp — the points where the scheduler tells the profilers what it does.
//
// Every scheduling event that rt::stats() counts, the execution trace records or the hog monitor
// watches passes through one of these inline functions, called from the scheduler at the place
// where the event happens. Keeping them in one file keeps the scheduler readable and makes the
// cost of observation visible in one place:
//   - with RT_PROFILING=0 (CMake option RT_PROFILING=OFF) every probe is empty and compiles to
//     nothing: the build the "cost when off" figures in docs/benchmarks.md are measured against;
//   - otherwise the per-worker counters are plain increments of owner-written words (no RMW, no
//     fence), and everything the trace adds sits behind one predictable branch on a flag that is
//     false unless a trace or the flight recorder runs.
// Probes run on the worker's scheduler context or on a fiber's stack between two switches; they
// must not allocate, lock or switch in the common case, and must not throw.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>

#include "fiber.hpp"
#include "scheduler.hpp"
#include "stats.hpp"
#include "timer.hpp"
#include "trace.hpp"

#ifndef RT_PROFILING
#define RT_PROFILING 1
#endif

namespace rt::detail {

// profiling_compiled (stats.hpp): whether the probes are compiled in (CMake option RT_PROFILING).

// A fiber was spawned (by the running fiber of w, or by a plain thread when w is null).
inline void probe_spawn(worker* w, fiber* f) noexcept {
  if constexpr (profiling_compiled) {  // --- counters (rt::stats) ---
    if (w) {
      w->counters.spawned.add();
    } else {
      // relaxed: a count read as the per-worker ones are (stats.hpp); plain threads only.
      f->rt->prof.outside_spawned.fetch_add(1, std::memory_order_relaxed);
    }
  }
  (void)w;
  (void)f;
  // --- trace (issue 10) ---
  if constexpr (profiling_compiled) {
    if (trace_on()) [[unlikely]]
      trace_record(w, trace_ev::spawn, f->id.load(std::memory_order_relaxed),
                   reinterpret_cast<std::uintptr_t>(f->spawn_pc.load(std::memory_order_relaxed)),
                   0);
  }
}

// Worker w is about to switch into f (from its scheduler context, or directly from another fiber).
// Called before w.current becomes f: the hog monitor tells one run from the next by the pair
// (current, runs), which it reads in that order (current with acquire, published_ptr's store
// being a release). Counted after the store, a run could be seen for a while as (f, the count
// of the run before): the monitor would report f as a hog on that run, see the count move
// with f still current, take it for a new run and report f again (seen under TSan with a
// loaded machine: the window holds bind_stack, and the OS may deschedule the worker in it).
inline void probe_run(worker& w, fiber* f) noexcept {
  if constexpr (profiling_compiled) {  // --- counters (rt::stats), hog monitor ---
    // The hog monitor's switch counter; which fiber runs is w.current (published_ptr).
    w.counters.runs.add();
  }
  (void)w;
  (void)f;
  // --- trace (issue 10) ---
  if constexpr (profiling_compiled) {
    if (trace_on()) [[unlikely]]
      trace_record(&w, trace_ev::run, f->id.load(std::memory_order_relaxed), 0, 0);
  }
}

// f switched out of worker w and is off its stack; `after` says why (yield, park with
// f->reason, exit).
inline void probe_switch_out(worker& w, fiber* f, after_switch after) noexcept {
  if constexpr (profiling_compiled) {  // --- counters (rt::stats), hog monitor ---
    // yields, parks (by reason: rt::stats() walks the control blocks) or finished.
    static_assert(static_cast<int>(after_switch::requeue) == 0 &&
                  static_cast<int>(after_switch::park) == 1 &&
                  static_cast<int>(after_switch::exit) == 2);
    w.counters.switch_outs[static_cast<std::size_t>(after)].add();
  }
  (void)w;
  (void)f;
  (void)after;
  // --- trace (issue 10) ---
  if constexpr (profiling_compiled) {
    if (trace_on()) [[unlikely]] {
      const unsigned reason = static_cast<unsigned>(f->reason.load(std::memory_order_relaxed));
      trace_record(&w, trace_ev::switch_out, f->id.load(std::memory_order_relaxed), 0,
                   static_cast<unsigned>(after) | reason << 4);
    }
  }
}

// A parked fiber f was made runnable by the running fiber of w (w null: by a plain thread).
inline void probe_wake(worker* w, fiber* f) noexcept {
  if constexpr (profiling_compiled) {  // --- counters (rt::stats) ---
    if (w) {
      w->counters.wakes.add();
    } else if (f->reason.load(std::memory_order_relaxed) != wait_reason::none) {
      // A plain thread's (a fiber spawned by a plain thread comes here too, with reason none:
      // every park sets one, so that is a spawn, counted as such). relaxed: a count (stats.hpp).
      f->rt->prof.outside_wakes.fetch_add(1, std::memory_order_relaxed);
    }
  }
  (void)w;
  (void)f;
  // --- trace (issue 10) ---
  if constexpr (profiling_compiled) {
    if (trace_on()) [[unlikely]] {
      // The waker: the fiber w runs (0: w's scheduler context, e.g. a timer; or a plain thread).
      const std::uint64_t waker =
          w && w->current ? w->current->id.load(std::memory_order_relaxed) : 0;
      const unsigned reason = static_cast<unsigned>(f->reason.load(std::memory_order_relaxed));
      trace_record(w, trace_ev::wake, f->id.load(std::memory_order_relaxed), waker, reason);
    }
  }
}

// w took its pick from run_next (the fiber it most recently spawned or readied).
inline void probe_run_next_hit(worker& w) noexcept {
  if constexpr (profiling_compiled) w.counters.run_next_hits.add();  // --- counters ---
  (void)w;
}

// w, searching, looked at victim's queues (a steal attempt).
inline void probe_steal_attempt(worker& w, worker& victim) noexcept {
  if constexpr (profiling_compiled) w.counters.steal_attempts.add();  // --- counters ---
  (void)w;
  (void)victim;
}

// w stole n fibers from victim's queues.
inline void probe_steal(worker& w, worker& victim, std::size_t n) noexcept {
  if constexpr (profiling_compiled) {  // --- counters (rt::stats) ---
    w.counters.steals.add();
    w.counters.stolen.add(n);
    w.counters.stolen_from[victim.index].add(n);
  }
  (void)w;
  (void)victim;
  (void)n;
  // --- trace (issue 10) ---
  if constexpr (profiling_compiled) {
    if (trace_on()) [[unlikely]]
      trace_record(&w, trace_ev::steal, 0, victim.index, static_cast<std::uint32_t>(n));
  }
}

// w took n fibers from the global queue.
inline void probe_take_global(worker& w, std::size_t n) noexcept {
  if constexpr (profiling_compiled) w.counters.took_global.add(n);  // --- counters ---
  (void)w;
  (void)n;
  // --- trace (issue 10) ---
  if constexpr (profiling_compiled) {
    if (trace_on()) [[unlikely]]
      trace_record(&w, trace_ev::take_global, 0, 0, static_cast<std::uint32_t>(n));
  }
}

// w found nothing to run and went idle (on the idle list; it may sleep in the kernel).
inline void probe_worker_idle(worker& w) noexcept {
  if constexpr (profiling_compiled) {  // --- counters (rt::stats): busy/idle time ---
    // Timestamps only at idle transitions, never per switch.
    w.stacks.publish_size();
    w.counters.idles.add();
    w.counters.close_interval(/*to_idle=*/true, now_ns());
  }
  (void)w;
  // --- trace (issue 10) ---
  if constexpr (profiling_compiled) {
    if (trace_on()) [[unlikely]]
      trace_record(&w, trace_ev::idle, 0, 0, 0);
  }
}

// w left its idle state to look for work again.
inline void probe_worker_wake(worker& w) noexcept {
  if constexpr (profiling_compiled) {  // --- counters (rt::stats), monitor ---
    const std::int64_t now = now_ns();
    w.counters.close_interval(/*to_idle=*/false, now);
    g_park_clock_ns.store(now, std::memory_order_relaxed);  // the park clock (fiber.hpp)
    w.stacks.publish_size();                                // after the idle spell's trim
    // seq_cst load after this worker left the idle list (n_idle decremented, by it or by its
    // waker, before this): the Dekker pair with the monitor's sleep (monitor.cpp).
    if (w.rt.prof.sleeping.load()) kick_monitor(w.rt);
  }
  (void)w;
  // --- trace (issue 10) ---
  if constexpr (profiling_compiled) {
    if (trace_on()) [[unlikely]]
      trace_record(&w, trace_ev::worker_wake, 0, 0, 0);
  }
}

// A timer armed on worker `owner` is about to fire (run by owner or by a searching worker).
inline void probe_timer_fire(worker& owner) noexcept {
  (void)owner;
  // --- trace (issue 10) ---
  if constexpr (profiling_compiled) {
    if (trace_on()) [[unlikely]]
      trace_record(current_worker(), trace_ev::timer, 0, owner.index, 0);
  }
}

// The monitor found fiber f holding worker w for held_ns without a switch point (reported once
// per run of f; called on the monitor thread, with f still running on w as far as it knows).
inline void probe_hog(worker& w, fiber* f, std::int64_t held_ns) noexcept {
  (void)w;
  (void)f;
  (void)held_ns;
  // --- trace (issue 10) ---
  if constexpr (profiling_compiled) {
    // The monitor is not w's owner, so not w's ring: the shared ring (w null), worker in `small`.
    if (trace_on()) [[unlikely]]
      trace_record(nullptr, trace_ev::hog, f->id.load(std::memory_order_relaxed),
                   static_cast<std::uint64_t>(held_ns), w.index);
  }
}

}  // namespace rt::detail
