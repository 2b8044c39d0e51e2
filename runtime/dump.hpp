// runtime/dump.hpp — fiber dumps: every fiber with its state and its stack, in Go's format.
//
// Used by rt::dump_fibers, by SIGQUIT, and by the deadlock and panic reports. The format and the
// rules for which frames are shown are documented in rt/debug.hpp and docs/profiling.md; how a
// parked fiber's stack is read safely while other workers run is argued in dump.cpp.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace rt::detail {

struct fiber;
class runtime;

// Every fiber of rt, each as a block "fiber N [state]:\n<frames>created by ...\n", separated
// by blank lines, in ascending id order; at most `limit` blocks, then a line counting the rest.
// `self` is the calling fiber (its stack is the calling thread's), or null. Safe while rt runs.
std::string format_fiber_dump(runtime& rt, const fiber* self, std::size_t limit);

// The calling thread's stack as frame lines (hidden frames removed), for the fiber f running on
// it (panic reports), followed by f's "created by" lines.
std::string format_current_stack(const fiber* f);

// f's name (rt::this_fiber::set_name), read safely while f runs; empty if it has none.
std::string fiber_name(const fiber* f);

// A spawn site as "file:line in function" (or "created by ?" without debug information), for
// warnings that are not fatal (the hog monitor). Not async-signal-safe.
std::string describe_spawn_site(void* spawn_pc);

// SIGQUIT: dump every fiber to stderr and exit with status 2 (Go's behaviour), unless
// options::dump_on_sigquit is false or RT_SIGQUIT=0. Started and stopped by runtime::run_main.
void start_sigquit_watcher(runtime& rt);
void stop_sigquit_watcher() noexcept;
// Threads the watcher adds to the process (0 or 1), for the deadlock check's thread count.
std::size_t sigquit_watcher_threads() noexcept;

}  // namespace rt::detail
