// tests/stack_test.cpp — fiber stacks: a fiber can use (almost) all of options.stack_size; an
// overflow never corrupts memory silently but ends the process with status 2 and
// "fatal error: fiber N: stack overflow (stack size K KiB)" — through the guard page under
// guard_policy::automatic and ::mprotect, and through the stack canary ("found by its stack
// canary") under ::canary or beyond the mprotect budget; and a million fibers parked at once fit
// under the default vm.max_map_count (65530) at under 5 KiB of RSS each, with RSS falling again
// once they are gone: after a burst of parked fibers, RSS falls under the stack pool's stated
// bounds, at once, at idle and when rt::run returns (StackPoolRss).
//
// The death tests are skipped under ASan/TSan, which own SIGSEGV and report overflows their way.
#include <alloca.h>
#include <gtest/gtest.h>
#include <malloc.h>
#include <unistd.h>
#include <rt/csp.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

#include "test_support.hpp"

namespace {

using rt_test::with_workers;

#define SKIP_UNDER_SANITIZERS()                                                       \
  do {                                                                                \
    if (rt_test::kSanitized) GTEST_SKIP() << "sanitizers own SIGSEGV: no death test"; \
  } while (0)

// Deep recursion the compiler cannot turn into a loop: a volatile array per frame, and work
// after the recursive call.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Winfinite-recursion"
[[gnu::noinline]] int recurse_forever(int depth) {
  volatile char frame[256];
  frame[0] = static_cast<char>(depth);
  frame[255] = static_cast<char>(depth);
  return recurse_forever(depth + 1) + frame[0] + frame[255];
}
#pragma GCC diagnostic pop

// Recursion to a fixed depth, frames of about 256 bytes.
[[gnu::noinline]] int recurse_to(int depth) {
  volatile char frame[256];
  frame[0] = static_cast<char>(depth);
  if (depth == 0) return frame[0];
  return recurse_to(depth - 1) + frame[0];
}

std::size_t page() {
  return static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
}
std::size_t round_to_pages(std::size_t n) {
  return (n + page() - 1) / page() * page();
}

// The current fiber's stack top: stacks end on a page boundary, and a fiber's first frames sit
// within a page of it. Call from the fiber's own function, not deep inside.
[[gnu::noinline]] std::uintptr_t stack_top_estimate() {
  char anchor;
  return (reinterpret_cast<std::uintptr_t>(&anchor) | (page() - 1)) + 1;
}

// Writes every byte from about `past` bytes below `bottom` (the lowest usable stack address; a
// few dozen bytes more, for this frame) up to this frame, lowest address first, then returns:
// an overflow by `past` bytes that touches nothing further down. Negative past stops short.
[[gnu::noinline]] void write_down_to(std::uintptr_t bottom, long past) {
  char here;
  auto span = static_cast<long>(reinterpret_cast<std::uintptr_t>(&here) - bottom) + past;
  if (span <= 0) return;
  auto* buf = static_cast<volatile char*>(alloca(static_cast<std::size_t>(span)));
  for (long i = 0; i < span; ++i) buf[i] = static_cast<char>(0x5a);
}

// Fills the calling fiber's stack to within `margin` bytes of its bottom (margin < 0: beyond it).
void use_stack(std::size_t stack_size, long margin) {
  std::uintptr_t bottom = stack_top_estimate() - round_to_pages(stack_size);
  write_down_to(bottom, -margin);
}

rt::options stack_opts(std::size_t size, rt::guard_policy g, std::size_t budget = 16384) {
  rt::options o;
  o.workers = 2;
  o.stack_size = size;
  o.guard = g;
  o.mprotect_budget = budget;
  return o;
}

// Runs fn in a spawned fiber and waits for it.
template <class F>
void in_fiber(const rt::options& o, F fn) {
  rt::run(
      [&] {
        rt::wait_group wg;
        wg.add(1);
        rt::go([&] {
          fn();
          wg.done();
        });
        wg.wait();
      },
      o);
}

class StackUse : public ::testing::TestWithParam<rt::guard_policy> {};

// A fiber may use its whole stack but a little: no false overflow report, whatever the policy.
TEST_P(StackUse, NearlyFullStackIsFine) {
  // ASan may keep locals on its heap "fake stack", which breaks the stack-top estimate.
  if (rt_test::kAsan) GTEST_SKIP() << "stack-top estimate unreliable under ASan";
  for (std::size_t size : {std::size_t{64 * 1024}, std::size_t{100000}, std::size_t{1 << 20}}) {
    bool done = false;
    in_fiber(stack_opts(size, GetParam()), [&] {
      use_stack(size, 2048);
      rt::yield();  // a switch: the canary is checked here
      use_stack(size, 2048);
      done = true;
    });
    EXPECT_TRUE(done) << size;
  }
}

// Deep recursion in many fibers at once, reusing stacks across fibers.
TEST_P(StackUse, DeepRecursionInManyFibers) {
  std::atomic<int> ok{0};
  rt::run(
      [&] {
        rt::wait_group wg;
        wg.add(200);
        for (int i = 0; i < 200; ++i) {
          rt::go([&, i] {
            int depth = 100 + i;  // ~256-byte frames: up to ~75 KiB of a 128 KiB stack
            int r = recurse_to(depth);
            rt::yield();
            if (r == recurse_to(depth)) ok.fetch_add(1);
            wg.done();
          });
        }
        wg.wait();
      },
      stack_opts(128 * 1024, GetParam()));
  EXPECT_EQ(ok.load(), 200);
}

INSTANTIATE_TEST_SUITE_P(Policies, StackUse,
                         ::testing::Values(rt::guard_policy::automatic, rt::guard_policy::mprotect,
                                           rt::guard_policy::canary),
                         [](const ::testing::TestParamInfo<rt::guard_policy>& info) {
                           switch (info.param) {
                             case rt::guard_policy::automatic:
                               return std::string("automatic");
                             case rt::guard_policy::mprotect:
                               return std::string("mprotect");
                             case rt::guard_policy::canary:
                               return std::string("canary");
                           }
                           return std::string("unknown");
                         });

const char* const kOverflow64 = "fatal error: fiber [0-9]+: stack overflow \\(stack size 64 KiB\\)";
const char* const kCanary64 =
    "fatal error: fiber [0-9]+: stack overflow \\(stack size 64 KiB; found by its stack canary\\)";

TEST(StackOverflowDeathTest, GuardPageAutomatic) {
  SKIP_UNDER_SANITIZERS();
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      in_fiber(stack_opts(64 * 1024, rt::guard_policy::automatic), [] { recurse_forever(0); }),
      ::testing::ExitedWithCode(2), kOverflow64);
}

TEST(StackOverflowDeathTest, GuardPageMprotect) {
  SKIP_UNDER_SANITIZERS();
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      in_fiber(stack_opts(64 * 1024, rt::guard_policy::mprotect), [] { recurse_forever(0); }),
      ::testing::ExitedWithCode(2), kOverflow64);
}

TEST(StackOverflowDeathTest, MainFiberOverflow) {
  SKIP_UNDER_SANITIZERS();
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      rt::run([] { recurse_forever(0); }, stack_opts(64 * 1024, rt::guard_policy::automatic)),
      ::testing::ExitedWithCode(2), "fatal error: fiber 1: stack overflow \\(stack size 64 KiB\\)");
}

// The report gives the usable size after rounding up to pages: 64 KiB + 1 byte is 68 KiB.
TEST(StackOverflowDeathTest, ReportsRoundedStackSize) {
  SKIP_UNDER_SANITIZERS();
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  ASSERT_EQ(page(), 4096u);
  EXPECT_EXIT(
      in_fiber(stack_opts(64 * 1024 + 1, rt::guard_policy::automatic), [] { recurse_forever(0); }),
      ::testing::ExitedWithCode(2),
      "fatal error: fiber [0-9]+: stack overflow \\(stack size 68 KiB\\)");
}

// One big frame that jumps over the guard page's first bytes still lands in the guard page.
TEST(StackOverflowDeathTest, SmallOverflowHitsGuardPage) {
  SKIP_UNDER_SANITIZERS();
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(in_fiber(stack_opts(64 * 1024, rt::guard_policy::automatic),
                       [] {
                         use_stack(64 * 1024, -1024);
                         rt::yield();
                       }),
              ::testing::ExitedWithCode(2), kOverflow64);
}

// --- Frames that jump a guard page (issue 9, item 10) ------------------------------------------
//
// This file is built with -fno-stack-clash-protection (tests/CMakeLists.txt), as user code is by
// Debian's GCC by default: a function with a large local array lowers the stack pointer by the
// whole frame in one step, and its first store may land at the far (lowest) end. With a one-page
// guard, a 32 KiB frame near the bottom of a stack jumped the guard and wrote silently into the
// neighbouring stack (a neighbour's live frames crashed later on a garbage return address, with
// no report). The guard region is options::guard_size (64 KiB by default): such a frame faults
// in it and is reported as an overflow.

// A frame of `Bytes` bytes whose lowest byte is written first.
template <std::size_t Bytes>
[[gnu::noinline]] void big_frame() {
  [[maybe_unused]] volatile char a[Bytes];
  a[0] = 1;  // the far end, before anything else of the frame is touched
  a[Bytes - 1] = 1;
}

// Descends in small frames until this fiber's stack has about `margin` bytes left (`bottom` is
// its estimated lowest usable address), then calls f.
template <class F>
[[gnu::noinline]] void descend_then(std::uintptr_t bottom, std::uintptr_t margin, F f) {
  [[maybe_unused]] volatile char pad[256];
  pad[0] = 0;
  char here;
  if (reinterpret_cast<std::uintptr_t>(&here) > bottom + margin) {
    descend_then(bottom, margin, f);
  } else {
    f();
  }
  pad[255] = 0;
}

// With 8 KiB of stack left, a frame of `Bytes` writes its first byte Bytes - 8 KiB below the
// stack: past a one-page guard, inside a 64 KiB one.
template <std::size_t Bytes>
void jump_the_guard(std::size_t stack_size) {
  const std::uintptr_t bottom = stack_top_estimate() - round_to_pages(stack_size);
  descend_then(bottom, 8 * 1024, [] { big_frame<Bytes>(); });
  rt::yield();
  std::fprintf(stderr, "overflow went unnoticed\n");
}

TEST(StackOverflowDeathTest, Frame32KiBWithoutStackClashProtection) {
  SKIP_UNDER_SANITIZERS();
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(in_fiber(stack_opts(64 * 1024, rt::guard_policy::automatic),
                       [] { jump_the_guard<32 * 1024>(64 * 1024); }),
              ::testing::ExitedWithCode(2), kOverflow64);
}

TEST(StackOverflowDeathTest, Frame60KiBWithoutStackClashProtection) {
  SKIP_UNDER_SANITIZERS();
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(in_fiber(stack_opts(64 * 1024, rt::guard_policy::automatic),
                       [] { jump_the_guard<60 * 1024>(64 * 1024); }),
              ::testing::ExitedWithCode(2), kOverflow64);
}

// The mprotect fallback protects the whole region too.
TEST(StackOverflowDeathTest, Frame60KiBMprotectGuard) {
  SKIP_UNDER_SANITIZERS();
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(in_fiber(stack_opts(64 * 1024, rt::guard_policy::mprotect),
                       [] { jump_the_guard<60 * 1024>(64 * 1024); }),
              ::testing::ExitedWithCode(2), kOverflow64);
}

// options::guard_size is honoured: a 192 KiB guard catches a 160 KiB frame.
TEST(StackOverflowDeathTest, LargerGuardSizeCatchesLargerFrames) {
  SKIP_UNDER_SANITIZERS();
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  rt::options o = stack_opts(64 * 1024, rt::guard_policy::automatic);
  o.guard_size = 192 * 1024;
  EXPECT_EXIT(in_fiber(o, [] { jump_the_guard<160 * 1024>(64 * 1024); }),
              ::testing::ExitedWithCode(2), kOverflow64);
}

// Canary policy: no guard page, so overflow by a little (1 KiB, staying within this stack's own
// unprotected guard slot) — the canary at the stack's limit is overwritten and the next switch
// reports it.
TEST(StackOverflowDeathTest, CanaryPolicy) {
  SKIP_UNDER_SANITIZERS();
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(in_fiber(stack_opts(64 * 1024, rt::guard_policy::canary),
                       [] {
                         use_stack(64 * 1024, -1024);
                         rt::yield();
                         std::fprintf(stderr, "overflow went unnoticed\n");
                       }),
              ::testing::ExitedWithCode(2), kCanary64);
}

// The canary is also checked when the overflowing fiber ends, without another switch.
TEST(StackOverflowDeathTest, CanaryCheckedAtFiberExit) {
  SKIP_UNDER_SANITIZERS();
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(in_fiber(stack_opts(64 * 1024, rt::guard_policy::canary),
                       [] { use_stack(64 * 1024, -1024); }),
              ::testing::ExitedWithCode(2), kCanary64);
}

// Beyond the mprotect budget stacks get canaries: with a budget of 0, every stack has one.
TEST(StackOverflowDeathTest, MprotectBudgetExhaustedFallsBackToCanary) {
  SKIP_UNDER_SANITIZERS();
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(in_fiber(stack_opts(64 * 1024, rt::guard_policy::mprotect, 0),
                       [] {
                         use_stack(64 * 1024, -1024);
                         rt::yield();
                       }),
              ::testing::ExitedWithCode(2), kCanary64);
}

// Output written before the overflow is not lost.
TEST(StackOverflowDeathTest, EarlierStderrOutputSurvives) {
  SKIP_UNDER_SANITIZERS();
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(in_fiber(stack_opts(64 * 1024, rt::guard_policy::automatic),
                       [] {
                         std::fputs("before the overflow;", stderr);
                         recurse_forever(0);
                       }),
              ::testing::ExitedWithCode(2), "before the overflow;(.|\n)*stack overflow");
}

// The mprotect policy spends at most mprotect_budget guard pages (two mappings each), so many
// parked fibers stay under the default vm.max_map_count.
TEST(StackMappings, MprotectBudgetBoundsMappings) {
  // More stacks than the budget, so some fall back to canaries (fewer under TSan's thread limit).
  const std::size_t budget = rt_test::kTsan ? 512 : 8192;
  const long n = rt_test::kTsan ? 1500 : rt_test::scaled(40'000, 20'000);
  // 16 KiB stacks (the minimum) are too small for TSan's instrumentation and runtime.
  rt::options o =
      stack_opts(rt_test::kTsan ? 64 * 1024 : 16 * 1024, rt::guard_policy::mprotect, budget);
  long maps_before = rt_test::maps_count(), maps_parked = 0;
  std::atomic<long> finished{0};
  rt::run(
      [&] {
        rt::wait_group started, gate, done;
        started.add(static_cast<int>(n));
        done.add(static_cast<int>(n));
        gate.add(1);
        for (long i = 0; i < n; ++i) {
          rt::go([&] {
            started.done();
            gate.wait();
            finished.fetch_add(1);
            done.done();
          });
        }
        started.wait();
        maps_parked = rt_test::maps_count();
        gate.done();
        done.wait();
      },
      o);
  EXPECT_EQ(finished.load(), n);
  if (rt_test::kTsan) return;  // TSan maps memory of its own for every fiber's logical thread
  EXPECT_LT(maps_parked - maps_before, static_cast<long>(2 * budget + 1000));
  EXPECT_LT(maps_parked, 65530);
}

// ---- RSS after a burst ------------------------------------------------------------------------
//
// The stack pool's contract (runtime/stack_pool.hpp; hw = options::stack_pool_high_water, at
// least 64): a worker's cache of warm stacks never holds more than 16 x hw of them (beyond that
// it hands the excess over hw to a shared warm list of at most 8 x hw, and releases the rest); a
// worker that goes idle trims its cache to hw (at once when the whole runtime is idle, which also
// releases the shared warm list); released stacks are madvise(MADV_DONTNEED)'d, so they cost no
// RSS until reused. Control blocks stay allocated
// for reuse until rt::run returns, which unmaps every stack and frees every control block.
//
// The test (25 000 fibers; 100 000 in StackPoolRssHeavy): n fibers park on a channel, are released
// by its close, and finish. With S = the RSS of one stack as the parked burst measured it, plus a
// page (for pages touched after resuming), H = the growth of the bytes malloc has handed out since
// the baseline (mallinfo2) and of the control blocks' slabs mapped outside malloc (rt::stats():
// control_block_bytes_mapped), and W workers:
//   (a) at once, no worker idle yet: RSS <= baseline + H + (W x 16 + 8) x hw x S;
//   (b) once every worker has been idle: RSS <= baseline + H + W x hw x S. The main fiber sleeps:
//       with no other fiber left, every worker parks, trimming its cache, before the timer fires.
//       The sleep is repeated until RSS is under the bound (at most 1000 times), in case a worker
//       was descheduled for a whole sleep; which round ended the loop does not matter;
//   (c) after rt::run has returned and malloc_trim(0): RSS <= the RSS before rt::run.
// Each bound has 6 MiB of slack (malloc memory freed but still resident, the test's own
// allocations, RSS accounting noise).
std::size_t malloc_in_use_bytes() {
  const struct mallinfo2 mi = mallinfo2();
  return mi.uordblks + mi.hblkhd;
}

void expect_burst_given_back(unsigned w, long n) {
  constexpr long hw = 64;
  constexpr long slack_kib = 6 * 1024;
  const long page_kib = static_cast<long>(page() / 1024);
  rt::options o = with_workers(w);
  o.stack_pool_high_water = hw;
  std::atomic<long> closed_seen{0};
  long base = 0, parked = 0, after_burst = 0, idle = 0, rounds = 0, stack_kib = 0;
  long heap_parked = 0, heap_burst = 0, heap_idle = 0;  // KiB malloc handed out since the baseline
  const long before_run = rt_test::vm_rss_kib();
  rt::run(
      [&] {
        const std::size_t heap_base = malloc_in_use_bytes();
        const std::size_t slabs_base = rt::stats().control_block_bytes_mapped;
        // Control blocks: malloc's growth, plus the slabs of them mapped outside malloc.
        auto heap_kib = [&] {
          return static_cast<long>((malloc_in_use_bytes() - heap_base +
                                    (rt::stats().control_block_bytes_mapped - slabs_base)) /
                                   1024);
        };
        base = rt_test::vm_rss_kib();
        auto gate = rt::make_chan<int>();
        rt::wait_group started, done;
        started.add(static_cast<int>(n));
        done.add(static_cast<int>(n));
        for (long i = 0; i < n; ++i) {
          rt::go([&, gate]() mutable {
            started.done();
            if (!gate.recv()) closed_seen.fetch_add(1, std::memory_order_relaxed);
            done.done();
          });
        }
        started.wait();
        parked = rt_test::vm_rss_kib();
        heap_parked = heap_kib();
        gate.close();
        done.wait();
        after_burst = rt_test::vm_rss_kib();
        heap_burst = heap_kib();
        const long per_stack = std::max(0L, parked - base - heap_parked) / n;
        stack_kib = (per_stack + page_kib - 1) / page_kib * page_kib + page_kib;
        for (rounds = 1; rounds <= 1000; ++rounds) {
          rt::sleep_for(std::chrono::milliseconds(1));
          idle = rt_test::vm_rss_kib();
          heap_idle = heap_kib();
          if (idle <= base + heap_idle + static_cast<long>(w) * hw * stack_kib + slack_kib) break;
        }
      },
      o);
  malloc_trim(0);
  const long after_run = rt_test::vm_rss_kib();
  EXPECT_EQ(closed_seen.load(), n);
  std::printf(
      "[ measured ] %u workers, %ld parked fibers: RSS (KiB) %ld before run, baseline %ld, parked "
      "%ld (malloc +%ld), after the burst %ld (malloc +%ld), after idle %ld (round %ld), after "
      "run %ld; stack bound %ld KiB\n",
      w, n, before_run, base, parked, heap_parked, after_burst, heap_burst, idle, rounds, after_run,
      stack_kib);
  if (rt_test::kSanitized) return;  // shadow memory and fake stacks: RSS says little
  // The burst was real: at least a page of stack per parked fiber.
  ASSERT_GE(parked - base - heap_parked, n * page_kib - slack_kib);
  const long cached_max = static_cast<long>(w) * hw;  // stacks in worker caches, at idle
  EXPECT_LE(after_burst, base + heap_burst + (16 * cached_max + 8 * hw) * stack_kib + slack_kib)
      << "(a) worker caches hold more than 16 x high_water stacks, or the shared warm list more "
         "than 8 x high_water, after the burst";
  EXPECT_LE(idle, base + heap_idle + cached_max * stack_kib + slack_kib)
      << "(b) idle workers did not trim their caches to high_water (" << rounds - 1
      << " idle rounds)";
  EXPECT_LE(after_run, before_run + slack_kib)
      << "(c) stacks or control blocks were not freed when rt::run returned";
}

// 25 000 parked fibers (about 100 MB of stacks at the peak; 5 000 under sanitizers).
class StackPoolRss : public ::testing::TestWithParam<unsigned> {};

TEST_P(StackPoolRss, BurstOfParkedFibersIsGivenBack) {
  expect_burst_given_back(GetParam(), rt_test::kTsan ? 2000 : rt_test::scaled(25'000, 5'000));
}

INSTANTIATE_TEST_SUITE_P(Workers, StackPoolRss, ::testing::Values(1u, 2u, 4u, 8u),
                         [](const auto& info) { return std::to_string(info.param) + "workers"; });

// 100 000 parked fibers (about 400 MB at the peak; label heavy).
class StackPoolRssHeavy : public ::testing::TestWithParam<unsigned> {};

TEST_P(StackPoolRssHeavy, BurstOfParkedFibersIsGivenBack) {
  expect_burst_given_back(GetParam(), rt_test::kTsan ? 2000 : rt_test::scaled(100'000, 10'000));
}

INSTANTIATE_TEST_SUITE_P(Workers, StackPoolRssHeavy, ::testing::Values(1u, 2u, 4u, 8u),
                         [](const auto& info) { return std::to_string(info.param) + "workers"; });

// A million fibers parked at once on one wait_group: every one started, the mapping count stays
// under the default vm.max_map_count, and each costs under 5 KiB of RSS (the target is 4.5 KiB:
// one stack page plus a control block). After they finish, RSS falls again.
TEST(StackHeavy, MillionParkedFibers) {
  const long n = rt_test::kTsan ? 5000 : rt_test::scaled(1'000'000, 20'000);
  std::atomic<long> started_count{0}, finished{0};
  long rss_before = 0, rss_parked = 0, rss_after = 0, maps_parked = 0;
  rt::run([&] {
    rss_before = rt_test::vm_rss_kib();
    rt::wait_group started, gate, done;
    started.add(static_cast<int>(n));
    done.add(static_cast<int>(n));
    gate.add(1);
    for (long i = 0; i < n; ++i) {
      rt::go([&] {
        started_count.fetch_add(1, std::memory_order_relaxed);
        started.done();
        gate.wait();
        finished.fetch_add(1, std::memory_order_relaxed);
        done.done();
      });
    }
    started.wait();
    maps_parked = rt_test::maps_count();
    rss_parked = rt_test::vm_rss_kib();
    gate.done();
    done.wait();
    rss_after = rt_test::vm_rss_kib();
  });
  EXPECT_EQ(started_count.load(), n);
  EXPECT_EQ(finished.load(), n);
  if (!rt_test::kTsan) {  // TSan maps memory of its own for every fiber's logical thread
    EXPECT_LT(maps_parked, 65530) << "mappings while " << n << " fibers were parked";
  }
  double per_fiber = static_cast<double>(rss_parked - rss_before) * 1024.0 / static_cast<double>(n);
  std::printf(
      "[ measured ] %ld parked fibers: %.0f bytes RSS each, %ld mappings, RSS %ld -> %ld -> %ld "
      "KiB\n",
      n, per_fiber, maps_parked, rss_before, rss_parked, rss_after);
  RecordProperty("rss_bytes_per_parked_fiber", static_cast<int>(per_fiber));
  RecordProperty("maps_while_parked", static_cast<int>(maps_parked));
  if (!rt_test::kSanitized) {  // ASan/TSan shadow memory and fake stacks inflate RSS
    EXPECT_LT(per_fiber, 5.0 * 1024) << "RSS per parked fiber (target: 4.5 KiB)";
    EXPECT_LT(rss_after - rss_before, (rss_parked - rss_before) / 2)
        << "stacks of finished fibers were not given back to the OS";
  }
}

}  // namespace
