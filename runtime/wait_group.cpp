// runtime/wait_group.cpp — rt::wait_group.
//
// The counter is an atomic so that add() on the fast path (not reaching zero) takes no lock.
// Lost-wakeup argument: wait() checks the counter again under the lock before queueing, and
// add() takes the lock after its decrement reached zero, before looking at the queue; so a
// waiter either sees zero under the lock or is in the queue when add() looks.
#include "rt/wait_group.hpp"

#include "rt/errors.hpp"

namespace rt {

void wait_group::add(int delta) {
  const std::int64_t now = count_.fetch_add(delta) + delta;
  if (now < 0) {
    count_.fetch_sub(delta);  // leave the counter as it was: nothing is lost
    throw rt::runtime_error("negative wait_group counter");
  }
  if (now != 0 || delta == 0) return;
  // Detach the whole queue under the lock, then wake outside it, in arrival order, in one pass
  // (with a million waiters, each on its own stack page, every extra pass costs a page walk).
  lock_.lock();
  detail::waiter* w = waiters_.take_all();
  lock_.unlock();
  while (w) {
    detail::waiter* next = w->next;  // read before wake(): the waiter's frame may vanish
    w->queued = false;
    detail::wake(*w);
    w = next;
  }
}

void wait_group::wait() {
  if (count_.load() == 0) return;
  detail::waiter w;
  lock_.lock();
  if (count_.load() == 0) {
    lock_.unlock();
    return;
  }
  waiters_.push_back(&w);
  try {
    detail::block(w, lock_, detail::wait_reason::wait_group);
  } catch (...) {
    lock_.lock();
    waiters_.remove(&w);
    lock_.unlock();
    throw;
  }
}

}  // namespace rt
