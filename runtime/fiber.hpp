// runtime/fiber.hpp — a fiber's control block.
//
// A control block is taken at spawn (from a per-worker free list, so the common case allocates
// nothing) and holds what a fiber needs before it has a stack: its callable (inline when small),
// its id and its spawn site. The stack is bound when the fiber first runs and given back to the
// worker's stack pool when it ends, so a spawned fiber that has not run costs one control block.
#pragma once

#include <time.h>
#include <boost/context/detail/fcontext.hpp>

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "flag_test.hpp"
#include "rt/detail/spawn.hpp"
#include "rt/detail/wait.hpp"
#include "sanitizer.hpp"
#include "stack_pool.hpp"

namespace rt {
class mutex;
}

namespace rt::detail {

// Where a fiber is in its life; read without synchronisation by fatal-error reports only.
enum class fiber_state : std::uint8_t { free, runnable, running, parked, dead };

// What the worker does for a fiber right after it has switched out (the fiber cannot do it
// itself: until the switch completes, another worker must not resume it).
enum class after_switch : std::uint8_t {
  requeue,  // yield: put it at the back of this worker's run queue
  park,     // blocked: call park_unlock(park_arg) so that a waker may now find it
  exit,     // finished: recycle the control block
};

class runtime;

struct fiber {
  // --- set at spawn ---
  runtime* rt = nullptr;          // the runtime whose control block this is
  const task_ops* ops = nullptr;  // how to run and destroy the callable
  void* task = nullptr;           // the callable: &inline_task, or a heap block
  // Unique within its rt::run, whose main fiber is 1; each rt::run numbers afresh
  // (runtime::id_counter). Atomic (relaxed) only because a fiber dump (dump.cpp) reads it while
  // a running fiber's block may be recycled and reused; the publishing store of `state` orders it.
  std::atomic<std::uint64_t> id{0};
  std::atomic<void*> spawn_pc{nullptr};  // return address in the code that called rt::go (ditto)
  fiber* next = nullptr;                 // free-list link

  // --- switching (scheduler.hpp, "Switching") ---
  // This fiber's saved context while it is suspended (Boost.Context's fcontext_t: a pointer into
  // its stack, where jump_fcontext or ontop_fcontext saved its registers); nullptr before its
  // stack is bound (just before its first run: then make_fcontext's fresh context) and while it
  // runs.
  boost::context::detail::fcontext_t context = nullptr;
  stack_slot stack;  // its stack, from its first run until it exits
  after_switch after = after_switch::exit;
  void (*park_unlock)(void*) noexcept = nullptr;
  void* park_arg = nullptr;
  // While parked in block_with(): the waiters it has in queues (one; a select's cases), for
  // shutdown to unlink if the fiber is abandoned. Written by the fiber itself; once it is
  // resumed only the count is cleared (park_waiters is read up to n_park_waiters only).
  waiter* park_waiters = nullptr;
  std::uint32_t n_park_waiters = 0;
  // The rt::mutexes this fiber holds, linked through the mutexes (rt/mutex.hpp), for shutdown
  // to release if the fiber is abandoned. Touched by the fiber itself, by an unlock() that
  // hands it a mutex while it is parked, and by shutdown.
  rt::mutex* held_mutexes = nullptr;
  // While parked in an operation that registered, outside its own stack, something that points
  // into it (rt::semaphore's std::stop_callback): called by shutdown if the fiber is abandoned
  // there, before its waiters are unlinked, to unregister it — the stack is freed, never
  // unwound. Written by the fiber itself (set before it parks, cleared once resumed).
  void (*on_abandon)(void*) = nullptr;
  void* on_abandon_arg = nullptr;
  std::atomic<fiber_state> state{fiber_state::free};
  std::atomic<wait_reason> reason{wait_reason::none};  // why parked (diagnostic)
  // Set by a fiber dump while it reads this fiber's stack; whoever resumes the fiber waits for it
  // to clear. The Dekker pair with `state`: see publish_running() below and dump.cpp.
  std::atomic<bool> dump_claim{false};
  // When it last parked (park_stamp(); relaxed: diagnostic, ordered by `state`). 0: never.
  std::atomic<std::int64_t> parked_at{0};
  // rt::this_fiber::set_name's name, truncated, NUL-terminated. Bytes are read and written as
  // relaxed atomics (std::atomic_ref) because a dump may read a running fiber's name while it is
  // being set: a torn name is possible then, a data race is not.
  static constexpr std::size_t name_bytes = 32;
  char name[name_bytes] = {};
  sanitizer_context san;
  void* exception_globals[2] = {nullptr, nullptr};  // this fiber's __cxa_eh_globals (see worker)
  int saved_errno = 0;  // this fiber's errno while it is switched out (errno is per thread)
  std::uint64_t* canary = nullptr;  // canary word at the stack limit, when the stack has one

  alignas(std::max_align_t) unsigned char inline_task[inline_task_bytes];
};

// park_stamp() below is inline in every file that includes this one: all must agree on
// RT_PROFILING (CMake defines it for the library; the default matches probes.hpp's).
#ifndef RT_PROFILING
#define RT_PROFILING 1
#endif

// The clock fibers stamp their parks with, for how long a fiber has waited in a dump: the
// steady clock (timer.hpp's now_ns), as last published by the hog monitor (every sample period,
// a few ms, while any worker is busy) and by every worker leaving its idle state (monitor.cpp,
// probes.hpp). Reading it is one load, where a clock read would cost ~20 instructions per park
// (4% of a pingpong round trip) and the TSC is slow and unsynchronised on some virtual machines.
// A stamp is therefore early by at most a sample period: dumps print waits in ms, s and minutes.
// relaxed: a diagnostic time, not an order.
extern std::atomic<std::int64_t> g_park_clock_ns [[gnu::visibility("hidden")]];

// The stamp of a park now (0, meaning "unknown", when the probes are compiled out).
inline std::int64_t park_stamp() noexcept {
#if RT_PROFILING
  return g_park_clock_ns.load(std::memory_order_relaxed);
#else
  return 0;
#endif
}

// Clears what a fiber dump shows of a control block's previous fiber (its name, its park time).
inline void reset_dump_fields(fiber* f) noexcept {
  std::atomic_ref<char>(f->name[0]).store('\0', std::memory_order_relaxed);
  f->parked_at.store(0, std::memory_order_relaxed);
}

// Publishes that f is about to be resumed, then waits while a dump reads its stack. Called by
// whoever switches into f (run_fiber, and suspend's direct switch) before the switch. The dump
// does (claim = true; load state) and this does (state = running; load claim), all seq_cst: of
// two such store-then-load pairs at least one load sees the other's store. So either the dump
// sees `running` and does not touch the stack, or this sees the claim and waits until the dump
// has released it — after it finished reading. Cost on the switch path: an exchange (a locked
// instruction instead of a plain store) and one load of a line the resumer touches anyway.
// One test in the common case: a plain `while` was laid out as a loop entered by a jump (two
// more instructions per switch), and a call, even a cold one, would make the switch paths that
// make no call (switch_to) save registers.
inline void publish_running(fiber* f) noexcept {
  f->state.exchange(fiber_state::running);
  if (flag_is_set(f->dump_claim)) [[unlikely]] {  // one compare (a load and a test cost two more)
    do {
#if defined(__x86_64__) || defined(__i386__)
      __builtin_ia32_pause();
#endif
    } while (f->dump_claim.load());
  }
}

}  // namespace rt::detail
