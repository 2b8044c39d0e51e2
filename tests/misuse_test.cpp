// tests/misuse_test.cpp — every way of misusing the runtime fails loudly and recoverably with
// rt::runtime_error (catchable as std::runtime_error) whose what() says what went wrong:
// rt::go with no rt::run running, rt::run inside a fiber, rt::run while another runs, bad options,
// and a wait_group counter going negative (which also leaves the counter unchanged). After each,
// the process can carry on using the runtime.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <rt/csp.hpp>

#include <atomic>
#include <string>
#include <thread>
#include <type_traits>

#include "test_support.hpp"

namespace {

using rt_test::lifetime_counter;
using rt_test::tracked;
using rt_test::what_of;
using rt_test::with_workers;
using ::testing::HasSubstr;

static_assert(std::is_base_of_v<std::runtime_error, rt::runtime_error>);
static_assert(std::is_base_of_v<std::logic_error, rt::channel_closed>);

TEST(Misuse, GoOutsideRunThrows) {
  std::string what = what_of<rt::runtime_error>([] { rt::go([] {}); });
  EXPECT_THAT(what, HasSubstr("rt::run"));
  EXPECT_THAT(what, HasSubstr("rt::go"));
}

// The callable (and arguments) given to a failed rt::go are destroyed, not leaked or run.
TEST(Misuse, GoOutsideRunDestroysTheCallable) {
  lifetime_counter c;
  bool ran = false;
  EXPECT_THROW(rt::go([t = tracked(c), &ran] { ran = true; }), rt::runtime_error);
  EXPECT_THROW(rt::go([&ran](tracked) { ran = true; }, tracked(c)), std::runtime_error);
  EXPECT_FALSE(ran);
  EXPECT_EQ(c.live(), 0);
}

// Also from a plain thread before any run, and after rt::run returned.
TEST(Misuse, GoFromPlainThreadWithNoRuntimeThrows) {
  std::string before, after;
  std::thread([&] { before = what_of<rt::runtime_error>([] { rt::go([] {}); }); }).join();
  rt::run([] {});
  std::thread([&] { after = what_of<rt::runtime_error>([] { rt::go([] {}); }); }).join();
  EXPECT_THAT(before, HasSubstr("rt::run"));
  EXPECT_THAT(after, HasSubstr("rt::run"));
}

TEST(Misuse, RunInsideMainFiberThrows) {
  std::string what;
  bool inner_ran = false;
  int rc = rt::run([&] {
    what = what_of<rt::runtime_error>([&] { rt::run([&] { inner_ran = true; }); });
    return 5;  // the outer runtime is unaffected
  });
  EXPECT_EQ(rc, 5);
  EXPECT_FALSE(inner_ran);
  EXPECT_THAT(what, HasSubstr("fiber"));
  EXPECT_THAT(what, HasSubstr("rt::run"));
}

TEST(Misuse, RunInsideSpawnedFiberThrows) {
  std::string what;
  rt::run(
      [&] {
        rt::wait_group wg;
        wg.add(1);
        rt::go([&] {
          what = what_of<rt::runtime_error>([] { rt::run([] {}); });
          wg.done();
        });
        wg.wait();
      },
      with_workers(2));
  EXPECT_THAT(what, HasSubstr("fiber"));
}

// A second rt::run from another OS thread while one is running.
TEST(Misuse, ConcurrentRunFromAnotherThreadThrows) {
  std::string what;
  bool inner_ran = false;
  rt::run(
      [&] {
        std::thread t([&] {
          what = what_of<rt::runtime_error>([&] { rt::run([&] { inner_ran = true; }); });
        });
        t.join();  // blocks this worker briefly; the other thread needs no fiber to finish
      },
      with_workers(2));
  EXPECT_FALSE(inner_ran);
  EXPECT_THAT(what, HasSubstr("rt::run"));
  EXPECT_THAT(what, HasSubstr("another"));
  // Once the first returned, the other thread may run its own.
  int rc = 0;
  std::thread([&] { rc = rt::run([] { return 9; }); }).join();
  EXPECT_EQ(rc, 9);
}

TEST(Misuse, BadOptionsThrowAndRuntimeStaysUsable) {
  rt::options too_small;
  too_small.stack_size = 1024;
  std::string w1 = what_of<rt::runtime_error>([&] { rt::run([] {}, too_small); });
  EXPECT_THAT(w1, HasSubstr("stack_size"));
  EXPECT_THAT(w1, HasSubstr("1024"));

  rt::options too_big;
  too_big.stack_size = std::size_t{4} << 30;
  std::string w2 = what_of<rt::runtime_error>([&] { rt::run([] {}, too_big); });
  EXPECT_THAT(w2, HasSubstr("stack_size"));

  std::string w3 = what_of<rt::runtime_error>([&] { rt::run([] {}, with_workers(5000)); });
  EXPECT_THAT(w3, HasSubstr("workers"));
  EXPECT_THAT(w3, HasSubstr("1024"));  // says the limit

  EXPECT_EQ(rt::run([] { return 4; }, with_workers(2)), 4);
}

TEST(Misuse, NegativeWaitGroupCounterThrowsAndLeavesCounterUnchanged) {
  rt::wait_group wg;
  EXPECT_EQ(what_of<rt::runtime_error>([&] { wg.done(); }), "negative wait_group counter");
  EXPECT_EQ(what_of<rt::runtime_error>([&] { wg.add(-1); }), "negative wait_group counter");
  wg.wait();  // still zero: returns at once

  wg.add(2);
  EXPECT_EQ(what_of<rt::runtime_error>([&] { wg.add(-3); }), "negative wait_group counter");
  // Still 2: two done() calls bring it to zero, a third one is negative again.
  wg.done();
  wg.done();
  wg.wait();
  EXPECT_THROW(wg.done(), rt::runtime_error);
  wg.wait();
}

TEST(Misuse, NegativeWaitGroupCounterInsideFibers) {
  std::atomic<int> thrown{0};
  std::atomic<bool> released{false};
  rt::run(
      [&] {
        rt::wait_group wg, done;
        wg.add(1);
        done.add(11);
        // A waiter on wg must not be woken by a failed add that would have crossed zero.
        rt::go([&] {
          wg.wait();
          EXPECT_TRUE(released.load()) << "woken by a failed negative add";
          done.done();
        });
        for (int i = 0; i < 10; ++i) {
          rt::go([&] {
            try {
              wg.add(-2);
            } catch (const rt::runtime_error& e) {
              EXPECT_STREQ(e.what(), "negative wait_group counter");
              thrown.fetch_add(1);
            }
            done.done();
          });
        }
        while (thrown.load() < 10) rt::yield();
        released.store(true);
        wg.done();
        done.wait();
      },
      with_workers(2));
  EXPECT_EQ(thrown.load(), 10);
}

}  // namespace
