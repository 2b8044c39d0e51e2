// rt/runtime.hpp — starting the runtime and spawning fibers (Go's `go` statement).
//
//   int main() {
//     return rt::run([] {
//       rt::wait_group wg;
//       for (int i = 0; i < 3; ++i) {
//         wg.add(1);
//         rt::go([&wg](int n) { std::printf("%d\n", n); wg.done(); }, i);
//       }
//       wg.wait();
//     });
//   }
#pragma once

#include <functional>
#include <type_traits>
#include <utility>

#include "rt/detail/spawn.hpp"
#include "rt/errors.hpp"
#include "rt/options.hpp"

namespace rt {

namespace detail {
void run_main(void (*body)(void*), void* ctx, const options& opts);
}

// Runs `main_fn` as the main fiber (id 1) of a fresh runtime and returns its result (0 when it
// returns void). Like a Go program, it returns as soon as main_fn returns: fibers still alive are
// not waited for. Each is unwound (its destructors run) without running any more of its code, and
// every stack and control block is freed, so run() may be called again. A fiber that never
// reaches a switch point (yield, channel or sync operation, sleep) delays that return until it
// does. Throws rt::runtime_error on bad options, when called from a fiber, or when another
// rt::run is already running in this process.
template <class F>
[[gnu::always_inline]] inline int run(F&& main_fn, options opts = {}) {
  using R = std::invoke_result_t<F&>;
  static_assert(std::is_void_v<R> || std::is_convertible_v<R, int>,
                "rt::run: main_fn must return void or int");
  struct frame {
    F& fn;
    int result;
  } fr{main_fn, 0};
  detail::run_main(
      [](void* p) {
        auto* f = static_cast<frame*>(p);
        if constexpr (std::is_void_v<R>) {
          std::invoke(f->fn);
        } else {
          f->result = static_cast<int>(std::invoke(f->fn));
        }
      },
      &fr, opts);
  return fr.result;
}

// Spawns a detached fiber running fn(args...). The arguments are decay-copied as by std::thread
// (use std::ref to pass a reference); move-only callables and arguments work. From a fiber or a
// plain thread while rt::run is running; throws rt::runtime_error when none is.
template <class F, class... A>
[[gnu::always_inline]] inline void go(F&& fn, A&&... args) {
  static_assert(std::is_invocable_v<std::decay_t<F>, std::decay_t<A>...>,
                "rt::go: fn is not callable with these arguments (after decay-copying them)");
  detail::spawn([f = std::decay_t<F>(std::forward<F>(fn)),
                 ... a = std::decay_t<A>(std::forward<A>(args))]() mutable {
    std::invoke(std::move(f), std::move(a)...);
  });
}

// Lets other fibers run; the caller goes to the back of its worker's run queue. On a plain
// thread, std::this_thread::yield().
void yield();

// The number of worker threads of the running runtime (Go's runtime.GOMAXPROCS(0)); 0 when no
// rt::run is running.
unsigned worker_count() noexcept;

// Go's runtime.GOMAXPROCS(0): the running runtime's worker count, 0 outside rt::run. Only the
// query is offered: the count is fixed for an rt::run (options::workers / RT_MAXPROCS; see
// docs/design.md, "Why the worker count is fixed"). To bound parallelism below it, use an
// rt::semaphore.
inline unsigned maxprocs() noexcept {
  return worker_count();
}

}  // namespace rt
