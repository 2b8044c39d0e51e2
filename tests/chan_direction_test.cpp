// chan_direction_test — rt::send_chan and rt::recv_chan (Go's `chan<- T` and `<-chan T`), and
// rt::after's receive-only channel (issue 9, item 9: closing after's channel used to abort the
// process, the timer's send throwing inside a noexcept path):
//   - what each direction offers, and what it does not, checked at compile time;
//   - chan<T> converts to either direction, and both ends refer to the same channel;
//   - both are usable in select cases of their own direction, and recv_chan in range-for;
//   - rt::after's channel is a recv_chan: it cannot be closed, and works in select and range-for.
#include <rt/csp.hpp>

#include <gtest/gtest.h>

#include <chrono>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

#include "test_support.hpp"

namespace {

using rt_test::with_workers;

// ---- compile-time: each direction's operations, and nothing else --------------------------------

// (Concepts, not bare requires-expressions: those are only checked softly in a template.)
template <class C>
concept can_close = requires(C c) {
  c.close();
};
template <class C>
concept can_send = requires(C c, int v) {
  c.send(v);
};
template <class C>
concept can_try_send = requires(C c, int v) {
  c.try_send(v);
};
template <class C>
concept can_recv = requires(C c) {
  c.recv();
};
template <class C>
concept can_try_recv = requires(C c) {
  c.try_recv();
};
template <class C>
concept can_range_for = requires(C c) {
  c.begin();
};
template <class C>
concept recv_case_compiles = requires(C c) {
  rt::recv(c);
};
template <class C>
concept send_case_compiles = requires(C c) {
  rt::send(c, 1);
};

// rt::after's channel is receive-only: closing it (or sending on it) does not compile.
static_assert(std::is_same_v<decltype(rt::after(1ms)), rt::recv_chan<steady::time_point>>);
static_assert(!can_close<decltype(rt::after(1ms))>);
static_assert(!can_close<rt::recv_chan<int>>);
static_assert(!can_send<rt::recv_chan<int>>);
static_assert(!can_try_send<rt::recv_chan<int>>);
static_assert(can_recv<rt::recv_chan<int>> && can_try_recv<rt::recv_chan<int>> &&
              can_range_for<rt::recv_chan<int>>);
static_assert(!can_recv<rt::send_chan<int>>);
static_assert(!can_try_recv<rt::send_chan<int>>);
static_assert(!can_range_for<rt::send_chan<int>>);
static_assert(can_send<rt::send_chan<int>> && can_try_send<rt::send_chan<int>> &&
              can_close<rt::send_chan<int>>);
// The full channel has all of them (the concepts themselves can succeed).
static_assert(can_close<rt::chan<int>> && can_send<rt::chan<int>> && can_recv<rt::chan<int>>);
// select cases of the wrong direction do not compile.
static_assert(recv_case_compiles<rt::recv_chan<int>>);
static_assert(!send_case_compiles<rt::recv_chan<int>>);
static_assert(send_case_compiles<rt::send_chan<int>>);
static_assert(!recv_case_compiles<rt::send_chan<int>>);
// chan<T> converts implicitly to either direction; neither converts back, nor to the other.
static_assert(std::is_convertible_v<rt::chan<int>, rt::recv_chan<int>>);
static_assert(std::is_convertible_v<rt::chan<int>, rt::send_chan<int>>);
static_assert(!std::is_convertible_v<rt::recv_chan<int>, rt::chan<int>>);
static_assert(!std::is_convertible_v<rt::send_chan<int>, rt::chan<int>>);
static_assert(!std::is_convertible_v<rt::recv_chan<int>, rt::send_chan<int>>);
static_assert(!std::is_convertible_v<rt::send_chan<int>, rt::recv_chan<int>>);

void produce(rt::send_chan<int> out, int n) {
  for (int i = 0; i < n; ++i) out.send(i);
  out.close();
}

int sum_all(rt::recv_chan<int> in) {
  int sum = 0;
  for (int v : in) sum += v;
  return sum;
}

}  // namespace

// ---- behaviour -------------------------------------------------------------------------------

TEST(ChanDirection, BothEndsReferToTheSameChannel) {
  rt::run(
      [] {
        auto ch = rt::make_chan<int>(2);
        rt::send_chan<int> out = ch;
        rt::recv_chan<int> in = ch;
        EXPECT_EQ(out.cap(), 2u);
        EXPECT_EQ(in.cap(), 2u);
        out.send(1);
        int two = 2;
        EXPECT_TRUE(out.try_send(two));
        int three = 3;
        EXPECT_FALSE(out.try_send(three));  // full
        EXPECT_EQ(in.len(), 2u);
        EXPECT_EQ(ch.len(), 2u);
        EXPECT_EQ(in.recv(), 1);
        EXPECT_EQ(in.try_recv(), 2);
        EXPECT_EQ(in.try_recv(), std::nullopt);
        out.close();
        bool closed = false;
        EXPECT_EQ(in.try_recv(&closed), std::nullopt);
        EXPECT_TRUE(closed);
        EXPECT_EQ(in.recv(), std::nullopt);
        EXPECT_THROW(out.close(), rt::channel_closed);
        EXPECT_THROW(out.send(4), rt::channel_closed);
        // The nil handles.
        rt::recv_chan<int> nil_in;
        rt::send_chan<int> nil_out;
        EXPECT_FALSE(nil_in);
        EXPECT_FALSE(nil_out);
        EXPECT_TRUE(in);
        EXPECT_THROW(nil_out.close(), rt::runtime_error);
        EXPECT_EQ(nil_in.try_recv(), std::nullopt);
        EXPECT_TRUE(in == rt::recv_chan<int>(ch));
        EXPECT_FALSE(in == nil_in);
      },
      with_workers(1));
}

// A producer given only the sending end and a consumer given only the receiving end (range-for),
// across workers.
TEST(ChanDirection, ProducerAndConsumerOverDirectionalEnds) {
  for (unsigned workers : {1u, 2u, 4u}) {
    rt::run(
        [] {
          auto ch = rt::make_chan<int>();
          rt::go(produce, ch, 1000);
          EXPECT_EQ(sum_all(ch), 999 * 1000 / 2);
        },
        with_workers(workers));
  }
}

TEST(ChanDirection, SelectCasesOfEachDirection) {
  rt::run(
      [] {
        auto a = rt::make_chan<int>(1);
        auto b = rt::make_chan<std::string>(1);
        rt::recv_chan<int> in = a;
        rt::send_chan<std::string> out = b;
        // Only the send case can proceed.
        std::size_t k = rt::select(rt::recv(in, [](std::optional<int>) { ADD_FAILURE(); }),
                                   rt::send(out, "hi"));
        EXPECT_EQ(k, 1u);
        EXPECT_EQ(b.recv(), "hi");
        a.send(5);
        int got = 0;
        k = rt::select(rt::recv(in, [&](std::optional<int> v) { got = *v; }),
                       rt::send(out, std::string("x"), [] {}));
        // Both ready: either may run; whichever did, its effect is there.
        if (k == 0) {
          EXPECT_EQ(got, 5);
        } else {
          EXPECT_EQ(b.recv(), "x");
        }
        // A parked select woken through the directional ends' channel.
        auto c = rt::make_chan<int>();
        rt::go([c]() mutable { c.send(9); });
        rt::recv_chan<int> cin = c;
        EXPECT_EQ(rt::select(rt::recv(cin, [&](std::optional<int> v) { got = *v; })), 0u);
        EXPECT_EQ(got, 9);
      },
      with_workers(2));
}

// rt::after's channel: one value in select, in range-for (it is never closed, so the loop ends
// by break), and try_recv.
TEST(ChanDirection, AfterChannelInSelectAndRangeFor) {
  rt::run(
      [] {
        auto never = rt::make_chan<int>();
        const auto t0 = steady::now();
        std::optional<steady::time_point> fired;
        EXPECT_EQ(
            rt::select(rt::recv(never), rt::recv(rt::after(2ms), [&](auto v) { fired = *v; })), 1u);
        ASSERT_TRUE(fired);
        EXPECT_GE(*fired - t0, 2ms);
        int n = 0;
        for (steady::time_point t : rt::after(1ms)) {
          EXPECT_GE(t - t0, 1ms);
          ++n;
          break;
        }
        EXPECT_EQ(n, 1);
        rt::recv_chan<steady::time_point> tick = rt::after(1ms);
        EXPECT_EQ(tick.cap(), 1u);
        EXPECT_TRUE(tick.recv().has_value());
        EXPECT_EQ(tick.try_recv(), std::nullopt);
      },
      with_workers(2));
}
