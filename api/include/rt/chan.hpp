// rt/chan.hpp — typed channels between fibers (and plain threads), as Go's `chan T`.
//
//   rt::chan<std::string> ch = rt::make_chan<std::string>();  // unbuffered: a rendezvous
//   rt::go([ch]() mutable { ch.send("hello"); ch.close(); });
//   for (std::string& s : ch) std::puts(s.c_str());           // until closed and drained
//
// Guarantees: no value is lost or delivered twice, whatever the interleaving of senders,
// receivers, closers and selects; blocked senders and receivers are served in FIFO order; an
// unbuffered send hands the value straight to a parked receiver (and a receive takes it
// straight from a parked sender), with no copy through a buffer.
#pragma once

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <memory>
#include <mutex>
#include <new>
#include <optional>
#include <ostream>
#include <type_traits>
#include <utility>

#include "rt/detail/wait.hpp"
#include "rt/errors.hpp"

namespace rt {

namespace detail {

// Outcome of trying a channel operation without blocking, with the channel's lock held.
enum class try_result : std::uint8_t { done, would_block, closed };

// The element-type-independent part of a channel: its lock, queues and ring indices.
struct chan_core {
  spinlock lock;
  waiter_queue recvq;  // parked receivers; each waiter's slot is a std::optional<T>*
  waiter_queue sendq;  // parked senders; each waiter's slot is a T* to move from
  std::size_t cap = 0;
  std::size_t count = 0;  // buffered elements
  std::size_t head = 0;   // index of the oldest buffered element
  bool closed = false;

  // Closes the channel: throws channel_closed if it already was; wakes every waiter.
  void close();
  // Detaches waiters still queued (leftover fibers of a finished rt::run; see chan.cpp).
  ~chan_core();
};

// A channel of T: the ring buffer on top of chan_core. Every member below runs with `lock`
// held, and returns the waiter it completed (if any) for the caller to wake after unlocking.
//
// Exception safety: T's copy or move may throw. Every hand-off constructs the value in its
// destination first and commits (pops the waiter, claims its select, counts the buffered
// element) only after that succeeded, so a throw leaves the channel as it was — a parked
// receiver or sender stays parked, a select stays unclaimed — and reaches the party whose
// operation ran the copy. Values are handed over with std::move_if_noexcept: a T whose move may
// throw is copied, so its source is intact if the hand-off throws or must be called off.
template <class T>
struct chan_state final : chan_core {
  explicit chan_state(std::size_t capacity) {
    cap = capacity;
    // One spare place: a receiver that frees a full buffer's oldest element constructs the
    // parked sender's value in the spare place first, and commits only once that succeeded.
    if (cap) buf = std::allocator<T>{}.allocate(cap + 1);
  }
  ~chan_state() {
    for (; count > 0; --count, head = (head + 1) % (cap + 1)) buf[head].~T();
    if (buf) std::allocator<T>{}.deallocate(buf, cap + 1);
  }
  chan_state(const chan_state&) = delete;
  chan_state& operator=(const chan_state&) = delete;

  // Whether a hand-off copies (T's move may throw and T is copyable: std::move_if_noexcept).
  static constexpr bool hand_off_copies =
      !std::is_nothrow_move_constructible_v<T> && std::is_copy_constructible_v<T>;
  // Gives `src` back what a called-off hand-off moved out of it into `taken` (a copy left src
  // intact). Only a move-only T whose move throws can throw here, and then the program ends.
  static void give_back(T& src, T& taken) noexcept {
    if constexpr (!hand_off_copies) {
      std::destroy_at(&src);
      std::construct_at(&src, std::move(taken));
    }
  }
  // The ring's place after the newest buffered element (free: the ring has cap + 1 places).
  T* back_place() noexcept { return buf + (head + count) % (cap + 1); }

  // Completes the oldest waiter of q that is still claimable: `put(w)` does the hand-off (it may
  // throw: then w stays queued and nothing changed), then w is claimed and popped. A select that
  // another party won meanwhile is dropped, `undo(w)` first reverting put.
  template <class Put, class Undo>
  static waiter* hand_off(waiter_queue& q, Put&& put, Undo&& undo) {
    while (waiter* w = q.front()) {
      // acquire: as in claim(); a select once claimed stays claimed, so this is only a shortcut
      // that skips a hand-off to a case already lost.
      if (w->sel && w->sel->done.load(std::memory_order_acquire) != 0) {
        q.pop_front(w);
        continue;
      }
      put(w);
      if (claim(w)) {
        q.pop_front(w);
        return w;
      }
      undo(w);
      q.pop_front(w);
    }
    return nullptr;
  }

  // Sends v now if a receiver waits or the buffer has room.
  try_result try_send(T& v, waiter*& to_wake) {
    if (closed) return try_result::closed;
    auto slot = [](waiter* w) -> std::optional<T>& {
      return *static_cast<std::optional<T>*>(w->slot);
    };
    if (waiter* r = hand_off(
            recvq, [&](waiter* w) { slot(w).emplace(std::move_if_noexcept(v)); },
            [&](waiter* w) {
              give_back(v, *slot(w));
              slot(w).reset();
            })) {
      r->success = true;
      to_wake = r;
      return try_result::done;
    }
    if (count < cap) {
      ::new (static_cast<void*>(back_place())) T(std::move_if_noexcept(v));  // may throw
      ++count;  // counted only once constructed
      return try_result::done;
    }
    return try_result::would_block;
  }

  // Receives into `out` now if the buffer has an element or a sender waits; `closed` (out left
  // empty) once the channel is closed and drained.
  try_result try_recv(std::optional<T>& out, waiter*& to_wake) {
    auto value = [](waiter* w) -> T& { return *static_cast<T*>(w->slot); };
    if (count > 0) {
      T& oldest = buf[head];
      out.emplace(std::move_if_noexcept(oldest));  // may throw: nothing changed
      // A parked sender's value takes the freed place at the back of the ring (FIFO kept):
      // constructed in the spare place before the oldest is let go of.
      waiter* s;
      try {
        s = hand_off(
            sendq,
            [&](waiter* w) {
              ::new (static_cast<void*>(back_place())) T(std::move_if_noexcept(value(w)));
            },
            [&](waiter*) { std::destroy_at(back_place()); });
      } catch (...) {
        give_back(oldest, *out);
        out.reset();
        throw;
      }
      oldest.~T();
      head = (head + 1) % (cap + 1);
      if (s) {
        s->success = true;
        to_wake = s;
      } else {
        --count;
      }
      return try_result::done;
    }
    // A sender whose select was won elsewhere gives nothing: its value is never delivered, so
    // undo need not restore it.
    if (waiter* s = hand_off(
            sendq, [&](waiter* w) { out.emplace(std::move_if_noexcept(value(w))); },
            [&](waiter*) { out.reset(); })) {
      s->success = true;
      to_wake = s;
      return try_result::done;
    }
    return closed ? try_result::closed : try_result::would_block;
  }

  T* buf = nullptr;
};

// Parks the caller in `q` until a partner completes its operation or the channel closes; the
// channel's lock is held on entry and released. Returns waiter::success.
bool wait_on_channel(chan_core& c, waiter_queue& q, void* slot, wait_reason why);
// The same, called on a worker thread only (fast_ops_here() was true): one test fewer.
bool wait_on_channel_on_worker(chan_core& c, waiter_queue& q, void* slot, wait_reason why);
// Parks with wait_on_channel, or on a worker thread outside the General version with
// wait_on_channel_on_worker.
template <bool General>
[[gnu::always_inline]] inline bool wait_on_channel_from(chan_core& c, waiter_queue& q, void* slot,
                                                        wait_reason why) {
  if constexpr (General) {
    return wait_on_channel(c, q, slot, why);
  } else {
    return wait_on_channel_on_worker(c, q, slot, why);
  }
}
// wake(), or on a worker thread outside the General version wake_on_worker().
template <bool General>
[[gnu::always_inline]] inline void wake_from(waiter& w) noexcept {
  if constexpr (General) {
    wake(w);
  } else {
    wake_on_worker(w);
  }
}

// Runs `op` (the channel's try_send or try_recv) with c's lock taken, and returns with the lock
// still held, for the caller to release or to park with; a throw (T's copy or move) releases it.
template <class Op>
[[gnu::always_inline]] inline try_result try_locked(chan_core& c, Op&& op) {
  c.lock.lock();
  try {
    return op();
  } catch (...) {
    c.lock.unlock();
    throw;
  }
}

// chan::send and chan::recv, in two versions (see tls_fast_ops): the General one, for any thread,
// runs chaos points and a plain thread's scope; the other, for a worker thread while chaos
// scheduling is off, runs neither — there it would only test that they are off. Here in detail,
// not in chan, so that a fiber dump shows chan::recv() as the user's call (dump.cpp hides
// rt::detail frames). Always inlined, as chan's members were: a call here costs a pingpong
// round trip about 25 instructions.
template <bool General, class T>
[[gnu::always_inline]] inline void chan_send(chan_state<T>* s, T& v) {
  if (!s) block_forever(wait_reason::chan_send_nil);
  if constexpr (General) chaos_point();
  [[maybe_unused]] plain_thread_scope_if<General> scope;
  waiter* to_wake = nullptr;
  try_result r = try_locked(*s, [&] { return s->try_send(v, to_wake); });
  if (r == try_result::would_block) {
    if (wait_on_channel_from<General>(*s, s->sendq, &v, wait_reason::chan_send)) {
      if constexpr (General) chaos_point();
      return;
    }
    r = try_result::closed;
  } else {
    s->lock.unlock();
  }
  if (r == try_result::closed) throw channel_closed("send on closed channel");
  if (to_wake) wake_from<General>(*to_wake);
  if constexpr (General) chaos_point();
}

template <bool General, class T>
[[gnu::always_inline]] inline void chan_recv(chan_state<T>* s, std::optional<T>& out) {
  if (!s) block_forever(wait_reason::chan_receive_nil);
  if constexpr (General) chaos_point();
  [[maybe_unused]] plain_thread_scope_if<General> scope;
  waiter* to_wake = nullptr;
  const try_result r = try_locked(*s, [&] { return s->try_recv(out, to_wake); });
  if (r == try_result::would_block) {
    wait_on_channel_from<General>(*s, s->recvq, &out, wait_reason::chan_receive);
    if constexpr (General) chaos_point();
    return;
  }
  s->lock.unlock();
  if (to_wake) wake_from<General>(*to_wake);
  if constexpr (General) chaos_point();
}

// The general versions out of line: a plain thread's or a chaos run's, not on the fast path.
template <class T>
[[gnu::noinline]] void chan_send_general(chan_state<T>* s, T& v) {
  chan_send<true>(s, v);
}
template <class T>
[[gnu::noinline]] void chan_recv_general(chan_state<T>* s, std::optional<T>& out) {
  chan_recv<true>(s, out);
}

}  // namespace detail

// A channel handle. Copies refer to the same channel; the default-constructed handle is the nil
// channel, on which send and recv block forever and close throws. Safe to use from any number of
// fibers and plain threads at once.
template <class T>
class chan {
 public:
  using value_type = T;

  // The nil channel.
  chan() noexcept = default;

  // Sends v: hands it to a waiting receiver, or buffers it, or blocks until one of those can
  // happen. Throws rt::channel_closed("send on closed channel") if the channel is or becomes
  // closed (v is then not delivered).
  void send(T v) {
    if (detail::fast_ops_here()) [[likely]]
      return detail::chan_send<false>(state_.get(), v);
    detail::chan_send_general(state_.get(), v);
  }

  // Receives a value, blocking until one is available; std::nullopt once the channel is closed
  // and drained (Go's `v, ok := <-ch` with ok false).
  std::optional<T> recv() {
    std::optional<T> out;  // one result object for both versions: built in the caller's place
    if (detail::fast_ops_here()) [[likely]] {
      detail::chan_recv<false>(state_.get(), out);
    } else {
      detail::chan_recv_general(state_.get(), out);
      // Not a tail call: recv's frame stays, so a fiber dump shows chan::recv() as the user's
      // call (as send's does: its argument lives in that frame).
      asm volatile("");
    }
    return out;
  }

  // Sends v only if that can happen without blocking; false otherwise (v is left as it was).
  // Throws rt::channel_closed on a closed channel, as send() does.
  bool try_send(T& v) {
    if (!state_) return false;
    detail::plain_thread_scope scope;
    detail::waiter* to_wake = nullptr;
    detail::try_result r;
    {
      std::lock_guard lk(state_->lock);
      r = state_->try_send(v, to_wake);
    }
    if (r == detail::try_result::closed) throw channel_closed("send on closed channel");
    if (to_wake) detail::wake(*to_wake);
    return r == detail::try_result::done;
  }

  // Receives a value only if one is ready (or the channel is closed and drained: then
  // `closed` is set); std::nullopt otherwise.
  std::optional<T> try_recv(bool* closed = nullptr) {
    std::optional<T> out;
    if (!state_) {
      if (closed) *closed = false;  // the nil channel is never closed
      return out;
    }
    detail::plain_thread_scope scope;
    detail::waiter* to_wake = nullptr;
    detail::try_result r;
    {
      std::lock_guard lk(state_->lock);
      r = state_->try_recv(out, to_wake);
    }
    if (closed) *closed = r == detail::try_result::closed;
    if (to_wake) detail::wake(*to_wake);
    return out;
  }

  // Closes the channel and wakes every waiter: receivers drain what is buffered, then get
  // std::nullopt; parked senders throw channel_closed. Throws channel_closed("close of closed
  // channel") if already closed, rt::runtime_error("close of nil channel") on the nil channel.
  void close() {
    if (!state_) throw rt::runtime_error("close of nil channel");
    detail::chaos_point_nothrow();
    state_->close();
    detail::chaos_point_nothrow();
  }

  // Elements buffered now.
  std::size_t len() const {
    if (!state_) return 0;
    std::lock_guard lk(state_->lock);
    return state_->count;
  }
  // The capacity: 0 for unbuffered (and nil) channels.
  std::size_t cap() const noexcept { return state_ ? state_->cap : 0; }
  // False for the nil channel.
  explicit operator bool() const noexcept { return state_ != nullptr; }
  // True when both handles refer to the same channel (or both are nil).
  friend bool operator==(const chan& a, const chan& b) noexcept { return a.state_ == b.state_; }

  // Range-for support: receives until the channel is closed and drained.
  class iterator {
   public:
    using iterator_category = std::input_iterator_tag;
    using value_type = T;
    using difference_type = std::ptrdiff_t;
    using pointer = T*;
    using reference = T&;
    iterator() = default;
    explicit iterator(chan* c) : ch_(c) { advance(); }
    T& operator*() { return *value_; }
    T* operator->() { return &*value_; }
    iterator& operator++() {
      advance();
      return *this;
    }
    void operator++(int) { advance(); }
    friend bool operator==(const iterator& it, std::default_sentinel_t) noexcept {
      return !it.value_;
    }

   private:
    void advance() { value_ = ch_->recv(); }
    chan* ch_ = nullptr;
    std::optional<T> value_;
  };
  // Starts receiving: the first value is received here.
  iterator begin() { return iterator(this); }
  // The end: the channel closed and drained.
  std::default_sentinel_t end() const noexcept { return {}; }

  // The shared state, for select (not part of the public API).
  detail::chan_state<T>* state() const noexcept { return state_.get(); }
  // Its owner, and a handle made from one: rt::tick's ticker holds its channel only weakly, so
  // that it stops once nobody else holds it (not part of the public API).
  const std::shared_ptr<detail::chan_state<T>>& shared_state() const noexcept { return state_; }
  static chan from_shared_state(std::shared_ptr<detail::chan_state<T>> s) noexcept {
    chan c;
    c.state_ = std::move(s);
    return c;
  }

 private:
  template <class U>
  friend chan<U> make_chan(std::size_t);
  std::shared_ptr<detail::chan_state<T>> state_;
};

// Prints a channel as Go's fmt.Println does: its address (0x0 for nil).
template <class T>
std::ostream& operator<<(std::ostream& os, const chan<T>& c) {
  const void* p = c.state();
  if (!p) return os << "0x0";
  return os << p;
}

namespace detail {
// Throw rt::runtime_error("rt::make_chan: size out of range (capacity N)"), Go's "makechan: size
// out of range". Out of line: the check is on every make_chan, the throw is cold.
[[noreturn]] void make_chan_size_error(std::size_t capacity);
[[noreturn]] void make_chan_size_error(long long capacity);
}  // namespace detail

// Makes a channel with room for `capacity` buffered elements; 0 (the default) makes an
// unbuffered channel, where each send waits for its receiver. A capacity whose buffer cannot
// exist — a negative one converted to std::size_t included — throws rt::runtime_error
// ("rt::make_chan: size out of range (capacity N)").
template <class T>
chan<T> make_chan(std::size_t capacity = 0) {
  // The buffer has capacity + 1 places (see chan_state). As Go's makechan, a buffer beyond
  // what an allocation can be — 2^48 bytes on 64-bit systems (Go's maxAlloc), PTRDIFF_MAX
  // elsewhere — is out of range; that also rejects a negative int converted to std::size_t.
  constexpr std::uint64_t go_max_alloc = std::uint64_t{1} << 48;
  constexpr auto ptrdiff_max = static_cast<std::uint64_t>(PTRDIFF_MAX);
  constexpr auto max_bytes =
      static_cast<std::size_t>(go_max_alloc < ptrdiff_max ? go_max_alloc : ptrdiff_max);
  if (capacity >= max_bytes / sizeof(T)) {
    detail::make_chan_size_error(capacity);
  }
  chan<T> c;
  c.state_ = std::make_shared<detail::chan_state<T>>(capacity);
  return c;
}

// The same for a signed capacity (make_chan<T>(n) with an int n, without sign-conversion
// warnings): a negative capacity throws rt::runtime_error, as Go's make(chan T, -1) panics.
template <class T, std::signed_integral I>
chan<T> make_chan(I capacity) {
  if (capacity < 0) detail::make_chan_size_error(static_cast<long long>(capacity));
  return make_chan<T>(static_cast<std::size_t>(capacity));
}

}  // namespace rt
