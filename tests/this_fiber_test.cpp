// tests/this_fiber_test.cpp — rt::this_fiber::id(): the main fiber is 1, every fiber's id is
// unique among the fibers of a run (10k of them, spawned on several workers and from plain
// threads), stable across switches and migrations, and 0 on any plain thread. Ids are per run:
// each rt::run numbers its fibers afresh, so a later run reuses the ids of an earlier one.
#include <gtest/gtest.h>
#include <rt/csp.hpp>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "test_support.hpp"

namespace {

using rt_test::with_workers;

TEST(FiberId, MainFiberIsOne) {
  std::uint64_t id = 0, after_yield = 0;
  rt::run([&] {
    id = rt::this_fiber::id();
    rt::yield();
    after_yield = rt::this_fiber::id();
  });
  EXPECT_EQ(id, 1u);
  EXPECT_EQ(after_yield, 1u);
}

TEST(FiberId, ZeroOnPlainThreads) {
  EXPECT_EQ(rt::this_fiber::id(), 0u);  // no runtime at all
  std::uint64_t during = 99, after = 99;
  rt::run([&] { std::thread([&] { during = rt::this_fiber::id(); }).join(); });
  EXPECT_EQ(during, 0u);
  EXPECT_EQ(rt::this_fiber::id(), 0u);
  std::thread([&] { after = rt::this_fiber::id(); }).join();
  EXPECT_EQ(after, 0u);
}

// 10k fibers on 4 workers (spawned from fibers on several workers, and from a plain thread):
// ids are unique, never 0 or 1, and stay the same across yields.
TEST(FiberId, UniqueAndStableAcross10kFibers) {
  // 10k fibers (2k under sanitizers).
  const int kSpawners = 10, kPerSpawner = static_cast<int>(rt_test::scaled(900, 150)),
            kFromThread = static_cast<int>(rt_test::scaled(1000, 490));
  const int kTotal = kSpawners * kPerSpawner + kSpawners + kFromThread;
  std::vector<std::uint64_t> ids;
  ids.reserve(kTotal);
  std::mutex mu;
  std::atomic<int> unstable{0};
  rt::run(
      [&] {
        rt::wait_group wg;
        wg.add(kTotal);
        auto body = [&] {
          std::uint64_t id = rt::this_fiber::id();
          for (int i = 0; i < 3; ++i) {
            rt::yield();
            if (rt::this_fiber::id() != id) unstable.fetch_add(1);
          }
          {
            std::lock_guard lk(mu);
            ids.push_back(id);
          }
          wg.done();
        };
        for (int s = 0; s < kSpawners; ++s) {
          rt::go([&] {
            for (int i = 0; i < kPerSpawner; ++i) {
              rt::go(body);
              if (i % 100 == 0) rt::yield();  // move around between spawns
            }
            body();
          });
        }
        std::thread t([&] {
          for (int i = 0; i < kFromThread; ++i) rt::go(body);
        });
        wg.wait();
        t.join();
      },
      with_workers(4));
  ASSERT_EQ(ids.size(), static_cast<std::size_t>(kTotal));
  EXPECT_EQ(unstable.load(), 0);
  std::set<std::uint64_t> unique(ids.begin(), ids.end());
  EXPECT_EQ(unique.size(), ids.size()) << "duplicate fiber ids";
  EXPECT_EQ(unique.count(0), 0u);
  EXPECT_EQ(unique.count(1), 0u) << "a spawned fiber got the main fiber's id";
}

// Ids stay unique even when control blocks are recycled: fibers that end and are replaced by new
// ones get fresh ids.
TEST(FiberId, RecycledControlBlocksGetFreshIds) {
  const int kRounds = static_cast<int>(rt_test::scaled(50, 10));
  std::set<std::uint64_t> ids;
  rt::run(
      [&] {
        for (int round = 0; round < kRounds; ++round) {
          std::vector<std::uint64_t> batch(100);
          rt::wait_group wg;
          wg.add(100);
          for (int i = 0; i < 100; ++i) {
            rt::go([&, i] {
              batch[static_cast<std::size_t>(i)] = rt::this_fiber::id();
              wg.done();
            });
          }
          wg.wait();
          ids.insert(batch.begin(), batch.end());
        }
      },
      with_workers(2));
  EXPECT_EQ(ids.size(), static_cast<std::size_t>(kRounds) * 100);
}

// Each rt::run numbers its fibers afresh: two identical one-worker runs hand out the same ids
// (main is 1 in both), so ids identify fibers within a run only.
TEST(FiberId, IdsRestartWithEachRun) {
  auto ids_of_a_run = [] {
    std::set<std::uint64_t> ids;
    rt::run(
        [&] {
          ids.insert(rt::this_fiber::id());
          rt::wait_group wg;
          wg.add(10);
          for (int i = 0; i < 10; ++i) {
            rt::go([&] {
              ids.insert(rt::this_fiber::id());  // one worker: no concurrent insert
              wg.done();
            });
          }
          wg.wait();
        },
        with_workers(1));
    return ids;
  };
  const std::set<std::uint64_t> first = ids_of_a_run();
  const std::set<std::uint64_t> second = ids_of_a_run();
  EXPECT_EQ(first.size(), 11u);
  EXPECT_EQ(first.count(1), 1u);
  EXPECT_EQ(first, second) << "the second run did not start numbering afresh";
}

}  // namespace
