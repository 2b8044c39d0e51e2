// ticker_test — rt::timer, rt::after_func, rt::ticker, rt::tick (issue 12), Go 1.23 semantics:
//   - stop() true means the value was never received and never will be; after stop() or reset()
//     returns, no stale value is received (checked by a concurrent receiver that counts every
//     value: received + stopped == armed, exactly);
//   - after_func runs fn exactly once, or never if stop() says it kept fn from starting;
//   - tickers deliver in order, drop ticks for a slow receiver, stop (also on destruction), and
//     rt::tick's ticker frees itself once its channel is dropped;
//   - plain threads inside rt::run use all of it; outside rt::run arming throws, naming the
//     entry point.
// No sleep synchronises anything here: waits are for an observable event (a value, a counter);
// the few sleeps only let time pass so a wrong fire would have had its chance to show.
#include <rt/csp.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "test_support.hpp"

using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

namespace {

using rt_test::kSlow;
using rt_test::with_workers;

// Lets time pass (a fiber sleeps; a plain thread sleeps too): for "nothing more arrives" checks.
void let_time_pass(std::chrono::nanoseconds d) {
  rt::sleep_for(d);
}

// Waits for cond(), letting other fibers (and due timers) run meanwhile.
template <class F>
void wait_for(F&& cond) {
  while (!cond()) rt::yield();
}

// A fiber that receives with try_recv until told to quit, counting values by the phase main had
// announced *before* each receive began: a value received in phase >= 1 began its receive after
// main's stop()/reset() had returned, so it must not be stale (no earlier than `since`).
struct receiver {
  std::atomic<int> phase{0};
  std::atomic<int> got[3] = {0, 0, 0};
  std::atomic<std::int64_t> since[3] = {0, 0, 0};  // by phase: values no earlier than this
  std::atomic<bool> quit{false};
  rt::chan<int> done = rt::make_chan<int>(1);

  void start(rt::recv_chan<steady::time_point> c) {
    // The fiber sends on its own copy of `done`: once stop() has received, the receiver may be
    // destroyed while this fiber is still inside send().
    rt::go([this, c, done = done]() mutable {
      std::int64_t last = 0;
      while (!quit.load()) {
        const int p = phase.load();
        if (auto v = c.try_recv()) {
          const std::int64_t t = v->time_since_epoch().count();
          EXPECT_GE(t, last) << "out of order";
          if (p >= 1) {
            EXPECT_GE(t, since[p].load()) << "a stale value, phase " << p;
          }
          last = t;
          got[p].fetch_add(1);
        }
        rt::yield();
      }
      done.send(0);
    });
  }
  void enter(int p, steady::time_point t = {}) {
    since[p] = t.time_since_epoch().count();  // before the phase: read after it, by phase
    phase = p;
  }
  int total() const { return got[0] + got[1] + got[2]; }
  void stop() {
    quit = true;
    done.recv();
  }
};

template <class F>
void expect_throw_naming(F&& f, const std::string& who) {
  try {
    f();
    ADD_FAILURE() << "no exception; expected one naming " << who;
  } catch (const rt::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(who), std::string::npos) << e.what();
  }
}

}  // namespace

// A stop() before the fire: true, and no value ever (not even well after the deadline).
TEST(Timer, StopBeforeFireGivesNoValueEver) {
  rt::run([] {
    rt::timer t(5ms);
    EXPECT_EQ(t.c().cap(), 1u);
    EXPECT_TRUE(t.stop());
    EXPECT_FALSE(t.stop());  // already stopped
    let_time_pass(20ms);
    EXPECT_FALSE(t.c().try_recv());
    rt::timer never(1h);
    EXPECT_TRUE(never.stop());
  });
}

// Fired, value not yet received: stop() drains it (true) and the channel stays empty.
TEST(Timer, StopAfterFireBeforeReceiveDrains) {
  rt::run([] {
    rt::timer t(1ms);
    auto c = t.c();
    wait_for([&] { return c.len() == 1; });
    EXPECT_TRUE(t.stop());
    EXPECT_EQ(c.len(), 0u);
    EXPECT_FALSE(c.try_recv());
    EXPECT_FALSE(t.stop());
  });
}

// Received, then stopped: false (nothing was stopped).
TEST(Timer, StopAfterReceiveIsFalse) {
  rt::run([] {
    rt::timer t(0ns);
    auto v = t.c().recv();
    ASSERT_TRUE(v);
    EXPECT_FALSE(t.stop());
  });
}

// A stopped (or fired and received) timer can be reset: false, then exactly one new value.
TEST(Timer, ResetOfStoppedTimer) {
  rt::run([] {
    rt::timer t(1h);
    EXPECT_TRUE(t.stop());
    const auto before = steady::now();
    EXPECT_FALSE(t.reset(1ms));
    auto v = t.c().recv();
    ASSERT_TRUE(v);
    EXPECT_GE(*v, before + 1ms);
    EXPECT_FALSE(t.reset(0ns));  // fired and received: nothing to stop
    EXPECT_TRUE(t.c().recv());
    EXPECT_FALSE(t.c().try_recv());
  });
}

// The handle is shared: a copy stops the same timer; dropping every handle does not stop it.
TEST(Timer, CopiesShareOneTimerAndDroppingHandlesDoesNotStopIt) {
  rt::run([] {
    rt::timer a(1h);
    rt::timer b = a;
    EXPECT_TRUE(b == a);
    EXPECT_TRUE(b.stop());
    EXPECT_FALSE(a.stop());
    rt::recv_chan<steady::time_point> c;
    {
      rt::timer t(1ms);
      c = t.c();
    }
    EXPECT_TRUE(c.recv());
    rt::timer nil;
    EXPECT_FALSE(nil);
    EXPECT_FALSE(nil.c());
    EXPECT_FALSE(nil.stop());
    expect_throw_naming([&] { nil.reset(1ms); }, "rt::timer::reset");
  });
}

// The frame of the race tests below, at 1, 2, 4 and 8 workers: each round arms a timer for
// 0-19 us, starts a receiver on its channel, yields a random 0-7 times (so the fire lands before,
// during or after what comes next) and hands all three to race(round, timer, receiver, rng).
template <class Race>
void timer_race_rounds(unsigned seed, Race race) {
  for (unsigned workers : {1u, 2u, 4u, 8u}) {
    rt::run(
        [&] {
          std::mt19937 rng(seed);
          const int rounds = 400 / kSlow;
          for (int i = 0; i < rounds; ++i) {
            rt::timer t(std::chrono::microseconds(rng() % 20));
            receiver r;
            r.start(t.c());
            for (unsigned k = rng() % 8; k > 0; --k) rt::yield();
            race(i, t, r, rng);
          }
        },
        with_workers(workers));
  }
}

// stop() racing the fire and a concurrent receiver: every armed value is either received or
// stopped, never both, never neither; after stop() returns, nothing more arrives.
TEST(Timer, StopRacesFireAndReceiver) {
  timer_race_rounds(7, [](int i, rt::timer& t, receiver& r, std::mt19937&) {
    const bool stopped = t.stop();
    r.enter(1, steady::time_point::max());  // nothing may arrive now
    if (i % 2) rt::yield();
    r.stop();
    EXPECT_EQ(r.got[1].load(), 0) << "a value arrived after stop() returned";
    EXPECT_EQ(r.total() + (stopped ? 1 : 0), 1) << "round " << i;
    EXPECT_FALSE(t.c().try_recv());
  });
}

// reset() racing the fire: the value received after reset() returns is the new arming's (no
// earlier than the reset), and exactly one value per arming is received or stopped.
TEST(Timer, ResetRacesFire) {
  timer_race_rounds(11, [](int i, rt::timer& t, receiver& r, std::mt19937& rng) {
    const auto before = steady::now();
    const bool stopped = t.reset(std::chrono::microseconds(rng() % 20));
    r.enter(1, before);
    // The old arming's value was received or stopped; the new one's comes.
    wait_for([&] { return r.total() == 2 - (stopped ? 1 : 0); });
    r.stop();
    EXPECT_EQ(r.total(), 2 - (stopped ? 1 : 0)) << "round " << i;
    EXPECT_FALSE(t.stop());
  });
}

// Concurrent stop() and reset() on copies of one timer from several fibers: no crash, no hang,
// and once the last stop() has returned no value is left or arrives.
TEST(Timer, ConcurrentStopAndResetFromManyFibers) {
  for (unsigned workers : {1u, 2u, 4u, 8u}) {
    rt::run(
        [] {
          rt::timer t(0ns);
          rt::wait_group wg;
          const int fibers = 8, ops = 300 / kSlow;
          wg.add(fibers);
          for (int f = 0; f < fibers; ++f) {
            rt::go([&, t, f] {
              for (int i = 0; i < ops; ++i) {
                if ((i + f) % 2) {
                  t.reset(std::chrono::microseconds(i % 5));
                } else {
                  t.stop();
                }
                if (i % 7 == 0) (void)t.c().try_recv();
              }
              wg.done();
            });
          }
          wg.wait();
          t.stop();
          let_time_pass(2ms);
          EXPECT_FALSE(t.c().try_recv());
        },
        with_workers(workers));
  }
}

// after_func runs fn once, in a fiber of its own; stop() then is false.
TEST(AfterFunc, RunsExactlyOnce) {
  std::atomic<int> runs{0};
  rt::run([&] {
    auto ran = rt::make_chan<std::uint64_t>(1);
    rt::timer t = rt::after_func(1ms, [&, ran]() mutable {
      runs.fetch_add(1);
      ran.send(rt::this_fiber::id());
    });
    EXPECT_FALSE(t.c());  // nil
    auto id = ran.recv();
    ASSERT_TRUE(id);
    EXPECT_NE(*id, rt::this_fiber::id());
    EXPECT_FALSE(t.stop());
    let_time_pass(5ms);
  });
  EXPECT_EQ(runs.load(), 1);
}

// stop() true exactly when fn was kept from starting, racing the fire (1..8 workers); a reset
// after the run arms it again (Go runs f once more).
TEST(AfterFunc, StopPreventsItExactlyWhenTrue) {
  for (unsigned workers : {1u, 2u, 4u, 8u}) {
    const int rounds = 300 / kSlow;
    std::vector<std::atomic<int>> ran(rounds);
    int stopped_count = 0;
    rt::run(
        [&] {
          std::mt19937 rng(3);
          std::vector<bool> stopped(rounds);
          for (int i = 0; i < rounds; ++i) {
            rt::timer t = rt::after_func(std::chrono::microseconds(rng() % 20),
                                         [&ran, i] { ran[i].fetch_add(1); });
            for (unsigned k = rng() % 8; k > 0; --k) rt::yield();
            stopped[i] = t.stop();
            if (!stopped[i]) wait_for([&] { return ran[i].load() == 1; });
            stopped_count += stopped[i];
          }
          let_time_pass(2ms);
          for (int i = 0; i < rounds; ++i) EXPECT_EQ(ran[i].load(), stopped[i] ? 0 : 1) << i;
          std::atomic<int> again{0};
          rt::timer t = rt::after_func(0ns, [&again] { again.fetch_add(1); });
          wait_for([&] { return again.load() == 1; });
          EXPECT_FALSE(t.reset(0ns));
          wait_for([&] { return again.load() == 2; });
          rt::timer never = rt::after_func(1h, [&again] { again.fetch_add(100); });
          EXPECT_TRUE(never.stop());
        },
        with_workers(workers));
  }
}

// A ticker's ticks come in order; a receiver slower than the ticker finds one tick buffered, not
// a backlog (the others were dropped), and the ticker keeps ticking (its fire never blocked).
TEST(Ticker, TicksInOrderAndDropsForSlowReceivers) {
  rt::run([] {
    rt::ticker tk(1ms);
    auto c = tk.c();
    EXPECT_EQ(c.cap(), 1u);
    steady::time_point prev{};
    for (int i = 0; i < 5; ++i) {
      auto v = c.recv();
      ASSERT_TRUE(v);
      EXPECT_GT(*v, prev);
      prev = *v;
    }
    let_time_pass(20ms);  // ~20 ticks due; room for one
    EXPECT_EQ(c.len(), 1u);
    auto buffered = c.recv();
    ASSERT_TRUE(buffered);
    EXPECT_GT(*buffered, prev);
    auto next = c.recv();  // still ticking
    ASSERT_TRUE(next);
    EXPECT_GT(*next, *buffered);
    tk.stop();
    EXPECT_FALSE(c.try_recv());
  });
}

// stop() and reset() racing the ticks and a receiver: after stop() nothing more arrives; after
// reset() ticks resume, none older than the reset.
TEST(Ticker, StopAndResetRaceTicks) {
  for (unsigned workers : {1u, 2u, 4u, 8u}) {
    rt::run(
        [] {
          std::mt19937 rng(5);
          const int rounds = 200 / kSlow;
          for (int i = 0; i < rounds; ++i) {
            rt::ticker tk(std::chrono::microseconds(1 + rng() % 20));
            receiver r;
            r.start(tk.c());
            for (unsigned k = rng() % 16; k > 0; --k) rt::yield();
            const auto before = steady::now();
            tk.reset(std::chrono::microseconds(1 + rng() % 20));
            r.enter(1, before);
            wait_for([&] { return r.got[1].load() > 0; });  // ticking again, nothing stale
            tk.stop();
            r.enter(2, steady::time_point::max());  // nothing may arrive now
            let_time_pass(100us);
            r.stop();
            EXPECT_EQ(r.got[2].load(), 0) << "a tick after stop() returned";
            EXPECT_FALSE(tk.c().try_recv());
          }
        },
        with_workers(workers));
  }
}

// Destroying a ticker stops it: a copy of its channel stays empty afterwards, and its state is
// freed. A move keeps it ticking under its new owner.
TEST(Ticker, DestructorStopsIt) {
  rt::run([] {
    const long base = rt::detail::timer_states_alive();
    rt::recv_chan<steady::time_point> c;
    {
      rt::ticker tk(1ms);
      c = tk.c();
      EXPECT_TRUE(c.recv());
      rt::ticker moved(std::move(tk));
      EXPECT_FALSE(tk.c());
      tk.stop();  // moved from: nothing
      EXPECT_TRUE(c.recv());
      rt::ticker other(1h);
      other = std::move(moved);  // stops `other`'s own ticker, takes this one
      EXPECT_TRUE(c.recv());
    }
    EXPECT_EQ(rt::detail::timer_states_alive(), base);
    let_time_pass(10ms);
    EXPECT_FALSE(c.try_recv());
  });
}

// A stopped ticker starts again on reset; a non-positive interval throws.
TEST(Ticker, ResetRestartsAndNonPositiveIntervalThrows) {
  rt::run([] {
    rt::ticker tk(1h);
    tk.stop();
    tk.reset(1ms);
    EXPECT_TRUE(tk.c().recv());
    EXPECT_TRUE(tk.c().recv());
    expect_throw_naming([&] { tk.reset(0ns); }, "rt::ticker::reset: non-positive interval");
    expect_throw_naming([] { rt::ticker t(0ns); }, "rt::ticker: non-positive interval");
    expect_throw_naming([] { rt::ticker t(-1ms); }, "rt::ticker: non-positive interval");
    rt::ticker moved(std::move(tk));
    expect_throw_naming([&] { tk.reset(1ms); }, "rt::ticker::reset");
  });
}

// rt::tick: ticks until its channel is dropped, then the ticker frees itself (its state count
// goes back to where it was); d <= 0 gives the nil channel.
TEST(Tick, StopsByItselfOnceTheChannelIsDropped) {
  rt::run([] {
    EXPECT_FALSE(rt::tick(0ns));
    EXPECT_FALSE(rt::tick(-1ms));
    const long base = rt::detail::timer_states_alive();
    {
      auto c = rt::tick(1ms);
      auto copy = c;
      EXPECT_TRUE(c.recv());
      EXPECT_TRUE(copy.recv());
      EXPECT_EQ(rt::detail::timer_states_alive(), base + 1);
    }
    // Freed at its next tick: wait for that, however late it comes.
    wait_for([&] {
      rt::sleep_for(1ms);
      return rt::detail::timer_states_alive() == base;
    });
  });
}

// A plain thread inside rt::run: timers, after_func, tickers and tick work (they arm on a
// worker's heap), stop and reset too.
TEST(Timer, PlainThreadInsideRun) {
  for (unsigned workers : {1u, 2u}) {
    rt::run(
        [] {
          auto finished = rt::make_chan<int>(1);
          std::thread th([finished]() mutable {
            rt::timer t(1ms);
            EXPECT_TRUE(t.c().recv());
            EXPECT_FALSE(t.stop());
            EXPECT_FALSE(t.reset(1ms));
            EXPECT_TRUE(t.c().recv());
            rt::timer s(1h);
            EXPECT_TRUE(s.stop());
            auto ran = rt::make_chan<int>(1);
            rt::timer f = rt::after_func(1ms, [ran]() mutable { ran.send(1); });
            EXPECT_TRUE(ran.recv());
            rt::ticker tk(1ms);
            EXPECT_TRUE(tk.c().recv());
            tk.reset(2ms);
            EXPECT_TRUE(tk.c().recv());
            tk.stop();
            EXPECT_FALSE(tk.c().try_recv());
            EXPECT_TRUE(rt::tick(1ms).recv());
            rt::this_fiber::sleep_for(1ms);  // a plain thread: std::this_thread's sleep
            finished.send(0);
          });
          finished.recv();  // parks main: a join() would hold the worker the timers need
          th.join();
        },
        with_workers(workers));
  }
}

// Outside rt::run arming throws, naming the entry point; stop() works anywhere; a timer left
// armed when rt::run returns was dropped: it never fires, and a handle kept past rt::run finds
// it disarmed.
TEST(Timer, OutsideRunAndAfterShutdown) {
  expect_throw_naming([] { rt::timer t(1ms); }, "rt::timer");
  expect_throw_naming([] { rt::after_func(1ms, [] {}); }, "rt::after_func");
  expect_throw_naming([] { rt::ticker t(1ms); }, "rt::ticker");
  expect_throw_naming([] { (void)rt::tick(1ms); }, "rt::tick");
  std::atomic<int> ran{0};
  rt::timer kept;
  rt::recv_chan<steady::time_point> ticks;
  rt::run([&] {
    kept = rt::timer(1h);
    rt::after_func(1h, [&ran] { ran = 1; });  // dropped, not run, not leaked
    (void)rt::tick(1h);                       // nobody holds its channel: freed at shutdown
    ticks = rt::tick(1h);
  });
  EXPECT_EQ(ran.load(), 0);
  EXPECT_FALSE(kept.stop());  // dropped at shutdown: nothing armed to stop
  expect_throw_naming([&] { kept.reset(1ms); }, "rt::timer::reset");
  EXPECT_FALSE(ticks.try_recv());
  EXPECT_EQ(rt::detail::timer_states_alive(), 1);  // `kept`'s, still held here
  kept = rt::timer();
  EXPECT_EQ(rt::detail::timer_states_alive(), 0);
}

// rt::this_fiber::sleep_for / sleep_until are rt::sleep_for / rt::sleep_until.
TEST(ThisFiber, SleepAliases) {
  rt::run([] {
    const auto t0 = steady::now();
    rt::this_fiber::sleep_for(1ms);
    EXPECT_GE(steady::now(), t0 + 1ms);
    rt::this_fiber::sleep_until(t0 + 2ms);
    EXPECT_GE(steady::now(), t0 + 2ms);
  });
}
