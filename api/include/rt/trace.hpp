// rt/trace.hpp — the execution trace and the flight recorder (docs/profiling.md).
//
//   rt::trace::start("run.json");   // inside rt::run; open the file in ui.perfetto.dev
//   ...                             // every spawn, run, park, wake, steal, idle spell is recorded
//   rt::trace::stop();              // flushes and closes the JSON
//
//   rt::trace::start_flight_recorder();               // keep the last second, always
//   rt::trace::write_flight_recording("hang.json");   // on demand (and on deadlock or panic)
//
// RT_TRACE=<file> traces a whole rt::run; RT_TRACE=flight (or flight:<ms>) runs the flight
// recorder for it, and a deadlock or panic report then writes rt-flight-<pid>.json (in
// $RT_TRACE_DIR, else the current directory). The output is Chrome trace-event JSON, which
// ui.perfetto.dev and chrome://tracing open and tools/rt-trace summarises.
//
// One trace or flight recorder at a time, inside a running rt::run (from a fiber or a plain
// thread); it ends at the latest when rt::run returns.
#pragma once

#include <chrono>
#include <string>

namespace rt::trace {

// What a trace records besides one track per worker.
struct config {
  // Also one track per fiber (in a second process, "fibers", tid = fiber id): its runs and the
  // worker each ran on. RT_TRACE_FIBERS=1 sets it for RT_TRACE.
  bool fiber_tracks = false;
};

// Starts writing an execution trace to `path` (created or truncated). The file is written as
// the program runs, by a background thread; memory stays bounded (events the writer cannot keep
// up with are dropped and counted in the trace). Throws rt::runtime_error if no rt::run is
// running, a trace or the flight recorder is already on, or the file cannot be opened.
void start(const std::string& path, const config& cfg = {});

// Stops the trace started by start(): flushes every event and closes the JSON. Throws
// rt::runtime_error if no trace is running (a trace stops by itself when rt::run returns).
void stop();

// Whether a trace or the flight recorder is running.
bool active() noexcept;

// Starts the flight recorder: each worker keeps its most recent events (at most `window` old,
// and at most what its fixed-size ring holds) in memory, written out only on demand, on a
// deadlock or panic report. Throws rt::runtime_error as start() does.
void start_flight_recorder(std::chrono::milliseconds window = std::chrono::milliseconds{1000});

// Stops the flight recorder, discarding what it holds. Throws rt::runtime_error if it is off.
void stop_flight_recorder();

// Writes what the flight recorder holds (the last `window` of events) to `path` as trace JSON;
// the recorder keeps running. Throws rt::runtime_error if it is off or the file cannot be
// written.
void write_flight_recording(const std::string& path);

}  // namespace rt::trace
