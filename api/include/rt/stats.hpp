// rt/stats.hpp — what the scheduler has done so far: per-worker and runtime-wide counters.
//
//   rt::runtime_stats s = rt::stats();   // from a fiber or from any thread while rt::run runs
//   std::cerr << s;                       // readable, one block per worker
//   std::printf("%llu fibers alive, %llu parked on channels\n",
//               (unsigned long long)s.live,
//               (unsigned long long)(s.parked.chan_receive + s.parked.chan_send));
//
// The snapshot is taken without stopping the world. Every counter in it is exact and never goes
// backwards from one snapshot to the next; figures that combine counters of several workers
// (live, runnable, parked, stolen_from) may be off by the events in flight while it was taken.
// Once every fiber but the caller is at rest, they are exact: spawned == finished + live.
// With the library built with RT_PROFILING=OFF every counter stays 0. docs/profiling.md has more.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <iosfwd>
#include <string>
#include <vector>

namespace rt {

// One worker thread.
struct worker_stats {
  unsigned index = 0;                     // 0 .. workers-1
  std::uint64_t fibers_run = 0;           // switches into a fiber (a fiber resumed N times: N)
  std::uint64_t spawned = 0;              // fibers spawned by fibers running on this worker
  std::uint64_t finished = 0;             // fibers that returned on this worker
  std::uint64_t yields = 0;               // rt::yield() (and chaos yields) that requeued a fiber
  std::uint64_t parks = 0;                // fibers that blocked (channel, sync, sleep...)
  std::uint64_t wakes = 0;                // blocked fibers this worker made runnable
  std::uint64_t run_next_hits = 0;        // picks from run_next (the fiber spawned/woken last)
  std::uint64_t steal_attempts = 0;       // other workers' queues looked at while searching
  std::uint64_t steals = 0;               // successful steals (each takes one fiber or a batch)
  std::uint64_t stolen_by = 0;            // fibers this worker took from other workers
  std::uint64_t stolen_from = 0;          // fibers other workers took from this one
  std::uint64_t taken_from_global = 0;    // fibers taken from the global queue
  std::uint64_t idles = 0;                // times it ran out of work and went idle
  std::chrono::nanoseconds busy_time{0};  // running or searching since rt::run (never decreases)
  std::chrono::nanoseconds idle_time{0};  // idle (polling, asleep) since rt::run (never decreases)
  bool idle = false;                      // idle now
  std::size_t local_queue = 0;            // fibers in its local run queue now
  std::size_t spawned_queue = 0;          // fibers in its spawned deque now
  std::size_t stacks_cached = 0;          // free stacks in its cache (as of its last idle change)
  std::uint64_t hogs = 0;                 // fibers that held it past the hog threshold
  std::uint64_t last_hog_fiber = 0;       // id of the last of them (0: none)
  std::chrono::nanoseconds last_hog_time{0};  // how long that one held it, at least
};

// Fibers parked now, by what they wait for (the words of a deadlock report).
struct parked_stats {
  std::uint64_t chan_receive = 0;  // a receive (or range) on a channel
  std::uint64_t chan_send = 0;     // a send on a channel
  std::uint64_t select = 0;        // rt::select with no ready case
  std::uint64_t wait_group = 0;    // rt::wait_group::wait
  std::uint64_t mutex = 0;         // rt::mutex::lock
  std::uint64_t cond_var = 0;      // rt::condition_variable waits
  std::uint64_t sleep = 0;         // rt::sleep_for / sleep_until
  std::uint64_t io = 0;            // a descriptor: rt::net, rt::wait_readable / wait_writable
  std::uint64_t blocking = 0;      // rt::blocking: a call on the blocking pool
  std::uint64_t forever = 0;       // a nil channel, an empty select: never woken
  std::uint64_t once = 0;          // rt::once: another caller runs the function
  std::uint64_t semaphore = 0;     // rt::semaphore::acquire
  std::uint64_t rwmutex = 0;       // rt::rwmutex: lock or lock_shared
};

// The whole runtime.
struct runtime_stats {
  bool running = false;                // false: no rt::run was running (everything else is 0)
  std::vector<worker_stats> workers;   // one per worker, by index
  std::uint64_t spawned = 0;           // fibers started so far, the main fiber included
  std::uint64_t finished = 0;          // of those, how many have returned
  std::uint64_t live = 0;              // spawned - finished: started and not yet returned
  std::uint64_t peak_live = 0;         // the most live fibers seen (sampled, not exact)
  std::uint64_t running_fibers = 0;    // fibers on a worker now
  std::uint64_t runnable = 0;          // live fibers neither running nor parked
  std::uint64_t parked = 0;            // sum of by_reason below
  parked_stats parked_by;              // parked fibers by wait reason
  std::uint64_t sleeping = 0;          // parked in a sleep (= parked_by.sleep)
  std::size_t global_queue = 0;        // fibers in the global run queue now
  unsigned idle_workers = 0;           // workers on the idle list now
  unsigned spinning_workers = 0;       // workers searching for work now
  std::size_t stacks_pooled = 0;       // free stacks kept for reuse (worker caches + shared)
  std::size_t stack_bytes_pooled = 0;  // their bytes (usable part + guard region, reserved)
  std::size_t stack_bytes_mapped = 0;  // address space of every stack slab (free and in use)
  std::size_t control_blocks = 0;      // fiber control blocks allocated (in use or kept for reuse)
  std::size_t control_block_bytes_mapped = 0;  // of their memory, the 2 MiB slabs mapped outside
                                               // malloc (runtime/block_arena.hpp)
  std::uint64_t hogs = 0;                      // hogs reported so far (every worker)
  std::uint64_t last_hog_fiber = 0;            // the most recent one (0: none)
  unsigned last_hog_worker = 0;                // the worker it held
  std::chrono::nanoseconds last_hog_time{0};   // how long it held it, at least
  std::chrono::milliseconds hog_threshold{0};  // the threshold in force
  std::uint64_t schedtrace_lines = 0;          // RT_SCHEDTRACE lines printed so far
  std::uint64_t monitor_ticks = 0;             // times the monitor thread looked at the workers
  unsigned blocking_threads = 0;               // rt::blocking's pool threads alive now
  std::size_t blocking_queued = 0;             // rt::blocking calls waiting for a pool thread
};

// A snapshot of the running runtime's counters, from a fiber or any thread; with no rt::run
// running, a runtime_stats with running == false. Takes a few locks of the runtime's slow paths
// (never one a fiber's switch takes): call it as often as you like, but not in a tight loop.
runtime_stats stats();

// The snapshot as text, one line for the runtime and one per worker.
std::string to_string(const runtime_stats& s);
std::ostream& operator<<(std::ostream& os, const runtime_stats& s);

}  // namespace rt
