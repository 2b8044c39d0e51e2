// runtime/scheduler.hpp — the M:N scheduler: worker threads, run queues, stealing, parking.
//
// ============================================================================================
// Design (read this before changing anything below)
// ============================================================================================
//
// Workers. One OS thread per worker (options::workers, RT_MAXPROCS, else one per core). A worker
// runs a loop on its own thread stack — the scheduler context — that picks a runnable fiber,
// switches to it, and when a fiber switches back, finishes what that fiber asked for
// (after_switch: requeue it, publish it as parked, or recycle it).
//   Direct switches: a fiber that parks, yields or ends while its worker has another fiber ready
// locally (run_next or the local queue) switches straight to it, and the after_switch step runs
// on the new fiber's stack right after the switch. Either way the step runs only once the old
// fiber is off its stack, so "the fiber is off its stack" is a fact by the time anyone else can
// find it (see Parking below). The scheduler context stays suspended in run_fiber (its saved
// context in worker::sched_ctx) and gets control back when no local fiber is ready, every
// `global_poll_interval`th pick, when a timer is due, or when the runtime stops.
//   Switching. Every switch is one jump (Boost.Context's fcontext layer) whose message is the
// worker it happens on, with the fiber switching out left in worker::switching_from (nullptr from
// the scheduler context). The arriving side — a fiber resumed in suspend(), a new one in
// fiber_entry, the scheduler in run_fiber — learns its worker from the message, stores the
// switched-out fiber's saved context and runs its after_switch step (arrived()). A fiber that
// ends while the next local fiber has never run hands it its stack instead of switching:
// adopt_stack() (docs/design.md, "Fast paths", has why each of these is safe).
//
// Queues. Each worker owns:
//   - run_next: one fiber, the one it most recently spawned or readied. A communicating pair
//     (a sender waking its receiver) runs back to back on one worker, cache-warm, without a trip
//     through a queue. Only the owner touches it. Every `global_poll_interval`th pick (the global
//     poll's tick) `spawned` and `local` go before it, so a ping-pong pair cannot starve the
//     rest.
//   - spawned: a spawn_deque (spawn_deque.hpp) of the fibers it spawned that run_next had to give
//     up. The owner takes the newest first, so a tree of spawns (skynet, fork-join) runs depth
//     first: a few hundred fibers alive instead of a whole level of the tree, with cache-warm
//     stacks instead of fresh pages. Thieves take the oldest — the largest pending subtree —
//     one at a time. When it is full, the owner moves its older half to the global queue (as
//     Go's runqputslow does), which keeps `local` short: a fiber woken onto its tail (a sleeper
//     whose timer fired) does not wait behind a burst of spawns that have not started. Every
//     `spawned_turn`th pick `local` goes first, so a stream of spawns cannot starve it.
//   - local: a run_ring (run_ring.hpp), Go's runq: a bounded ring (local_cap) that only the owner
//     pushes to (FIFO) and that the owner and thieves take from, by a CAS on its head. A yield
//     is one push and one pop of it, a few instructions each. When it is full the owner moves
//     its oldest local_batch to the global queue (push_local, as Go's runqputslow).
// One global queue (global_queue.hpp, Go's sched.runq: segments under a lock, moved in batches)
// takes fibers readied from outside the workers (plain threads, rt::run) and the overflow of
// full `spawned` deques and `local` rings, and is polled every `global_poll_interval`th pick (61,
// as Go does) so it never starves. It has two lanes, served in turn: the spawn overflow, and
// everything else (runtime::global_spawns says why).
//
// Stealing. A worker with nothing to run becomes a *spinning* worker: it tries each other
// worker, from a random start, and takes about half of a victim's `local` queue in one batch
// (or else the oldest fiber of its `spawned` deque), then the global queue. A parking worker's
// re-check (below) covers the `spawned` deques too: every push into one is a submission. At most
// half the busy workers spin at once (more would only fight over crumbs).
//
// Parking and waking (the protocol that must never lose a wakeup):
//   Counters: n_spinning (workers searching), n_idle (workers parked or about to park, with the
//   idle list under idle_mu).
//   Submitter (spawn, yield of a stealable fiber, plain-thread go): put the fiber in a queue;
//     seq_cst fence; if n_spinning == 0 and n_idle > 0, wake one idle worker and count it as
//     spinning (a CAS of n_spinning 0 -> 1, so a burst of submissions wakes one worker, not all).
//   Spinning worker that finds work: leaves the spinning state; if it was the last spinner, it
//     wakes another idle worker to carry on searching (work tends to come in bursts). This is
//     the "last searcher wakes the next" rule from Go's proc.go.
//   Worker giving up: leaves the spinning state; pushes itself on the idle list (n_idle++);
//     seq_cst fence; re-checks every queue. If it sees work it takes itself off the idle list
//     and searches again; otherwise it sleeps on its futex word until woken.
//   Why no wakeup is lost: the submitter does (store to queue; fence; load counters) and the
//   parking worker does (store counters; fence; load queues). With both fences seq_cst, at
//   least one of them sees the other's store: either the submitter sees the worker idle (and
//   wakes someone, possibly that worker — whose futex word is then already set, so its sleep
//   returns at once) or the worker's re-check sees the work. If the submitter saw n_spinning
//   != 0 instead, it counts on a holder of that count (a "searching token") whose give-back
//   comes after its load: every give-back looks at the queues after it, with a fence. A spinning
//   worker that parks gives its token back before it re-checks; one that found work gives it
//   back through release_search_token(), and the last holder wakes a worker for what it sees;
//   so does a waker that took the token (the CAS above) and then found the idle list empty —
//   it searched nothing, yet submitters skipped their wakeups meanwhile. (It once just gave the
//   token back: a plain thread's fiber then sat in the global queue while every worker slept.)
//   A fully idle runtime therefore has every worker asleep in futex_wait: it burns no CPU.
//   Before sleeping, a parked worker polls its wake word for park_poll_ns (50 us): it is often
//   woken again within microseconds, and while it polls (`sleeping` is not_sleeping) its waker
//   skips the futex_wake system call. The `sleeping` store and the waker's wake_word store are
//   seq_cst, so a waker either sees in_futex and wakes the sleeper, or the sleeper's futex_wait
//   sees the wake word already set.
//
// Migration and thread_local. Fibers move between workers when stolen, and a fiber can resume
// on a different thread after any switch. Compilers cache thread_local addresses within a
// function, so a fiber must never read a thread_local, switch, and read it again. Every access
// to per-thread state goes through the non-inlined accessors current_worker() and
// current_fiber(), which re-read the thread_local on every call. The one exception is
// tls_worker itself, read directly (one load) by functions that never switch — spawn, wake,
// the plain-thread scope — and by a parking fiber before its switch, never after it.
// errno is per thread too: the switch code swaps it as it swaps the C++ exception state, through
// worker::thread_errno (the worker thread's &errno, taken once on that thread, never a cached
// __errno_location() on a fiber's stack): the switching side saves the fiber's errno, the side
// that resumes a fiber loads its own. A fiber that has never run starts with errno 0.
//
// Timers. Each worker has a timer heap (timer.hpp) and publishes its earliest deadline in
// next_timer. A worker runs its own due timers whenever it looks for work, and a searching worker
// runs the due timers of every other worker it visits (steal_work: timer stealing, as Go's
// stealWork does), so a worker held by a long fiber does not hold up its timers while another
// worker is free. A parked worker sleeps on its futex at most until the earliest timer of *any*
// worker (Go's pollUntil over every P), publishing that time in park_until; when it comes, the
// worker leaves the idle list on its own, as a searching worker, and so runs the due timers of
// whichever worker they are on. A timer armed earlier than what the idle workers sleep until
// must wake one of them to compute its sleep again (Go's wakeNetPoller in modtimer); that costs
// a fence and a scan of the workers, only on the arming path (sleep, after, timed waits) and only
// when the new timer is its worker's earliest and some worker is idle:
//   Armer (add_timer): store next_timer; seq_cst fence; if n_idle > 0, load every worker's
//     park_until, and set recheck_bit on (and futex-wake) each that sleeps past the new timer
//     (each, not one: one told alone might be woken for work and run a fiber that never yields).
//   Parker (park_worker, on the idle list, n_idle counted): compute the earliest timer, store it
//     in park_until; seq_cst fence; load every next_timer again (repeat if one is earlier); sleep
//     until then. Leaving park_worker, it stores `awake` in park_until.
//   Why no timer is slept through: the two fences are ordered. If the armer's comes first, the
//   parker's second look sees the new next_timer and sleeps no longer than it. If the parker's
//   comes first, the armer sees n_idle and park_until, and a park_until past the timer makes it
//   set recheck_bit — the wake word's Dekker pair with `sleeping` (as for wake_one_idle) then
//   makes sure the sleeper's futex_wait returns or does not start.
// All idle workers sleep until the same earliest timer; when it comes they all look for it, and
// those that find nothing park again.
//
// I/O (netpoll.cpp has the per-descriptor protocol). A fiber whose non-blocking call says EAGAIN
// parks on the descriptor's poll_desc, counted in n_io_waiters. Readiness comes from one epoll
// instance, and reaches fibers through whichever worker calls epoll_wait, into that worker's
// local queue, as any submission does:
//   - The poller: while n_io_waiters > 0, the first idle worker to take poller_taken sleeps in
//     epoll_wait instead of futex_wait, with the same timeout (the earliest timer of any worker),
//     so timers keep firing while it sits there. Its sleeping state is `in_epoll`, and notify()
//     — the waker's half of every wake_word Dekker pair (wake_one_idle, timer_armed, shutdown) —
//     interrupts it by writing an eventfd instead of futex_wake. The poller stores `in_epoll`
//     (seq_cst) and then loads wake_word itself before epoll_wait, since epoll_wait, unlike
//     futex_wait, cannot compare the word atomically: either it sees the waker's bit or the waker
//     sees `in_epoll` and writes the eventfd, which makes epoll_wait return at once.
//   - When epoll readies fibers, the poller leaves the idle list as a searching worker (as for a
//     due timer) and runs them; leaving, it gives up poller_taken and, if fibers still wait on
//     I/O, tells another idle worker to look again (ensure_poller), which then takes the job.
//   - A fiber about to wait on I/O does the same after counting itself: n_io_waiters++ (seq_cst);
//     load poller_taken and n_idle. A parking worker stores n_idle (seq_cst) before it loads
//     n_io_waiters. One of the two sees the other, so while fibers wait on I/O and a worker is
//     idle, some idle worker is (or is about to be) in epoll_wait.
//   - While every worker is busy, nobody blocks in epoll_wait: a worker polls without blocking
//     before it parks and every `global_poll_interval`th pick (as Go's findrunnable and sysmon).
//   - A fiber waiting on I/O can always be woken from outside: the deadlock check treats
//     n_io_waiters > 0 as progress still possible.
//
// Deadlock detection (runtime/deadlock.cpp). When the last worker is about to sleep, with no
// work queued anywhere, no timer armed, and no thread in the process other than the runtime's
// (any other thread might still send on a channel), every fiber is parked on something only a
// fiber could signal: the program can never progress. check_deadlock() then prints Go's report
// and exits with status 2. It runs only on that idle path, so it costs nothing while fibers run.
//
// Shutdown (runtime/shutdown.cpp has the argument). When the main fiber returns, rt::run keeps
// plain threads out, sets `stopping`, wakes every worker and joins them (each finishes the fiber
// it is running up to its next switch point). Then, on the thread that called rt::run, every
// fiber still alive is abandoned, as Go abandons goroutines when main returns: none is resumed,
// so no code of it — no catch block, no destructor — runs after main's frame is gone. Its
// waiters are unlinked from their queues, its timers dropped, the mutexes it holds released,
// its stack given up; a fiber that never started has its callable destroyed. Nothing of the old
// runtime survives, so rt::run can be called again.
//
// Deadlock detection has its own file and argument: runtime/deadlock.cpp.
//
// Observation (issue 10; docs/profiling.md). Every scheduling event passes through an inline probe
// (probes.hpp): per-worker counters written only by their owner (stats.hpp), and the execution
// trace's records behind one flag test (trace.cpp). A monitor thread (monitor.cpp) prints
// RT_SCHEDTRACE lines, watches for fibers that hold a worker without a switch point, and publishes
// the park clock; it sleeps while every worker is idle. Fiber dumps (dump.cpp) read a parked
// fiber's stack from its saved context while other workers run: a dumper's claim and a resumer's
// publish_running() (fiber.hpp) form a Dekker pair, so a fiber is never resumed while its stack is
// read. The monitor, the trace writer and the SIGQUIT watcher are the runtime's own threads: the
// deadlock check counts them.
// ============================================================================================
#pragma once

#include <atomic>
#include <cstdint>
#include <exception>
#include <limits>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "block_arena.hpp"
#include "blocking.hpp"
#include "fiber.hpp"
#include "global_queue.hpp"
#include "rt/options.hpp"
#include "run_ring.hpp"
#include "sanitizer.hpp"
#include "spawn_deque.hpp"
#include "stack_pool.hpp"
#include "stats.hpp"
#include "timer.hpp"
#include "trace.hpp"

namespace rt::detail {

class runtime;

// Capacity of a worker's `local` ring (a power of two). Larger than Go's 256: yields go here (Go
// sends them to its global queue), and a worker with a thousand yielding fibers should not churn
// them through the global queue (bench yield_many: 25 % slower at 256).
inline constexpr std::uint32_t local_cap = 4096;
// Fibers moved at once out of a `local` ring: a steal, or a full ring's overflow to the global
// queue. Bounded because the batch is a buffer on the stack, possibly a fiber's.
inline constexpr std::uint32_t local_batch = 128;
// Capacity of a worker's `spawned` deque (a power of two), and how often `local` goes first.
inline constexpr std::size_t spawned_cap = 64;
inline constexpr unsigned spawned_turn = 256;
// How long a worker that ran out of work polls its wake word before it sleeps in the kernel.
inline constexpr std::int64_t park_poll_ns = 50'000;
// How long a worker must sleep unwoken, while others work, before it trims its stack cache.
inline constexpr std::int64_t stack_trim_delay_ns = 10'000'000;
// Every this many picks, the global queue is polled first (as Go's schedule() does with 61).
inline constexpr unsigned global_poll_interval = 61;
// Fiber ids are handed to workers in blocks of this many, so spawning needs no shared counter.
inline constexpr std::uint64_t id_block = 1024;
// Control blocks are allocated this many at a time.
inline constexpr std::size_t fiber_chunk = 256;
// Control blocks a worker keeps on its free list before sending extras to the shared list.
inline constexpr std::size_t fiber_cache_max = 4096;

struct alignas(64) worker {
  worker(runtime& rt, unsigned index);

  runtime& rt;
  unsigned index;
  // The owner pushes (runtime::push_local), the owner and thieves take: FIFO (run_ring.hpp).
  run_ring<fiber, local_cap> local;
  fiber* run_next = nullptr;
  spawn_deque<fiber, spawned_cap> spawned;  // see "Queues" above
  unsigned spawned_picks = 0;
  bool global_turn = false;  // which lane of the global queue take_global serves first
  // Owner: whether anything waits in run_next, `spawned` or `local`.
  bool has_local_work() const noexcept {
    return run_next != nullptr || spawned.size() != 0 || local.size() != 0;
  }
  // Picks left until the global queue is polled first (counts down from global_poll_interval:
  // a compare, where a modulo would cost a multiply on every pick).
  std::uint32_t picks_to_global_poll = global_poll_interval;
  bool spinning = false;
  std::uint64_t rng;              // xorshift state for victim choice
  std::uint64_t chaos_state = 0;  // options::chaos_seed's stream for this worker

  // The fiber this worker is running, if any. Written by this worker only; the hog monitor and
  // rt::stats() read it from other threads (published_ptr: relaxed atomic, plain moves on x86).
  published_ptr<fiber> current;
  // The worker's scheduler context (its loop in run_fiber, on the thread's own stack) while a
  // fiber runs: where a fiber that has nothing local to switch to jumps back to.
  boost::context::detail::fcontext_t sched_ctx = nullptr;
  // Every switch on this worker passes the worker itself as the switch's data, and leaves here
  // the fiber that switched away (nullptr: the scheduler context did), for the side it resumes
  // to complete the switch (arrived, run_fiber). A switch is a jump on this one thread, so the
  // resumed side reads it before anything else can run here; and it learns which worker it is
  // on from the switch itself, without a call to re-read tls_worker.
  fiber* switching_from = nullptr;
  sanitizer_context san;                            // this worker thread's own stack
  void* exception_globals[2] = {nullptr, nullptr};  // the scheduler context's __cxa_eh_globals
  int* thread_errno = nullptr;  // this worker thread's errno (&errno, fixed for its life)

  // Parking: the futex word. wake_one_idle() sets wake_bit (it took this worker off the idle
  // list: go and search); a timer armed earlier than this worker sleeps until sets recheck_bit
  // (stay idle, but compute the sleep again). See "Timers" above.
  static constexpr std::uint32_t wake_bit = 1, recheck_bit = 2;
  std::atomic<std::uint32_t> wake_word{0};
  // While parked: the time this worker sleeps until at the latest (the earliest timer of every
  // worker, as it last computed it; no_deadline: no timer at all); `awake` otherwise. The parker's
  // store of the timer Dekker pair (see "Timers" above).
  static constexpr std::int64_t awake = std::numeric_limits<std::int64_t>::min();
  std::atomic<std::int64_t> park_until{awake};
  // Where the worker sleeps: `in_futex` while (about to be) inside futex_wait on wake_word,
  // `in_epoll` while (about to be) inside epoll_wait as the netpoller (see "I/O" above), `awake`
  // otherwise. A waker that sees `awake` skips the system call, the worker being still awake
  // (polling wake_word before it sleeps). seq_cst on both sides: see park_worker and notify().
  enum : std::uint8_t { not_sleeping = 0, in_futex = 1, in_epoll = 2 };
  std::atomic<std::uint8_t> sleeping{not_sleeping};
  bool is_poller = false;  // holds runtime::poller_taken (owner only)
  bool idle = false;       // on the idle list (guarded by runtime::idle_mu)

  // Timers armed by fibers on this worker: a min-heap on `when` (see timer.hpp).
  spinlock timer_lock;
  std::vector<timer_entry> timers;
  std::atomic<std::int64_t> next_timer{no_deadline};

  stack_cache stacks;
  fiber* free_fibers = nullptr;  // recycled control blocks
  std::size_t n_free_fibers = 0;
  std::uint64_t next_id = 0, id_limit = 0;

  worker_counters counters;  // rt::stats() (stats.hpp); written by this worker only

  std::thread thread;
};

class runtime {
 public:
  explicit runtime(const options& opts);
  ~runtime();

  // Starts the workers and runs body(ctx) as fiber 1; returns when it has returned, after
  // shutting everything down (see Shutdown above).
  void run_main(void (*body)(void*), void* ctx);

  // Control blocks. take_fiber/give_fiber are the fast paths (w's own cache; w's thread only).
  fiber* take_fiber(worker& w) noexcept {
    fiber* f = w.free_fibers;
    w.free_fibers = f->next;
    --w.n_free_fibers;
    return f;
  }
  fiber* allocate_fiber(worker* w);
  // Clears what a control block's next fiber must not inherit.
  static void reset_for_reuse(fiber* f) noexcept {
    reset_dump_fields(f);
    f->state.store(fiber_state::free, std::memory_order_relaxed);
    f->canary = nullptr;
    // A fresh fiber starts with no C++ exception state; the old one may have last switched out
    // inside a catch block, leaving its saved state stale.
    f->exception_globals[0] = f->exception_globals[1] = nullptr;
    f->context = nullptr;
    f->saved_errno = 0;  // a fiber that has never run starts with errno 0 (see Migration)
  }
  void give_fiber(worker& w, fiber* f) noexcept {
    f->next = w.free_fibers;
    w.free_fibers = f;
    if (++w.n_free_fibers > fiber_cache_max) [[unlikely]]
      trim_fiber_cache(w);
  }
  void trim_fiber_cache(worker& w) noexcept;
  void recycle_fiber(worker* w, fiber* f) noexcept;
  // A new fiber id: from w's block (a new block every id_block ids), or, without w, the counter.
  std::uint64_t next_fiber_id(worker* w) noexcept {
    if (w && w->next_id != w->id_limit) [[likely]]
      return w->next_id++;
    return next_fiber_id_slow(w);
  }
  std::uint64_t next_fiber_id_slow(worker* w) noexcept;

  // Makes a fiber runnable: on a worker into its run_next (`prefer_next`) or local queue;
  // elsewhere into the global queue. Wakes an idle worker when the fiber is stealable.
  void make_runnable(fiber* f, bool prefer_next) noexcept;
  // As make_runnable, called by w's own thread (a fiber or the scheduler running on w). Inline:
  // a channel's wake (wait.cpp) passes prefer_next as a constant, and its common case then
  // makes no call at all.
  // Static, the runtime reached through w only on the other cases: the common case does not
  // load it.
  static void make_runnable_here(worker& w, fiber* f, bool prefer_next) noexcept {
    // release: as in make_runnable.
    f->state.store(fiber_state::runnable, std::memory_order_release);
    // The common case — a wake into an empty run_next, no trace running — ends here with no
    // call made (a call anywhere, even the trace's, would make every wake save registers).
    // slow_paths_on(): chaos or a trace (or a stop: then the general path is as good).
    if (prefer_next && !w.run_next && !slow_paths_on()) [[likely]] {
      if constexpr (profiling_compiled) w.counters.wakes.add();  // probe_wake, the trace off
      w.run_next = f;  // not stealable: nothing for an idle worker to take
      return;
    }
    w.rt.queue_woken(w, f, prefer_next);
  }
  // make_runnable_here's other cases: run_next taken, not preferred, or chaos scheduling.
  void queue_woken(worker& w, fiber* f, bool prefer_next) noexcept;
  // Makes a fiber that worker w's running fiber just spawned runnable: into w's run_next, the
  // fiber that was there into w's `spawned` deque.
  void make_spawned_runnable(worker& w, fiber* f) noexcept {
    // release: a fiber dump that reads `runnable` then reads id and spawn site (dump.cpp).
    f->state.store(fiber_state::runnable, std::memory_order_release);
    fiber* old = w.run_next;
    w.run_next = f;
    // run_next is not stealable: nothing for an idle worker to take unless one was there.
    if (!old) return;
    if (chaos_seed == 0 && w.spawned.push(old)) [[likely]] {
      wake_if_needed();  // stealable now: the submitter side of the wake protocol
      return;
    }
    push_spawned(w, old);
  }
  // The fiber that was in w's run_next goes to its `spawned` deque (or, full, the global queue);
  // make_spawned_runnable's rarer cases (the deque full, or chaos scheduling).
  void push_spawned(worker& w, fiber* old) noexcept;
  // Wakes an idle worker if none is searching (the submitter side of the protocol).
  void wake_if_needed() noexcept {
    // The submitter's fence of the wake protocol: orders the enqueue before the counter loads
    // below (see "Why no wakeup is lost" above). The loads may then be relaxed.
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (n_spinning.load(std::memory_order_relaxed) != 0) return;
    if (n_idle.load(std::memory_order_relaxed) == 0) return;
    wake_one_idle();
  }
  // Worker w (its owner) puts f at the back of its `local` ring; when the ring is full, its
  // older half goes to the global queue first. Does not wake anyone (callers do).
  void push_local(worker& w, fiber* f) noexcept {
    if (!w.local.push(f)) push_local_slow(w, f);
  }
  void push_local_slow(worker& w, fiber* f) noexcept;
  // push_local of fs[0..n), in order: one release store for what fits, push_local for the rest.
  void push_local_bulk(worker& w, fiber* const* fs, std::uint32_t n) noexcept {
    for (std::uint32_t i = w.local.push_bulk(fs, n); i < n; ++i) push_local(w, fs[i]);
  }

  // The worker loop and its parts.
  void worker_main(worker& w);
  fiber* find_runnable(worker& w);
  fiber* find_runnable_or_park(worker& w);
  fiber* steal_work(worker& w);
  bool steal_half(worker& thief, worker& victim, fiber*& out);
  bool take_global(worker& w, fiber*& out);
  bool any_work_visible() const noexcept;
  void park_worker(worker& w);
  // The earliest timer of any worker (no_deadline if none): the hint every worker publishes.
  std::int64_t earliest_timer() const noexcept;
  // Publishes, in w.park_until, how long w (parked) will sleep, and returns it: see "Timers".
  std::int64_t publish_park_deadline(worker& w) noexcept;
  // The armer's side of "Timers": a timer due at `when` was just armed as its worker's earliest;
  // makes an idle worker that would sleep past it compute its sleep again.
  void timer_armed(std::int64_t when) noexcept;
  void wake_one_idle() noexcept;
  // The waker's half of every Dekker pair on wake_word: after its seq_cst store or RMW of
  // v.wake_word, wakes v out of futex_wait or epoll_wait if it sleeps there.
  static void notify(worker& v) noexcept;
  // I/O (netpoll.cpp). Fibers parked on a descriptor count in n_io_waiters (deadlock detection,
  // and whether an idle worker should sleep in epoll). One worker at a time is the poller.
  std::atomic<std::int64_t> n_io_waiters{0};
  std::atomic<bool> poller_taken{false};
  // A fiber is about to wait on I/O: counts it, and makes sure an idle worker polls.
  void io_wait_begin() noexcept;
  void io_wait_end() noexcept { n_io_waiters.fetch_sub(1); }
  // If fibers wait on I/O and no worker is the poller, tells an idle worker to become it.
  void ensure_poller() noexcept;
  // Polls epoll and makes the fibers it readies runnable on w (w's local queue): how many.
  // timeout_ns 0: a busy or searching worker's look, which does not block; anything else
  // (no_deadline: until woken) only from park_worker, by the poller, which alone drains the
  // break eventfd and leaves waking others to the searching-worker rules.
  std::size_t poll_io(worker& w, std::int64_t timeout_ns) noexcept;
  void stop_spinning(worker& w) noexcept;
  // Gives back a searching token (one count of n_spinning) held by a worker that found work or
  // by a waker that found no idle worker. True when it was the last one and work is waiting:
  // the caller then wakes a worker for it (see "Why no wakeup is lost").
  bool release_search_token() noexcept;
  bool leave_idle_list(worker& w) noexcept;
  void check_deadlock() noexcept;                // deadlock.cpp
  [[noreturn]] void report_deadlock() noexcept;  // deadlock.cpp
  void run_fiber(worker& w, fiber* f);
  void bind_stack(worker& w, fiber* f);
  void finish_switch_out(worker& w, fiber* f) noexcept;
  // Its body, inlined where a channel park resumes (wait_on_channel): no call, no return.
  // Static, as the other parts of a switch below: their common cases do not load w.rt.
  static void finish_switch_out_inline(worker& w, fiber* f) noexcept;
  // finish_switch_out with a trace running, and its full-ring case.
  void finish_switch_out_traced(worker& w, fiber* f) noexcept;
  // The part both run: f's after-switch step (requeue, park or exit).
  static void run_after_switch_step(worker& w, fiber* f, after_switch after) noexcept;
  void push_local_slow_and_wake(worker& w, fiber* f) noexcept;
  // f has ended on w and next (picked to run next on w) has never run: next takes over f's
  // stack and runs on it without a switch; f's control block is recycled. Returns next.
  fiber* adopt_stack(worker& w, fiber* f, fiber* next) noexcept;
  // An ended fiber is off its stack: gives the stack back to w's cache, recycles the block.
  void retire_fiber(worker& w, fiber* f) noexcept;
  // Ends the program with a stack-overflow report if f's stack canary was overwritten.
  static void check_canary(worker& w, fiber* f) noexcept {
    if (f->canary && *f->canary != stack_pool::canary_value) [[unlikely]]
      w.rt.report_canary_overwritten(f);
  }
  [[noreturn]] void report_canary_overwritten(fiber* f) noexcept;
  // The next fiber from w's own queues; `WithChaos` false leaves out chaos scheduling's case
  // (and its call), for callers that checked chaos_seed is 0.
  template <bool WithChaos = true>
  static fiber* pick_local(worker& w) noexcept;
  // Its part after run_next: the `spawned` deque and the `local` ring.
  static fiber* pick_queues(worker& w) noexcept;
  // The fiber a suspending fiber on w switches straight to, or nullptr (back to the scheduler).
  // `ForExit`: the suspending fiber has ended (its stack is free for a next fiber that has never
  // run, so none need be cached).
  template <bool ForExit>
  fiber* pick_for_direct_switch(worker& w) noexcept;
  // Whether that pick takes its checked path: a timer armed on w (the clock must be read), chaos,
  // a trace, or the runtime stopping (slow_paths_on(): one test for the last three).
  static bool pick_makes_calls(const worker& w) noexcept {
    return w.next_timer.load(std::memory_order_relaxed) != no_deadline || slow_paths_on();
  }
  // The pick, with (`Checked`) or without the cases pick_makes_calls() names (without them it
  // does not look at `stopping` either: slow_paths_on() covers it).
  template <bool Checked, bool ForExit>
  static fiber* pick_for_direct_switch_as(worker& w) noexcept;
  // pick_for_direct_switch_as<true, ForExit>, out of line.
  template <bool ForExit>
  fiber* pick_for_direct_switch_checked(worker& w) noexcept;
  void shutdown();  // shutdown.cpp
  // True when p is one of this runtime's control blocks (for misuse reports; takes chunks_mu).
  bool owns_control_block(const void* p) noexcept;

  options opts;
  stack_pool stacks;
  std::vector<std::unique_ptr<worker>> workers;
  // The global queue (see "Queues" above), in two lanes that take_global serves in turn:
  // `global_spawns` holds the older halves of full `spawned` deques (fibers that never ran: a
  // burst of a million spawns can queue most of them here), `global` everything else (a full
  // local ring's older half, fibers readied by plain threads, the main fiber). One FIFO would put
  // a sleeper that a timer woke, spilled here from a full local ring, behind the whole burst
  // (bench/timers at a million sleepers: lateness p99 300-490 ms against 40-90 ms with two).
  global_queue<fiber> global;
  global_queue<fiber> global_spawns;
  // Fibers in both lanes (a snapshot; see global_queue::size).
  std::size_t global_size() const noexcept { return global.size() + global_spawns.size(); }

  // n_spinning/n_idle/stopping are seq_cst: they are the Dekker half of the wake protocol.
  std::atomic<unsigned> n_spinning{0};
  std::atomic<unsigned> n_idle{0};
  std::atomic<bool> stopping{false};
  std::mutex idle_mu;
  std::vector<worker*> idle_list;

  // Chaos scheduling (options::chaos_seed): 0 = off.
  const std::uint64_t chaos_seed;
  std::uint64_t chaos_wake_state;  // stream for the wake order (idle_mu)

  // Every control block ever allocated, in chunks, for shutdown and fatal reports.
  std::mutex chunks_mu;
  // Each chunk is fiber_chunk control blocks, in memory block_arena owns (chunks_mu). The
  // arena frees it without running destructors: fiber has none to run.
  static_assert(std::is_trivially_destructible_v<fiber>);
  static_assert(alignof(fiber) <= block_arena::alignment);
  block_arena chunk_memory;
  std::vector<fiber*> chunks;
  fiber* shared_free = nullptr;   // extra control blocks from workers' caches (chunks_mu)
  std::size_t n_shared_free = 0;  // how many (chunks_mu)
  std::atomic<std::uint64_t> id_counter{2};  // 1 is the main fiber

  // Main fiber completion: rt::run's thread sleeps on it.
  std::atomic<std::uint32_t> main_done{0};
  // Set once a plain thread has blocked in, or woken a fiber through, this runtime: it might do
  // so again, so a runtime whose fibers all sleep is no longer provably deadlocked.
  std::atomic<bool> plain_thread_used{false};
  void* main_spawn_pc = nullptr;  // where rt::run was called, for reports
  // options::capture_panics: the first exception that escaped a fiber (guarded by chunks_mu).
  std::exception_ptr captured_panic;
  // Stops the runtime as main's return does: workers pick no more fibers; rt::run proceeds.
  void stop() noexcept;
  // rt::stats(), RT_SCHEDTRACE and the hog monitor (stats.hpp, monitor.cpp).
  runtime_profile prof;
  blocking_pool blocking;  // rt::blocking's threads (blocking.hpp, blocking.cpp)
};

// The runtime that rt::run is running, or nullptr.
runtime* current_runtime() noexcept;
// The runtime rt::run is running, for plain threads (fibers reach theirs through their
// worker); cleared by shutdown before it tears down.
extern std::atomic<runtime*> g_current_runtime;
// Frees a control block's callable storage if it was on the heap (the callable is destroyed).
void free_task_storage(fiber* f) noexcept;
// The worker the calling thread is, or nullptr on a plain thread. Never inlined: see Migration.
worker* current_worker() noexcept;
// The same, read directly, is tls_worker (rt/detail/wait.hpp): only in a function that does not
// switch, or before its switch (see Migration).

// Lets go of the calling plain thread's scope (see plain_thread_scope) while it sleeps; returns
// the depth to give back to resume_plain_thread_scope() when it wakes.
int suspend_plain_thread_scope() noexcept;
void resume_plain_thread_scope(int depth) noexcept;

// Makes a parked fiber runnable, from a fiber, a worker, or a plain thread.
void make_runnable_from_anywhere(fiber* f) noexcept;
// Records that a plain thread used the runtime (see runtime::plain_thread_used).
void note_plain_thread_use() noexcept;

// The next number of w's chaos stream.
std::uint64_t chaos_random(worker& w) noexcept;

// Suspends the running fiber; the worker then does `after` for it. Returns when the fiber is
// resumed (possibly on another worker) — never, if the runtime shuts down meanwhile.
void suspend(fiber* f, after_switch after);
// The same, for the running fiber f of worker w (the caller's tls_worker, read before the
// switch).
void suspend(worker* w, fiber* f, after_switch after);

// The park_unlock of a fiber parked under a sync object's spinlock.
inline void unlock_spinlock(void* lk) noexcept {
  static_cast<spinlock*>(lk)->unlock();
}

// Parks the fiber f running on worker wk (the caller's tls_worker, read before this) on waiter
// w, queued by the caller; `unlock(arg)` runs once f is off its stack (after_switch::park).
// `queued` are the waiters shutdown unlinks if f is abandoned here (w itself, or a select's
// cases). block() and block_with() for fibers; the channel path (wait_on_channel, in
// scheduler.cpp) inlines it with suspend.
void park_fiber(worker* wk, fiber* f, waiter& w, void (*unlock)(void*) noexcept, void* arg,
                wait_reason why, waiter* queued, std::uint32_t n_queued);

}  // namespace rt::detail
