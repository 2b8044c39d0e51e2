// runtime/timer.cpp — see timer.hpp.
#include "timer.hpp"

#include <immintrin.h>

#include <mutex>

#include "probes.hpp"
#include "scheduler.hpp"

namespace rt::detail {
namespace {

// Binary min-heap of (when, timer*) entries. The due time sits in the entry itself, so sifting
// compares without touching the timers (which live on many different fiber stacks).
void place(std::vector<timer_entry>& h, std::size_t i, timer_entry e) noexcept {
  h[i] = e;
  e.t->index = i;
}

void sift_up(std::vector<timer_entry>& h, std::size_t i) noexcept {
  const timer_entry e = h[i];
  while (i > 0) {
    std::size_t parent = (i - 1) / 2;
    if (h[parent].when <= e.when) break;
    place(h, i, h[parent]);
    i = parent;
  }
  place(h, i, e);
}

void sift_down(std::vector<timer_entry>& h, std::size_t i) noexcept {
  const timer_entry e = h[i];
  const std::size_t n = h.size();
  for (;;) {
    std::size_t c = 2 * i + 1;
    if (c >= n) break;
    if (c + 1 < n && h[c + 1].when < h[c].when) ++c;
    if (e.when <= h[c].when) break;
    place(h, i, h[c]);
    i = c;
  }
  place(h, i, e);
}

void remove_at(std::vector<timer_entry>& h, std::size_t i) noexcept {
  const timer_entry last = h.back();
  h.pop_back();
  if (i < h.size()) {
    place(h, i, last);
    sift_down(h, i);
    sift_up(h, last.t->index);
  }
}

void publish_next(worker& w) noexcept {
  // relaxed: a hint for parked workers' timeouts and for thieves (the heap itself is read under
  // timer_lock); where a parked worker must not miss it, the seq_cst fences of the timer Dekker
  // pair order it (add_timer, then runtime::timer_armed; see "Timers" in scheduler.hpp).
  w.next_timer.store(w.timers.empty() ? no_deadline : w.timers.front().when,
                     std::memory_order_relaxed);
}

}  // namespace

void add_timer(timer* t) noexcept {
  add_timer_on(*current_worker(), t);
}

void add_timer_on(worker& wr, timer* t) noexcept {
  worker* w = &wr;
  const std::int64_t when = t->when;  // t may fire (on another worker) once the lock is let go
  bool earliest;
  {
    std::lock_guard lk(w->timer_lock);
    t->home = w;
    t->state.store(timer::pending, std::memory_order_relaxed);  // under timer_lock
    w->timers.push_back({when, t});
    sift_up(w->timers, w->timers.size() - 1);
    publish_next(*w);
    earliest = w->timers.front().t == t;
  }
  // An earlier deadline than this worker had: an idle worker may be sleeping past it (a later
  // timer only ever finds the idle workers sleeping until this worker's earliest, or earlier).
  if (earliest && when != no_deadline) w->rt.timer_armed(when);
}

bool cancel_timer(timer* t) noexcept {
  if (t->state.load(std::memory_order_acquire) == timer::idle) return true;
  if (worker* w = t->home) {
    std::lock_guard lk(w->timer_lock);
    if (t->state.load(std::memory_order_relaxed) == timer::pending) {
      remove_at(w->timers, t->index);
      publish_next(*w);
      t->state.store(timer::done, std::memory_order_relaxed);
      return true;
    }
  }
  // It is firing on some worker: wait for its fire to let go of it (a few instructions).
  // acquire: pairs with finish()'s release.
  while (t->state.load(std::memory_order_acquire) != timer::done) _mm_pause();
  return false;
}

void run_due_timers(worker& w, std::int64_t now, bool try_only) noexcept {
  for (;;) {
    timer* t = nullptr;
    {
      std::unique_lock lk(w.timer_lock, std::defer_lock);
      if (try_only) {
        if (!lk.try_lock()) return;
      } else {
        lk.lock();
      }
      if (w.timers.empty() || w.timers.front().when > now) return;
      t = w.timers.front().t;
      remove_at(w.timers, 0);
      publish_next(w);
      t->state.store(timer::firing, std::memory_order_relaxed);  // under timer_lock
    }
    probe_timer_fire(w);
    t->fire(t);
  }
}

}  // namespace rt::detail
