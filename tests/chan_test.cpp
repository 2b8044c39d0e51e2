// chan_test — the rules of rt::chan<T>, one at a time, as the Go specification states them for
// `chan T` (and API.md for the C++ spelling):
//   - an unbuffered send completes only once a receiver has taken the value (a rendezvous);
//   - a buffered channel is a FIFO ring of `cap` elements: len/cap report it, sends block when it
//     is full and receives block when it is empty;
//   - blocked senders and blocked receivers are each served in FIFO order;
//   - close: receivers drain what is buffered, then get nullopt at once; send on a closed
//     channel throws channel_closed("send on closed channel"); closing twice throws
//     channel_closed("close of closed channel"); closing the nil channel throws
//     rt::runtime_error("close of nil channel"); close wakes every blocked receiver (nullopt) and
//     every blocked sender (which throws);
//   - the nil channel: false, len 0, cap 0, blocks forever;
//   - handles: copies share the channel, == compares identity, << prints the address;
//   - range-for runs until the channel is closed and drained;
//   - move-only element types; try_send/try_recv; plain std::threads using channels with fibers.
//
// Ordering is established with channels and wait_groups, never with sleeps. Where a test must
// know that a fiber is *parked* (not merely about to park), it runs on one worker: fibers are not
// preempted, so a fiber that hands a value to the main fiber keeps running until it blocks, and
// the main fiber runs again only after that. The comments at each such place say so.
#include <rt/csp.hpp>

#include "test_support.hpp"

#include <gtest/gtest.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <memory>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace {

using rt_test::kSanitized;
using rt_test::with_workers;

// A value type that counts its live instances, to check that the ring neither leaks nor
// double-destroys elements.
struct tracked {
  static inline std::atomic<int> live{0};
  int v;
  explicit tracked(int x) : v(x) { ++live; }
  tracked(const tracked& o) : v(o.v) { ++live; }
  tracked(tracked&& o) noexcept : v(o.v) { ++live; }
  tracked& operator=(const tracked&) = default;
  tracked& operator=(tracked&&) = default;
  ~tracked() { --live; }
};

}  // namespace

// ---- unbuffered: a rendezvous ---------------------------------------------------------------

// The Go memory model: "a receive from an unbuffered channel is synchronized before the
// completion of the corresponding send". The receiver writes `before_recv` and then receives;
// the sender, once its send has returned, must see the write. A channel that buffered the value
// (completing the send before any receiver arrived) fails this on one worker, where the sender
// runs first; on several workers ThreadSanitizer would also report the unsynchronised access.
TEST(ChanUnbuffered, SendCompletesOnlyAfterTheReceiverTookTheValue) {
  for (unsigned n : {1u, 4u}) {
    int before_recv = 0;  // deliberately not atomic: the channel must order it
    int got = -1;
    rt::run(
        [&] {
          auto ch = rt::make_chan<int>();
          auto done = rt::make_chan<int>(1);
          rt::go([&, ch, done]() mutable {
            before_recv = 1;
            got = *ch.recv();
            done.send(0);
          });
          ch.send(42);
          EXPECT_EQ(before_recv, 1) << "the send completed before the receiver received";
          done.recv();
        },
        with_workers(n));
    EXPECT_EQ(got, 42);
  }
}

// A sender with no receiver stays blocked. On one worker: the sender fiber announces itself on
// `started` and then (not preempted) runs on into ch.send and parks before main runs again. Main
// then sees that the send has not completed; receiving releases it.
TEST(ChanUnbuffered, SendBlocksWithoutReceiver) {
  rt::run(
      [] {
        auto ch = rt::make_chan<int>();
        auto started = rt::make_chan<int>();
        auto finished = rt::make_chan<int>(1);
        bool sent = false;
        rt::go([&, ch, started, finished]() mutable {
          started.send(0);
          ch.send(7);
          sent = true;
          finished.send(0);
        });
        started.recv();
        EXPECT_FALSE(sent);
        EXPECT_EQ(ch.len(), 0u);
        EXPECT_EQ(*ch.recv(), 7);
        finished.recv();
        EXPECT_TRUE(sent);
      },
      with_workers(1));
}

// A schedule-independent invariant of rendezvous and of full buffers, checked on several
// workers: at any moment, completed sends <= completed receives + cap. The receiver checks it
// before each receive (it has completed k receives, and started no other).
TEST(ChanBlocking, CompletedSendsNeverExceedReceivesPlusCapacity) {
  for (std::size_t cap : {0u, 1u, 3u}) {
    for (unsigned n : {1u, 2u, 4u}) {
      constexpr int count = 2000;
      std::atomic<int> sends_done{0};
      std::atomic<int> violations{0};
      rt::run(
          [&] {
            auto ch = rt::make_chan<int>(cap);
            rt::wait_group wg;
            wg.add(1);
            rt::go([&, ch]() mutable {
              for (int i = 0; i < count; ++i) {
                ch.send(i);
                sends_done.fetch_add(1);
              }
              wg.done();
            });
            for (int k = 0; k < count; ++k) {
              if (sends_done.load() > k + static_cast<int>(cap)) violations.fetch_add(1);
              EXPECT_EQ(*ch.recv(), k);
              if (k % 64 == 0) rt::yield();  // let the sender run ahead as far as it can
            }
            wg.wait();
          },
          with_workers(n));
      EXPECT_EQ(violations.load(), 0) << "cap " << cap << ", " << n << " workers";
      EXPECT_EQ(sends_done.load(), count);
    }
  }
}

// ---- buffered: a FIFO ring --------------------------------------------------------------------

TEST(ChanBuffered, LenCapAndFifoOrderAcrossWrapAround) {
  rt::run([] {
    auto ch = rt::make_chan<int>(3);
    EXPECT_TRUE(ch);
    EXPECT_EQ(ch.cap(), 3u);
    EXPECT_EQ(ch.len(), 0u);
    ch.send(1);
    ch.send(2);
    EXPECT_EQ(ch.len(), 2u);
    ch.send(3);
    EXPECT_EQ(ch.len(), 3u);
    int four = 4;
    EXPECT_FALSE(ch.try_send(four)) << "a full buffer must not take another value";
    EXPECT_EQ(ch.len(), 3u);
    EXPECT_EQ(*ch.recv(), 1);
    EXPECT_EQ(ch.len(), 2u);
    ch.send(4);  // lands in the slot freed at the front: the ring wraps
    EXPECT_EQ(*ch.recv(), 2);
    EXPECT_EQ(*ch.recv(), 3);
    EXPECT_EQ(*ch.recv(), 4);
    EXPECT_EQ(ch.len(), 0u);
    EXPECT_EQ(ch.cap(), 3u);
    EXPECT_FALSE(ch.try_recv().has_value());
    // Many wraps, with the fill level varying between 0 and cap.
    int next_in = 0, next_out = 0;
    for (int round = 0; round < 500; ++round) {
      const int k = 1 + round % 3;
      for (int i = 0; i < k; ++i) ch.send(next_in++);
      EXPECT_EQ(ch.len(), static_cast<std::size_t>(k));
      for (int i = 0; i < k; ++i) EXPECT_EQ(*ch.recv(), next_out++);
    }
  });
}

// Elements are constructed into the ring and destroyed exactly once: when received, or when the
// last handle to the channel goes away.
TEST(ChanBuffered, ElementsAreDestroyedExactlyOnce) {
  tracked::live = 0;
  rt::run([] {
    {
      auto ch = rt::make_chan<tracked>(4);
      for (int round = 0; round < 10; ++round) {  // wraps the ring twice
        ch.send(tracked(round));
        EXPECT_EQ(ch.recv()->v, round);
        EXPECT_EQ(tracked::live.load(), 0);
      }
      for (int i = 0; i < 3; ++i) ch.send(tracked(i));
      EXPECT_EQ(ch.len(), 3u);  // three elements are left in the ring, live
      EXPECT_EQ(tracked::live.load(), 3);
    }
    EXPECT_EQ(tracked::live.load(), 0);  // the channel's destructor destroyed what it held
  });
  EXPECT_EQ(tracked::live.load(), 0);
}

// Receiving blocks while the buffer is empty, sending blocks while it is full (one worker: each
// helper announces itself and runs on into its blocking call before main runs again).
TEST(ChanBuffered, SendBlocksWhenFullAndRecvBlocksWhenEmpty) {
  RT_SKIP_UNDER_CHAOS();
  rt::run(
      [] {
        auto ch = rt::make_chan<int>(2);
        auto started = rt::make_chan<int>();
        auto finished = rt::make_chan<int>(2);
        ch.send(1);
        ch.send(2);
        bool third_sent = false;
        rt::go([&, ch, started, finished]() mutable {
          started.send(0);
          ch.send(3);  // full: parks
          third_sent = true;
          finished.send(0);
        });
        started.recv();
        EXPECT_FALSE(third_sent);
        EXPECT_EQ(ch.len(), 2u);
        EXPECT_EQ(*ch.recv(), 1);  // frees a slot: the parked value moves into the ring
        EXPECT_EQ(ch.len(), 2u);
        finished.recv();
        EXPECT_TRUE(third_sent);
        EXPECT_EQ(*ch.recv(), 2);
        EXPECT_EQ(*ch.recv(), 3);

        std::optional<int> got;
        rt::go([&, ch, started, finished]() mutable {
          started.send(0);
          got = ch.recv();  // empty: parks
          finished.send(0);
        });
        started.recv();
        EXPECT_FALSE(got.has_value());
        ch.send(9);
        finished.recv();
        EXPECT_EQ(got, 9);
      },
      with_workers(1));
}

// ---- FIFO service of blocked parties ----------------------------------------------------------

// Five receivers park on an unbuffered channel in a known order; five sends must reach them in
// that order. The order is established by a handshake chain on one worker: receiver i hands its
// index to main on `parked` and, not being preempted, runs on into ch.recv() and parks before
// main runs again and spawns receiver i+1.
TEST(ChanFifo, BlockedReceiversAreServedInArrivalOrder) {
  RT_SKIP_UNDER_CHAOS();
  rt::run(
      [] {
        constexpr int n = 5;
        auto ch = rt::make_chan<int>();
        auto parked = rt::make_chan<int>();
        std::vector<int> got(n, -1);
        rt::wait_group wg;
        for (int i = 0; i < n; ++i) {
          wg.add(1);
          rt::go([&, i, ch, parked]() mutable {
            parked.send(i);
            got[i] = *ch.recv();
            wg.done();
          });
          EXPECT_EQ(*parked.recv(), i);
        }
        for (int v = 0; v < n; ++v) ch.send(100 + v);
        wg.wait();
        for (int i = 0; i < n; ++i) EXPECT_EQ(got[i], 100 + i) << "receiver " << i;
      },
      with_workers(1));
}

// The same for senders, on an unbuffered channel and on a full buffered one (where the parked
// senders' values must follow the buffered ones, in the senders' arrival order).
TEST(ChanFifo, BlockedSendersAreServedInArrivalOrder) {
  RT_SKIP_UNDER_CHAOS();
  for (std::size_t cap : {0u, 2u}) {
    rt::run(
        [cap] {
          constexpr int n = 5;
          auto ch = rt::make_chan<int>(cap);
          auto parked = rt::make_chan<int>();
          for (std::size_t i = 0; i < cap; ++i) ch.send(-1 - static_cast<int>(i));
          rt::wait_group wg;
          for (int i = 0; i < n; ++i) {
            wg.add(1);
            rt::go([&, i, ch, parked]() mutable {
              parked.send(i);
              ch.send(i);
              wg.done();
            });
            EXPECT_EQ(*parked.recv(), i);
          }
          for (std::size_t i = 0; i < cap; ++i) EXPECT_EQ(*ch.recv(), -1 - static_cast<int>(i));
          for (int i = 0; i < n; ++i) EXPECT_EQ(*ch.recv(), i) << "cap " << cap;
          wg.wait();
          EXPECT_EQ(ch.len(), 0u);
        },
        with_workers(1));
  }
}

// ---- close --------------------------------------------------------------------------------

TEST(ChanClose, ReceiversDrainBufferedValuesThenGetNullopt) {
  rt::run([] {
    auto ch = rt::make_chan<int>(4);
    ch.send(1);
    ch.send(2);
    ch.send(3);
    ch.close();
    EXPECT_EQ(ch.len(), 3u);
    EXPECT_EQ(ch.recv(), 1);
    EXPECT_EQ(ch.recv(), 2);
    EXPECT_EQ(ch.recv(), 3);
    EXPECT_EQ(ch.recv(), std::nullopt);
    EXPECT_EQ(ch.recv(), std::nullopt);  // and again: a closed channel stays closed
    EXPECT_EQ(ch.len(), 0u);
    EXPECT_EQ(ch.cap(), 4u);
  });
}

// A receive on a closed, empty channel returns at once. Main is the only fiber: if it blocked,
// nothing could ever wake it (the runtime would report a deadlock and the test binary exit 2).
TEST(ChanClose, RecvOnClosedEmptyChannelReturnsNulloptImmediately) {
  rt::run([] {
    for (std::size_t cap : {0u, 1u, 8u}) {
      auto ch = rt::make_chan<std::string>(cap);
      ch.close();
      EXPECT_EQ(ch.recv(), std::nullopt);
      bool closed = false;
      EXPECT_EQ(ch.try_recv(&closed), std::nullopt);
      EXPECT_TRUE(closed);
    }
  });
}

TEST(ChanClose, SendOnClosedChannelThrowsChannelClosed) {
  rt::run([] {
    for (std::size_t cap : {0u, 2u}) {
      auto ch = rt::make_chan<int>(cap);
      if (cap) ch.send(1);
      ch.close();
      try {
        ch.send(2);
        ADD_FAILURE() << "send on a closed channel returned";
      } catch (const rt::channel_closed& e) {
        EXPECT_STREQ(e.what(), "send on closed channel");
        static_assert(std::is_base_of_v<std::logic_error, rt::channel_closed>);
      }
      int v = 3;
      EXPECT_THROW(ch.try_send(v), rt::channel_closed);
      // The failed sends delivered nothing: only what was buffered before close comes out.
      if (cap) {
        EXPECT_EQ(ch.recv(), 1);
      }
      EXPECT_EQ(ch.recv(), std::nullopt);
    }
  });
}

TEST(ChanClose, CloseOfClosedChannelThrowsChannelClosed) {
  rt::run([] {
    auto ch = rt::make_chan<int>(1);
    ch.send(5);
    ch.close();
    try {
      ch.close();
      ADD_FAILURE() << "closing a closed channel returned";
    } catch (const rt::channel_closed& e) {
      EXPECT_STREQ(e.what(), "close of closed channel");
    }
    EXPECT_EQ(ch.recv(), 5);  // the second close changed nothing
  });
}

TEST(ChanClose, CloseOfNilChannelThrowsRuntimeError) {
  rt::chan<int> nil;
  try {
    nil.close();
    ADD_FAILURE() << "closing the nil channel returned";
  } catch (const rt::channel_closed&) {
    ADD_FAILURE() << "close of nil channel must be rt::runtime_error, not channel_closed";
  } catch (const rt::runtime_error& e) {
    EXPECT_STREQ(e.what(), "close of nil channel");
  }
}

// close wakes every parked receiver (each gets nullopt) and every parked sender (each throws,
// its value undelivered). Receivers and senders are parked for certain before the close (one
// worker, handshake chain as above).
TEST(ChanClose, CloseWakesEveryBlockedReceiverAndSender) {
  rt::run(
      [] {
        constexpr int n = 4;
        auto rch = rt::make_chan<int>();   // receivers park here
        auto sch = rt::make_chan<int>(1);  // full: senders park here
        sch.send(-1);
        auto parked = rt::make_chan<int>();
        std::atomic<int> got_nullopt{0}, got_value{0}, threw{0}, sent{0};
        rt::wait_group wg;
        for (int i = 0; i < n; ++i) {
          wg.add(2);
          rt::go([&, rch, parked]() mutable {
            parked.send(0);
            (rch.recv() ? got_value : got_nullopt).fetch_add(1);
            wg.done();
          });
          parked.recv();
          rt::go([&, i, sch, parked]() mutable {
            parked.send(0);
            try {
              sch.send(i);
              sent.fetch_add(1);
            } catch (const rt::channel_closed& e) {
              EXPECT_STREQ(e.what(), "send on closed channel");
              threw.fetch_add(1);
            }
            wg.done();
          });
          parked.recv();
        }
        rch.close();
        sch.close();
        wg.wait();
        EXPECT_EQ(got_nullopt.load(), n);
        EXPECT_EQ(got_value.load(), 0);
        EXPECT_EQ(threw.load(), n);
        EXPECT_EQ(sent.load(), 0);
        EXPECT_EQ(sch.recv(), -1);  // buffered before the close: still there
        EXPECT_EQ(sch.recv(), std::nullopt);
      },
      with_workers(1));
}

// The same on several workers, where the parties may or may not have parked when close comes:
// every receiver ends with nullopt and every sender with channel_closed either way.
TEST(ChanClose, CloseReleasesEveryoneOnSeveralWorkers) {
  for (int round = 0; round < 50; ++round) {
    std::atomic<int> nullopts{0}, throws{0};
    rt::run(
        [&] {
          auto rch = rt::make_chan<int>();
          auto sch = rt::make_chan<int>();
          rt::wait_group wg;
          for (int i = 0; i < 8; ++i) {
            wg.add(2);
            rt::go([&, rch]() mutable {
              if (!rch.recv()) nullopts.fetch_add(1);
              wg.done();
            });
            rt::go([&, sch]() mutable {
              try {
                sch.send(1);
              } catch (const rt::channel_closed&) {
                throws.fetch_add(1);
              }
              wg.done();
            });
          }
          rch.close();
          // Nobody receives on sch, so no send can succeed: each one throws, parked or not.
          sch.close();
          wg.wait();
        },
        with_workers(4));
    ASSERT_EQ(nullopts.load(), 8) << "round " << round;
    ASSERT_EQ(throws.load(), 8) << "round " << round;
  }
}

// ---- the nil channel ----------------------------------------------------------------------

TEST(ChanNil, IsFalseWithZeroLenAndCap) {
  rt::chan<int> nil;
  EXPECT_FALSE(nil);
  EXPECT_FALSE(static_cast<bool>(nil));
  EXPECT_EQ(nil.len(), 0u);
  EXPECT_EQ(nil.cap(), 0u);
  int v = 1;
  EXPECT_FALSE(nil.try_send(v));
  EXPECT_EQ(nil.try_recv(), std::nullopt);
  EXPECT_TRUE(nil == rt::chan<int>());
  auto real = rt::make_chan<int>();
  EXPECT_TRUE(real);
  EXPECT_FALSE(real == nil);
}

// try_recv(&closed) on the nil channel must say "not closed" (the nil channel is never closed),
// as it does for an open, empty channel: the out-parameter is always written.
// BUG (open): chan::try_recv returns before writing *closed when the channel is nil
// (api/include/rt/chan.hpp, `if (!state_) return out;`), leaving a caller's uninitialised bool
// unwritten.
TEST(ChanNil, TryRecvSaysNotClosed) {
  rt::chan<int> nil;
  bool closed = true;
  EXPECT_EQ(nil.try_recv(&closed), std::nullopt);
  EXPECT_FALSE(closed);
}

// Send and receive on the nil channel block forever: on one worker, the two fibers run up to
// their nil operation when main yields, and never get further. rt::run still returns when main
// does (it unwinds them).
TEST(ChanNil, SendAndRecvBlockForever) {
  std::atomic<int> passed{0}, reached{0};
  rt::run(
      [&] {
        rt::chan<int> nil;
        rt::go([&, nil]() mutable {
          reached.fetch_add(1);
          nil.recv();
          passed.fetch_add(1);
        });
        rt::go([&, nil]() mutable {
          reached.fetch_add(1);
          nil.send(1);
          passed.fetch_add(1);
        });
        for (int i = 0; i < 10; ++i) rt::yield();
        EXPECT_EQ(reached.load(), 2);
      },
      with_workers(1));
  EXPECT_EQ(passed.load(), 0);
}

// ---- handles --------------------------------------------------------------------------------

TEST(ChanHandle, CopiesShareTheChannelAndEqualityIsIdentity) {
  rt::run([] {
    auto a = rt::make_chan<int>(2);
    rt::chan<int> b = a;  // copy
    rt::chan<int> c;
    c = b;  // copy-assign
    EXPECT_TRUE(a == b);
    EXPECT_TRUE(b == c);
    EXPECT_FALSE(a != b);
    b.send(1);
    EXPECT_EQ(a.len(), 1u);
    EXPECT_EQ(c.len(), 1u);
    EXPECT_EQ(c.recv(), 1);
    EXPECT_EQ(a.len(), 0u);
    a.close();
    int v = 2;
    EXPECT_THROW(c.try_send(v), rt::channel_closed);  // closed through another handle
    auto other = rt::make_chan<int>(2);
    EXPECT_FALSE(a == other);
    EXPECT_TRUE(a != other);
    EXPECT_EQ(a.cap(), c.cap());
  });
}

TEST(ChanHandle, PrintsAsAnAddress) {
  auto a = rt::make_chan<int>();
  auto b = a;
  auto other = rt::make_chan<int>();
  std::ostringstream sa, sb, so, sn;
  sa << a;
  sb << b;
  so << other;
  sn << rt::chan<int>();
  EXPECT_TRUE(std::regex_match(sa.str(), std::regex("0x[0-9a-f]+"))) << sa.str();
  EXPECT_EQ(sa.str(), sb.str());
  EXPECT_NE(sa.str(), so.str());
  EXPECT_EQ(sn.str(), "0x0");
}

// ---- range-for ------------------------------------------------------------------------------

TEST(ChanRange, RangeForReceivesUntilClosedAndDrained) {
  for (std::size_t cap : {0u, 1u, 16u}) {
    for (unsigned n : {1u, 4u}) {
      std::vector<int> got;
      rt::run(
          [&] {
            auto ch = rt::make_chan<int>(cap);
            rt::go([ch]() mutable {
              for (int i = 0; i < 1000; ++i) ch.send(i);
              ch.close();
            });
            for (int v : ch) got.push_back(v);
            // A second loop over the closed, drained channel ends at once.
            for (int v : ch) ADD_FAILURE() << "got " << v << " after the close";
          },
          with_workers(n));
      ASSERT_EQ(got.size(), 1000u);
      for (int i = 0; i < 1000; ++i) ASSERT_EQ(got[i], i);
    }
  }
  // Values buffered before the close come out of the range too.
  rt::run([] {
    auto ch = rt::make_chan<std::string>(3);
    ch.send("a");
    ch.send("b");
    ch.close();
    std::string all;
    for (std::string& s : ch) all += s;
    EXPECT_EQ(all, "ab");
  });
}

// ---- move-only elements -------------------------------------------------------------------

TEST(ChanMoveOnly, UniquePtrThroughUnbufferedBufferedAndSelect) {
  using up = std::unique_ptr<int>;
  rt::run(
      [] {
        for (std::size_t cap : {0u, 3u}) {
          auto ch = rt::make_chan<up>(cap);
          rt::go([ch]() mutable {
            for (int i = 0; i < 10; ++i) ch.send(std::make_unique<int>(i));
            ch.close();
          });
          int next = 0;
          for (up& p : ch) {
            ASSERT_TRUE(p);
            EXPECT_EQ(*p, next++);
          }
          EXPECT_EQ(next, 10);
        }
        // try_send leaves the value with the caller when it fails.
        auto full = rt::make_chan<up>(1);
        up first = std::make_unique<int>(1);
        EXPECT_TRUE(full.try_send(first));
        EXPECT_FALSE(first);  // moved into the channel
        up second = std::make_unique<int>(2);
        EXPECT_FALSE(full.try_send(second));
        ASSERT_TRUE(second) << "a failed try_send must not consume the value";
        EXPECT_EQ(*second, 2);
        EXPECT_EQ(**full.try_recv(), 1);
        // select: a send case and a receive case with a unique_ptr.
        auto sel = rt::make_chan<up>(1);
        EXPECT_EQ(rt::select(rt::send(sel, std::make_unique<int>(5))), 0u);
        int seen = 0;
        EXPECT_EQ(rt::select(rt::recv(sel, [&](std::optional<up> p) { seen = **p; })), 0u);
        EXPECT_EQ(seen, 5);
        // And through a select on an unbuffered channel, to a parked receiver.
        auto unb = rt::make_chan<up>();
        auto result = rt::make_chan<int>(1);
        rt::go([unb, result]() mutable { result.send(**unb.recv()); });
        rt::select(rt::send(unb, std::make_unique<int>(6)));
        EXPECT_EQ(result.recv(), 6);
      },
      with_workers(2));
}

// ---- try_send / try_recv --------------------------------------------------------------------

TEST(ChanTry, TrySendAndTryRecvNeverBlock) {
  RT_SKIP_UNDER_CHAOS();
  rt::run(
      [] {
        auto buf = rt::make_chan<int>(2);
        int v = 1;
        EXPECT_TRUE(buf.try_send(v));
        v = 2;
        EXPECT_TRUE(buf.try_send(v));
        v = 3;
        EXPECT_FALSE(buf.try_send(v));
        bool closed = true;
        EXPECT_EQ(buf.try_recv(&closed), 1);
        EXPECT_FALSE(closed);
        EXPECT_EQ(buf.try_recv(&closed), 2);
        EXPECT_EQ(buf.try_recv(&closed), std::nullopt);
        EXPECT_FALSE(closed) << "empty is not closed";
        v = 4;
        EXPECT_TRUE(buf.try_send(v));
        buf.close();
        EXPECT_EQ(buf.try_recv(&closed), 4);
        EXPECT_FALSE(closed);
        EXPECT_EQ(buf.try_recv(&closed), std::nullopt);
        EXPECT_TRUE(closed);

        // Unbuffered: try_send succeeds only into a parked receiver, try_recv only from a parked
        // sender (one worker: the helper runs on into its blocking call before main resumes).
        auto unb = rt::make_chan<int>();
        v = 5;
        EXPECT_FALSE(unb.try_send(v)) << "no receiver waits";
        EXPECT_EQ(unb.try_recv(&closed), std::nullopt);
        EXPECT_FALSE(closed);
        auto started = rt::make_chan<int>();
        auto result = rt::make_chan<int>(1);
        rt::go([unb, started, result]() mutable {
          started.send(0);
          result.send(*unb.recv());
        });
        started.recv();
        v = 6;
        EXPECT_TRUE(unb.try_send(v));
        EXPECT_EQ(result.recv(), 6);
        rt::go([unb, started]() mutable {
          started.send(0);
          unb.send(7);
        });
        started.recv();
        EXPECT_EQ(unb.try_recv(), 7);
      },
      with_workers(1));
}

// ---- plain threads ------------------------------------------------------------------------

// A std::thread sends and a fiber receives, then the other way round; both sides block (the
// channels are unbuffered, so each operation waits for its partner), for many rounds.
TEST(ChanThreads, ThreadSendsFiberReceivesAndViceVersa) {
  for (unsigned n : {1u, 2u}) {
    constexpr int count = 2000;
    auto to_fiber = rt::make_chan<int>();
    auto to_thread = rt::make_chan<int>();
    std::vector<int> thread_got;
    std::thread t;
    rt::run(
        [&] {
          t = std::thread([&] {
            for (int i = 0; i < count; ++i) to_fiber.send(i);
            for (std::optional<int> v; (v = to_thread.recv());) thread_got.push_back(*v);
          });
          for (int i = 0; i < count; ++i) ASSERT_EQ(to_fiber.recv(), i);
          for (int i = 0; i < count; ++i) to_thread.send(i);
          // The thread's last receive returns nullopt only after this close: the thread is then
          // done with the runtime (join below, after rt::run).
          to_thread.close();
        },
        with_workers(n));
    t.join();
    ASSERT_EQ(thread_got.size(), static_cast<std::size_t>(count));
    for (int i = 0; i < count; ++i) ASSERT_EQ(thread_got[i], i);
  }
}

// Ping-pong between a thread and a fiber: each side alternately blocks in recv while the other
// is on its way to send.
TEST(ChanThreads, PingPongBetweenThreadAndFiber) {
  auto ping = rt::make_chan<int>();
  auto pong = rt::make_chan<int>();
  std::thread t;
  int last = -1;
  rt::run(
      [&] {
        t = std::thread([&] {
          for (std::optional<int> v; (v = ping.recv());) pong.send(*v + 1);
        });
        for (int i = 0; i < 5000; i += 2) {
          ping.send(i);
          last = *pong.recv();
          ASSERT_EQ(last, i + 1);
        }
        ping.close();
        // Joined here, inside rt::run: the thread's last pong.send may still be finishing its
        // wake of this fiber (see CloseFromThreadWhileRunReturns below).
        t.join();
      },
      with_workers(2));
  EXPECT_EQ(last, 4999);
}

// Several threads and several fibers on one buffered channel: every value arrives once.
TEST(ChanThreads, ThreadsAndFibersShareABufferedChannel) {
  constexpr int per = 3000;
  constexpr int threads = 2, fibers = 2;
  std::vector<std::atomic<int>> seen(per * (threads + fibers));
  std::vector<std::thread> ts;
  rt::run(
      [&] {
        auto ch = rt::make_chan<int>(4);
        auto fiber_done = rt::make_chan<int>(fibers);
        for (int f = 0; f < fibers; ++f) {
          rt::go([&, f, ch, fiber_done]() mutable {
            for (int i = 0; i < per; ++i) ch.send((threads + f) * per + i);
            fiber_done.send(0);
          });
        }
        auto thread_done = rt::make_chan<int>(threads);
        for (int t = 0; t < threads; ++t) {
          ts.emplace_back([&, t, ch, thread_done]() mutable {
            for (int i = 0; i < per; ++i) ch.send(t * per + i);
            thread_done.send(0);
          });
        }
        for (int i = 0; i < per * (threads + fibers); ++i) seen[*ch.recv()].fetch_add(1);
        for (int i = 0; i < threads; ++i) thread_done.recv();
        for (int i = 0; i < fibers; ++i) fiber_done.recv();
        // Joined inside rt::run: a thread's thread_done.send may still be finishing its wake of
        // this fiber (see CloseFromThreadWhileRunReturns below).
        for (auto& t : ts) t.join();
      },
      with_workers(2));
  for (std::size_t i = 0; i < seen.size(); ++i) ASSERT_EQ(seen[i].load(), 1) << "value " << i;
}

// A plain thread's channel operation that wakes fibers must be safe even when the fiber it wakes
// is the main fiber, which then returns at once, so that rt::run tears the runtime down while the
// thread is still inside the operation. Here the main fiber and 5000 other fibers are parked on
// one channel (main first, so close() wakes it first), and a plain thread closes the channel.
// While it goes on waking the other waiters — whose waiter records live on those fibers' stacks —
// main returns, and rt::run unwinds those fibers and frees their stacks and the runtime.
//
// To make that interleaving likely rather than occasional, the closing thread gets a timer signal
// every 50 us while it is in close(). The first one that finds the runtime shutting down
// (rt::worker_count() == 0 on a plain thread means no runtime is running any more) holds the
// thread there — as a preemption by the OS could — until rt::run has returned, or for at most
// 200 ms. A correct runtime cannot return from rt::run while the thread is inside close(), so it
// passes (200 ms later); a runtime that tears down under the thread lets it resume in freed
// memory.
//
// BUG (open): make_runnable_from_anywhere() holds g_plain_users only around each single
// make_runnable, but the plain thread touches the waiters outside that window: close() keeps the
// popped waiters (on the fibers' stacks) in a list and reads each one's `next`, and wake() reads
// `target.sel` / `w.owner`, before taking the guard. Once rt::run has unwound those fibers and
// unmapped their stacks, the thread faults. Symptom: SIGSEGV in rt::detail::wake() called from
// rt::detail::chan_core::close() on the plain thread. The same holds for every path that pops
// several waiters and wakes them outside the lock (condition_variable::notify_all, wait_group's
// release of its waiters).
namespace {
std::atomic<bool> run_returned{false}, closing{false}, held{false};
void hold_if_shutting_down(int) {
  if (!closing.load() || held.load() || rt::worker_count() != 0) return;
  held.store(true);
  timespec ms{0, 1000000};
  for (int i = 0; i < 200 && !run_returned.load(); ++i) nanosleep(&ms, nullptr);
}
}  // namespace

TEST(ChanThreads, CloseFromThreadWhileRunReturns) {
  struct sigaction sa {
  }, old{};
  sa.sa_handler = hold_if_shutting_down;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  ASSERT_EQ(sigaction(SIGUSR1, &sa, &old), 0);
  for (int round = 0; round < (kSanitized ? 2 : 5); ++round) {
    constexpr int k = kSanitized ? 1000 : 5000;
    auto ch = rt::make_chan<int>();
    auto ready = rt::make_chan<int>(k);
    std::thread t;
    run_returned = false;
    held = false;
    rt::run(
        [&] {
          for (int i = 0; i < k; ++i) {
            rt::go([ch, ready]() mutable {
              ready.send(0);
              ch.recv();
            });
          }
          t = std::thread([&] {
            for (int i = 0; i < k; ++i) ready.recv();
            sigevent sev{};
            sev.sigev_notify = SIGEV_THREAD_ID;
            sev.sigev_signo = SIGUSR1;
            sev._sigev_un._tid = gettid();  // sigev_notify_thread_id, where glibc names it
            timer_t timer;
            ASSERT_EQ(timer_create(CLOCK_MONOTONIC, &sev, &timer), 0);
            const itimerspec every_50us{{0, 50000}, {0, 50000}};
            closing = true;
            timer_settime(timer, 0, &every_50us, nullptr);
            ch.close();
            closing = false;
            timer_delete(timer);
          });
          ch.recv();  // parks first: on one worker, none of the fibers above has run yet
        },
        with_workers(1));
    run_returned = true;
    t.join();
  }
  sigaction(SIGUSR1, &old, nullptr);
}

// --- Exception safety of the hand-off (issue 9, item 12) ------------------------------------
//
// A throwing copy of T must leave the channel as it was: a parked receiver (or select) stays
// parked and unclaimed, a parked sender stays parked, nothing half-written is counted in the
// buffer, and the exception reaches the party whose operation ran the copy. Before the fix a
// parked receiver was popped (a select claimed) before the copy ran: the throw left it parked
// forever, the next send parked too, and the program reported a false deadlock.
namespace {

std::atomic<bool> g_copy_throws{false};

// Copyable only (no move constructor): every hand-off copies. A copy of a `poisoned` value
// throws while g_copy_throws is set.
struct fragile {
  int v = 0;
  bool poisoned = false;
  fragile() = default;
  fragile(int value, bool poison) : v(value), poisoned(poison) {}
  fragile(const fragile& o) : v(o.v), poisoned(o.poisoned) {
    if (poisoned && g_copy_throws.load()) throw std::runtime_error("copy failed");
  }
  fragile& operator=(const fragile&) = default;
};

struct copy_throws_scope {
  copy_throws_scope() { g_copy_throws.store(true); }
  ~copy_throws_scope() { g_copy_throws.store(false); }
};

}  // namespace

// One worker: the receiver fiber runs into its recv and parks before main sends (fibers are not
// preempted; chaos would reorder that, so it is skipped under RT_CHAOS).
TEST(ChanExceptionSafety, ThrowingCopyLeavesReceiverParked) {
  RT_SKIP_UNDER_CHAOS();
  copy_throws_scope armed;
  rt::run(
      [] {
        auto ch = rt::make_chan<fragile>();
        auto got = rt::make_chan<int>(1);
        rt::go([ch, got]() mutable { got.send(ch.recv()->v); });
        rt::yield();  // the receiver parks in ch.recv()
        EXPECT_EQ(rt_test::what_of<std::runtime_error>([&] { ch.send(fragile(1, true)); }),
                  "copy failed");
        ch.send(fragile(2, false));  // reaches the same, still parked receiver
        EXPECT_EQ(got.recv(), 2);
      },
      with_workers(1));
}

TEST(ChanExceptionSafety, ThrowingCopyLeavesSelectReceiverUnclaimed) {
  RT_SKIP_UNDER_CHAOS();
  copy_throws_scope armed;
  rt::run(
      [] {
        auto ch = rt::make_chan<fragile>();
        auto other = rt::make_chan<fragile>();
        auto got = rt::make_chan<int>(1);
        rt::go([ch, other, got]() mutable {
          int v = -1;
          rt::select(rt::recv(ch, [&](std::optional<fragile> f) { v = f->v; }),
                     rt::recv(other, [&](std::optional<fragile> f) { v = 100 + f->v; }));
          got.send(v);
        });
        rt::yield();  // the select parks on both channels
        EXPECT_EQ(rt_test::what_of<std::runtime_error>([&] { ch.send(fragile(1, true)); }),
                  "copy failed");
        // A select sender fails the same way, to the selecting party.
        EXPECT_EQ(rt_test::what_of<std::runtime_error>(
                      [&] { rt::select(rt::send(other, fragile(3, true))); }),
                  "copy failed");
        other.send(fragile(4, false));  // the select is still unclaimed: this case wins
        EXPECT_EQ(got.recv(), 104);
      },
      with_workers(1));
}

TEST(ChanExceptionSafety, ThrowingCopyIntoBufferIsNotCounted) {
  copy_throws_scope armed;
  rt::run(
      [] {
        auto ch = rt::make_chan<fragile>(2);
        ch.send(fragile(1, false));
        EXPECT_EQ(rt_test::what_of<std::runtime_error>([&] { ch.send(fragile(2, true)); }),
                  "copy failed");
        EXPECT_EQ(ch.len(), 1u);
        fragile bad(3, true);
        EXPECT_THROW(ch.try_send(bad), std::runtime_error);
        EXPECT_EQ(ch.len(), 1u);
        ch.send(fragile(4, false));
        EXPECT_EQ(ch.recv()->v, 1);
        EXPECT_EQ(ch.recv()->v, 4);
        EXPECT_EQ(ch.len(), 0u);
      },
      with_workers(2));
}

// Receiving: a parked sender's value that cannot be copied out (straight to the receiver, or
// into the place the receiver freed in a full buffer) leaves the sender parked and the buffer as
// it was; the receiver gets the exception.
TEST(ChanExceptionSafety, ThrowingCopyOutOfParkedSenderLeavesItParked) {
  RT_SKIP_UNDER_CHAOS();
  for (std::size_t cap : {0u, 1u}) {
    copy_throws_scope armed;
    rt::run(
        [cap] {
          auto ch = rt::make_chan<fragile>(cap);
          if (cap) ch.send(fragile(1, false));  // fills the buffer
          auto outcome = rt::make_chan<std::string>(1);
          rt::go([ch, outcome]() mutable {
            try {
              ch.send(fragile(2, true));
              outcome.send("sent");
            } catch (const rt::channel_closed&) {
              outcome.send("closed");
            }
          });
          rt::yield();  // the sender parks: the buffer is full, or nobody receives
          EXPECT_EQ(rt_test::what_of<std::runtime_error>([&] { ch.recv(); }), "copy failed");
          EXPECT_EQ(ch.len(), cap);
          g_copy_throws.store(false);
          if (cap) {
            EXPECT_EQ(ch.recv()->v, 1);  // the buffered value, then the sender's
          }
          EXPECT_EQ(ch.recv()->v, 2);
          EXPECT_EQ(outcome.recv(), "sent");
        },
        with_workers(1));
  }
}
