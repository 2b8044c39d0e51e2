// tests/options_test.cpp — how many workers rt::run starts and which options it rejects:
// RT_MAXPROCS sets the worker count when options.workers is 0 (counted as distinct thread ids
// that fibers observe), options.workers overrides it, one worker per available core otherwise,
// and bad values (RT_MAXPROCS, workers, stack_size) make rt::run throw rt::runtime_error naming
// the culprit before main_fn runs; the runtime stays usable after.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <sched.h>
#include <algorithm>
#include <rt/csp.hpp>

#include <atomic>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include "test_support.hpp"

namespace {

using rt_test::current_thread;
using rt_test::env_guard;
using rt_test::what_of;
using rt_test::with_workers;
using ::testing::HasSubstr;

// Distinct worker threads seen by fibers, over rounds of uneven fibers (so idle workers wake up
// and steal): rounds go on until `expected` threads were seen (or max_rounds passed), then 20
// more, to give a thread beyond the expected count its chance to show up.
std::size_t observe_threads(const rt::options& opts, std::size_t expected, int max_rounds) {
  // Under sanitizers, thousands of rounds of spawns take minutes: fewer rounds still show which
  // threads exist (the count is an upper bound either way).
  if (rt_test::kSanitized) max_rounds = std::min(max_rounds, 60);
  std::mutex mu;
  std::set<std::thread::id> seen;
  rt::run(
      [&] {
        int extra = 20;
        for (int round = 0; round < max_rounds && extra > 0; ++round) {
          {
            std::lock_guard lk(mu);
            if (seen.size() >= expected) --extra;
          }
          constexpr int n = 32;
          rt::wait_group wg;
          wg.add(n);
          for (int i = 0; i < n; ++i) {
            rt::go([&, i] {
              for (int j = 0; j <= 4 * i; ++j) {
                {
                  std::lock_guard lk(mu);
                  seen.insert(current_thread());
                }
                rt::yield();
              }
              wg.done();
            });
          }
          wg.wait();
        }
      },
      opts);
  return seen.size();
}

unsigned cores_available() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) == 0) return static_cast<unsigned>(CPU_COUNT(&set));
  return std::thread::hardware_concurrency();
}

TEST(MaxProcs, EnvironmentSetsWorkerCount) {
  env_guard env("RT_MAXPROCS", "3");
  std::size_t n = observe_threads(rt::options{}, 3, 3000);
  if (rt_test::kSanitized) {
    // Sanitized, the third worker may not get a steal in within the shortened rounds: the
    // exact count is checked by the Release run.
    EXPECT_LE(n, 3u);
    EXPECT_GE(n, 1u);
  } else {
    EXPECT_EQ(n, 3u) << "RT_MAXPROCS=3 should give exactly 3 worker threads";
  }
}

TEST(MaxProcs, OneWorkerFromEnvironment) {
  env_guard env("RT_MAXPROCS", "1");
  EXPECT_EQ(observe_threads(rt::options{}, 1, 200), 1u);
}

TEST(MaxProcs, OptionsOverrideEnvironment) {
  env_guard env("RT_MAXPROCS", "3");
  EXPECT_EQ(observe_threads(with_workers(1), 1, 200), 1u);
  if (rt_test::kSanitized) {
    EXPECT_LE(observe_threads(with_workers(2), 2, 3000), 2u);  // exact count: the Release run
  } else {
    EXPECT_EQ(observe_threads(with_workers(2), 2, 3000), 2u);
  }
}

// The environment is only consulted when options.workers is 0, so an explicit count works even
// when RT_MAXPROCS is garbage.
TEST(MaxProcs, OptionsIgnoreInvalidEnvironment) {
  env_guard env("RT_MAXPROCS", "abc");
  EXPECT_EQ(observe_threads(with_workers(1), 1, 200), 1u);
}

TEST(MaxProcs, DefaultIsOnePerCore) {
  env_guard env("RT_MAXPROCS", nullptr);
  std::size_t n = observe_threads(rt::options{}, cores_available(), 300);
  EXPECT_GE(n, 1u);
  EXPECT_LE(n, cores_available());
}

TEST(MaxProcs, EmptyEnvironmentMeansUnset) {
  env_guard env("RT_MAXPROCS", "");
  int rc = -1;
  EXPECT_NO_THROW(rc = rt::run([] { return 7; }));
  EXPECT_EQ(rc, 7);
}

TEST(MaxProcs, InvalidValuesThrowNamingTheVariable) {
  for (const char* bad :
       {"0", "abc", "99999", "-1", "1025", "3x", " 3", "2.5", "18446744073709551617"}) {
    env_guard env("RT_MAXPROCS", bad);
    bool ran = false;
    std::string what = what_of<rt::runtime_error>([&] { rt::run([&] { ran = true; }); });
    EXPECT_THAT(what, HasSubstr("RT_MAXPROCS")) << "value \"" << bad << "\"";
    EXPECT_THAT(what, HasSubstr(bad)) << "the message should quote the bad value";
    EXPECT_FALSE(ran) << "main_fn ran despite RT_MAXPROCS=\"" << bad << "\"";
  }
  // And the runtime still starts once the variable is fixed.
  env_guard env("RT_MAXPROCS", "2");
  EXPECT_EQ(rt::run([] { return 3; }), 3);
}

TEST(MaxProcs, UpperBoundIsAccepted) {
  env_guard env("RT_MAXPROCS", "1024");
  std::atomic<int> ran{0};
  rt::run([&] {
    rt::wait_group wg;
    wg.add(100);
    for (int i = 0; i < 100; ++i) {
      rt::go([&] {
        ran.fetch_add(1);
        wg.done();
      });
    }
    wg.wait();
  });
  EXPECT_EQ(ran.load(), 100);
}

TEST(Options, TooManyWorkersThrows) {
  env_guard env("RT_MAXPROCS", nullptr);
  bool ran = false;
  std::string what =
      what_of<rt::runtime_error>([&] { rt::run([&] { ran = true; }, with_workers(1025)); });
  EXPECT_THAT(what, HasSubstr("workers"));
  EXPECT_THAT(what, HasSubstr("1025"));
  EXPECT_FALSE(ran);
  EXPECT_EQ(rt::run([] { return 1; }, with_workers(1024)), 1);
}

TEST(Options, StackSizeOutOfRangeThrows) {
  for (std::size_t bad : {std::size_t{0}, std::size_t{1}, std::size_t{4096}, std::size_t{16383},
                          (std::size_t{1} << 30) + 1, ~std::size_t{0}}) {
    rt::options o;
    o.workers = 1;
    o.stack_size = bad;
    bool ran = false;
    std::string what = what_of<rt::runtime_error>([&] { rt::run([&] { ran = true; }, o); });
    EXPECT_THAT(what, HasSubstr("stack_size")) << bad;
    EXPECT_FALSE(ran) << bad;
  }
}

// guard_size: 4 KiB to 1 GiB, else a runtime_error naming the option; 64 KiB by default.
TEST(Options, GuardSizeOutOfRangeThrows) {
  for (std::size_t bad : {std::size_t{0}, std::size_t{4095}, (std::size_t{1} << 30) + 1}) {
    rt::options o;
    o.guard_size = bad;
    EXPECT_EQ(rt_test::what_of<rt::runtime_error>([&] { rt::run([] {}, o); }),
              "rt::options::guard_size is " + std::to_string(bad) +
                  " bytes: it must be between 4096 (4 KiB) and 1073741824 (1 GiB)");
  }
  rt::options o;
  EXPECT_EQ(o.guard_size, 64u * 1024);  // the default covers 64 KiB frames
  o.guard_size = 4096;
  EXPECT_EQ(rt::run([] { return 7; }, o), 7);
}

// Bounds: 16 KiB and 1 GiB are accepted, and a fiber runs on such a stack; odd sizes are
// rounded up to pages.
TEST(Options, StackSizeBoundsAreAccepted) {
  for (std::size_t good :
       {std::size_t{16384}, std::size_t{16384 + 1}, std::size_t{100000}, std::size_t{1} << 30}) {
    rt::options o;
    o.workers = 2;
    o.stack_size = good;
    std::atomic<int> ran{0};
    EXPECT_NO_THROW(rt::run(
        [&] {
          rt::wait_group wg;
          wg.add(4);
          for (int i = 0; i < 4; ++i) {
            rt::go([&] {
              volatile char buf[8192];  // half the smallest stack
              buf[0] = 1;
              buf[sizeof buf - 1] = 1;
              ran.fetch_add(buf[0] + buf[sizeof buf - 1] - 1);
              wg.done();
            });
          }
          wg.wait();
        },
        o))
        << good;
    EXPECT_EQ(ran.load(), 4) << good;
  }
}

// Every guard policy and pool setting runs fibers correctly.
TEST(Options, EveryGuardPolicyRunsFibers) {
  for (rt::guard_policy g :
       {rt::guard_policy::automatic, rt::guard_policy::mprotect, rt::guard_policy::canary}) {
    for (std::size_t budget : {std::size_t{0}, std::size_t{3}, std::size_t{16384}}) {
      rt::options o;
      o.workers = 2;
      o.guard = g;
      o.mprotect_budget = budget;
      o.stack_pool_high_water = 0;  // release stacks eagerly: exercises the cold list
      const int n = static_cast<int>(rt_test::scaled(2000, 200));
      std::atomic<long> ran{0};
      rt_test::run_yielding_fibers(o, n, ran);
      EXPECT_EQ(ran.load(), n) << "policy " << static_cast<int>(g) << " budget " << budget;
    }
  }
}

}  // namespace
