// rt/blocking.hpp — running a blocking call without blocking a worker.
//
//   std::string text = rt::blocking([&] { return read_whole_file(path); });
//
// rt::blocking(fn) runs fn on one of a bounded pool of extra threads and parks the calling fiber
// until it returns; fn's result (or its exception) comes back to the caller. Use it for file
// I/O, name resolution, or a C library that blocks: the worker meanwhile runs other fibers.
// On a plain thread (no fiber) fn simply runs on the calling thread.
#pragma once

#include <exception>
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
  struct frame {
    F& fn;
    std::exception_ptr error;
    std::conditional_t<std::is_void_v<R>, bool, std::optional<R>> result{};
  } fr{fn, nullptr};
  detail::run_blocking(
      [](void* p) noexcept {
        auto& f = *static_cast<frame*>(p);
        try {
          if constexpr (std::is_void_v<R>) {
            f.fn();
          } else {
            f.result.emplace(f.fn());
          }
        } catch (...) {
          f.error = std::current_exception();
        }
      },
      &fr);
  if (fr.error) std::rethrow_exception(fr.error);
  if constexpr (!std::is_void_v<R>) return std::move(*fr.result);
}

}  // namespace rt
