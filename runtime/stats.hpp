// runtime/stats.hpp — the counters behind rt::stats(), RT_SCHEDTRACE and the hog monitor (issue
// 10).
//
// Per-worker counters live in the worker (worker::counters) and are written only by their owner,
// from the probes in probes.hpp. Global figures are derived when they are read, never kept in a
// shared word that the spawn or switch paths would have to update:
//   live      = spawned (by every worker + by plain threads and rt::run) - finished (every worker)
//   parked[r] = control blocks in state parked with reason r: rt::stats() walks them (under
//               chunks_mu), so neither the park nor the wake path looks at the reason
//   stolen_from[v] = sum over thieves t of t.stolen_from[v] (each thief counts per victim)
// The stack caches' sizes are published by their owners at idle transitions (sampled).
// peak_live is sampled (by the monitor at each of its ticks and by every rt::stats() call), not
// exact: an exact peak would need every spawn to look at every worker's counters.
//
// Memory-ordering argument. A counter has one writer, its owner, which adds with
// store(load(relaxed) + n, relaxed): no atomic read-modify-write, no lock prefix, no fence. On
// x86-64 (but under ThreadSanitizer, which must see the accesses) the same is written as one
// `add` instruction to memory, without lock: an aligned 8-byte store is single-copy atomic
// there, so readers see the old or the new value, as with the relaxed store; one instruction
// instead of three is what keeps the probes within 1% of an RT_PROFILING=OFF build. The owner's
// relaxed load sees its own last store (coherence), so no increment is lost. Readers (rt::stats(),
// the monitor) use relaxed loads: each counter they see is a value it really had, and successive
// reads of one counter never go backwards (read-read coherence). Nothing orders one counter against
// another, so a snapshot is "consistent enough": each counter is exact and monotonic, while a sum
// across workers or a difference of two counters (live, parked) may be off by the events in flight
// while it was taken. Derived figures are clamped at 0 for that reason. Which fiber a worker runs
// is worker::current, a published_ptr (below).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <thread>

#include "rt/detail/wait.hpp"
#include "rt/options.hpp"
#include "sanitizer.hpp"

#ifndef RT_PROFILING
#define RT_PROFILING 1
#endif

namespace rt::detail {

// Whether the profiling probes are compiled in (CMake option RT_PROFILING).
inline constexpr bool profiling_compiled = RT_PROFILING != 0;

struct fiber;
struct worker;
class runtime;

// wait_reason values (wait_reason::rwmutex_write is the last).
inline constexpr std::size_t n_wait_reasons =
    static_cast<std::size_t>(wait_reason::rwmutex_write) + 1;

// A counter written by one thread only (see the memory-ordering argument above).
class owned_counter {
 public:
  void add(std::uint64_t n = 1) noexcept {
#if defined(__x86_64__) && !RT_TSAN
    static_assert(sizeof(v_) == 8 && alignof(decltype(v_)) == 8);
    // The owner's plain increment (see above): "+m" tells the compiler the word is read and
    // written here.
    asm volatile("addq %1, %0" : "+m"(v_) : "er"(n));
#else
    v_.store(v_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
#endif
  }
  void set(std::uint64_t n) noexcept {
    v_.store(n, std::memory_order_relaxed);
  }
  std::uint64_t get() const noexcept {
    return v_.load(std::memory_order_relaxed);
  }

 private:
  std::atomic<std::uint64_t> v_{0};
};

// A pointer that one thread (its owner) writes and others read: release stores and relaxed (or,
// with load_acquire, acquire) loads, plain moves on x86, so the owner's code reads and writes it
// as a plain pointer at no cost.
// worker::current is one: the hog monitor and rt::stats() read which fiber a worker runs.
template <class T>
class published_ptr {
 public:
  published_ptr() = default;
  published_ptr(const published_ptr&) = delete;
  published_ptr& operator=(const published_ptr&) = delete;
  // release: what the owner wrote before (its counters) is seen by a reader that reads the new
  // pointer with load_acquire() (the hog monitor's (current, runs) pair: see probe_run). A plain
  // move on x86, as a relaxed store is.
  published_ptr& operator=(T* p) noexcept {
    p_.store(p, std::memory_order_release);
    return *this;
  }
  operator T*() const noexcept { return p_.load(std::memory_order_relaxed); }
  T* operator->() const noexcept { return p_.load(std::memory_order_relaxed); }
  T* load_acquire() const noexcept { return p_.load(std::memory_order_acquire); }

 private:
  std::atomic<T*> p_{nullptr};
};

// One worker's counters. The first cache line is what every switch touches; the rest is written
// on slower paths (stealing, idling) or by the monitor.
struct alignas(64) worker_counters {
  // --- every switch or spawn (owner) ---
  owned_counter runs;     // switches into a fiber (the hog monitor's switch counter)
  owned_counter spawned;  // fibers spawned by fibers running on this worker
  // Switch-outs by after_switch (one indexed add on the switch path): requeue = yields, park =
  // parks, exit = fibers finished on this worker.
  owned_counter switch_outs[3];
  owned_counter& yields() noexcept { return switch_outs[0]; }
  owned_counter& parks() noexcept { return switch_outs[1]; }
  owned_counter& finished() noexcept { return switch_outs[2]; }
  const owned_counter& yields() const noexcept { return switch_outs[0]; }
  const owned_counter& parks() const noexcept { return switch_outs[1]; }
  const owned_counter& finished() const noexcept { return switch_outs[2]; }
  owned_counter wakes;          // parked fibers made runnable by this worker
  owned_counter run_next_hits;  // picks taken from run_next

  // --- stealing, idling (owner) ---
  alignas(64) owned_counter steal_attempts;  // victims looked at
  owned_counter steals;                      // successful steal operations
  owned_counter stolen;                      // fibers taken from other workers
  owned_counter took_global;                 // fibers taken from the global queue
  owned_counter idles;                       // times this worker went idle
  // Busy and idle time: closed intervals, the start of the open one, and which it is. A reader
  // needs the four together (else a busy time could seem to go backwards), so they are written
  // under a seqlock: the owner makes time_seq odd, fences (release), writes, and makes it even
  // again with a release store; a reader loads time_seq (acquire), the fields, fences
  // (acquire), loads time_seq again, and retries unless both loads saw the same even value.
  // Written only at idle transitions (timestamps are never taken per switch).
  std::atomic<std::uint32_t> time_seq{0};
  owned_counter busy_ns, idle_ns;
  std::atomic<std::int64_t> since_ns{0};
  std::atomic<bool> idle{false};
  // The largest busy/idle times any rt::stats() has reported (CAS-max by readers). The open
  // interval a reader adds runs to its own clock reading, which can be later than the `now` the
  // owner then closes that interval with (the owner reads its clock before the seqlock): without
  // this floor a later snapshot could show less time than an earlier one.
  mutable std::atomic<std::uint64_t> shown_busy_ns{0}, shown_idle_ns{0};
  // Owner, at an idle transition at `now`: closes the open interval, opens one of the other kind.
  void close_interval(bool to_idle, std::int64_t now) noexcept {
    const std::uint32_t v = time_seq.load(std::memory_order_relaxed);
    time_seq.store(v + 1, std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_release);
    const std::int64_t len = now - since_ns.load(std::memory_order_relaxed);
    (idle.load(std::memory_order_relaxed) ? idle_ns : busy_ns)
        .add(static_cast<std::uint64_t>(len > 0 ? len : 0));
    since_ns.store(now, std::memory_order_relaxed);
    idle.store(to_idle, std::memory_order_relaxed);
    time_seq.store(v + 2, std::memory_order_release);
  }
  // [victim index]: fibers this worker stole from that victim (the victim cannot count them: it
  // is not the writer). Sized at runtime start; written on the steal path only.
  std::unique_ptr<owned_counter[]> stolen_from;

  // --- written by the monitor thread only (its single writer), read by rt::stats() ---
  alignas(64) owned_counter hogs;            // fibers reported as hogging this worker
  owned_counter last_hog_fiber;              // id of the last one (0: none)
  std::atomic<std::int64_t> last_hog_ns{0};  // how long it held the worker, at least (relaxed)
};

// The runtime-wide side: what has no owner worker, and the monitor thread.
struct runtime_profile {
  // Fibers spawned by plain threads, and the main fiber (by rt::run): off the hot path, so a
  // shared counter (relaxed: only its value matters, read as the per-worker ones are).
  std::atomic<std::uint64_t> outside_spawned{0};
  // Wakes by plain threads (relaxed, as above).
  std::atomic<std::uint64_t> outside_wakes{0};
  std::atomic<std::uint64_t> peak_live{0};  // sampled; CAS-max by the monitor and rt::stats()
  std::atomic<std::uint64_t> hogs{0};       // monitor-written from here down (relaxed)
  std::atomic<std::uint64_t> last_hog_fiber{0};
  std::atomic<std::int64_t> last_hog_ns{0};
  std::atomic<unsigned> last_hog_worker{0};
  std::atomic<std::uint64_t> schedtrace_lines{0};
  std::atomic<std::uint64_t> monitor_ticks{0};
  std::int64_t start_ns = 0;  // when run_main started (the 0 of schedtrace times)

  // The monitor thread (monitor.cpp). It sleeps on `word` while every worker is idle; a worker
  // leaving idle kicks it (probe_worker_wake). `sleeping` and the runtime's n_idle form a Dekker
  // pair, both seq_cst: see monitor.cpp.
  std::thread thread;
  bool started = false;
  std::atomic<std::uint32_t> word{0};
  std::atomic<bool> sleeping{false};
  std::atomic<bool> stop{false};
};

// monitor.cpp: run_main calls start_profiling before it starts the workers (it sizes the
// counters, counts the main fiber and starts the monitor thread); shutdown calls stop_profiling
// (which stops and joins the monitor) before it tears anything down.
void start_profiling(runtime& rt);
void stop_profiling(runtime& rt) noexcept;
// Wakes the monitor out of its all-idle sleep (a worker left idle).
void kick_monitor(runtime& rt) noexcept;
// Whether a monitor thread runs now (deadlock.cpp counts it among the runtime's threads).
bool monitor_running(const runtime& rt) noexcept;
// Reads RT_SCHEDTRACE and RT_HOGWARN into o and checks the profiling options (resolve_options).
void resolve_profiling_options(options& o);

}  // namespace rt::detail
