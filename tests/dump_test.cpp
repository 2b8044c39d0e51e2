// dump_test — fiber dumps (rt/debug.hpp): rt::dump_fibers from a fiber and from a plain thread,
// rt::this_fiber::set_name, SIGQUIT's dump-and-exit (and its opt-out), and dumps taken while
// every worker wakes and parks fibers as fast as it can (the claim protocol of runtime/dump.cpp:
// a parked fiber's stack must not be read while it runs again).
//
// No SCOPED_TRACE inside fibers: gtest keeps traces per thread, and a fiber may migrate.
// Built with -g (csp_tests.cmake), so frames carry file:line. The functions whose frames the
// tests look for are noinline and do something after their blocking call (no tail call).
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <rt/csp.hpp>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <locale>
#include <optional>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "test_support.hpp"

namespace {

using ::testing::HasSubstr;

// std::regex recurses deeply on long inputs: the checks below need more than 64 KiB of stack.
rt::options with_workers(unsigned n) {
  rt::options o = rt_test::with_workers(n);
  o.stack_size = std::size_t{1} << 20;
  return o;
}

std::atomic<long> sink{0};

// The line of the blocking call in each function below (checked as file:line in the dumps).
constexpr int kRecvLine = __LINE__ + 3;
[[gnu::noinline]] void wait_for_value(rt::chan<int> ch) {
  rt::this_fiber::set_name("receiver");
  sink += ch.recv().value_or(0);
}

constexpr int kSendLine = __LINE__ + 2;
[[gnu::noinline]] void offer_value(rt::chan<int> ch) {
  ch.send(1);
  sink += 1;
}

[[gnu::noinline]] void lock_mutex(rt::mutex& mu) {
  mu.lock();
  sink += 1;
  mu.unlock();
}

std::string dump_string() {
  std::ostringstream out;
  rt::dump_fibers(out);
  return out.str();
}

// The block of the dump that describes the fiber whose header matches `header_re`.
std::string block_of(const std::string& dump, const std::string& header_re) {
  std::smatch m;
  if (!std::regex_search(dump, m, std::regex("(^|\n)(" + header_re + "[^\n]*\n(.+\n)*?)(\n|$)"))) {
    return {};
  }
  return m[2].str();
}

// Spawns the three blocked fibers of the dump tests, then waits until a dump shows each parked.
// Polls the dump itself (what is under test) rather than sleeping; returns the last dump.
std::string spawn_blocked_fibers(rt::chan<int> a, rt::chan<int> b, rt::mutex& mu) {
  rt::go([a] { wait_for_value(a); });
  rt::go([b] { offer_value(b); });
  mu.lock();
  rt::go([&mu] { lock_mutex(mu); });
  std::string d;
  for (int i = 0; i < 100000; ++i) {
    rt::yield();
    d = dump_string();
    if (d.find("[chan receive") != std::string::npos && d.find("[chan send") != std::string::npos &&
        d.find("[mutex") != std::string::npos) {
      break;
    }
  }
  return d;
}

void release_blocked_fibers(rt::chan<int> a, rt::chan<int> b, rt::mutex& mu) {
  a.send(1);
  b.recv();
  mu.unlock();
  mu.lock();  // after lock_mutex's fiber is done with it
  mu.unlock();
}

}  // namespace

// From a fiber: every fiber, its state and wait reason, its name, its stack with the user's
// function and the file:line of the blocking call, and the caller itself as running.
TEST(Dump, FromAFiberListsEveryFiberWithItsStack) {
  for (unsigned workers : {1u, 2u, 4u}) {
    rt::run(
        [] {
          rt::this_fiber::set_name("main fiber");
          auto a = rt::make_chan<int>();
          auto b = rt::make_chan<int>();
          rt::mutex mu;
          const std::string d = spawn_blocked_fibers(a, b, mu);
          // The caller: running, with its own stack (this test's body).
          const std::string self = block_of(d, "fiber 1 \"main fiber\" \\[running\\]:");
          EXPECT_THAT(self, HasSubstr("dump_test.cpp:")) << d;
          EXPECT_THAT(self, HasSubstr("created by ")) << d;
          // The receiver: named, parked in chan receive with a wait time, its function and line.
          const std::string recv =
              block_of(d, "fiber [0-9]+ \"receiver\" \\[chan receive, [0-9]+ (ms|s|minutes)\\]:");
          EXPECT_THAT(recv, HasSubstr("rt::chan<int>::recv()")) << d;
          EXPECT_THAT(recv, HasSubstr("::wait_for_value(rt::chan<int>)\n\t")) << d;
          EXPECT_THAT(recv, HasSubstr("dump_test.cpp:" + std::to_string(kRecvLine) + "\n")) << d;
          EXPECT_THAT(recv, HasSubstr("created by ")) << d;
          const std::string send =
              block_of(d, "fiber [0-9]+ \\[chan send, [0-9]+ (ms|s|minutes)\\]:");
          EXPECT_THAT(send, HasSubstr("::offer_value(rt::chan<int>)\n\t")) << d;
          EXPECT_THAT(send, HasSubstr("dump_test.cpp:" + std::to_string(kSendLine) + "\n")) << d;
          const std::string mutex = block_of(d, "fiber [0-9]+ \\[mutex, [0-9]+ (ms|s|minutes)\\]:");
          EXPECT_THAT(mutex, HasSubstr("lock_mutex(rt::mutex&)")) << d;
          // Runtime frames are hidden.
          EXPECT_THAT(d, ::testing::Not(HasSubstr("rt::detail::"))) << d;
          EXPECT_THAT(d, ::testing::Not(HasSubstr("boost::context"))) << d;
          release_blocked_fibers(a, b, mu);
        },
        with_workers(workers));
  }
}

// A fiber spawned but not yet run has no stack: "not started".
TEST(Dump, NotStartedFiber) {
  RT_SKIP_UNDER_CHAOS();
  rt::run(
      [] {
        rt::go([] { sink += 1; });  // one worker: runs only when main yields
        const std::string d = dump_string();
        EXPECT_THAT(d, HasSubstr("[not started]:\ncreated by "));
      },
      with_workers(1));
}

// From a plain thread while rt::run runs: every fiber is listed, none of them as the caller.
TEST(Dump, FromAPlainThread) {
  rt::run(
      [] {
        auto a = rt::make_chan<int>();
        auto b = rt::make_chan<int>();
        rt::mutex mu;
        spawn_blocked_fibers(a, b, mu);
        std::string d;
        std::thread t([&] { d = dump_string(); });
        t.join();  // blocks this worker: the dump sees main as running on another thread
        EXPECT_THAT(d, HasSubstr("fiber 1 [running]:\n\tfiber running on other thread; stack "
                                 "unavailable\n"));
        EXPECT_THAT(block_of(d, "fiber [0-9]+ \"receiver\" \\[chan receive"),
                    HasSubstr("wait_for_value(rt::chan<int>)"))
            << d;
        release_blocked_fibers(a, b, mu);
      },
      with_workers(2));
}

TEST(Dump, OutsideRunSaysNoRuntimeIsRunning) {
  EXPECT_EQ(dump_string(), "rt::dump_fibers: no runtime is running (call it while rt::run runs)\n");
}

TEST(Dump, SetNameKeepsThirtyOneBytesAndIsPerFiber) {
  EXPECT_EQ(rt::this_fiber::name(), "");  // a plain thread has no name
  rt::this_fiber::set_name("ignored");    // and setting one does nothing
  rt::run([] {
    EXPECT_EQ(rt::this_fiber::name(), "");
    rt::this_fiber::set_name("a name that is much longer than thirty-one bytes");
    EXPECT_EQ(rt::this_fiber::name(), "a name that is much longer than");
    rt::wait_group wg;
    wg.add(1);
    rt::go([&] {
      EXPECT_EQ(rt::this_fiber::name(), "");  // not inherited
      rt::this_fiber::set_name("child");
      EXPECT_EQ(rt::this_fiber::name(), "child");
      wg.done();
    });
    wg.wait();
    // A recycled control block starts unnamed.
    wg.add(1);
    rt::go([&] {
      EXPECT_EQ(rt::this_fiber::name(), "");
      wg.done();
    });
    wg.wait();
  });
}

// Dumps while every worker wakes and parks fibers in a loop: pairs of fibers ping-pong over
// unbuffered channels inside ping_pong_round, while a fiber and a plain thread dump over and over.
// Each dump must list each pinger exactly once, in a state a pinger can be in, and a parked or
// runnable pinger's stack must show ping_pong_round: were a stack read while its fiber ran again
// (no claim), frames would be missing or garbage, and under ASan/TSan the read would be reported.
namespace {
// One side of a pair: the first sends and then receives until `stop`, then closes its channel
// out; the second echoes until its channel in is closed.
[[gnu::noinline]] long ping_pong_round(rt::chan<int>& in, rt::chan<int>& out,
                                       const std::atomic<bool>& stop, bool first) {
  long sum = 0;
  for (int i = 0;; ++i) {
    if (first) {
      if (stop.load(std::memory_order_relaxed)) {
        out.close();
        break;
      }
      out.send(i);
      sum += in.recv().value_or(0);
    } else {
      std::optional<int> v = in.recv();
      if (!v) break;
      out.send(*v);
    }
  }
  return sum;
}

// libstdc++ fills std::ctype<char>'s narrow() cache lazily, without synchronisation (a benign
// race, GCC PR 77704, that TSan reports when two threads compile a std::regex at once): fill it
// once, before any test starts a thread.
[[maybe_unused]] const bool narrow_cache_filled = [] {
  const auto& ct = std::use_facet<std::ctype<char>>(std::locale());
  for (int c = 0; c < 256; ++c) (void)ct.narrow(static_cast<char>(c), '\0');
  return true;
}();

void check_dump(const std::string& d, int pingers) {
  static const std::regex header("(^|\n)fiber ([0-9]+) \"pinger\" \\[([^\\]]*)\\]:\n");
  int seen = 0;
  for (auto it = std::sregex_iterator(d.begin(), d.end(), header); it != std::sregex_iterator();
       ++it) {
    ++seen;
    const std::string state = (*it)[3].str();
    const std::size_t start = static_cast<std::size_t>(it->position(0) + it->length(0));
    const std::size_t end = d.find("created by ", start);
    ASSERT_NE(end, std::string::npos) << d;
    const std::string frames = d.substr(start, end - start);
    if (state == "running") {
      EXPECT_TRUE(frames == "\tfiber running on other thread; stack unavailable\n" ||
                  frames.find("ping_pong_round") != std::string::npos)
          << frames;
      continue;
    }
    const bool parked =
        std::regex_match(state, std::regex("chan (send|receive), [0-9]+ (ms|s|minutes)"));
    EXPECT_TRUE(parked || state == "runnable" || state == "not started") << state;
    if (state != "not started") {
      EXPECT_THAT(
          frames,
          HasSubstr(
              "ping_pong_round(rt::chan<int>&, rt::chan<int>&, std::atomic<bool> const&, bool)"))
          << "fiber " << (*it)[2] << " [" << state << "]";
    }
  }
  EXPECT_LE(seen, pingers) << d;  // a pinger that has not run yet has no name
}
}  // namespace

TEST(Dump, WhileWorkersWakeAndParkFibers) {
  const int pairs = 4;
  const int dumps = static_cast<int>(rt_test::scaled(4, 2));
  for (unsigned workers : {1u, 2u, 4u, 8u}) {
    rt::run(
        [&] {
          rt::wait_group wg;
          std::atomic<bool> done{false};
          std::atomic<bool> stop{false};
          wg.add(2 * pairs);
          for (int p = 0; p < pairs; ++p) {
            auto a = rt::make_chan<int>();
            auto b = rt::make_chan<int>();
            rt::go([a, b, &wg, &stop]() mutable {
              rt::this_fiber::set_name("pinger");
              sink += ping_pong_round(a, b, stop, true);
              wg.done();
            });
            rt::go([a, b, &wg, &stop]() mutable {
              rt::this_fiber::set_name("pinger");
              sink += ping_pong_round(b, a, stop, false);
              wg.done();
            });
          }
          // A plain thread dumps too: its claims race with resumptions on every worker.
          std::thread plain([&] {
            for (int i = 0; i < dumps && !done.load(); ++i) check_dump(dump_string(), 2 * pairs);
          });
          for (int i = 0; i < dumps; ++i) {
            check_dump(dump_string(), 2 * pairs);
            rt::yield();
          }
          done.store(true);
          plain.join();
          stop.store(true);
          wg.wait();
        },
        with_workers(workers));
  }
}

// ---- SIGQUIT ---------------------------------------------------------------------------------

class DumpDeathTest : public ::testing::Test {
 protected:
  void SetUp() override { GTEST_FLAG_SET(death_test_style, "threadsafe"); }
};

[[noreturn]] void raise_sigquit_with_blocked_fibers(bool enabled) {
  rt::options o = with_workers(2);
  o.dump_on_sigquit = enabled;
  rt::run(
      [] {
        auto a = rt::make_chan<int>();
        auto b = rt::make_chan<int>();
        static rt::mutex mu;
        spawn_blocked_fibers(a, b, mu);
        std::raise(SIGQUIT);
        // Not parked: a fiber that only waits would be a deadlock, reported instead.
        for (;;) rt::yield();
      },
      o);
  std::_Exit(0);
}

// Go's behaviour: "SIGQUIT: quit", every fiber with its stack, exit status 2.
TEST_F(DumpDeathTest, SigquitDumpsEveryFiberAndExits) {
  EXPECT_EXIT(
      raise_sigquit_with_blocked_fibers(true), ::testing::ExitedWithCode(2),
      "SIGQUIT: quit\n\nfiber 1 \\[(running|runnable)\\]:\n(.|\n)*"
      "fiber [0-9]+ \"receiver\" \\[chan receive, [0-9]+ (ms|s|minutes)\\]:\n"
      "rt::chan<int>::recv\\(\\)\n\t[^\n]*\n[^\n]*wait_for_value\\(rt::chan<int>\\)\n\t[^\n]*"
      "dump_test\\.cpp:[0-9]+\n(.|\n)*\\[chan send(.|\n)*\\[mutex");
}

// options::dump_on_sigquit = false: SIGQUIT keeps its default action (the process dies of it).
TEST_F(DumpDeathTest, SigquitOptOut) {
  EXPECT_EXIT(
      {
        struct rlimit no_core {};
        setrlimit(RLIMIT_CORE, &no_core);
        raise_sigquit_with_blocked_fibers(false);
      },
      ::testing::KilledBySignal(SIGQUIT), "");
}

// RT_SIGQUIT=0 in the environment does the same.
TEST_F(DumpDeathTest, SigquitOptOutByEnvironment) {
  EXPECT_EXIT(
      {
        struct rlimit no_core {};
        setrlimit(RLIMIT_CORE, &no_core);
        setenv("RT_SIGQUIT", "0", 1);
        raise_sigquit_with_blocked_fibers(true);
      },
      ::testing::KilledBySignal(SIGQUIT), "");
}
