// rt/blocking.hpp — running a blocking call without blocking a worker.
//
//   std::string text = rt::blocking([&] { return read_whole_file(path); });
//
// rt::blocking(fn) runs fn on one of a bounded pool of extra threads and parks the calling fiber
// until it returns; fn's result (or its exception) comes back to the caller. Use it for file
// I/O, name resolution, or a C library that blocks: the worker meanwhile runs other fibers.
//
// What is promised:
// - The pool belongs to the running rt::run. Its threads start lazily (none before the first
//   call), at most options::max_blocking_threads of them (RT_BLOCKING_THREADS, default 64); calls
//   beyond that wait, in FIFO order, for a thread to be free. A thread with no call to run for
//   10 s exits. rt::stats() shows blocking_threads and blocking_queued.
// - fn runs on another OS thread: errno, thread_local variables and thread identity inside fn
//   are that thread's, not the caller's (errno set by fn does not reach the caller: return it).
//   fn may use channels and sync objects as any plain thread does; an rt::blocking inside fn runs
//   inline.
// - fn's result is moved (or, for a reference, bound) to the caller; an exception it throws is
//   rethrown in the caller. Move-only results and references are fine.
// - On a plain thread (no fiber), or outside rt::run, fn simply runs on the calling thread.
// - A fiber waiting here is not deadlocked (no deadlock report while a call is in flight).
// - When main returns while a fiber waits here, that fiber is abandoned like every other
//   leftover fiber (never resumed). A call still queued never runs. A call already running is
//   waited for: rt::run returns only after fn has returned (fn and what it captured may live in
//   the abandoned fiber's frame) — so, as with std::async's future, a running fn that waits for
//   something only a fiber would do makes rt::run hang.
#pragma once

#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <type_traits>
#include <utility>

namespace rt {
namespace detail {
// Runs call(ctx) on a blocking-pool thread and parks the calling fiber until it has returned;
// on a plain thread, runs it on the calling thread. call must not throw (blocking() catches).
void run_blocking(void (*call)(void*) noexcept, void* ctx);
}  // namespace detail

// Runs fn() on the blocking pool and returns its result; rethrows what fn threw.
template <class F>
std::invoke_result_t<F&> blocking(F&& fn) {
  using R = std::invoke_result_t<F&>;
  // A reference result is kept as a pointer (std::optional<T&> does not exist); anything else in
  // an optional, so that R needs no default constructor and may be move-only.
  using stored = std::conditional_t<
      std::is_void_v<R>, bool,
      std::conditional_t<std::is_reference_v<R>, std::remove_reference_t<R>*, std::optional<R>>>;
  struct frame {
    std::remove_reference_t<F>& fn;
    std::exception_ptr error;
    stored result{};
  } fr{fn, nullptr};
  detail::run_blocking(
      [](void* p) noexcept {
        auto& f = *static_cast<frame*>(p);
        try {
          if constexpr (std::is_void_v<R>) {
            std::invoke(f.fn);
          } else if constexpr (std::is_reference_v<R>) {
            R ref = std::invoke(f.fn);  // named, so an rvalue reference is an lvalue here
            f.result = std::addressof(ref);
          } else {
            f.result.emplace(std::invoke(f.fn));
          }
        } catch (...) {
          f.error = std::current_exception();
        }
      },
      &fr);
  if (fr.error) std::rethrow_exception(fr.error);
  if constexpr (std::is_reference_v<R>) {
    return static_cast<R>(*fr.result);
  } else if constexpr (!std::is_void_v<R>) {
    return std::move(*fr.result);
  }
}

}  // namespace rt
