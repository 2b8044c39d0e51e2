// time_test — rt::sleep_for, rt::sleep_until and rt::after (Go's time.Sleep and time.After):
//   - a sleeping fiber does not occupy its worker: on one worker, other fibers make progress
//     while it sleeps (checked by counting their progress, not by timing);
//   - a sleep lasts at least as long as asked (a lower bound is a correctness property; there is
//     no upper bound here: a loaded machine may wake anything late);
//   - rt::after delivers exactly one time value, no earlier than its deadline;
//   - a million fibers sleeping at once all wake (label `heavy`; 20,000 under sanitizers);
//   - from a plain thread, sleep_for behaves like std::this_thread::sleep_for.
#include <rt/csp.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <random>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

#include "test_support.hpp"

namespace {

using rt_test::with_workers;

}  // namespace

// One worker. The sleeper announces itself and (not preempted) runs on into sleep_for(50ms);
// main then ping-pongs with a partner fiber until the sleeper has woken, counting the round trips
// made meanwhile. A sleep that blocked the worker thread would leave main no chance to run before
// the sleeper woke: zero round trips. (No bound on how many: only that there are some.)
TEST(Sleep, SleepingFiberDoesNotOccupyItsWorker) {
  for (auto how : {0, 1}) {  // sleep_for, sleep_until
    int rounds_while_asleep = -1;
    rt::run(
        [&] {
          std::atomic<bool> woke{false};
          auto sleeping = rt::make_chan<int>();
          auto done = rt::make_chan<int>(1);
          rt::go([&, how, sleeping, done]() mutable {
            sleeping.send(0);
            if (how == 0) {
              rt::sleep_for(50ms);
            } else {
              rt::sleep_until(steady::now() + 50ms);
            }
            woke = true;
            done.send(0);
          });
          auto ping = rt::make_chan<int>();
          auto pong = rt::make_chan<int>();
          rt::go([ping, pong]() mutable {
            for (int v : ping) pong.send(v);
          });
          sleeping.recv();
          int rounds = 0;
          while (!woke) {
            ping.send(rounds);
            EXPECT_EQ(pong.recv(), rounds);
            ++rounds;
          }
          rounds_while_asleep = rounds;
          ping.close();
          done.recv();
        },
        with_workers(1));
    EXPECT_GT(rounds_while_asleep, 0) << (how ? "sleep_until" : "sleep_for");
  }
}

// Many fibers sleeping on one worker sleep at the same time: 100 fibers each count themselves
// in `asleep` before sleeping 30 ms and out after. Were sleeps serialised (the worker blocked
// for each), `asleep` could never exceed 1; with fibers parked in the timer heap it climbs far
// higher. The check is only "more than one at once", which nothing but serialisation can fail.
TEST(Sleep, ManySleepersShareOneWorker) {
  constexpr int n = 100;
  std::atomic<int> asleep{0}, max_asleep{0}, woke{0};
  rt::run(
      [&] {
        rt::wait_group wg;
        wg.add(n);
        for (int i = 0; i < n; ++i) {
          rt::go([&] {
            const int now = asleep.fetch_add(1) + 1;
            int m = max_asleep.load();
            while (now > m && !max_asleep.compare_exchange_weak(m, now)) {
            }
            rt::sleep_for(30ms);
            asleep.fetch_sub(1);
            woke.fetch_add(1);
            wg.done();
          });
        }
        wg.wait();
      },
      with_workers(1));
  EXPECT_EQ(woke.load(), n);
  EXPECT_GT(max_asleep.load(), 1);
}

// sleep_for(d) returns no earlier than d after it was called; sleep_until(t) no earlier than t.
// Many fibers at once, with random durations, on two workers, so timers are armed on and run by
// different workers.
TEST(Sleep, NeverWakesEarly) {
  std::atomic<int> early{0};
  std::atomic<int> finished{0};
  rt::run(
      [&] {
        rt::wait_group wg;
        std::mt19937 rng(42);
        for (int i = 0; i < 200; ++i) {
          const auto d = std::chrono::microseconds(rng() % 20000);
          const bool until = i % 2;
          wg.add(1);
          rt::go([&, d, until] {
            for (int k = 0; k < 3; ++k) {
              const auto t0 = steady::now();
              if (until) {
                rt::sleep_until(t0 + d);
              } else {
                rt::sleep_for(d);
              }
              if (steady::now() - t0 < d) early.fetch_add(1);
            }
            finished.fetch_add(1);
            wg.done();
          });
        }
        // Zero and negative durations, and a deadline in the past, return (they yield).
        rt::sleep_for(0ms);
        rt::sleep_for(-5ms);
        rt::sleep_until(steady::now() - 1s);
        for (auto d : {1ms, 5ms, 20ms}) {
          const auto t0 = steady::now();
          rt::sleep_for(d);
          EXPECT_GE(steady::now() - t0, d);
        }
        wg.wait();
      },
      with_workers(2));
  EXPECT_EQ(early.load(), 0);
  EXPECT_EQ(finished.load(), 200);
}

// rt::after(d): one value, a time no earlier than the deadline and no later than its receipt;
// then nothing more (the channel is not closed, just silent), even well after the deadline.
TEST(After, DeliversExactlyOneTimeNoEarlierThanTheDeadline) {
  rt::run(
      [] {
        const auto t0 = steady::now();
        auto ch = rt::after(20ms);
        EXPECT_EQ(ch.cap(), 1u);
        const std::optional<steady::time_point> t = ch.recv();
        const auto received = steady::now();
        ASSERT_TRUE(t.has_value());
        EXPECT_GE(*t - t0, 20ms);
        EXPECT_LE(*t, received);
        rt::sleep_for(30ms);
        bool closed = true;
        EXPECT_EQ(ch.try_recv(&closed), std::nullopt);
        EXPECT_FALSE(closed);
        EXPECT_EQ(ch.len(), 0u);
        // Nobody receiving is fine: the timer's send never blocks (the channel is buffered), so
        // the value waits in the channel (or, on a slow machine, arrives while we receive).
        auto ignored = rt::after(1ms);
        rt::sleep_for(10ms);
        EXPECT_TRUE(ignored.recv().has_value());
        EXPECT_EQ(ignored.len(), 0u);
        // Many at once, each delivering exactly one value no earlier than its own deadline.
        std::vector<std::pair<steady::time_point, rt::recv_chan<steady::time_point>>> many;
        for (int i = 0; i < 100; ++i) {
          const auto d = std::chrono::microseconds(i * 100);
          const auto deadline = steady::now() + d;  // taken before rt::after takes its own
          many.emplace_back(deadline, rt::after(d));
        }
        for (auto& [deadline, c] : many) {
          auto v = c.recv();
          ASSERT_TRUE(v);
          EXPECT_GE(*v, deadline);
        }
        rt::sleep_for(5ms);
        for (auto& [deadline, c] : many) EXPECT_EQ(c.len(), 0u);
      },
      with_workers(2));
}

// rt::after from a plain thread (no timer heap of its own) works too.
TEST(After, FromAPlainThread) {
  rt::run(
      [] {
        std::optional<steady::time_point> got;
        steady::time_point t0;
        std::thread t([&] {
          t0 = steady::now();
          got = rt::after(15ms).recv();
        });
        // Joined inside rt::run, whose runtime must be up for the thread's timer: main blocks
        // its worker here, so a second worker runs the timer.
        t.join();
        ASSERT_TRUE(got);
        EXPECT_GE(*got - t0, 15ms);
      },
      with_workers(2));
}

// From a plain thread — outside any rt::run, and while one runs — sleep_for and sleep_until
// sleep like std::this_thread's: at least as long as asked.
TEST(Sleep, FromAPlainThreadBehavesLikeStdSleep) {
  auto t0 = steady::now();
  rt::sleep_for(10ms);
  EXPECT_GE(steady::now() - t0, 10ms);
  const auto deadline = steady::now() + 10ms;
  rt::sleep_until(deadline);
  EXPECT_GE(steady::now(), deadline);
  rt::run(
      [] {
        std::chrono::steady_clock::duration slept{};
        std::thread t([&] {
          const auto s = steady::now();
          rt::sleep_for(15ms);
          slept = steady::now() - s;
        });
        t.join();
        EXPECT_GE(slept, 15ms);
      },
      with_workers(1));
}

// A million fibers asleep at once, for random durations up to 100 ms; every one must wake, and
// none early. (20,000 under sanitizers, whose shadow memory makes a million stacks too costly.)
TEST(SleepHeavy, MillionSleepers) {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  constexpr int n = 20000;
#else
  constexpr int n = 1000000;
#endif
  std::atomic<int> woke{0}, early{0};
  rt::run([&] {
    rt::wait_group wg;
    wg.add(n);
    std::mt19937 rng(1);
    for (int i = 0; i < n; ++i) {
      const auto d = std::chrono::microseconds(rng() % 100000);
      rt::go([&, d] {
        const auto t0 = steady::now();
        rt::sleep_for(d);
        if (steady::now() - t0 < d) early.fetch_add(1, std::memory_order_relaxed);
        woke.fetch_add(1, std::memory_order_relaxed);
        wg.done();
      });
    }
    wg.wait();
  });
  EXPECT_EQ(woke.load(), n);
  EXPECT_EQ(early.load(), 0);
}
