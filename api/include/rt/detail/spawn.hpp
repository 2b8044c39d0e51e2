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
  void (*invoke)(void* callable);  // runs it; exceptions escape to the runtime (a panic)
  // Destroys it, run or not; nullptr when that does nothing (trivially destructible), so a
  // fiber's exit skips an indirect call.
  void (*destroy)(void* callable);
};

template <class Fn>
inline constexpr task_ops task_ops_for{
    [](void* p) { (*static_cast<Fn*>(p))(); },
    std::is_trivially_destructible_v<Fn> ? nullptr : +[](void* p) { static_cast<Fn*>(p)->~Fn(); },
};

// Takes a control block for a new fiber, with room for a callable of the given size/alignment
// (inline when small, else heap). Throws rt::runtime_error when no rt::run is running.
// Its return address, which lies in the user's code since rt::go and spawn are always inlined,
// is kept as the fiber's spawn site for fatal-error reports.
fiber* new_fiber(std::size_t size, std::size_t align, const task_ops* ops, void** storage);
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
  fiber* f = new_fiber(sizeof(F), alignof(F), &task_ops_for<F>, &storage);
  try {
    ::new (storage) F(std::forward<Fn>(fn));
  } catch (...) {
    discard_fiber(f);
    throw;
  }
  start_fiber(f);
}

}  // namespace rt::detail
