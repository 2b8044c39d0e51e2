// runtime/fiber.hpp — a fiber's control block.
//
// A control block is taken at spawn (from a per-worker free list, so the common case allocates
// nothing) and holds what a fiber needs before it has a stack: its callable (inline when small),
// its id and its spawn site. The stack is bound when the fiber first runs and given back to the
// worker's stack pool when it ends, so a spawned fiber that has not run costs one control block.
#pragma once

#include <boost/context/fiber.hpp>

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "rt/detail/spawn.hpp"
#include "rt/detail/wait.hpp"
#include "sanitizer.hpp"

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

// Bytes of callable stored in the control block itself; larger callables go to the heap.
inline constexpr std::size_t inline_task_bytes = 64;

class runtime;

struct fiber {
  // --- set at spawn ---
  runtime* rt = nullptr;          // the runtime whose control block this is
  const task_ops* ops = nullptr;  // how to run and destroy the callable
  void* task = nullptr;           // the callable: &inline_task, or a heap block
  std::uint64_t id = 0;           // unique within its rt::run, whose main fiber is 1; each
                                  // rt::run numbers afresh (runtime::id_counter)
  void* spawn_pc = nullptr;       // return address in the code that called rt::go
  fiber* next = nullptr;          // free-list link

  // --- switching ---
  boost::context::fiber context;    // this fiber, while suspended (empty until first run)
  boost::context::fiber scheduler;  // the worker that last resumed it, while it runs
  after_switch after = after_switch::exit;
  void (*park_unlock)(void*) = nullptr;
  void* park_arg = nullptr;
  // While parked in block_with(): the waiters it has in queues (one; a select's cases), for
  // shutdown to unlink if the fiber is abandoned. Written by the fiber itself.
  waiter* park_waiters = nullptr;
  std::uint32_t n_park_waiters = 0;
  // The rt::mutexes this fiber holds, linked through the mutexes (rt/mutex.hpp), for shutdown
  // to release if the fiber is abandoned. Touched by the fiber itself, by an unlock() that
  // hands it a mutex while it is parked, and by shutdown.
  rt::mutex* held_mutexes = nullptr;
  std::atomic<fiber_state> state{fiber_state::free};
  std::atomic<wait_reason> reason{wait_reason::none};  // why parked (diagnostic)
  sanitizer_context san;
  void* exception_globals[2] = {nullptr, nullptr};  // this fiber's __cxa_eh_globals (see worker)
  int saved_errno = 0;  // this fiber's errno while it is switched out (errno is per thread)
  std::uint64_t* canary = nullptr;  // canary word at the stack limit, when the stack has one

  alignas(std::max_align_t) unsigned char inline_task[inline_task_bytes];
};

}  // namespace rt::detail
