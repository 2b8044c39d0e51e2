// once_test — rt::once / rt::call_once (Go's sync.Once, with std::call_once's exception rule):
//   - fn runs exactly once with many concurrent callers on 1, 2, 4 and 8 workers, and every
//     caller returns only after fn's writes (a plain int, which TSan also watches);
//   - an exception leaves the once not done and the next caller runs fn; with concurrent
//     callers exactly one waiter takes the run over after each failure;
//   - plain threads and fibers share a once; call_once forwards arguments.
#include <rt/csp.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <stdexcept>
#include <thread>
#include <vector>

#include "test_support.hpp"

namespace {

using rt_test::kSlow;
using rt_test::with_workers;

class OnceExactly : public ::testing::TestWithParam<unsigned> {};

// 64 fibers race into call(); fn yields halfway so that the others find it running and park.
// Each caller then reads fn's plain write: a caller returning before fn finished would see 0.
TEST_P(OnceExactly, ManyConcurrentCallersRunFnOnce) {
  const int rounds = 50 / kSlow;
  constexpr int callers = 64;
  for (int r = 0; r < rounds; ++r) {
    std::atomic<int> runs{0}, early{0};
    rt::run(
        [&] {
          rt::once o;
          int value = 0;  // plain: published by once's release/acquire
          rt::wait_group wg;
          wg.add(callers);
          for (int c = 0; c < callers; ++c) {
            rt::go([&] {
              o.call([&] {
                runs.fetch_add(1);
                rt::yield();
                value = 42;
              });
              if (value != 42 || !o.done()) early.fetch_add(1);
              wg.done();
            });
          }
          wg.wait();
        },
        with_workers(GetParam()));
    ASSERT_EQ(runs.load(), 1) << "round " << r;
    ASSERT_EQ(early.load(), 0) << "round " << r;
  }
}

INSTANTIATE_TEST_SUITE_P(Workers, OnceExactly, ::testing::Values(1u, 2u, 4u, 8u),
                         [](const auto& info) { return std::to_string(info.param) + "workers"; });

TEST(Once, ExceptionLeavesItNotDoneAndTheNextCallerRunsFn) {
  rt::run([] {
    rt::once o;
    int runs = 0;
    EXPECT_THROW(o.call([&] {
      ++runs;
      throw std::runtime_error("boom");
    }),
                 std::runtime_error);
    EXPECT_FALSE(o.done());
    o.call([&] { ++runs; });
    EXPECT_TRUE(o.done());
    o.call([&] { ++runs; });
    EXPECT_EQ(runs, 2);
  });
}

// Concurrent callers while fn fails `fails` times: each failure reaches exactly the caller that
// ran it, one parked caller takes the run over, and fn completes exactly once.
class OnceFailures : public ::testing::TestWithParam<unsigned> {};

TEST_P(OnceFailures, EachFailureHandsTheRunToOneCaller) {
  const int rounds = 50 / kSlow;
  constexpr int callers = 32, fails = 5;
  for (int r = 0; r < rounds; ++r) {
    std::atomic<int> attempts{0}, thrown{0}, completed{0};
    rt::run(
        [&] {
          rt::once o;
          rt::wait_group wg;
          wg.add(callers);
          for (int c = 0; c < callers; ++c) {
            rt::go([&] {
              try {
                o.call([&] {
                  const int a = attempts.fetch_add(1);
                  rt::yield();
                  if (a < fails) throw std::runtime_error("not yet");
                  completed.fetch_add(1);
                });
              } catch (const std::runtime_error&) {
                thrown.fetch_add(1);
              }
              wg.done();
            });
          }
          wg.wait();
          EXPECT_TRUE(o.done());
        },
        with_workers(GetParam()));
    ASSERT_EQ(attempts.load(), fails + 1) << "round " << r;
    ASSERT_EQ(thrown.load(), fails) << "round " << r;
    ASSERT_EQ(completed.load(), 1) << "round " << r;
  }
}

INSTANTIATE_TEST_SUITE_P(Workers, OnceFailures, ::testing::Values(1u, 2u, 4u, 8u),
                         [](const auto& info) { return std::to_string(info.param) + "workers"; });

TEST(Once, CallOnceForwardsArguments) {
  rt::run([] {
    rt::once o;
    int sum = 0;
    rt::call_once(
        o, [&](int a, int b) { sum = a + b; }, 2, 3);
    rt::call_once(
        o, [&](int a, int b) { sum = a * b; }, 4, 5);
    EXPECT_EQ(sum, 5);
  });
}

TEST(Once, PlainThreadsAndFibersShareAOnce) {
  std::atomic<int> runs{0}, early{0};
  rt::run(
      [&] {
        rt::once o;
        int value = 0;
        auto body = [&] {
          o.call([&] {
            runs.fetch_add(1);
            rt::yield();
            value = 7;
          });
          if (value != 7) early.fetch_add(1);
        };
        rt::wait_group wg;
        wg.add(8);
        for (int i = 0; i < 8; ++i)
          rt::go([&] {
            body();
            wg.done();
          });
        std::vector<std::thread> ts;
        for (int i = 0; i < 3; ++i) ts.emplace_back(body);
        wg.wait();
        for (auto& t : ts) t.join();
      },
      with_workers(2));
  EXPECT_EQ(runs.load(), 1);
  EXPECT_EQ(early.load(), 0);
}

TEST(Once, DoneIsFalseBeforeAndTrueAfter) {
  rt::once o;
  EXPECT_FALSE(o.done());
  rt::run([&] { o.call([] {}); });
  EXPECT_TRUE(o.done());
}

}  // namespace
