// rt/group.hpp — running a group of fibers that fail together (golang.org/x/sync/errgroup).
//
//   auto [g, ctx] = rt::group::with_context(parent);
//   for (auto& url : urls) g.go([ctx, url] { fetch(ctx, url); });  // throws on failure
//   g.wait();  // waits for every member, then rethrows the first exception, if any
//
// Guarantees:
// - wait() returns only after every member started so far has finished; it then rethrows the
//   exception that was caught first (in time) of all the members' exceptions, every time it is
//   called. Later exceptions are dropped.
// - with_context: the context is cancelled when the first member fails (before its exception
//   reaches wait()) and when wait() returns.
// - set_limit(n): at most n members run at once; go() parks (a plain thread blocks) until a slot
//   is free, try_go() returns false instead. Changing the limit while members run throws.
// - A copyable handle: copies share one group (lambdas capture it by value). An exception
//   escaping a member is the group's failure, not a panic.
#pragma once

#include <exception>
#include <functional>
#include <memory>
#include <type_traits>
#include <utility>

#include "rt/context.hpp"
#include "rt/runtime.hpp"

namespace rt {

namespace detail {
struct group_state;  // runtime/group.cpp
struct group_slot;
// Takes a member slot (waits for one under a limit unless try_only); false if none (try_only).
bool group_enter(group_state& g, bool try_only);
// Records a member's exception (the first one wins) and cancels the group's context.
void group_fail(group_state& g, std::exception_ptr e) noexcept;
// Gives back the slot taken by group_enter; the member is finished.
void group_leave(group_state& g) noexcept;
}  // namespace detail

class group {
 public:
  // An empty group with no limit and no context.
  group();
  // A group whose context (a child of parent) is cancelled on the first failure or when wait()
  // returns.
  static std::pair<group, context> with_context(const context& parent);

  // Runs fn(args...) in a new fiber as a member (arguments decay-copied as by rt::go). Under a
  // limit, parks until a slot is free. fn's result is ignored; an exception is a failure.
  template <class F, class... A>
  void go(F&& fn, A&&... args) {
    start(false, std::forward<F>(fn), std::forward<A>(args)...);
  }
  // As go(), but returns false (and runs nothing) if the limit is reached.
  template <class F, class... A>
  bool try_go(F&& fn, A&&... args) {
    return start(true, std::forward<F>(fn), std::forward<A>(args)...);
  }
  // Waits for every member, then rethrows the first exception thrown by a member, if any.
  void wait();
  // At most n members at once; n < 0: no limit. Throws rt::runtime_error while members run.
  void set_limit(int n);

 private:
  template <class F, class... A>
  bool start(bool try_only, F&& fn, A&&... args) {
    static_assert(std::is_invocable_v<std::decay_t<F>, std::decay_t<A>...>,
                  "rt::group::go: fn is not callable with these arguments (after decay-copying)");
    if (!detail::group_enter(*s_, try_only)) return false;
    try {
      rt::go([s = s_, f = std::decay_t<F>(std::forward<F>(fn)),
              ... a = std::decay_t<A>(std::forward<A>(args))]() mutable {
        try {
          std::invoke(std::move(f), std::move(a)...);
        } catch (...) {
          detail::group_fail(*s, std::current_exception());
        }
        detail::group_leave(*s);
      });
    } catch (...) {
      detail::group_leave(*s_);  // never started
      throw;
    }
    return true;
  }

  std::shared_ptr<detail::group_state> s_;
};

}  // namespace rt
