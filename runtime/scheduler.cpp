// runtime/scheduler.cpp — see scheduler.hpp for the design and the wake protocol's argument.
#include "scheduler.hpp"

#include <cxxabi.h>
#include <pthread.h>
#include <sched.h>

#include <immintrin.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "context_switch.hpp"
#include "dump.hpp"
#include "fatal.hpp"
#include "futex.hpp"
#include "netpoll.hpp"
#include "probes.hpp"
#include "rt/chan.hpp"
#include "rt/errors.hpp"
#include "rt/mutex.hpp"
#include "rt/runtime.hpp"
#include "rt/this_fiber.hpp"
#include "trace.hpp"

namespace rt::detail {
namespace {

// Serialises rt::run: one runtime per process at a time.
std::mutex g_run_mu;

// The C++ runtime's per-thread exception state (libstdc++/libsupc++'s __cxa_eh_globals): the
// stack of caught exceptions and the uncaught count. A fiber that switches inside a catch block
// or a destructor during unwinding must take its own state with it, not leave it on the thread.
struct eh_globals {
  void* caught;
  unsigned int uncaught;
};

unsigned cores_available() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) == 0) return std::max(1, CPU_COUNT(&set));
  return std::max(1u, std::thread::hardware_concurrency());
}

constexpr unsigned max_workers = 1024;

options resolve_options(const options& in) {
  options o = in;
  if (o.workers == 0) {
    if (const char* env = std::getenv("RT_MAXPROCS"); env && *env) {
      unsigned v = 0;
      auto [end, ec] = std::from_chars(env, env + std::strlen(env), v);
      if (ec != std::errc{} || *end != '\0' || v == 0 || v > max_workers) {
        throw rt::runtime_error(std::string("RT_MAXPROCS=\"") + env +
                                "\" is not a worker count: set it to a whole number from 1 to " +
                                std::to_string(max_workers) + ", or unset it for one per core");
      }
      o.workers = v;
    } else {
      o.workers = cores_available();
    }
  }
  if (o.chaos_seed == 0) {
    if (const char* env = std::getenv("RT_CHAOS"); env && *env) {
      std::uint64_t v = 0;
      auto [end, ec] = std::from_chars(env, env + std::strlen(env), v);
      if (ec != std::errc{} || *end != '\0' || v == 0) {
        throw rt::runtime_error(std::string("RT_CHAOS=\"") + env +
                                "\" is not a chaos seed: set it to a whole number above 0, or "
                                "unset it to schedule normally");
      }
      o.chaos_seed = v;
      o.chaos_seed_from_env = true;
    }
  }
  resolve_profiling_options(o);  // RT_SCHEDTRACE, RT_HOGWARN (monitor.cpp)
  resolve_blocking_options(o);   // RT_BLOCKING_THREADS (blocking.cpp)
  if (o.workers > max_workers) {
    throw rt::runtime_error("rt::options::workers is " + std::to_string(o.workers) + ": at most " +
                            std::to_string(max_workers) + " workers are supported");
  }
  if (o.stack_size < std::size_t{16} * 1024 || o.stack_size > (std::size_t{1} << 30)) {
    throw rt::runtime_error("rt::options::stack_size is " + std::to_string(o.stack_size) +
                            " bytes: it must be between 16384 (16 KiB) and 1073741824 (1 GiB)");
  }
  if (o.guard_size < std::size_t{4} * 1024 || o.guard_size > (std::size_t{1} << 30)) {
    throw rt::runtime_error("rt::options::guard_size is " + std::to_string(o.guard_size) +
                            " bytes: it must be between 4096 (4 KiB) and 1073741824 (1 GiB)");
  }
  trace_check_env();  // RT_TRACE, RT_TRACE_FIBERS (last: it may open the trace file)
  return o;
}

// Callables too large for a control block live on the heap, at this alignment.
constexpr std::align_val_t heap_task_align{64};

// The main fiber's callable: runs rt::run's body, then tells rt::run's thread it is done.
struct main_task {
  void (*body)(void*);
  void* ctx;
  runtime* rt;
  void operator()() const {
    body(ctx);
    rt->stop();
  }
};

}  // namespace

std::atomic<runtime*> g_current_runtime{nullptr};

// The worker this OS thread is (scheduler.hpp).
[[gnu::tls_model("initial-exec")]] constinit thread_local worker* tls_worker = nullptr;
[[gnu::tls_model("initial-exec")]] constinit thread_local bool tls_fast_ops = false;
#if !(defined(__x86_64__) && defined(__ELF__))
bool fast_ops_here() noexcept {
  return tls_fast_ops;
}
bool worker_thread_here() noexcept {
  return tls_worker != nullptr;
}
#endif

void free_task_storage(fiber* f) noexcept {
  if (f->task != f->inline_task) ::operator delete(f->task, heap_task_align);
  f->task = nullptr;
}

std::atomic<bool> chaos_enabled{false};

[[gnu::noipa]] worker* current_worker() noexcept {
  return tls_worker;
}

std::uint64_t chaos_random(worker& w) noexcept {
  // splitmix64: a good stream from any seed, cheap enough for every decision point.
  std::uint64_t z = (w.chaos_state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

namespace {

// The fiber a chaos point should yield now, or nullptr.
fiber* chaos_victim() noexcept {
  worker* w = current_worker();
  if (!w || !w->current) return nullptr;  // a plain thread, or a worker's own stack
  // Once the runtime stops, switching only delays the workers' exit.
  if (w->rt.stopping.load(std::memory_order_relaxed)) return nullptr;
  return chaos_random(*w) % 4 == 0 ? static_cast<fiber*>(w->current) : nullptr;
}

}  // namespace

void chaos_yield() {
  if (fiber* f = chaos_victim()) suspend(f, after_switch::requeue);
}

void chaos_yield_nothrow() noexcept {
  if (fiber* f = chaos_victim()) suspend(f, after_switch::requeue);  // suspend does not throw
}

[[gnu::noipa]] fiber* current_fiber() noexcept {
  worker* w = tls_worker;
  return w ? static_cast<fiber*>(w->current) : nullptr;
}

runtime* current_runtime() noexcept {
  worker* w = current_worker();
  return w ? &w->rt : g_current_runtime.load();
}

bool current_fiber_stack(overflow_context& out) noexcept {
  worker* w = tls_worker;
  if (!w || !w->current) return false;
  out.fiber_id = w->current->id;
  out.stack_bottom = static_cast<const char*>(w->current->san.stack_bottom);
  out.stack_size = w->rt.stacks.usable_size();
  out.guard_size = w->rt.stacks.guard_size();
  return out.stack_bottom != nullptr;
}

void init_thread_context(sanitizer_context& c) noexcept {
  pthread_attr_t attr;
  if (pthread_getattr_np(pthread_self(), &attr) == 0) {
    void* addr = nullptr;
    std::size_t size = 0;
    pthread_attr_getstack(&attr, &addr, &size);
    c.stack_bottom = addr;
    c.stack_size = size;
    pthread_attr_destroy(&attr);
  }
#if RT_TSAN
  c.tsan_fiber = __tsan_get_current_fiber();
#endif
}

// ---------------------------------------------------------------------------------------------
// worker and runtime construction
// ---------------------------------------------------------------------------------------------

worker::worker(runtime& r, unsigned i) : rt(r), index(i), rng(0x9E3779B97F4A7C15ull * (i + 1)) {}

runtime::runtime(const options& o)
    : opts(o), stacks(o), chaos_seed(o.chaos_seed), chaos_wake_state(o.chaos_seed) {
  workers.reserve(opts.workers);
  for (unsigned i = 0; i < opts.workers; ++i) {
    workers.push_back(std::make_unique<worker>(*this, i));
    if (chaos_seed != 0) {
      workers.back()->chaos_state = chaos_seed * 0x100000001B3ull + i;
      workers.back()->rng = (chaos_seed ^ 0x9E3779B97F4A7C15ull) * (i + 1) | 1;  // victims too
    }
  }
}

runtime::~runtime() = default;

// ---------------------------------------------------------------------------------------------
// control blocks
// ---------------------------------------------------------------------------------------------

// The worker's cache is empty, or there is no worker: the shared list, else a new chunk. Out of
// line (take_fiber in scheduler.hpp is the fast path), so spawn's frame stays small.
[[gnu::noinline]] fiber* runtime::allocate_fiber(worker* w) {
  if (w && w->free_fibers) return take_fiber(*w);
  std::lock_guard lk(chunks_mu);
  if (!shared_free) {
    // Each block constructed (its member initialisers) and linked into the free list in one
    // pass, on a path every spawn beyond the cached blocks takes.
    reserve_one_more(chunks);  // first: a chunk is always listed once built
    fiber* raw = static_cast<fiber*>(chunk_memory.take(sizeof(fiber) * fiber_chunk));
    fiber* list = nullptr;
    for (std::size_t i = fiber_chunk; i-- > 0;) {
      fiber* f = ::new (&raw[i]) fiber;
      f->rt = this;
      f->next = list;
      list = f;
    }
    chunks.push_back(raw);
    if (w) {
      // The whole chunk to the worker's cache (empty, or we would not be here), in one pass.
      w->free_fibers = list->next;
      w->n_free_fibers = fiber_chunk - 1;
      return list;
    }
    shared_free = list;
    n_shared_free = fiber_chunk;
  }
  fiber* f = shared_free;
  shared_free = f->next;
  --n_shared_free;
  // Refill the worker's cache while we hold the lock anyway.
  for (int i = 0; w && i < 64 && shared_free; ++i) {
    fiber* g = shared_free;
    shared_free = g->next;
    --n_shared_free;
    g->next = w->free_fibers;
    w->free_fibers = g;
    ++w->n_free_fibers;
  }
  return f;
}

void runtime::recycle_fiber(worker* w, fiber* f) noexcept {
  reset_for_reuse(f);
  if (w) {
    give_fiber(*w, f);
    return;
  }
  std::lock_guard lk(chunks_mu);
  f->next = shared_free;
  shared_free = f;
  ++n_shared_free;
}

[[gnu::noinline]] void runtime::trim_fiber_cache(worker& w) noexcept {
  // Too many cached: hand half to the shared list in one batch (one lock per
  // fiber_cache_max / 2 exits, not one per exit).
  fiber* first = w.free_fibers;
  fiber* last = first;
  for (std::size_t i = 1; i < fiber_cache_max / 2; ++i) last = last->next;
  w.free_fibers = last->next;
  w.n_free_fibers -= fiber_cache_max / 2;
  std::lock_guard lk(chunks_mu);
  last->next = shared_free;
  shared_free = first;
  n_shared_free += fiber_cache_max / 2;
}

bool runtime::owns_control_block(const void* p) noexcept {
  // Compared as integers: p may point anywhere (a plain thread's tag, another runtime's block).
  const auto addr = reinterpret_cast<std::uintptr_t>(p);
  std::lock_guard lk(chunks_mu);
  for (auto& c : chunks) {
    const auto first = reinterpret_cast<std::uintptr_t>(c);
    if (addr >= first && addr < first + fiber_chunk * sizeof(fiber) &&
        (addr - first) % sizeof(fiber) == 0) {
      return true;
    }
  }
  return false;
}

[[gnu::noinline]] std::uint64_t runtime::next_fiber_id_slow(worker* w) noexcept {
  if (!w) return id_counter.fetch_add(1, std::memory_order_relaxed);  // relaxed: only uniqueness
  w->next_id = id_counter.fetch_add(id_block, std::memory_order_relaxed);
  w->id_limit = w->next_id + id_block;
  return w->next_id++;
}

// ---------------------------------------------------------------------------------------------
// making fibers runnable, and the submitter side of the wake protocol
// ---------------------------------------------------------------------------------------------

void runtime::make_runnable(fiber* f, bool prefer_next) noexcept {
  worker* w = current_worker();
  if (w && &w->rt == this) {
    make_runnable_here(*w, f, prefer_next);
    return;
  }
  // release: a fiber dump that reads `runnable` then reads the saved context (dump.cpp).
  f->state.store(fiber_state::runnable, std::memory_order_release);
  probe_wake(nullptr, f);
  global.push(f);
  wake_if_needed();
}

[[gnu::noinline]] void runtime::queue_woken(worker& w, fiber* f, bool prefer_next) noexcept {
  probe_wake(&w, f);
  if (chaos_seed != 0 && chaos_random(w) % 2 == 0) prefer_next = false;  // chaos: bypass
  if (prefer_next) {
    fiber* old = w.run_next;
    w.run_next = f;
    if (!old) return;  // run_next is not stealable: nothing for an idle worker to take
    f = old;
  }
  push_local(w, f);
  wake_if_needed();
}

[[gnu::noinline]] void runtime::push_spawned(worker& w, fiber* old) noexcept {
  if (chaos_seed != 0 && chaos_random(w) % 2 == 0) {
    push_local(w, old);  // chaos: FIFO, as Go orders spawns
  } else if (!w.spawned.push(old)) {
    // Full: the older half goes to the global queue, as Go's runqputslow sends half of a full
    // local run queue there. Every worker takes from it in fair batches, and `local` stays short:
    // a fiber woken onto its tail (a sleeper whose timer fired) waits behind a few fibers, not
    // behind a burst of spawns that have not started yet (bench/timers: p99 lateness).
    fiber* batch[spawned_cap / 2];
    const std::size_t n = w.spawned.take_oldest(batch, spawned_cap / 2);
    global_spawns.push_bulk(batch, n);
    if (!w.spawned.push(old)) global_spawns.push(old);
  }
  // Stealable now, wherever it went: the submitter side of the wake protocol.
  wake_if_needed();
}

void runtime::push_local_slow(worker& w, fiber* f) noexcept {
  // Full: the oldest local_batch go to the global queue (as Go's runqputslow), where every
  // worker takes from it in fair batches. Thieves may take some meanwhile; either way there is
  // room after.
  fiber* batch[local_batch];
  const std::uint32_t n = w.local.steal_half(batch, local_batch);
  global.push_bulk(batch, n);
  if (!w.local.push(f)) global.push(f);
}

namespace {

// Chaos scheduling: holds the calling thread for a random while, so that a race window a few
// instructions wide is wide enough for the chaos runs of the test suite to reach the
// interleavings inside it: `often` of 4 calls, up to `max_pauses` pause instructions (about
// 10-40 ns each). Never switches, so its thread_local is read by one thread only.
void chaos_stall(std::uint64_t seed, unsigned often, unsigned max_pauses) noexcept {
  thread_local std::uint64_t state = 0;
  if (state == 0) state = (seed ^ reinterpret_cast<std::uintptr_t>(&state)) | 1;
  state ^= state << 13;
  state ^= state >> 7;
  state ^= state << 17;
  if (state % 4 >= often) return;
  for (std::uint64_t i = (state >> 8) % max_pauses; i != 0; --i) _mm_pause();
}

}  // namespace

void runtime::wake_one_idle() noexcept {
  for (;;) {
    // chaos: widen the window between our caller's look at n_idle and ours at the idle list
    if (chaos_seed != 0) chaos_stall(chaos_seed, 1, 512);
    unsigned expected = 0;
    // The searching token: while we hold it, submitters skip their wakeups (wake_if_needed).
    if (!n_spinning.compare_exchange_strong(expected, 1)) return;  // someone is already searching
    worker* v = nullptr;
    {
      std::lock_guard lk(idle_mu);
      if (!idle_list.empty()) {
        std::size_t pick = idle_list.size() - 1;
        if (chaos_seed != 0) {  // chaos: any idle worker, from a stream guarded by idle_mu
          chaos_wake_state = chaos_wake_state * 6364136223846793005ull + 1442695040888963407ull;
          pick = (chaos_wake_state >> 33) % idle_list.size();
        }
        v = idle_list[pick];
        idle_list.erase(idle_list.begin() + static_cast<std::ptrdiff_t>(pick));
        v->idle = false;
        n_idle.fetch_sub(1);
      }
    }
    if (v) {
      // v is asleep or about to be, and touches `spinning` only after consuming wake_word: the
      // release store below hands this write over together with the wakeup.
      v->spinning = true;
      // seq_cst store, then notify()'s load of `sleeping`: see notify().
      v->wake_word.store(worker::wake_bit);
      notify(*v);
      return;
    }
    // chaos: widen the window explained below (rare: no cost to speak of)
    if (chaos_seed != 0) chaos_stall(chaos_seed, 4, 16384);
    // Every worker left the idle list after our caller saw one there. While we held the token,
    // other submitters skipped their wakeups, counting on a searcher to find their work — and
    // every worker may have parked meanwhile, its re-check done before that work was queued
    // (a fiber readied by a plain thread then sat in the global queue with every worker asleep:
    // chaos runs of Mutex.PlainThreadsAndFibersShareAMutex hung about once in 100). So the token
    // is given back as a searcher gives it back: the last holder looks at the queues, and wakes
    // a worker for what it sees.
    if (!release_search_token()) return;
    // relaxed: after release_search_token's fence, as in wake_if_needed. No worker idle: each
    // busy one re-checks the queues before it parks.
    if (n_idle.load(std::memory_order_relaxed) == 0) return;
  }
}

bool runtime::release_search_token() noexcept {
  if (n_spinning.fetch_sub(1) != 1) return false;  // a later holder gives it back after us
  // The queue loads below come after the decrement: a submitter that saw our token (its load of
  // n_spinning read a value before this decrement) queued its work before its own fence, which
  // then precedes ours.
  std::atomic_thread_fence(std::memory_order_seq_cst);
  return any_work_visible();
}

void runtime::notify(worker& v) noexcept {
  // seq_cst load after the caller's seq_cst store/RMW of wake_word; park_worker stores
  // `sleeping` (seq_cst) before it sleeps, and then either the kernel's futex_wait reads
  // wake_word, or (epoll) it loads wake_word itself before epoll_wait. Either way one side sees
  // the other: the sleeper does not sleep, or we wake it.
  switch (v.sleeping.load()) {
    case worker::in_futex:
      futex_wake(&v.wake_word);
      break;
    case worker::in_epoll:
      netpoll_break();
      break;
    default:
      break;
  }
}

std::int64_t runtime::earliest_timer() const noexcept {
  std::int64_t earliest = no_deadline;
  // relaxed: each load is ordered by the caller's seq_cst fence (see "Timers" in scheduler.hpp).
  for (auto& w : workers)
    earliest = std::min(earliest, w->next_timer.load(std::memory_order_relaxed));
  return earliest;
}

std::int64_t runtime::publish_park_deadline(worker& w) noexcept {
  std::int64_t until = earliest_timer();
  for (;;) {
    // relaxed store, then the parker's seq_cst fence of the timer Dekker pair: the armer, after
    // its own fence, sees this store or we see its next_timer below ("Timers", scheduler.hpp).
    w.park_until.store(until, std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_seq_cst);
    const std::int64_t again = earliest_timer();
    if (again >= until) return until;
    until = again;  // a timer was armed meanwhile: publish the earlier time, and look once more
  }
}

void runtime::timer_armed(std::int64_t when) noexcept {
  // The armer's seq_cst fence of the timer Dekker pair: orders the next_timer store (under
  // timer_lock, before this) before the loads below. The loads may then be relaxed.
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (n_idle.load(std::memory_order_relaxed) == 0) return;  // nobody sleeps: nobody to tell
  // Every idle worker that would sleep past the new timer, not just one: a worker told alone
  // could be woken for work next (wake_one_idle), run a fiber that never yields, and leave the
  // timer to idle workers that never heard of it.
  for (auto& v : workers) {
    // `awake` (the minimum) never compares greater: only parked workers are told.
    if (v->park_until.load(std::memory_order_relaxed) <= when) continue;
    // seq_cst RMW, then notify()'s load: the same pair as wake_one_idle's with park_worker.
    v->wake_word.fetch_or(worker::recheck_bit);
    notify(*v);
  }
}

// ---------------------------------------------------------------------------------------------
// the worker loop
// ---------------------------------------------------------------------------------------------

bool runtime::take_global(worker& w, fiber*& out) {
  const std::size_t queued = global_size();
  if (queued == 0) return false;
  fiber* buf[32];
  const std::size_t want = std::min<std::size_t>(queued / workers.size() + 1, 32);
  // The two lanes take turns filling the batch first (see global_spawns): a fiber readied onto
  // the global queue waits behind at most one batch of a spawn burst, and a burst behind at
  // most one batch of readied fibers.
  w.global_turn = !w.global_turn;
  global_queue<fiber>& first = w.global_turn ? global : global_spawns;
  global_queue<fiber>& second = w.global_turn ? global_spawns : global;
  std::size_t got = first.size() != 0 ? first.take_bulk(buf, want) : 0;
  if (got < want && second.size() != 0) got += second.take_bulk(buf + got, want - got);
  if (got == 0) return false;
  probe_take_global(w, got);
  out = buf[0];
  push_local_bulk(w, buf + 1, static_cast<std::uint32_t>(got - 1));
  return true;
}

bool runtime::steal_half(worker& thief, worker& victim, fiber*& out) {
  const std::uint32_t n = victim.local.size();
  if (n == 0) return false;
  fiber* buf[local_batch];
  std::uint32_t want = local_batch;
  if (chaos_seed != 0) {  // chaos: any batch size up to the usual one (never past buf)
    want = 1 + static_cast<std::uint32_t>(chaos_random(thief) % std::min((n + 1) / 2, want));
  }
  const std::uint32_t got = victim.local.steal_half(buf, want);  // about half, in one CAS
  if (got == 0) return false;
  probe_steal(thief, victim, got);
  out = buf[0];
  push_local_bulk(thief, buf + 1, got - 1);
  return true;
}

fiber* runtime::steal_work(worker& w) {
  const std::size_t n = workers.size();
  for (int round = 0; round < 4; ++round) {
    w.rng ^= w.rng << 13;
    w.rng ^= w.rng >> 7;
    w.rng ^= w.rng << 17;
    std::size_t start = w.rng % n;
    for (std::size_t k = 0; k < n; ++k) {
      worker& victim = *workers[(start + k) % n];
      if (&victim == &w) continue;
      // A victim busy with a long fiber cannot run its own timers: run the due ones for it.
      if (const std::int64_t next = victim.next_timer.load(std::memory_order_relaxed);
          next != no_deadline && now_ns() >= next) {
        run_due_timers(victim, now_ns(), /*try_only=*/true);
        if (w.has_local_work()) return nullptr;  // found work: look again
      }
      probe_steal_attempt(w, victim);
      fiber* f = nullptr;
      if (steal_half(w, victim, f)) return f;
      if ((f = victim.spawned.steal())) {
        probe_steal(w, victim, 1);
        return f;
      }
    }
    fiber* f = nullptr;
    if (take_global(w, f)) return f;
    if (stopping.load(std::memory_order_relaxed)) return nullptr;
  }
  return nullptr;
}

bool runtime::any_work_visible() const noexcept {
  if (global_size() != 0) return true;
  for (auto& w : workers) {
    if (w->local.size() != 0 || w->spawned.size() != 0) return true;
  }
  return false;
}

void runtime::stop_spinning(worker& w) noexcept {
  w.spinning = false;
  // The last searcher to find work wakes a successor when more work is waiting, so a burst of
  // work spreads over the idle workers one wakeup at a time — and no submitter that skipped its
  // wakeup because we were searching is left without one.
  if (release_search_token()) wake_if_needed();
}

bool runtime::leave_idle_list(worker& w) noexcept {
  std::lock_guard lk(idle_mu);
  if (!w.idle) return false;  // a waker took us off already: its wakeup is on the way
  idle_list.erase(std::find(idle_list.begin(), idle_list.end(), &w));
  w.idle = false;
  n_idle.fetch_sub(1);
  return true;
}

void runtime::park_worker(worker& w) {
  if (w.spinning) {
    w.spinning = false;
    n_spinning.fetch_sub(1);
  }
  {
    std::lock_guard lk(idle_mu);
    idle_list.push_back(&w);
    w.idle = true;
    n_idle.fetch_add(1);
  }
  probe_worker_idle(w);
  // The parking worker's fence of the wake protocol: orders the n_idle store before the queue
  // loads of the re-check.
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (any_work_visible() || stopping.load()) {
    if (leave_idle_list(w)) {
      w.spinning = true;  // search for what we saw, counted, so nobody else is woken for it
      n_spinning.fetch_add(1);
      probe_worker_wake(w);
      return;
    }
    // Otherwise a waker already took us off the idle list: consume its wakeup below.
  } else {
    check_deadlock();
  }
  // Idle: give the stacks of the last burst back to the OS — at once if the whole runtime is
  // idle now, else only once this worker has slept `stack_trim_delay_ns` without being woken.
  // A worker that parks and wakes again and again while others work (a pipeline handing values
  // across workers) would otherwise release its stacks and fault them back in every time.
  std::int64_t trim_at = no_deadline;
  if (n_idle.load() == workers.size()) {
    w.stacks.trim(stacks);
    stacks.trim_shared();
  } else if (w.stacks.size() > stacks.high_water()) {
    trim_at = now_ns() + stack_trim_delay_ns;
  }
  bool polled = false;
  for (;;) {
    // acquire: pairs with the waker's store.
    const std::uint32_t bits = w.wake_word.exchange(0, std::memory_order_acquire);
    if (bits & worker::wake_bit) break;  // a waker took us off the idle list: search
    // Nothing yet, or recheck_bit (a timer was armed earlier than we were going to sleep until):
    // how long to sleep, from every worker's timers.
    const std::int64_t next = publish_park_deadline(w);
    std::int64_t now = now_ns();
    if (now >= next) {
      // A timer is due, on whichever worker: leave the idle list on our own, as a searching
      // worker — steal_work runs the due timers of every worker it visits.
      if (leave_idle_list(w)) {
        w.spinning = true;
        n_spinning.fetch_add(1);
        break;
      }
      continue;  // a waker took us off the idle list first: its wakeup is on the way
    }
    if (trim_at != no_deadline && now >= trim_at) {
      w.stacks.trim(stacks);  // slept long enough without being woken
      trim_at = no_deadline;
      continue;
    }
    if (!polled) {
      // Poll the wake word briefly before sleeping: a worker that just ran out of work is often
      // given more within microseconds (hand-offs along a pipeline of channels), and a futex
      // sleep and wake cost a system call on each side. Bounded, so an idle runtime still burns
      // no CPU.
      polled = true;
      const std::int64_t poll_until = std::min(now + park_poll_ns, next);
      for (int i = 0; w.wake_word.load(std::memory_order_relaxed) == 0; ++i) {
        _mm_pause();
        if (i % 64 == 63 && now_ns() >= poll_until) break;
      }
      continue;
    }
    const std::int64_t until = std::min(next, trim_at);
    // Fibers wait on I/O: one idle worker sleeps in epoll_wait instead (see "I/O" above).
    if (!w.is_poller && n_io_waiters.load() > 0 && !poller_taken.exchange(true)) {
      w.is_poller = true;
    }
    if (w.is_poller) {
      w.sleeping.store(worker::in_epoll);  // seq_cst: see notify()
      if (w.wake_word.load() != 0) {  // a waker came first (futex_wait checks this in the kernel)
        w.sleeping.store(worker::not_sleeping, std::memory_order_relaxed);
        continue;
      }
      const std::size_t readied = poll_io(w, until == no_deadline ? no_deadline : until - now);
      w.sleeping.store(worker::not_sleeping, std::memory_order_relaxed);
      // Fibers readied into our local queue: run them, as a searching worker. (If a waker took
      // us off the idle list first, its wakeup is on the way: the loop consumes it.)
      if (readied != 0 && leave_idle_list(w)) {
        w.spinning = true;
        n_spinning.fetch_add(1);
        break;
      }
      continue;
    }
    w.sleeping.store(worker::in_futex);  // seq_cst: see notify()
    if (until == no_deadline) {
      futex_wait(&w.wake_word, 0);
    } else {
      const std::int64_t d = until - now;
      timespec ts{static_cast<time_t>(d / 1000000000), static_cast<long>(d % 1000000000)};
      futex_wait(&w.wake_word, 0, &ts);
    }
    w.sleeping.store(worker::not_sleeping, std::memory_order_relaxed);
    // Woken, timed out, or a spurious return: look again.
  }
  w.park_until.store(worker::awake, std::memory_order_relaxed);  // a hint for armers only
  if (w.is_poller) {
    // Leaving: hand the poller's job to another idle worker if fibers still wait on I/O.
    w.is_poller = false;
    poller_taken.store(false);
    ensure_poller();
  }
  probe_worker_wake(w);
}

fiber* runtime::find_runnable(worker& w) {
  fiber* f = find_runnable_or_park(w);
  // A worker runs a fiber only once it has left the searching state: a "spinner" busy running a
  // long fiber would make submitters think somebody is looking for their work.
  if (f && w.spinning) stop_spinning(w);
  return f;
}

fiber* runtime::find_runnable_or_park(worker& w) {
  for (;;) {
    if (stopping.load(std::memory_order_relaxed)) return nullptr;
    if (const std::int64_t next = w.next_timer.load(std::memory_order_relaxed);
        next != no_deadline) {
      if (const std::int64_t now = now_ns(); now >= next) run_due_timers(w, now, false);
    }
    fiber* f = nullptr;
    if (--w.picks_to_global_poll == 0) {
      w.picks_to_global_poll = global_poll_interval;
      // Every 61st pick: the global queue first, and, while fibers wait on I/O, a poll that does
      // not block — so readiness is seen even while every worker is busy.
      if (n_io_waiters.load(std::memory_order_relaxed) > 0) poll_io(w, 0);
      if (take_global(w, f)) return f;
      // Then the local queues' turn before run_next, so that a pair of fibers waking each other
      // through run_next cannot starve the fibers queued here (Go's runnext shares its time
      // slice with the fiber that readied it, to the same end). run_next's fiber moves to the
      // top of `spawned`: next in line here, and stealable meanwhile — left in run_next, which
      // no thief sees, it would wait for good behind a fiber that never yields while another
      // worker sits idle.
      if (w.run_next && (f = pick_queues(w))) {
        push_spawned(w, std::exchange(w.run_next, nullptr));  // wakes a worker if none searches
        return f;
      }
    }
    if ((f = pick_local(w))) return f;
    if (take_global(w, f)) return f;
    if (!w.spinning) {
      // At most half the busy workers search at once; the rest park straight away.
      unsigned busy = static_cast<unsigned>(workers.size()) - n_idle.load();
      if (2 * n_spinning.load() < busy) {
        w.spinning = true;
        n_spinning.fetch_add(1);
      }
    }
    if (w.spinning) {
      f = steal_work(w);
      if (f) return f;
      if (w.has_local_work()) continue;  // timers made work here
    }
    // Before parking, as Go's findrunnable: fibers whose descriptors became ready while no worker
    // sat in epoll_wait (all were busy) are found here, without blocking.
    if (n_io_waiters.load(std::memory_order_relaxed) > 0 && poll_io(w, 0) != 0) continue;
    park_worker(w);
  }
}

void runtime::worker_main(worker& w) {
  tls_worker = &w;
  tls_fast_ops = chaos_seed == 0;  // fixed before the workers start (run_main)
  w.thread_errno = &errno;
  init_thread_context(w.san);
  void* sigstack = install_signal_stack();
  w.exception_globals[0] = abi::__cxa_get_globals();  // this thread's, fixed for its life
  while (fiber* f = find_runnable(w)) run_fiber(w, f);
  if (w.spinning) {
    w.spinning = false;
    n_spinning.fetch_sub(1);
  }
  free_signal_stack(sigstack);
  tls_fast_ops = false;
  tls_worker = nullptr;
}

namespace {

// The state is copied whole, as 16 bytes (one load and one store each way): the fiber's two
// words hold the struct's bytes, padding included.
static_assert(sizeof(eh_globals) == sizeof(fiber::exception_globals));

// `eh` is the worker thread's state (worker::exception_globals[0]), passed in so that a caller
// making several stores through fibers loads it once.
void save_exception_state(const void* eh, fiber* f) noexcept {
  std::memcpy(f->exception_globals, eh, sizeof(eh_globals));
}

void load_exception_state(void* eh, const fiber* f) noexcept {
  std::memcpy(eh, f->exception_globals, sizeof(eh_globals));
}

namespace bctx = boost::context::detail;

// Completes a switch on the stack it arrived on (see "Switching" in scheduler.hpp). `t` is what
// the switch delivered: t.data the worker it happened on (this fiber's worker now), t.fctx the
// context that switched away: the worker's scheduler context when w->switching_from is nullptr
// (the worker keeps it), else that fiber, now off its stack, whose after-switch step runs now.
// `InlineFinish`: the previous fiber's after-switch step inlined here (a channel park's resume,
// the hottest arrival) rather than called.
template <bool InlineFinish = false>
[[gnu::always_inline]] inline void arrived(bctx::transfer_t t) noexcept {
  worker* w = static_cast<worker*>(t.data);
  fiber* prev = w->switching_from;
  if (!prev) {
    w->sched_ctx = t.fctx;
    return;
  }
  prev->context = t.fctx;
  if constexpr (InlineFinish) {
    w->rt.finish_switch_out_inline(*w, prev);
  } else {
    w->rt.finish_switch_out(*w, prev);
  }
}

// Switches away from the running fiber f on worker w: to `next` (one stack switch instead of
// two), or with next nullptr back to w's scheduler context. f's after-switch step (f->after) runs
// on the other side, once f is off its stack. Returns what the switch that resumes f delivers
// (never, if f->after is exit). With `MayCall` false it makes no call before the jump, so that
// its caller keeps nothing in callee-saved registers (no pushes and pops around each switch):
// next must then have run before (no stack to bind) and no trace may be running.
template <bool MayCall>
[[gnu::always_inline]] inline bctx::transfer_t switch_to(worker* w, fiber* f, fiber* next,
                                                         bool exiting) noexcept {
  runtime& rt = w->rt;
  // Loaded once: the stores through f and next below could alias them for the compiler.
  void* const eh = w->exception_globals[0];
  int* const thread_errno = w->thread_errno;
  if (next) {
    // The run is counted before it is published in `current` (see probe_run).
    if constexpr (MayCall) {
      probe_run(*w, next);
    } else if constexpr (profiling_compiled) {
      w->counters.runs.add();  // probe_run, the trace off (the caller checked)
    }
    w->current = next;
    publish_running(next);  // waits while a fiber dump reads next's stack
    bctx::fcontext_t to = next->context;
    const bool fresh = MayCall && !to;
    if (fresh) {
      rt.bind_stack(*w, next);
      to = next->context;
    }
    if (!exiting) {
      save_exception_state(eh, f);
      f->saved_errno = *thread_errno;
    }
    load_exception_state(eh, next);
    *thread_errno = next->saved_errno;
    sanitizer_before_switch(f->san, next->san, exiting);
    next->context = nullptr;
    w->switching_from = f;
    return fresh ? bctx::jump_fcontext(to, w) : resume_context(to, w);
  }
  if (!exiting) f->saved_errno = *thread_errno;
  sanitizer_before_switch(f->san, w->san, exiting);
  w->switching_from = f;
  return resume_context(w->sched_ctx, w);
}

// A next fiber that has never run needs a stack. With w's cache empty, taking one locks the
// pool's mutex and may map and advise a new slab: not while the suspending fiber may hold a
// channel's or select's spinlocks (released by its after-switch step, on the other side). Such
// a fiber goes back — into run_next, or the `spawned` deque if run_next is taken — for the
// scheduler context, which runs with no lock held. Returns next, or nullptr if it went back.
// (The check is here rather than in the pick: only a fiber that has never run needs it, and
// the pick of every direct switch saved its three instructions.)
fiber* keep_fresh_for_scheduler(worker* w, fiber* next) noexcept {
  if (!next || next->context || w->stacks.size() != 0) return next;
  if (!w->run_next) {
    w->run_next = next;  // not stealable: as when it was woken or spawned into run_next
  } else {
    w->rt.push_spawned(*w, next);  // stealable: wakes a worker if none is searching
  }
  return nullptr;
}

// switch_out's cases that make calls before the jump, out of line (see switch_to).
[[gnu::noinline]] bctx::transfer_t switch_out_with_calls(worker* w, fiber* f) noexcept {
  fiber* next = keep_fresh_for_scheduler(w, w->rt.pick_for_direct_switch<false>(*w));
  return switch_to<true>(w, f, next, /*exiting=*/false);
}
[[gnu::noinline]] bctx::transfer_t switch_to_fresh(worker* w, fiber* f, fiber* next) noexcept {
  next = keep_fresh_for_scheduler(w, next);
  return switch_to<true>(w, f, next, /*exiting=*/false);  // binds next a stack first
}

// Switches the suspending fiber f out of w: to the next local fiber (pick_for_direct_switch),
// else to the scheduler. The common case — no timer armed here, no chaos, no trace, a next
// fiber that has run before — makes no call before the jump.
[[gnu::always_inline]] inline bctx::transfer_t switch_out(worker* w, fiber* f) noexcept {
  runtime& rt = w->rt;
  if (runtime::pick_makes_calls(*w)) [[unlikely]]  // a timer here, chaos, a trace, a stop
    return switch_out_with_calls(w, f);
  fiber* next = rt.pick_for_direct_switch_as<false, false>(*w);
  if (next && !next->context) [[unlikely]]
    return switch_to_fresh(w, f, next);
  return switch_to<false>(w, f, next, /*exiting=*/false);
}

// Runs f's callable to its end, then destroys it. Exceptions that escape end the program, or
// with options::capture_panics stop the runtime.
void run_task(fiber* f) noexcept {
  // The callable is destroyed first (by run_then_destroy, or below when it threw): a unique_lock
  // among its captures may still unlock its mutex as the holder. What the fiber holds after
  // that stays locked, owned by "an exited fiber".
  try {
    f->ops->run_then_destroy(f->task);
  } catch (...) {
    runtime& rt = *f->rt;
    if (!rt.opts.capture_panics) panic_from(std::current_exception(), f);
    {
      std::lock_guard lk(rt.chunks_mu);
      if (!rt.captured_panic) rt.captured_panic = std::current_exception();
    }
    rt.stop();
    if (f->ops->destroy) f->ops->destroy(f->task);
  }
  // f->task is not cleared for an inline callable: nothing reads it before the next spawn into
  // this block writes it.
  if (f->task != f->inline_task) [[unlikely]]
    free_task_storage(f);
  if (f->held_mutexes) forget_held_mutexes(f);
}

}  // namespace

// adopt_stack's probes with a trace running (out of line: a call would make fiber_entry's common
// case save registers).
[[gnu::noinline]] static void probe_hand_over_traced(worker& w, fiber* f, fiber* next) noexcept {
  probe_switch_out(w, f, after_switch::exit);
  probe_run(w, next);
}

// Inlined into fiber_entry, its one caller: fiber_entry never returns, so it saved its registers
// once, and a fiber handed on here costs no call, no saved registers and no return.
[[gnu::always_inline]] inline fiber* runtime::adopt_stack(worker& w, fiber* f,
                                                          fiber* next) noexcept {
  // f has ended: it is done with its stack but for this frame (fiber_entry's), which next takes
  // over. The thread's C++ exception state is empty (f's callable returned, or its exception
  // was handled), as a fresh fiber's is; errno is reset by the caller.
  check_canary(w, f);
  next->stack = f->stack;
  next->canary = f->canary;
  // The sanitizers' view of this stack (ASan's extent and fake stack, TSan's logical thread)
  // carries on: next runs after f on this thread, as if f had called it.
  next->san = f->san;
  f->san = sanitizer_context{};
  // probe_switch_out(f, exit) and probe_run(next) (before `current`: see probe_run), with one
  // look at the trace for both.
  if (trace_on()) [[unlikely]] {
    probe_hand_over_traced(w, f, next);
  } else if constexpr (profiling_compiled) {
    w.counters.finished().add();
    w.counters.runs.add();
  }
  w.current = next;
  *w.thread_errno = 0;    // next has never run: it starts with errno 0, as a new thread does
  publish_running(next);  // waits while a fiber dump reads next (it has no stack yet: none does)
  reset_for_reuse(f);
  give_fiber(w, f);
  return next;
}

// The first code a fiber runs on its own stack (make_fcontext's entry point). The switch that
// started it set the worker's `current` to it. When the fiber ends and the next local fiber has
// never run, that one simply runs here next, on this stack (runtime::adopt_stack): no stack to
// bind, no context to make, no switch. Otherwise the last switch out goes to the next fiber or
// the scheduler, which recycles the stack and control block once the fiber is off its stack.
[[noreturn]] static void fiber_entry(bctx::transfer_t t) noexcept {
  fiber* f = static_cast<fiber*>(static_cast<worker*>(t.data)->current);  // see arrived()
  sanitizer_after_switch(f->san);
  arrived(t);
  for (;;) {
    run_task(f);
    f->after = after_switch::exit;
    worker* w = current_worker();  // afresh: the fiber may have moved while it ran
    fiber* next = w->rt.pick_for_direct_switch</*ForExit=*/true>(*w);
    if (next && !next->context) {
      f = w->rt.adopt_stack(*w, f, next);
      continue;
    }
    switch_to<true>(w, f, next, /*exiting=*/true);
    __builtin_unreachable();
  }
}

void runtime::bind_stack(worker& w, fiber* f) {
  stack_slot s = w.stacks.take(stacks);
  f->stack = s;
  f->canary = s.has_canary() ? reinterpret_cast<std::uint64_t*>(stacks.bottom(s)) : nullptr;
  create_context(f->san, stacks.bottom(s), stacks.usable_size());
  // Nothing runs until the first jump into it (fiber_entry then).
  f->context = bctx::make_fcontext(stacks.top(s), stacks.usable_size(), fiber_entry);
}

void runtime::report_canary_overwritten(fiber* f) noexcept {
  fatal_error("fiber %llu: stack overflow (stack size %zu KiB; found by its stack canary)",
              static_cast<unsigned long long>(f->id), stacks.usable_size() / 1024);
}

// f's after-switch step. Every call below is the last thing done (a jump, not a call), so that
// finish_switch_out's common cases save no registers.
[[gnu::always_inline]] inline void runtime::run_after_switch_step(worker& w, fiber* f,
                                                                  after_switch after) noexcept {
  // Two tests for either of the common cases (not a switch's three): park, requeue, exit.
  if (after == after_switch::park) {
    f->parked_at.store(park_stamp(), std::memory_order_relaxed);
    // release: a fiber dump that reads `parked` reads the stack f just left (dump.cpp).
    f->state.store(fiber_state::parked, std::memory_order_release);
    // From here on a waker may find f and resume it elsewhere: f is not touched again. A tail
    // call: park_unlock is noexcept, so no terminate handler needs this frame.
    return f->park_unlock(f->park_arg);
  }
  if (after == after_switch::requeue) [[likely]] {
    // release: a fiber dump that reads `runnable` reads the stack f just left (dump.cpp).
    f->state.store(fiber_state::runnable, std::memory_order_release);
    if (!w.local.push(f)) [[unlikely]]
      return w.rt.push_local_slow_and_wake(w, f);
    // Stealable: the submitter side of the wake protocol, as for any other enqueue. Without
    // it, a yielded fiber could wait behind a long CPU-bound fiber while other workers sleep.
    return w.rt.wake_if_needed();
  }
  return w.rt.retire_fiber(w, f);  // after_switch::exit
}

[[gnu::always_inline]] inline void runtime::finish_switch_out_inline(worker& w, fiber* f) noexcept {
  check_canary(w, f);
  // With a trace running, out of line: the trace's record is a call, and a call anywhere here
  // would make every switch save registers. (slow_paths_on() is one test where trace_on() was
  // two; chaos and a stop take the traced path too, which records only while a trace runs.)
  if (slow_paths_on()) [[unlikely]]
    return w.rt.finish_switch_out_traced(w, f);
  // Read once: the counter's add could alias it for the compiler.
  const after_switch after = f->after;
  if constexpr (profiling_compiled) {  // probe_switch_out, the trace off
    w.counters.switch_outs[static_cast<std::size_t>(after)].add();
  }
  return run_after_switch_step(w, f, after);
}

void runtime::finish_switch_out(worker& w, fiber* f) noexcept {
  finish_switch_out_inline(w, f);
}

[[gnu::noinline]] void runtime::finish_switch_out_traced(worker& w, fiber* f) noexcept {
  probe_switch_out(w, f, f->after);
  run_after_switch_step(w, f, f->after);
}

[[gnu::noinline]] void runtime::push_local_slow_and_wake(worker& w, fiber* f) noexcept {
  push_local_slow(w, f);
  wake_if_needed();
}

// Out of line: keeps finish_switch_out small for the yield and park paths.
[[gnu::noinline]] void runtime::retire_fiber(worker& w, fiber* f) noexcept {
  destroy_context(f->san);
  w.stacks.give(stacks, f->stack);  // off it for good: warm for the next fiber here
  reset_for_reuse(f);
  give_fiber(w, f);
}

void runtime::run_fiber(worker& w, fiber* f) {
  probe_run(w, f);  // before `current`: see probe_run
  w.current = f;
  // Waits while a fiber dump reads f's stack (fiber.hpp).
  publish_running(f);
  const bool fresh = !f->context;
  if (fresh) bind_stack(w, f);  // first run: a stack now, not at spawn
  // The thread's C++ exception state becomes the fiber's while it runs.
  auto* eh = static_cast<eh_globals*>(w.exception_globals[0]);
  const eh_globals sched_eh = *eh;
  load_exception_state(eh, f);
  // errno too: the fiber's (0 if it has never run) while it runs; the scheduler's after. The
  // fiber that comes back saved its own on the way out (switch_to).
  const int sched_errno = *w.thread_errno;
  *w.thread_errno = f->saved_errno;

  sanitizer_before_switch(w.san, f->san, false);
  // switching_from nullptr: "the scheduler context jumped here" (arrived()).
  bctx::fcontext_t to = std::exchange(f->context, nullptr);
  w.switching_from = nullptr;
  const bctx::transfer_t t = fresh ? bctx::jump_fcontext(to, &w) : resume_context(to, &w);
  sanitizer_after_switch(w.san);

  // The fiber that jumped back is f, or one that f (or its successors) switched to directly,
  // always on this worker (t.data is &w).
  fiber* back = w.switching_from;
  back->context = t.fctx;
  save_exception_state(eh, back);
  *eh = sched_eh;
  *w.thread_errno = sched_errno;
  w.current = nullptr;
  finish_switch_out(w, back);
}

[[gnu::always_inline]] inline fiber* runtime::pick_queues(worker& w) noexcept {
  fiber* f = nullptr;
  // spawned.pop() costs a fence: look first whether there is anything (a stale `top` can only
  // make it look non-empty, and then pop() finds out).
  const bool any_spawned = w.spawned.size() != 0;
  if (any_spawned && ++w.spawned_picks % spawned_turn != 0 && (f = w.spawned.pop())) return f;
  if ((f = w.local.pop())) return f;
  if (any_spawned && (f = w.spawned.pop())) return f;
  return nullptr;
}

template <bool WithChaos>
[[gnu::always_inline]] inline fiber* runtime::pick_local(worker& w) noexcept {
  fiber* f = nullptr;
  if (WithChaos && w.rt.chaos_seed != 0 && chaos_random(w) % 2 == 0 && (f = w.local.pop())) {
    return f;  // chaos: the queue before run_next
  }
  // run_next first: the local queues' turn before it comes on the global poll's tick
  // (find_runnable_or_park), so a pair waking each other cannot starve the rest. (A count of
  // run_next's streak here cost every pick five instructions.)
  if (w.run_next) [[likely]] {
    f = w.run_next;
    w.run_next = nullptr;
    probe_run_next_hit(w);
    return f;
  }
  return pick_queues(w);
}

template <bool Checked, bool ForExit>
[[gnu::always_inline]] inline fiber* runtime::pick_for_direct_switch_as(worker& w) noexcept {
  if (Checked && w.rt.stopping.load(std::memory_order_relaxed)) return nullptr;
  // Leave to the scheduler loop what only it does: polling the global queue on its tick, and
  // running due timers.
  // This pick counts one, whether or not it finds a fiber (decrement and test in one
  // instruction; a pick that finds none only brings the next poll one pick closer).
  if (--w.picks_to_global_poll == 0) [[unlikely]] {
    // This pick polls the global queue (and, while fibers wait on I/O, epoll): only the
    // scheduler does, so it is left to the scheduler, whose pick then counts the last one. With
    // nothing there to poll, the tick passes here instead (a hint: a fiber queued meanwhile is
    // seen on the next tick, 61 picks on, or when this worker runs dry).
    // So does the local queue's turn before run_next (see find_runnable_or_park), when
    // anything waits there.
    if (w.rt.global_size() != 0 || w.rt.n_io_waiters.load(std::memory_order_relaxed) > 0 ||
        (w.run_next && (w.local.size() != 0 || w.spawned.size() != 0))) {
      w.picks_to_global_poll = 1;
      return nullptr;
    }
    w.picks_to_global_poll = global_poll_interval;
  }
  // A next fiber that has never run needs a stack, which a suspending fiber takes from w's cache
  // only if one is there: keep_fresh_for_scheduler, after the pick, sends it back otherwise. An
  // exiting fiber needs none: a next fiber that has never run takes over its stack
  // (adopt_stack).
  if constexpr (Checked) {
    if (const std::int64_t next = w.next_timer.load(std::memory_order_relaxed);
        next != no_deadline && now_ns() >= next) {
      return nullptr;  // a timer is due: the scheduler runs it
    }
  }
  return pick_local<Checked>(w);
}

template <bool ForExit>
[[gnu::always_inline]] inline fiber* runtime::pick_for_direct_switch(worker& w) noexcept {
  // A timer armed on this worker or chaos scheduling: out of line, so that the common case
  // makes no call and saves no registers.
  if (pick_makes_calls(w)) [[unlikely]]
    return pick_for_direct_switch_checked<ForExit>(w);
  return pick_for_direct_switch_as<false, ForExit>(w);
}

template <bool ForExit>
[[gnu::noinline]] fiber* runtime::pick_for_direct_switch_checked(worker& w) noexcept {
  return pick_for_direct_switch_as<true, ForExit>(w);
}

namespace {

template <bool InlineFinish = false>
[[gnu::always_inline]] inline void suspend_inline(worker* w, fiber* f, after_switch after) {
  // errno, per thread, is saved by the switch and restored by whoever resumes f (switch_to,
  // run_fiber): f may resume on another thread, and whatever runs meanwhile changes this one's.
  f->after = after;
  const bctx::transfer_t t = switch_out(w, f);
  // Resumed, by a worker's scheduler context or directly by another fiber, possibly on another
  // worker. (A fiber still suspended when rt::run shuts down is never resumed: see shutdown.cpp.)
  sanitizer_after_switch(f->san);
  arrived<InlineFinish>(t);
}

template <bool InlineFinish = false>
[[gnu::always_inline]] inline void park_fiber_inline(worker* wk, fiber* f, waiter& w,
                                                     void (*unlock)(void*) noexcept, void* arg,
                                                     wait_reason why, waiter* queued,
                                                     std::uint32_t n_queued) {
  w.owner = f;
  f->park_unlock = unlock;
  f->park_arg = arg;
  // The waiters are in the caller's frame, and the caller takes the remaining ones (a select's
  // other cases) off their queues before its next switch point.
  f->park_waiters = queued;
  f->n_park_waiters = n_queued;
  f->reason.store(why, std::memory_order_relaxed);
  suspend_inline<InlineFinish>(wk, f, after_switch::park);
  f->n_park_waiters = 0;  // park_waiters is read only up to this count
}

}  // namespace

void suspend(worker* w, fiber* f, after_switch after) {
  suspend_inline(w, f, after);
}

void park_fiber(worker* wk, fiber* f, waiter& w, void (*unlock)(void*) noexcept, void* arg,
                wait_reason why, waiter* queued, std::uint32_t n_queued) {
  park_fiber_inline(wk, f, w, unlock, arg, why, queued, n_queued);
}

// Here rather than in chan.cpp: a channel park is one call below the channel operation, the park
// and the switch inlined into it (a call to suspend cost its frame and its arguments).
// `OnWorker`: the caller knows this thread is a worker (fast_ops_here() was true), so tls_worker
// is not tested. The resume runs the previous fiber's after-switch step inline.
template <bool OnWorker>
[[gnu::always_inline]] inline bool wait_on_channel_as(chan_core& c, waiter_queue& q, void* slot,
                                                      wait_reason why) {
  waiter w(waiter::queued_at_once, slot);
  q.push_back(&w, c.lock);
  worker* const wk = tls_worker;  // directly: read before the switch, never after it
  if (fiber* f = OnWorker || wk ? static_cast<fiber*>(wk->current) : nullptr) [[likely]] {
    park_fiber_inline<true>(wk, f, w, unlock_spinlock, &c.lock, why, &w, 1);
  } else {
    block(w, c.lock, why);
  }
  return w.success;
}

bool wait_on_channel(chan_core& c, waiter_queue& q, void* slot, wait_reason why) {
  return wait_on_channel_as<false>(c, q, slot, why);
}

bool wait_on_channel_on_worker(chan_core& c, waiter_queue& q, void* slot, wait_reason why) {
  return wait_on_channel_as<true>(c, q, slot, why);
}

void suspend(fiber* f, after_switch after) {
  suspend(tls_worker, f, after);  // directly: read before the switch (see Migration)
}

// ---------------------------------------------------------------------------------------------
// run (shutdown.cpp tears down)
// ---------------------------------------------------------------------------------------------

void runtime::stop() noexcept {
  // Like a Go program when main returns: stop now. Workers pick up no more fibers from here on
  // (each finishes the one it is running up to its next switch point).
  stopping.store(true);
  g_slow_paths.fetch_or(slow_stopping, std::memory_order_relaxed);
  main_done.store(1, std::memory_order_release);  // pairs with run_main's acquire load
  futex_wake(&main_done);
}

void runtime::run_main(void (*body)(void*), void* ctx) {
  fiber* m = allocate_fiber(nullptr);
  m->id.store(1, std::memory_order_relaxed);
  m->ops = &task_ops_for<main_task>;
  m->task = m->inline_task;
  m->spawn_pc.store(main_spawn_pc, std::memory_order_relaxed);
  static_assert(sizeof(main_task) <= inline_task_bytes);
  ::new (m->task) main_task{body, ctx, this};
  m->state.store(fiber_state::runnable, std::memory_order_relaxed);
  global.push(m);

  install_overflow_handler();
  if (chaos_seed != 0) {
    // Seeds from RT_CHAOS are announced once per process, so a failing CI run shows its seed.
    static std::atomic<std::uint64_t> announced{0};
    if (opts.chaos_seed_from_env && announced.exchange(chaos_seed) != chaos_seed) {
      std::fprintf(stderr, "rt: chaos scheduling with seed %llu (RT_CHAOS=%llu replays it)\n",
                   static_cast<unsigned long long>(chaos_seed),
                   static_cast<unsigned long long>(chaos_seed));
    }
    chaos_enabled.store(true, std::memory_order_relaxed);
  }
  // Before the workers start (trace.hpp): this run's chaos, and no stop of an earlier run.
  if (chaos_seed != 0) {
    g_slow_paths.fetch_or(slow_chaos, std::memory_order_relaxed);
  } else {
    g_slow_paths.fetch_and(~std::uint32_t{slow_chaos}, std::memory_order_relaxed);
  }
  g_slow_paths.fetch_and(~std::uint32_t{slow_stopping}, std::memory_order_relaxed);
  start_profiling(*this);  // counters, and the monitor thread (monitor.cpp)
  g_current_runtime.store(this);
  start_sigquit_watcher(*this);  // dump.cpp: SIGQUIT dumps every fiber (opt-out)
  trace_run_started(*this);      // RT_TRACE
  for (auto& w : workers) {
    worker* wp = w.get();
    wp->thread = std::thread([this, wp] { worker_main(*wp); });
  }
  // acquire: pairs with main_task's release store; what main wrote is visible to run's caller.
  while (main_done.load(std::memory_order_acquire) == 0) futex_wait(&main_done, 0);
  stop_sigquit_watcher();
  shutdown();
  trace_run_ended();  // every worker joined: flush and free the trace
}

}  // namespace rt::detail

// =============================================================================================
// public entry points
// =============================================================================================

namespace rt {

namespace detail {

void run_main(void (*body)(void*), void* ctx, const options& opts) {
  if (current_fiber() != nullptr || current_worker() != nullptr) {
    throw rt::runtime_error(
        "rt::run called from inside a fiber: a program has one runtime at a time; spawn more "
        "work with rt::go instead");
  }
  std::unique_lock lk(g_run_mu, std::try_to_lock);
  if (!lk.owns_lock()) {
    throw rt::runtime_error(
        "rt::run called while another rt::run is running in this process: one runtime at a "
        "time; spawn into the running one with rt::go, or call rt::run after it returns");
  }
  options resolved = resolve_options(opts);
  runtime rt(resolved);
  rt.main_spawn_pc = __builtin_return_address(0);  // in the caller of rt::run (always inlined)
  rt.run_main(body, ctx);
  if (rt.captured_panic) std::rethrow_exception(rt.captured_panic);
}

// A plain thread's spawn holds the runtime (g_plain_users) from new_fiber until start_fiber or
// discard_fiber, so rt::run cannot tear the runtime down in between.
namespace {

// Fills in a control block taken for a new fiber, whose callable goes to `task` (the block's
// inline storage or a heap block).
[[gnu::always_inline]] inline void fill_new_fiber(fiber* f, const task_ops* ops, void* pc,
                                                  std::uint64_t id, void* task, void** storage) {
  f->ops = ops;
  // relaxed: published to others (and to fiber dumps) by the release store of `runnable`; the
  // hog monitor reads them under chunks_mu (monitor.cpp).
  f->spawn_pc.store(pc, std::memory_order_relaxed);
  f->id.store(id, std::memory_order_relaxed);
  f->reason.store(wait_reason::none, std::memory_order_relaxed);
  f->task = task;
  *storage = task;
}

// new_fiber on a plain thread, or with the worker's cache empty (out of line: spawn's own frame
// stays small).
[[gnu::noinline]] fiber* new_fiber_slow(worker* w, std::size_t size, std::size_t align,
                                        const task_ops* ops, void** storage, void* pc) {
  runtime* rt = w ? &w->rt : nullptr;
  if (!rt) {
    enter_plain_thread_scope();
    rt = g_current_runtime.load();
    if (rt) rt->plain_thread_used.store(true, std::memory_order_relaxed);
    if (!rt) {
      leave_plain_thread_scope();
      throw rt::runtime_error(
          "rt::go called with no runtime running: spawn fibers from inside rt::run(...), or "
          "from another thread while rt::run is running");
    }
  }
  fiber* f = rt->allocate_fiber(w);
  const std::uint64_t id = rt->next_fiber_id(w);
  void* task = size <= inline_task_bytes && align <= alignof(std::max_align_t)
                   ? f->inline_task
                   : ::operator new(size, heap_task_align);
  fill_new_fiber(f, ops, pc, id, task, storage);
  return f;
}

}  // namespace

// new_fiber, new_fiber_inline and start_fiber read tls_worker directly, not through
// current_worker(): none switches, and none is ever inlined into a caller that might (see
// Migration in scheduler.hpp).
// spawn() calls new_fiber only for a callable too big for the control block (new_fiber_inline
// takes the others), so it has no fast path of its own.
[[gnu::noinline]] fiber* new_fiber(std::size_t size, std::size_t align, const task_ops* ops,
                                   void** storage) {
  return new_fiber_slow(tls_worker, size, align, ops, storage, __builtin_return_address(0));
}

// The common case is a leaf (no registers to save): a cached control block, an id from the
// worker's block; anything else is a tail call.
[[gnu::noinline]] fiber* new_fiber_inline(const task_ops* ops, void** storage) {
  void* pc = __builtin_return_address(0);  // as new_fiber's: the spawn site
  worker* w = tls_worker;
  if (!w || !w->free_fibers || w->next_id == w->id_limit) [[unlikely]]
    return new_fiber_slow(w, 0, 1, ops, storage, pc);
  fiber* f = w->rt.take_fiber(*w);
  fill_new_fiber(f, ops, pc, w->next_id++, f->inline_task, storage);
  return f;
}

namespace {

// make_runnable_from_anywhere on a plain thread (out of line: the scope's frame stays off the
// fibers' path).
[[gnu::noinline]] void make_runnable_from_plain_thread(fiber* f) noexcept {
  // Inside a plain_thread_scope: the runtime cannot be torn down meanwhile.
  plain_thread_scope scope;
  f->rt->plain_thread_used.store(true, std::memory_order_relaxed);
  f->rt->make_runnable(f, /*prefer_next=*/false);
}

}  // namespace

void make_runnable_from_anywhere(fiber* f) noexcept {
  if (worker* w = tls_worker) [[likely]] {  // directly: no switch here
    w->rt.make_runnable_here(*w, f, /*prefer_next=*/true);
    return;
  }
  make_runnable_from_plain_thread(f);
}

void note_plain_thread_use() noexcept {
  if (current_worker()) return;
  if (runtime* rt = g_current_runtime.load())
    rt->plain_thread_used.store(true, std::memory_order_relaxed);
}

std::uint64_t fast_random() noexcept {
  if (worker* w = current_worker()) {
    w->rng ^= w->rng << 13;
    w->rng ^= w->rng >> 7;
    w->rng ^= w->rng << 17;
    return w->rng;
  }
  thread_local std::uint64_t state =
      0x2545F4914F6CDD1Dull ^ reinterpret_cast<std::uintptr_t>(&state);
  state ^= state << 13;
  state ^= state >> 7;
  state ^= state << 17;
  return state;
}

namespace {

[[gnu::noinline]] void start_fiber_traced(worker* w, fiber* f) noexcept {
  probe_spawn(w, f);
  w->rt.make_spawned_runnable(*w, f);
}

}  // namespace

[[gnu::noinline]] void start_fiber(fiber* f) noexcept {
  if (worker* w = tls_worker) [[likely]] {  // directly: see new_fiber
    // With a trace running, out of line: its call would make every spawn save registers.
    if (trace_on()) [[unlikely]]
      return start_fiber_traced(w, f);
    if constexpr (profiling_compiled) w->counters.spawned.add();  // probe_spawn, the trace off
    w->rt.make_spawned_runnable(*w, f);                           // like Go: the child runs next
    return;
  }
  probe_spawn(nullptr, f);
  f->rt->make_runnable(f, /*prefer_next=*/false);
  leave_plain_thread_scope();  // entered in new_fiber
}

void discard_fiber(fiber* f) noexcept {
  free_task_storage(f);
  if (worker* w = current_worker()) {
    w->rt.recycle_fiber(w, f);
    return;
  }
  f->rt->recycle_fiber(nullptr, f);
  leave_plain_thread_scope();  // entered in new_fiber
}

}  // namespace detail

void yield() {
  detail::worker* w = detail::tls_worker;  // directly: read before the switch (see Migration)
  detail::fiber* f = w ? static_cast<detail::fiber*>(w->current) : nullptr;
  if (!f) [[unlikely]] {
    std::this_thread::yield();
    return;
  }
  detail::suspend(w, f, detail::after_switch::requeue);
}

unsigned worker_count() noexcept {
  detail::runtime* rt = detail::current_runtime();
  return rt ? static_cast<unsigned>(rt->workers.size()) : 0;
}

std::uint64_t this_fiber::id() noexcept {
  detail::fiber* f = detail::current_fiber();
  return f ? f->id.load(std::memory_order_relaxed) : 0;
}

}  // namespace rt
