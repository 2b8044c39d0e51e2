// sync_test — rt::mutex and rt::condition_variable, the fiber counterparts of std::mutex and
// std::condition_variable (Go's sync.Mutex and sync.Cond):
//   - mutex: mutual exclusion among many fibers on several workers (a plain counter, which
//     ThreadSanitizer also watches); try_lock; std::lock_guard, std::unique_lock and
//     std::scoped_lock; a fiber waiting for the lock parks instead of blocking its worker;
//     plain std::threads and fibers sharing one mutex;
//   - condition_variable: wait with a predicate; notify_one wakes exactly one waiter and
//     notify_all every waiter; wait_for/wait_until time out (cv_status::timeout, or false with a
//     predicate) and return no_timeout when notified first; the same from a plain thread.
// FIFO hand-off of the mutex is documented but deliberately not pinned down here.
// Ordering comes from channels and handshakes; the only sleeps are the timeouts under test.
#include <rt/csp.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;

#include "test_support.hpp"

namespace {

using rt_test::kSlow;
using rt_test::with_workers;

}  // namespace

// ---- mutex ----------------------------------------------------------------------------------

// 64 fibers increment a plain counter under the mutex. `inside` counts the holders: it must never
// exceed one. A yield inside every 16th critical section makes others find the mutex held and
// park, so the slow path and the hand-off are exercised, not just the uncontended CAS.
class MutexExclusion : public ::testing::TestWithParam<unsigned> {};

TEST_P(MutexExclusion, ManyFibersIncrementACounter) {
  constexpr int fibers = 64;
  const int per = 5000 / kSlow;
  long counter = 0;
  std::atomic<int> inside{0}, overlaps{0};
  rt::run(
      [&] {
        rt::mutex mu;
        rt::wait_group wg;
        wg.add(fibers);
        for (int f = 0; f < fibers; ++f) {
          rt::go([&] {
            for (int i = 0; i < per; ++i) {
              std::lock_guard lk(mu);
              if (inside.fetch_add(1) != 0) overlaps.fetch_add(1);
              ++counter;
              if (i % 16 == 0) rt::yield();
              inside.fetch_sub(1);
            }
            wg.done();
          });
        }
        wg.wait();
      },
      with_workers(GetParam()));
  EXPECT_EQ(overlaps.load(), 0);
  EXPECT_EQ(counter, static_cast<long>(fibers) * per);
}

INSTANTIATE_TEST_SUITE_P(Workers, MutexExclusion, ::testing::Values(1u, 2u, 4u, 8u),
                         [](const auto& info) { return std::to_string(info.param) + "workers"; });

// try_lock succeeds on a free mutex and fails on a held one, whoever holds it (one worker: the
// holder fiber takes the lock and announces it, then parks on a channel until told to unlock).
TEST(Mutex, TryLock) {
  rt::run(
      [] {
        rt::mutex mu;
        EXPECT_TRUE(mu.try_lock());
        EXPECT_FALSE(mu.try_lock()) << "rt::mutex is not recursive";
        mu.unlock();

        auto locked = rt::make_chan<int>();
        auto release = rt::make_chan<int>();
        auto released = rt::make_chan<int>();
        rt::go([&, locked, release, released]() mutable {
          mu.lock();
          locked.send(0);
          release.recv();
          mu.unlock();
          released.send(0);
        });
        locked.recv();
        EXPECT_FALSE(mu.try_lock());
        release.send(0);
        released.recv();
        EXPECT_TRUE(mu.try_lock());
        mu.unlock();
      },
      with_workers(1));
}

TEST(Mutex, WorksWithStdLockGuardUniqueLockAndScopedLock) {
  rt::run(
      [] {
        rt::mutex a, b;
        {
          std::lock_guard lk(a);
          EXPECT_FALSE(a.try_lock());
        }
        EXPECT_TRUE(a.try_lock());
        a.unlock();
        {
          std::unique_lock lk(a, std::defer_lock);
          EXPECT_FALSE(lk.owns_lock());
          lk.lock();
          EXPECT_TRUE(lk.owns_lock());
          lk.unlock();
          EXPECT_TRUE(lk.try_lock());
          std::unique_lock other(a, std::try_to_lock);
          EXPECT_FALSE(other.owns_lock());
        }
        {
          std::scoped_lock lk(a, b);
          EXPECT_FALSE(a.try_lock());
          EXPECT_FALSE(b.try_lock());
        }
        EXPECT_TRUE(a.try_lock() && b.try_lock());
        a.unlock();
        b.unlock();

        // Two groups of fibers take the pair in opposite orders: std::scoped_lock's deadlock
        // avoidance (lock one, try_lock the other, back off) must work with parking mutexes.
        long x = 0;
        rt::wait_group wg;
        for (int f = 0; f < 8; ++f) {
          wg.add(1);
          rt::go([&, f] {
            for (int i = 0; i < 500 / kSlow; ++i) {
              if (f % 2) {
                std::scoped_lock lk(a, b);
                ++x;
                if (i % 8 == 0) rt::yield();
              } else {
                std::scoped_lock lk(b, a);
                ++x;
                if (i % 8 == 0) rt::yield();
              }
            }
            wg.done();
          });
        }
        wg.wait();
        EXPECT_EQ(x, 8L * (500 / kSlow));
      },
      with_workers(4));
}

// A fiber waiting for the mutex parks: on one worker, while B waits for the mutex that A holds
// (A being parked on a channel), main still runs and can let A go. If lock() blocked the worker
// thread, nothing could run and the test would hang.
TEST(Mutex, WaitingFiberDoesNotBlockItsWorker) {
  rt::run(
      [] {
        rt::mutex mu;
        auto a_locked = rt::make_chan<int>();
        auto a_go = rt::make_chan<int>();
        auto b_trying = rt::make_chan<int>();
        auto done = rt::make_chan<int>(2);
        std::vector<char> order;
        rt::go([&, a_locked, a_go, done]() mutable {
          mu.lock();
          a_locked.send(0);
          a_go.recv();
          order.push_back('A');
          mu.unlock();
          done.send(0);
        });
        a_locked.recv();
        rt::go([&, b_trying, done]() mutable {
          b_trying.send(0);
          mu.lock();  // parks: A holds it
          order.push_back('B');
          mu.unlock();
          done.send(0);
        });
        b_trying.recv();
        order.push_back('m');  // main runs while B waits for the mutex
        a_go.send(0);
        done.recv();
        done.recv();
        EXPECT_EQ(std::string(order.begin(), order.end()), "mAB");
      },
      with_workers(1));
}

// Plain threads and fibers share one mutex: a blocked thread waits on a futex, and the mutex is
// handed between threads and fibers in both directions.
TEST(Mutex, PlainThreadsAndFibersShareAMutex) {
  long counter = 0;
  constexpr int threads = 2, fibers = 6;
  const int per = 5000 / kSlow;
  rt::run(
      [&] {
        rt::mutex mu;
        rt::wait_group wg;
        wg.add(fibers);
        for (int f = 0; f < fibers; ++f) {
          rt::go([&] {
            for (int i = 0; i < per; ++i) {
              std::lock_guard lk(mu);
              ++counter;
              if (i % 32 == 0) rt::yield();  // hold it across a switch now and then
            }
            wg.done();
          });
        }
        std::vector<std::thread> ts;
        for (int t = 0; t < threads; ++t) {
          ts.emplace_back([&] {
            for (int i = 0; i < per; ++i) {
              std::lock_guard lk(mu);
              ++counter;
            }
          });
        }
        wg.wait();
        // Joined inside rt::run: a thread's last unlock may still be finishing its wake of a
        // fiber (see chan_test's CloseFromThreadWhileRunReturns).
        for (auto& t : ts) t.join();
      },
      with_workers(2));
  EXPECT_EQ(counter, static_cast<long>(threads + fibers) * per);
}

// ---- condition_variable -----------------------------------------------------------------------

// A queue with four consumers waiting on a predicate and one producer notifying once per item:
// every item is consumed exactly once, and every consumer leaves once `closed` is set.
TEST(CondVar, WaitWithPredicate) {
  for (unsigned n : {1u, 4u}) {
    constexpr int items = 2000;
    std::vector<int> taken(items, 0);
    rt::run(
        [&] {
          rt::mutex mu;
          rt::condition_variable cv;
          std::deque<int> q;
          bool closed = false;
          rt::wait_group wg;
          for (int c = 0; c < 4; ++c) {
            wg.add(1);
            rt::go([&] {
              for (;;) {
                std::unique_lock lk(mu);
                cv.wait(lk, [&] { return !q.empty() || closed; });
                EXPECT_TRUE(lk.owns_lock());
                if (q.empty()) break;
                ++taken[q.front()];
                q.pop_front();
              }
              wg.done();
            });
          }
          for (int i = 0; i < items; ++i) {
            {
              std::lock_guard lk(mu);
              q.push_back(i);
            }
            cv.notify_one();
            if (i % 64 == 0) rt::yield();
          }
          {
            std::lock_guard lk(mu);
            closed = true;
          }
          cv.notify_all();
          wg.wait();
        },
        with_workers(n));
    for (int i = 0; i < items; ++i)
      ASSERT_EQ(taken[i], 1) << "item " << i << ", " << n << " workers";
  }
}

namespace {

// Parks `n` fibers in cv.wait (without predicate) for sure: each takes the mutex, announces
// itself on `ready` while holding it, then waits, which releases it. Once main has heard from all
// of them and then acquires the mutex itself, each has released it — inside wait(), after
// enqueueing. Each waiter, once woken, increments `woken` under the mutex and reports on `done`.
void park_waiters(int n, rt::mutex& mu, rt::condition_variable& cv, int& woken,
                  rt::chan<int> done) {
  auto ready = rt::make_chan<int>();
  for (int i = 0; i < n; ++i) {
    rt::go([&, ready, done]() mutable {
      std::unique_lock lk(mu);
      ready.send(0);
      cv.wait(lk);  // no predicate: wait() has no spurious wakeups, so returning means notified
      ++woken;
      lk.unlock();
      done.send(0);
    });
  }
  for (int i = 0; i < n; ++i) ready.recv();
  std::lock_guard lk(mu);  // every waiter is enqueued in cv now
}

}  // namespace

// notify_one wakes exactly one waiter. One worker: after the notify, main yields, which puts it
// behind every fiber that is runnable at that point; so any waiter woken by the notify has run
// (and counted itself) by the time main checks the count.
TEST(CondVar, NotifyOneWakesExactlyOne) {
  rt::run(
      [] {
        rt::mutex mu;
        rt::condition_variable cv;
        int woken = 0;
        auto done = rt::make_chan<int>(3);
        park_waiters(3, mu, cv, woken, done);
        for (int expected = 1; expected <= 3; ++expected) {
          cv.notify_one();
          done.recv();
          for (int i = 0; i < 5; ++i) rt::yield();
          std::lock_guard lk(mu);
          EXPECT_EQ(woken, expected);
          EXPECT_EQ(done.len(), 0u);
        }
        cv.notify_one();  // nobody waits: a no-op
        cv.notify_all();
      },
      with_workers(1));
}

TEST(CondVar, NotifyAllWakesAll) {
  for (unsigned n : {1u, 4u}) {
    rt::run(
        [] {
          rt::mutex mu;
          rt::condition_variable cv;
          int woken = 0;
          constexpr int waiters = 8;
          auto done = rt::make_chan<int>(waiters);
          park_waiters(waiters, mu, cv, woken, done);
          cv.notify_all();
          for (int i = 0; i < waiters; ++i) done.recv();
          std::lock_guard lk(mu);
          EXPECT_EQ(woken, waiters);
        },
        with_workers(n));
  }
}

// With no notifier, timed waits time out, no earlier than asked, with the mutex held again.
TEST(CondVar, TimedWaitsTimeOut) {
  rt::run(
      [] {
        rt::mutex mu;
        rt::condition_variable cv;
        std::unique_lock lk(mu);
        auto t0 = std::chrono::steady_clock::now();
        EXPECT_EQ(cv.wait_for(lk, 20ms), std::cv_status::timeout);
        EXPECT_GE(std::chrono::steady_clock::now() - t0, 20ms);
        EXPECT_TRUE(lk.owns_lock());
        EXPECT_FALSE(mu.try_lock());

        t0 = std::chrono::steady_clock::now();
        int pred_calls = 0;
        EXPECT_FALSE(cv.wait_for(lk, 20ms, [&] {
          ++pred_calls;
          return false;
        }));
        EXPECT_GE(std::chrono::steady_clock::now() - t0, 20ms);
        EXPECT_GE(pred_calls, 2);  // checked first, and again after the timeout
        EXPECT_TRUE(lk.owns_lock());

        const auto deadline = std::chrono::steady_clock::now() + 15ms;
        EXPECT_EQ(cv.wait_until(lk, deadline), std::cv_status::timeout);
        EXPECT_GE(std::chrono::steady_clock::now(), deadline);
        // A deadline already past times out at once.
        EXPECT_EQ(cv.wait_until(lk, std::chrono::steady_clock::now() - 1s),
                  std::cv_status::timeout);
        EXPECT_TRUE(cv.wait_for(lk, 0ms, [] { return true; }));
      },
      with_workers(1));
}

// Waiting with a unique_lock that does not hold its mutex is a clear error, and leaves the
// condition variable usable (nothing queued, its internal lock free).
TEST(CondVar, WaitWithoutTheLockIsAnError) {
  rt::run(
      [] {
        rt::mutex mu;
        rt::condition_variable cv;
        std::unique_lock lk(mu, std::defer_lock);
        auto expect_misuse = [](auto&& wait) {
          try {
            wait();
            ADD_FAILURE() << "no error";
          } catch (const rt::runtime_error& e) {
            EXPECT_NE(std::string(e.what()).find("does not hold its mutex"), std::string::npos)
                << e.what();
          }
        };
        expect_misuse([&] { cv.wait(lk); });
        expect_misuse([&] { cv.wait_for(lk, 1h); });
        EXPECT_FALSE(lk.owns_lock());
        // Still usable: a proper wait is notified.
        bool flag = false;
        rt::go([&] {
          std::lock_guard g(mu);
          flag = true;
          cv.notify_all();
        });
        lk.lock();
        cv.wait(lk, [&] { return flag; });
        EXPECT_TRUE(flag);
      },
      with_workers(1));
}

// A timed waiter notified before its deadline returns no_timeout (true with a predicate), and its
// cancelled timer does not disturb later waits.
TEST(CondVar, NotifiedBeforeTimeoutReturnsNoTimeout) {
  for (unsigned n : {1u, 2u}) {
    rt::run(
        [] {
          rt::mutex mu;
          rt::condition_variable cv;
          auto ready = rt::make_chan<int>();
          auto result = rt::make_chan<int>(2);
          bool flag = false;
          rt::go([&, ready, result]() mutable {
            std::unique_lock lk(mu);
            ready.send(0);
            const auto status = cv.wait_for(lk, 1h);
            result.send(status == std::cv_status::no_timeout ? 1 : 0);
            ready.send(0);
            const bool woke = cv.wait_for(lk, 1h, [&] { return flag; });
            lk.unlock();  // before main can return and destroy mu
            result.send(woke ? 1 : 0);
          });
          ready.recv();
          {
            std::lock_guard lk(mu);  // the waiter is inside wait_for now
          }
          cv.notify_one();
          EXPECT_EQ(result.recv(), 1);
          ready.recv();
          {
            std::lock_guard lk(mu);
            flag = true;
          }
          cv.notify_all();
          EXPECT_EQ(result.recv(), 1);
        },
        with_workers(n));
  }
}

// Timeouts racing notifications, many times: whatever wins, a predicate wait's result agrees with
// the predicate, and nothing is woken twice or lost (the run ends).
TEST(CondVar, TimeoutsRacingNotifications) {
  std::atomic<int> disagreements{0};
  rt::run(
      [&] {
        rt::mutex mu;
        rt::condition_variable cv;
        int tokens = 0;
        rt::wait_group wg;
        constexpr int waiters = 8;
        const int rounds = 200 / kSlow;
        wg.add(waiters);
        for (int w = 0; w < waiters; ++w) {
          rt::go([&] {
            for (int i = 0; i < rounds; ++i) {
              std::unique_lock lk(mu);
              const bool ok = cv.wait_for(lk, 100us, [&] { return tokens > 0; });
              if (ok != (tokens > 0)) disagreements.fetch_add(1);
              if (ok) --tokens;
            }
            wg.done();
          });
        }
        for (int i = 0; i < waiters * rounds / 2; ++i) {
          {
            std::lock_guard lk(mu);
            ++tokens;
          }
          if (i % 2) {
            cv.notify_one();
          } else {
            cv.notify_all();
          }
          if (i % 4 == 0) rt::yield();
        }
        wg.wait();
      },
      with_workers(4));
  EXPECT_EQ(disagreements.load(), 0);
}

// From a plain thread: a thread waits (with predicate) for a fiber's notification; a fiber waits
// for a thread's; a thread's timed wait times out no earlier than asked, and returns no_timeout
// when notified first.
TEST(CondVar, PlainThreadWaitsAndNotifies) {
  rt::run(
      [] {
        rt::mutex mu;
        rt::condition_variable cv;
        int stage = 0;
        std::cv_status timed_out = std::cv_status::no_timeout;
        std::chrono::steady_clock::duration waited{};
        bool notified_in_time = false;
        std::thread t([&] {
          std::unique_lock lk(mu);
          // 1: the fiber notifies the waiting thread.
          cv.wait(lk, [&] { return stage == 1; });
          // 2: the thread notifies the waiting fiber.
          stage = 2;
          lk.unlock();
          cv.notify_all();
          lk.lock();
          // 3: a timed wait nobody notifies.
          const auto t0 = std::chrono::steady_clock::now();
          timed_out = cv.wait_for(lk, 20ms);
          waited = std::chrono::steady_clock::now() - t0;
          // 4: a timed wait the fiber notifies in time.
          stage = 4;
          lk.unlock();
          cv.notify_all();
          lk.lock();
          notified_in_time = cv.wait_for(lk, 1h, [&] { return stage == 5; });
        });
        {
          std::unique_lock lk(mu);
          stage = 1;
        }
        cv.notify_all();
        {
          std::unique_lock lk(mu);
          cv.wait(lk, [&] { return stage >= 2; });  // >=: the thread may be at 4 already
        }
        {
          std::unique_lock lk(mu);
          cv.wait(lk, [&] { return stage >= 4; });
          stage = 5;
        }
        cv.notify_all();
        t.join();  // inside rt::run: see chan_test's CloseFromThreadWhileRunReturns
        EXPECT_EQ(timed_out, std::cv_status::timeout);
        EXPECT_GE(waited, 20ms);
        EXPECT_TRUE(notified_in_time);
      },
      with_workers(2));
}
