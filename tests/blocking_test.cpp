// blocking_test — rt::blocking (rt/blocking.hpp): a blocking call runs on a bounded pool of extra
// threads while its fiber is parked and the worker runs other fibers.
//
// What is checked: results (values, move-only, references, void) and exceptions come back to the
// caller; the call runs on another thread, but inline on a plain thread; the pool never runs more
// than max_blocking_threads calls at once and does reach that many (a barrier that needs them
// all); RT_BLOCKING_THREADS and its errors; a worker keeps running fibers while a call blocks;
// rt::stats() shows the pool; shutdown drops queued calls, waits for the running one and never
// resumes its fiber; a fiber waiting on a call is not reported as deadlocked, while a real
// deadlock still is with idle pool threads alive.
// No sleep synchronises anything: waits are on latches, barriers, promises, or a polled
// condition that must become true.
#include <rt/csp.hpp>

#include <dirent.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <barrier>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <future>
#include <latch>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "test_support.hpp"

namespace {

using rt_test::with_workers;

rt::options with_bound(unsigned workers, unsigned bound) {
  rt::options o = with_workers(workers);
  o.max_blocking_threads = bound;
  return o;
}

struct custom_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

int g_target = 0;

// Records how many calls run inside fn at once, and the most seen.
struct concurrency_meter {
  std::atomic<int> now{0};
  std::atomic<int> peak{0};
  void enter() {
    const int n = now.fetch_add(1) + 1;
    int p = peak.load();
    while (n > p && !peak.compare_exchange_weak(p, n)) {
    }
  }
  void leave() { now.fetch_sub(1); }
};

// The state letter (R, S, D...) of thread `tid` of this process, or '?'.
char thread_state(const std::string& tid) {
  std::ifstream in("/proc/self/task/" + tid + "/stat");
  std::string s;
  std::getline(in, s);
  const auto p = s.rfind(')');
  return p == std::string::npos || p + 2 >= s.size() ? '?' : s[p + 2];
}

// True when every thread of this process except the caller sleeps (state S).
bool all_other_threads_asleep() {
  const std::string self = std::to_string(::gettid());
  DIR* d = ::opendir("/proc/self/task");
  if (!d) return false;
  bool asleep = true;
  while (dirent* e = ::readdir(d)) {
    const std::string tid = e->d_name;
    if (tid == "." || tid == ".." || tid == self) continue;
    if (thread_state(tid) != 'S') {
      asleep = false;
      break;
    }
  }
  ::closedir(d);
  return asleep;
}

}  // namespace

// ---- results and exceptions ------------------------------------------------------------------

TEST(Blocking, ReturnsValuesOfEveryKind) {
  rt::run(
      [] {
        const std::string s = rt::blocking([] { return std::string(1000, 'x'); });
        EXPECT_EQ(s, std::string(1000, 'x'));

        std::unique_ptr<int> p = rt::blocking([] { return std::make_unique<int>(42); });
        ASSERT_TRUE(p);
        EXPECT_EQ(*p, 42);

        int& r = rt::blocking([]() -> int& { return g_target; });
        EXPECT_EQ(&r, &g_target);
        const int& cr = rt::blocking([]() -> const int& { return g_target; });
        EXPECT_EQ(&cr, &g_target);
        int&& rr = rt::blocking([]() -> int&& { return std::move(g_target); });
        EXPECT_EQ(&rr, &g_target);

        int calls = 0;
        rt::blocking([&] { ++calls; });  // void
        EXPECT_EQ(calls, 1);

        // A callable passed as an lvalue, and a mutable one.
        auto twice = [n = 0]() mutable { return ++n * 2; };
        EXPECT_EQ(rt::blocking(twice), 2);
        EXPECT_EQ(rt::blocking(twice), 4);
      },
      with_workers(2));
}

TEST(Blocking, RethrowsWhatFnThrew) {
  rt::run(
      [] {
        EXPECT_EQ(rt_test::what_of<custom_error>([] {
                    (void)rt::blocking([]() -> int { throw custom_error("disk on fire"); });
                  }),
                  "disk on fire");
        // A void call, and the pool still works afterwards.
        EXPECT_THROW(rt::blocking([] { throw std::out_of_range("x"); }), std::out_of_range);
        EXPECT_EQ(rt::blocking([] { return 7; }), 7);
      },
      with_workers(2));
}

TEST(Blocking, RunsOnAnotherThreadFromAFiber) {
  rt::run(
      [] {
        const std::thread::id worker = rt_test::current_thread();
        const std::thread::id pool = rt::blocking([] { return rt_test::current_thread(); });
        EXPECT_NE(pool, worker);
        // An rt::blocking inside fn (a plain thread) runs inline, on the pool thread.
        const std::thread::id nested =
            rt::blocking([] { return rt::blocking([] { return rt_test::current_thread(); }); });
        EXPECT_NE(nested, worker);
      },
      with_workers(1));
}

TEST(Blocking, PlainThreadRunsInline) {
  // Outside rt::run.
  const std::thread::id me = rt_test::current_thread();
  EXPECT_EQ(rt::blocking([] { return rt_test::current_thread(); }), me);
  EXPECT_THROW(rt::blocking([] { throw custom_error("x"); }), custom_error);
  // On a plain thread while rt::run runs: still inline, and no pool thread is started.
  rt::run(
      [] {
        std::thread::id caller, ran;
        std::thread t([&] {
          caller = rt_test::current_thread();
          ran = rt::blocking([] { return rt_test::current_thread(); });
        });
        rt::blocking([&] { t.join(); });  // joining blocks: not on the worker
        EXPECT_EQ(ran, caller);
      },
      with_workers(1));
}

// ---- the worker keeps running fibers ---------------------------------------------------------

// One worker: fn waits for a promise that only another fiber fulfils, after a channel hand-off
// between two more fibers. If rt::blocking ran fn on the worker, none of them could run: a hang.
TEST(Blocking, WorkerRunsOtherFibersWhileACallBlocks) {
  rt::run(
      [] {
        std::promise<int> promise;
        std::future<int> future = promise.get_future();
        auto ch = rt::make_chan<int>();
        rt::wait_group wg;
        wg.add(2);
        rt::go([&] {
          promise.set_value(*ch.recv() + 1);
          wg.done();
        });
        rt::go([&] {
          ch.send(41);
          wg.done();
        });
        EXPECT_EQ(rt::blocking([&] { return future.get(); }), 42);
        wg.wait();
      },
      with_workers(1));
}

// ---- the bound -------------------------------------------------------------------------------

class BlockingWorkers : public ::testing::TestWithParam<unsigned> {};

INSTANTIATE_TEST_SUITE_P(Workers, BlockingWorkers, ::testing::Values(1u, 2u, 4u, 8u),
                         [](const auto& info) { return "W" + std::to_string(info.param); });

// Many fibers call at once with a bound of 4: every call completes with its own result, and no
// more than 4 ever run at once.
TEST_P(BlockingWorkers, ManyCallsNeverExceedTheBound) {
  const int n = static_cast<int>(rt_test::scaled(1000, 200));
  concurrency_meter meter;
  std::atomic<long> sum{0};
  std::atomic<unsigned> max_threads{0};
  rt::run(
      [&] {
        rt::wait_group wg;
        wg.add(n);
        for (int i = 0; i < n; ++i) {
          rt::go([&, i] {
            const int r = rt::blocking([&meter, i] {
              meter.enter();
              for (int k = 0; k < 3; ++k) std::this_thread::yield();  // let others overlap
              meter.leave();
              return i;
            });
            sum.fetch_add(r);
            const unsigned t = rt::stats().blocking_threads;
            unsigned m = max_threads.load();
            while (t > m && !max_threads.compare_exchange_weak(m, t)) {
            }
            wg.done();
          });
        }
        wg.wait();
        EXPECT_EQ(rt::stats().blocking_queued, 0u);
      },
      with_bound(GetParam(), 4));
  EXPECT_EQ(sum.load(), static_cast<long>(n) * (n - 1) / 2);
  EXPECT_LE(meter.peak.load(), 4);
  EXPECT_GE(meter.peak.load(), 1);
  EXPECT_LE(max_threads.load(), 4u);
}

// The bound is reached: calls that wait on a barrier of 4 all run at once (two rounds of 4), and
// never a fifth beside them.
TEST_P(BlockingWorkers, TheBoundIsReached) {
  concurrency_meter meter;
  std::barrier sync(4);
  rt::run(
      [&] {
        rt::wait_group wg;
        wg.add(8);
        for (int i = 0; i < 8; ++i) {
          rt::go([&] {
            rt::blocking([&] {
              meter.enter();
              sync.arrive_and_wait();
              meter.leave();
            });
            wg.done();
          });
        }
        wg.wait();
      },
      with_bound(GetParam(), 4));
  EXPECT_EQ(meter.peak.load(), 4);
}

TEST(Blocking, EnvironmentSetsTheBound) {
  rt_test::env_guard env("RT_BLOCKING_THREADS", "2");
  concurrency_meter meter;
  std::barrier sync(2);
  rt::run(
      [&] {
        rt::wait_group wg;
        wg.add(6);
        for (int i = 0; i < 6; ++i) {
          rt::go([&] {
            rt::blocking([&] {
              meter.enter();
              sync.arrive_and_wait();
              meter.leave();
            });
            wg.done();
          });
        }
        wg.wait();
      },
      with_workers(2));
  EXPECT_EQ(meter.peak.load(), 2);
  // options::max_blocking_threads wins over the environment.
  std::barrier sync3(3);
  rt::run(
      [&] {
        rt::wait_group wg;
        wg.add(3);
        for (int i = 0; i < 3; ++i) {
          rt::go([&] {
            rt::blocking([&] { sync3.arrive_and_wait(); });
            wg.done();
          });
        }
        wg.wait();
      },
      with_bound(2, 3));
}

TEST(Blocking, BadBoundsAreClearErrors) {
  for (const char* bad : {"0", "abc", "10001", "-1", "4x"}) {
    rt_test::env_guard env("RT_BLOCKING_THREADS", bad);
    const std::string what = rt_test::what_of<rt::runtime_error>([] { rt::run([] {}); });
    EXPECT_NE(what.find(std::string("RT_BLOCKING_THREADS=\"") + bad + "\""), std::string::npos)
        << what;
    EXPECT_NE(what.find("from 1 to 10000"), std::string::npos) << what;
  }
  const std::string what =
      rt_test::what_of<rt::runtime_error>([] { rt::run([] {}, with_bound(1, 10001)); });
  EXPECT_NE(what.find("rt::options::max_blocking_threads is 10001"), std::string::npos) << what;
}

// ---- stats -----------------------------------------------------------------------------------

// With a bound of 1, one call held on a latch and two queued behind it: rt::stats() shows one
// pool thread, two queued calls and three fibers parked on blocking; none before the first call.
TEST(Blocking, StatsShowThePool) {
  rt::run(
      [] {
        EXPECT_EQ(rt::stats().blocking_threads, 0u);  // lazy: no thread before the first call
        std::latch release(1);
        std::atomic<bool> started{false};
        std::atomic<int> done{0};
        rt::wait_group wg;
        wg.add(3);
        rt::go([&] {
          rt::blocking([&] {
            started = true;
            release.wait();
          });
          done.fetch_add(1);
          wg.done();
        });
        while (!started.load()) rt::yield();  // it holds the one thread before the others queue
        for (int i = 0; i < 2; ++i) {
          rt::go([&] {
            rt::blocking([] {});
            done.fetch_add(1);
            wg.done();
          });
        }
        rt::runtime_stats s;
        do {
          rt::yield();
          s = rt::stats();
        } while (s.blocking_queued != 2 || s.parked_by.blocking != 3);
        EXPECT_EQ(s.blocking_threads, 1u);
        EXPECT_EQ(done.load(), 0);
        EXPECT_NE(rt::to_string(s).find("blocking_threads=1 blocking_queued=2"), std::string::npos);
        release.count_down();
        wg.wait();
        EXPECT_EQ(done.load(), 3);
        EXPECT_EQ(rt::stats().blocking_queued, 0u);
      },
      with_bound(2, 1));
}

// ---- shutdown --------------------------------------------------------------------------------

// main returns while fiber A's call runs (held on a latch) and ten more calls are queued behind
// it (bound 1). The queued calls never run; rt::run waits for A's call to return (it writes its
// result into A's abandoned frame) and does not resume A; a later rt::run has a fresh pool.
// The helper thread releases A's call only once the pool has dropped the queue while the runtime
// is still running — i.e. while rt::run is waiting for the call — so if rt::run did not wait, it
// would return with the call unfinished.
TEST(BlockingShutdown, QueuedCallsNeverRunTheRunningOneIsWaitedFor) {
  constexpr int kQueued = 10;
  std::latch release(1);
  std::atomic<bool> started{false}, finished{false}, a_resumed{false}, main_returning{false};
  std::atomic<bool> released{false};
  std::atomic<int> queued_ran{0}, queued_resumed{0};
  std::thread helper([&] {
    while (!main_returning.load()) std::this_thread::yield();
    for (;;) {
      const rt::runtime_stats s = rt::stats();
      if (!s.running) return;  // rt::run returned without waiting: the test fails below
      if (s.blocking_queued == 0) break;
      std::this_thread::yield();
    }
    released = true;
    release.count_down();
  });
  rt::run(
      [&] {
        rt::go([&] {
          std::string r = rt::blocking([&] {
            started = true;
            release.wait();
            finished = true;
            return std::string(4096, 'r');  // written into the abandoned fiber's frame
          });
          a_resumed = true;
        });
        while (!started.load()) rt::yield();
        for (int i = 0; i < kQueued; ++i) {
          rt::go([&] {
            rt::blocking([&] { queued_ran.fetch_add(1); });
            queued_resumed.fetch_add(1);
          });
        }
        while (rt::stats().blocking_queued != kQueued) rt::yield();
        main_returning = true;
      },
      with_bound(2, 1));
  const bool finished_at_return = finished.load();
  if (!released.load()) release.count_down();  // only when the test fails: let fn end
  helper.join();
  EXPECT_TRUE(finished_at_return) << "rt::run returned while a blocking call was running";
  EXPECT_TRUE(released.load());
  EXPECT_EQ(queued_ran.load(), 0);
  EXPECT_EQ(queued_resumed.load(), 0);
  EXPECT_FALSE(a_resumed.load());

  // A fresh pool: no thread until the first call, and calls work.
  rt::run(
      [] {
        EXPECT_EQ(rt::stats().blocking_threads, 0u);
        EXPECT_EQ(rt::blocking([] { return 5; }), 5);
        EXPECT_EQ(rt::stats().blocking_threads, 1u);
      },
      with_workers(2));
}

// ---- deadlock detection ----------------------------------------------------------------------

class BlockingDeadlock : public ::testing::TestWithParam<unsigned> {
 protected:
  void SetUp() override { GTEST_FLAG_SET(death_test_style, "threadsafe"); }
};

INSTANTIATE_TEST_SUITE_P(Workers, BlockingDeadlock, ::testing::Values(1u, 2u),
                         [](const auto& info) { return "W" + std::to_string(info.param); });

// The only fiber waits in rt::blocking on a call that returns only once every other thread of
// the process sleeps — the workers asleep on the idle path, after the deadlock check has run.
// That check must see the call in flight: a report would end the child with status 2.
TEST_P(BlockingDeadlock, AFiberWaitingOnACallIsNotDeadlocked) {
  const unsigned workers = GetParam();
  EXPECT_EXIT(
      {
        const int rc = rt::run(
            [] {
              rt::blocking([] {
                while (!all_other_threads_asleep()) std::this_thread::yield();
              });
              std::printf("call returned\n");
            },
            with_workers(workers));
        std::fflush(stdout);
        std::_Exit(rc);
      },
      ::testing::ExitedWithCode(0), "");
}

// After a call, its pool thread stays alive (idle, for its keep-alive). It is the runtime's own
// thread: a real deadlock is still reported at once, not after the thread has exited.
TEST_P(BlockingDeadlock, RealDeadlockIsReportedWhilePoolThreadsIdle) {
  const unsigned workers = GetParam();
  EXPECT_EXIT(
      {
        rt::run(
            [] {
              rt::blocking([] {});
              auto ch = rt::make_chan<int>();
              ch.recv();
            },
            with_workers(workers));
        std::_Exit(0);
      },
      ::testing::ExitedWithCode(2),
      "fatal error: all goroutines are asleep - deadlock!\n\nfiber 1 \\[chan receive");
}

// ---- keep-alive (heavy: it waits out the 10 s keep-alive) ------------------------------------

// A pool thread with no call to run for 10 s exits; a later call starts a fresh one (and the
// exited one is joined). Polls rt::stats() until the thread has gone — a wait for the condition,
// bounded by the test's timeout, not a sleep used as synchronisation.
TEST(BlockingHeavy, IdleThreadExitsAfterItsKeepAlive) {
  using namespace std::chrono_literals;
  rt::run(
      [] {
        const auto start = std::chrono::steady_clock::now();
        rt::blocking([] {});
        EXPECT_EQ(rt::stats().blocking_threads, 1u);
        while (rt::stats().blocking_threads != 0) rt::sleep_for(100ms);
        EXPECT_GE(std::chrono::steady_clock::now() - start, 10s);
        EXPECT_EQ(rt::blocking([] { return 3; }), 3);
        EXPECT_EQ(rt::stats().blocking_threads, 1u);
      },
      with_workers(2));
}
