// tests/group_test.cpp — rt::group (golang.org/x/sync/errgroup): wait waits for every member and
// rethrows the first exception in time, with_context cancels on the first failure and when wait
// returns, set_limit bounds the members in flight (go parks, try_go refuses), set_limit while
// members run throws, and plain threads inside rt::run can use a group.
#include <gtest/gtest.h>
#include <rt/csp.hpp>

#include <atomic>
#include <stdexcept>
#include <string>
#include <thread>

#include "test_support.hpp"

namespace {

using rt_test::kSlow;
using rt_test::with_workers;

TEST(Group, WaitWaitsForAllMembers) {
  for (unsigned w : {1u, 2u, 4u, 8u}) {
    rt::run(
        [] {
          rt::group g;
          auto gate = rt::make_chan<int>();
          std::atomic<int> finished{0};
          const int n = 100;
          for (int i = 0; i < n; ++i) {
            g.go([gate, &finished]() mutable {
              (void)gate.recv();  // parked until the gate closes, after wait() has begun
              finished.fetch_add(1);
            });
          }
          rt::go([gate]() mutable { gate.close(); });
          g.wait();
          EXPECT_EQ(finished.load(), n);
          g.wait();  // again: nothing to wait for, no error
        },
        with_workers(w));
  }
}

TEST(Group, ArgumentsAndResultsAreIgnored) {
  rt::run([] {
    rt::group g;
    std::atomic<int> sum{0};
    g.go(
        [&](int a, std::string s) {
          sum += a + static_cast<int>(s.size());
          return 42;
        },
        3, std::string("abcd"));
    g.wait();
    EXPECT_EQ(sum.load(), 7);
  });
}

// The exception thrown first in time wins, not the one of the first member spawned: member 0
// throws only after member 1's exception has cancelled the context.
TEST(Group, FirstExceptionInTimeWins) {
  for (unsigned w : {1u, 2u, 4u, 8u}) {
    rt::run(
        [] {
          auto [g, ctx] = rt::group::with_context(rt::background());
          g.go([ctx = ctx] {
            (void)ctx.done().recv();
            throw std::runtime_error("second");
          });
          g.go([] { throw std::runtime_error("first"); });
          for (int k = 0; k < 2; ++k) {  // every wait rethrows the same
            try {
              g.wait();
              ADD_FAILURE() << "wait did not rethrow";
            } catch (const std::runtime_error& e) {
              EXPECT_STREQ(e.what(), "first");
            }
          }
          EXPECT_EQ(ctx.err(), rt::context_errc::canceled);
        },
        with_workers(w));
  }
}

TEST(Group, WithContextCancelsSiblingsOnFailure) {
  rt::run(
      [] {
        auto [g, ctx] = rt::group::with_context(rt::background());
        std::atomic<int> saw_cancel{0};
        for (int i = 0; i < 10; ++i) {
          g.go([ctx = ctx, &saw_cancel] {
            (void)ctx.done().recv();  // only the failure below ends this
            if (ctx.err() == rt::context_errc::canceled) saw_cancel.fetch_add(1);
          });
        }
        g.go([] { throw 7; });
        EXPECT_THROW(g.wait(), int);
        EXPECT_EQ(saw_cancel.load(), 10);
      },
      with_workers(4));
}

TEST(Group, WithContextCancelsWhenWaitReturns) {
  rt::run([] {
    auto [parent, cancel_parent] = rt::with_cancel(rt::background());
    auto [g, ctx] = rt::group::with_context(parent);
    std::atomic<int> n{0};
    for (int i = 0; i < 5; ++i) {
      g.go([ctx = ctx, &n] {
        if (!ctx.err()) n.fetch_add(1);  // live while members run
      });
    }
    g.wait();
    EXPECT_EQ(n.load(), 5);
    EXPECT_EQ(ctx.err(), rt::context_errc::canceled);
    EXPECT_FALSE(parent.err());
  });
}

// At most n members at once: the in-flight counter never exceeds the limit, at any worker count.
TEST(Group, SetLimitIsHonoured) {
  for (unsigned w : {1u, 2u, 4u, 8u}) {
    for (int limit : {1, 3}) {
      rt::run(
          [limit] {
            rt::group g;
            g.set_limit(limit);
            std::atomic<int> in_flight{0}, max_seen{0};
            for (int i = 0; i < 400 / kSlow; ++i) {
              g.go([&] {  // parks while `limit` members run
                const int now = in_flight.fetch_add(1) + 1;
                int m = max_seen.load();
                while (now > m && !max_seen.compare_exchange_weak(m, now)) {
                }
                rt::yield();
                rt::yield();
                in_flight.fetch_sub(1);
              });
            }
            g.wait();
            EXPECT_LE(max_seen.load(), limit);
            EXPECT_GE(max_seen.load(), 1);
            g.set_limit(-1);  // allowed again once nothing runs
          },
          with_workers(w));
    }
  }
}

TEST(Group, TryGoAndSetLimitWhileRunning) {
  rt::run(
      [] {
        rt::group g;
        g.set_limit(1);
        auto gate = rt::make_chan<int>();
        EXPECT_TRUE(g.try_go([gate]() mutable { (void)gate.recv(); }));
        EXPECT_FALSE(g.try_go([] { ADD_FAILURE() << "ran over the limit"; }));
        try {
          g.set_limit(2);
          ADD_FAILURE() << "set_limit while a member runs did not throw";
        } catch (const rt::runtime_error& e) {
          EXPECT_NE(std::string(e.what()).find("rt::group::set_limit"), std::string::npos);
        }
        // A go() parked on the full bucket goes on once the member leaves.
        auto started = rt::make_chan<int>(1);
        rt::go([g, started]() mutable { g.go([started]() mutable { started.send(1); }); });
        gate.close();
        EXPECT_EQ(*started.recv(), 1);
        g.wait();
        EXPECT_TRUE(g.try_go([] {}));
        g.wait();
        // Limit 0: try_go can never start anything.
        g.set_limit(0);
        EXPECT_FALSE(g.try_go([] {}));
      },
      with_workers(2));
}

TEST(Group, PlainThreadInsideRun) {
  rt::run(
      [] {
        std::thread t([] {
          auto [g, ctx] = rt::group::with_context(rt::background());
          std::atomic<int> n{0};
          for (int i = 0; i < 20; ++i) g.go([&n] { n.fetch_add(1); });
          g.go([] { throw std::logic_error("boom"); });
          EXPECT_THROW(g.wait(), std::logic_error);  // blocks this thread
          EXPECT_EQ(n.load(), 20);
          EXPECT_TRUE(ctx.err());
          rt::group limited;
          limited.set_limit(2);
          for (int i = 0; i < 20; ++i) limited.go([] { rt::yield(); });  // blocks when full
          limited.wait();
        });
        t.join();
      },
      with_workers(2));
}

}  // namespace
