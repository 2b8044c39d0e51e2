// semaphore_test — rt::semaphore (golang.org/x/sync/semaphore):
//   - the weight held never exceeds the size (an atomic in-use counter checked inside), with
//     weights 1..4 from 64 fibers on 1, 2, 4 and 8 workers, and from plain threads and fibers;
//   - FIFO with x/sync's head-of-line rule: a waiting big request blocks smaller later ones and
//     try_acquire, even when they would fit;
//   - acquire(stop_token, n): stop before, while waiting (the waiter leaves holding nothing, and
//     the waiters behind a cancelled head are re-examined); a grant racing a stop request has
//     exactly one outcome and leaks no unit (stress, stop from fibers and plain threads);
//   - misuse: release more than held, n > size, negative weight or size.
// "Parked" is observed through rt::stats().parked_by.semaphore (polled with rt::yield).
#include <rt/csp.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include "test_support.hpp"

namespace {

using rt_test::kSlow;
using rt_test::with_workers;

void until_parked(std::uint64_t n) {
  while (rt::stats().parked_by.semaphore != n) rt::yield();
}

class SemaphoreWeight : public ::testing::TestWithParam<unsigned> {};

TEST_P(SemaphoreWeight, HeldWeightNeverExceedsSize) {
  constexpr std::int64_t size = 10;
  constexpr int fibers = 64;
  const int per = 1000 / kSlow;
  std::atomic<std::int64_t> in_use{0}, over{0}, peak{0};
  rt::run(
      [&] {
        rt::semaphore sem(size);
        rt::wait_group wg;
        wg.add(fibers);
        for (int f = 0; f < fibers; ++f) {
          rt::go([&, f] {
            for (int i = 0; i < per; ++i) {
              const std::int64_t n = 1 + (f + i) % 4;
              sem.acquire(n);
              const std::int64_t now = in_use.fetch_add(n) + n;
              if (now > size) over.fetch_add(1);
              std::int64_t p = peak.load();
              while (now > p && !peak.compare_exchange_weak(p, now)) {
              }
              if (i % 4 == 0) rt::yield();
              in_use.fetch_sub(n);
              sem.release(n);
            }
            wg.done();
          });
        }
        wg.wait();
        EXPECT_TRUE(sem.try_acquire(size));  // everything was given back
        sem.release(size);
      },
      with_workers(GetParam()));
  EXPECT_EQ(over.load(), 0);
  EXPECT_GT(peak.load(), 1);
}

INSTANTIATE_TEST_SUITE_P(Workers, SemaphoreWeight, ::testing::Values(1u, 2u, 4u, 8u),
                         [](const auto& info) { return std::to_string(info.param) + "workers"; });

// Size 4, 3 held: A wants 2 and waits. Then B wants 1 — it would fit, but A is ahead, so B waits
// too, and try_acquire(1) fails. release(3) grants A (2) and B (1) in order.
TEST(Semaphore, BigWaiterAtTheHeadBlocksSmallerLaterOnes) {
  rt::run(
      [] {
        rt::semaphore sem(4);
        sem.acquire(3);
        auto got = rt::make_chan<char>(2);
        // The fibers send on copies of `got`: main may return while one is still inside send().
        rt::go([&sem, got]() mutable {
          sem.acquire(2);
          got.send('A');
        });
        until_parked(1);
        rt::go([&sem, got]() mutable {
          sem.acquire(1);
          got.send('B');
        });
        until_parked(2);  // B parked although a unit is free: head-of-line
        EXPECT_FALSE(sem.try_acquire(1));
        sem.release(3);
        const char x = *got.recv(), y = *got.recv();
        EXPECT_TRUE((x == 'A' && y == 'B') || (x == 'B' && y == 'A'));
        EXPECT_FALSE(sem.try_acquire(2));  // 3 of 4 held by A and B
        EXPECT_TRUE(sem.try_acquire(1));
        sem.release(4);
        EXPECT_TRUE(sem.try_acquire(4));
      },
      with_workers(2));
}

TEST(Semaphore, StopRequestedBeforeAcquireReturnsFalseHoldingNothing) {
  rt::run([] {
    rt::semaphore sem(2);
    std::stop_source src;
    src.request_stop();
    EXPECT_FALSE(sem.acquire(src.get_token()));  // even though units are free
    sem.acquire(1);
    EXPECT_FALSE(sem.acquire(src.get_token(), 1));  // and while it would wait
    EXPECT_TRUE(sem.try_acquire(1));
    sem.release(2);
    EXPECT_TRUE(sem.acquire(std::stop_token{}, 2));  // no stop possible: a plain acquire
    sem.release(2);
  });
}

// acquire(ctx, n), x/sync's Acquire(ctx, n): {} with the units held, else ctx.err() with
// nothing held — canceled by a cancel while parked, deadline_exceeded by a deadline.
TEST(Semaphore, AcquireWithContextReportsTheContextsError) {
  rt::run(
      [] {
        rt::semaphore sem(1);
        EXPECT_FALSE(sem.acquire(rt::background()));  // {}: acquired
        auto [ctx, cancel] = rt::with_cancel(rt::background());
        std::error_code got;
        rt::wait_group wg;
        wg.add(1);
        rt::go([&, ctx = ctx] {
          got = sem.acquire(ctx);
          wg.done();
        });
        until_parked(1);
        cancel();
        wg.wait();
        EXPECT_EQ(got, rt::context_errc::canceled);
        auto [late, stop] = rt::with_timeout(rt::background(), std::chrono::milliseconds(1));
        EXPECT_EQ(sem.acquire(late), rt::context_errc::deadline_exceeded);
        stop();
        sem.release(1);  // only main's unit was ever held
        EXPECT_TRUE(sem.try_acquire(1));
        sem.release(1);
      },
      with_workers(2));
}

// The head waiter (wants 2 of 2, one held) is cancelled while parked: it returns false, and B
// (wants 1) behind it, which fits once the head is gone, is granted by the cancellation.
TEST(Semaphore, StopWhileWaitingUnblocksTheQueueBehind) {
  rt::run(
      [] {
        rt::semaphore sem(2);
        sem.acquire(1);
        std::stop_source src;
        auto res = rt::make_chan<int>(2);
        // The fibers send on copies of `res`: main may return while one is still inside send().
        rt::go([&sem, &src, res]() mutable { res.send(sem.acquire(src.get_token(), 2) ? 1 : 0); });
        until_parked(1);
        rt::go([&sem, res]() mutable {
          sem.acquire(1);
          res.send(2);
        });
        until_parked(2);
        src.request_stop();
        int a = *res.recv(), b = *res.recv();
        EXPECT_EQ(a + b, 2);  // 0 (cancelled) and 2 (granted)
        EXPECT_TRUE(a == 0 || b == 0);
        EXPECT_FALSE(sem.try_acquire(1));  // main's unit + B's unit
        sem.release(2);
        EXPECT_TRUE(sem.try_acquire(2));  // the cancelled waiter holds nothing
      },
      with_workers(2));
}

// n > size: acquire throws; acquire(st, n) waits for stop (x/sync waits for ctx.Done());
// try_acquire fails.
TEST(Semaphore, WeightAboveSize) {
  rt::run([] {
    rt::semaphore sem(3);
    try {
      sem.acquire(4);
      ADD_FAILURE() << "no exception";
    } catch (const rt::runtime_error& e) {
      EXPECT_NE(std::string(e.what()).find("rt::semaphore::acquire: weight 4 exceeds"),
                std::string::npos)
          << e.what();
    }
    EXPECT_FALSE(sem.try_acquire(4));
    std::stop_source src;
    auto res = rt::make_chan<bool>(1);
    // A copy of `res`: main may return while the fiber is still inside send().
    rt::go([&sem, &src, res]() mutable { res.send(sem.acquire(src.get_token(), 4)); });
    until_parked(1);
    src.request_stop();
    EXPECT_FALSE(*res.recv());
    EXPECT_TRUE(sem.try_acquire(3));
  });
}

TEST(Semaphore, Misuse) {
  rt::run([] {
    rt::semaphore sem(2);
    sem.acquire(1);
    try {
      sem.release(2);
      ADD_FAILURE() << "no exception";
    } catch (const rt::runtime_error& e) {
      EXPECT_NE(std::string(e.what()).find("semaphore: released more than held"), std::string::npos)
          << e.what();
    }
    sem.release(1);  // the failed release changed nothing
    EXPECT_THROW(sem.release(1), rt::runtime_error);
    EXPECT_THROW(sem.acquire(-1), rt::runtime_error);
    EXPECT_THROW(sem.try_acquire(-1), rt::runtime_error);
    EXPECT_THROW(rt::semaphore(-1), rt::runtime_error);
    EXPECT_TRUE(sem.try_acquire(2));
    sem.release(2);
  });
}

// The race: a parked waiter with a stop token, a release granting it and a stop request, at the
// same time from different workers / a plain thread. Either outcome is allowed; afterwards the
// units held must be exactly those the winners report (checked by try_acquire(size)).
class SemaphoreGrantVsStop : public ::testing::TestWithParam<unsigned> {};

TEST_P(SemaphoreGrantVsStop, ExactlyOneOutcomeAndNoLeak) {
  const int rounds = 2000 / kSlow;
  std::atomic<int> granted{0}, cancelled{0};
  rt::run(
      [&] {
        for (int r = 0; r < rounds; ++r) {
          rt::semaphore sem(1);
          sem.acquire(1);
          std::stop_source src;
          auto res = rt::make_chan<bool>(1);
          // A copy of `res`: this round's locals end while the fiber may still be inside send().
          rt::go([&sem, &src, res]() mutable { res.send(sem.acquire(src.get_token(), 1)); });
          until_parked(1);
          rt::wait_group wg;
          wg.add(1);
          std::thread stopper;
          if (r % 2 == 0) {
            rt::go([&] {
              src.request_stop();
              wg.done();
            });
          } else {
            stopper = std::thread([&] {
              src.request_stop();
              wg.done();
            });
          }
          sem.release(1);
          const bool got = *res.recv();
          wg.wait();
          if (stopper.joinable()) stopper.join();
          (got ? granted : cancelled).fetch_add(1);
          if (got) {
            EXPECT_FALSE(sem.try_acquire(1)) << "round " << r;
            sem.release(1);
          }
          ASSERT_TRUE(sem.try_acquire(1)) << "round " << r << ": a unit leaked";
          sem.release(1);
        }
      },
      with_workers(GetParam()));
  EXPECT_EQ(granted.load() + cancelled.load(), rounds);
}

INSTANTIATE_TEST_SUITE_P(Workers, SemaphoreGrantVsStop, ::testing::Values(1u, 2u, 4u, 8u),
                         [](const auto& info) { return std::to_string(info.param) + "workers"; });

// Plain threads and fibers share one semaphore (threads block, fibers park).
TEST(Semaphore, PlainThreadsAndFibersMix) {
  constexpr std::int64_t size = 3;
  const int per = 3000 / kSlow;
  std::atomic<std::int64_t> in_use{0}, over{0};
  rt::run(
      [&] {
        rt::semaphore sem(size);
        auto body = [&](int who) {
          for (int i = 0; i < per; ++i) {
            const std::int64_t n = 1 + (i + who) % 2;
            sem.acquire(n);
            if (in_use.fetch_add(n) + n > size) over.fetch_add(1);
            if (i % 16 == 0) rt::yield();
            in_use.fetch_sub(n);
            sem.release(n);
          }
        };
        rt::wait_group wg;
        wg.add(6);
        for (int f = 0; f < 6; ++f)
          rt::go([&, f] {
            body(f);
            wg.done();
          });
        std::vector<std::thread> ts;
        for (int t = 0; t < 2; ++t) ts.emplace_back(body, t);
        wg.wait();
        for (auto& t : ts) t.join();
      },
      with_workers(2));
  EXPECT_EQ(over.load(), 0);
}

// A fiber left parked in acquire(st) when main returns is abandoned: its stack is freed, never
// unwound. Its stop callback must not stay registered (a later request_stop would run it on that
// memory): shutdown unregisters it. The global semaphore keeps working, and the second rt::run
// reuses the stack memory the first one freed.
TEST(Semaphore, AbandonedStopWaiterIsUnregisteredAtShutdown) {
  static rt::semaphore sem(1);
  std::stop_source src;
  rt::run([&] {
    sem.acquire(1);
    rt::go([&] { sem.acquire(src.get_token(), 1); });
    until_parked(1);
  });
  rt::run([] {
    for (int i = 0; i < 16; ++i)
      rt::go([] {
        volatile char scribble[4096] = {1};
        (void)scribble;
      });
  });
  src.request_stop();  // no callback left to run
  sem.release(1);      // main's unit; the abandoned waiter holds nothing
  EXPECT_TRUE(sem.try_acquire(1));
  sem.release(1);
}

// A semaphore destroyed while a fiber (one that will be a leftover) waits on it with a stop
// token: the destructor unregisters that callback, so a later stop request touches neither the
// freed semaphore (ASan reports the use otherwise) nor the waiter.
TEST(Semaphore, DestroyedWithAStopWaiterUnregistersItsCallback) {
  std::stop_source src;
  rt::run([&] {
    auto sem = std::make_unique<rt::semaphore>(1);
    sem->acquire(1);
    // The fiber gets the semaphore's address, not `sem`: reset() below writes the unique_ptr
    // before ~semaphore synchronises with the parked waiter (through its lock).
    rt::go([&src, s = sem.get()] { s->acquire(src.get_token(), 1); });
    until_parked(1);
    sem.reset();
    src.request_stop();
    EXPECT_EQ(rt::stats().parked_by.semaphore, 1u);  // stranded, not woken
  });
}

TEST(Semaphore, MaxprocsIsTheWorkerCount) {
  EXPECT_EQ(rt::maxprocs(), 0u);
  rt::run([] { EXPECT_EQ(rt::maxprocs(), 3u); }, with_workers(3));
  EXPECT_EQ(rt::maxprocs(), 0u);
}

}  // namespace
