// rt/chan_direction.hpp — send-only and receive-only channel handles (Go's `chan<- T` and
// `<-chan T`).
//
//   void producer(rt::send_chan<int> out) { out.send(1); out.close(); }
//   void consumer(rt::recv_chan<int> in) { for (int v : in) use(v); }
//   auto ch = rt::make_chan<int>();
//   rt::go(producer, ch);  // chan<T> converts implicitly to either direction
//   consumer(ch);
//
// A directional handle refers to the same channel as the chan<T> it was made from, and offers
// only its direction's operations: a recv_chan cannot send or close (so rt::after's channel
// cannot be closed under its timer), a send_chan cannot receive. Using the wrong direction —
// including in a select case — does not compile. There is no conversion back to chan<T>.
#pragma once

#include <cstddef>
#include <optional>
#include <ostream>
#include <utility>

#include "rt/chan.hpp"

namespace rt {

// The receiving end of a channel: recv, try_recv, range-for, len, cap.
template <class T>
class recv_chan {
 public:
  using value_type = T;

  // The nil channel: recv blocks forever.
  recv_chan() noexcept = default;
  // The receiving end of ch (the same channel). Implicit, as Go assigns chan T to <-chan T.
  recv_chan(chan<T> ch) noexcept : ch_(std::move(ch)) {}  // NOLINT(google-explicit-constructor)

  // As chan<T>::recv: a value, or std::nullopt once the channel is closed and drained.
  std::optional<T> recv() { return ch_.recv(); }
  // As chan<T>::try_recv.
  std::optional<T> try_recv(bool* closed = nullptr) { return ch_.try_recv(closed); }
  std::size_t len() const { return ch_.len(); }
  std::size_t cap() const noexcept { return ch_.cap(); }
  explicit operator bool() const noexcept { return static_cast<bool>(ch_); }
  friend bool operator==(const recv_chan& a, const recv_chan& b) noexcept { return a.ch_ == b.ch_; }

  // Range-for: receives until the channel is closed and drained.
  typename chan<T>::iterator begin() { return ch_.begin(); }
  std::default_sentinel_t end() const noexcept { return {}; }

  // The channel, for select (not part of the public API).
  const chan<T>& underlying() const noexcept { return ch_; }

 private:
  chan<T> ch_;
};

// The sending end of a channel: send, try_send, close, len, cap.
template <class T>
class send_chan {
 public:
  using value_type = T;

  // The nil channel: send blocks forever, close throws.
  send_chan() noexcept = default;
  // The sending end of ch (the same channel). Implicit, as Go assigns chan T to chan<- T.
  send_chan(chan<T> ch) noexcept : ch_(std::move(ch)) {}  // NOLINT(google-explicit-constructor)

  // As chan<T>::send: throws rt::channel_closed if the channel is or becomes closed.
  void send(T v) { ch_.send(std::move(v)); }
  // As chan<T>::try_send.
  bool try_send(T& v) { return ch_.try_send(v); }
  // As chan<T>::close.
  void close() { ch_.close(); }
  std::size_t len() const { return ch_.len(); }
  std::size_t cap() const noexcept { return ch_.cap(); }
  explicit operator bool() const noexcept { return static_cast<bool>(ch_); }
  friend bool operator==(const send_chan& a, const send_chan& b) noexcept { return a.ch_ == b.ch_; }

  // The channel, for select (not part of the public API).
  const chan<T>& underlying() const noexcept { return ch_; }

 private:
  chan<T> ch_;
};

// Prints a directional handle as its channel prints (Go's fmt.Println: the address).
template <class T>
std::ostream& operator<<(std::ostream& os, const recv_chan<T>& c) {
  return os << c.underlying();
}
template <class T>
std::ostream& operator<<(std::ostream& os, const send_chan<T>& c) {
  return os << c.underlying();
}

}  // namespace rt
