// tests/shutdown_test.cpp — rt::run's shutdown with fibers left over (issue 9), and rt::mutex's
// unlock misuse. When main returns, fibers still parked or runnable are abandoned, as Go
// abandons goroutines: none runs again — no catch block, no destructor of its frames — so none
// can touch main's destroyed frame, hang rt::run or change its outcome; their waiters are
// unlinked from every queue and the mutexes they hold are released, so global sync objects work
// after rt::run returns and in the next rt::run.
#include <gtest/gtest.h>
#include <rt/csp.hpp>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

#include "test_support.hpp"

namespace {

using namespace std::chrono_literals;
using rt_test::kSlow;
using rt_test::with_workers;

// Each fiber parks on a channel that nobody will ever send on.
rt::chan<int> never() {
  static rt::chan<int> ch = rt::make_chan<int>();
  return ch;
}

// Item 1: a leftover fiber parked on a channel whose only handle was in main's frame. The
// channel is destroyed with main's frame; shutdown must not touch it (ASan, Valgrind: invalid
// read in the old unwinding path). One worker: nothing runs concurrently with main's return, so
// the fiber is either parked in recv() by then or never runs again.
TEST(Shutdown, Item1LeftoverOnMainsChannelTouchesNothingFreed) {
  for (int round = 0; round < 20; ++round) {
    std::atomic<int> resumed{0};
    const int r = rt::run(
        [&] {
          auto done = rt::make_chan<int>();
          auto done2 = rt::make_chan<int>();
          rt::wait_group started;
          started.add(2);
          rt::go([&] {
            started.done();
            done.recv();  // `done` dies with main's frame
            resumed.fetch_add(1);
          });
          rt::go([&] {
            started.done();
            done2.send(1);  // so does `done2`
            resumed.fetch_add(1);
          });
          started.wait();
          rt::yield();
          return 7;
        },
        with_workers(1));
    EXPECT_EQ(r, 7);
    EXPECT_EQ(resumed.load(), 0);
  }
}

// Item 2: a fiber that catches everything around a blocking call, a sleep or a yield, and loops,
// would spin forever if shutdown threw into it. It is never resumed: rt::run returns. (Before:
// rt::run spun at 100% CPU forever; the ctest timeout catches a regression.)
TEST(Shutdown, Item2SwallowingFibersDoNotHangRun) {
  std::atomic<int> caught{0};
  for (unsigned workers : {1u, 2u, 4u, 8u}) {
    const int r = rt::run(
        [&] {
          rt::wait_group started;
          started.add(3);
          // Loops forever around `op`, catching anything thrown out of it.
          auto swallow_around = [&](auto op) {
            rt::go([&started, &caught, op] {
              started.done();
              for (;;) {
                try {
                  op();
                } catch (...) {
                  caught.fetch_add(1);
                }
              }
            });
          };
          swallow_around([] { never().recv(); });
          swallow_around([] { rt::sleep_for(1h); });
          swallow_around([] { rt::yield(); });
          started.wait();
          return 3;
        },
        with_workers(workers));
    EXPECT_EQ(r, 3);
  }
  EXPECT_EQ(caught.load(), 0) << "shutdown threw into a leftover fiber";
  EXPECT_EQ(rt::run([] { return 2; }, with_workers(2)), 2);
}

// Item 3: a fiber parked inside a destructor during exception unwinding, on a global channel.
// It is abandoned and its waiter unlinked: the channel is usable after rt::run (before: its
// waiter stayed linked, and a try_send after rt::run crashed writing into the dead frame).
rt::chan<int> g_item3 = rt::make_chan<int>();

TEST(Shutdown, Item3FiberParkedInDestructorLeavesGlobalChannelClean) {
  struct recv_on_destroy {
    rt::wait_group* started;
    ~recv_on_destroy() {
      started->done();
      auto v = g_item3.recv();  // parks with uncaught_exceptions() == 1
      (void)v;
      std::abort();  // never reached: nobody sends, and shutdown does not resume it
    }
  };
  for (int round = 0; round < 10; ++round) {
    rt::run(
        [] {
          rt::wait_group started;
          started.add(1);
          rt::go([&started] {
            try {
              recv_on_destroy guard{&started};
              throw std::runtime_error("unwinding");
            } catch (const std::exception&) {
            }
          });
          started.wait();
          rt::yield();
        },
        with_workers(1));
    int v = 42;
    EXPECT_FALSE(g_item3.try_send(v)) << "a receiver of a finished rt::run is still linked";
    EXPECT_FALSE(g_item3.try_recv().has_value());
  }
  // The channel works in the next run.
  const int got = rt::run(
      [] {
        rt::go([] { g_item3.send(5); });
        return *g_item3.recv();
      },
      with_workers(2));
  EXPECT_EQ(got, 5);
}

// The cases of a select abandoned at shutdown are unlinked from every channel.
rt::chan<int> g_sel_a = rt::make_chan<int>();
rt::chan<int> g_sel_b = rt::make_chan<int>();

TEST(Shutdown, SelectCasesOfLeftoverAreUnlinked) {
  for (int round = 0; round < 10; ++round) {
    rt::run(
        [] {
          rt::wait_group started;
          started.add(8);
          for (int i = 0; i < 8; ++i) {
            rt::go([&started] {
              started.done();
              rt::select(rt::recv(g_sel_a), rt::send(g_sel_b, 1), rt::recv(never()));
              std::abort();  // nobody completes a case, and shutdown does not resume it
            });
          }
          started.wait();
          rt::yield();
        },
        with_workers(1u << (round % 4)));
    int v = 1;
    EXPECT_FALSE(g_sel_a.try_send(v));
    EXPECT_FALSE(g_sel_b.try_recv().has_value());
  }
}

// Item 4: a fiber that would translate the shutdown into an exception of its own cannot turn
// main's normal return into a panic (exit 2), nor make rt::run throw with capture_panics.
int run_with_translating_leftover(bool capture) {
  rt::options o = with_workers(2);
  o.capture_panics = capture;
  return rt::run(
      [] {
        rt::wait_group started;
        started.add(4);
        for (int i = 0; i < 4; ++i) {
          rt::go([&started] {
            try {
              started.done();
              never().recv();
            } catch (...) {
              throw std::runtime_error("request failed");
            }
          });
        }
        started.wait();
        return 0;
      },
      o);
}

TEST(Shutdown, Item4TranslatingLeftoverDoesNotChangeOutcome) {
  EXPECT_EXIT(std::exit(run_with_translating_leftover(false)), testing::ExitedWithCode(0), "");
  for (int i = 0; i < 10; ++i) {
    EXPECT_NO_THROW(EXPECT_EQ(run_with_translating_leftover(true), 0));
  }
}

// Item 5: a global mutex held by a leftover fiber (while other leftovers wait for it, and a
// destructor of one would lock it) is released at shutdown: unlocked after rt::run, usable in
// the next rt::run, and not "destroyed while locked" at static destruction. Both spawn orders.
rt::mutex g_item5;

void run_item5_round(bool holder_first, unsigned workers = 2) {
  struct lock_on_destroy {
    ~lock_on_destroy() {
      std::lock_guard lk(g_item5);  // would run only if shutdown unwound the fiber
    }
  };
  rt::run(
      [holder_first] {
        rt::wait_group started;
        auto waiter = [&started] {
          lock_on_destroy guard;
          started.done();
          never().recv();
        };
        // Started by the holder once it holds the mutex: parks in lock(); at shutdown it is
        // unlinked, never handed the mutex.
        auto lock_waiter = [&started] {
          started.done();
          std::lock_guard lk(g_item5);
          std::abort();
        };
        started.add(3);
        auto holder = [&started, lock_waiter] {
          std::lock_guard lk(g_item5);
          rt::go(lock_waiter);
          started.done();
          never().recv();
        };
        if (holder_first) {
          rt::go(holder);
          rt::go(waiter);
        } else {
          rt::go(waiter);
          rt::go(holder);
        }
        started.wait();
      },
      with_workers(workers));
}

TEST(Shutdown, Item5MutexHeldByLeftoverIsReleased) {
  for (int round = 0; round < 20; ++round) {
    run_item5_round(round % 2 == 0, 1u << (round / 2 % 4));
    ASSERT_TRUE(g_item5.try_lock()) << "a leftover fiber still holds the global mutex";
    g_item5.unlock();
  }
  // Usable by fibers in the next run.
  std::atomic<int> n{0};
  rt::run(
      [&] {
        rt::wait_group wg;
        for (int i = 0; i < 100; ++i) {
          wg.add(1);
          rt::go([&] {
            std::lock_guard lk(g_item5);
            n.fetch_add(1);
            wg.done();
          });
        }
        wg.wait();
      },
      with_workers(4));
  EXPECT_EQ(n.load(), 100);
  // And in a process that ends right after such a run, static destruction finds it unlocked.
  EXPECT_EXIT(
      {
        run_item5_round(true);
        std::exit(0);
      },
      testing::ExitedWithCode(0), "");
}

// Item 5, with a plain thread waiting for the mutex a leftover fiber holds: shutdown hands it
// the mutex.
TEST(Shutdown, Item5MutexOfLeftoverGoesToWaitingThread) {
  for (int round = 0; round < 10; ++round) {
    std::atomic<bool> thread_got{false};
    std::thread t;
    rt::run(
        [&] {
          rt::wait_group held;
          held.add(1);
          rt::go([&held] {
            g_item5.lock();
            held.done();
            never().recv();
          });
          held.wait();
          t = std::thread([&] {
            std::lock_guard lk(g_item5);  // blocks until shutdown releases it
            thread_got.store(true);
          });
        },
        with_workers(2));
    t.join();
    EXPECT_TRUE(thread_got.load());
    ASSERT_TRUE(g_item5.try_lock());
    g_item5.unlock();
  }
}

// Item 6: a plain thread in condition_variable::wait_for while rt::run tears down, with many
// fibers in cv.wait: rt::run returns (before: about 1 run in 3 hung — the thread waited for the
// teardown holding the cv's spinlock, which the teardown needed).
TEST(Shutdown, Item6PlainThreadInWaitForDoesNotHangTeardown) {
  const int fibers = 3000 / kSlow;
  const int rounds = 30 / (rt_test::kSanitized ? 3 : 1);
  auto mu = std::make_unique<rt::mutex>();
  auto cv = std::make_unique<rt::condition_variable>();
  for (int round = 0; round < rounds; ++round) {
    std::atomic<bool> stop{false};
    std::thread waiter([&] {
      while (!stop.load()) {
        std::unique_lock lk(*mu);
        cv->wait_for(lk, 10us);
      }
    });
    rt::run(
        [&] {
          rt::wait_group started;
          started.add(fibers);
          for (int i = 0; i < fibers; ++i) {
            rt::go([&] {
              std::unique_lock lk(*mu);
              started.done();
              cv->wait(lk);
            });
          }
          started.wait();
        },
        with_workers(1u << (round % 4)));  // 1, 2, 4, 8
    stop.store(true);
    waiter.join();
  }
  ASSERT_TRUE(mu->try_lock());
  mu->unlock();
}

// Item 11: rt::run's thread runs no fiber code at shutdown, so nothing of a leftover fiber can
// overflow there (before: the unwinding ran catch blocks on rt::run's thread, which had no
// alternate signal stack, and an overflow killed the process silently).
[[gnu::noinline]] int recurse(int depth) {
  volatile char pad[4096];
  pad[0] = static_cast<char>(depth);
  return depth > 1 << 30 ? pad[0] : recurse(depth + 1) + pad[0];
}

TEST(Shutdown, Item11LeftoverCodeNeverRunsOnRunsThread) {
  EXPECT_EXIT(
      {
        struct overflow_on_destroy {
          ~overflow_on_destroy() { recurse(0); }
        };
        rt::run(
            [] {
              rt::wait_group started;
              started.add(2);
              rt::go([&started] {
                try {
                  started.done();
                  never().recv();
                } catch (...) {
                  recurse(0);
                }
              });
              rt::go([&started] {
                overflow_on_destroy guard;
                started.done();
                never().recv();
              });
              started.wait();
            },
            with_workers(2));
        std::exit(0);
      },
      testing::ExitedWithCode(0), "");
}

// The thread that called rt::run never runs fiber code, so also none of main's.
TEST(Shutdown, Item11RunsThreadRunsNoFiber) {
  const auto caller = std::this_thread::get_id();
  std::atomic<int> on_caller{0};
  for (int i = 0; i < 20; ++i) {
    rt::run(
        [&] {
          if (rt_test::current_thread() == caller) on_caller.fetch_add(1);
          for (int j = 0; j < 10; ++j) {
            rt::go([&] {
              if (rt_test::current_thread() == caller) on_caller.fetch_add(1);
              never().recv();
            });
          }
          rt::yield();
        },
        with_workers(2));
  }
  EXPECT_EQ(on_caller.load(), 0);
}

// What shutdown promises besides: leftovers' frames are not unwound (their destructors do not
// run, as a goroutine's deferred calls do not), every leftover's callable is destroyed (captured
// objects released), and rt::run works again.
TEST(Shutdown, LeftoverFramesAreAbandonedNotUnwound) {
  rt_test::lifetime_counter locals, captured, unstarted;
  for (unsigned workers : {1u, 2u, 4u, 8u}) {
    rt::run(
        [&] {
          rt::wait_group started;
          started.add(30);
          for (int i = 0; i < 10; ++i) {
            rt::go([&, t = rt_test::tracked(captured)] {
              rt_test::tracked local(locals);
              started.done();
              never().recv();
            });
            rt::go([&] {
              rt_test::tracked local(locals);
              started.done();
              rt::sleep_for(1h);
            });
            rt::go([&] {
              rt_test::tracked local(locals);
              started.done();
              for (;;) rt::yield();
            });
          }
          started.wait();
          for (int i = 0; i < 10; ++i) rt::go([t = rt_test::tracked(unstarted)] {});
        },
        with_workers(workers));
  }
  EXPECT_EQ(locals.live(), locals.constructed.load()) << "a leftover's destructor ran";
  EXPECT_EQ(captured.live(), 0) << "a started leftover's callable was not destroyed";
  EXPECT_EQ(unstarted.live(), 0) << "a never-started fiber's callable was not destroyed";
  EXPECT_EQ(rt::run([] { return 9; }, with_workers(2)), 9);
}

// Item 13: unlocking an unlocked rt::mutex, or one held by somebody else, is a fatal error, as
// Go's "fatal error: sync: unlock of unlocked mutex" (before: silently accepted).
TEST(MutexMisuseDeathTest, Item13UnlockOfUnlockedMutexInFiber) {
  EXPECT_EXIT(rt::run(
                  [] {
                    rt::mutex mu;
                    mu.unlock();
                  },
                  with_workers(1)),
              testing::ExitedWithCode(2), "fatal error: sync: unlock of unlocked mutex");
}

TEST(MutexMisuseDeathTest, Item13UnlockOfUnlockedMutexOnPlainThread) {
  EXPECT_EXIT(
      {
        rt::mutex mu;
        mu.unlock();
      },
      testing::ExitedWithCode(2), "fatal error: sync: unlock of unlocked mutex");
}

TEST(MutexMisuseDeathTest, Item13UnlockByFiberThatDoesNotHoldIt) {
  EXPECT_EXIT(rt::run(
                  [] {
                    rt::mutex mu;
                    mu.lock();
                    rt::wait_group done;
                    done.add(1);
                    rt::go([&] {
                      mu.unlock();  // fiber 2 unlocks what fiber 1 holds
                      done.done();
                    });
                    done.wait();
                  },
                  with_workers(2)),
              testing::ExitedWithCode(2),
              "fatal error: sync: unlock of mutex held by another \\(rt::mutex::unlock called "
              "by fiber [0-9]+; fiber 1 holds it\\)");
}

TEST(MutexMisuseDeathTest, Item13UnlockByThreadOfMutexHeldByFiber) {
  EXPECT_EXIT(
      {
        rt::mutex mu;
        rt::run(
            [&] {
              mu.lock();
              std::thread([&] { mu.unlock(); }).join();
            },
            with_workers(1));
      },
      testing::ExitedWithCode(2), "fatal error: sync: unlock of mutex held by another");
}

// Ownership follows the hand-off: a fiber (or thread) handed the mutex by unlock() may unlock
// it, and lock/unlock pairs across fibers, threads and condition_variable waits never trip the
// check.
TEST(Shutdown, Item13LegalUnlocksAreAccepted) {
  rt::mutex mu;
  rt::condition_variable cv;
  long counter = 0;
  bool ready = false;
  std::thread plain([&] {
    for (int i = 0; i < 2000 / kSlow; ++i) {
      std::lock_guard lk(mu);
      ++counter;
    }
  });
  rt::run(
      [&] {
        rt::wait_group wg;
        for (int i = 0; i < 16; ++i) {
          wg.add(1);
          rt::go([&] {
            for (int j = 0; j < 500 / kSlow; ++j) {
              std::unique_lock lk(mu);
              ++counter;
              if (j % 50 == 0) cv.wait_for(lk, 1us);
            }
            wg.done();
          });
        }
        wg.add(1);
        rt::go([&] {
          std::unique_lock lk(mu);
          cv.wait(lk, [&] { return ready; });
          wg.done();
        });
        {
          std::lock_guard lk(mu);
          ready = true;
        }
        cv.notify_all();
        wg.wait();
      },
      with_workers(4));
  plain.join();
  EXPECT_EQ(counter, 16 * (500 / kSlow) + 2000 / kSlow);
}

// A fiber's callable is destroyed while the fiber is still its holder: a unique_lock kept among
// the captures and still locked when the body returns unlocks as the holder, not as a stranger
// (before: "unlock of mutex held by another", exit 2).
TEST(Shutdown, Item13CapturedLockReleasedWhenCallableIsDestroyed) {
  rt::mutex mu;
  rt::run(
      [&] {
        rt::wait_group wg;
        wg.add(1);
        rt::go([&wg, lk = std::unique_lock<rt::mutex>(mu, std::defer_lock)]() mutable {
          lk.lock();
          wg.done();
        });
        wg.wait();
        std::lock_guard relock(mu);  // free again once the child's callable is gone
      },
      with_workers(1));
  ASSERT_TRUE(mu.try_lock());
  mu.unlock();
}

}  // namespace
