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
#include <new>
#include <string>

#include "rt/chan.hpp"
#include "rt/select.hpp"
#include "scheduler.hpp"

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
  wake_all(first);
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
  static void unlock_all_cb(void* self) noexcept { static_cast<lock_set*>(self)->unlock_all(); }
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

namespace rt::detail {

void make_chan_size_error(std::size_t capacity) {
  throw rt::runtime_error("rt::make_chan: size out of range (capacity " + std::to_string(capacity) +
                          ")");
}
void make_chan_size_error(long long capacity) {
  throw rt::runtime_error("rt::make_chan: size out of range (capacity " + std::to_string(capacity) +
                          ")");
}

}  // namespace rt::detail

namespace rt {

// The braced form: the case objects are the caller's temporaries; only their erased views are
// copied (into an array run_select may write to). Up to 8 cases the scratch is on the stack.
std::size_t select(std::initializer_list<detail::case_ref> list) {
  constexpr std::size_t kInline = 8;
  const std::size_t n = list.size();
  const detail::case_ref* const refs = list.begin();
  detail::select_case inline_cases[kInline];
  detail::waiter inline_waiters[kInline];
  std::uint32_t inline_order[kInline];
  detail::chan_core* inline_locks[kInline];
  std::unique_ptr<detail::select_case[]> heap_cases;
  std::unique_ptr<detail::waiter[]> heap_waiters;
  std::unique_ptr<std::uint32_t[]> heap_order;
  std::unique_ptr<detail::chan_core*[]> heap_locks;
  detail::select_case* cases = inline_cases;
  detail::select_scratch scratch{inline_waiters, inline_order, inline_locks};
  if (n > kInline) {
    heap_cases = std::make_unique_for_overwrite<detail::select_case[]>(n);
    heap_waiters = std::make_unique<detail::waiter[]>(n);
    heap_order = std::make_unique_for_overwrite<std::uint32_t[]>(n);
    heap_locks = std::make_unique_for_overwrite<detail::chan_core*[]>(n);
    cases = heap_cases.get();
    scratch = {heap_waiters.get(), heap_order.get(), heap_locks.get()};
  }
  for (std::size_t i = 0; i < n; ++i) cases[i] = refs[i].erased;
  const std::size_t fired = detail::run_select(cases, scratch, n);
  detail::chaos_point();
  refs[fired].run(refs[fired].obj);
  return fired;
}

// A heap block for select_list's case objects; the objects follow the header.
struct select_list::chunk {
  chunk* next;
  std::size_t size;  // bytes after the header
  std::byte* begin() noexcept { return reinterpret_cast<std::byte*>(this + 1); }
};

select_list::select_list() noexcept
    : cases_(inline_cases_),
      ops_(inline_ops_),
      waiters_(inline_waiters_),
      order_(inline_order_),
      locks_(inline_locks_),
      bump_(inline_bytes_),
      bump_end_(inline_bytes_ + kInlineBytes) {}

select_list::~select_list() {
  clear();
  while (chunks_) {
    chunk* next = chunks_->next;
    ::operator delete (static_cast<void*>(chunks_), std::align_val_t{alignof(std::max_align_t)});
    chunks_ = next;
  }
}

void select_list::clear() noexcept {
  for (std::size_t i = 0; i < size_; ++i) ops_[i].destroy(ops_[i].obj);
  size_ = 0;
  sent_ = false;
  bump_ = inline_bytes_;
  bump_end_ = inline_bytes_ + kInlineBytes;
  chunk_ = nullptr;
}

void select_list::grow() {
  const std::size_t cap = capacity_ * 2;
  // Allocate everything first: a throw leaves the list as it was.
  auto cases = std::make_unique_for_overwrite<detail::select_case[]>(cap);
  auto ops = std::make_unique_for_overwrite<select_list::ops[]>(cap);
  auto waiters = std::make_unique<detail::waiter[]>(cap);
  auto order = std::make_unique_for_overwrite<std::uint32_t[]>(cap);
  auto locks = std::make_unique_for_overwrite<detail::chan_core*[]>(cap);
  std::copy(cases_, cases_ + size_, cases.get());
  std::copy(ops_, ops_ + size_, ops.get());
  heap_cases_ = std::move(cases);
  heap_ops_ = std::move(ops);
  heap_waiters_ = std::move(waiters);
  heap_order_ = std::move(order);
  heap_locks_ = std::move(locks);
  cases_ = heap_cases_.get();
  ops_ = heap_ops_.get();
  waiters_ = heap_waiters_.get();
  order_ = heap_order_.get();
  locks_ = heap_locks_.get();
  capacity_ = cap;
}

// Bump allocation: case objects never move once placed (their erased views point into them),
// so a full block is followed by another, never grown. Heap blocks are reused after clear().
void* select_list::allocate(std::size_t size, std::size_t align) {
  for (;;) {
    void* p = bump_;
    std::size_t room = static_cast<std::size_t>(bump_end_ - bump_);
    if (std::align(align, size, p, room)) {
      bump_ = static_cast<std::byte*>(p) + size;
      return p;
    }
    chunk* next = chunk_ ? chunk_->next : chunks_;
    if (!next) {
      const std::size_t bytes = std::max<std::size_t>(1024, size + align);
      next = static_cast<chunk*>(
          ::operator new (sizeof(chunk) + bytes, std::align_val_t{alignof(std::max_align_t)}));
      next->next = nullptr;
      next->size = bytes;
      if (chunk_) {
        chunk_->next = next;
      } else {
        // chunks_ is empty here (a non-empty list would have given `next`).
        chunks_ = next;
      }
    }
    chunk_ = next;
    bump_ = next->begin();
    bump_end_ = next->begin() + next->size;
  }
}

std::size_t select(select_list& sel) {
  if (sel.sent_) {
    throw rt::runtime_error(
        "rt::select(select_list&): a send case of this list already fired (its value is gone); "
        "clear() the list and add the cases again");
  }
  const std::size_t n = sel.size_;
  // Fresh waiters, as the other forms get: the previous select left its waiters' fields set.
  // Defensive only: run_select sets every field it reads except `success`, which is read for
  // the fired send case only — and a list whose send case fired is not selected again.
  for (std::size_t i = 0; i < n; ++i) {
    std::destroy_at(&sel.waiters_[i]);
    std::construct_at(&sel.waiters_[i]);
  }
  const std::size_t fired =
      detail::run_select(sel.cases_, {sel.waiters_, sel.order_, sel.locks_}, n);
  detail::chaos_point();
  if (sel.cases_[fired].kind == detail::select_case::send) sel.sent_ = true;
  sel.ops_[fired].run(sel.ops_[fired].obj);
  return fired;
}

}  // namespace rt
