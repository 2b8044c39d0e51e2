// rt/once.hpp — running an initialisation exactly once (Go's sync.Once).
//
//   rt::once init;
//   config* cfg = nullptr;
//   auto get = [&] { init.call([&] { cfg = load_config(); }); return cfg; };
//   rt::go([&] { use(get()); });  // every caller sees the one loaded config
//   rt::go([&] { use(get()); });
//
// Guarantees:
// - fn runs at most once to completion: the first caller runs it; callers arriving meanwhile
//   park (fibers) or block (plain threads) until it has finished, then return without running
//   it. Everything fn wrote happens-before every later call() and done() that returns.
// - An exception from fn propagates to the caller that ran it and leaves the once not done:
//   exactly one of the parked callers (or the next caller) runs fn next. This is std::call_once's
//   rule and the one deliberate difference from Go, where a panicking f counts as done.
// - After it is done, call() is one acquire load: no lock, no allocation.
// - fn calling call() on the same once deadlocks (as in Go); a deadlock report shows "[once]".
// - A fiber abandoned by rt::run's shutdown while running fn leaves the once in progress: later
//   callers wait forever (see docs/reliability.md section 18).
#pragma once

#include <atomic>
#include <functional>
#include <utility>

#include "rt/detail/wait.hpp"

namespace rt {

class once {
 public:
  once() = default;
  once(const once&) = delete;
  once& operator=(const once&) = delete;
  ~once();

  // Runs fn(args...) unless a call already completed; waits while another caller runs it.
  template <class F, class... A>
  void call(F&& fn, A&&... args) {
    // acquire: pairs with finish()'s release store, so fn's writes are visible once done.
    if (done_.load(std::memory_order_acquire)) return;
    if (!begin()) return;
    try {
      std::invoke(std::forward<F>(fn), std::forward<A>(args)...);
    } catch (...) {
      finish(false);
      throw;
    }
    finish(true);
  }
  // True once a call of fn has returned normally.
  bool done() const noexcept { return done_.load(std::memory_order_acquire); }  // as in call()

 private:
  // The slow path: true if the caller must run fn now; false if fn has completed meanwhile.
  bool begin();
  // The runner is done: ok = fn returned (wake everybody), else hand the run to one waiter.
  void finish(bool ok) noexcept;

  std::atomic<bool> done_{false};
  detail::spinlock lock_;  // guards running_ and waiters_
  bool running_ = false;   // a caller is running fn
  detail::waiter_queue waiters_;
};

// Go's once.Do / std::call_once: o.call(fn, args...).
template <class F, class... A>
void call_once(once& o, F&& fn, A&&... args) {
  o.call(std::forward<F>(fn), std::forward<A>(args)...);
}

}  // namespace rt
