// runtime/wait.cpp — spinlock, waiter queues, block() and wake(); see rt/detail/wait.hpp.
#include <immintrin.h>

#include <thread>

#include "fiber.hpp"
#include "futex.hpp"
#include "rt/detail/wait.hpp"
#include "scheduler.hpp"

namespace rt::detail {

void spinlock::lock_slow() noexcept {
  for (unsigned spins = 0;; ++spins) {
    // Test before test-and-set: spin on a shared cache line, not on the bus.
    while (held_.load(std::memory_order_relaxed)) {
      if (spins < 64) {
        _mm_pause();
        ++spins;
      } else {
        // The holder may have been descheduled by the OS: give it the core.
        std::this_thread::yield();
      }
    }
    if (!held_.exchange(true, std::memory_order_acquire)) return;
  }
}

waiter* waiter_queue::take_all() noexcept {
  waiter* list = head_;
  head_ = tail_ = nullptr;
  return list;
}

void waiter_queue::detach_all() noexcept {
  for (waiter* w = head_; w; w = w->next) w->queued = false;
  head_ = tail_ = nullptr;
}

void waiter_queue::remove(waiter* w) noexcept {
  if (!w->queued) return;
  if (w->prev) {
    w->prev->next = w->next;
  } else {
    head_ = w->next;
  }
  if (w->next) {
    w->next->prev = w->prev;
  } else {
    tail_ = w->prev;
  }
  w->queued = false;
}

void block(waiter& w, spinlock& lk, wait_reason why) {
  worker* const wk = tls_worker;  // directly: read before the switch, never after it
  if (fiber* f = wk ? static_cast<fiber*>(wk->current) : nullptr) [[likely]] {
    park_fiber(wk, f, w, unlock_spinlock, &lk, why, &w, 1);
    return;
  }
  block_with(w, unlock_spinlock, &lk, why);
}

void block_with(waiter& w, void (*unlock)(void*) noexcept, void* arg, wait_reason why,
                waiter* queued, std::size_t n_queued) {
  worker* const wk = tls_worker;  // directly: read before the switch below, never after it
  if (fiber* f = wk ? static_cast<fiber*>(wk->current) : nullptr) [[likely]] {
    park_fiber(wk, f, w, unlock, arg, why, queued ? queued : &w,
               queued ? static_cast<std::uint32_t>(n_queued) : 1);
    return;
  }
  note_plain_thread_use();
  w.owner = nullptr;
  // Before the unlock, while nobody can pop w to wake it (a channel's waiter comes here with
  // the word unset: see waiter::queued_at_once).
  w.thread_woken.store(0, std::memory_order_relaxed);
  unlock(arg);
  // Asleep, this thread touches nothing: let rt::run tear down meanwhile if it must.
  const int depth = suspend_plain_thread_scope();
  // acquire: pairs with wake()'s release store; what the waker wrote is visible after.
  while (w.thread_woken.load(std::memory_order_acquire) == 0) futex_wait(&w.thread_woken, 0);
  resume_plain_thread_scope(depth);
}

void block_forever(wait_reason why) {
  if (current_fiber()) {
    spinlock unreachable;  // in no object: nobody can find w, so nobody can wake it
    unreachable.lock();
    waiter w;
    block(w, unreachable, why);  // never returns: at shutdown the fiber is abandoned here
  } else {
    note_plain_thread_use();
    suspend_plain_thread_scope();
    std::atomic<std::uint32_t> forever{0};
    for (;;) futex_wait(&forever, 0);
  }
  __builtin_unreachable();
}

const char* wait_reason_text(wait_reason r) noexcept {
  switch (r) {
    case wait_reason::none:
      return "runnable";
    case wait_reason::chan_receive:
      return "chan receive";
    case wait_reason::chan_send:
      return "chan send";
    case wait_reason::chan_receive_nil:
      return "chan receive (nil chan)";
    case wait_reason::chan_send_nil:
      return "chan send (nil chan)";
    case wait_reason::select:
      return "select";
    case wait_reason::select_no_cases:
      return "select (no cases)";
    case wait_reason::wait_group:
      return "wait_group";
    case wait_reason::mutex:
      return "mutex";
    case wait_reason::cond_var:
      return "condition_variable";
    case wait_reason::sleep:
      return "sleep";
    case wait_reason::io_read:
      return "IO wait read";
    case wait_reason::io_write:
      return "IO wait write";
    case wait_reason::blocking:
      return "blocking call";
    case wait_reason::once:
      return "once";
    case wait_reason::semaphore:
      return "semaphore acquire";
    case wait_reason::rwmutex_read:
      return "rwmutex read lock";
    case wait_reason::rwmutex_write:
      return "rwmutex write lock";
  }
  return "?";
}

namespace {

// `OnWorker`: the caller knows this thread is a worker, so tls_worker is not tested.
template <bool OnWorker>
[[gnu::always_inline]] inline void wake_as(waiter& target) noexcept {
  // A select case wakes its select's one waiter, which knows the fiber or thread.
  waiter& w = target.sel ? *target.sel->target : target;
  if (fiber* f = w.owner) {
    worker* const wk = tls_worker;  // directly: no switch here
    if (OnWorker || wk) [[likely]] {
      wk->rt.make_runnable_here(*wk, f, /*prefer_next=*/true);
    } else {
      make_runnable_from_anywhere(f);
    }
    return;
  }
  w.thread_woken.store(1, std::memory_order_release);
  // w may be gone by now (the thread may have seen the store and returned), but futex_wake on
  // its address is harmless: at worst it wakes nobody.
  futex_wake(&w.thread_woken);
}

}  // namespace

void wake(waiter& target) noexcept {
  wake_as<false>(target);
}

void wake_on_worker(waiter& target) noexcept {
  wake_as<true>(target);
}

void wake_all(waiter* list) noexcept {
  while (list) {
    waiter* next = list->next;  // read before wake(): the waiter's frame may vanish
    wake(*list);
    list = next;
  }
}

}  // namespace rt::detail
