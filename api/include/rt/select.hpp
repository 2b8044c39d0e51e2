// rt/select.hpp — waiting on several channel operations at once (Go's `select`).
//
//   rt::select(
//       rt::recv(results, [](std::optional<int> v) { if (v) use(*v); }),
//       rt::send(requests, next_request, [] { ++sent; }),
//       rt::recv(rt::after(100ms), [](auto) { std::puts("timeout"); }),
//       rt::otherwise([] { /* nothing was ready */ }));
//
// Guarantees: exactly one case runs; when several are ready, one is chosen uniformly at random;
// without `otherwise` the caller parks — enqueued on every channel at once, no polling — until
// the first partner claims it; cases on nil channels never fire; a send case on a closed channel
// throws rt::channel_closed, as in Go.
#pragma once

#include <array>
#include <cstddef>
#include <optional>
#include <tuple>
#include <type_traits>
#include <utility>

#include "rt/chan.hpp"
#include "rt/chan_direction.hpp"

namespace rt {

namespace detail {

// A callback that does nothing: the default for cases given without one.
struct no_callback {
  template <class... A>
  void operator()(A&&...) const noexcept {}
};

// One case of a select, with its element type erased.
struct select_case {
  enum kind_t : std::uint8_t { recv, send, otherwise } kind;
  chan_core* ch;  // nullptr: a nil channel (never fires), or the otherwise case
  void* slot;     // recv: std::optional<T>* for the result; send: T* to move from
  try_result (*try_now)(chan_core* ch, void* slot, waiter*& to_wake);
};

// Space for run_select, one element per case, on the selecting party's stack (no allocation).
struct select_scratch {
  waiter* waiters;       // the parking space: one waiter per case
  std::uint32_t* order;  // the random poll order
  chan_core** locks;     // the channels in lock order
};

// Runs the select over `cases` and returns the index of the case that completed. The callbacks
// are run by the caller.
std::size_t run_select(select_case* cases, select_scratch scratch, std::size_t n);

template <class T>
try_result try_recv_erased(chan_core* ch, void* slot, waiter*& to_wake) {
  return static_cast<chan_state<T>*>(ch)->try_recv(*static_cast<std::optional<T>*>(slot), to_wake);
}
template <class T>
try_result try_send_erased(chan_core* ch, void* slot, waiter*& to_wake) {
  return static_cast<chan_state<T>*>(ch)->try_send(*static_cast<T*>(slot), to_wake);
}

}  // namespace detail

// A receive case: on success fn(std::optional<T>) gets the value, or std::nullopt if the
// channel is closed.
template <class T, class F>
struct recv_case {
  chan<T> ch;
  F fn;
  std::optional<T> result;
  detail::select_case erase() {
    return {detail::select_case::recv, ch.state(), &result, &detail::try_recv_erased<T>};
  }
  void run() { fn(std::move(result)); }
};

// A send case: fn() runs after value was sent.
template <class T, class F>
struct send_case {
  chan<T> ch;
  T value;
  F fn;
  detail::select_case erase() {
    return {detail::select_case::send, ch.state(), &value, &detail::try_send_erased<T>};
  }
  void run() { fn(); }
};

// The default case: runs at once when no other case is ready.
template <class F>
struct otherwise_case {
  F fn;
  detail::select_case erase() {
    return {detail::select_case::otherwise, nullptr, nullptr, nullptr};
  }
  void run() { fn(); }
};

// Makes a receive case on ch, with an optional callback taking std::optional<T>.
template <class T, class F = detail::no_callback>
recv_case<T, std::decay_t<F>> recv(chan<T> ch, F&& fn = {}) {
  return {std::move(ch), std::forward<F>(fn), std::nullopt};
}

// Makes a send case of value on ch, with an optional callback run after the send.
template <class T, class V, class F = detail::no_callback>
requires std::is_constructible_v<T, V&&> send_case<T, std::decay_t<F>> send(chan<T> ch, V&& value,
                                                                            F&& fn = {}) {
  return {std::move(ch), T(std::forward<V>(value)), std::forward<F>(fn)};
}

// A receive case on the receiving end of a channel (rt::after's channel, a recv_chan parameter).
template <class T, class F = detail::no_callback>
recv_case<T, std::decay_t<F>> recv(recv_chan<T> ch, F&& fn = {}) {
  return {ch.underlying(), std::forward<F>(fn), std::nullopt};
}

// A send case on the sending end of a channel.
template <class T, class V, class F = detail::no_callback>
requires std::is_constructible_v<T, V&&> send_case<T, std::decay_t<F>> send(send_chan<T> ch,
                                                                            V&& value,
                                                                            F&& fn = {}) {
  return {ch.underlying(), T(std::forward<V>(value)), std::forward<F>(fn)};
}

// Makes the default case.
template <class F = detail::no_callback>
otherwise_case<std::decay_t<F>> otherwise(F&& fn = {}) {
  return {std::forward<F>(fn)};
}

// Runs exactly one of the cases — a ready one chosen uniformly at random, else `otherwise` if
// given, else the first to become ready — then its callback, and returns its index among the
// arguments.
template <class... Cases>
std::size_t select(Cases&&... cases) {
  constexpr std::size_t n = sizeof...(Cases);
  static_assert(((std::is_same_v<decltype(std::declval<std::decay_t<Cases>&>().erase()),
                                 detail::select_case>)&&...),
                "rt::select: every argument must be rt::recv(...), rt::send(...) or "
                "rt::otherwise(...)");
  std::array<detail::select_case, n> erased{cases.erase()...};
  std::array<detail::waiter, n> waiters{};
  std::array<std::uint32_t, n> order{};
  std::array<detail::chan_core*, n> locks{};
  const std::size_t fired =
      detail::run_select(erased.data(), {waiters.data(), order.data(), locks.data()}, n);
  detail::chaos_point();
  std::size_t i = 0;
  ((i++ == fired ? (cases.run(), 0) : 0), ...);
  return fired;
}

}  // namespace rt
