// runtime/trace.cpp — execution trace and flight recorder: rings, writer thread, JSON output.
// See trace.hpp for the recording design and docs/profiling.md for the output.
#include "trace.hpp"

#include <time.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>
#define RT_TRACE_TSC 1
#else
#define RT_TRACE_TSC 0
#endif

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include "fiber.hpp"
#include "rt/errors.hpp"
#include "rt/trace.hpp"
#include "scheduler.hpp"
#include "timer.hpp"

namespace rt::detail {

std::atomic<trace_session*> g_trace [[gnu::visibility("hidden")]]{nullptr};
std::atomic<std::uint32_t> g_slow_paths [[gnu::visibility("hidden")]]{0};

namespace {

// Ring sizes (records of 32 bytes; powers of two). A full trace's rings are larger: they buffer
// what the writer has not converted yet.
constexpr std::uint64_t full_ring_records = 131072;   // 4 MiB per worker
constexpr std::uint64_t flight_ring_records = 8192;   // 256 KiB per worker
constexpr std::uint64_t plain_ring_records = 4096;    // the plain threads' shared ring
constexpr std::int64_t writer_period_ns = 1'000'000;  // the writer's sleep when all is drained

// ---- clock -----------------------------------------------------------------------------------
// Events are stamped with the TSC (a few cycles, where clock_gettime costs tens of ns) when the
// CPU says it is constant and does not stop (then it is also synchronised across cores on any
// CPU Linux trusts it as a clocksource on), and converted to steady-clock ns when written out.

bool tsc_usable() {
#if RT_TRACE_TSC
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("flags", 0) == 0) {
      return line.find(" constant_tsc") != std::string::npos &&
             line.find(" nonstop_tsc") != std::string::npos;
    }
  }
#endif
  return false;
}

struct clock_calibration {
  bool tsc = false;
  double ns_per_tick = 1.0;
  std::int64_t ns0 = 0;
  std::uint64_t tick0 = 0;
};

// Written once, before the first session is published (under g_mu), read afterwards.
clock_calibration g_clock;
bool g_clock_ready = false;

#if RT_TRACE_TSC
// One (steady ns, TSC) pair taken at the same instant: the TSC is read on both sides of the
// clock, and of five tries the one with the narrowest bracket wins. A pair read without the
// bracket is off by however long the thread was preempted between the two reads — under load
// that was milliseconds out of a 2 ms calibration, which scaled every interval up many times
// and pushed a deadlock's last events out of the flight recorder's window.
std::pair<std::int64_t, std::uint64_t> clock_pair() noexcept {
  std::int64_t best_ns = 0;
  std::uint64_t best_tick = 0, best_width = ~std::uint64_t{0};
  for (int i = 0; i < 5; ++i) {
    const std::uint64_t before = __rdtsc();
    const std::int64_t ns = now_ns();
    const std::uint64_t after = __rdtsc();
    if (after - before < best_width) {
      best_width = after - before;
      best_ns = ns;
      best_tick = before + (after - before) / 2;
    }
  }
  return {best_ns, best_tick};
}
#endif

void calibrate_clock() {
  if (g_clock_ready) return;
  g_clock.tsc = tsc_usable();
#if RT_TRACE_TSC
  if (g_clock.tsc) {
    const auto [n0, t0] = clock_pair();
    std::int64_t n1;
    std::uint64_t t1;
    do {
      std::tie(n1, t1) = clock_pair();
    } while (n1 - n0 < 2'000'000);
    g_clock.ns_per_tick = double(n1 - n0) / double(t1 - t0);
    g_clock.ns0 = n1;
    g_clock.tick0 = t1;
  }
#endif
  g_clock_ready = true;
}

inline std::uint64_t ticks() noexcept {
#if RT_TRACE_TSC
  if (g_clock.tsc) return __rdtsc();
#endif
  return static_cast<std::uint64_t>(now_ns());
}

std::int64_t tick_to_ns(std::uint64_t t) noexcept {
  if (!g_clock.tsc) return static_cast<std::int64_t>(t);
  return g_clock.ns0 +
         std::llround(double(static_cast<std::int64_t>(t - g_clock.tick0)) * g_clock.ns_per_tick);
}

}  // namespace

// ---- rings -----------------------------------------------------------------------------------

// One event; every field atomic so that a flight-recorder dump may read a record its owner is
// rewriting (see "seqlock" in trace.hpp). tag = (index + 1) << 24 | type << 16 | small.
struct trace_rec {
  std::atomic<std::uint64_t> tag{0}, ts{0}, a{0}, fid{0};
};

struct alignas(64) trace_ring {
  trace_rec* recs = nullptr;
  std::uint64_t cap = 0;   // a power of two
  std::uint64_t head = 0;  // next index: the owner's (plain ring: under plain_lock)
  // Full trace: events lost since the last record. Written only by the owner (no RMW); read by
  // the stopper for the count still unrecorded at the end (relaxed: a count, read after join or
  // stop, where one racing drop more or less does not matter).
  std::atomic<std::uint64_t> dropped{0};
  // Records below `published` are complete: release by the writer of the record, acquire by
  // the writer thread and the dumper.
  // The owner's last record (a worker's ring only): see trace_record.
  trace_ev last_type{};
  std::uint64_t last_fid = 0, last_ts = 0;
  alignas(64) std::atomic<std::uint64_t> published{0};
  // Full trace: records below `consumed` were converted; release by the writer thread after it
  // read them, acquire by the owner before it reuses their slots.
  std::atomic<std::uint64_t> consumed{0};
};

struct raw_event {
  std::uint64_t ts;  // ticks
  std::uint64_t fid, a;
  trace_ev type;
  std::uint16_t small;
};

namespace {

[[gnu::always_inline]] inline void write_rec(trace_ring& r, std::uint64_t idx, std::uint64_t ts,
                                             trace_ev type, std::uint64_t fid, std::uint64_t a,
                                             std::uint32_t small) noexcept {
  trace_rec& x = r.recs[idx & (r.cap - 1)];
  // Seqlock writer: invalidate the tag, then (release fence) the fields, then the new tag with
  // release. A reader that sees the new tag before and after its field loads saw these fields.
  x.tag.store(0, std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_release);
  x.ts.store(ts, std::memory_order_relaxed);
  x.a.store(a, std::memory_order_relaxed);
  x.fid.store(fid, std::memory_order_relaxed);
  x.tag.store(((idx + 1) << 24) | (std::uint64_t(type) << 16) | (small & 0xffff),
              std::memory_order_release);
}

// Seqlock reader: false if the record at idx was overwritten (or is being written).
bool read_rec(const trace_ring& r, std::uint64_t idx, raw_event& out) noexcept {
  const trace_rec& x = r.recs[idx & (r.cap - 1)];
  const std::uint64_t t1 = x.tag.load(std::memory_order_acquire);
  if ((t1 >> 24) != idx + 1) return false;
  out.ts = x.ts.load(std::memory_order_relaxed);
  out.a = x.a.load(std::memory_order_relaxed);
  out.fid = x.fid.load(std::memory_order_relaxed);
  // acquire fence: the field loads above are ordered before the second tag load.
  std::atomic_thread_fence(std::memory_order_acquire);
  if (x.tag.load(std::memory_order_relaxed) != t1) return false;
  out.type = static_cast<trace_ev>((t1 >> 16) & 0xff);
  out.small = static_cast<std::uint16_t>(t1 & 0xffff);
  return true;
}

// ---- JSON ------------------------------------------------------------------------------------

const char* after_text(unsigned after) {
  switch (static_cast<after_switch>(after)) {
    case after_switch::requeue:
      return "yield";
    case after_switch::park:
      return "park";
    case after_switch::exit:
      return "exit";
  }
  return "?";
}

// Converts each lane's records, in order, to Chrome trace-event JSON (the array format, whose
// closing bracket is optional: a file cut short by a crash still opens).
class json_converter {
 public:
  json_converter(FILE* out, unsigned nworkers, bool fiber_tracks, std::int64_t base_ns)
      : out_(out),
        nworkers_(nworkers),
        fiber_tracks_(fiber_tracks),
        base_(base_ns),
        lanes_(nworkers + 1) {}

  void begin() {
    buf_ += "[\n";
    meta(1, -1, "process_name", "rt-csp workers");
    for (unsigned i = 0; i <= nworkers_; ++i) {
      std::string name = i < nworkers_ ? "worker " + std::to_string(i) : "plain threads";
      meta(1, i, "thread_name", name.c_str());
      meta(1, i, "thread_sort_index", nullptr, i);
    }
    if (fiber_tracks_) {
      meta(2, -1, "process_name", "fibers");
      meta(2, 1, "thread_name", "fiber 1");
    }
  }

  void event(unsigned lane_index, const raw_event& e) {
    lane& l = lanes_[lane_index];
    const std::int64_t ns = tick_to_ns(e.ts);
    if (l.first < 0) l.first = ns;
    switch (e.type) {
      case trace_ev::run:
        if (l.run_open) {
          // A direct switch: the next fiber's run is recorded before the previous one's
          // switch-out, which comes right after on the new stack. Cut the old slice here.
          if (l.cut) slice(lane_index, l.cut_fid, l.cut_start, l.cut_end, "?", 0, false);
          l.cut = true;
          l.cut_fid = l.fid;
          l.cut_start = l.start;
          l.cut_end = ns;
        } else {
          // Maybe a direct switch away from a fiber whose run began before what we hold (it
          // was running when the trace started): its switch-out comes next.
          l.unknown_cut = ns;
        }
        l.run_open = true;
        l.fid = e.fid;
        l.start = ns;
        // The end of the flow from the wake that made this fiber runnable (if any).
        head("f", lane_index, ns);
        buf_ += ",\"bp\":\"e\",\"cat\":\"wake\",\"name\":\"wake\",\"id\":";
        num(e.fid);
        buf_ += "}";
        break;
      case trace_ev::switch_out: {
        const char* end = after_text(e.small & 0xf);
        const unsigned reason = e.small >> 4;
        if (l.cut && l.cut_fid == e.fid) {
          slice(lane_index, e.fid, l.cut_start, l.cut_end, end, reason, false);
          l.cut = false;
        } else if (l.run_open && l.fid == e.fid) {
          slice(lane_index, e.fid, l.start, ns, end, reason, false);
          l.run_open = false;
        } else {
          // Its run began before what we hold (a trace started, or a flight recording that
          // begins, while it ran): from the lane's first event.
          slice(lane_index, e.fid, l.first, l.unknown_cut >= 0 ? l.unknown_cut : ns, end, reason,
                true);
        }
        l.unknown_cut = -1;
        break;
      }
      case trace_ev::idle:
        l.idle_open = true;
        l.idle_start = ns;
        break;
      case trace_ev::worker_wake:
        if (l.idle_open) {  // (a flight recording may begin inside an idle spell: dropped)
          head("X", lane_index, l.idle_start);
          buf_ += ",\"dur\":";
          ts(ns - l.idle_start, false);
          buf_ += ",\"cat\":\"idle\",\"name\":\"idle\"}";
        }
        l.idle_open = false;
        break;
      case trace_ev::spawn:
        instant(lane_index, ns, "spawn");
        buf_ += ",\"args\":{\"child\":";
        num(e.fid);
        buf_ += ",\"pc\":\"";
        hex(e.a);
        buf_ += "\"}}";
        if (fiber_tracks_) {
          std::string name = "fiber " + std::to_string(e.fid);  // hook: the fiber's own name
          meta(2, static_cast<std::int64_t>(e.fid), "thread_name", name.c_str());
        }
        break;
      case trace_ev::wake:
        instant(lane_index, ns, "wake");
        buf_ += ",\"args\":{\"target\":";
        num(e.fid);
        buf_ += ",\"waker\":";
        num(e.a);
        buf_ += ",\"reason\":\"";
        buf_ += wait_reason_text(static_cast<wait_reason>(e.small));
        buf_ += "\"}}";
        head("s", lane_index, ns);
        buf_ += ",\"cat\":\"wake\",\"name\":\"wake\",\"id\":";
        num(e.fid);
        buf_ += "}";
        break;
      case trace_ev::steal:
        instant(lane_index, ns, "steal");
        buf_ += ",\"args\":{\"victim\":";
        num(e.a);
        buf_ += ",\"count\":";
        num(e.small);
        buf_ += "}}";
        break;
      case trace_ev::take_global:
        instant(lane_index, ns, "take global");
        buf_ += ",\"args\":{\"count\":";
        num(e.small);
        buf_ += "}}";
        break;
      case trace_ev::timer:
        instant(lane_index, ns, "timer fire");
        buf_ += ",\"args\":{\"owner\":";
        num(e.a);
        buf_ += "}}";
        break;
      case trace_ev::hog:
        instant(lane_index, ns, "hog");
        buf_ += ",\"args\":{\"fiber\":";
        num(e.fid);
        buf_ += ",\"running_ns\":";
        num(e.a);
        buf_ += ",\"worker\":";
        num(e.small);
        buf_ += "}}";
        break;
      case trace_ev::dropped:
        instant(lane_index, ns, "dropped");
        buf_ += ",\"args\":{\"count\":";
        num(e.a);
        buf_ += "}}";
        break;
    }
    if (buf_.size() > (1u << 16)) flush();
  }

  // Closes what is still open at end_ns (fibers still running, idle spells) and the JSON.
  void finish(std::int64_t end_ns, const char* why) {
    for (unsigned i = 0; i < lanes_.size(); ++i) {
      lane& l = lanes_[i];
      if (l.cut) slice(i, l.cut_fid, l.cut_start, l.cut_end, "?", 0, false);
      if (l.run_open) slice(i, l.fid, l.start, std::max(end_ns, l.start), why, 0, false);
      if (l.idle_open) {
        head("X", i, l.idle_start);
        buf_ += ",\"dur\":";
        ts(std::max<std::int64_t>(end_ns - l.idle_start, 0), false);
        buf_ += ",\"cat\":\"idle\",\"name\":\"idle\"}";
      }
      l = lane{};
    }
    buf_ += "\n]\n";
    flush();
    std::fflush(out_);
  }

  bool failed() const { return failed_; }

 private:
  struct lane {
    bool run_open = false;
    std::uint64_t fid = 0;
    std::int64_t start = 0;
    bool cut = false;
    std::uint64_t cut_fid = 0;
    std::int64_t cut_start = 0, cut_end = 0;
    bool idle_open = false;
    std::int64_t idle_start = 0;
    std::int64_t first = -1;
    std::int64_t unknown_cut = -1;
  };

  void flush() {
    if (!buf_.empty() && !failed_ && std::fwrite(buf_.data(), 1, buf_.size(), out_) != buf_.size())
      failed_ = true;
    buf_.clear();
  }
  void sep() {
    if (!first_) buf_ += ",\n";
    first_ = false;
  }
  void num(std::uint64_t v) {
    char b[24];
    auto r = std::to_chars(b, b + sizeof b, v);
    buf_.append(b, static_cast<std::size_t>(r.ptr - b));
  }
  void hex(std::uint64_t v) {
    char b[24];
    auto r = std::to_chars(b, b + sizeof b, v, 16);
    buf_ += "0x";
    buf_.append(b, static_cast<std::size_t>(r.ptr - b));
  }
  // Microseconds with nanosecond precision, relative to base_ (or a duration).
  void ts(std::int64_t ns, bool relative = true) {
    if (relative) ns -= base_;
    if (ns < 0) ns = 0;
    num(static_cast<std::uint64_t>(ns / 1000));
    const int f = static_cast<int>(ns % 1000);
    buf_ += '.';
    buf_ += static_cast<char>('0' + f / 100);
    buf_ += static_cast<char>('0' + f / 10 % 10);
    buf_ += static_cast<char>('0' + f % 10);
  }
  void head(const char* ph, unsigned lane_index, std::int64_t ns) {
    sep();
    buf_ += "{\"ph\":\"";
    buf_ += ph;
    buf_ += "\",\"pid\":1,\"tid\":";
    num(lane_index);
    buf_ += ",\"ts\":";
    ts(ns);
  }
  void instant(unsigned lane_index, std::int64_t ns, const char* name) {
    head("i", lane_index, ns);
    buf_ += ",\"s\":\"t\",\"name\":\"";
    buf_ += name;
    buf_ += '"';
  }
  void meta(int pid, std::int64_t tid, const char* what, const char* name, unsigned sort = 0) {
    sep();
    buf_ += "{\"ph\":\"M\",\"pid\":";
    num(static_cast<std::uint64_t>(pid));
    if (tid >= 0) {
      buf_ += ",\"tid\":";
      num(static_cast<std::uint64_t>(tid));
    }
    buf_ += ",\"name\":\"";
    buf_ += what;
    buf_ += "\",\"args\":{";
    if (name) {
      buf_ += "\"name\":\"";
      buf_ += name;
      buf_ += "\"}}";
    } else {
      buf_ += "\"sort_index\":";
      num(sort);
      buf_ += "}}";
    }
  }
  void slice(unsigned lane_index, std::uint64_t fid, std::int64_t start, std::int64_t end,
             const char* how, unsigned reason, bool truncated) {
    // Hook: a fiber's own name (set_name) would replace "fiber N" here.
    head("X", lane_index, start);
    buf_ += ",\"dur\":";
    ts(end - start, false);
    buf_ += ",\"cat\":\"fiber\",\"name\":\"fiber ";
    num(fid);
    buf_ += "\",\"args\":{\"id\":";
    num(fid);
    buf_ += ",\"end\":\"";
    buf_ += how;
    buf_ += '"';
    if (std::strcmp(how, "park") == 0) {
      buf_ += ",\"reason\":\"";
      buf_ += wait_reason_text(static_cast<wait_reason>(reason));
      buf_ += '"';
    }
    if (truncated) buf_ += ",\"truncated\":true";
    buf_ += "}}";
    if (fiber_tracks_) {
      sep();
      buf_ += "{\"ph\":\"X\",\"pid\":2,\"tid\":";
      num(fid);
      buf_ += ",\"ts\":";
      ts(start);
      buf_ += ",\"dur\":";
      ts(end - start, false);
      buf_ += ",\"cat\":\"fiber\",\"name\":\"";
      buf_ += lane_index < nworkers_ ? "on worker " : "plain thread ";
      num(lane_index);
      buf_ += "\",\"args\":{\"end\":\"";
      buf_ += how;
      buf_ += "\"}}";
    }
  }

  FILE* out_;
  unsigned nworkers_;
  bool fiber_tracks_;
  std::int64_t base_;
  std::vector<lane> lanes_;
  std::string buf_;
  bool first_ = true;
  bool failed_ = false;
};

}  // namespace

// ---- sessions --------------------------------------------------------------------------------

// A record as the writer spills it to the trace's temporary file.
struct spill_rec {
  std::uint32_t lane;
  std::uint16_t small;
  std::uint8_t type, pad;
  std::uint64_t ts, fid, a;
};
static_assert(sizeof(spill_rec) == 32);

struct trace_session {
  bool full = false;
  bool fiber_tracks = false;
  std::int64_t window_ns = 0;
  unsigned nworkers = 0;
  std::unique_ptr<trace_ring[]> rings;  // nworkers + 1: the last is the plain threads'
  std::unique_ptr<trace_rec[]> storage;
  spinlock plain_lock;
  // Full trace:
  std::string path;
  FILE* out = nullptr;
  std::unique_ptr<json_converter> conv;
  // The writer spills raw records here as the program runs (a copy: cheap enough to keep up);
  // stop converts them to the JSON file. Bounded memory; disk space is the trace's size.
  FILE* spill = nullptr;
  bool spill_failed = false;
  std::vector<spill_rec> spill_buf;  // the writer's, then the stopper's
  std::thread writer;
  std::atomic<bool> stop_writer{false};  // release by stop, acquire by the writer
};

namespace {

[[gnu::always_inline]] inline void put(trace_session& s, trace_ring& r, std::uint64_t ts,
                                       trace_ev type, std::uint64_t fid, std::uint64_t a,
                                       std::uint32_t small) noexcept {
  std::uint64_t idx = r.head;
  if (s.full) {
    const std::uint64_t room = r.cap - (idx - r.consumed.load(std::memory_order_acquire));
    const std::uint64_t dropped = r.dropped.load(std::memory_order_relaxed);
    if (room < (dropped ? 2u : 1u)) {
      // The writer fell behind: never block, never grow.
      r.dropped.store(dropped + 1, std::memory_order_relaxed);
      return;
    }
    if (dropped) {
      write_rec(r, idx++, ts, trace_ev::dropped, 0, dropped, 0);
      r.dropped.store(0, std::memory_order_relaxed);
    }
  }
  write_rec(r, idx++, ts, type, fid, a, small);
  r.head = idx;
  r.published.store(idx, std::memory_order_release);
}

}  // namespace

void trace_record(worker* w, trace_ev type, std::uint64_t fid, std::uint64_t a,
                  std::uint32_t small) noexcept {
  trace_session* const s = g_trace.load(std::memory_order_acquire);  // see trace.hpp
  if (!s) return;
  if (w && w->index < s->nworkers) {
    trace_ring& r = s->rings[w->index];
    // A switch-out right after another fiber's run is the second half of a direct switch (or
    // the end of a run older than the trace): the converter ends that slice at the run's stamp,
    // so this one needs no stamp of its own. Reading the clock is most of an event's cost (the
    // TSC is trapped on some VMs: 50 ns).
    const std::uint64_t t =
        type == trace_ev::switch_out && r.last_type == trace_ev::run && r.last_fid != fid
            ? r.last_ts
            : ticks();
    r.last_type = type;
    r.last_fid = fid;
    r.last_ts = t;
    put(*s, r, t, type, fid, a, small);
    return;
  }
  // The stamp is taken under the lock, so the shared ring's order is its time order.
  s->plain_lock.lock();
  put(*s, s->rings[s->nworkers], ticks(), type, fid, a, small);
  s->plain_lock.unlock();
}

namespace {

std::mutex g_mu;  // guards everything below, and starting and stopping sessions
runtime* g_rt = nullptr;
trace_session* g_active = nullptr;
std::vector<std::unique_ptr<trace_session>> g_sessions;  // freed when rt::run ends
std::atomic<std::size_t> g_threads{0};

// What RT_TRACE asked for, from trace_check_env until the run starts.
struct env_request {
  enum { none, file, flight } mode = none;
  std::string path;
  FILE* out = nullptr;
  std::int64_t window_ms = 1000;
  bool fibers = false;
} g_env;

// Drains every ring into the spill file (the writer thread; the stopper once it has joined).
std::size_t drain(trace_session& s) {
  std::size_t n = 0;
  raw_event e;
  spill_rec* const batch = s.spill_buf.data();  // not on the stack: stop() may run on a fiber
  for (unsigned i = 0; i <= s.nworkers; ++i) {
    trace_ring& r = s.rings[i];
    const std::uint64_t h = r.published.load(std::memory_order_acquire);
    std::uint64_t c = r.consumed.load(std::memory_order_relaxed);  // only we store it
    while (c < h) {
      const std::uint64_t batch_end = std::min<std::uint64_t>(h, c + s.spill_buf.size());
      std::size_t k = 0;
      for (; c < batch_end; ++c) {
        if (read_rec(r, c, e)) {
          batch[k++] =
              spill_rec{i, e.small, static_cast<std::uint8_t>(e.type), 0, e.ts, e.fid, e.a};
        }
      }
      r.consumed.store(c, std::memory_order_release);
      if (!s.spill_failed && std::fwrite(batch, sizeof batch[0], k, s.spill) != k) {
        s.spill_failed = true;
      }
      n += 1;
    }
  }
  return n;
}

// Converts the spill file to the trace's JSON (the stopper, after the writer has joined).
void convert_spill(trace_session& s) {
  if (std::fflush(s.spill) != 0) s.spill_failed = true;
  std::rewind(s.spill);
  spill_rec* const batch = s.spill_buf.data();
  for (;;) {
    const std::size_t k = std::fread(batch, sizeof batch[0], s.spill_buf.size(), s.spill);
    for (std::size_t j = 0; j < k; ++j) {
      const spill_rec& x = batch[j];
      if (x.lane > s.nworkers) continue;
      s.conv->event(x.lane, raw_event{x.ts, x.fid, x.a, static_cast<trace_ev>(x.type), x.small});
    }
    if (k < s.spill_buf.size()) break;
  }
}

void writer_main(trace_session* s) {
  for (;;) {
    const bool stop = s->stop_writer.load(std::memory_order_acquire);
    const std::size_t n = drain(*s);
    if (stop) return;
    if (n == 0) {
      timespec ts{0, writer_period_ns};
      nanosleep(&ts, nullptr);
    }
  }
}

std::unique_ptr<trace_session> make_session(unsigned nworkers, bool full, bool fiber_tracks,
                                            std::int64_t window_ms) {
  calibrate_clock();
  auto s = std::make_unique<trace_session>();
  s->full = full;
  s->fiber_tracks = fiber_tracks;
  s->window_ns = window_ms * 1'000'000;
  s->nworkers = nworkers;
  const std::uint64_t per = full ? full_ring_records : flight_ring_records;
  s->storage.reset(new trace_rec[per * nworkers + plain_ring_records]);
  s->rings.reset(new trace_ring[nworkers + 1]);
  for (unsigned i = 0; i <= nworkers; ++i) {
    s->rings[i].cap = i < nworkers ? per : plain_ring_records;
    s->rings[i].recs = s->storage.get() + per * i;
  }
  return s;
}

// Publishes a built session and, for a full trace, starts its writer (g_mu held).
void activate(std::unique_ptr<trace_session> s, FILE* out, const std::string& path) {
  trace_session* p = s.get();
  if (p->full) {
    p->spill = std::tmpfile();
    if (!p->spill) {
      throw rt::runtime_error(std::string("rt::trace::start: cannot create the trace's temporary "
                                          "file: ") +
                              std::strerror(errno));
    }
    std::setvbuf(p->spill, nullptr, _IOFBF, std::size_t{1} << 20);
    p->spill_buf.resize(4096);
    p->out = out;
    p->path = path;
    p->conv =
        std::make_unique<json_converter>(out, p->nworkers, p->fiber_tracks, tick_to_ns(ticks()));
    p->conv->begin();
    g_threads.fetch_add(1);  // before the thread exists: see trace_threads()
    p->writer = std::thread(writer_main, p);
  }
  g_sessions.push_back(std::move(s));
  g_active = p;
  g_slow_paths.fetch_or(slow_trace, std::memory_order_relaxed);  // see trace.hpp
  g_trace.store(p, std::memory_order_release);  // pairs with the probes' acquire load
}

// Stops the active session (g_mu held). A full trace is flushed and closed; returns false if
// writing it failed.
bool deactivate() noexcept {
  trace_session* s = g_active;
  if (!s) return true;
  g_active = nullptr;
  g_trace.store(nullptr);  // seq_cst: probes see null from here on (a racing one is harmless)
  g_slow_paths.fetch_and(~std::uint32_t{slow_trace}, std::memory_order_relaxed);
  if (!s->full) return true;
  s->stop_writer.store(true, std::memory_order_release);
  if (s->writer.joinable()) s->writer.join();
  g_threads.fetch_sub(1);
  bool ok = true;
  try {
    drain(*s);
    convert_spill(*s);
    // Drops not yet followed by a record (the ring stayed full to the end) are reported too.
    for (unsigned i = 0; i <= s->nworkers; ++i) {
      if (const std::uint64_t d = s->rings[i].dropped.load(std::memory_order_relaxed)) {
        s->conv->event(i, raw_event{ticks(), 0, d, trace_ev::dropped, 0});
      }
    }
    s->conv->finish(tick_to_ns(ticks()), "trace stopped");
    ok = !s->conv->failed() && !s->spill_failed;
  } catch (...) {
    ok = false;
  }
  std::fclose(s->spill);
  s->spill = nullptr;
  if (std::fclose(s->out) != 0) ok = false;
  s->out = nullptr;
  return ok;
}

// Writes what the flight recorder holds to `out`: the events of the window that ends at
// `window_end_ns` (steady clock), and any after it up to now.
void dump_flight(trace_session& s, FILE* out, std::int64_t window_end_ns) {
  const std::int64_t now = tick_to_ns(ticks());
  const std::int64_t cutoff = std::min(now, window_end_ns) - s.window_ns;
  json_converter conv(out, s.nworkers, s.fiber_tracks, cutoff);
  conv.begin();
  raw_event e;
  for (unsigned i = 0; i <= s.nworkers; ++i) {
    const trace_ring& r = s.rings[i];
    const std::uint64_t h = r.published.load(std::memory_order_acquire);
    for (std::uint64_t idx = h > r.cap ? h - r.cap : 0; idx < h; ++idx) {
      if (read_rec(r, idx, e) && tick_to_ns(e.ts) >= cutoff) conv.event(i, e);
    }
  }
  conv.finish(now, "running");
  if (conv.failed()) throw rt::runtime_error("write failed");
}

std::string flight_path() {
  std::string dir = ".";
  if (const char* d = std::getenv("RT_TRACE_DIR"); d && *d) dir = d;
  return dir + "/rt-flight-" + std::to_string(::getpid()) + ".json";
}

[[noreturn]] void throw_busy(const char* entry) {
  throw rt::runtime_error(std::string(entry) + ": " +
                          (g_active->full ? "a trace is already running (rt::trace::start or "
                                            "RT_TRACE=<file>): stop it with rt::trace::stop first"
                                          : "the flight recorder is running (RT_TRACE=flight or "
                                            "rt::trace::start_flight_recorder): stop it with "
                                            "rt::trace::stop_flight_recorder first"));
}

#ifndef RT_PROFILING
#define RT_PROFILING 1
#endif

// With RT_PROFILING=OFF the probes are compiled out: a trace would record nothing.
void require_probes(const char* entry) {
  if (RT_PROFILING == 0) {
    throw rt::runtime_error(std::string(entry) +
                            ": librt-csp was built with RT_PROFILING=OFF, which compiles out the "
                            "probes a trace records: rebuild with RT_PROFILING=ON");
  }
}

[[noreturn]] void throw_no_run(const char* entry) {
  throw rt::runtime_error(std::string(entry) +
                          " called with no runtime running: call it inside rt::run (or set "
                          "RT_TRACE to trace a whole run)");
}

}  // namespace

void trace_check_env() {
  std::lock_guard lk(g_mu);
  if (g_env.out) std::fclose(g_env.out);  // left over from an rt::run that did not start
  g_env = env_request{};
  if (const char* f = std::getenv("RT_TRACE_FIBERS"); f && *f) {
    if (std::strcmp(f, "1") != 0 && std::strcmp(f, "0") != 0) {
      throw rt::runtime_error(std::string("RT_TRACE_FIBERS=\"") + f +
                              "\" is not 0 or 1: set it to 1 for one track per fiber");
    }
    g_env.fibers = f[0] == '1';
  }
  const char* v = std::getenv("RT_TRACE");
  if (!v || !*v) return;
  require_probes("RT_TRACE");
  if (std::strncmp(v, "flight", 6) == 0 && (v[6] == '\0' || v[6] == ':')) {
    if (v[6] == ':') {
      std::int64_t ms = 0;
      const char* b = v + 7;
      auto [end, ec] = std::from_chars(b, b + std::strlen(b), ms);
      if (ec != std::errc{} || *end != '\0' || ms <= 0) {
        throw rt::runtime_error(std::string("RT_TRACE=\"") + v +
                                "\": the flight recorder's window must be a whole number of "
                                "milliseconds above 0 (RT_TRACE=flight:500), or use "
                                "RT_TRACE=flight for the last second");
      }
      g_env.window_ms = ms;
    }
    g_env.mode = env_request::flight;
    return;
  }
  FILE* out = std::fopen(v, "w");
  if (!out) {
    throw rt::runtime_error(std::string("RT_TRACE=\"") + v +
                            "\": cannot open the trace file: " + std::strerror(errno) +
                            " (set RT_TRACE to a writable file, or to \"flight\")");
  }
  g_env.mode = env_request::file;
  g_env.path = v;
  g_env.out = out;
}

void trace_run_started(runtime& rt) noexcept {
  std::lock_guard lk(g_mu);
  g_rt = &rt;
  const env_request req = g_env;
  g_env = env_request{};
  if (req.mode == env_request::none) return;
  try {
    auto s = make_session(static_cast<unsigned>(rt.workers.size()), req.mode == env_request::file,
                          req.fibers, req.window_ms);
    trace_session* p = s.get();
    activate(std::move(s), req.out, req.path);
    // The main fiber's spawn (rt::run spawns it, not rt::go), so that in a trace of a whole
    // run every fiber's first run has its cause.
    (void)p;
    trace_record(nullptr, trace_ev::spawn, 1, reinterpret_cast<std::uintptr_t>(rt.main_spawn_pc),
                 0);
  } catch (...) {
    if (req.out) std::fclose(req.out);
    std::fprintf(stderr, "rt: RT_TRACE: could not start the trace (out of memory)\n");
  }
}

void trace_run_ended() noexcept {
  std::lock_guard lk(g_mu);
  if (g_active) {
    const bool full = g_active->full;
    const std::string path = g_active->path;
    if (!deactivate() && full)
      std::fprintf(stderr, "rt: writing the trace %s failed\n", path.c_str());
  }
  g_sessions.clear();  // every worker has been joined: nobody can touch a ring any more
  g_rt = nullptr;
}

std::size_t trace_threads() noexcept {
  return g_threads.load();
}

void flight_recorder_dump_on_fatal(const char* why, std::int64_t found_at_ns) noexcept {
  // The fatal path may run while another thread holds g_mu (starting or stopping a trace):
  // try a while rather than deadlock the report.
  std::unique_lock lk(g_mu, std::defer_lock);
  for (int i = 0; i < 1000 && !lk.try_lock(); ++i) {
    timespec ts{0, 1'000'000};
    nanosleep(&ts, nullptr);
  }
  if (!lk.owns_lock() || !g_active) return;
  try {
    if (g_active->full) {
      const std::string path = g_active->path;
      if (deactivate())
        std::fprintf(stderr, "rt: trace up to the %s written to %s\n", why, path.c_str());
      return;
    }
    const std::string path = flight_path();
    FILE* out = std::fopen(path.c_str(), "w");
    if (!out) {
      std::fprintf(stderr, "rt: could not write the flight recording to %s: %s\n", path.c_str(),
                   std::strerror(errno));
      return;
    }
    dump_flight(*g_active, out, found_at_ns);
    std::fclose(out);
    std::fprintf(stderr, "rt: flight recording of the last %lld ms before the %s written to %s\n",
                 static_cast<long long>(g_active->window_ns / 1'000'000), why, path.c_str());
  } catch (...) {
  }
}

}  // namespace rt::detail

// ---- public API ------------------------------------------------------------------------------

namespace rt::trace {

using namespace rt::detail;

void start(const std::string& path, const config& cfg) {
  std::lock_guard lk(g_mu);
  require_probes("rt::trace::start");
  if (!g_rt) throw_no_run("rt::trace::start");
  if (g_active) throw_busy("rt::trace::start");
  FILE* out = std::fopen(path.c_str(), "w");
  if (!out) {
    throw rt::runtime_error("rt::trace::start: cannot open \"" + path +
                            "\" for writing: " + std::strerror(errno));
  }
  try {
    activate(make_session(static_cast<unsigned>(g_rt->workers.size()), true, cfg.fiber_tracks, 0),
             out, path);
  } catch (...) {
    std::fclose(out);
    throw;
  }
}

void stop() {
  std::lock_guard lk(g_mu);
  if (!g_active || !g_active->full) {
    throw rt::runtime_error(
        "rt::trace::stop called with no trace running (start one with rt::trace::start; a "
        "trace also stops by itself when rt::run returns)");
  }
  const std::string path = g_active->path;
  if (!deactivate()) throw rt::runtime_error("rt::trace::stop: writing \"" + path + "\" failed");
}

bool active() noexcept {
  return g_trace.load(std::memory_order_relaxed) != nullptr;  // relaxed: a snapshot only
}

void start_flight_recorder(std::chrono::milliseconds window) {
  std::lock_guard lk(g_mu);
  require_probes("rt::trace::start_flight_recorder");
  if (!g_rt) throw_no_run("rt::trace::start_flight_recorder");
  if (g_active) throw_busy("rt::trace::start_flight_recorder");
  if (window.count() <= 0) {
    throw rt::runtime_error("rt::trace::start_flight_recorder: the window must be above 0 ms");
  }
  activate(make_session(static_cast<unsigned>(g_rt->workers.size()), false, false, window.count()),
           nullptr, {});
}

void stop_flight_recorder() {
  std::lock_guard lk(g_mu);
  if (!g_active || g_active->full) {
    throw rt::runtime_error("rt::trace::stop_flight_recorder called with the flight recorder off");
  }
  deactivate();
}

void write_flight_recording(const std::string& path) {
  std::lock_guard lk(g_mu);
  if (!g_active || g_active->full) {
    throw rt::runtime_error(
        "rt::trace::write_flight_recording called with the flight recorder off (start it with "
        "rt::trace::start_flight_recorder or RT_TRACE=flight)");
  }
  FILE* out = std::fopen(path.c_str(), "w");
  if (!out) {
    throw rt::runtime_error("rt::trace::write_flight_recording: cannot open \"" + path +
                            "\" for writing: " + std::strerror(errno));
  }
  try {
    dump_flight(*g_active, out, now_ns());
  } catch (...) {
    std::fclose(out);
    throw rt::runtime_error("rt::trace::write_flight_recording: writing \"" + path + "\" failed");
  }
  if (std::fclose(out) != 0) {
    throw rt::runtime_error("rt::trace::write_flight_recording: writing \"" + path + "\" failed");
  }
}

}  // namespace rt::trace
