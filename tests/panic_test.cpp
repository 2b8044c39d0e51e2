// tests/panic_test.cpp — an exception escaping a fiber is an unrecovered Go panic: the process
// prints "panic: <what()>" and "fiber N [running]:" to stderr and exits with status 2 — for
// spawned fibers, the main fiber, and non-std exceptions — and what the program wrote to stdout
// and stderr before (std::cout, printf, without a newline or flush) is not lost. When two fibers
// panic at once, exactly one report is printed.
//
// Most cases are gtest death tests (stderr + exit code). The stdout checks fork a child with
// its stdout and stderr on pipes, since death tests only capture stderr.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>
#include <rt/csp.hpp>

#include <cstdio>
#include <iostream>
#include <stdexcept>
#include <string>

#include "test_support.hpp"

namespace {

using rt_test::with_workers;
using ::testing::HasSubstr;

class PanicDeathTest : public ::testing::Test {
 protected:
  void SetUp() override { GTEST_FLAG_SET(death_test_style, "threadsafe"); }
};

void spawn_and_throw(unsigned workers) {
  rt::run(
      [] {
        rt::wait_group wg;
        wg.add(1);
        rt::go([] { throw std::runtime_error("boom"); });
        wg.wait();  // never returns: the panic ends the process
      },
      with_workers(workers));
}

TEST_F(PanicDeathTest, SpawnedFiber) {
  EXPECT_EXIT(spawn_and_throw(1), ::testing::ExitedWithCode(2),
              "panic: boom\n(.|\n)*fiber [0-9]+ \\[running\\]");
}

TEST_F(PanicDeathTest, SpawnedFiberSeveralWorkers) {
  EXPECT_EXIT(spawn_and_throw(4), ::testing::ExitedWithCode(2),
              "panic: boom\n(.|\n)*fiber [0-9]+ \\[running\\]");
}

TEST_F(PanicDeathTest, MainFiber) {
  EXPECT_EXIT(rt::run([] { throw std::logic_error("main failed"); }), ::testing::ExitedWithCode(2),
              "panic: main failed\n(.|\n)*fiber 1 \\[running\\]");
}

TEST_F(PanicDeathTest, NonStdException) {
  EXPECT_EXIT(rt::run(
                  [] {
                    rt::go([] { throw 42; });
                    for (;;) rt::yield();
                  },
                  with_workers(1)),
              ::testing::ExitedWithCode(2), "panic: (.|\n)*int(.|\n)*fiber [0-9]+ \\[running\\]");
}

// The report names where the fiber was spawned.
TEST_F(PanicDeathTest, ReportsSpawnSite) {
  EXPECT_EXIT(spawn_and_throw(1), ::testing::ExitedWithCode(2),
              "fiber [0-9]+ \\[running\\]:\ncreated by [^\n]+\n\t[^\n]+");
}

// A fiber that catches its own exception does not panic.
TEST(Panic, CaughtExceptionsAreFine) {
  int caught = 0;
  rt::run([&] {
    rt::wait_group wg;
    wg.add(1);
    rt::go([&] {
      try {
        throw std::runtime_error("handled");
      } catch (const std::runtime_error&) {
        ++caught;
      }
      wg.done();
    });
    wg.wait();
  });
  EXPECT_EQ(caught, 1);
}

// Exceptions in flight in several fibers at once, across switches: each fiber keeps its own
// exception state (std::current_exception, uncaught_exceptions) when it yields inside a catch
// block or a destructor during unwinding, even if it resumes on another thread.
TEST(Panic, ExceptionStateIsPerFiber) {
  std::atomic<int> ok{0}, bad{0};
  rt::run(
      [&] {
        rt::wait_group wg;
        constexpr int N = 64;
        wg.add(N);
        for (int i = 0; i < N; ++i) {
          rt::go([&, i] {
            struct yields_in_dtor {
              std::atomic<int>* bad;
              ~yields_in_dtor() {
                int before = std::uncaught_exceptions();
                rt::yield();
                if (std::uncaught_exceptions() != before || before != 1) bad->fetch_add(1);
              }
            };
            try {
              yields_in_dtor d{&bad};
              throw std::runtime_error(std::to_string(i));
            } catch (const std::runtime_error& e) {
              for (int k = 0; k < 3; ++k) {
                rt::yield();
                try {
                  throw;  // rethrows *this fiber's* current exception
                } catch (const std::runtime_error& again) {
                  if (std::string(again.what()) != std::to_string(i)) bad.fetch_add(1);
                }
              }
              if (std::string(e.what()) == std::to_string(i)) ok.fetch_add(1);
            }
            if (std::uncaught_exceptions() != 0 || std::current_exception()) bad.fetch_add(1);
            wg.done();
          });
        }
        wg.wait();
      },
      with_workers(3));
  EXPECT_EQ(ok.load(), 64);
  EXPECT_EQ(bad.load(), 0);
}

struct child_result {
  int status = -1;
  std::string out, err;
};

std::string read_all(int fd) {
  std::string s;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) break;
    s.append(buf, static_cast<std::size_t>(n));
  }
  return s;
}

// Runs fn in a forked child with stdout/stderr on pipes; returns the exit status and output.
// The child's stdout is a pipe, so stdio buffers it fully: nothing reaches the pipe unless the
// runtime flushes before exiting.
template <class F>
child_result run_in_child(F fn) {
  int out[2], err[2];
  if (pipe(out) != 0 || pipe(err) != 0) {
    ADD_FAILURE() << "pipe failed";
    return {};
  }
  std::fflush(nullptr);
  pid_t pid = fork();
  if (pid == 0) {
    rt_test::arm_death_deadline();
    dup2(out[1], 1);
    dup2(err[1], 2);
    close(out[0]);
    close(out[1]);
    close(err[0]);
    close(err[1]);
    fn();
    std::fflush(nullptr);
    _exit(0);
  }
  close(out[1]);
  close(err[1]);
  child_result r;
  // Outputs are small (well under a pipe's capacity), so reading one after the other is safe.
  r.out = read_all(out[0]);
  r.err = read_all(err[0]);
  close(out[0]);
  close(err[0]);
  int st = 0;
  waitpid(pid, &st, 0);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  return r;
}

TEST(PanicOutput, EarlierOutputIsFlushed) {
  child_result r = run_in_child([] {
    rt::run(
        [] {
          std::printf("printf-partial;");
          std::cout << "cout-partial;";
          std::fputs("stderr-partial;", stderr);
          rt::wait_group wg;
          wg.add(1);
          rt::go([] {
            std::printf("from-fiber");
            throw std::runtime_error("boom");
          });
          wg.wait();
        },
        with_workers(2));
  });
  EXPECT_EQ(r.status, 2);
  EXPECT_EQ(r.out, "printf-partial;cout-partial;from-fiber");
  EXPECT_THAT(r.err, HasSubstr("stderr-partial;"));
  EXPECT_THAT(r.err, HasSubstr("panic: boom\n"));
  EXPECT_THAT(r.err, ::testing::ContainsRegex("fiber [0-9]+ \\[running\\]"));
}

// Several fibers throw at about the same time: one report, then exit 2.
TEST(PanicOutput, ConcurrentPanicsPrintOneReport) {
  for (int attempt = 0; attempt < 5; ++attempt) {
    child_result r = run_in_child([] {
      rt::run(
          [] {
            rt::wait_group gate;
            gate.add(1);
            for (int i = 0; i < 8; ++i) {
              rt::go([&gate] {
                gate.wait();
                throw std::runtime_error("concurrent");
              });
            }
            gate.done();
            for (;;) rt::yield();
          },
          with_workers(4));
    });
    EXPECT_EQ(r.status, 2);
    std::size_t reports = 0;
    for (std::size_t p = r.err.find("panic: "); p != std::string::npos;
         p = r.err.find("panic: ", p + 1)) {
      ++reports;
    }
    EXPECT_EQ(reports, 1u) << r.err;
  }
}

}  // namespace
