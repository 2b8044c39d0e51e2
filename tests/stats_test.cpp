// tests/stats_test.cpp — rt::stats() counters, RT_SCHEDTRACE lines and the hog monitor (issue 10).
//
// No test here waits for time to pass: each waits for the event it checks (a counter reaching a
// value, a line printed, a hog reported), polling rt::stats(). The one test with a timing nature
// (YieldingFiberIsNeverAHog) uses a threshold 10000 times longer than the fiber's time between
// switch points.
#include <gtest/gtest.h>

#include <rt/csp.hpp>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <map>
#include <mutex>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "test_support.hpp"

namespace {

using namespace std::chrono_literals;
using rt_test::with_workers;

std::uint64_t sum(const rt::runtime_stats& s, std::uint64_t rt::worker_stats::*field) {
  std::uint64_t n = 0;
  for (const auto& w : s.workers) n += w.*field;
  return n;
}

// Yields until every fiber but the caller has finished (the counters say so).
rt::runtime_stats wait_until_only_main_lives() {
  for (;;) {
    rt::runtime_stats s = rt::stats();
    // Both in one snapshot (which is not atomic: a worker may be seen running its last fiber
    // just before that fiber's exit is counted).
    if (s.live == 1 && s.running_fibers == 1) return s;
    rt::yield();
  }
}

TEST(StatsTest, NoRuntimeGivesEmptySnapshot) {
  rt::runtime_stats s = rt::stats();
  EXPECT_FALSE(s.running);
  EXPECT_TRUE(s.workers.empty());
  EXPECT_EQ(s.live, 0u);
  EXPECT_NE(rt::to_string(s).find("no runtime"), std::string::npos);
}

// spawned = finished + live; every run of a fiber is its first, or follows a yield or a wake:
// a counter missing an increment anywhere (a direct switch, a steal, a timer wake) breaks one
// of these equalities.
TEST(StatsTest, CountersAddUpAfterBurstAndAtEnd) {
  for (unsigned n : {1u, 2u, 4u, 8u}) {
    SCOPED_TRACE("workers=" + std::to_string(n));
    constexpr int kFibers = 2000;
    rt::run(
        [] {
          const rt::runtime_stats before = rt::stats();
          EXPECT_TRUE(before.running);
          EXPECT_EQ(before.spawned, before.finished + before.live);
          rt::wait_group wg;
          auto ch = rt::make_chan<int>();
          rt::mutex mu;
          long total = 0;
          wg.add(kFibers);
          for (int i = 0; i < kFibers; ++i) {
            rt::go([&, i] {
              if (i % 2 == 0) {
                ch.send(i);  // parks until a receiver comes (unbuffered)
              } else {
                auto v = ch.recv();
                std::lock_guard lk(mu);
                total += *v;
              }
              rt::yield();
              if (i % 50 == 0) rt::sleep_for(100us);  // a timer wake
              wg.done();
            });
          }
          // In the middle of the burst: the identity holds in every snapshot.
          const rt::runtime_stats mid = rt::stats();
          EXPECT_EQ(mid.spawned, mid.finished + mid.live);
          wg.wait();
          const rt::runtime_stats s = wait_until_only_main_lives();
          EXPECT_EQ(s.spawned - before.spawned, std::uint64_t{kFibers});
          EXPECT_EQ(s.finished - before.finished, std::uint64_t{kFibers});
          EXPECT_EQ(s.spawned, s.finished + s.live);
          EXPECT_EQ(sum(s, &rt::worker_stats::spawned) + 1, s.spawned);  // + main, by rt::run
          EXPECT_EQ(sum(s, &rt::worker_stats::finished), s.finished);
          // At rest but for main (running): every run began with a spawn, a yield or a wake.
          EXPECT_EQ(
              sum(s, &rt::worker_stats::fibers_run),
              s.spawned + sum(s, &rt::worker_stats::yields) + sum(s, &rt::worker_stats::wakes));
          EXPECT_EQ(sum(s, &rt::worker_stats::parks), sum(s, &rt::worker_stats::wakes));
          EXPECT_GE(sum(s, &rt::worker_stats::parks), std::uint64_t{kFibers / 2});
          EXPECT_GE(sum(s, &rt::worker_stats::yields), std::uint64_t{kFibers});
          EXPECT_EQ(s.parked, 0u);
          EXPECT_EQ(s.running_fibers, 1u);
          EXPECT_EQ(s.runnable, 0u);
          EXPECT_GE(s.peak_live, s.live);
          // Steals are counted by the thief, per victim: both sides agree.
          EXPECT_EQ(sum(s, &rt::worker_stats::stolen_by), sum(s, &rt::worker_stats::stolen_from));
          EXPECT_LE(sum(s, &rt::worker_stats::steals), sum(s, &rt::worker_stats::stolen_by));
          if (rt::worker_count() == 1) {
            EXPECT_EQ(sum(s, &rt::worker_stats::steal_attempts), 0u);
          }
          EXPECT_GT(sum(s, &rt::worker_stats::run_next_hits), 0u);
          EXPECT_GT(s.stack_bytes_mapped, 0u);
          EXPECT_EQ(s.stack_bytes_pooled % 4096, 0u);
          EXPECT_GE(s.stack_bytes_mapped, s.stack_bytes_pooled);
          // Every live fiber has a control block (and blocks are allocated a chunk at a time).
          EXPECT_GE(s.control_blocks, s.live);
          EXPECT_GT(s.control_blocks, 0u);
          // The first 2,048 control blocks (8 chunks) come from malloc: no slab for a small run.
          if (s.control_blocks <= 2048) {
            EXPECT_EQ(s.control_block_bytes_mapped, 0u);
          }
        },
        with_workers(n));
  }
}

// Parked-by-reason matches a known number of fibers blocked on each kind of thing.
TEST(StatsTest, ParkedByReasonMatchesKnownBlockedFibers) {
  for (unsigned n : {1u, 2u, 4u, 8u}) {
    SCOPED_TRACE("workers=" + std::to_string(n));
    rt::run(
        [] {
          constexpr std::uint64_t k = 7;
          auto recv_ch = rt::make_chan<int>();
          auto send_ch = rt::make_chan<int>();
          auto sel_a = rt::make_chan<int>();
          auto sel_b = rt::make_chan<int>();
          rt::wait_group blocked, done;
          blocked.add(1);
          rt::mutex mu;
          rt::condition_variable cv;
          bool go_on = false;
          mu.lock();  // main holds it: lockers park
          done.add(static_cast<int>(6 * k));
          for (std::uint64_t i = 0; i < k; ++i) {
            rt::go([&] {
              recv_ch.recv();
              done.done();
            });
            rt::go([&] {
              send_ch.send(1);
              done.done();
            });
            rt::go([&] {
              rt::select(rt::recv(sel_a), rt::recv(sel_b));
              done.done();
            });
            rt::go([&] {
              blocked.wait();
              done.done();
            });
            rt::go([&] {
              mu.lock();
              mu.unlock();
              done.done();
            });
            rt::go([&] { rt::sleep_for(24h); });  // never woken: abandoned at the end
            rt::go([&] {
              std::unique_lock lk(mu);
              cv.wait(lk, [&] { return go_on; });
              done.done();
            });
          }
          // The cond_var waiters need the mutex first: let them queue on it, then release it.
          rt::runtime_stats s;
          for (;;) {  // wait until every locker and cv waiter is parked on the mutex
            s = rt::stats();
            if (s.parked_by.mutex == 2 * k) break;
            rt::yield();
          }
          mu.unlock();
          for (;;) {  // now 6 kinds, k each, parked (the lockers went through)
            s = rt::stats();
            // Both in one snapshot: a worker seen running a fiber an instant before the walk
            // of control blocks finds it parked is counted twice (a snapshot is not atomic).
            // And the lockers gone through (while some still queue on the mutex, others may
            // already wait on the condition variable: parked can be 6k before they are done).
            if (s.parked == 6 * k && s.running_fibers == 1 && s.live == 1 + 6 * k) break;
            rt::yield();
          }
          EXPECT_EQ(s.parked_by.chan_receive, k);
          EXPECT_EQ(s.parked_by.chan_send, k);
          EXPECT_EQ(s.parked_by.select, k);
          EXPECT_EQ(s.parked_by.wait_group, k);
          EXPECT_EQ(s.parked_by.mutex, 0u);
          EXPECT_EQ(s.parked_by.cond_var, k);
          EXPECT_EQ(s.parked_by.sleep, k);
          EXPECT_EQ(s.sleeping, k);
          EXPECT_EQ(s.parked_by.forever, 0u);
          // The lockers went through: k finished, the rest parked, main running.
          EXPECT_EQ(s.live, 1 + 6 * k);
          EXPECT_EQ(s.runnable, 0u);
          EXPECT_EQ(s.running_fibers, 1u);
          // Wake all but the sleepers.
          for (std::uint64_t i = 0; i < k; ++i) {
            recv_ch.send(1);
            send_ch.recv();
            sel_a.send(1);
          }
          blocked.done();
          {
            std::lock_guard lk(mu);
            go_on = true;
          }
          cv.notify_all();
          done.wait();
          for (;;) {
            s = rt::stats();
            if (s.live == 1 + k) break;
            rt::yield();
          }
          EXPECT_EQ(s.parked, k);
          EXPECT_EQ(s.parked_by.sleep, k);
        },
        with_workers(n));
  }
}

// stats() from a plain thread while fibers spawn, yield and exit: no data race (TSan), and no
// counter ever goes backwards between snapshots.
TEST(StatsTest, SnapshotsFromPlainThreadWhileFibersRun) {
  for (unsigned n : {1u, 2u, 4u, 8u}) {
    SCOPED_TRACE("workers=" + std::to_string(n));
    rt::run(
        [] {
          std::atomic<int> bad{0};
          std::thread reader([&] {
            rt::runtime_stats prev = rt::stats();
            for (int i = 0; i < 300; ++i) {
              rt::runtime_stats s = rt::stats();
              if (!s.running || s.spawned < prev.spawned || s.finished < prev.finished)
                bad.fetch_add(1);
              for (std::size_t w = 0; w < s.workers.size(); ++w) {
                if (s.workers[w].fibers_run < prev.workers[w].fibers_run ||
                    s.workers[w].yields < prev.workers[w].yields ||
                    s.workers[w].busy_time < prev.workers[w].busy_time ||
                    s.workers[w].idle_time < prev.workers[w].idle_time)
                  bad.fetch_add(1);
              }
              (void)rt::to_string(s);
              prev = std::move(s);
            }
          });
          rt::wait_group wg;
          for (int round = 0; round < 20; ++round) {
            wg.add(100);
            for (int i = 0; i < 100; ++i) {
              rt::go([&] {
                for (int y = 0; y < 10; ++y) rt::yield();
                wg.done();
              });
            }
            wg.wait();
          }
          reader.join();
          EXPECT_EQ(bad.load(), 0);
        },
        with_workers(n));
  }
}

// A line of RT_SCHEDTRACE for a runtime of w workers.
std::regex schedtrace_line(unsigned w) {
  const std::string list = "\\[[0-9]+( [0-9]+){" + std::to_string(w - 1) + "}\\]";
  return std::regex("SCHED [0-9]+ms: workers=" + std::to_string(w) +
                    " idle=[0-9]+ spinning=[0-9]+ global=[0-9]+ local=" + list +
                    " spawned=" + list + " live=[0-9]+ parked=[0-9]+ steals=[0-9]+");
}

std::vector<std::string> lines_starting(const std::string& text, const std::string& prefix) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) {
    if (l.rfind(prefix, 0) == 0) out.push_back(l);
  }
  return out;
}

TEST(StatsTest, SchedtraceLinesHaveTheDocumentedFormat) {
  for (unsigned n : {1u, 3u}) {
    rt::options o = with_workers(n);
    o.schedtrace_ms = 1;
    testing::internal::CaptureStderr();
    rt::run(
        [] {
          rt::wait_group wg;
          wg.add(10);
          for (int i = 0; i < 10; ++i) {
            rt::go([&] {
              rt::sleep_for(50ms);
              wg.done();
            });
          }
          // Until three lines came, the runtime busy or idle alike.
          while (rt::stats().schedtrace_lines < 3) rt::sleep_for(1ms);
          wg.wait();
        },
        o);
    const std::string err = testing::internal::GetCapturedStderr();
    const auto lines = lines_starting(err, "SCHED ");
    ASSERT_GE(lines.size(), 3u) << err;
    for (const auto& l : lines) EXPECT_TRUE(std::regex_match(l, schedtrace_line(n))) << l;
  }
}

TEST(StatsTest, SchedtraceFromEnvironment) {
  setenv("RT_SCHEDTRACE", "1", 1);
  testing::internal::CaptureStderr();
  rt::run(
      [] {
        while (rt::stats().schedtrace_lines < 1) rt::sleep_for(1ms);
      },
      with_workers(2));
  unsetenv("RT_SCHEDTRACE");
  const std::string err = testing::internal::GetCapturedStderr();
  const auto lines = lines_starting(err, "SCHED ");
  ASSERT_GE(lines.size(), 1u) << err;
  EXPECT_TRUE(std::regex_match(lines[0], schedtrace_line(2))) << lines[0];
}

TEST(StatsTest, InvalidEnvironmentValuesNameTheVariable) {
  for (const char* bad : {"abc", "-1", "10ms", "99999999999"}) {
    setenv("RT_SCHEDTRACE", bad, 1);
    try {
      rt::run([] {}, with_workers(1));
      ADD_FAILURE() << "RT_SCHEDTRACE=" << bad << " accepted";
    } catch (const rt::runtime_error& e) {
      EXPECT_NE(std::string(e.what()).find("RT_SCHEDTRACE=\"" + std::string(bad) + "\""),
                std::string::npos)
          << e.what();
    }
  }
  unsetenv("RT_SCHEDTRACE");
  for (const char* bad : {"2", "yes", "on"}) {
    setenv("RT_HOGWARN", bad, 1);
    try {
      rt::run([] {}, with_workers(1));
      ADD_FAILURE() << "RT_HOGWARN=" << bad << " accepted";
    } catch (const rt::runtime_error& e) {
      EXPECT_NE(std::string(e.what()).find("RT_HOGWARN"), std::string::npos) << e.what();
    }
  }
  unsetenv("RT_HOGWARN");
}

// A fiber spinning without a switch point is reported once — in stats and, with hog_warn, on
// stderr — however many samples see it. Released only once stats shows it held its worker for
// three thresholds (so at least four samples saw the same run). On a loaded machine the OS may
// also deschedule a worker thread past the threshold while some other fiber (main) runs: that
// fiber is then a hog too, reported once like any other, and the checks allow for it.
TEST(StatsTest, HogIsReportedOnceWithIdAndSpawnSite) {
  for (unsigned n : {1u, 2u, 4u}) {
    SCOPED_TRACE("workers=" + std::to_string(n));
    rt::options o = with_workers(n);
    o.hog_threshold_ms = 20;
    o.hog_warn = true;
    std::atomic<std::uint64_t> hog_id{0};
    testing::internal::CaptureStderr();
    // A plain thread watches: with one worker, the hog holds the only worker. It is started
    // before rt::run (rt::stats() is empty until then), not by the main fiber: creating a thread
    // can take longer than the threshold on a loaded machine (TSan: ~25 ms).
    std::atomic<bool> release{false};
    // Whether s shows the hog's worker record at three thresholds (runtime-wide "last hog" may
    // name another fiber).
    auto hog_held_three_thresholds = [&hog_id](const rt::runtime_stats& s) {
      const std::uint64_t id = hog_id.load();
      for (const auto& w : s.workers) {
        if (id != 0 && w.last_hog_fiber == id && w.last_hog_time >= 3 * s.hog_threshold)
          return true;
      }
      return false;
    };
    std::thread watcher([&] {
      for (;;) {
        if (hog_held_three_thresholds(rt::stats())) break;
        std::this_thread::sleep_for(1ms);  // a polling interval, not a synchronisation
      }
      release.store(true);
    });
    rt::runtime_stats at_release;
    rt::run(
        [&] {
          rt::wait_group wg;
          wg.add(1);
          rt::go([&] {
            hog_id.store(rt::this_fiber::id());
            while (!release.load()) {
            }  // no switch point
            at_release = rt::stats();
            wg.done();
          });
          wg.wait();
        },
        o);
    watcher.join();
    const std::string err = testing::internal::GetCapturedStderr();
    ASSERT_GE(at_release.hogs, 1u);
    EXPECT_TRUE(hog_held_three_thresholds(at_release));
    if (at_release.hogs == 1) {  // the hog alone (every run on an unloaded machine)
      EXPECT_EQ(at_release.last_hog_fiber, hog_id.load());
      EXPECT_GE(at_release.last_hog_time, 3 * at_release.hog_threshold);
      EXPECT_EQ(at_release.workers[at_release.last_hog_worker].last_hog_fiber, hog_id.load());
      EXPECT_EQ(at_release.workers[at_release.last_hog_worker].hogs, 1u);
    }
    std::uint64_t per_worker = 0;
    for (const auto& w : at_release.workers) per_worker += w.hogs;
    EXPECT_EQ(per_worker, at_release.hogs);

    // One warning per hog, each fiber named once, the hog among them.
    const auto lines = lines_starting(err, "rt: fiber ");
    EXPECT_EQ(lines.size(), at_release.hogs) << err;
    const std::regex warning(
        "rt: fiber ([0-9]+) has held worker [0-9]+ for [0-9]+ ms without a "
        "switch point \\(spawned at .+\\)");
    std::map<std::string, int> warnings_per_fiber;
    std::string hog_line;
    for (const auto& l : lines) {
      std::smatch m;
      ASSERT_TRUE(std::regex_match(l, m, warning)) << l;
      ++warnings_per_fiber[m[1].str()];
      if (m[1].str() == std::to_string(hog_id.load())) hog_line = l;
    }
    for (const auto& [id, count] : warnings_per_fiber) EXPECT_EQ(count, 1) << "fiber " << id << err;
    ASSERT_FALSE(hog_line.empty()) << err;
    // The spawn site names this file when debug information is there (tests build with it in
    // sanitizer builds; Release has none: then a symbol+offset).
    if (err.find("stats_test.cpp") == std::string::npos) {
      EXPECT_NE(hog_line.find("spawned at "), std::string::npos);
    }
  }
}

// Without hog_warn (and RT_HOGWARN unset) a hog is counted but nothing is printed.
TEST(StatsTest, HogWithoutWarningPrintsNothing) {
  rt::options o = with_workers(2);
  o.hog_threshold_ms = 5;
  testing::internal::CaptureStderr();
  rt::run(
      [] {
        std::atomic<bool> release{false};
        rt::wait_group wg;
        wg.add(1);
        rt::go([&] {
          while (!release.load()) {
          }
          wg.done();
        });
        std::thread watcher([&] {
          while (rt::stats().hogs == 0) std::this_thread::sleep_for(1ms);
          release.store(true);
        });
        wg.wait();
        watcher.join();
      },
      o);
  const std::string err = testing::internal::GetCapturedStderr();
  EXPECT_TRUE(lines_starting(err, "rt: fiber ").empty()) << err;
}

// A fiber that reaches a switch point every few microseconds is never a hog. Timing in nature:
// a run sees a hog only if the OS keeps a worker thread off its core for a whole threshold
// (100 ms), which a loaded machine (sanitizers, ctest -j) can do. A run with a hog is then
// repeated: a monitor that wrongly reported yielding fibers would report one in every run.
TEST(StatsTest, YieldingFiberIsNeverAHog) {
  for (unsigned n : {1u, 2u}) {
    SCOPED_TRACE("workers=" + std::to_string(n));
    std::uint64_t hogs = 0;
    for (int attempt = 0; attempt < 3; ++attempt) {
      rt::options o = with_workers(n);
      o.hog_threshold_ms = 100;
      rt::run(
          [&hogs] {
            const std::uint64_t t0 = rt::stats().monitor_ticks;
            while (rt::stats().monitor_ticks < t0 + 10) rt::yield();
            hogs = rt::stats().hogs;
          },
          o);
      if (hogs == 0) break;
    }
    EXPECT_EQ(hogs, 0u);
  }
}

// While every worker is idle the monitor does not sample (an idle runtime burns no CPU): its
// tick count stays put while the runtime stays idle, and moves again once a worker wakes.
TEST(StatsTest, MonitorSleepsWhileEveryWorkerIsIdle) {
  rt::options o = with_workers(2);
  o.hog_threshold_ms = 2;  // would sample every millisecond if it did not sleep
  rt::run(
      [] {
        auto ch = rt::make_chan<int>();
        std::thread outsider([ch]() mutable {
          rt::runtime_stats s;
          do {
            std::this_thread::sleep_for(1ms);
            s = rt::stats();
          } while (s.idle_workers != s.workers.size());
          const std::uint64_t ticks = s.monitor_ticks;
          std::this_thread::sleep_for(100ms);  // an observation window, not a synchronisation
          s = rt::stats();
          // At most the one tick that was already on its way when the last worker went idle.
          if (s.idle_workers == s.workers.size()) {
            EXPECT_LE(s.monitor_ticks, ticks + 1);
          }
          ch.send(1);
        });
        ch.recv();  // main parks: every worker goes idle
        outsider.join();
      },
      o);
}

}  // namespace
