// runtime/blocking.cpp — the blocking pool behind rt::blocking (rt/blocking.hpp, blocking.hpp).
//
// The argument.
// - Parking. The caller (a fiber) locks a spinlock on its own stack, queues its job, and parks
//   with block(): the spinlock is released only once the fiber is off its stack (block's
//   after-switch step), exactly as a sync object's lock is. A pool thread that has run the job
//   locks and unlocks that spinlock before it wakes the fiber, so the wake never comes before
//   the park has completed (it waits for it), and after the unlock nothing on the fiber's stack
//   is touched again: the fiber may resume and return the moment it is made runnable.
// - Waking. The pool threads are the runtime's own threads, not plain threads of the program:
//   they wake the fiber with runtime::make_runnable directly (into the global queue, then the
//   submitter side of the wake protocol), not through make_runnable_from_anywhere, which would
//   set plain_thread_used and so switch deadlock detection off for good. They need no
//   plain_thread_scope either: shutdown stops the pool (stop(), under mu_) before it does
//   anything else, and a pool thread wakes only under mu_ and only while the pool is not
//   stopping; stop() then joins every thread, so none touches the runtime afterwards.
// - Deadlock check. A fiber parked here will be woken by a pool thread, not by a fiber: it is
//   not deadlocked. in_flight_ counts calls from their submission (before the fiber parks)
//   until their fiber has been resumed: the fiber itself decrements it, on a worker, once
//   block() returns. check_deadlock returns while it is non-zero. That early return loses no
//   report: the fiber is then still to be woken or to run, and the worker that runs it goes
//   idle again later and checks again, after the decrement (program order on that worker, or
//   the happens-before of the fiber's next park). Decrementing on the pool thread after the
//   wake lost reports: the woken fiber could run and park for good (a real deadlock) before the
//   decrement, and the one check, by the last worker to park, returned early with nobody to
//   check again (BlockingDeadlock.RealDeadlockIsReportedWhilePoolThreadsIdle/W1 caught it).
//   Decrementing before the wake would report a false deadlock in between.
//   The pool threads count as the runtime's own in the thread-count check (live_threads():
//   incremented before a thread starts, while its job is in flight; decremented just before it
//   exits, so a stale count only makes the check silent).
// - Shutdown. Before anything else, rt::run stops the pool: jobs still queued are dropped (never
//   run; their fibers stay parked and are abandoned with every other leftover), and rt::run
//   waits — joining every pool thread — for the jobs already running to return, since their
//   callable and result live in the abandoned fiber's frame, on a stack the runtime is about to
//   free. A job that returns then does not wake its fiber. rt::run therefore hangs if a running
//   job waits for something only a fiber could do (as std::async's future does). The pool is
//   stopped before plain threads are kept out (g_teardown), so a running job that uses the
//   runtime as a plain thread (rt::go, a channel) is not kept waiting by the teardown that
//   waits for it.
// - Keep-alive. An idle thread waits on work_cv_ until a deadline blocking_keep_alive away; if
//   it then still has no job, it exits, handing its std::thread to exited_ (joined later).
// - Starting a thread. submit() starts one when there are fewer idle threads than queued jobs
//   (each idle thread takes one job when it wakes) and the bound allows, so jobs beyond the
//   bound wait in FIFO order for a thread to finish its job.
#include "blocking.hpp"

#include <charconv>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>
#include <system_error>

#include "fiber.hpp"
#include "rt/blocking.hpp"
#include "rt/detail/wait.hpp"
#include "rt/errors.hpp"
#include "scheduler.hpp"

namespace rt::detail {

void resolve_blocking_options(options& o) {
  const std::string limit = std::to_string(max_blocking_threads_limit);
  if (o.max_blocking_threads == 0) {
    if (const char* env = std::getenv("RT_BLOCKING_THREADS"); env && *env) {
      unsigned v = 0;
      auto [end, ec] = std::from_chars(env, env + std::strlen(env), v);
      if (ec != std::errc{} || *end != '\0' || v == 0 || v > max_blocking_threads_limit) {
        throw rt::runtime_error(std::string("RT_BLOCKING_THREADS=\"") + env +
                                "\" is not a thread count: set it to a whole number from 1 to " +
                                limit + ", or unset it for " +
                                std::to_string(default_blocking_threads));
      }
      o.max_blocking_threads = v;
    } else {
      o.max_blocking_threads = default_blocking_threads;
    }
  } else if (o.max_blocking_threads > max_blocking_threads_limit) {
    throw rt::runtime_error("rt::options::max_blocking_threads is " +
                            std::to_string(o.max_blocking_threads) + ": at most " + limit +
                            " blocking-pool threads are supported");
  }
}

bool blocking_pool::submit(runtime& rt, blocking_job& job) {
  std::vector<std::thread> reap;  // threads that exited on their keep-alive: joined below
  std::string failure;            // why no thread could be started, when none exists
  bool failed = false;
  {
    std::lock_guard lk(mu_);
    if (stopping_) return false;
    reap.swap(exited_);
    const std::size_t waiting = queued_.load(std::memory_order_relaxed) + 1;
    if (idle_ < waiting && threads_.load() < rt.opts.max_blocking_threads) {
      // Counted before it starts: see "Deadlock check" above.
      threads_.fetch_add(1);
      try {
        std::size_t slot = 0;
        while (slot < slots_.size() && slots_[slot].joinable()) ++slot;
        if (slot == slots_.size()) slots_.emplace_back();
        // The thread's first act is to lock mu_, so it sees its handle in slots_[slot].
        slots_[slot] = std::thread([this, &rt, slot] { thread_main(rt, slot); });
      } catch (const std::exception& e) {  // std::system_error (EAGAIN), std::bad_alloc
        threads_.fetch_sub(1);
        if (threads_.load() == 0) {  // else the threads there are will take the job
          failed = true;
          failure = e.what();
        }
      }
    }
    if (!failed) {
      in_flight_.fetch_add(1);  // before the job is visible to a pool thread
      job.next = nullptr;
      if (tail_) {
        tail_->next = &job;
      } else {
        head_ = &job;
      }
      tail_ = &job;
      // relaxed: statistics only; mu_ orders it for the spawn decision above.
      queued_.store(waiting, std::memory_order_relaxed);
    }
  }
  for (std::thread& t : reap) t.join();
  if (failed) {
    throw rt::runtime_error("rt::blocking: could not start a blocking-pool thread (" + failure +
                            ")");
  }
  work_cv_.notify_one();
  return true;
}

void blocking_pool::thread_main(runtime& rt, std::size_t slot) {
  std::unique_lock lk(mu_);
  for (;;) {
    const auto deadline = std::chrono::steady_clock::now() + blocking_keep_alive;
    while (!head_ && !stopping_) {
      ++idle_;
      const std::cv_status st = work_cv_.wait_until(lk, deadline);
      --idle_;
      if (st == std::cv_status::timeout && !head_ && !stopping_) {
        // No job for blocking_keep_alive: exit. Nothing is queued, so no job is left without a
        // thread (a later submit starts one).
        threads_.fetch_sub(1);
        exited_.push_back(std::move(slots_[slot]));
        return;
      }
    }
    if (stopping_) {  // stop() dropped the queue and joins us
      threads_.fetch_sub(1);
      return;
    }
    blocking_job* job = head_;
    head_ = job->next;
    if (!head_) tail_ = nullptr;
    queued_.store(queued_.load(std::memory_order_relaxed) - 1, std::memory_order_relaxed);
    lk.unlock();
    job->call(job->ctx);  // noexcept: rt::blocking catches what fn throws
    lk.lock();
    if (!stopping_) {
      // The caller's park has completed once its spinlock is free (see "Parking" above); after
      // the unlock, nothing of its frame is touched: read the fiber first.
      fiber* f = job->owner;
      spinlock* park_lk = job->park_lk;
      park_lk->lock();
      park_lk->unlock();
      rt.make_runnable(f, /*prefer_next=*/false);  // in_flight_ is the fiber's to decrement
    }
  }
}

void blocking_pool::stop() noexcept {
  std::vector<std::thread> all;
  {
    std::lock_guard lk(mu_);
    stopping_ = true;
    std::size_t dropped = 0;
    for (blocking_job* j = head_; j; j = j->next) ++dropped;
    head_ = tail_ = nullptr;
    queued_.store(0, std::memory_order_relaxed);
    // Dropped calls are over (their fibers are abandoned); running ones stay counted, as their
    // fibers are never resumed: nothing checks for deadlock any more.
    in_flight_.fetch_sub(dropped);
    all = std::move(slots_);
    slots_.clear();
    for (std::thread& t : exited_) all.push_back(std::move(t));
    exited_.clear();
  }
  work_cv_.notify_all();
  for (std::thread& t : all) {
    if (t.joinable()) t.join();
  }
}

void run_blocking(void (*call)(void*) noexcept, void* ctx) {
  fiber* f = current_fiber();
  if (!f) {
    call(ctx);  // a plain thread (a pool thread too): it may block itself
    return;
  }
  chaos_point();
  spinlock park_lk;
  park_lk.lock();  // released by block() once this fiber is parked
  blocking_job job;
  job.call = call;
  job.ctx = ctx;
  job.owner = f;
  job.park_lk = &park_lk;
  // The runtime, found through the fiber (never a thread_local across a switch).
  bool queued = false;
  try {
    queued = f->rt->blocking.submit(*f->rt, job);
  } catch (...) {
    park_lk.unlock();
    throw;
  }
  waiter w;
  // Not queued: the runtime is shutting down; nobody wakes this fiber, which is abandoned.
  (void)queued;
  block(w, park_lk, wait_reason::blocking);
  // Resumed (never, if the pool was stopping): the call is over. See "Deadlock check".
  f->rt->blocking.call_resumed();
}

}  // namespace rt::detail
