// runtime/deadlock.cpp — the deadlock check and Go's deadlock report.
//
// The argument. Go reports "all goroutines are asleep - deadlock!" when no goroutine can ever
// run again. Here that is provable only when all of these hold at one instant:
//   1. every worker is on the idle list (none is running a fiber, none is about to);
//   2. no fiber is queued anywhere (global queue, any worker's local queue or spawned deque; a
//      worker on the idle list has an empty run_next, since only a running worker fills its
//      own);
//   3. no timer is armed (a timer would wake a sleeper or time out a wait);
//   4. no thread other than the runtime's exists (its workers, rt::run's thread, the SIGQUIT
//      watcher of dump.cpp), and no plain thread has ever used this runtime
//      (plain_thread_used): any other thread could still send on a channel or unlock a mutex,
//      so nothing would be provable;
//   5. main has not returned and the runtime is not stopping (then rt::run is tearing down);
//   6. no fiber waits on a descriptor (n_io_waiters): the world outside may make it ready.
// Then every fiber is parked on something only a fiber could signal, and no fiber can run: the
// program can never progress. 1-3 are read together under idle_mu, so no worker can leave the
// idle list between the looks (in particular not one whose timer just came due, which would
// otherwise run a fiber between our look at the idle list and our look at the timers: a false
// report the model tester found). 4 reads /proc/self/stat; a thread count that cannot be read
// counts as "other threads exist", so detection errs on the side of silence.
//
// Cost. check_deadlock() runs only on the path of the last worker going to sleep, never while
// fibers run. The report walks every control block (under chunks_mu) and exits with status 2.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <vector>

#include "dump.hpp"
#include "fatal.hpp"
#include "scheduler.hpp"
#include "trace.hpp"

namespace rt::detail {
namespace {

// Threads that a sanitizer runtime runs in the background (TSan has one).
#if RT_TSAN
constexpr std::size_t sanitizer_threads = 1;
#else
constexpr std::size_t sanitizer_threads = 0;
#endif

// Threads in this process now (the num_threads field of /proc/self/stat); a large number when
// it cannot be read, so that deadlock detection errs on the side of silence.
std::size_t process_thread_count() noexcept {
  FILE* f = std::fopen("/proc/self/stat", "r");
  if (!f) return static_cast<std::size_t>(-1);
  char buf[1024];
  std::size_t n = std::fread(buf, 1, sizeof buf - 1, f);
  std::fclose(f);
  buf[n] = '\0';
  // Fields after the command name (which may hold spaces) start after the last ')'.
  const char* p = std::strrchr(buf, ')');
  if (!p) return static_cast<std::size_t>(-1);
  // num_threads is field 20; field 3 (state) follows ") ".
  int field = 2;
  for (; *p && field < 20; ++p) {
    if (*p == ' ') ++field;
  }
  return static_cast<std::size_t>(std::strtoul(p, nullptr, 10));
}

}  // namespace

void runtime::check_deadlock() noexcept {
  if (stopping.load() || main_done.load() != 0 || plain_thread_used.load()) return;
  // A fiber waiting on a descriptor can be woken from outside the process (netpoll.cpp).
  if (n_io_waiters.load() > 0) return;
  if (blocking.in_flight() != 0) return;  // an rt::blocking call will wake its fiber
  // Everything below under idle_mu: no worker can leave the idle list meanwhile — in particular
  // not one whose timer just came due, which would otherwise run a fiber between our look at the
  // idle list and our look at the timers (a false report the model tester found).
  std::lock_guard lk(idle_mu);
  if (idle_list.size() != workers.size()) return;
  // A worker on the idle list has an empty run_next (only a running worker fills its own), so
  // the queues say everything about runnable fibers.
  if (any_work_visible()) return;
  for (auto& w : workers) {
    std::lock_guard tl(w->timer_lock);
    if (!w->timers.empty()) return;
  }
  // Any thread besides ours might still use a channel: then nothing is provable.
  // Ours: the workers, rt::run's thread, the monitor (monitor.cpp) when it runs, the SIGQUIT
  // watcher (dump.cpp) and the trace's writer thread (RT_TRACE).
  if (process_thread_count() > workers.size() + 1 + (monitor_running(*this) ? 1 : 0) +
                                   sanitizer_threads + sigquit_watcher_threads() + trace_threads() +
                                   blocking.live_threads()) {
    return;
  }
  report_deadlock();
}

void runtime::report_deadlock() noexcept {
  // Every fiber is parked and no worker runs one: the dump's claims never wait here.
  const std::int64_t found_at_ns = now_ns();  // before the dump symbolises every stack (slow)
  fatal_deadlock(format_fiber_dump(*this, nullptr, 1000), found_at_ns);
}

}  // namespace rt::detail
