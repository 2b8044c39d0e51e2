// timer_test — who runs a timer, and deadlines at the edge of the clock (issue 9):
//   - a timer whose worker is held by a fiber that never yields is run by another worker — one
//     that was idle (asleep in the kernel) when the timer was armed: an idle worker never sleeps
//     past the earliest timer of *any* worker, and a timer armed earlier than what the idle
//     workers sleep until wakes one of them to look again;
//   - the same with every worker but one held, at 2, 4 and 8 workers: the free worker runs every
//     held worker's timers (timer stealing, docs/design.md "Stealing");
//   - deadlines saturate: sleep_for(nanoseconds::max()), after(300 years) and
//     cv.wait_for(300 years) wait (practically) forever instead of overflowing into the past;
//   - rt::after outside rt::run names rt::after in its error.
// No timing thresholds: a timer nobody runs leaves its hog spinning, and the test hangs until
// ctest's timeout fails it. The 10 ms sleeps only create timer scenarios.
#include <rt/csp.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <limits>
#include <mutex>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

#include "test_support.hpp"

namespace {

using rt_test::current_thread;
using rt_test::kSlow;
using rt_test::what_of;
using rt_test::with_workers;

// Holds its worker without ever yielding until `release` is set (an OS-level yield keeps the
// 2-core CI machine usable; it does not let the worker run anything else).
void hog_until(const std::atomic<bool>& release) {
  while (!release.load(std::memory_order_acquire)) std::this_thread::yield();
}

}  // namespace

// ---- item 7: an idle worker runs a held worker's timers ----------------------------------------

// The hog arms an rt::after timer on its own worker (rt::after arms the calling worker's heap),
// then holds that worker until the receiver has the timer's value. The receiver waits on another
// worker, which is idle — asleep with no timer of its own — when the hog's timer comes due. Only
// that idle worker can run the timer: if it sleeps past it, the hog spins forever.
TEST(TimerStealing, IdleWorkerRunsTheTimerOfAWorkerHeldByANonYieldingFiber) {
  for (int round = 0; round < 5; ++round) {
    rt::run(
        [] {
          std::atomic<bool> release{false};
          std::atomic<bool> armed{false};
          rt::recv_chan<steady::time_point> tick;
          rt::wait_group wg;
          wg.add(2);
          rt::go([&] {  // the receiver: yields (stealable) until the timer exists, then waits
            while (!armed.load(std::memory_order_acquire)) rt::yield();
            EXPECT_TRUE(tick.recv().has_value());
            release.store(true, std::memory_order_release);
            wg.done();
          });
          rt::go([&] {  // the hog
            tick = rt::after(10ms);
            armed.store(true, std::memory_order_release);  // publishes `tick`
            hog_until(release);
            wg.done();
          });
          wg.wait();
        },
        with_workers(2));
  }
}

// The other worker is already asleep, with no timer anywhere, when the hog arms its timer: arming
// a timer earlier than what the idle workers sleep until must wake one of them to compute its
// sleep again. The hog holds its worker (blocking its thread) long enough for the other worker
// to go to sleep first — on a slow machine it may not have, and the round then checks less, never
// wrongly. Nothing else may wake the sleeping worker: the timer's channel goes to a plain thread
// (waking a thread readies no fiber), and the timer's send wakes that thread.
TEST(TimerStealing, TimerArmedWhileTheOtherWorkerSleepsWakesIt) {
  for (int round = 0; round < 3; ++round) {
    std::atomic<bool> release{false};
    auto box = rt::make_chan<rt::recv_chan<steady::time_point>>(1);
    std::thread receiver;
    rt::run(
        [&] {
          receiver = std::thread([&] {
            std::optional<rt::recv_chan<steady::time_point>> tick = box.recv();
            EXPECT_TRUE(tick && tick->recv().has_value());
            release.store(true, std::memory_order_release);
          });
          rt::wait_group wg;
          wg.add(1);
          rt::go([&] {  // runs next on this worker, as main waits below: nothing wakes the other
            std::this_thread::sleep_for(20ms);  // the other worker goes to sleep meanwhile
            box.send(rt::after(10ms));          // armed on this worker, which it then holds
            hog_until(release);
            wg.done();
          });
          wg.wait();
        },
        with_workers(2));
    receiver.join();
  }
}

// A fiber sleeps (its timer in its own worker's heap, armed as it parks) and its worker then
// runs a fiber that holds it until the sleeper has woken. The sleeper is spawned by the hog, which
// yields until the sleeper is about to sleep: both ran on one worker then, unless the hog was
// stolen meanwhile (it was requeued, so it is stealable) — such a round still checks the sleeper
// wakes. (The sleeper may wake only into a worker that is not held: a fiber woken into the run_next
// of a worker that then picks a non-yielding fiber waits for it, a documented limit.)
TEST(TimerStealing, SleeperWakesWhileItsWorkerIsHeld) {
  for (int round = 0; round < 20; ++round) {
    rt::run(
        [] {
          std::atomic<bool> release{false}, sleeping{false};
          rt::wait_group wg;
          wg.add(2);
          rt::go([&] {
            rt::go([&] {
              sleeping.store(true, std::memory_order_release);
              rt::sleep_for(10ms);
              release.store(true, std::memory_order_release);
              wg.done();
            });
            // The sleeper runs now (it is this worker's run_next), and parks in its timer heap.
            while (!sleeping.load(std::memory_order_acquire)) rt::yield();
            hog_until(release);
            wg.done();
          });
          wg.wait();
        },
        with_workers(2));
  }
}

// Every worker but one is held by a hog that waits for its own timer (armed on the held worker);
// the one free worker must run them all — each hog releases only when its receiver has its
// value. At 2, 4 and 8 workers. The free worker is idle whenever no timer is due, so this covers
// both paths: an idle worker waking for another worker's timer, and a searching worker running
// other workers' due timers (the only place they are run: steal_work). The receivers are plain
// threads, so a timer's send readies no fiber (that could land behind a hog; see above).
TEST(TimerStealing, OneFreeWorkerRunsTheTimersOfAllHeldWorkers) {
  for (unsigned workers : {2u, 4u, 8u}) {
    for (int round = 0; round < 3; ++round) {
      const unsigned hogs = workers - 1;
      std::vector<std::atomic<bool>> release(hogs);
      std::vector<rt::chan<rt::recv_chan<steady::time_point>>> boxes;
      for (unsigned i = 0; i < hogs; ++i)
        boxes.push_back(rt::make_chan<rt::recv_chan<steady::time_point>>(1));
      std::vector<std::thread> receivers;
      rt::run(
          [&] {
            for (unsigned i = 0; i < hogs; ++i) {
              receivers.emplace_back([&, i] {
                std::optional<rt::recv_chan<steady::time_point>> tick = boxes[i].recv();
                EXPECT_TRUE(tick && tick->recv().has_value());
                release[i].store(true, std::memory_order_release);
              });
            }
            rt::wait_group wg;
            wg.add(static_cast<int>(hogs));
            for (unsigned i = 0; i < hogs; ++i) {
              rt::go([&, i] {
                // Different deadlines, so the free worker sleeps until several different ones.
                boxes[i].send(rt::after(std::chrono::milliseconds(5 + 3 * i)));
                hog_until(release[i]);
                wg.done();
              });
            }
            wg.wait();
          },
          with_workers(workers));
      for (auto& t : receivers) t.join();
    }
  }
}

// ---- item 8: deadlines saturate ----------------------------------------------------------------

// sleep_for(nanoseconds::max()) used to overflow now() + d into the past and return at once. The
// sleeper is left asleep when main returns (shutdown deals with it); nothing here depends on
// what happens to it then.
TEST(Saturation, SleepForMaxDoesNotReturn) {
  static std::atomic<bool> returned{false};
  returned = false;
  rt::run(
      [] {
        rt::go([] {
          rt::sleep_for(std::chrono::nanoseconds::max());
          returned = true;
        });
        // Let it run: on one worker, it runs while main sleeps, and (before the fix) returned.
        rt::sleep_for(5ms);
        EXPECT_FALSE(returned.load());
        rt::go([] {
          rt::sleep_until(steady::time_point::max());
          returned = true;
        });
        rt::go([] {
          rt::sleep_for(std::chrono::years(300));  // more than nanoseconds can hold
          returned = true;
        });
        rt::sleep_for(5ms);
        EXPECT_FALSE(returned.load());
      },
      with_workers(1));
}

// after(300 years) and after(nanoseconds::max()) used to fire at once.
TEST(Saturation, AfterFarFutureDoesNotFire) {
  rt::run(
      [] {
        auto far = rt::after(std::chrono::years(300));
        auto max = rt::after(std::chrono::nanoseconds::max());
        auto near = rt::after(5ms);
        std::size_t fired = rt::select(rt::recv(far), rt::recv(max), rt::recv(near));
        EXPECT_EQ(fired, 2u);
        rt::sleep_for(5ms);
        EXPECT_FALSE(far.try_recv().has_value());
        EXPECT_FALSE(max.try_recv().has_value());
      },
      with_workers(1));
}

// cv.wait_for(300 years) used to time out at once; it must wait for the notify. The notifier
// notifies only once the waiter is waiting (it holds the mutex until then, and `waiting` is set
// under it), so a timeout is the only way for the waiter to see `notified` false.
TEST(Saturation, ConditionVariableWaitForFarFutureWaitsForNotify) {
  for (int form = 0; form < 4; ++form) {
    rt::run(
        [form] {
          rt::mutex mu;
          rt::condition_variable cv;
          bool waiting = false, notified = false;
          rt::wait_group wg;
          wg.add(1);
          rt::go([&] {
            std::unique_lock lk(mu);
            waiting = true;
            bool ok = false;
            switch (form) {
              case 0:
                ok = cv.wait_for(lk, std::chrono::years(300)) == std::cv_status::no_timeout;
                break;
              case 1:
                ok = cv.wait_for(lk, std::chrono::nanoseconds::max()) == std::cv_status::no_timeout;
                break;
              case 2:
                ok = cv.wait_for(lk, std::chrono::years(300), [&] { return notified; });
                break;
              default:
                ok = cv.wait_until(lk, steady::time_point::max()) == std::cv_status::no_timeout;
                break;
            }
            EXPECT_TRUE(ok) << "form " << form;
            EXPECT_TRUE(notified) << "form " << form << ": timed out instead of being notified";
            lk.unlock();  // before done(): main destroys the mutex once we are done
            wg.done();
          });
          // Notify only once the waiter waits: it sets `waiting` under the mutex and releases
          // the mutex only by waiting.
          for (;;) {
            std::unique_lock lk(mu);
            if (waiting) {
              rt::sleep_for(2ms);  // still holding mu: a premature timeout would be seen now
              notified = true;
              cv.notify_all();
              break;
            }
            lk.unlock();
            rt::yield();
          }
          wg.wait();
        },
        with_workers(2));
  }
}

// A plain thread's timed wait saturates too (it waits in slices on its own futex).
TEST(Saturation, PlainThreadWaitForFarFutureWaitsForNotify) {
  rt::mutex mu;
  rt::condition_variable cv;
  bool notified = false;
  std::atomic<bool> waiting{false};
  std::thread t([&] {
    std::unique_lock lk(mu);
    waiting = true;
    EXPECT_TRUE(cv.wait_for(lk, std::chrono::years(300), [&] { return notified; }));
  });
  while (!waiting) std::this_thread::yield();
  {
    std::unique_lock lk(mu);  // taken once the thread waits (it released mu by waiting)
    notified = true;
  }
  cv.notify_all();
  t.join();
}

// ---- item 16: rt::after names itself -----------------------------------------------------------

TEST(TimerMisuse, AfterOutsideRunNamesRtAfter) {
  const std::string what = what_of<rt::runtime_error>([] { (void)rt::after(1ms); });
  EXPECT_NE(what.find("rt::after"), std::string::npos) << what;
  EXPECT_EQ(what.find("rt::go"), std::string::npos) << what;
  std::string from_thread;
  std::thread([&] {
    from_thread = what_of<rt::runtime_error>([] { (void)rt::after(1ms); });
  }).join();
  EXPECT_NE(from_thread.find("rt::after"), std::string::npos) << from_thread;
}
