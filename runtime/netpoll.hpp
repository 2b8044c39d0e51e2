// runtime/netpoll.hpp — the netpoller: fibers park on file descriptors, epoll makes them runnable.
//
// Guarantees (the protocol and its argument are in netpoll.cpp and "I/O" in scheduler.hpp):
// - A fiber waiting for a descriptor occupies no worker: it parks like a channel waiter, and
//   readiness reported by epoll (edge-triggered, one epoll instance for the process) makes it
//   runnable through the ordinary queues and wake protocol.
// - While any fiber waits on I/O and a worker is idle, one idle worker (the poller) sleeps in
//   epoll_wait instead of on its futex, with the earliest timer of any worker as its timeout; a
//   waker or an earlier timer interrupts it through an eventfd. Busy workers poll without
//   blocking when they run out of local work and every global_poll_interval picks. No busy
//   polling: an idle server burns no CPU.
// - A waiter wakes with `ready` (an edge arrived: retry the non-blocking call, which may still
//   say EAGAIN), `timed_out` (its deadline passed) or `closed` (poll_close was called).
// - Fibers waiting on I/O count as able to wake: no deadlock report for an idle server.
// - Plain threads (no fiber) wait with poll(2) in slices, so they see poll_close too.
#pragma once

#include <cstdint>

namespace rt::detail {

struct poll_desc;  // one per registered descriptor, owned by the netpoller (never freed)

enum class poll_mode : std::uint8_t { read = 0, write = 1 };
enum class poll_status : std::uint8_t { ready, timed_out, closed };

// Registers fd (which the caller has made non-blocking) with the netpoller, edge-triggered for
// both directions. Throws std::system_error if epoll refuses it (EPERM for a regular file).
poll_desc* poll_open(int fd);
// Parks the calling fiber until fd may be ready in `mode`, its deadline (steady-clock ns;
// no_deadline for none) passes, or poll_close(pd). Consumes one readiness edge.
poll_status poll_wait(poll_desc* pd, poll_mode mode, std::int64_t deadline_ns);
// Wakes every waiter of pd with `closed`, makes later waits return `closed` at once, and
// unregisters fd from epoll. Does not close fd: the caller does, once no call uses it.
void poll_close(poll_desc* pd) noexcept;
// Waits until fd (any descriptor, not necessarily registered) is ready in `mode` or the deadline
// passes: true when ready. The readiness is checked with poll(2), so it never returns early.
// Behind rt::wait_readable / rt::wait_writable.
bool wait_fd(int fd, poll_mode mode, std::int64_t deadline_ns);
// Interrupts the worker sleeping in epoll_wait, if any (runtime::notify): at most one eventfd
// write per sleep; never blocks.
void netpoll_break() noexcept;

}  // namespace rt::detail
