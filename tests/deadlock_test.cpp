// deadlock_test — the runtime's deadlock detector, as Go's: when every fiber is parked and
// nothing can ever wake one, the program prints
//   fatal error: all goroutines are asleep - deadlock!
//
//   fiber 1 [chan receive]:
//   <where it was spawned>
// to stderr, for every parked fiber, and exits with status 2; output written before is flushed
// first. And it must never fire while something *can* still wake a fiber: a pending timer (a
// sleeping fiber, a ticking loop, rt::after, a timed condition wait) or a plain thread that might
// use a channel.
//
// Each report is checked in a death test: "threadsafe" style re-executes this binary for the one
// test, so the child has a single thread when it calls rt::run (the detector is off while other
// threads exist); death-test children here create no std::thread unless the test is about one.
// The no-false-report cases run in death tests too, expecting exit status 0, so that a false
// report fails one assertion (showing the report) instead of killing the whole test binary.
// Under ThreadSanitizer, its background thread is accounted for by the runtime.
#include <rt/csp.hpp>

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <thread>
#include <vector>

using namespace std::chrono_literals;

#include "test_support.hpp"

namespace {

using rt_test::with_workers;

constexpr const char* kHeader = "fatal error: all goroutines are asleep - deadlock!\n\n";

class Deadlock : public ::testing::Test {
 protected:
  void SetUp() override { GTEST_FLAG_SET(death_test_style, "threadsafe"); }
};

// Runs `body` as rt::run's main on `n` workers, then exits with rt::run's result: a death test
// statement must end the process, and a false deadlock report would end it with 2 instead.
template <class F>
[[noreturn]] void run_and_exit(F body, unsigned n = 2) {
  const int rc = rt::run(body, with_workers(n));
  std::fflush(stdout);
  std::_Exit(rc);
}

}  // namespace

// ---- the report for each kind of wait ---------------------------------------------------------

TEST_F(Deadlock, MainBlockedOnReceive) {
  EXPECT_EXIT(run_and_exit([] {
                auto ch = rt::make_chan<int>();
                ch.recv();
              }),
              ::testing::ExitedWithCode(2),
              std::string("^") + kHeader + "fiber 1 \\[chan receive, [0-9]+ (ms|s|minutes)\\]:\n");
}

TEST_F(Deadlock, MainBlockedOnSend) {
  EXPECT_EXIT(run_and_exit([] {
                auto ch = rt::make_chan<int>();
                ch.send(1);
              }),
              ::testing::ExitedWithCode(2),
              std::string(kHeader) + "fiber 1 \\[chan send, [0-9]+ (ms|s|minutes)\\]:\n");
}

TEST_F(Deadlock, MainBlockedOnFullBufferedSend) {
  EXPECT_EXIT(run_and_exit([] {
                auto ch = rt::make_chan<int>(2);
                ch.send(1);
                ch.send(2);
                ch.send(3);
              }),
              ::testing::ExitedWithCode(2),
              std::string(kHeader) + "fiber 1 \\[chan send, [0-9]+ (ms|s|minutes)\\]:\n");
}

TEST_F(Deadlock, MainBlockedInSelect) {
  EXPECT_EXIT(run_and_exit([] {
                auto a = rt::make_chan<int>();
                auto b = rt::make_chan<int>();
                rt::select(rt::recv(a), rt::send(b, 1));
              }),
              ::testing::ExitedWithCode(2),
              std::string(kHeader) + "fiber 1 \\[select, [0-9]+ (ms|s|minutes)\\]:\n");
}

// A select whose every case is on a nil channel can never proceed (Go's `select {}`).
TEST_F(Deadlock, MainBlockedInSelectWithNoUsableCase) {
  EXPECT_EXIT(
      run_and_exit([] {
        rt::chan<int> nil;
        rt::select(rt::recv(nil), rt::send(nil, 1));
      }),
      ::testing::ExitedWithCode(2),
      std::string(kHeader) + "fiber 1 \\[select \\(no cases\\), [0-9]+ (ms|s|minutes)\\]:\n");
}

TEST_F(Deadlock, MainBlockedOnWaitGroup) {
  EXPECT_EXIT(run_and_exit([] {
                rt::wait_group wg;
                wg.add(1);
                wg.wait();
              }),
              ::testing::ExitedWithCode(2),
              std::string(kHeader) + "fiber 1 \\[wait_group, [0-9]+ (ms|s|minutes)\\]:\n");
}

TEST_F(Deadlock, MainBlockedOnMutex) {
  EXPECT_EXIT(run_and_exit([] {
                static rt::mutex mu;  // static: never destroyed while locked
                mu.lock();
                mu.lock();  // not recursive: parks forever
              }),
              ::testing::ExitedWithCode(2),
              std::string(kHeader) + "fiber 1 \\[mutex, [0-9]+ (ms|s|minutes)\\]:\n");
}

// Issue 12's sync objects name what a fiber waits on: a fn that calls its own once, a semaphore
// acquire that cannot be granted, an rwmutex read or write lock behind a holder that never comes.
TEST_F(Deadlock, MainBlockedOnOnce) {
  EXPECT_EXIT(run_and_exit([] {
                static rt::once o;
                o.call([] { o.call([] {}); });  // fn calls its own once: waits for itself
              }),
              ::testing::ExitedWithCode(2),
              std::string(kHeader) + "fiber 1 \\[once, [0-9]+ (ms|s|minutes)\\]:\n");
}

TEST_F(Deadlock, MainBlockedOnSemaphore) {
  EXPECT_EXIT(run_and_exit([] {
                static rt::semaphore sem(2);
                sem.acquire(1);
                sem.acquire(2);
              }),
              ::testing::ExitedWithCode(2),
              std::string(kHeader) + "fiber 1 \\[semaphore acquire, [0-9]+ (ms|s|minutes)\\]:\n");
}

TEST_F(Deadlock, MainBlockedOnRWMutex) {
  EXPECT_EXIT(run_and_exit([] {
                static rt::rwmutex mu;
                mu.lock();
                mu.lock_shared();
              }),
              ::testing::ExitedWithCode(2),
              std::string(kHeader) + "fiber 1 \\[rwmutex read lock, [0-9]+ (ms|s|minutes)\\]:\n");
  EXPECT_EXIT(run_and_exit([] {
                static rt::rwmutex mu;
                mu.lock_shared();
                mu.lock();
              }),
              ::testing::ExitedWithCode(2),
              std::string(kHeader) + "fiber 1 \\[rwmutex write lock, [0-9]+ (ms|s|minutes)\\]:\n");
}

TEST_F(Deadlock, MainBlockedOnNilChannel) {
  EXPECT_EXIT(
      run_and_exit([] {
        rt::chan<int> nil;
        nil.recv();
      }),
      ::testing::ExitedWithCode(2),
      std::string(kHeader) + "fiber 1 \\[chan receive \\(nil chan\\), [0-9]+ (ms|s|minutes)\\]:\n");
  EXPECT_EXIT(
      run_and_exit([] {
        rt::chan<int> nil;
        nil.send(1);
      }),
      ::testing::ExitedWithCode(2),
      std::string(kHeader) + "fiber 1 \\[chan send \\(nil chan\\), [0-9]+ (ms|s|minutes)\\]:\n");
}

TEST_F(Deadlock, MainBlockedOnConditionVariable) {
  EXPECT_EXIT(run_and_exit([] {
                rt::mutex mu;
                rt::condition_variable cv;
                std::unique_lock lk(mu);
                cv.wait(lk);
              }),
              ::testing::ExitedWithCode(2),
              std::string(kHeader) + "fiber 1 \\[condition_variable, [0-9]+ (ms|s|minutes)\\]:\n");
}

// Every parked fiber is listed, by id in ascending order, with the file:line of the rt::go that
// spawned it — here, this file. Fibers that finished are not listed.
TEST_F(Deadlock, ReportListsEveryParkedFiberWithItsSpawnSite) {
  EXPECT_EXIT(run_and_exit([] {
                auto ch = rt::make_chan<int>();
                auto other = rt::make_chan<int>();
                auto started = rt::make_chan<int>(3);
                rt::mutex* mu = new rt::mutex;  // leaked on purpose: locked when the process exits
                mu->lock();
                rt::go([ch, started]() mutable {  // blocks receiving
                  started.send(0);
                  ch.recv();
                });
                rt::go([other, started]() mutable {  // blocks sending
                  started.send(0);
                  other.send(1);
                });
                rt::go([mu, started]() mutable {  // blocks on the mutex main holds
                  started.send(0);
                  mu->lock();
                });
                rt::go([] {});  // finishes: not in the report
                for (int i = 0; i < 3; ++i) started.recv();
                ch.recv();  // main joins them
              }),
              ::testing::ExitedWithCode(2),
              std::string(kHeader) +
                  "fiber 1 \\[chan receive, [0-9]+ (ms|s|minutes)\\]:\n(.+\n)*created by "
                  "[^\n]*\n\t[^\n]*\n\n"
                  "fiber [0-9]+ \\[chan receive, [0-9]+ (ms|s|minutes)\\]:\n(.+\n)*created by "
                  "[^\n]*\n\t[^\n]*deadlock_test\\.cpp:[0-9]+\n\n"
                  "fiber [0-9]+ \\[chan send, [0-9]+ (ms|s|minutes)\\]:\n(.+\n)*created by "
                  "[^\n]*\n\t[^\n]*deadlock_test\\.cpp:[0-9]+\n\n"
                  "fiber [0-9]+ \\[mutex, [0-9]+ (ms|s|minutes)\\]:\n(.+\n)*created by "
                  "[^\n]*\n\t[^\n]*deadlock_test\\.cpp:[0-9]+\n$");
}

// Each fiber is listed with its stack, as Go prints a goroutine: the blocking call into
// librt-csp first (runtime frames hidden), then the user's function with the file:line of that
// call, then "created by" (issue 10).
constexpr int kBlockedRecvLine = __LINE__ + 3;
[[gnu::noinline]] int wait_on(rt::chan<int> ch) {
  rt::this_fiber::set_name("waiter");
  return ch.recv().value_or(0) + 1;  // not a tail call: this frame stays on the stack
}

TEST_F(Deadlock, ReportShowsEachFibersStack) {
  EXPECT_EXIT(run_and_exit([] {
                auto ch = rt::make_chan<int>();
                rt::wait_group wg;
                wg.add(1);
                rt::go([ch, &wg] {
                  std::printf("%d", wait_on(ch));
                  wg.done();
                });
                wg.wait();
              }),
              ::testing::ExitedWithCode(2),
              std::string(kHeader) +
                  "fiber 1 \\[wait_group, [0-9]+ (ms|s|minutes)\\]:\n"
                  "(.+\n)*created by [^\n]*\n\t[^\n]*\n\n"
                  "fiber [0-9]+ \"waiter\" \\[chan receive, [0-9]+ (ms|s|minutes)\\]:\n"
                  "rt::chan<int>::recv\\(\\)\n\t[^\n]*rt/chan\\.hpp:[0-9]+\n"
                  "wait_on\\(rt::chan<int>\\)\n\t[^\n]*deadlock_test\\.cpp:" +
                  std::to_string(kBlockedRecvLine) +
                  "\n"
                  "(.+\n)*created by [^\n]*\n\t[^\n]*deadlock_test\\.cpp:[0-9]+\n$");
}

// A deadlock with the main fiber not among the parked (it waits on a wait_group that the parked
// fibers would have to finish): still detected, on several workers.
TEST_F(Deadlock, DetectedOnEveryWorkerCount) {
  for (unsigned n : {1u, 4u}) {
    EXPECT_EXIT(run_and_exit(
                    [] {
                      rt::wait_group wg;
                      auto ch = rt::make_chan<int>();
                      for (int i = 0; i < 100; ++i) {
                        wg.add(1);
                        rt::go([&wg, ch]() mutable {
                          ch.recv();
                          wg.done();
                        });
                      }
                      wg.wait();
                    },
                    n),
                ::testing::ExitedWithCode(2),
                std::string(kHeader) +
                    "fiber 1 \\[wait_group, [0-9]+ (ms|s|minutes)\\]:\n(.|\n)*\\[chan receive");
  }
}

// Output written before the deadlock — through printf and std::cout, fully buffered and not yet
// flushed — appears before the report. stdout is not captured by death tests, so the child points
// its stdout at its stderr (the captured stream) first, with a full buffer: only the runtime's
// flush before exiting can bring those bytes out.
TEST_F(Deadlock, OutputWrittenBeforeTheDeadlockIsFlushedFirst) {
  EXPECT_EXIT(
      {
        std::fflush(stdout);
        dup2(2, 1);
        static char buf[1 << 16];
        std::setvbuf(stdout, buf, _IOFBF, sizeof buf);
        run_and_exit([] {
          std::printf("printed before the deadlock\n");
          std::cout << "and through std::cout\n";
          auto ch = rt::make_chan<int>();
          ch.recv();
        });
      },
      ::testing::ExitedWithCode(2),
      std::string("printed before the deadlock\nand through std::cout\n") + kHeader +
          "fiber 1 \\[chan receive, [0-9]+ (ms|s|minutes)\\]:\n");
}

// ---- no false reports ---------------------------------------------------------------------

// 1000 fibers blocked on a channel while the only other fiber sleeps: the pending timer can wake
// it, and it then releases them all. Not a deadlock.
TEST_F(Deadlock, NoReportWhileAFiberSleeps) {
  EXPECT_EXIT(run_and_exit([] {
                auto ch = rt::make_chan<int>();
                rt::wait_group wg;
                for (int i = 0; i < 1000; ++i) {
                  wg.add(1);
                  rt::go([&wg, ch]() mutable {
                    ch.recv();
                    wg.done();
                  });
                }
                rt::go([ch]() mutable {
                  rt::sleep_for(100ms);
                  ch.close();
                });
                wg.wait();
              }),
              ::testing::ExitedWithCode(0), "");
}

// A ticker: one fiber sleeps 1 ms fifty times, sending a tick each time to a fiber that counts
// them, while 500 others wait for the last tick. Between ticks every fiber is parked and only a
// timer is pending, again and again.
TEST_F(Deadlock, NoReportWithATickingTimer) {
  EXPECT_EXIT(run_and_exit(
                  [] {
                    auto ticks = rt::make_chan<int>();
                    auto release = rt::make_chan<int>();
                    rt::wait_group wg;
                    for (int i = 0; i < 500; ++i) {
                      wg.add(1);
                      rt::go([&wg, release]() mutable {
                        release.recv();
                        wg.done();
                      });
                    }
                    rt::go([ticks]() mutable {
                      for (int i = 0; i < 50; ++i) {
                        rt::sleep_for(1ms);
                        ticks.send(i);
                      }
                      ticks.close();
                    });
                    int n = 0;
                    for (int t : ticks) n += t >= 0;
                    release.close();
                    wg.wait();
                    return n == 50 ? 0 : 1;
                  },
                  1),
              ::testing::ExitedWithCode(0), "");
}

// Main parked in a select whose only way out is an rt::after timer (no fiber sleeps: the timer
// alone is pending); and a fiber in a timed condition-variable wait.
TEST_F(Deadlock, NoReportWhileOnlyATimeoutIsPending) {
  EXPECT_EXIT(run_and_exit([] {
                auto never = rt::make_chan<int>();
                int k = static_cast<int>(rt::select(rt::recv(never), rt::recv(rt::after(50ms))));
                rt::mutex mu;
                rt::condition_variable cv;
                std::unique_lock lk(mu);
                const bool timed_out = cv.wait_for(lk, 50ms) == std::cv_status::timeout;
                return k == 1 && timed_out ? 0 : 1;
              }),
              ::testing::ExitedWithCode(0), "");
}

// Every fiber blocked while a plain std::thread exists that will send to them later: the thread
// could still wake them, so there is no report, and the program completes.
TEST_F(Deadlock, NoReportWhileAPlainThreadMaySend) {
  EXPECT_EXIT(run_and_exit([] {
                auto ch = rt::make_chan<int>();
                std::thread t([ch]() mutable {
                  std::this_thread::sleep_for(100ms);  // every fiber is parked meanwhile
                  for (int i = 0; i < 100; ++i) ch.send(i);
                });
                rt::wait_group wg;
                for (int i = 0; i < 99; ++i) {
                  wg.add(1);
                  rt::go([&wg, ch]() mutable {
                    ch.recv();
                    wg.done();
                  });
                }
                ch.recv();
                wg.wait();
                t.join();
              }),
              ::testing::ExitedWithCode(0), "");
}

// The detector does not fire during an ordinary busy program either: many short runs with
// fibers parking and waking constantly on several workers, each ending normally.
TEST_F(Deadlock, NoReportUnderLoad) {
  EXPECT_EXIT(run_and_exit([] {
                for (int round = 0; round < 20; ++round) {
                  auto ch = rt::make_chan<int>();
                  rt::wait_group wg;
                  for (int p = 0; p < 8; ++p) {
                    wg.add(1);
                    rt::go([&wg, ch]() mutable {
                      for (int i = 0; i < 500; ++i) ch.send(i);
                      wg.done();
                    });
                  }
                  rt::go([&wg, ch]() mutable {
                    wg.wait();
                    ch.close();
                  });
                  for (int v : ch) (void)v;
                }
              }),
              ::testing::ExitedWithCode(0), "");
}
