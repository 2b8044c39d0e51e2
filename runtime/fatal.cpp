// runtime/fatal.cpp — fatal errors, panics and the stack-overflow handler.
#include "fatal.hpp"

#include <cxxabi.h>
#include <signal.h>
#include <unistd.h>

#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <mutex>
#include <string>
#include <typeinfo>
#include <vector>

#include "dump.hpp"
#include "fiber.hpp"
#include "timer.hpp"
#include "trace.hpp"

namespace rt::detail {
namespace {

// Flushes what the program wrote to stdout/stderr through stdio (std::cout writes through stdio
// while sync_with_stdio is on, the default). Never blocks: a stream locked by a thread that
// crashed mid-write is skipped rather than deadlocked on.
void flush_program_output() noexcept {
  for (FILE* f : {stdout, stderr}) {
    if (ftrylockfile(f) == 0) {
      fflush_unlocked(f);
      funlockfile(f);
    }
  }
}

// One fatal report at a time: a second fiber dying meanwhile waits for the first to exit.
std::mutex& report_mutex() {
  static std::mutex m;
  return m;
}

void write_all(int fd, const char* s, std::size_t n) noexcept {
  while (n > 0) {
    ssize_t w = ::write(fd, s, n);
    if (w <= 0) return;
    s += w;
    n -= static_cast<std::size_t>(w);
  }
}

// Formats an unsigned number into buf (async-signal-safe); returns the length.
std::size_t format_unsigned(std::uint64_t v, char* buf) noexcept {
  char tmp[24];
  std::size_t n = 0;
  do {
    tmp[n++] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v);
  for (std::size_t i = 0; i < n; ++i) buf[i] = tmp[n - 1 - i];
  return n;
}

void overflow_handler(int sig, siginfo_t* info, void* uctx);
struct sigaction previous_segv;
struct sigaction previous_bus;

void chain_to_previous(int sig, siginfo_t* info, void* uctx) {
  const struct sigaction& prev = sig == SIGSEGV ? previous_segv : previous_bus;
  if (prev.sa_flags & SA_SIGINFO) {
    if (prev.sa_sigaction) {
      prev.sa_sigaction(sig, info, uctx);
      return;
    }
  } else if (prev.sa_handler != SIG_DFL && prev.sa_handler != SIG_IGN) {
    prev.sa_handler(sig);
    return;
  }
  // Default action: restore it and return, so the faulting instruction faults again and the
  // process dies of the signal as it would have without us.
  signal(sig, SIG_DFL);
}

void overflow_handler(int sig, siginfo_t* info, void* uctx) {
  overflow_context c{};
  const char* addr = static_cast<const char*>(info->si_addr);
  // A fault anywhere in the guard region below the running fiber's stack (options::guard_size,
  // 64 KiB by default) — or up to 64 KiB further, where nothing of ours is mapped (below a
  // slab's lowest stack) — is an overflow.
  if (current_fiber_stack(c) && addr < c.stack_bottom &&
      addr >= c.stack_bottom - c.guard_size - std::ptrdiff_t{64} * 1024) {
    flush_program_output();
    char msg[160];
    std::size_t n = 0;
    auto put = [&](const char* s) {  // async-signal-safe; msg is written by length, not as a string
      for (; *s != '\0'; ++s) msg[n++] = *s;
    };
    put("fatal error: fiber ");
    n += format_unsigned(c.fiber_id, msg + n);
    put(": stack overflow (stack size ");
    n += format_unsigned(c.stack_size / 1024, msg + n);
    put(" KiB)\n");
    write_all(2, msg, n);
    _exit(2);
  }
  chain_to_previous(sig, info, uctx);
}

}  // namespace

void fatal_error(const char* fmt, ...) noexcept {
  flush_program_output();
  std::lock_guard lk(report_mutex());
  std::fputs("fatal error: ", stderr);
  va_list ap;
  va_start(ap, fmt);
  // NOLINTNEXTLINE(clang-analyzer-valist.Uninitialized): a false positive, ap is started above.
  std::vfprintf(stderr, fmt, ap);
  va_end(ap);
  std::fputc('\n', stderr);
  std::fflush(stderr);
  _exit(2);
}

void fatal_deadlock(const std::string& fibers, std::int64_t found_at_ns) noexcept {
  flush_program_output();
  std::lock_guard lk(report_mutex());
  std::fputs("fatal error: all goroutines are asleep - deadlock!\n\n", stderr);
  std::fputs(fibers.c_str(), stderr);
  flight_recorder_dump_on_fatal("deadlock", found_at_ns);  // what led here (RT_TRACE=flight)
  std::fflush(stderr);
  _exit(2);
}

void fatal_report(const std::string& text, const char* flight_why,
                  std::int64_t found_at_ns) noexcept {
  flush_program_output();
  std::lock_guard lk(report_mutex());
  std::fputs(text.c_str(), stderr);
  if (flight_why) flight_recorder_dump_on_fatal(flight_why, found_at_ns);  // RT_TRACE=flight
  std::fflush(stderr);
  _exit(2);
}

void panic_from(std::exception_ptr e, const fiber* f) noexcept {
  const std::int64_t found_at_ns = now_ns();  // before the stack is symbolised (slow)
  flush_program_output();
  std::lock_guard lk(report_mutex());
  std::string what;
  try {
    std::rethrow_exception(std::move(e));
  } catch (const std::exception& ex) {
    what = ex.what();
  } catch (...) {
    const std::type_info* t = abi::__cxa_current_exception_type();
    int status = 0;
    char* name = t ? abi::__cxa_demangle(t->name(), nullptr, nullptr, &status) : nullptr;
    what = std::string("exception of type ") + (name ? name : (t ? t->name() : "unknown"));
    std::free(name);
  }
  // The stack is the one the report runs on: the exception has already unwound the fiber's
  // frames up to the runtime's catch, so mostly the "created by" lines remain.
  std::string stack = format_current_stack(f);
  std::fprintf(stderr, "panic: %s\n\nfiber %llu [running]:\n%s\n", what.c_str(),
               static_cast<unsigned long long>(f ? f->id.load(std::memory_order_relaxed) : 0),
               stack.c_str());
  flight_recorder_dump_on_fatal("panic", found_at_ns);  // what led here (RT_TRACE=flight)
  std::fflush(stderr);
  _exit(2);
}

void install_overflow_handler() noexcept {
  if (built_with_sanitizer) return;  // ASan/TSan own SIGSEGV and report overflows themselves
  static std::once_flag once;
  std::call_once(once, [] {
    struct sigaction sa {};
    sa.sa_sigaction = overflow_handler;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, &previous_segv);
    sigaction(SIGBUS, &sa, &previous_bus);
  });
}

void* install_signal_stack() noexcept {
  const std::size_t size = std::size_t{64} * 1024;
  void* mem = std::malloc(size);
  if (!mem) return nullptr;
  stack_t ss{};
  ss.ss_sp = mem;
  ss.ss_size = size;
  sigaltstack(&ss, nullptr);
  return mem;
}

void free_signal_stack(void* p) noexcept {
  if (!p) return;
  stack_t ss{};
  ss.ss_flags = SS_DISABLE;
  sigaltstack(&ss, nullptr);
  std::free(p);
}

}  // namespace rt::detail
