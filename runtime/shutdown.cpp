// runtime/shutdown.cpp — what rt::run does once main has returned: stop the workers, then
// abandon every fiber still alive, and the plain-thread scope that keeps other threads out
// meanwhile.
//
// The argument. A Go program ends when main returns: goroutines still blocked or runnable are
// never run again, their deferred calls do not run, and the process exits. rt::run must return
// to its caller instead, and may be called again, so the runtime also has to come apart cleanly.
// It does so the way Go ends — leftover fibers are *abandoned*, never resumed:
//   1. Plain threads are kept out (g_teardown; see plain_thread_scope in rt/detail/wait.hpp):
//      rt::run waits until none is inside an operation that can wake a fiber, and later ones
//      wait until the teardown is over. No plain thread waits for it while holding a sync
//      object's spinlock (they enter their scope before taking one), so the locks taken below
//      are always released.
//   2. The workers stop picking fibers and are joined; each finishes the fiber it is running up
//      to its next switch point, whose after-switch step (publishing a park, releasing the
//      spinlocks of the operation) still runs. From here on no fiber runs anywhere, and this
//      thread is the only one touching the runtime.
//   3. Every fiber still alive (runnable or parked; the main fiber has exited unless a panic
//      was captured) is abandoned, with no code of it run:
//      - its waiters are unlinked from whatever queues they are still in (block_with records
//        them on the fiber, push_back records each one's queue and lock), under each queue's
//        lock. A sync object destroyed meanwhile (a channel whose last handle was main's) has
//        detached its waiters in its destructor, so nothing freed is touched. So a later
//        operation on a global channel, mutex or condition_variable never finds a dead waiter;
//      - armed timers are dropped unfired (the time.After ones freed);
//      - each mutex it holds is released: handed to its oldest waiter, which can only be a
//        plain thread now, or unlocked. So a global mutex is not left locked by a fiber that
//        will never run (rt::mutex records its holder for item 13's misuse check anyway);
//      - its stack is given up: ASan poison cleared, the TSan fiber destroyed, its saved
//        context forgotten (never jumped to, so nothing of it runs). The stack returns to the
//        pool with the runtime.
//      Its frames' destructors do not run: like a goroutine's stack, the frames are simply let
//      go of, so what they owned on the heap (a channel made inside the fiber, a string) leaks.
//      Under LeakSanitizer the abandoned frames are kept as an ignored heap snapshot, so what
//      they reference counts as reachable rather than as a leak of the runtime's
//      (lsan_keep_reachable).
//   4. Every leftover's callable — started or not — is destroyed, after the runtime is gone (no
//      runtime current, g_teardown cleared), as any owner destroys a callable it will not call
//      again. That runs the destructors of captured values, never fiber code, and releases
//      what the captures share (channel handles: a woken fiber that had not yet returned when
//      main did would otherwise leak every channel it captured). A started fiber's frames may
//      still point into its callable; they are never resumed, so nothing reads it again.
// Why not unwind the leftovers (throwing into each suspended fiber, as this runtime once did)?
// Their catch blocks and destructors then ran after main's frame was gone: they read main's
// destroyed objects, spun forever when they swallowed the exception, parked again inside a
// destructor, translated the unwinding into a panic that replaced main's result, or locked
// mutexes that were then left held. None of that can happen when nothing of theirs runs.
// What is promised: rt::run returns promptly once the workers have stopped (its work is linear
// in the fibers and timers left, and it waits for nothing but the spinlocks above); main's
// result (or exception, or the first captured panic) is what it returns; rt::run can be called
// again; and a program that cleans up after itself leaks nothing.
// rt::run's thread runs no fiber code at all (fibers run only on workers), so it needs no
// alternate signal stack: an overflow on it is an ordinary thread-stack overflow.
#include <boost/context/detail/fcontext.hpp>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <new>
#include <thread>
#include <vector>

#include "futex.hpp"
#include "rt/mutex.hpp"
#include "scheduler.hpp"

#if RT_ASAN
#include <sanitizer/lsan_interface.h>
#endif

namespace rt::detail {
namespace {

// Plain threads inside a plain_thread_scope; rt::run waits for them before tearing down.
std::atomic<unsigned> g_plain_users{0};
// 1 while rt::run tears a runtime down: plain threads wait before entering a scope.
std::atomic<std::uint32_t> g_teardown{0};
// How deeply the calling plain thread is nested in scopes (plain threads only: no fiber ever
// reads it, so no migration concern). The tearing-down thread counts as inside one.
thread_local int t_plain_depth = 0;

// Registers the calling plain thread as inside the runtime (the submitter half of a Dekker pair
// with shutdown(): users++ then load teardown, against teardown = 1 then load users; both
// seq_cst).
void acquire_plain_hold() noexcept {
  for (;;) {
    g_plain_users.fetch_add(1);
    if (g_teardown.load() == 0) return;
    g_plain_users.fetch_sub(1);
    futex_wait(&g_teardown, 1);
  }
}

// The stack pointer saved in a suspended fiber's context (jump_fcontext saved its registers
// there, at the top of the stack's live part).
[[maybe_unused]] const char* saved_stack_pointer(boost::context::detail::fcontext_t c) noexcept {
  return static_cast<const char*>(c);
}

// LeakSanitizer: an abandoned fiber's frames still reference what they owned. That memory is
// let go of by design (see above), not leaked by the runtime: keep a copy of the live part of
// the stack (and of the fiber's caught-exception list) in a heap block that LSan ignores but
// scans, so that what they reference counts as reachable.
void lsan_keep_reachable([[maybe_unused]] fiber* f) noexcept {
#if RT_ASAN
  const char* bottom = static_cast<const char*>(f->san.stack_bottom);
  const char* top = bottom + f->san.stack_size;
  const char* sp = saved_stack_pointer(f->context);
  if (!sp || sp < bottom || sp >= top) sp = bottom;
  const std::size_t live = static_cast<std::size_t>(top - sp);
  auto* copy = static_cast<char*>(std::malloc(live + sizeof f->exception_globals));
  if (!copy) return;
  std::memcpy(copy, sp, live);
  std::memcpy(copy + live, f->exception_globals, sizeof f->exception_globals);
  __lsan_ignore_object(copy);
#endif
}

// Takes every waiter of the abandoned fiber f off the queue it is still in.
void unlink_waiters(fiber* f) noexcept {
  for (std::uint32_t i = 0; i < f->n_park_waiters; ++i) {
    waiter& w = f->park_waiters[i];
    // Unlocked read: only a party holding the queue's lock inside a scope (a waker, a
    // destructor) writes a fiber's waiter's `queued`, and none is running now. A plain thread
    // may be pushing or removing its own waiter in the same queue, hence the lock.
    if (!w.queued) continue;
    spinlock& lk = *w.queue_lock;
    lk.lock();
    w.queue->remove(&w);
    lk.unlock();
  }
  f->park_waiters = nullptr;
  f->n_park_waiters = 0;
}

}  // namespace

void runtime::shutdown() {
  blocking.stop();  // first: drops queued calls, waits for running ones (blocking.cpp)
  // 1. Plain threads must be out of the runtime before it is torn down; later ones wait until
  // it is gone (then they find no runtime).
  g_teardown.store(1);
  while (g_plain_users.load() != 0) std::this_thread::yield();
  g_current_runtime.store(nullptr);
  stop_profiling(*this);  // the monitor thread reads the workers: joined before anything goes

  // 2. Stop and join the workers.
  stopping.store(true);
  g_slow_paths.fetch_or(slow_stopping, std::memory_order_relaxed);
  {
    std::lock_guard lk(idle_mu);
    for (worker* w : idle_list) {
      w->idle = false;
      n_idle.fetch_sub(1);
      w->wake_word.store(1);  // seq_cst, then notify(): out of futex_wait or epoll_wait
      futex_wake(&w->wake_word);
      notify(*w);
    }
    idle_list.clear();
  }
  for (auto& w : workers) w->thread.join();

  // 3. Abandon the leftovers. This thread is the runtime's only user now; it counts as inside a
  // plain_thread_scope, so a destructor run below (a time.After timer's channel) that opens one
  // does not wait for this very teardown.
  t_plain_depth = 1;
  std::vector<fiber*> started, never_started;
  // Every block on a free list (a worker's cache or the shared list) is free: when they are all
  // there, no fiber is left and the scan is skipped (a burst of a million fibers leaves a
  // million blocks to look at).
  std::size_t n_free = n_shared_free;
  for (auto& w : workers) n_free += w->n_free_fibers;
  if (n_free != chunks.size() * fiber_chunk) {
    for (auto& c : chunks) {
      for (std::size_t i = 0; i < fiber_chunk; ++i) {
        fiber* f = &c[i];
        const fiber_state st = f->state.load(std::memory_order_relaxed);
        if (st == fiber_state::free || st == fiber_state::dead) continue;
        (f->context ? started : never_started).push_back(f);
      }
    }
  }
  for (fiber* f : started) {
    // First what points into its stack from outside (a stop callback), then its waiters.
    if (f->on_abandon) f->on_abandon(f->on_abandon_arg);
    f->on_abandon = nullptr;
    unlink_waiters(f);
  }
  // Timers: those of leftover sleepers and timed waits live on abandoned stacks; time.After's
  // are freed (their channel may be the last handle).
  for (auto& w : workers) {
    std::vector<timer_entry> armed;
    {
      std::lock_guard lk(w->timer_lock);
      armed.swap(w->timers);
      w->next_timer.store(no_deadline, std::memory_order_relaxed);
    }
    for (timer_entry& e : armed) {
      if (e.t->drop) e.t->drop(e.t);
    }
  }
  // Every fiber's waiters are unlinked now, so a released mutex goes to a plain thread or to
  // nobody.
  for (fiber* f : started) {
    while (rt::mutex* m = f->held_mutexes) release_abandoned_mutex(*m, f);
  }
  for (fiber* f : started) {
#if RT_ASAN
    // The slab is unmapped with the pool; leave no poison behind for a later mapping there
    // (and let lsan_keep_reachable read the frames).
    __asan_unpoison_memory_region(f->san.stack_bottom, f->san.stack_size);
#endif
    lsan_keep_reachable(f);
    destroy_context(f->san);
    f->context = nullptr;  // never resumed: the frames are let go of, not unwound
  }

  t_plain_depth = 0;
  chaos_enabled.store(false, std::memory_order_relaxed);
  g_slow_paths.fetch_and(~std::uint32_t{slow_chaos}, std::memory_order_relaxed);
  g_teardown.store(0);
  futex_wake(&g_teardown, 1 << 30);

  // 4. Destroy the leftovers' callables, with no runtime current.
  for (auto* list : {&started, &never_started}) {
    for (fiber* f : *list) {
      if (f->ops->destroy) f->ops->destroy(f->task);
      free_task_storage(f);
      f->state.store(fiber_state::free, std::memory_order_relaxed);
    }
  }
}

namespace {

[[gnu::noinline]] bool enter_plain_thread_scope_here() noexcept {
  if (t_plain_depth++ == 0) acquire_plain_hold();
  return true;
}

}  // namespace

bool enter_plain_thread_scope() noexcept {
  // On a worker (every fiber's channel operation comes here): one load and no call.
  if (tls_worker) [[likely]]
    return false;  // directly: no switch here
  return enter_plain_thread_scope_here();
}

int try_enter_plain_thread_scope() noexcept {
  if (tls_worker) return 2;  // directly: no switch here
  if (t_plain_depth > 0) {
    ++t_plain_depth;
    return 1;
  }
  // The submitter half of the Dekker pair in acquire_plain_hold(), without the wait.
  g_plain_users.fetch_add(1);
  if (g_teardown.load() != 0) {
    g_plain_users.fetch_sub(1);
    return 0;
  }
  t_plain_depth = 1;
  return 1;
}

void leave_plain_thread_scope() noexcept {
  if (--t_plain_depth == 0) g_plain_users.fetch_sub(1);
}

int suspend_plain_thread_scope() noexcept {
  const int depth = t_plain_depth;
  if (depth > 0) g_plain_users.fetch_sub(1);
  t_plain_depth = 0;
  return depth;
}

void resume_plain_thread_scope(int depth) noexcept {
  if (depth > 0) acquire_plain_hold();
  t_plain_depth = depth;
}

}  // namespace rt::detail
