// runtime/netpoll.cpp — the netpoller (see netpoll.hpp for what it guarantees).
//
// ============================================================================================
// Design
// ============================================================================================
//
// One epoll instance for the process, created on first use and never closed, with every
// descriptor registered edge-triggered for both directions (EPOLLIN | EPOLLOUT | EPOLLRDHUP |
// EPOLLET), once: an edge is a fact ("the descriptor may have become ready"), never a level to
// re-arm. Each descriptor has a poll_desc in a table indexed by the descriptor's number; the
// table only grows and its entries are never freed, so an event that arrives late for a
// descriptor closed meanwhile still finds valid memory. Each registration bumps the entry's
// generation, which the event carries (data.u64 = generation << 32 | fd): an event of an earlier
// use of the number is ignored.
//
// Per direction, a poll_desc holds a `ready` flag and a queue of parked waiters, both under the
// entry's spinlock:
//   Event (poll_io): lock; if fibers wait, take them all and mark them ready; else set `ready`;
//     unlock; make the fibers runnable.
//   Waiter (poll_wait), after its system call said EAGAIN: lock; if `ready`, consume it and
//     return (retry the call); else queue itself and park (block(): the lock is released only
//     once the fiber is off its stack, so an event that comes right after finds it parked).
//   Why no edge is lost: the event and the waiter's look at `ready` are serialised by the lock.
//   An edge that came before the waiter locked is in `ready`; one that came after finds the
//   waiter queued. An edge that came before the system call's EAGAIN leaves `ready` set, so the
//   waiter retries once for nothing: a spurious wakeup, never a lost one.
// Every waiter of a direction is woken by one edge (they all retry; the losers park again):
// several fibers may read one descriptor, and a wakeup must not be spent on one that gave up.
//
// Timeouts are ordinary timers (timer.hpp) armed in the park's after-switch step; the timer and
// the event race for the waiter under the entry's lock, as a condition variable's timeout and
// notify do (mutex.cpp). poll_close wakes every waiter with `closed` and bumps the generation.
//
// Who calls epoll_wait: see "I/O" in scheduler.hpp — one idle worker at a time blocks in it (the
// poller); others poll without blocking before they park and every 61st pick. A waker interrupts
// the poller by writing an eventfd that is registered level-triggered (break_pending keeps that
// to one write per sleep); only the blocked poller drains it (see poll_io).
#include "netpoll.hpp"

#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <mutex>
#include <system_error>

#include "fiber.hpp"
#include "probes.hpp"
#include "rt/detail/wait.hpp"
#include "rt/io.hpp"
#include "scheduler.hpp"
#include "timer.hpp"

namespace rt::detail {

struct poll_desc {
  spinlock lock;
  int fd = -1;
  std::uint32_t generation = 0;  // of the current registration (events carry it)
  bool closing = false;          // poll_close was called: waits return `closed`
  bool ready[2] = {false, false};
  waiter_queue waiters[2];  // each waiter's `slot` points to its poll_status
};

namespace {

// Descriptors up to this number can be waited on (RLIMIT_NOFILE's usual hard limit is 2^20).
constexpr int max_fd = 1 << 22;
constexpr int chunk_bits = 10;
constexpr int chunk_size = 1 << chunk_bits;
constexpr std::uint64_t break_key = ~std::uint64_t{0};

class netpoller {
 public:
  int epfd = -1;
  int breakfd = -1;
  // true once a break is written and not yet drained: later wakers skip the write.
  std::atomic<bool> break_pending{false};
  // epoll_pwait2 available (Linux 5.11); else epoll_wait in milliseconds. relaxed: every thread
  // that finds ENOSYS stores the same false; a stale true costs one more ENOSYS.
  std::atomic<bool> pwait2{true};

  netpoller() {
    epfd = ::epoll_create1(EPOLL_CLOEXEC);
    if (epfd < 0) throw std::system_error(errno, std::generic_category(), "rt: epoll_create1");
    breakfd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (breakfd < 0) throw std::system_error(errno, std::generic_category(), "rt: eventfd");
    epoll_event ev{};
    ev.events = EPOLLIN;  // level-triggered: stays readable until drained
    ev.data.u64 = break_key;
    if (::epoll_ctl(epfd, EPOLL_CTL_ADD, breakfd, &ev) != 0) {
      throw std::system_error(errno, std::generic_category(), "rt: epoll_ctl(eventfd)");
    }
  }

  // The entry for fd, created on first use. Lock-free: chunks are installed by CAS and never
  // freed.
  poll_desc* desc(int fd) {
    if (fd < 0 || fd >= max_fd) {
      throw std::system_error(
          EBADF, std::generic_category(),
          "rt: descriptor " + std::to_string(fd) + " out of the netpoller's range");
    }
    std::atomic<poll_desc*>& slot = chunks_[fd >> chunk_bits];
    // acquire: pairs with the release CAS below, so the chunk's constructed entries are visible.
    poll_desc* chunk = slot.load(std::memory_order_acquire);
    if (!chunk) {
      auto* fresh = new poll_desc[chunk_size];
      for (int i = 0; i < chunk_size; ++i) fresh[i].fd = (fd & ~(chunk_size - 1)) + i;
      // release: publishes the entries; acquire on failure: we read the winner's chunk.
      if (slot.compare_exchange_strong(chunk, fresh, std::memory_order_acq_rel)) {
        chunk = fresh;
      } else {
        delete[] fresh;
      }
    }
    return &chunk[fd & (chunk_size - 1)];
  }

  // The entry for an event's fd, if its chunk exists.
  poll_desc* find(int fd) const noexcept {
    if (fd < 0 || fd >= max_fd) return nullptr;
    poll_desc* chunk = chunks_[fd >> chunk_bits].load(std::memory_order_acquire);  // as in desc()
    return chunk ? &chunk[fd & (chunk_size - 1)] : nullptr;
  }

  // epoll_wait for at most timeout_ns (0: do not block; no_deadline: until an event or a break).
  int wait(epoll_event* evs, int max, std::int64_t timeout_ns) noexcept {
    if (pwait2.load(std::memory_order_relaxed)) {
      timespec ts{};
      timespec* tp = nullptr;
      if (timeout_ns != no_deadline) {
        ts.tv_sec = static_cast<time_t>(timeout_ns / 1000000000);
        ts.tv_nsec = static_cast<long>(timeout_ns % 1000000000);
        tp = &ts;
      }
      int n = ::epoll_pwait2(epfd, evs, max, tp, nullptr);
      if (n >= 0 || errno != ENOSYS) return n;
      pwait2.store(false, std::memory_order_relaxed);  // an old kernel: fall back
    }
    int ms = -1;
    if (timeout_ns != no_deadline) {
      // Round up: waking early would only make the worker sleep again for the remainder.
      ms = static_cast<int>(std::min<std::int64_t>((timeout_ns + 999999) / 1000000, 1 << 30));
    }
    return ::epoll_wait(epfd, evs, max, ms);
  }

 private:
  std::atomic<poll_desc*> chunks_[max_fd / chunk_size] = {};
};

std::once_flag g_netpoller_once;
std::atomic<netpoller*> g_netpoller{nullptr};

netpoller& the_netpoller() {
  std::call_once(g_netpoller_once, [] {
    // release: the epoll and eventfd descriptors are visible to whoever loads the pointer.
    g_netpoller.store(new netpoller, std::memory_order_release);
  });
  return *g_netpoller.load(std::memory_order_acquire);
}

// Registers fd under pd's lock, so that an event for the new generation cannot be processed
// before the generation is bumped. Returns 0 or the errno of epoll_ctl (EEXIST: already
// registered — the registration stands, with its generation).
int register_locked(netpoller& np, poll_desc* pd) noexcept {
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
  ev.data.u64 = (std::uint64_t{pd->generation + 1} << 32) | static_cast<std::uint32_t>(pd->fd);
  if (::epoll_ctl(np.epfd, EPOLL_CTL_ADD, pd->fd, &ev) != 0) return errno;
  ++pd->generation;
  pd->closing = false;
  pd->ready[0] = pd->ready[1] = false;
  return 0;
}

struct io_timer : timer {
  poll_desc* pd;
  waiter* w;
  int mode;
};

// A deadline came: if the waiter is still queued, take it and wake it (timed out).
void io_timeout(timer* t) {
  auto* it = static_cast<io_timer*>(t);
  waiter* w = it->w;
  it->pd->lock.lock();
  const bool mine = w->queued;
  if (mine) {
    it->pd->waiters[it->mode].remove(w);
    *static_cast<poll_status*>(w->slot) = poll_status::timed_out;
  }
  it->pd->lock.unlock();
  t->finish();  // from here the waiter may cancel_timer() and return; w is ours only if `mine`
  if (mine) wake(*w);
}

struct timed_park {
  io_timer* t;
  spinlock* lock;
  static void arm_then_unlock(void* p) noexcept {
    auto* tp = static_cast<timed_park*>(p);
    add_timer(tp->t);
    tp->lock->unlock();
  }
};

short poll_events(poll_mode mode) noexcept {
  return mode == poll_mode::read ? POLLIN : POLLOUT;
}

// A plain thread has no worker to park: it waits in poll(2), in slices so that it notices
// poll_close (which cannot interrupt poll(2)) and its deadline.
poll_status plain_thread_wait(poll_desc* pd, poll_mode mode, std::int64_t deadline) {
  constexpr std::int64_t slice_ns = 20'000'000;
  for (;;) {
    pd->lock.lock();
    const bool closing = pd->closing;
    pd->lock.unlock();
    if (closing) return poll_status::closed;
    const std::int64_t now = now_ns();
    if (deadline != no_deadline && now >= deadline) return poll_status::timed_out;
    const std::int64_t wait =
        deadline == no_deadline ? slice_ns : std::min(slice_ns, deadline - now);
    pollfd p{pd->fd, poll_events(mode), 0};
    const int r = ::poll(&p, 1, static_cast<int>((wait + 999999) / 1000000));
    if (r > 0) return poll_status::ready;
  }
}

}  // namespace

void netpoll_break() noexcept {
  netpoller* np = g_netpoller.load(std::memory_order_acquire);
  if (!np) return;  // nothing was ever registered: nobody sleeps in epoll_wait
  if (np->break_pending.exchange(true)) return;  // one write per sleep is enough
  const std::uint64_t one = 1;
  [[maybe_unused]] ssize_t r = ::write(np->breakfd, &one, sizeof one);
}

poll_desc* poll_open(int fd) {
  netpoller& np = the_netpoller();
  poll_desc* pd = np.desc(fd);
  pd->lock.lock();
  int err = register_locked(np, pd);
  if (err == EEXIST) {
    // rt::wait_readable registered this descriptor already: the registration stands (with its
    // generation); only a poll_close of an earlier owner is forgotten.
    pd->closing = false;
    err = 0;
  }
  pd->lock.unlock();
  if (err != 0) {
    throw std::system_error(
        err, std::generic_category(),
        "rt: cannot wait on descriptor " + std::to_string(fd) + " with epoll (epoll_ctl)");
  }
  return pd;
}

void poll_close(poll_desc* pd) noexcept {
  netpoller& np = *g_netpoller.load(std::memory_order_acquire);  // poll_open created it
  pd->lock.lock();
  pd->closing = true;
  ++pd->generation;  // events still in flight for this registration are ignored
  waiter* lists[2] = {pd->waiters[0].take_all(), pd->waiters[1].take_all()};
  for (waiter* list : lists) {
    for (waiter* w = list; w; w = w->next) {
      w->queued = false;
      *static_cast<poll_status*>(w->slot) = poll_status::closed;
    }
  }
  ::epoll_ctl(np.epfd, EPOLL_CTL_DEL, pd->fd, nullptr);  // under the lock: see register_locked
  pd->lock.unlock();
  for (waiter* list : lists) wake_all(list);
}

namespace {

// True when fd is ready in `mode` now, by poll(2).
bool level_ready(int fd, poll_mode mode) noexcept {
  pollfd p{fd, poll_events(mode), 0};
  return ::poll(&p, 1, 0) > 0;
}

// poll_wait's body. `level`: rt::wait_readable's wait, which asks the kernel for the level under
// the lock instead of consuming the `ready` edge: an edge that came before the look is seen by
// poll(2), one that comes after finds the waiter queued. (Consuming `ready` would be wrong there:
// two fibers could pass their first poll(2) before an edge, the first take `ready` and return,
// and the second park with the descriptor still readable and no edge left to wake it.)
poll_status wait_on(poll_desc* pd, poll_mode mode, std::int64_t deadline, bool level);

}  // namespace

poll_status poll_wait(poll_desc* pd, poll_mode mode, std::int64_t deadline) {
  return wait_on(pd, mode, deadline, false);
}

namespace {

poll_status wait_on(poll_desc* pd, poll_mode mode, std::int64_t deadline, bool level) {
  fiber* f = current_fiber();
  if (!f) return plain_thread_wait(pd, mode, deadline);
  const int m = static_cast<int>(mode);
  runtime& rt = *f->rt;
  // Counted before the look under the lock, so that an idle worker is sleeping in epoll_wait by
  // the time we park (ensure_poller); an early return gives the count back.
  rt.io_wait_begin();
  pd->lock.lock();
  poll_status status = poll_status::ready;
  if (pd->closing) {
    status = poll_status::closed;
  } else if (level ? level_ready(pd->fd, mode) : pd->ready[m]) {
    if (!level) pd->ready[m] = false;  // consume the edge: the caller retries its system call
  } else if (deadline != no_deadline && deadline <= now_ns()) {
    status = poll_status::timed_out;
  } else {
    waiter w;
    w.slot = &status;
    pd->waiters[m].push_back(&w, pd->lock);
    const wait_reason why = mode == poll_mode::read ? wait_reason::io_read : wait_reason::io_write;
    if (deadline == no_deadline) {
      block(w, pd->lock, why);
    } else {
      io_timer t;
      t.when = deadline;
      t.fire = io_timeout;
      t.pd = pd;
      t.w = &w;
      t.mode = m;
      timed_park park{&t, &pd->lock};
      block_with(w, timed_park::arm_then_unlock, &park, why);
      cancel_timer(&t);
    }
    rt.io_wait_end();
    return status;
  }
  pd->lock.unlock();
  rt.io_wait_end();
  return status;
}

}  // namespace

bool wait_fd(int fd, poll_mode mode, std::int64_t deadline) {
  for (;;) {
    // The truth, without the netpoller: edges only say "may be ready".
    pollfd p{fd, poll_events(mode), 0};
    if (::poll(&p, 1, 0) > 0) {
      if (p.revents & POLLNVAL) {
        throw std::system_error(
            EBADF, std::generic_category(),
            std::string(mode == poll_mode::read ? "rt::wait_readable" : "rt::wait_writable") +
                ": descriptor " + std::to_string(fd) + " is not open");
      }
      return true;
    }
    if (deadline != no_deadline && now_ns() >= deadline) return false;
    if (!current_fiber()) {
      const std::int64_t left = deadline == no_deadline ? -1 : deadline - now_ns();
      const int ms =
          left < 0 ? -1
                   : static_cast<int>(std::min<std::int64_t>((left + 999999) / 1000000, 1 << 30));
      ::poll(&p, 1, ms);
      continue;
    }
    netpoller& np = the_netpoller();
    poll_desc* pd = np.desc(fd);
    pd->lock.lock();
    const int err = register_locked(np, pd);  // EEXIST: registered already (by us or rt::net)
    pd->lock.unlock();
    if (err == EPERM) return true;  // epoll refuses regular files: always ready, as poll(2) says
    if (err != 0 && err != EEXIST) {
      throw std::system_error(
          err, std::generic_category(),
          std::string(mode == poll_mode::read ? "rt::wait_readable" : "rt::wait_writable") +
              ": cannot wait on descriptor " + std::to_string(fd));
    }
    if (wait_on(pd, mode, deadline, /*level=*/true) == poll_status::timed_out) return false;
    // ready (perhaps spuriously) or closed by rt::net: look again.
  }
}

// ---------------------------------------------------------------------------------------------
// the runtime's side
// ---------------------------------------------------------------------------------------------

void runtime::io_wait_begin() noexcept {
  n_io_waiters.fetch_add(1);  // seq_cst: the Dekker pair with park_worker's n_idle (see below)
  ensure_poller();
}

void runtime::ensure_poller() noexcept {
  // After our seq_cst store (n_io_waiters, or poller_taken's release by a leaving poller): a
  // parking worker stores n_idle (seq_cst) and then loads n_io_waiters and poller_taken. So
  // either it sees the waiters and takes the poller's job itself, or we see it idle here and
  // tell it to look again (recheck_bit, as timer_armed does).
  if (n_io_waiters.load() == 0 || poller_taken.load() || n_idle.load() == 0) return;
  worker* v = nullptr;
  {
    std::lock_guard lk(idle_mu);
    if (!idle_list.empty()) v = idle_list.back();
  }
  if (!v) return;
  v->wake_word.fetch_or(worker::recheck_bit);  // seq_cst RMW, then notify()'s load
  notify(*v);
}

std::size_t runtime::poll_io(worker& w, std::int64_t timeout_ns) noexcept {
  netpoller* np = g_netpoller.load(std::memory_order_acquire);
  if (!np) return 0;
  epoll_event evs[128];
  const int n = np->wait(evs, 128, timeout_ns);
  if (n <= 0) return 0;
  fiber* batch[128];
  std::size_t k = 0, total = 0;
  auto flush = [&] {
    for (std::size_t i = 0; i < k; ++i) push_local(w, batch[i]);
    total += k;
    k = 0;
  };
  for (int i = 0; i < n; ++i) {
    const std::uint64_t key = evs[i].data.u64;
    if (key == break_key) {
      // Only the blocked poller drains the break (level-triggered, it stays readable until
      // then): a worker polling without blocking that drained it could leave the poller asleep,
      // since epoll_wait goes back to sleep when the event it was woken for is gone. Drain, then
      // clear the flag: a waker in between skips its write, but we are awake and look at
      // wake_word before sleeping again; a waker after it writes again. (Clearing first could
      // leave the flag set over a drained eventfd: every later break lost.)
      if (timeout_ns != 0) {
        std::uint64_t v;
        [[maybe_unused]] ssize_t r = ::read(np->breakfd, &v, sizeof v);
        np->break_pending.store(false);
      }
      continue;
    }
    poll_desc* pd = np->find(static_cast<int>(key & 0xffffffffu));
    if (!pd) continue;
    const std::uint32_t ev = evs[i].events;
    const bool dir[2] = {(ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0,
                         (ev & (EPOLLOUT | EPOLLHUP | EPOLLERR)) != 0};
    pd->lock.lock();
    if (pd->generation != static_cast<std::uint32_t>(key >> 32) || pd->closing) {
      pd->lock.unlock();  // an event of an earlier registration of this number
      continue;
    }
    waiter* lists[2] = {nullptr, nullptr};
    for (int m = 0; m < 2; ++m) {
      if (!dir[m]) continue;
      lists[m] = pd->waiters[m].take_all();
      if (!lists[m]) pd->ready[m] = true;  // nobody waits: keep the edge for the next waiter
      for (waiter* x = lists[m]; x; x = x->next) {
        x->queued = false;
        *static_cast<poll_status*>(x->slot) = poll_status::ready;
      }
    }
    pd->lock.unlock();
    for (waiter* list : lists) {
      while (list) {
        waiter* next = list->next;  // read before the fiber can run: its frame holds the waiter
        fiber* f = list->owner;     // only fibers queue here (plain threads use poll(2))
        // release: a fiber dump that reads `runnable` then reads the saved context (dump.cpp).
        f->state.store(fiber_state::runnable, std::memory_order_release);
        probe_wake(&w, f);
        batch[k++] = f;
        if (k == std::size(batch)) flush();
        list = next;
      }
    }
  }
  if (k != 0) flush();
  // Stealable now: the submitter side of the wake protocol. A parked poller is on the idle list
  // and leaves it as a searching worker, which wakes the next (stop_spinning) instead.
  if (total != 0 && timeout_ns == 0) wake_if_needed();
  return total;
}

}  // namespace rt::detail

namespace rt {

bool wait_readable(int fd, std::chrono::steady_clock::time_point deadline) {
  return detail::wait_fd(fd, detail::poll_mode::read, detail::deadline_ns(deadline));
}

bool wait_writable(int fd, std::chrono::steady_clock::time_point deadline) {
  return detail::wait_fd(fd, detail::poll_mode::write, detail::deadline_ns(deadline));
}

}  // namespace rt
