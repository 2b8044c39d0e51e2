// runtime/fatal.hpp — the runtime's fatal exits, worded as Go words them.
//
// Every fatal exit first flushes what the program already wrote (stdio and so std::cout), then
// prints to stderr and exits with status 2, as an unrecovered Go panic or fatal error does.
#pragma once

#include <cstddef>
#include <cstdint>
#include <exception>
#include <string>
#include <vector>

namespace rt::detail {

struct fiber;

// Prints "fatal error: <message>" and exits with status 2.
[[noreturn]] void fatal_error(const char* fmt, ...) noexcept __attribute__((format(printf, 1, 2)));

// Prints "panic: <what>" for the exception `e` escaping fiber f, then "fiber N [running]:" and
// its spawn site, and exits with status 2.
[[noreturn]] void panic_from(std::exception_ptr e, const fiber* f) noexcept;

// Prints Go's deadlock report — "fatal error: all goroutines are asleep - deadlock!", then
// `fibers` (a fiber dump, dump.hpp) — and exits with status 2. found_at_ns: now_ns() when the
// deadlock was found, before the dump was formatted; the flight recording's window ends there.
[[noreturn]] void fatal_deadlock(const std::string& fibers, std::int64_t found_at_ns) noexcept;

// Flushes the program's output, prints `text` to stderr (one report at a time) and exits with
// status 2: SIGQUIT's dump. With flight_why, the flight recorder (RT_TRACE=flight) is written too,
// its window ending at found_at_ns (now_ns() before `text` was formatted).
[[noreturn]] void fatal_report(const std::string& text, const char* flight_why,
                               std::int64_t found_at_ns) noexcept;

// Installs the SIGSEGV handler that turns a fault on a fiber's guard page into
// "fatal error: fiber N: stack overflow (stack size K KiB)". Idempotent, process-wide.
void install_overflow_handler() noexcept;
// Gives the calling (worker) thread an alternate signal stack so the handler can run even though
// the faulting stack is exhausted. Returns the memory to free with free_signal_stack().
void* install_signal_stack() noexcept;
void free_signal_stack(void* p) noexcept;

// What the SIGSEGV handler needs to know about the fiber running on the faulting thread.
struct overflow_context {
  std::uint64_t fiber_id;
  const char* stack_bottom;  // lowest usable address
  std::size_t stack_size;    // usable bytes
  std::size_t guard_size;
};
// Fills `out` for the fiber running on the calling thread; false on a plain thread or a worker's
// own stack. Async-signal-safe (scheduler.cpp).
bool current_fiber_stack(overflow_context& out) noexcept;

}  // namespace rt::detail
