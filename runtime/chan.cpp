// runtime/chan.cpp — the parts of channels and select that do not depend on the element type.
//
// Channel protocol (every step under the channel's spinlock):
// - A sender first looks for a parked receiver (recvq) and hands it the value directly; else it
//   buffers the value if there is room; else it parks in sendq with a pointer to its value.
// - A receiver first takes from the buffer (then moves the oldest parked sender's value into the
//   freed place); else takes a parked sender's value directly; else, if closed, returns nullopt;
//   else parks in recvq with a pointer to its result slot.
// - The party that completes a parked waiter's operation sets waiter::success, pops it, and
//   wakes it after unlocking. A waiter is therefore completed exactly once, by exactly one party:
//   the one that popped it under the lock. That is what rules out lost and duplicated values.
// - close() pops every waiter under the lock and wakes them with success = false: receivers
//   then see nullopt, senders throw channel_closed.
//
// Select protocol (after Go's selectgo): lock every involved channel in address order (so two
// selects cannot deadlock on each other's locks); pass 1 polls the cases in random order and
// completes the first ready one; otherwise pass 2 enqueues one waiter per case, all pointing to
// one select_state, and parks, releasing the locks only after the switch. Any partner that pops
// one of those waiters must claim() it: a CAS on select_state::done, so only the first partner
// completes an operation; the others drop the stale case. Once woken, the select locks its
// channels again and removes its remaining waiters.
#include <algorithm>

#include "rt/chan.hpp"
#include "rt/select.hpp"

namespace rt::detail {

void chan_core::close() {
  plain_thread_scope scope;
  waiter* first = nullptr;
  waiter* last = nullptr;
  auto collect = [&](waiter_queue& q) {
    // Claiming happens under the lock: a select case lost to another channel is dropped here,
    // never touched again (its select may already be running and about to return).
    while (waiter* w = q.pop_claimed()) {
      w->success = false;
      w->next = nullptr;
      (last ? last->next : first) = w;
      last = w;
    }
  };
  lock.lock();
  if (closed) {
    lock.unlock();
    throw channel_closed("close of closed channel");
  }
  closed = true;
  collect(recvq);
  collect(sendq);
  lock.unlock();
  while (first) {
    waiter* next = first->next;  // read before wake(): the waiter's frame may vanish
    wake(*first);
    first = next;
  }
}

chan_core::~chan_core() {
  // The last handle is gone while somebody still waits: a leftover fiber of a finished rt::run
  // (or one about to be abandoned) that used a handle it did not own, e.g. main's. It is
  // detached (see waiter_queue::detach_all) so that shutdown does not unlink it from freed
  // memory; the scope keeps this from overlapping a shutdown that unlinks it.
  plain_thread_scope scope;
  lock.lock();
  recvq.detach_all();
  sendq.detach_all();
  lock.unlock();
}

bool wait_on_channel(chan_core& c, waiter_queue& q, void* slot, wait_reason why) {
  waiter w;
  w.slot = slot;
  q.push_back(&w, c.lock);
  block(w, c.lock, why);
  return w.success;
}

namespace {

// The distinct channels of a select, in lock order.
struct lock_set {
  chan_core** chans;
  std::size_t size = 0;
  void lock_all() {
    for (std::size_t i = 0; i < size; ++i) chans[i]->lock.lock();
  }
  // Careful: as the park's after-switch step, this runs while the select may already have been
  // claimed and woken. The woken select re-locks every channel before touching its lock_set
  // again, so the set may be read until the last unlock — but not after it: hence the copies.
  void unlock_all() {
    chan_core** const c = chans;
    const std::size_t n = size;
    for (std::size_t i = 0; i < n; ++i) c[i]->lock.unlock();
  }
  static void unlock_all_cb(void* self) { static_cast<lock_set*>(self)->unlock_all(); }
};

}  // namespace

std::size_t run_select(select_case* cases, select_scratch scratch, std::size_t n) {
  chaos_point();
  plain_thread_scope scope;
  waiter* waiters = scratch.waiters;
  std::size_t otherwise_index = n;
  // Poll order: a uniformly random permutation (Fisher-Yates), so that when several cases are
  // ready each is equally likely to be chosen.
  std::uint32_t* const order_begin = scratch.order;
  std::uint32_t* order_end = order_begin;
  lock_set locks{scratch.locks};
  for (std::size_t i = 0; i < n; ++i) {
    if (cases[i].kind == select_case::otherwise) {
      otherwise_index = i;
      continue;
    }
    if (!cases[i].ch) continue;  // nil channel: never fires
    *order_end++ = static_cast<std::uint32_t>(i);
    locks.chans[locks.size++] = cases[i].ch;
  }
  const std::size_t ready_candidates = static_cast<std::size_t>(order_end - order_begin);
  for (std::size_t i = ready_candidates; i > 1; --i) {
    std::swap(order_begin[i - 1], order_begin[fast_random() % i]);
  }
  std::sort(locks.chans, locks.chans + locks.size);
  locks.size =
      static_cast<std::size_t>(std::unique(locks.chans, locks.chans + locks.size) - locks.chans);
  struct span {
    std::uint32_t* b;
    std::uint32_t* e;
    std::uint32_t* begin() const { return b; }
    std::uint32_t* end() const { return e; }
  } order{order_begin, order_end};

  if (ready_candidates == 0) {
    if (otherwise_index != n) return otherwise_index;
    block_forever(wait_reason::select_no_cases);
  }

  // Pass 1: is any case ready now?
  locks.lock_all();
  for (std::uint32_t i : order) {
    select_case& c = cases[i];
    waiter* to_wake = nullptr;
    try_result r;
    try {
      r = c.try_now(c.ch, c.slot, to_wake);
    } catch (...) {
      locks.unlock_all();
      throw;
    }
    if (r == try_result::would_block) continue;
    locks.unlock_all();
    if (to_wake) wake(*to_wake);
    if (r == try_result::closed && c.kind == select_case::send) {
      throw channel_closed("send on closed channel");
    }
    return i;  // done, or a receive from a closed channel (its slot stays nullopt)
  }
  if (otherwise_index != n) {
    locks.unlock_all();
    return otherwise_index;
  }

  // Pass 2: park on every case at once.
  select_state state;
  waiter self;
  state.target = &self;
  for (std::uint32_t i : order) {
    waiter& w = waiters[i];
    w.sel = &state;
    w.case_index = i;
    w.slot = cases[i].slot;
    (cases[i].kind == select_case::send ? cases[i].ch->sendq : cases[i].ch->recvq)
        .push_back(&w, cases[i].ch->lock);
  }
  // Shutdown unlinks the cases of an abandoned select through `waiters` (the cases that are
  // not used here are never queued).
  block_with(self, lock_set::unlock_all_cb, &locks, wait_reason::select, waiters, n);
  // Take the other cases off their queues (no switch point before this: see block_with).
  locks.lock_all();
  for (std::uint32_t i : order) {
    (cases[i].kind == select_case::send ? cases[i].ch->sendq : cases[i].ch->recvq)
        .remove(&waiters[i]);
  }
  locks.unlock_all();
  const std::uint32_t fired = state.fired;
  if (cases[fired].kind == select_case::send && !waiters[fired].success) {
    throw channel_closed("send on closed channel");
  }
  return fired;
}

}  // namespace rt::detail
