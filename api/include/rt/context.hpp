// rt/context.hpp — cancellation, deadlines and request-scoped values (Go's context package).
//
//   auto [ctx, cancel] = rt::with_timeout(rt::background(), 100ms);
//   switch (rt::select({rt::recv(results, &v), rt::recv(ctx.done())})) {
//     case 0: use(v); break;
//     case 1: std::puts(ctx.err().message().c_str()); break;  // "context deadline exceeded"
//   }
//   cancel();  // idempotent; releases the timer and the parent's reference at once
//
// Guarantees:
// - Cancelling a context cancels all its descendants: when cancel() (or the cancellation by a
//   parent, a stop token or the deadline) returns, the context and every descendant report done
//   (done() closed, err() set; stop requested too, except that a cancel racing another one
//   returns once err/done are set, the stop requests being made by the winner). A cancellation
//   never reaches a parent.
// - A child created under a parent that is already done is born done, with the parent's err().
// - A child's deadline is min(parent's, own). The first of cancel and deadline wins: err() is
//   set once and never changes.
// - An abandoned context (every handle and cancel_func dropped without a cancel) leaks nothing: it
//   unregisters from its parent and disarms its timer.
// - Everything parks fibers, never blocks workers; a plain thread inside rt::run blocks.
//   with_timeout / with_deadline need a running runtime for their timer (rt::runtime_error
//   naming the entry point otherwise); with_cancel, with_value and with_stop_token work anywhere.
// - Stop callbacks registered on stop_token() run in the fiber or thread that cancels, after the
//   context tree is marked done, with no internal lock held.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>
#include <variant>

#include "rt/chan_direction.hpp"
#include "rt/detail/deadline.hpp"
#include "rt/errors.hpp"
#include "rt/runtime.hpp"

namespace rt {

// Why a context is done: err().value() is one of these.
enum class context_errc { canceled = 1, deadline_exceeded = 2 };

// The category of context_errc: messages "context canceled", "context deadline exceeded".
const std::error_category& context_category() noexcept;
// Makes an error_code of context_category (found by ADL for `std::error_code ec = errc;`).
inline std::error_code make_error_code(context_errc e) noexcept {
  return {static_cast<int>(e), context_category()};
}

// Thrown by context::throw_if_done(): what() is the message of code().
class context_error : public std::runtime_error {
 public:
  // An error carrying ec (one of context_errc).
  explicit context_error(std::error_code ec) : std::runtime_error(ec.message()), code_(ec) {}
  // Why the context is done.
  const std::error_code& code() const noexcept { return code_; }

 private:
  std::error_code code_;
};

// A typed key for with_value/value: keys compare by address, so each key object is distinct
// (declare it once, e.g. `inline const rt::context_key<std::string> request_id;`).
template <class V>
class context_key {
 public:
  // A fresh key.
  constexpr context_key() noexcept = default;
  context_key(const context_key&) = delete;
  context_key& operator=(const context_key&) = delete;

 private:
  char unused_ = 0;  // distinct objects, distinct addresses
};

class context;
struct cancel_func;

namespace detail {

struct ctx_node;  // the shared state (runtime/context.cpp)

// A value stored by with_value, type-erased.
struct ctx_value_base {
  virtual ~ctx_value_base() = default;
  virtual const void* get() const noexcept = 0;
};
template <class V>
struct ctx_value final : ctx_value_base {
  template <class U>
  explicit ctx_value(U&& u) : v(std::forward<U>(u)) {}
  const void* get() const noexcept override { return &v; }
  V v;
};

context make_value_context(const context& parent, const void* key,
                           std::unique_ptr<ctx_value_base> v);
const void* ctx_lookup(const ctx_node* n, const void* key) noexcept;
void ctx_ref(ctx_node* n) noexcept;
void ctx_unref(ctx_node* n) noexcept;
// Test hook: how many cancelable children are registered with ctx's nearest cancelable
// ancestor-or-self (what an abandoned child must not leave behind).
std::size_t context_child_count(const context& ctx) noexcept;
context adopt_context(ctx_node* n) noexcept;
cancel_func adopt_cancel(ctx_node* n) noexcept;

}  // namespace detail

// A context: copyable handle to shared state. Default-constructed == background().
class context {
 public:
  // The background context: never done, no deadline, no values.
  context() noexcept = default;
  context(const context& o) noexcept : n_(o.n_) {
    if (n_) detail::ctx_ref(n_);
  }
  context(context&& o) noexcept : n_(std::exchange(o.n_, nullptr)) {}
  context& operator=(context o) noexcept {
    std::swap(n_, o.n_);
    return *this;
  }
  ~context() {
    if (n_) detail::ctx_unref(n_);
  }

  // Closed when the context is done (cancelled or past its deadline); the nil channel (never
  // ready) for a context that can never be done. Usable in rt::select.
  recv_chan<std::monostate> done() const;
  // {} while live; context_errc::canceled or context_errc::deadline_exceeded once done.
  std::error_code err() const noexcept;
  // The time it will be done by itself, min over its ancestors; nullopt if none.
  std::optional<std::chrono::steady_clock::time_point> deadline() const noexcept;
  // The value stored under k by the nearest with_value layer; nullptr if absent.
  template <class V>
  const V* value(const context_key<V>& k) const noexcept {
    return static_cast<const V*>(detail::ctx_lookup(n_, &k));
  }
  // A stop token whose stop is requested when the context is done (stop_possible() is false
  // for a context that can never be done).
  std::stop_token stop_token() const noexcept;
  // Throws rt::context_error (with code() == err()) if the context is done.
  void throw_if_done() const;

 private:
  friend context detail::adopt_context(detail::ctx_node*) noexcept;
  friend context detail::make_value_context(const context&, const void*,
                                            std::unique_ptr<detail::ctx_value_base>);
  friend std::size_t detail::context_child_count(const context&) noexcept;
  friend struct cancel_func;
  friend context with_stop_token(const context& parent, std::stop_token st);
  friend std::pair<context, cancel_func> with_cancel(const context& parent);
  friend std::pair<context, cancel_func> with_deadline(const context& parent,
                                                       std::chrono::steady_clock::time_point t);
  detail::ctx_node* n_ = nullptr;
};

// Cancels its context (err() == canceled) and all descendants. Copyable; idempotent; a
// default-constructed one does nothing.
struct cancel_func {
  cancel_func() noexcept = default;
  cancel_func(const cancel_func& o) noexcept : n_(o.n_) {
    if (n_) detail::ctx_ref(n_);
  }
  cancel_func(cancel_func&& o) noexcept : n_(std::exchange(o.n_, nullptr)) {}
  cancel_func& operator=(cancel_func o) noexcept {
    std::swap(n_, o.n_);
    return *this;
  }
  ~cancel_func() {
    if (n_) detail::ctx_unref(n_);
  }
  // Cancels (no-op if already done); returns once the context and its descendants are done.
  void operator()() const noexcept;

 private:
  friend cancel_func detail::adopt_cancel(detail::ctx_node*) noexcept;
  detail::ctx_node* n_ = nullptr;
};

// The root context: never done, no deadline, no values.
inline context background() noexcept {
  return {};
}
// A placeholder root where the right context is not known yet (same as background()).
inline context todo() noexcept {
  return {};
}

// A child that is done when cancel is called or when parent is done.
std::pair<context, cancel_func> with_cancel(const context& parent);
// A child that is also done (deadline_exceeded) at t; its deadline() is min(parent's, t). A t
// already past gives a child born done. Throws rt::runtime_error outside rt::run (timer).
std::pair<context, cancel_func> with_deadline(const context& parent,
                                              std::chrono::steady_clock::time_point t);
// with_deadline(parent, now + d) (saturated: a d too long never fires).
std::pair<context, cancel_func> with_timeout(const context& parent, std::chrono::nanoseconds d);
template <class Rep, class Period>
std::pair<context, cancel_func> with_timeout(const context& parent,
                                             std::chrono::duration<Rep, Period> d) {
  return with_timeout(parent, detail::saturating_ns(d));
}
// A child carrying v under k (shadowing any outer value under k); shares parent's cancellation.
template <class V, class U>
context with_value(const context& parent, const context_key<V>& k, U&& v) {
  static_assert(std::is_constructible_v<V, U&&>, "rt::with_value: V is not constructible from v");
  return detail::make_value_context(parent, &k,
                                    std::make_unique<detail::ctx_value<V>>(std::forward<U>(v)));
}
// A child that is done (canceled) when parent is, or when st is stop-requested.
context with_stop_token(const context& parent, std::stop_token st);

// The stop handle of after_func: returns true if this call stopped fn from starting (false if
// it has started or was already stopped). Copyable; all copies share one state.
namespace detail {
struct after_state;  // runtime/context.cpp
}
class stop_func {
 public:
  stop_func() noexcept = default;
  explicit stop_func(std::shared_ptr<detail::after_state> s) noexcept : s_(std::move(s)) {}
  // Stops fn from being run, if it has not started (Go's context.AfterFunc stop).
  bool operator()() const noexcept;

 private:
  std::shared_ptr<detail::after_state> s_;
};

namespace detail {
// Runs invoke(fn) in a new fiber once ctx is done, unless stopped first (see after_func).
stop_func context_after_func(const context& ctx, void (*invoke)(void*), std::shared_ptr<void> fn);
}  // namespace detail

// Runs fn in a new fiber once ctx is done (at once if it already is), unless the returned
// stop_func is called first (Go 1.21's context.AfterFunc). Holds ctx alive until then. Throws
// rt::runtime_error outside rt::run.
template <class F>
stop_func after_func(const context& ctx, F&& fn) {
  using Fn = std::decay_t<F>;
  auto holder = std::make_shared<Fn>(std::forward<F>(fn));
  return detail::context_after_func(
      ctx, [](void* p) { (*static_cast<Fn*>(p))(); }, std::move(holder));
}

}  // namespace rt

template <>
struct std::is_error_code_enum<rt::context_errc> : std::true_type {};
