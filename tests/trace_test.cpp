// trace_test — the execution trace (rt::trace::start/stop, RT_TRACE) and the flight recorder.
//
// The traces are validated by `tools/rt-trace check` (a Python 3 script of the source tree):
// it parses the JSON and checks, per fiber, that every run is preceded by its spawn, a wake or
// its own yield, that a fiber never runs on two workers at once and never after its exit, that
// runs on one worker never overlap, and that the flow arrows pair up. The checker itself is
// tested on hand-made bad traces (CheckerRejects*), so a checker that accepts anything fails.
// Death tests ("threadsafe" style: the child re-executes the binary, so it has one thread when
// rt::run starts and deadlock detection is armed) cover the dumps on deadlock and panic.
#include <rt/csp.hpp>
#include <rt/trace.hpp>

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>

#include "test_support.hpp"

using namespace std::chrono_literals;
using rt_test::with_workers;

namespace {

namespace fs = std::filesystem;

std::string tmp_path(const std::string& name) {
  return (fs::temp_directory_path() / ("rt-trace-test-" + std::to_string(::getpid()) + "-" + name))
      .string();
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool have_python() {
  static const bool yes = std::system("python3 -c 'import json' >/dev/null 2>&1") == 0;
  return yes;
}

// Runs tools/rt-trace with `args`; returns its exit status (output goes to the test's log).
int rt_trace(const std::string& args) {
  const std::string cmd =
      std::string("python3 ") + RT_SOURCE_DIR + "/tools/rt-trace " + args + " 2>&1";
  const int rc = std::system(cmd.c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : 100;
}

// A spawn tree: every fiber spawns `fanout` children down to `depth`, then waits for them.
void spawn_tree(int depth, int fanout) {
  if (depth == 0) return;
  rt::wait_group wg;
  wg.add(fanout);
  for (int i = 0; i < fanout; ++i) {
    rt::go([&wg, depth, fanout] {
      spawn_tree(depth - 1, fanout);
      wg.done();
    });
  }
  wg.wait();
}

// Everything the trace records: spawns, runs, yields, parks on channels, select and timers,
// wakes, steals (a burst of yielding fibers spreads over the workers), idle spells.
void workload() {
  spawn_tree(3, 4);
  auto ping = rt::make_chan<int>();
  auto pong = rt::make_chan<int>();
  rt::go([=]() mutable {
    while (auto v = ping.recv()) pong.send(*v + 1);
  });
  for (int i = 0; i < 100; ++i) {
    ping.send(i);
    EXPECT_EQ(*pong.recv(), i + 1);
  }
  ping.close();
  auto a = rt::make_chan<int>(1);
  rt::go([=]() mutable {
    rt::sleep_for(1ms);
    a.send(7);
  });
  int got = 0;
  rt::select(rt::recv(a, [&](std::optional<int> v) { got = *v; }));
  EXPECT_EQ(got, 7);
  rt::select(rt::recv(rt::after(1ms)));
  rt::wait_group wg;
  std::atomic<int> sum{0};
  wg.add(64);
  for (int i = 0; i < 64; ++i) {
    rt::go([&] {
      for (int k = 0; k < 5; ++k) rt::yield();
      sum.fetch_add(1);
      wg.done();
    });
  }
  wg.wait();
  EXPECT_EQ(sum.load(), 64);
}

class Trace : public ::testing::TestWithParam<unsigned> {};

TEST_P(Trace, CausallyConsistentAtWorkers) {
  if (!have_python()) GTEST_SKIP() << "python3 is needed to check the trace";
  const std::string path = tmp_path("causal-" + std::to_string(GetParam()) + ".json");
  rt::run(
      [&] {
        rt::trace::start(path);
        EXPECT_TRUE(rt::trace::active());
        workload();
        rt::trace::stop();
        EXPECT_FALSE(rt::trace::active());
      },
      with_workers(GetParam()));
  const std::string text = read_file(path);
  // The vocabulary: worker tracks, runs that end in each way, spawns, wakes with a reason.
  EXPECT_NE(text.find("\"thread_name\",\"args\":{\"name\":\"worker 0\"}"), std::string::npos);
  EXPECT_NE(text.find("\"end\":\"park\",\"reason\":\"chan "), std::string::npos);
  EXPECT_NE(text.find("\"end\":\"park\",\"reason\":\"select\""), std::string::npos);
  EXPECT_NE(text.find("\"end\":\"yield\""), std::string::npos);
  EXPECT_NE(text.find("\"end\":\"exit\""), std::string::npos);
  EXPECT_NE(text.find("\"name\":\"spawn\""), std::string::npos);
  EXPECT_NE(text.find("\"name\":\"wake\""), std::string::npos);
  EXPECT_NE(text.find("\"name\":\"timer fire\""), std::string::npos);
  EXPECT_NE(text.find("\"ph\":\"s\""), std::string::npos);
  EXPECT_EQ(rt_trace("check " + path), 0);
  EXPECT_EQ(rt_trace("summary " + path + " >/dev/null"), 0);
  if (!HasFailure()) std::remove(path.c_str());
}

INSTANTIATE_TEST_SUITE_P(Workers, Trace, ::testing::Values(1u, 2u, 4u, 8u));

// A trace still running when rt::run returns is flushed and closed by rt::run; per-fiber tracks
// appear with fiber_tracks.
TEST(TraceApi, EndsWithRunAndHasFiberTracks) {
  if (!have_python()) GTEST_SKIP() << "python3 is needed to check the trace";
  const std::string path = tmp_path("ends-with-run.json");
  rt::run(
      [&] {
        rt::trace::config cfg;
        cfg.fiber_tracks = true;
        rt::trace::start(path, cfg);
        spawn_tree(2, 3);
      },
      with_workers(2));
  EXPECT_FALSE(rt::trace::active());
  const std::string text = read_file(path);
  EXPECT_NE(text.find("\"process_name\",\"args\":{\"name\":\"fibers\"}"), std::string::npos);
  EXPECT_NE(text.find("\"pid\":2,\"tid\":"), std::string::npos);
  EXPECT_EQ(text.substr(text.size() - 3), "\n]\n");
  EXPECT_EQ(rt_trace("check " + path), 0);
  if (!HasFailure()) std::remove(path.c_str());
}

TEST(TraceApi, MisuseIsReported) {
  try {
    rt::trace::start(tmp_path("x.json"));
    FAIL() << "start outside rt::run did not throw";
  } catch (const rt::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("rt::trace::start called with no runtime running"),
              std::string::npos)
        << e.what();
  }
  EXPECT_THROW(rt::trace::start_flight_recorder(), rt::runtime_error);
  EXPECT_THROW(rt::trace::stop(), rt::runtime_error);
  const std::string path = tmp_path("twice.json");
  rt::run(
      [&] {
        try {
          rt::trace::start("/nonexistent-dir/trace.json");
          ADD_FAILURE() << "an unwritable path did not throw";
        } catch (const rt::runtime_error& e) {
          EXPECT_NE(std::string(e.what()).find("/nonexistent-dir/trace.json"), std::string::npos)
              << e.what();
        }
        rt::trace::start(path);
        try {
          rt::trace::start(path);
          ADD_FAILURE() << "a second start did not throw";
        } catch (const rt::runtime_error& e) {
          EXPECT_NE(std::string(e.what()).find("already running"), std::string::npos) << e.what();
        }
        EXPECT_THROW(rt::trace::start_flight_recorder(), rt::runtime_error);
        EXPECT_THROW(rt::trace::write_flight_recording(path + ".flight"), rt::runtime_error);
        EXPECT_THROW(rt::trace::stop_flight_recorder(), rt::runtime_error);
        rt::trace::stop();
        EXPECT_THROW(rt::trace::stop(), rt::runtime_error);
        // After a stop, a new trace (or the flight recorder) may start.
        rt::trace::start_flight_recorder(50ms);
        EXPECT_THROW(rt::trace::stop(), rt::runtime_error);
        rt::trace::stop_flight_recorder();
      },
      with_workers(2));
  if (!HasFailure()) std::remove(path.c_str());
}

// The checker must be able to fail: a run with no spawn or wake before it, a fiber running on
// two workers at once, a run after the fiber's exit.
TEST(TraceChecker, RejectsBrokenTraces) {
  if (!have_python()) GTEST_SKIP() << "python3 is needed to run the checker";
  const std::string head =
      "[\n{\"ph\":\"M\",\"pid\":1,\"tid\":0,\"name\":\"thread_name\",\"args\":{\"name\":\"worker "
      "0\"}},\n{\"ph\":\"M\",\"pid\":1,\"tid\":1,\"name\":\"thread_name\",\"args\":{\"name\":"
      "\"worker 1\"}},\n";
  auto run = [](int tid, double ts, double dur, int fid, const char* end) {
    return "{\"ph\":\"X\",\"pid\":1,\"tid\":" + std::to_string(tid) +
           ",\"ts\":" + std::to_string(ts) + ",\"dur\":" + std::to_string(dur) +
           ",\"cat\":\"fiber\",\"name\":\"fiber " + std::to_string(fid) +
           "\",\"args\":{\"id\":" + std::to_string(fid) + ",\"end\":\"" + end + "\"}}";
  };
  auto spawn = [](int tid, double ts, int fid) {
    return "{\"ph\":\"i\",\"pid\":1,\"tid\":" + std::to_string(tid) +
           ",\"ts\":" + std::to_string(ts) +
           ",\"s\":\"t\",\"name\":\"spawn\",\"args\":{\"child\":" + std::to_string(fid) +
           ",\"pc\":\"0x0\"}}";
  };
  struct Case {
    const char* what;
    std::string body;
    int expect;
  };
  const Case cases[] = {
      {"good", spawn(0, 1, 5) + ",\n" + run(0, 2, 1, 5, "yield") + ",\n" + run(1, 4, 1, 5, "exit"),
       0},
      {"run-before-spawn", run(0, 1, 1, 5, "exit") + ",\n" + spawn(0, 3, 5), 1},
      {"park-without-wake",
       spawn(0, 1, 5) + ",\n" + run(0, 2, 1, 5, "park") + ",\n" + run(1, 5, 1, 5, "exit"), 1},
      {"two-workers-at-once",
       spawn(0, 1, 5) + ",\n" + run(0, 2, 5, 5, "yield") + ",\n" + run(1, 3, 1, 5, "exit"), 1},
      {"run-after-exit",
       spawn(0, 1, 5) + ",\n" + run(0, 2, 1, 5, "exit") + ",\n" + run(1, 5, 1, 5, "exit"), 1},
      {"overlap-on-a-worker",
       spawn(0, 1, 5) + ",\n" + spawn(0, 1, 6) + ",\n" + run(0, 2, 5, 5, "exit") + ",\n" +
           run(0, 3, 1, 6, "exit"),
       1},
  };
  for (const Case& c : cases) {
    const std::string path = tmp_path(std::string("checker-") + c.what + ".json");
    std::ofstream(path) << head << c.body << "\n]\n";
    EXPECT_EQ(rt_trace("check " + path), c.expect) << c.what;
    std::remove(path.c_str());
  }
}

// ---- flight recorder -------------------------------------------------------------------------

TEST(FlightRecorder, WritesTheLastEventsOnDemand) {
  if (!have_python()) GTEST_SKIP() << "python3 is needed to parse the recording";
  const std::string path = tmp_path("flight.json");
  rt::run(
      [&] {
        rt::trace::start_flight_recorder(10s);
        // More events than a ring holds: the oldest are overwritten, the newest kept.
        for (int round = 0; round < 20; ++round) spawn_tree(3, 4);
        auto ch = rt::make_chan<int>();
        rt::go([=]() mutable { ch.send(42); });
        EXPECT_EQ(*ch.recv(), 42);
        rt::trace::write_flight_recording(path);
        rt::trace::stop_flight_recorder();
      },
      with_workers(4));
  const std::string text = read_file(path);
  EXPECT_NE(text.find("\"reason\":\"chan "), std::string::npos);  // the receiver or the sender
  EXPECT_EQ(rt_trace("summary " + path + " >/dev/null"), 0);
  EXPECT_EQ(
      std::system(("python3 -c 'import json,sys; json.load(open(sys.argv[1]))' " + path).c_str()),
      0);
  if (!HasFailure()) std::remove(path.c_str());
}

class FlightDump : public ::testing::Test {
 protected:
  void SetUp() override {
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    // Not the pid: a death test's child (re-executed) must find the same directory. The build
    // directory (ctest's working directory) keeps concurrent builds' runs apart.
    dir_ = (fs::current_path() / (std::string("rt-trace-test-") +
                                  ::testing::UnitTest::GetInstance()->current_test_info()->name()))
               .string();
    if (!rt_test::is_death_test_child()) fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override {
    if (!HasFailure() && !rt_test::is_death_test_child()) fs::remove_all(dir_);
  }
  // The one recording the child wrote in dir_.
  std::string recording() {
    std::string found;
    for (auto& e : fs::directory_iterator(dir_)) {
      if (e.path().filename().string().rfind("rt-flight-", 0) == 0) found = e.path().string();
    }
    return found;
  }
  std::string dir_;
};

[[noreturn]] void deadlock_after_activity(bool via_env, const std::string& dir) {
  ::setenv("RT_TRACE_DIR", dir.c_str(), 1);
  if (via_env) ::setenv("RT_TRACE", "flight", 1);
  rt::run(
      [via_env] {
        if (!via_env) rt::trace::start_flight_recorder();
        spawn_tree(2, 3);
        auto ch = rt::make_chan<int>();
        rt::go([=]() mutable { ch.recv(); });  // never sent to
        ch.recv();                             // neither: every fiber parked
      },
      with_workers(2));
  std::_Exit(0);
}

TEST_F(FlightDump, OnDeadlockViaApi) {
  EXPECT_EXIT(deadlock_after_activity(false, dir_), ::testing::ExitedWithCode(2),
              "all goroutines are asleep - deadlock!(.|\n)*rt: flight recording of the last "
              "1000 ms before the deadlock written to .*rt-flight-[0-9]+\\.json\n");
  const std::string path = recording();
  ASSERT_FALSE(path.empty());
  const std::string text = read_file(path);
  // The parks that led to the deadlock: main's and its child's receives, as the last events.
  EXPECT_NE(text.find("\"name\":\"fiber 1\",\"args\":{\"id\":1,\"end\":\"park\",\"reason\":"
                      "\"chan receive\""),
            std::string::npos)
      << text;
  if (have_python()) {
    EXPECT_EQ(rt_trace("summary " + path + " >/dev/null"), 0);
  }
}

TEST_F(FlightDump, OnDeadlockViaEnv) {
  EXPECT_EXIT(deadlock_after_activity(true, dir_), ::testing::ExitedWithCode(2),
              "rt: flight recording of the last 1000 ms before the deadlock written to ");
  ASSERT_FALSE(recording().empty());
  EXPECT_NE(read_file(recording()).find("\"reason\":\"chan receive\""), std::string::npos);
}

TEST_F(FlightDump, OnPanic) {
  EXPECT_EXIT(
      {
        ::setenv("RT_TRACE_DIR", dir_.c_str(), 1);
        rt::run(
            [] {
              rt::trace::start_flight_recorder();
              spawn_tree(2, 3);
              throw std::runtime_error("boom");
            },
            with_workers(2));
        std::_Exit(0);
      },
      ::testing::ExitedWithCode(2),
      "panic: boom(.|\n)*rt: flight recording of the last 1000 ms before the panic written to ");
  ASSERT_FALSE(recording().empty());
  EXPECT_NE(read_file(recording()).find("\"end\":\"exit\""), std::string::npos);
}

// With a full trace running (its writer thread is a thread of the process), a deadlock is still
// detected, and the trace is flushed and closed next to the report.
TEST_F(FlightDump, FullTraceStillDetectsDeadlockAndIsClosed) {
  const std::string path = dir_ + "/full.json";
  EXPECT_EXIT(
      {
        ::setenv("RT_TRACE", path.c_str(), 1);
        rt::run(
            [] {
              spawn_tree(2, 3);
              auto ch = rt::make_chan<int>();
              ch.recv();
            },
            with_workers(2));
        std::_Exit(0);
      },
      ::testing::ExitedWithCode(2),
      "all goroutines are asleep - deadlock!(.|\n)*rt: trace up to the deadlock written to ");
  const std::string text = read_file(path);
  ASSERT_GT(text.size(), 3u);
  EXPECT_EQ(text.substr(text.size() - 3), "\n]\n");
  if (have_python()) {
    EXPECT_EQ(rt_trace("check " + path), 0);
  }
}

TEST(TraceEnv, MalformedIsReported) {
  ::setenv("RT_TRACE", "flight:abc", 1);
  try {
    rt::run([] {});
    ADD_FAILURE() << "RT_TRACE=flight:abc did not throw";
  } catch (const rt::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("RT_TRACE=\"flight:abc\""), std::string::npos) << e.what();
  }
  ::setenv("RT_TRACE", "/nonexistent-dir/t.json", 1);
  EXPECT_THROW(rt::run([] {}), rt::runtime_error);
  ::unsetenv("RT_TRACE");
}

}  // namespace
