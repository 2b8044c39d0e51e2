// tests/run_test.cpp — rt::run's life cycle, as a Go program's: it returns main's result (0 for
// void), returns as soon as main returns even with fibers still parked, runnable or never
// started — and then every such fiber is abandoned as Go abandons goroutines: no more of its
// code runs, its frames are not unwound (their destructors do not run), its callable is
// destroyed (captured objects released) — and it can be called again, many times, from any
// thread, with a fresh pool each time. (tests/shutdown_test.cpp has the cases of issue 9.)
#include <gtest/gtest.h>
#include <rt/csp.hpp>

#include <array>
#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "test_support.hpp"

namespace {

using rt_test::lifetime_counter;
using rt_test::tracked;
using rt_test::with_workers;

TEST(Run, ReturnsMainResult) {
  EXPECT_EQ(rt::run([] { return 42; }), 42);
  EXPECT_EQ(rt::run([] {}), 0);
  EXPECT_EQ(rt::run([] { return 0; }), 0);
  EXPECT_EQ(rt::run([]() -> short { return -3; }), -3);
  EXPECT_EQ(rt::run([]() -> long { return 7; }), 7);
}

TEST(Run, AcceptsLvalueAndMutableCallables) {
  int calls = 0;
  auto main_fn = [&calls, n = 0]() mutable {
    ++n;
    ++calls;
    return n;
  };
  EXPECT_EQ(rt::run(main_fn), 1);
  EXPECT_EQ(calls, 1);
  std::function<int()> f = [] { return 11; };
  EXPECT_EQ(rt::run(f), 11);
}

TEST(Run, WritesOfMainAreVisibleAfterReturn) {
  std::string out;
  std::vector<int> v;
  rt::run(
      [&] {
        out = "written in main";
        rt::wait_group wg;
        wg.add(100);
        std::mutex mu;
        for (int i = 0; i < 100; ++i) {
          rt::go([&, i] {
            {
              std::lock_guard lk(mu);  // a std::mutex is never held across a switch point
              v.push_back(i);
            }
            wg.done();
          });
        }
        wg.wait();
      },
      with_workers(4));
  EXPECT_EQ(out, "written in main");
  EXPECT_EQ(v.size(), 100u);
}

void run_some_fibers(unsigned workers, int n, std::atomic<long>& total) {
  rt_test::run_yielding_fibers(with_workers(workers), n, total);
}

TEST(Run, TwiceInOneProcess) {
  std::atomic<long> total{0};
  const int n = static_cast<int>(rt_test::scaled(1000, 200));
  run_some_fibers(2, n, total);
  run_some_fibers(2, n, total);
  EXPECT_EQ(total.load(), 2 * n);
}

TEST(Run, ManyTimesWithDifferentWorkerCounts) {
  std::atomic<long> total{0};
  unsigned counts[] = {1, 2, 4, 8, 1};
  const int n = static_cast<int>(rt_test::scaled(500, 100));
  for (unsigned w : counts) run_some_fibers(w, n, total);
  EXPECT_EQ(total.load(), 5 * n);
  for (int i = 0; i < 20; ++i) EXPECT_EQ(rt::run([i] { return i; }, with_workers(2)), i);
}

TEST(Run, MainFiberIsOneEveryTime) {
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(rt::run([] { return static_cast<int>(rt::this_fiber::id()); }), 1);
  }
}

TEST(Run, SequentialRunsFromDifferentThreads) {
  std::atomic<long> total{0};
  for (int i = 0; i < 4; ++i) std::thread([&] { run_some_fibers(2, 100, total); }).join();
  EXPECT_EQ(total.load(), 400);
}

// Fibers parked forever on a wait_group nobody releases. The wait_group must outlive run()
// (destroying a sync object that fibers wait on is undefined), so it lives on the heap here.
// (These tests once pinned the unwinding of leftovers; since issue 9 they are abandoned.)
TEST(RunShutdown, ParkedFibersAreAbandoned) {
  constexpr int N = 200;
  lifetime_counter captured, locals;
  auto never = std::make_unique<rt::wait_group>();
  never->add(1);
  std::atomic<int> started{0}, resumed{0};
  rt::run(
      [&] {
        rt::wait_group all_started;
        all_started.add(N);
        for (int i = 0; i < N; ++i) {
          rt::go([&, w = never.get(), t = tracked(captured)] {
            tracked local(locals);  // abandoned with the frame: never destroyed
            started.fetch_add(1);
            all_started.done();
            w->wait();
            resumed.fetch_add(1);  // never reached
          });
        }
        all_started.wait();
      },
      with_workers(2));
  EXPECT_EQ(started.load(), N);
  EXPECT_EQ(resumed.load(), 0) << "a leftover fiber ran on past its switch point";
  EXPECT_EQ(captured.live(), 0) << "captured objects of leftover fibers were not destroyed";
  EXPECT_EQ(locals.live(), N) << "a leftover fiber's frame was unwound";
}

// Fibers that are runnable forever (yielding in a loop) do not keep run() running.
TEST(RunShutdown, YieldingFibersAreAbandoned) {
  constexpr int N = 64;
  lifetime_counter captured, locals;
  std::atomic<int> started{0};
  rt::run(
      [&] {
        rt::wait_group all_started;
        all_started.add(N);
        for (int i = 0; i < N; ++i) {
          rt::go([&, t = tracked(captured)] {
            tracked local(locals);
            started.fetch_add(1);
            all_started.done();
            for (;;) rt::yield();
          });
        }
        all_started.wait();
      },
      with_workers(3));
  EXPECT_EQ(started.load(), N);
  EXPECT_EQ(captured.live(), 0);
  EXPECT_EQ(locals.live(), N);
}

// Fibers spawned just before main returns may never run: their callables are destroyed anyway.
TEST(RunShutdown, NeverStartedFibersAreDestroyed) {
  constexpr int N = 1000;
  lifetime_counter captured, args;
  std::atomic<int> ran{0};
  rt::run(
      [&] {
        for (int i = 0; i < N; ++i) {
          rt::go([&ran, t = tracked(captured)](tracked) { ran.fetch_add(1); }, tracked(args));
        }
        // The big callables go to the heap: check those are freed too (ASan would flag a leak).
        std::array<char, 256> big{};
        for (int i = 0; i < N; ++i) {
          rt::go([&ran, big, t = tracked(captured)] { ran.fetch_add(1 + big[0]); });
        }
      },
      with_workers(1));
  EXPECT_LE(ran.load(), 2 * N);
  EXPECT_EQ(captured.live(), 0);
  EXPECT_EQ(args.live(), 0);
}

// All three kinds at once, over several runs: only the abandoned frames' objects remain.
TEST(RunShutdown, RepeatedRunsWithLeftovers) {
  lifetime_counter c;
  auto never = std::make_unique<rt::wait_group>();
  never->add(1);
  for (int round = 0; round < 5; ++round) {
    rt::run(
        [&] {
          rt::wait_group started;
          started.add(30);
          for (int i = 0; i < 10; ++i) {
            rt::go([&, w = never.get(), t = tracked(c)] {
              started.done();
              w->wait();
            });
            rt::go([&, t = tracked(c)] {
              started.done();
              for (;;) rt::yield();
            });
            rt::go([&, t = tracked(c)] {
              tracked local(c);  // abandoned with the frame
              started.done();
              rt::wait_group inner;  // blocked on a wait_group living in its own frame
              inner.add(1);
              inner.wait();
            });
          }
          started.wait();
          for (int i = 0; i < 10; ++i) rt::go([t = tracked(c)] { rt::yield(); });
        },
        with_workers(round % 2 + 1));
    EXPECT_EQ(c.live(), 10 * (round + 1)) << "round " << round;
  }
}

// No code of a leftover fiber runs at shutdown: not the destructors of its frames, not the rest
// of a fiber whose wakeup raced with main's return. (They once ran while unwinding, and could
// spawn fibers and wake others from there.)
TEST(RunShutdown, LeftoverDestructorsDoNotRun) {
  lifetime_counter c;
  auto never = std::make_unique<rt::wait_group>();
  never->add(1);
  auto other = std::make_unique<rt::wait_group>();
  other->add(1);
  std::atomic<int> destructor_ran{0}, woken_resumed{0};

  struct on_destroy {
    std::atomic<int>* ran;
    ~on_destroy() { ran->fetch_add(1); }
  };
  rt::run(
      [&] {
        rt::wait_group started;
        started.add(2);
        rt::go([&, t = tracked(c)] {
          started.done();
          other->wait();
          woken_resumed.fetch_add(1);
        });
        rt::go([&] {
          on_destroy d{&destructor_ran};
          started.done();
          never->wait();
        });
        started.wait();
      },
      with_workers(2));
  EXPECT_EQ(c.live(), 0);
  EXPECT_EQ(destructor_ran.load(), 0) << "a leftover fiber's destructor ran at shutdown";
  EXPECT_EQ(woken_resumed.load(), 0);
  // The wait_group the leftover waited on works on (its waiter was unlinked).
  other->done();
  // And the next run is unaffected.
  EXPECT_EQ(rt::run([] { return 1; }, with_workers(2)), 1);
}

// A fiber that catches everything around a switch point cannot stop run() from returning:
// nothing is thrown into it.
TEST(RunShutdown, FiberCatchingEverythingDoesNotHangRun) {
  std::atomic<int> caught{0};
  rt::run(
      [&] {
        rt::wait_group started;
        started.add(1);
        rt::go([&] {
          started.done();
          for (;;) {
            try {
              rt::yield();
            } catch (...) {
              caught.fetch_add(1);
            }
          }
        });
        started.wait();
      },
      with_workers(1));
  EXPECT_EQ(caught.load(), 0);
  EXPECT_EQ(rt::run([] { return 2; }, with_workers(1)), 2);
}

// The captured objects of leftover fibers are destroyed before run() returns, so main's caller
// may free what they refer to.
TEST(RunShutdown, LeftoversDestroyedBeforeRunReturns) {
  auto flag = std::make_unique<std::atomic<bool>>(false);
  struct sets_flag {
    std::atomic<bool>* f;
    explicit sets_flag(std::atomic<bool>* p) : f(p) {}
    sets_flag(sets_flag&& o) noexcept : f(std::exchange(o.f, nullptr)) {}
    ~sets_flag() {
      if (f) f->store(true);
    }
  };
  auto never = std::make_unique<rt::wait_group>();
  never->add(1);
  rt::run([&] {
    rt::wait_group started;
    started.add(1);
    rt::go([&, s = sets_flag(flag.get())] {
      started.done();
      never->wait();
    });
    started.wait();
  });
  EXPECT_TRUE(flag->load());
}

}  // namespace
