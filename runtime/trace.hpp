// runtime/trace.hpp — the recording side of the execution trace and the flight recorder.
//
// Recording. Each worker owns a ring of fixed-size records (trace_record: 32 bytes), written
// only by its own thread, with no allocation, lock or system call: a timestamp (the TSC on
// x86-64, converted to steady-clock nanoseconds when written out), the event type, a fiber id
// and an argument. Events from plain threads go to one extra ring under a spinlock (they are off
// the hot path). The probes (probes.hpp) reach the recorder through one relaxed-cost branch on
// g_trace, null unless a trace or the flight recorder runs.
//
// Two modes share the rings:
//   - full trace (rt::trace::start / RT_TRACE=<file>): a writer thread drains every ring each
//     millisecond, converts the records to Chrome trace-event JSON and appends them to the file.
//     A ring the writer has not drained is never overwritten: the worker counts the events it
//     could not record and records "dropped N" once there is room again. Memory stays bounded.
//   - flight recorder (RT_TRACE=flight / start_flight_recorder): nobody drains; each ring
//     overwrites its oldest records. A dump copies the rings while their owners may still write
//     them: every record is a seqlock (its tag word names the record's index; the dumper keeps a
//     record only if the tag reads the same before and after it read the fields), and all fields
//     are atomics, so a torn record is detected and skipped, never misread — and TSan sees no
//     data race.
// A session outlives its stop(): a worker that loaded g_trace just before stop() cleared it may
// still write one record into its ring, so sessions are freed only when rt::run ends (every
// worker joined).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "flag_test.hpp"

namespace rt::detail {

class runtime;
struct worker;

enum class trace_ev : std::uint8_t {
  spawn = 1,    // fid: the child; a: its spawn pc
  run,          // fid
  switch_out,   // fid; small: after_switch | wait_reason << 4
  wake,         // fid: target; a: waker fiber id (0: the scheduler, e.g. a timer); small: reason
  steal,        // a: victim worker; small: count
  take_global,  // small: count
  idle,         // the worker went idle
  worker_wake,  // ... and left its idle state
  timer,        // a: owner worker of the timer that fired
  hog,          // fid; a: ns it had run without yielding (the hog monitor's, when present)
  dropped,      // a: events the worker could not record (the writer fell behind)
};

struct trace_session;

// Non-null while a trace or the flight recorder runs. Hidden: one RIP-relative compare in each
// probe, not a load through the GOT. The probes test it relaxed (trace_on: the branch only) and
// trace_record loads it again with acquire, pairing with the release store that publishes a
// fully built session; a null there (stopped meanwhile) records nothing.
extern std::atomic<trace_session*> g_trace [[gnu::visibility("hidden")]];

inline bool trace_on() noexcept {
  return g_trace.load(std::memory_order_relaxed) != nullptr;
}

// The hot paths of a switch — the direct switch's pick, the wake into run_next, the after-switch
// step — test this one word instead of three flags: nonzero while a trace runs (slow_trace, set
// just before g_trace is published and cleared just after it is), while chaos scheduling is on
// (slow_chaos, for a whole rt::run) and once the runtime stops (slow_stopping, from stop() until
// the next rt::run). Nonzero sends them to their general paths, which test each condition on
// its own, so the word only ever costs time, never correctness. relaxed: each flag it mirrors is
// a hint read relaxed where it is tested (trace_on(), `stopping`), and chaos is set before the
// workers start and cleared after they are joined.
enum slow_path_bits : std::uint32_t { slow_trace = 1, slow_chaos = 2, slow_stopping = 4 };
extern std::atomic<std::uint32_t> g_slow_paths [[gnu::visibility("hidden")]];

inline bool slow_paths_on() noexcept {
  return flag_is_set(g_slow_paths);  // one compare: a switch tests it up to three times
}

// Records one event on w's ring (w null: the calling thread is not a worker: the shared ring).
// Out of line (the probes' off path stays a compare), but not [[gnu::cold]]: GCC would optimise
// it for size, and it is the hot path while a trace runs.
[[gnu::noinline]] void trace_record(worker* w, trace_ev type, std::uint64_t fid, std::uint64_t a,
                                    std::uint32_t small) noexcept;

// Hooks for the runtime.
// resolve_options: checks RT_TRACE / RT_TRACE_FIBERS (throws rt::runtime_error, naming the
// variable, when malformed or when the file cannot be opened).
void trace_check_env();
// run_main, before the workers start / after shutdown (workers joined): starts what RT_TRACE
// asks for; ends any trace still running and frees every session.
void trace_run_started(runtime& rt) noexcept;
void trace_run_ended() noexcept;
// Threads the trace runs besides the runtime's (the writer thread): deadlock detection counts
// them as its own.
std::size_t trace_threads() noexcept;
// Called from the deadlock and panic reports: if the flight recorder runs, writes its events to
// rt-flight-<pid>.json ($RT_TRACE_DIR, else the current directory) and says so on stderr; if a
// full trace runs, flushes and closes its file. The recording's window ends at `found_at_ns`
// (now_ns() where the failure was found), not at the dump: formatting the report first
// symbolises every fiber's stack, which under a sanitizer on a loaded machine took over a second
// and pushed the events that led to the failure out of a one-second window.
void flight_recorder_dump_on_fatal(const char* why, std::int64_t found_at_ns) noexcept;

}  // namespace rt::detail
