// runtime/group.cpp — see api/include/rt/group.hpp.
//
// The limit is a token bucket, as errgroup's: a buffered channel of capacity n; a member puts a
// token in before it starts (go() parks on a full bucket, try_go() uses try_send) and takes one
// out when it finishes. `active` counts members that hold or wait for a token, so that
// set_limit can refuse to swap the bucket under them (errgroup panics when len(sem) != 0).
#include "rt/group.hpp"

#include <mutex>
#include <string>

#include "rt/chan.hpp"
#include "rt/wait_group.hpp"

namespace rt {
namespace detail {

struct group_state {
  std::mutex mu;             // guards everything below but wg (never held across a park)
  chan<std::monostate> sem;  // the token bucket; nil: no limit
  long active = 0;           // members entered and not yet left (incl. those waiting for a slot)
  std::exception_ptr first;  // the first failure caught
  cancel_func cancel;        // with_context's; a no-op otherwise
  wait_group wg;
};

bool group_enter(group_state& g, bool try_only) {
  chan<std::monostate> sem;
  {
    std::lock_guard lk(g.mu);
    ++g.active;
    sem = g.sem;
  }
  if (sem) {
    bool ok = true;
    try {
      if (try_only) {
        std::monostate token;
        ok = sem.try_send(token);
      } else {
        sem.send(std::monostate{});
      }
    } catch (...) {
      std::lock_guard lk(g.mu);
      --g.active;
      throw;
    }
    if (!ok) {
      std::lock_guard lk(g.mu);
      --g.active;
      return false;
    }
  }
  g.wg.add(1);
  return true;
}

void group_fail(group_state& g, std::exception_ptr e) noexcept {
  {
    std::lock_guard lk(g.mu);
    if (g.first) return;  // not the first
    g.first = std::move(e);
  }
  g.cancel();
}

void group_leave(group_state& g) noexcept {
  chan<std::monostate> sem;
  {
    std::lock_guard lk(g.mu);
    sem = g.sem;  // the bucket we entered: set_limit cannot replace it while we are active
  }
  if (sem) (void)sem.try_recv();  // our token is in it: never fails to find one
  {
    std::lock_guard lk(g.mu);
    --g.active;
  }
  g.wg.done();  // last: wait() returns only after the bookkeeping above
}

}  // namespace detail

group::group() : s_(std::make_shared<detail::group_state>()) {}

std::pair<group, context> group::with_context(const context& parent) {
  group g;
  auto [ctx, cancel] = with_cancel(parent);
  g.s_->cancel = std::move(cancel);
  return {std::move(g), std::move(ctx)};
}

void group::wait() {
  s_->wg.wait();
  s_->cancel();
  std::exception_ptr e;
  {
    std::lock_guard lk(s_->mu);
    e = s_->first;
  }
  if (e) std::rethrow_exception(e);
}

void group::set_limit(int n) {
  std::lock_guard lk(s_->mu);
  if (s_->active != 0) {
    throw rt::runtime_error("rt::group::set_limit: the limit cannot change while members run (" +
                            std::to_string(s_->active) +
                            " active); set it before the first go(), or after wait()");
  }
  s_->sem = n < 0 ? chan<std::monostate>{} : make_chan<std::monostate>(static_cast<std::size_t>(n));
}

}  // namespace rt
