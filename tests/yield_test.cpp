// tests/yield_test.cpp — rt::yield is fair: a yielding fiber goes to the back of the run queue,
// so with one worker K yielding fibers take turns round-robin; with several workers every fiber
// keeps making progress; a pair of fibers waking each other back and forth (the run_next fast
// path) cannot starve a third; a fiber readied onto the global queue does not wait behind a
// burst of spawns queued there; and yield on a plain thread is just std::this_thread::yield.
// No timing: only orders and counts are checked.
#include <gtest/gtest.h>
#include <rt/csp.hpp>

#include <algorithm>
#include <atomic>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "test_support.hpp"

namespace {

using rt_test::with_workers;

TEST(Yield, SingleFiberYieldReturns) {
  int n = 0;
  rt::run(
      [&] {
        for (int i = 0; i < 1000; ++i) {
          rt::yield();
          ++n;
        }
      },
      with_workers(1));
  EXPECT_EQ(n, 1000);
}

TEST(Yield, OnPlainThreadIsHarmless) {
  std::thread([] {
    for (int i = 0; i < 10; ++i) rt::yield();
  }).join();
  rt::yield();  // the test's own thread, no runtime at all
  SUCCEED();
}

// One worker, K fibers, each appending its index then yielding, R times. While all K are
// runnable, a fiber runs again only after the others had their turn: between two runs of the
// same fiber there are close to K-1 runs of others (round-robin), never a streak of one fiber.
TEST(YieldFairness, OneWorkerRoundRobin) {
  RT_SKIP_UNDER_CHAOS();
  constexpr int K = 8, R = 200;
  std::vector<int> order;
  order.reserve(K * R);
  std::mutex mu;
  rt::run(
      [&] {
        rt::wait_group done;
        done.add(K);
        for (int k = 0; k < K; ++k) {
          rt::go([&, k] {
            for (int r = 0; r < R; ++r) {
              {
                std::lock_guard lk(mu);
                order.push_back(k);
              }
              rt::yield();
            }
            done.done();
          });
        }
        done.wait();
      },
      with_workers(1));
  ASSERT_EQ(order.size(), static_cast<std::size_t>(K * R));

  // The steady phase: up to the first entry that is some fiber's last (after it, fewer than K
  // fibers are runnable).
  std::vector<int> count(K, 0);
  std::size_t steady = order.size();
  for (std::size_t i = 0; i < order.size(); ++i) {
    if (++count[order[i]] == R) {
      steady = i;
      break;
    }
  }
  ASSERT_GE(steady, static_cast<std::size_t>(K * (R - 2)));  // all finish at about the same time

  std::vector<long> last(K, -1);
  int min_gap = K * R, max_gap = 0;
  for (std::size_t i = 0; i < steady; ++i) {
    int k = order[i];
    if (last[k] >= 0) {
      int gap = static_cast<int>(i - last[k]);
      min_gap = std::min(min_gap, gap);
      max_gap = std::max(max_gap, gap);
    }
    last[k] = static_cast<long>(i);
  }
  // Exact round-robin gives gap == K everywhere; allow a little slack either way.
  EXPECT_GE(min_gap, K - 2) << "a fiber ran again before the others had their turn";
  EXPECT_LE(max_gap, K + 2) << "a runnable fiber was passed over";
}

// Several workers: every fiber keeps yielding until all of them have done at least M yields.
// That ends only if each makes progress; the iteration cap turns starvation into a failure
// instead of a hang.
TEST(YieldFairness, EveryFiberProgressesOnSeveralWorkers) {
  constexpr int K = 16, M = 200;
  constexpr long kCap = 200L * K * M;
  for (unsigned workers : {2u, 4u}) {
    std::vector<std::atomic<long>> progress(K);
    std::atomic<int> capped{0};
    rt::run(
        [&] {
          rt::wait_group done;
          done.add(K);
          for (int k = 0; k < K; ++k) {
            rt::go([&, k] {
              for (long it = 0;; ++it) {
                if (it == kCap) {
                  capped.fetch_add(1);
                  break;
                }
                progress[k].fetch_add(1, std::memory_order_relaxed);
                long least = progress[0].load(std::memory_order_relaxed);
                for (auto& p : progress) least = std::min(least, p.load(std::memory_order_relaxed));
                if (least >= M) break;
                rt::yield();
              }
              done.done();
            });
          }
          done.wait();
        },
        with_workers(workers));
    EXPECT_EQ(capped.load(), 0) << workers << " workers: some fiber starved";
    for (int k = 0; k < K; ++k) EXPECT_GE(progress[k].load(), M) << "fiber " << k;
  }
}

// With one worker, fibers A and B wake each other through wait_groups for N rounds: each wake
// puts the woken fiber in the worker's run_next slot. A third fiber C only yields. If run_next
// always won, C would not run until the ping-pong ended; the scheduler must give the queue a
// turn every so many picks, so C runs many times while the ping-pong is still going.
TEST(YieldFairness, PingPongPairDoesNotStarveAYielder) {
  constexpr int N = 2000;
  std::vector<std::unique_ptr<rt::wait_group>> turn_a, turn_b;
  for (int i = 0; i <= N; ++i) {
    turn_a.push_back(std::make_unique<rt::wait_group>());
    turn_b.push_back(std::make_unique<rt::wait_group>());
    turn_a.back()->add(1);
    turn_b.back()->add(1);
  }
  std::atomic<int> round{0};
  std::atomic<bool> pingpong_done{false};
  long c_runs_during_pingpong = 0;
  rt::run(
      [&] {
        rt::wait_group done;
        done.add(3);
        rt::go([&] {  // C
          while (!pingpong_done.load()) {
            ++c_runs_during_pingpong;
            rt::yield();
          }
          done.done();
        });
        rt::go([&] {  // A
          for (int i = 0; i < N; ++i) {
            if (i > 0) turn_a[i]->wait();
            round.store(i);
            turn_b[i]->done();
          }
          done.done();
        });
        rt::go([&] {  // B
          for (int i = 0; i < N; ++i) {
            turn_b[i]->wait();
            if (i + 1 < N) {
              turn_a[i + 1]->done();
            } else {
              pingpong_done.store(true);
            }
          }
          done.done();
        });
        done.wait();
      },
      with_workers(1));
  EXPECT_EQ(round.load(), N - 1);
  // Round-robin between "the pair" and C would give about N runs of C; the local queue's turn on
  // every 61st pick (the global poll's tick) gives about 2N/61. Demand a conservative fraction.
  EXPECT_GE(c_runs_during_pingpong, N / 64) << "the yielding fiber was starved by the pair";
}

// Yielding from the main fiber lets spawned fibers run on a single worker.
TEST(Yield, MainFiberYieldLetsOthersRun) {
  std::atomic<int> ran{0};
  rt::run(
      [&] {
        for (int i = 0; i < 10; ++i) rt::go([&] { ran.fetch_add(1); });
        int spins = 0;
        while (ran.load() < 10 && spins < 1000) {
          rt::yield();
          ++spins;
        }
        EXPECT_EQ(ran.load(), 10);
        EXPECT_LT(spins, 1000);
      },
      with_workers(1));
}

// One worker: main spawns a burst that overflows its spawned deque into the global queue, then a
// plain thread readies a parked fiber, which also goes to the global queue (behind the burst, in
// time). That fiber must run after a few batches of the burst, not after all of it: the global
// queue's two lanes take turns (scheduler.hpp, global_spawns). With one FIFO it ran after about
// kBurst - 64 of them (bench/timers: woken sleepers 300-490 ms late at a million fibers).
TEST(QueueFairness, FiberReadiedOntoGlobalQueueIsNotBehindASpawnBurst) {
  RT_SKIP_UNDER_CHAOS();  // chaos scheduling moves spawns through other queues on purpose
  constexpr int kBurst = 20'000;
  std::atomic<int> started{0};
  int started_when_woken = -1;
  rt::run(
      [&] {
        auto wake = rt::make_chan<int>();
        rt::wait_group done;
        done.add(kBurst + 1);
        rt::go([&, wake]() mutable {
          wake.recv();  // readied below by a plain thread: onto the global queue
          started_when_woken = started.load(std::memory_order_relaxed);
          done.done();
        });
        rt::yield();  // it is parked in recv now (one worker: it ran to its park)
        for (int i = 0; i < kBurst; ++i) {
          rt::go([&] {
            started.fetch_add(1, std::memory_order_relaxed);
            done.done();
          });
        }
        // Main keeps the only worker while the plain thread sends: nothing runs meanwhile, so
        // the woken fiber is queued after the whole burst.
        std::thread([wake]() mutable { wake.send(1); }).join();
        done.wait();
      },
      with_workers(1));
  ASSERT_GE(started_when_woken, 0);
  EXPECT_LT(started_when_woken, 1'000)
      << "the readied fiber ran after " << started_when_woken << " of the " << kBurst
      << " spawned fibers: it waited behind the spawn burst in the global queue";
}

}  // namespace
