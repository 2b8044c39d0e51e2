// rt/detail/wait.hpp — the one blocking mechanism every sync object and channel is built on.
// Not part of the public API; names may change.
//
// A sync object keeps its blocked parties in a waiter_queue guarded by a spinlock. To block, a
// party puts a `waiter` (on its own stack) in the queue and calls block() with the lock held;
// block() releases the lock only once the party can be woken (for a fiber: after it has switched
// off its stack), so a wake() that comes right after the unlock always finds it parked. To wake,
// another party pops the waiter under the lock and calls wake() — the only call that may touch
// the waiter after that is wake() itself, since the woken party's stack frame may then vanish.
#pragma once

#include <atomic>
#include <cstdint>

namespace rt::detail {

struct fiber;

// A test-and-test-and-set lock for critical sections of a few dozen instructions.
class spinlock {
 public:
  // Acquires the lock, spinning (then yielding the OS thread) while it is held.
  void lock() noexcept {
    // acquire: pairs with unlock()'s release, so the protected state written by the previous
    // holder is visible.
    if (!held_.exchange(true, std::memory_order_acquire)) return;
    lock_slow();
  }
  // Releases the lock.
  void unlock() noexcept { held_.store(false, std::memory_order_release); }

 private:
  void lock_slow() noexcept;
  std::atomic<bool> held_{false};
};

// Why a fiber is parked; printed in deadlock reports, as Go prints `[chan receive]`.
enum class wait_reason : std::uint8_t {
  none,
  chan_receive,
  chan_send,
  select,
  select_no_cases,
  wait_group,
  mutex,
  cond_var,
  sleep,
  chan_nil,
};

// One blocked party — a fiber, or a plain OS thread — in a sync object's queue.
struct waiter {
  fiber* owner = nullptr;                   // the parked fiber; null for a plain thread
  std::atomic<std::uint32_t> thread_woken{0};  // plain thread: becomes 1 when woken (a futex word)
  waiter* prev = nullptr;                   // queue links (owned by the queue's lock)
  waiter* next = nullptr;
  bool queued = false;                      // true while in a queue (owned by the queue's lock)
  void* slot = nullptr;                     // per-object payload, e.g. a channel's element
};

// An intrusive FIFO of waiters. Not synchronised: guard it with the owning object's lock.
class waiter_queue {
 public:
  // True when nobody waits.
  bool empty() const noexcept { return head_ == nullptr; }
  // Appends w (FIFO: waiters are served in arrival order).
  void push_back(waiter* w) noexcept;
  // Removes and returns the oldest waiter, or nullptr.
  waiter* pop_front() noexcept;
  // Removes w if it is still queued (a waiter giving up, e.g. while unwinding).
  void remove(waiter* w) noexcept;
  // Empties the queue and returns its waiters as a list linked by `next`, oldest first. The
  // caller owns them now and clears each one's `queued` before waking it (one pass, not two).
  waiter* take_all() noexcept;
  // The oldest waiter without removing it, or nullptr.
  waiter* front() const noexcept { return head_; }

 private:
  waiter* head_ = nullptr;
  waiter* tail_ = nullptr;
};

// Blocks the caller (fiber or plain thread) until wake(w). Precondition: `lk` is held and `w` is
// queued; block() releases `lk`. If the runtime shuts down while a fiber is blocked, block()
// throws a private unwinding exception: catch (...) { lock; queue.remove(&w); unlock; throw; }.
void block(waiter& w, spinlock& lk, wait_reason why);
// Wakes w's party: readies the fiber (it runs next on this worker) or wakes the thread.
void wake(waiter& w) noexcept;
// The calling fiber's control block, or nullptr on a plain thread.
fiber* current_fiber() noexcept;

}  // namespace rt::detail
