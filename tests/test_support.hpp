// tests/test_support.hpp — small helpers every librt-csp test shares: options for a worker count,
// sanitizer detection, lifetime counting, exception-message checks, and /proc readers.
//
// Thread identity helpers are [[gnu::noipa]] on purpose: pthread_self() (behind
// std::this_thread::get_id()) is declared __attribute__((const)), so the compiler may fold two
// calls on either side of an rt::yield() into one — exactly what a migrating fiber must not do.
#pragma once

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>
#include <rt/csp.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <optional>
#include <string>
#include <thread>

namespace rt_test {

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
inline constexpr bool kSanitized = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
inline constexpr bool kSanitized = true;
#else
inline constexpr bool kSanitized = false;
#endif
#else
inline constexpr bool kSanitized = false;
#endif

#if defined(__SANITIZE_ADDRESS__)
inline constexpr bool kAsan = true;
#else
inline constexpr bool kAsan = false;
#endif

// ThreadSanitizer counts every fiber that has run (it gives each one a logical thread) against
// its limit of 8128 threads: under TSan, keep fewer than that alive at once.
#if defined(__SANITIZE_THREAD__)
inline constexpr bool kTsan = true;
#else
inline constexpr bool kTsan = false;
#endif

// Divides a stress test's counts under sanitizers (they cost 5-20x in time and memory).
inline constexpr int kSlow = kSanitized ? 10 : 1;

// Scales a workload down under sanitizers (they cost 5-20x in time and memory).
inline constexpr long scaled(long normal, long sanitized) {
  return kSanitized ? sanitized : normal;
}

// True when RT_CHAOS turns on chaos scheduling for every rt::run in this process. A test that
// pins down an order only cooperative scheduling on one worker gives (a fiber runs on into its
// blocking call before the one it readied) skips itself then: chaos yields at those points by
// design. Semantics that hold under any schedule are never skipped.
inline bool chaos_from_env() {
  const char* s = std::getenv("RT_CHAOS");
  return s != nullptr && *s != '\0';
}
#define RT_SKIP_UNDER_CHAOS()                                                                   \
  do {                                                                                          \
    if (::rt_test::chaos_from_env())                                                            \
      GTEST_SKIP() << "pins a cooperative one-worker order, which RT_CHAOS perturbs by design"; \
  } while (0)

// --- A deadline for death tests ---------------------------------------------------------------
// A death test whose child never prints its report (deadlock detection broken, say) would hang
// until ctest's timeout (120 s; 600 s under sanitizers) — minutes of suite time per test. Every
// death-test child therefore gets a deadline of its own: SIGALRM after death_deadline_seconds()
// prints "death test deadline" and exits with status 124, which no death test expects, so a
// missing report fails in seconds. RT_DEATH_DEADLINE=<seconds> overrides it (0: none).
// Armed automatically, before main, in the children of threadsafe-style death tests (every death
// test here uses that style); a test that forks children of its own calls arm_death_deadline()
// in them.
inline unsigned death_deadline_seconds() {
  if (const char* s = std::getenv("RT_DEATH_DEADLINE"); s && *s) {
    return static_cast<unsigned>(std::strtoul(s, nullptr, 10));
  }
  return kSanitized ? 90 : 15;
}

inline void death_deadline_expired(int) {
  static const char msg[] =
      "\ndeath test deadline: the child neither exited nor was killed in time (a missing "
      "report?); exiting with status 124\n";
  (void)!::write(2, msg, sizeof msg - 1);
  ::_exit(124);
}

inline void arm_death_deadline() {
  const unsigned s = death_deadline_seconds();
  if (s == 0) return;
  struct sigaction sa {};
  sa.sa_handler = death_deadline_expired;
  sigemptyset(&sa.sa_mask);
  ::sigaction(SIGALRM, &sa, nullptr);
  ::alarm(s);
}

// Whether this process is a death test's child: gtest re-executes the test binary with
// --gtest_internal_run_death_test (threadsafe style, which every death test here uses). Read from
// /proc/self/cmdline before main: gtest silences test event listeners in the child.
inline bool is_death_test_child() {
  std::ifstream in("/proc/self/cmdline", std::ios::binary);
  std::string arg;
  while (std::getline(in, arg, '\0')) {
    if (arg.rfind("--gtest_internal_run_death_test", 0) == 0) return true;
  }
  return false;
}

inline const bool death_deadline_armed = [] {
  if (!is_death_test_child()) return false;
  arm_death_deadline();
  return true;
}();

// CPU time (user + system) of the whole process so far: the resource bound of the idle tests
// (a runtime with nothing to do must not spin).
inline std::chrono::microseconds process_cpu_time() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  auto us = [](const timeval& tv) {
    return std::chrono::seconds(tv.tv_sec) + std::chrono::microseconds(tv.tv_usec);
  };
  return std::chrono::duration_cast<std::chrono::microseconds>(us(ru.ru_utime) + us(ru.ru_stime));
}

inline rt::options with_workers(unsigned n) {
  rt::options o;
  o.workers = n;
  return o;
}

// Runs n fibers under `o`, each yielding once and then adding 1 to `total`; returns when all did.
inline void run_yielding_fibers(const rt::options& o, int n, std::atomic<long>& total) {
  rt::run(
      [&] {
        rt::wait_group wg;
        wg.add(n);
        for (int i = 0; i < n; ++i) {
          rt::go([&] {
            rt::yield();
            total.fetch_add(1);
            wg.done();
          });
        }
        wg.wait();
      },
      o);
}

// The calling OS thread's id, re-read on every call (see the note at the top).
[[gnu::noipa]] inline std::thread::id current_thread() {
  return std::this_thread::get_id();
}

// Counts constructions and destructions of `tracked` objects (copies and moves included), so a
// test can check that every object a fiber owned was destroyed exactly once.
struct lifetime_counter {
  std::atomic<long> constructed{0};
  std::atomic<long> destroyed{0};
  long live() const { return constructed.load() - destroyed.load(); }
};

class tracked {
 public:
  explicit tracked(lifetime_counter& c) : c_(&c) { c_->constructed.fetch_add(1); }
  tracked(const tracked& o) : c_(o.c_) { c_->constructed.fetch_add(1); }
  tracked(tracked&& o) noexcept : c_(o.c_) { c_->constructed.fetch_add(1); }
  tracked& operator=(const tracked&) = delete;
  ~tracked() { c_->destroyed.fetch_add(1); }

 private:
  lifetime_counter* c_;
};

// Runs f, expects it to throw E, and returns what(); records a failure otherwise.
template <class E, class F>
std::string what_of(F&& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "threw a different exception: " << e.what();
    return {};
  }
  ADD_FAILURE() << "did not throw";
  return {};
}

// Resident set size of this process, in KiB (VmRSS of /proc/self/status).
inline long vm_rss_kib() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::strtol(line.c_str() + 6, nullptr, 10);
  }
  return -1;
}

// Mappings of this process: lines of /proc/self/maps (what vm.max_map_count limits).
inline long maps_count() {
  std::ifstream in("/proc/self/maps");
  std::string line;
  long n = 0;
  while (std::getline(in, line)) ++n;
  return n;
}

// Sets an environment variable for the life of the guard and restores the old value after.
class env_guard {
 public:
  env_guard(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value) {
      ::setenv(name, value, 1);
    } else {
      ::unsetenv(name);
    }
  }
  env_guard(const env_guard&) = delete;
  env_guard& operator=(const env_guard&) = delete;
  ~env_guard() {
    if (old_) {
      ::setenv(name_.c_str(), old_->c_str(), 1);
    } else {
      ::unsetenv(name_.c_str());
    }
  }

 private:
  std::string name_;
  std::optional<std::string> old_;
};

}  // namespace rt_test
