// rt/detail/spawn.hpp — the type-erasure layer between rt::go / rt::run (templates) and the
// compiled runtime. Not part of the public API; names may change.
#pragma once

#include <cstddef>
#include <new>
#include <type_traits>
#include <utility>

namespace rt::detail {

struct fiber;  // the runtime's fiber control block (runtime/fiber.hpp)

// How the runtime runs and disposes of a fiber's callable without knowing its type.
struct task_ops {
  // Runs it, then destroys it: one indirect call for a fiber's whole callable. An exception
  // escapes to the runtime (a panic) before the destruction, which is then left to `destroy`.
  void (*run_then_destroy)(void* callable);
  // Destroys it when it has not run to its end (it threw, or the fiber never ran); nullptr when
  // that does nothing (trivially destructible).
  void (*destroy)(void* callable);
};

template <class Fn>
inline constexpr task_ops task_ops_for{
    [](void* p) {
      Fn& fn = *static_cast<Fn*>(p);
      fn();
      // noexcept: a destructor that throws ends the program here, as it did in run_task (which
      // is noexcept), instead of reaching run_task's handler, which would destroy it again.
      [](Fn& done) noexcept { done.~Fn(); }(fn);
    },
    std::is_trivially_destructible_v<Fn> ? nullptr : +[](void* p) { static_cast<Fn*>(p)->~Fn(); },
};

// Bytes of callable stored in the control block itself; larger callables go to the heap.
inline constexpr std::size_t inline_task_bytes = 64;

// Takes a control block for a new fiber, with room for a callable of the given size/alignment
// (inline when small, else heap). Throws rt::runtime_error when no rt::run is running.
// Its return address, which lies in the user's code since rt::go and spawn are always inlined,
// is kept as the fiber's spawn site for fatal-error reports.
fiber* new_fiber(std::size_t size, std::size_t align, const task_ops* ops, void** storage);
// new_fiber for a callable known, at compile time, to fit the inline storage (most lambdas):
// the common case then tests no size.
fiber* new_fiber_inline(const task_ops* ops, void** storage);
// Makes a fiber from new_fiber runnable.
void start_fiber(fiber* f) noexcept;
// Gives back a fiber from new_fiber that never started (its callable was not constructed).
void discard_fiber(fiber* f) noexcept;

// Spawns a fiber running `fn()`; the fiber owns `fn`.
template <class Fn>
[[gnu::always_inline]] inline void spawn(Fn&& fn) {
  using F = std::decay_t<Fn>;
  static_assert(alignof(F) <= 64, "rt::go: callables aligned beyond 64 bytes are not supported");
  void* storage = nullptr;
  fiber* f = sizeof(F) <= inline_task_bytes && alignof(F) <= alignof(std::max_align_t)
                 ? new_fiber_inline(&task_ops_for<F>, &storage)
                 : new_fiber(sizeof(F), alignof(F), &task_ops_for<F>, &storage);
  try {
    ::new (storage) F(std::forward<Fn>(fn));
  } catch (...) {
    discard_fiber(f);
    throw;
  }
  start_fiber(f);
}

}  // namespace rt::detail
