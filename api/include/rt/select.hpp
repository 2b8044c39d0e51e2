// rt/select.hpp — waiting on several channel operations at once (Go's `select`).
//
//   int v; bool ok;
//   switch (rt::select({rt::recv(in, &v, &ok), rt::send(out, x), rt::recv(ctx.done())})) {
//     case 0: if (!ok) return; use(v); break;   // v, ok := <-in
//     case 1: ++sent; break;                     // out <- x
//     case 2: return;                            // <-ctx.Done()
//   }
//
// The braced form above is THE form to use: the elements of a braced list are evaluated left to
// right ([dcl.init.list]), so channel and value expressions with side effects run in the order
// written, as in Go. Cases may also carry callbacks — rt::recv(ch, [](std::optional<T>) {...}),
// rt::send(ch, v, [] {...}) — and rt::otherwise() is Go's `default`. A select over a list built
// at run time is rt::select_list (below). The variadic rt::select(a, b, c) stays, but C++ leaves
// the evaluation order of function arguments unspecified: prefer the braced form.
//
// Guarantees: exactly one case runs; when several are ready, one is chosen uniformly at random;
// without `otherwise` the caller parks — enqueued on every channel at once, no polling — until
// the first partner claims it; cases on nil channels never fire; a send case on a closed channel
// throws rt::channel_closed, as in Go; no form allocates for up to 8 cases.
#pragma once

#include <array>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <memory>
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

// The callback of an out-parameter receive case: Go's `v = <-ch` (ok null) and `v, ok = <-ch`.
template <class T>
struct recv_into {
  T* v;
  bool* ok;
  void operator()(std::optional<T>&& r) const {
    if (r) {
      *v = std::move(*r);
      if (ok) *ok = true;
    } else if (ok) {
      *ok = false;
      if constexpr (std::is_default_constructible_v<T>) *v = T{};
    }
  }
};

// What rt::recv, rt::send and rt::otherwise return: erase() gives the type-erased case (its slot
// points into the object), run() its callback.
template <class C>
concept case_object = !std::is_const_v<C> && requires(C & c) {
  { c.erase() } -> std::same_as<select_case>;
  c.run();
};

// One element of the braced form: a case object of the full expression (a temporary that lives
// until the select returns), erased.
struct case_ref {
  template <class C>
  requires case_object<std::remove_reference_t<C>> case_ref(C&& c)  // NOLINT: implicit on purpose
      : erased(c.erase()), obj(std::addressof(c)), run(&run_case<std::remove_reference_t<C>>) {}
  select_case erased;
  void* obj;
  void (*run)(void*);

  template <class C>
  static void run_case(void* c) {
    static_cast<C*>(c)->run();
  }
};

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
requires std::invocable < std::decay_t<F>
&, std::optional<T>&& > recv_case<T, std::decay_t<F>> recv(chan<T> ch, F&& fn = {}) {
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
requires std::invocable < std::decay_t<F>
&, std::optional<T>&& > recv_case<T, std::decay_t<F>> recv(recv_chan<T> ch, F&& fn = {}) {
  return {ch.underlying(), std::forward<F>(fn), std::nullopt};
}

// A send case on the sending end of a channel.
template <class T, class V, class F = detail::no_callback>
requires std::is_constructible_v<T, V&&> send_case<T, std::decay_t<F>> send(send_chan<T> ch,
                                                                            V&& value,
                                                                            F&& fn = {}) {
  return {ch.underlying(), T(std::forward<V>(value)), std::forward<F>(fn)};
}

// A receive case into out-parameters, Go's `v = <-ch` (ok null) and `v, ok = <-ch`: on a value,
// *v is assigned it and *ok (if given) set true; when ch is closed, *ok is set false and *v
// T{} (left as it was if T is not default constructible, or if ok is null). v must not be null.
template <class T>
recv_case<T, detail::recv_into<T>> recv(chan<T> ch, std::type_identity_t<T>* v,
                                        bool* ok = nullptr) {
  return {std::move(ch), detail::recv_into<T>{v, ok}, std::nullopt};
}
// The same on the receiving end of a channel.
template <class T>
recv_case<T, detail::recv_into<T>> recv(recv_chan<T> ch, std::type_identity_t<T>* v,
                                        bool* ok = nullptr) {
  return {ch.underlying(), detail::recv_into<T>{v, ok}, std::nullopt};
}

// Makes the default case.
template <class F = detail::no_callback>
otherwise_case<std::decay_t<F>> otherwise(F&& fn = {}) {
  return {std::forward<F>(fn)};
}

class select_list;

// The braced form: runs exactly one of the cases — a ready one chosen uniformly at random, else
// `otherwise` if given, else the first to become ready — then its callback, and returns its index
// in the list. The cases are evaluated left to right; `rt::select({})` parks forever (Go's
// `select {}`).
std::size_t select(std::initializer_list<detail::case_ref> cases);

// As the braced form over the list's cases, in the order added; the list keeps its cases (see
// select_list).
std::size_t select(select_list& cases);

// The variadic form (API.md): as the braced form, but the order in which the arguments — channel
// and value expressions included — are evaluated is unspecified. Prefer the braced form.
template <class... Cases>
requires(!std::is_same_v<std::remove_cvref_t<Cases>, select_list> && ...) std::size_t
    select(Cases&&... cases) {
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

// A select over cases chosen at run time (Go's reflect.Select), with the same fairness and
// parking as rt::select:
//
//   rt::select_list sel;  // inline room for 8 cases: no allocation up to there
//   for (auto& in : inputs) sel.add(rt::recv(in, &v, &ok));
//   sel.add(rt::recv(ctx.done()));
//   std::size_t i = rt::select(sel);
//
// The list owns copies of its cases (add() moves the case object in). It can be selected on
// again and again: receive cases receive anew each time (the fan-in loop). A send case's value
// is moved out when it fires, so selecting again after a send case fired throws
// rt::runtime_error; clear() and add the cases again. clear() keeps the memory, so a list
// rebuilt every round allocates only while it grows past its largest size so far. Not copyable
// or movable (its cases point into its own storage); one select at a time per list, and a case's
// callback must not clear() or destroy the list it belongs to (it runs inside it).
class select_list {
 public:
  // An empty list.
  select_list() noexcept;
  ~select_list();
  select_list(const select_list&) = delete;
  select_list& operator=(const select_list&) = delete;

  // Appends a case made by rt::recv, rt::send or rt::otherwise; returns its index.
  template <class C>
  requires detail::case_object<std::remove_cvref_t<C>> std::size_t add(C&& c) {
    using case_t = std::remove_cvref_t<C>;
    if (size_ == capacity_) grow();
    void* const mark = bump_;
    void* const mark_end = bump_end_;
    void* const mark_chunk = chunk_;
    void* place = allocate(sizeof(case_t), alignof(case_t));
    case_t* obj;
    try {
      obj = ::new (place) case_t(std::forward<C>(c));
    } catch (...) {
      bump_ = static_cast<std::byte*>(mark);  // give the place back
      bump_end_ = static_cast<std::byte*>(mark_end);
      chunk_ = static_cast<chunk*>(mark_chunk);
      throw;
    }
    cases_[size_] = obj->erase();
    ops_[size_] = {obj, &run_case<case_t>, &destroy_case<case_t>};
    return size_++;
  }
  // The number of cases.
  std::size_t size() const noexcept { return size_; }
  // True when there are no cases.
  bool empty() const noexcept { return size_ == 0; }
  // Removes every case, keeping the memory for the next ones.
  void clear() noexcept;

 private:
  friend std::size_t select(select_list& cases);
  static constexpr std::size_t kInline = 8;         // cases held without allocation
  static constexpr std::size_t kInlineBytes = 512;  // room for 8 cases of 64 bytes
  struct ops {
    void* obj;
    void (*run)(void*);
    void (*destroy)(void*) noexcept;
  };
  struct chunk;  // a heap block for case objects (see chan.cpp)

  // Runs the fired case's callback; a receive case's result is emptied after it, so that the
  // next select starts from nothing (a closed channel leaves the result as it was).
  template <class C>
  static void run_case(void* p) {
    C& c = *static_cast<C*>(p);
    if constexpr (requires { c.result.reset(); }) {
      struct rearm {
        C& c;
        ~rearm() { c.result.reset(); }
      } guard{c};
      c.run();
    } else {
      c.run();
    }
  }
  template <class C>
  static void destroy_case(void* p) noexcept {
    static_cast<C*>(p)->~C();
  }
  void grow();                                          // doubles the per-case arrays
  void* allocate(std::size_t size, std::size_t align);  // room for one case object

  std::size_t size_ = 0;
  std::size_t capacity_ = kInline;
  bool sent_ = false;  // a send case fired: its value is gone
  detail::select_case* cases_;
  ops* ops_;
  detail::waiter* waiters_;
  std::uint32_t* order_;
  detail::chan_core** locks_;
  std::byte* bump_;  // the free part of the current block of case objects
  std::byte* bump_end_;
  chunk* chunk_ = nullptr;   // the current heap block (null: inline_bytes_)
  chunk* chunks_ = nullptr;  // every heap block, kept until destruction
  std::unique_ptr<detail::select_case[]> heap_cases_;
  std::unique_ptr<ops[]> heap_ops_;
  std::unique_ptr<detail::waiter[]> heap_waiters_;
  std::unique_ptr<std::uint32_t[]> heap_order_;
  std::unique_ptr<detail::chan_core*[]> heap_locks_;
  detail::select_case inline_cases_[kInline];
  ops inline_ops_[kInline];
  detail::waiter inline_waiters_[kInline];
  std::uint32_t inline_order_[kInline];
  detail::chan_core* inline_locks_[kInline];
  alignas(std::max_align_t) std::byte inline_bytes_[kInlineBytes];
};

}  // namespace rt
