// runtime/monitor.cpp — rt::stats(), the monitor thread (RT_SCHEDTRACE lines, hog detection).
//
// The monitor. One thread per runtime (started by run_main before the workers, stopped and
// joined by shutdown before anything is torn down), in the spirit of Go's sysmon. It never
// touches a queue or a fiber's state: it only reads the counters of stats.hpp.
//   - Hogs. There is no preemption: a fiber that computes without a switch point holds its
//     worker. Each worker counts its switches into a fiber (counters.runs), and its `current`
//     (the fiber it runs, null on its own stack) is a published_ptr any thread may read. Every
//     hog_threshold/2 the monitor samples both; a worker seen running the same fiber with the
//     same switch count for at least the threshold has not left that fiber all along: a hog. The
//     duration it reports is a lower bound (from the first sample that saw the run), and a hog is
//     detected between threshold and threshold + threshold/2 into its run. It is reported once per
//     run (counted in rt::stats(), passed to probe_hog for the trace, and with RT_HOGWARN=1 printed
//     on stderr); while it lasts, its duration keeps growing in rt::stats(). Durations are
//     wall-clock: a fiber blocked in a system call holds its worker as much as one that computes,
//     and is reported alike.
//   - Schedtrace. With RT_SCHEDTRACE=<ms> (options::schedtrace_ms), one line per period on
//     stderr (format in docs/profiling.md).
//   - Idle. While every worker is idle nothing can hog, so the monitor does not sample: it sleeps
//     on prof.word until a worker leaves idle (unless a schedtrace period is due first). So a
//     fully idle runtime still burns no CPU. The sleep and the wakeup form a Dekker pair:
//       monitor: sleeping = true (seq_cst); load n_idle (seq_cst); all idle: futex_wait(word)
//       worker:  n_idle -= 1 (seq_cst RMW, by it or by its waker, ordered before it resumes);
//                load sleeping (seq_cst, probe_worker_wake); true: kick_monitor (word = 1; wake)
//     In the total order of seq_cst operations, if the monitor's load of n_idle read "all idle"
//     it precedes the decrement, which precedes the worker's load of `sleeping`; the store of
//     `sleeping` precedes both, so the worker sees it and wakes the monitor (whose futex_wait
//     returns at once if word is already 1).
//   Reading the hog's id and spawn site: the fiber may exit and its control block be reused by a
//   new spawn at any moment, with nothing ordering that spawn's writes after our reads: so both
//   sides access id and spawn_pc atomically (std::atomic_ref, relaxed: plain moves on x86), and
//   the monitor reads them under chunks_mu, under which the block was constructed (its fields
//   first written plainly) — or, for the main fiber, before the monitor started. The
//   monitor then re-reads the switch count and the worker's current fiber: unchanged, the fiber
//   was running all along, so what was read is its own.
#include <algorithm>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ostream>
#include <sstream>
#include <string>
#include <vector>

#include "dump.hpp"
#include "fatal.hpp"
#include "futex.hpp"
#include "probes.hpp"
#include "rt/errors.hpp"
#include "rt/stats.hpp"
#include "scheduler.hpp"

namespace rt::detail {
namespace {

constexpr unsigned default_hog_threshold_ms = 10;
constexpr unsigned max_period_ms = 3'600'000;  // an hour

unsigned parse_ms(const char* name, const char* env, const char* what) {
  unsigned v = 0;
  auto [end, ec] = std::from_chars(env, env + std::strlen(env), v);
  if (ec != std::errc{} || *end != '\0' || v > max_period_ms) {
    throw rt::runtime_error(std::string(name) + "=\"" + env + "\" is not " + what +
                            ": set it to a whole number of milliseconds from 1 to " +
                            std::to_string(max_period_ms) + " (0 or unset: off)");
  }
  return v;
}

std::uint64_t sub0(std::uint64_t a, std::uint64_t b) noexcept {
  return a > b ? a - b : 0;
}

// The runtime-wide sums the schedtrace line, the peak sampling and rt::stats() share.
struct totals {
  std::uint64_t spawned = 0, finished = 0, steals = 0;
  std::uint64_t live() const noexcept { return sub0(spawned, finished); }
};

// Reads every worker's counts once and returns their sums; with `per_worker` (one per worker),
// also stores each worker's finished and spawned counts there, so that rt::stats()'s totals are
// the sums of the per-worker figures it shows (a second read could differ from the first).
totals sum_counters(const runtime& rt, rt::worker_stats* per_worker = nullptr) noexcept {
  totals t;
  // Every finished before every spawned: a fiber spawned and finished between the two reads
  // counts as spawned only, which keeps live from going negative.
  for (std::size_t i = 0; i < rt.workers.size(); ++i) {
    const std::uint64_t finished = rt.workers[i]->counters.finished().get();
    t.finished += finished;
    if (per_worker) per_worker[i].finished = finished;
  }
  t.spawned = rt.prof.outside_spawned.load(std::memory_order_relaxed);
  for (std::size_t i = 0; i < rt.workers.size(); ++i) {
    const std::uint64_t spawned = rt.workers[i]->counters.spawned.get();
    t.spawned += spawned;
    t.steals += rt.workers[i]->counters.steals.get();
    if (per_worker) per_worker[i].spawned = spawned;
  }
  return t;
}

// Returns max(value, shown) and raises `shown` to it, so that the times rt::stats() reports never
// go backwards from one snapshot to the next (see worker_counters::shown_busy_ns). relaxed: a
// CAS-max of a reported figure; nothing else is published through it.
std::uint64_t never_below_shown(std::atomic<std::uint64_t>& shown, std::uint64_t value) noexcept {
  std::uint64_t cur = shown.load(std::memory_order_relaxed);
  while (value > cur && !shown.compare_exchange_weak(cur, value, std::memory_order_relaxed)) {
  }
  return std::max(value, cur);
}

// Parked fibers by wait reason, from a walk of every control block (state and reason are
// atomics; relaxed: each a figure read alone). Exact for fibers at rest; linear in the control
// blocks ever allocated, so for rt::stats() and the schedtrace line only.
std::uint64_t count_parked(runtime& rt, std::uint64_t (&by_reason)[n_wait_reasons]) {
  std::uint64_t total = 0;
  std::lock_guard lk(rt.chunks_mu);
  for (auto& c : rt.chunks) {
    for (std::size_t i = 0; i < fiber_chunk; ++i) {
      if (c[i].state.load(std::memory_order_relaxed) != fiber_state::parked) continue;
      ++by_reason[static_cast<std::size_t>(c[i].reason.load(std::memory_order_relaxed)) %
                  n_wait_reasons];
      ++total;
    }
  }
  return total;
}

void note_peak(runtime& rt, std::uint64_t live) noexcept {
  // relaxed: a CAS-max of a sampled figure; nothing else is published through it.
  std::uint64_t peak = rt.prof.peak_live.load(std::memory_order_relaxed);
  while (live > peak &&
         !rt.prof.peak_live.compare_exchange_weak(peak, live, std::memory_order_relaxed)) {
  }
}

// What the monitor remembers of each worker between samples.
struct hog_watch {
  fiber* f = nullptr;
  std::uint64_t runs = 0;
  std::int64_t since = 0;  // the first sample that saw this run
  bool reported = false;
  std::uint64_t id = 0;
};

void sample_hogs(runtime& rt, std::vector<hog_watch>& watch, std::int64_t now,
                 std::int64_t threshold_ns) {
  for (std::size_t i = 0; i < rt.workers.size(); ++i) {
    worker& w = *rt.workers[i];
    worker_counters& c = w.counters;
    // In this order, current with acquire: runs is then at least the count of current's run
    // (see probe_run), so a new run of the same fiber always shows as a new count.
    fiber* f = w.current.load_acquire();
    const std::uint64_t runs = c.runs.get();
    hog_watch& h = watch[i];
    if (!f || f != h.f || runs != h.runs) {
      h = hog_watch{f, runs, now, false, 0};
      continue;
    }
    const std::int64_t held = now - h.since;
    if (held < threshold_ns) continue;
    if (h.reported) {  // the same hog, still holding on: only its duration grows
      c.last_hog_ns.store(held, std::memory_order_relaxed);
      if (rt.prof.last_hog_fiber.load(std::memory_order_relaxed) == h.id)
        rt.prof.last_hog_ns.store(held, std::memory_order_relaxed);
      continue;
    }
    // Atomic loads, as new_fiber's stores: the block may be reused for a new fiber as soon as
    // this one exits (then the re-check below throws away what was read).
    // chunks_mu: the control block was constructed (its fields written plainly) under it.
    std::uint64_t id;
    void* spawn_pc;
    std::string name;
    {
      std::lock_guard lk(rt.chunks_mu);
      id = f->id.load(std::memory_order_relaxed);
      spawn_pc = f->spawn_pc.load(std::memory_order_relaxed);
      name = fiber_name(f);
    }
    if (c.runs.get() != runs || w.current != f) {
      h = hog_watch{};  // it switched meanwhile: what we read may not be its own
      continue;
    }
    h.reported = true;
    h.id = id;
    // The monitor is the only writer of the hog figures (relaxed: read alone, as counters).
    c.hogs.add();
    c.last_hog_fiber.set(id);
    c.last_hog_ns.store(held, std::memory_order_relaxed);
    rt.prof.last_hog_fiber.store(id, std::memory_order_relaxed);
    rt.prof.last_hog_worker.store(static_cast<unsigned>(i), std::memory_order_relaxed);
    rt.prof.last_hog_ns.store(held, std::memory_order_relaxed);
    rt.prof.hogs.fetch_add(1, std::memory_order_relaxed);
    probe_hog(w, f, held);
    if (rt.opts.hog_warn) {
      const std::string site = describe_spawn_site(spawn_pc);
      const std::string quoted = name.empty() ? "" : " \"" + name + "\"";
      std::fprintf(stderr,
                   "rt: fiber %llu%s has held worker %zu for %lld ms without a switch point "
                   "(spawned at %s)\n",
                   static_cast<unsigned long long>(id), quoted.c_str(), i,
                   static_cast<long long>(held / 1'000'000), site.c_str());
      std::fflush(stderr);
    }
  }
}

void print_schedtrace(runtime& rt, std::int64_t now, std::uint64_t& last_steals) {
  const totals t = sum_counters(rt);
  std::string line = "SCHED " + std::to_string((now - rt.prof.start_ns) / 1'000'000) +
                     "ms: workers=" + std::to_string(rt.workers.size()) +
                     " idle=" + std::to_string(rt.n_idle.load(std::memory_order_relaxed)) +
                     " spinning=" + std::to_string(rt.n_spinning.load(std::memory_order_relaxed)) +
                     " global=" + std::to_string(rt.global_size()) + " local=[";
  for (std::size_t i = 0; i < rt.workers.size(); ++i) {
    if (i) line += ' ';
    line += std::to_string(rt.workers[i]->local.size());
  }
  line += "] spawned=[";
  for (std::size_t i = 0; i < rt.workers.size(); ++i) {
    if (i) line += ' ';
    line += std::to_string(rt.workers[i]->spawned.size());
  }
  std::uint64_t by_reason[n_wait_reasons] = {};
  const std::uint64_t parked = count_parked(rt, by_reason);
  line += "] live=" + std::to_string(t.live()) + " parked=" + std::to_string(parked) +
          " steals=" + std::to_string(sub0(t.steals, last_steals)) + "\n";
  last_steals = t.steals;
  std::fputs(line.c_str(), stderr);  // one call: lines from other threads do not interleave
  std::fflush(stderr);
  rt.prof.schedtrace_lines.fetch_add(1, std::memory_order_relaxed);  // relaxed: a count
}

void monitor_main(runtime& rt) {
  runtime_profile& p = rt.prof;
  const std::int64_t threshold = std::int64_t{rt.opts.hog_threshold_ms} * 1'000'000;
  const std::int64_t sample_period = std::max<std::int64_t>(threshold / 2, 500'000);
  const std::int64_t trace_period = std::int64_t{rt.opts.schedtrace_ms} * 1'000'000;
  std::vector<hog_watch> watch(rt.workers.size());
  std::uint64_t last_steals = 0;
  std::int64_t next_trace = trace_period ? p.start_ns + trace_period : no_deadline;
  std::int64_t next_sample = now_ns() + sample_period;
  while (!p.stop.load()) {
    std::int64_t now = now_ns();
    g_park_clock_ns.store(now, std::memory_order_relaxed);  // see fiber.hpp
    if (now >= next_trace) {
      print_schedtrace(rt, now, last_steals);
      next_trace += trace_period;
      if (next_trace <= now) next_trace = now + trace_period;  // fell behind: no burst of lines
    }
    if (now >= next_sample) {
      sample_hogs(rt, watch, now, threshold);
      note_peak(rt, sum_counters(rt).live());
      p.monitor_ticks.fetch_add(1, std::memory_order_relaxed);  // relaxed: a count
      next_sample = now + sample_period;
    }
    const bool all_idle = rt.n_idle.load() == rt.workers.size();
    const std::int64_t until = std::min(next_trace, all_idle ? no_deadline : next_sample);
    p.word.store(0);
    if (all_idle) {
      // The monitor's half of the Dekker pair (see the top of this file).
      p.sleeping.store(true);
      if (rt.n_idle.load() != rt.workers.size()) {
        p.sleeping.store(false);
        continue;
      }
    }
    if (p.stop.load()) break;
    now = now_ns();
    if (until == no_deadline) {
      futex_wait(&p.word, 0);
    } else if (until > now) {
      const std::int64_t d = until - now;
      timespec ts{static_cast<time_t>(d / 1'000'000'000), static_cast<long>(d % 1'000'000'000)};
      futex_wait(&p.word, 0, &ts);
    }
    if (all_idle) {
      p.sleeping.store(false);
      // Whatever ran before the idle spell is over: watch afresh, sample a period from now.
      for (auto& h : watch) h = hog_watch{};
      next_sample = now_ns() + sample_period;
    }
  }
}

}  // namespace

void resolve_profiling_options(options& o) {
  if (o.schedtrace_ms == 0) {
    if (const char* env = std::getenv("RT_SCHEDTRACE"); env && *env)
      o.schedtrace_ms = parse_ms("RT_SCHEDTRACE", env, "a scheduler trace period");
  }
  if (!o.hog_warn) {
    if (const char* env = std::getenv("RT_HOGWARN"); env && *env) {
      if (std::strcmp(env, "1") == 0) {
        o.hog_warn = true;
      } else if (std::strcmp(env, "0") != 0) {
        throw rt::runtime_error(std::string("RT_HOGWARN=\"") + env +
                                "\" is not 0 or 1: set it to 1 to print a warning for each fiber "
                                "that holds its worker without a switch point, 0 or unset not to");
      }
    }
  }
  if (o.hog_threshold_ms == 0) o.hog_threshold_ms = default_hog_threshold_ms;
  if (o.schedtrace_ms > max_period_ms || o.hog_threshold_ms > max_period_ms) {
    throw rt::runtime_error(
        "rt::options::" +
        std::string(o.schedtrace_ms > max_period_ms ? "schedtrace_ms" : "hog_threshold_ms") +
        " is more than " + std::to_string(max_period_ms) + " (an hour)");
  }
}

std::atomic<std::int64_t> g_park_clock_ns [[gnu::visibility("hidden")]]{0};

void start_profiling(runtime& rt) {
  runtime_profile& p = rt.prof;
  p.start_ns = now_ns();
  g_park_clock_ns.store(p.start_ns, std::memory_order_relaxed);
  for (auto& w : rt.workers) {
    w->counters.since_ns.store(p.start_ns, std::memory_order_relaxed);
    w->counters.stolen_from = std::make_unique<owned_counter[]>(rt.workers.size());
  }
  p.outside_spawned.store(1, std::memory_order_relaxed);  // the main fiber, spawned by rt::run
  if constexpr (!profiling_compiled) return;              // no probes: nothing to watch
  p.thread = std::thread([&rt] { monitor_main(rt); });
  p.started = true;
}

void stop_profiling(runtime& rt) noexcept {
  runtime_profile& p = rt.prof;
  if (!p.started) return;
  p.stop.store(true);
  p.word.store(1);
  futex_wake(&p.word);
  p.thread.join();
  p.started = false;
}

void kick_monitor(runtime& rt) noexcept {
  // Only the worker that turns `sleeping` off wakes it: one system call per idle spell.
  if (!rt.prof.sleeping.exchange(false)) return;
  rt.prof.word.store(1);
  futex_wake(&rt.prof.word);
}

bool monitor_running(const runtime& rt) noexcept {
  return rt.prof.started;
}

namespace {

rt::runtime_stats collect(runtime& rt) {
  rt::runtime_stats s;
  s.running = true;
  const std::size_t n = rt.workers.size();
  s.workers.resize(n);
  const totals t = sum_counters(rt, s.workers.data());
  s.spawned = t.spawned;
  s.finished = t.finished;
  for (std::size_t i = 0; i < n; ++i) {
    const worker_counters& c = rt.workers[i]->counters;
    rt::worker_stats& ws = s.workers[i];
    ws.index = static_cast<unsigned>(i);
    ws.fibers_run = c.runs.get();
    ws.yields = c.yields().get();
    ws.parks = c.parks().get();
    ws.wakes = c.wakes.get();
    ws.run_next_hits = c.run_next_hits.get();
    ws.steal_attempts = c.steal_attempts.get();
    ws.steals = c.steals.get();
    ws.stolen_by = c.stolen.get();
    ws.taken_from_global = c.took_global.get();
    ws.idles = c.idles.get();
    // The seqlock read of the busy/idle times (see worker_counters).
    std::uint64_t busy = 0, idle_ns = 0;
    std::int64_t since = 0;
    bool idle = false;
    for (;;) {
      const std::uint32_t v = c.time_seq.load(std::memory_order_acquire);
      busy = c.busy_ns.get();
      idle_ns = c.idle_ns.get();
      since = c.since_ns.load(std::memory_order_relaxed);
      idle = c.idle.load(std::memory_order_relaxed);
      std::atomic_thread_fence(std::memory_order_acquire);
      if (v % 2 == 0 && c.time_seq.load(std::memory_order_relaxed) == v) break;
    }
    const std::int64_t open = std::max<std::int64_t>(0, now_ns() - since);
    ws.busy_time = std::chrono::nanoseconds(
        never_below_shown(c.shown_busy_ns, busy + (idle ? 0 : static_cast<std::uint64_t>(open))));
    ws.idle_time = std::chrono::nanoseconds(never_below_shown(
        c.shown_idle_ns, idle_ns + (idle ? static_cast<std::uint64_t>(open) : 0)));
    ws.idle = idle;
    ws.local_queue = rt.workers[i]->local.size();
    ws.spawned_queue = rt.workers[i]->spawned.size();
    ws.stacks_cached = rt.workers[i]->stacks.published_size();
    ws.hogs = c.hogs.get();
    ws.last_hog_fiber = c.last_hog_fiber.get();
    ws.last_hog_time = std::chrono::nanoseconds(c.last_hog_ns.load(std::memory_order_relaxed));
    if (rt.workers[i]->current != nullptr) ++s.running_fibers;
    s.stacks_pooled += ws.stacks_cached;
    if (c.stolen_from) {
      for (std::size_t v = 0; v < n; ++v) s.workers[v].stolen_from += c.stolen_from[v].get();
    }
  }
  s.live = t.live();
  note_peak(rt, s.live);
  s.peak_live = rt.prof.peak_live.load(std::memory_order_relaxed);
  std::uint64_t by_reason[n_wait_reasons] = {};
  s.parked = count_parked(rt, by_reason);
  auto parked = [&](wait_reason r) { return by_reason[static_cast<std::size_t>(r)]; };
  s.parked_by.chan_receive = parked(wait_reason::chan_receive);
  s.parked_by.chan_send = parked(wait_reason::chan_send);
  s.parked_by.select = parked(wait_reason::select);
  s.parked_by.wait_group = parked(wait_reason::wait_group);
  s.parked_by.mutex = parked(wait_reason::mutex);
  s.parked_by.cond_var = parked(wait_reason::cond_var);
  s.parked_by.sleep = parked(wait_reason::sleep);
  s.parked_by.io = parked(wait_reason::io_read) + parked(wait_reason::io_write);
  s.parked_by.blocking = parked(wait_reason::blocking);
  s.parked_by.forever = parked(wait_reason::chan_receive_nil) + parked(wait_reason::chan_send_nil) +
                        parked(wait_reason::select_no_cases);
  s.parked_by.once = parked(wait_reason::once);
  s.parked_by.semaphore = parked(wait_reason::semaphore);
  s.parked_by.rwmutex = parked(wait_reason::rwmutex_read) + parked(wait_reason::rwmutex_write);
  s.sleeping = s.parked_by.sleep;
  s.runnable = sub0(s.live, s.parked + s.running_fibers);
  s.global_queue = rt.global_size();
  s.idle_workers = rt.n_idle.load(std::memory_order_relaxed);
  s.spinning_workers = rt.n_spinning.load(std::memory_order_relaxed);
  const stack_pool::shared_counts sc = rt.stacks.counts();
  s.stacks_pooled += sc.warm + sc.cold;
  s.stack_bytes_mapped = sc.mapped_bytes;
  {
    std::lock_guard lk(rt.chunks_mu);
    s.control_blocks = rt.chunks.size() * fiber_chunk;
    s.control_block_bytes_mapped = rt.chunk_memory.slab_bytes_mapped();
  }
  // The workers' caches and the shared pool are read one after the other, not at one instant: a
  // stack a worker trims into the shared pool in between is counted in both (seen: 69,992,448
  // pooled against 67,108,864 mapped). What is pooled is mapped, so never show more.
  s.stack_bytes_pooled =
      std::min<std::uint64_t>(s.stacks_pooled * rt.stacks.slot_size(), s.stack_bytes_mapped);
  s.hogs = rt.prof.hogs.load(std::memory_order_relaxed);
  s.last_hog_fiber = rt.prof.last_hog_fiber.load(std::memory_order_relaxed);
  s.last_hog_worker = rt.prof.last_hog_worker.load(std::memory_order_relaxed);
  s.last_hog_time = std::chrono::nanoseconds(rt.prof.last_hog_ns.load(std::memory_order_relaxed));
  s.hog_threshold = std::chrono::milliseconds(rt.opts.hog_threshold_ms);
  s.schedtrace_lines = rt.prof.schedtrace_lines.load(std::memory_order_relaxed);
  s.monitor_ticks = rt.prof.monitor_ticks.load(std::memory_order_relaxed);
  s.blocking_threads = rt.blocking.live_threads();
  s.blocking_queued = rt.blocking.queued();
  return s;
}

}  // namespace
}  // namespace rt::detail

namespace rt {

runtime_stats stats() {
  if (detail::worker* w = detail::current_worker()) return detail::collect(w->rt);
  // A plain thread: hold the runtime (as rt::go does) so rt::run cannot tear it down meanwhile.
  detail::plain_thread_scope scope;
  detail::runtime* rt = detail::g_current_runtime.load();
  if (!rt) return runtime_stats{};
  return detail::collect(*rt);
}

std::string to_string(const runtime_stats& s) {
  if (!s.running) return "rt::stats: no runtime running\n";
  std::ostringstream o;
  auto ms = [](std::chrono::nanoseconds d) { return d.count() / 1'000'000; };
  o << "rt::stats: workers=" << s.workers.size() << " idle=" << s.idle_workers
    << " spinning=" << s.spinning_workers << " spawned=" << s.spawned << " finished=" << s.finished
    << " live=" << s.live << " peak_live=" << s.peak_live << " running=" << s.running_fibers
    << " runnable=" << s.runnable << " parked=" << s.parked
    << " (chan_receive=" << s.parked_by.chan_receive << " chan_send=" << s.parked_by.chan_send
    << " select=" << s.parked_by.select << " wait_group=" << s.parked_by.wait_group
    << " mutex=" << s.parked_by.mutex << " cond_var=" << s.parked_by.cond_var
    << " sleep=" << s.parked_by.sleep << " io=" << s.parked_by.io
    << " blocking=" << s.parked_by.blocking << " forever=" << s.parked_by.forever
    << ") global_queue=" << s.global_queue << " stacks_pooled=" << s.stacks_pooled
    << " stack_bytes_pooled=" << s.stack_bytes_pooled
    << " stack_bytes_mapped=" << s.stack_bytes_mapped << " control_blocks=" << s.control_blocks
    << " control_block_bytes_mapped=" << s.control_block_bytes_mapped << " hogs=" << s.hogs;
  if (s.hogs) {
    o << " last_hog=fiber " << s.last_hog_fiber << " on worker " << s.last_hog_worker << " for "
      << ms(s.last_hog_time) << "ms";
  }
  o << " blocking_threads=" << s.blocking_threads << " blocking_queued=" << s.blocking_queued;
  o << "\n";
  for (const worker_stats& w : s.workers) {
    o << "  worker " << w.index << ": run=" << w.fibers_run << " spawned=" << w.spawned
      << " finished=" << w.finished << " yields=" << w.yields << " parks=" << w.parks
      << " wakes=" << w.wakes << " run_next_hits=" << w.run_next_hits
      << " steal_attempts=" << w.steal_attempts << " steals=" << w.steals
      << " stolen_by=" << w.stolen_by << " stolen_from=" << w.stolen_from
      << " from_global=" << w.taken_from_global << " idles=" << w.idles
      << " busy=" << ms(w.busy_time) << "ms idle=" << ms(w.idle_time) << "ms"
      << (w.idle ? " (idle)" : "") << " local=" << w.local_queue
      << " spawned_queue=" << w.spawned_queue << " stacks_cached=" << w.stacks_cached
      << " hogs=" << w.hogs << "\n";
  }
  return o.str();
}

std::ostream& operator<<(std::ostream& os, const runtime_stats& s) {
  return os << to_string(s);
}

}  // namespace rt
