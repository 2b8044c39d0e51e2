// rt/options.hpp — how a runtime started by rt::run is configured.
//
//   rt::options opts;
//   opts.workers = 4;              // four worker threads, whatever the core count
//   opts.stack_size = 128 * 1024;  // deeper recursion per fiber
//   rt::run(main_fn, opts);
#pragma once

#include <cstddef>
#include <cstdint>

namespace rt {

// How fiber stacks are protected against overflow.
enum class guard_policy {
  // Guard pages installed with madvise(MADV_GUARD_INSTALL) (Linux 6.13+), which do not split the
  // mapping; where the kernel lacks it, falls back to `mprotect` and then `canary`.
  automatic,
  // mprotect(PROT_NONE) guard pages. Each splits a mapping, so only `mprotect_budget` stacks get
  // one; stacks beyond the budget get a canary instead (vm.max_map_count is 65530 by default).
  mprotect,
  // No guard page: a canary word at the stack's limit, checked each time the fiber switches out.
  // Catches an overflow after the fact, and only if the canary itself was overwritten.
  canary,
};

// Settings for one rt::run. Every field has a default that suits most programs.
struct options {
  // Worker threads. 0: RT_MAXPROCS from the environment, else one per core.
  unsigned workers = 0;
  // Usable bytes per fiber stack, rounded up to whole pages (plus the guard region below it).
  std::size_t stack_size = std::size_t{64} * 1024;
  // How stacks are guarded against overflow; see guard_policy.
  guard_policy guard = guard_policy::automatic;
  // Bytes of guard region below each stack, rounded up to whole pages; 4 KiB to 1 GiB. A frame
  // that moves the stack pointer further than this in one step without touching the pages in
  // between (code built without -fstack-clash-protection: a large local array) can jump the
  // guard and write into the neighbouring fiber's stack. The default covers frames up to 64 KiB;
  // code built with -fstack-clash-protection (which probes every page of a large frame) is safe
  // with any frame size. Under guard_policy::automatic the region costs address space only (no
  // mapping, no memory); under `mprotect` it is part of each guard's one PROT_NONE range.
  std::size_t guard_size = std::size_t{64} * 1024;
  // Under guard_policy::mprotect: how many stacks get an mprotect guard page before the rest
  // fall back to a canary (each guard costs two entries of vm.max_map_count).
  std::size_t mprotect_budget = 16384;
  // Stacks each worker keeps warm for reuse (at least 64); when a worker goes idle (the whole
  // runtime, or it alone for 10 ms), the stacks it caches beyond this are returned to the OS with
  // madvise(MADV_DONTNEED), so RSS falls after a burst. A worker caching 16 times as many hands
  // the excess to a shared list (at most 8 times as many) and returns the rest at once.
  std::size_t stack_pool_high_water = 256;
  // false (Go's behaviour): an exception escaping a fiber prints "panic: ..." and exits with
  // status 2. true: the first such exception stops the runtime — as if main had returned — and
  // rt::run rethrows it (for test harnesses and embedding).
  bool capture_panics = false;
  // Chaos scheduling for testing: non-zero perturbs every scheduling decision (random yields
  // around channel and sync operations, bypassing run_next, random steal victims and batch
  // sizes, random wake order) from this seed. 0: RT_CHAOS from the environment, else off.
  // With one worker, a seed replays exactly.
  std::uint64_t chaos_seed = 0;
  // true (Go's behaviour): SIGQUIT (Ctrl-\ in a terminal) prints every fiber with its stack to
  // stderr and exits with status 2 (rt/debug.hpp). false, or RT_SIGQUIT=0 in the environment:
  // rt::run leaves SIGQUIT alone.
  bool dump_on_sigquit = true;
  // Set by rt::run when chaos_seed came from RT_CHAOS (which it then announces on stderr).
  bool chaos_seed_from_env = false;
  // Scheduler trace (docs/profiling.md): every this many milliseconds, one "SCHED ..." line on
  // stderr with the workers' queues and the fibers' states. 0: RT_SCHEDTRACE from the
  // environment, else off.
  unsigned schedtrace_ms = 0;
  // A fiber that holds its worker this long without reaching a switch point (there is no
  // preemption) is reported as a hog in rt::stats() and the trace. 0: 10 ms.
  unsigned hog_threshold_ms = 0;
  // Also print a warning on stderr for each hog, with its id and spawn site. false: RT_HOGWARN
  // from the environment (1 turns it on).
  bool hog_warn = false;
  // The most threads rt::blocking's pool runs at once (rt/blocking.hpp); calls beyond that wait
  // in FIFO order. 0: RT_BLOCKING_THREADS from the environment, else 64. At most 10000.
  unsigned max_blocking_threads = 0;
};

}  // namespace rt
